//! Writing query results, one behaviour per format for every face (the CLI, HTTP, MCP):
//!
//! | format | shape | lists | empty result |
//! |---|---|---|---|
//! | `table` | a text table for people (wrapped to the terminal's width by [`write_to_terminal`]) | `[a, b]` | the column names |
//! | `csv` | RFC 4180 with a header row | a JSON array as text, `["a","b"]` | the header row |
//! | `json` | one JSON array of objects, nulls explicit | JSON arrays | `[]` |
//! | `ndjson` | one JSON object per line | JSON arrays | nothing |
//! | `arrow` | an Arrow IPC stream | lists | the schema |
//!
//! Intervals and durations (`max(timestamp) - min(timestamp)`) are written as seconds, with
//! their fraction, in CSV and JSON, and as `13d 14h 0m` or `2m 3.5s` in a table: not as ISO
//! 8601 text such as `PT1173600S`. The Arrow format keeps the type.
//!
//! ```
//! # use deploylens_query::encode::{Format, write};
//! # use deploylens_query::arrow::{array::Int64Array, datatypes::*, record_batch::RecordBatch};
//! # use std::sync::Arc;
//! let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
//! let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1, 2]))])?;
//! let mut out = Vec::new();
//! write(&mut out, &schema, &[batch], Format::Csv)?;
//! assert_eq!(String::from_utf8(out)?, "n\n1\n2\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A text table for people.
    Table,
    /// RFC 4180 CSV with a header row.
    Csv,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// An Arrow IPC stream.
    Arrow,
}

impl Format {
    /// The media type of the format over HTTP.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Table => "text/plain; charset=utf-8",
            Format::Csv => "text/csv",
            Format::Json => "application/json",
            Format::Ndjson => "application/x-ndjson",
            Format::Arrow => "application/vnd.apache.arrow.stream",
        }
    }

    /// The format an HTTP `Accept` header asks for (JSON unless another is named).
    pub fn from_accept(accept: &str) -> Format {
        if accept.contains("text/csv") {
            Format::Csv
        } else if accept.contains("application/x-ndjson") || accept.contains("application/jsonl") {
            Format::Ndjson
        } else if accept.contains("application/vnd.apache.arrow.stream") {
            Format::Arrow
        } else {
            Format::Json
        }
    }
}

/// A text table of `batches`, drawn as Arrow's pretty printer draws it. For a terminal
/// (`terminal`), wide columns (notes, error lists) wrap to its width instead of running off the
/// screen; otherwise (a pipe, a file, HTTP) no line is wrapped, whatever the process's own
/// standard output is.
fn text_table(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    terminal: bool,
) -> Result<comfy_table::Table, ArrowError> {
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let options = FormatOptions::default()
        .with_display_error(true)
        .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S"))
        .with_timestamp_tz_format(Some("%Y-%m-%d %H:%M:%S"));
    let kinds: Vec<Shown> = schema.fields().iter().map(|f| shown(f)).collect();
    let mut table = comfy_table::Table::new();
    table.load_preset("||--+-++|    ++++++");
    if terminal {
        table.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    } else {
        table.force_no_tty();
    }
    table.set_header(schema.fields().iter().map(|f| comfy_table::Cell::new(f.name())));
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, ArrowError>>()?;
        let numbers = batch
            .columns()
            .iter()
            .zip(&kinds)
            .map(|(c, how)| numbers_as_text(c, *how))
            .collect::<Result<Vec<_>, ArrowError>>()?;
        for row in 0..batch.num_rows() {
            table.add_row(formatters.iter().zip(&numbers).map(|(f, n)| match n {
                Some(text) => comfy_table::Cell::new(&text[row]),
                None => comfy_table::Cell::new(f.value(row)),
            }));
        }
    }
    Ok(table)
}

/// Writes `batches` to a terminal: as [`write`], except that a table wraps to the terminal's
/// width.
pub fn write_to_terminal(
    out: &mut dyn Write,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    format: Format,
) -> Result<(), ArrowError> {
    match format {
        Format::Table => {
            let (schema, batches) = spans_readable(schema, batches, true)?;
            Ok(writeln!(out, "{}", text_table(&schema, &batches, true)?)?)
        }
        other => write(out, schema, batches, other),
    }
}

/// Writes `batches` (of `schema`) in `format`.
pub fn write(
    out: &mut dyn Write,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    format: Format,
) -> Result<(), ArrowError> {
    if format != Format::Arrow && has_spans(schema) {
        let (schema, batches) = spans_readable(schema, batches, format == Format::Table)?;
        return write(out, &schema, &batches, format);
    }
    match format {
        Format::Table => writeln!(out, "{}", text_table(schema, batches, false)?)?,
        Format::Csv => {
            let mut w = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut *out);
            let text_schema = lists_as_text_schema(schema);
            if batches.iter().all(|b| b.num_rows() == 0) {
                // The header row alone: the columns are known even without rows.
                w.write(&RecordBatch::new_empty(text_schema.clone()))?;
            }
            for b in batches {
                w.write(&lists_as_text(b, &text_schema)?)?;
            }
        }
        Format::Json => {
            let mut text = Vec::new();
            let mut w = datafusion::arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, datafusion::arrow::json::writer::JsonArray>(&mut text);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
            drop(w);
            // Some versions of the writer write nothing at all for no rows.
            out.write_all(if text.is_empty() { b"[]" } else { &text })?;
            writeln!(out)?;
        }
        Format::Ndjson => {
            let mut w = datafusion::arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, datafusion::arrow::json::writer::LineDelimited>(&mut *out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
        Format::Arrow => {
            let mut w = datafusion::arrow::ipc::writer::StreamWriter::try_new(&mut *out, schema)?;
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
    }
    Ok(())
}

/// The rows in `format`, as bytes.
pub fn to_vec(schema: &SchemaRef, batches: &[RecordBatch], format: Format) -> Result<Vec<u8>, ArrowError> {
    let mut out = Vec::new();
    write(&mut out, schema, batches, format)?;
    Ok(out)
}

/// The rows as JSON values (for faces that embed them in a larger document).
pub fn to_json_rows(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<serde_json::Value, ArrowError> {
    let bytes = to_vec(schema, batches, Format::Json)?;
    serde_json::from_slice(&bytes).map_err(|e| ArrowError::JsonError(e.to_string()))
}

fn is_span(t: &DataType) -> bool {
    matches!(t, DataType::Duration(_) | DataType::Interval(_))
}

/// A span of seconds for people, in its two largest units (cut, not rounded): `13d 14h`,
/// `1h 8m`, `2m 3s`; under a minute with up to two decimals: `3.5s`, `0.25s`.
pub fn human_seconds(seconds: f64) -> String {
    if !seconds.is_finite() {
        return seconds.to_string();
    }
    let sign = if seconds < 0.0 { "-" } else { "" };
    let s = seconds.abs();
    if s < 60.0 {
        return format!("{sign}{}s", trim_decimals(s, 2));
    }
    let whole = s.floor() as u64;
    let (days, hours, minutes, secs) = (
        whole / 86_400,
        whole % 86_400 / 3_600,
        whole % 3_600 / 60,
        whole % 60,
    );
    if days > 0 {
        format!("{sign}{days}d {hours}h")
    } else if hours > 0 {
        format!("{sign}{hours}h {minutes}m")
    } else {
        format!("{sign}{minutes}m {secs}s")
    }
}

/// `x` with at most `digits` decimals, trailing zeros dropped.
fn trim_decimals(x: f64, digits: usize) -> String {
    let text = format!("{x:.digits$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// How a table shows a column, from its name and type: one rule for every table (reports,
/// ad-hoc SQL, HTTP's text/plain), none for CSV, JSON or NDJSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// `*_ratio` and `*_rate` floats: `88.4%`.
    Percent,
    /// Numeric `*_seconds`: [`human_seconds`].
    Seconds,
    /// Other floats: two decimals, or four below 1.
    Decimal,
    /// As Arrow displays it (timestamps cut to the second by the format options).
    Plain,
}

fn shown(field: &Field) -> Shown {
    let name = field.name();
    let t = field.data_type();
    if t.is_floating() && (name.ends_with("_ratio") || name.ends_with("_rate")) {
        Shown::Percent
    } else if t.is_numeric() && name.ends_with("_seconds") {
        Shown::Seconds
    } else if t.is_floating() {
        Shown::Decimal
    } else {
        Shown::Plain
    }
}

/// The cells of a numeric column shown as `how`; `None` for [`Shown::Plain`].
fn numbers_as_text(column: &ArrayRef, how: Shown) -> Result<Option<Vec<String>>, ArrowError> {
    if how == Shown::Plain {
        return Ok(None);
    }
    let floats = datafusion::arrow::compute::cast(column, &DataType::Float64)?;
    let floats = floats
        .as_any()
        .downcast_ref::<datafusion::arrow::array::Float64Array>()
        .ok_or_else(|| ArrowError::CastError("not a number".into()))?;
    Ok(Some(
        floats
            .iter()
            .map(|v| match v {
                None => String::new(),
                Some(x) if !x.is_finite() => x.to_string(),
                Some(x) => match how {
                    Shown::Percent => format!("{}%", trim_decimals(x * 100.0, 1)),
                    Shown::Seconds => human_seconds(x),
                    Shown::Decimal if x.abs() >= 1.0 || x == 0.0 => trim_decimals(x, 2),
                    Shown::Decimal => trim_decimals(x, 4),
                    Shown::Plain => String::new(),
                },
            })
            .collect(),
    ))
}

fn has_spans(schema: &SchemaRef) -> bool {
    schema.fields().iter().any(|f| is_span(f.data_type()))
}

/// The schema and batches with spans as seconds (`Float64`), or as [`human_seconds`] text for a
/// table; unchanged when there are none.
fn spans_readable(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    table: bool,
) -> Result<(SchemaRef, Vec<RecordBatch>), ArrowError> {
    if !has_spans(schema) {
        return Ok((schema.clone(), batches.to_vec()));
    }
    let to = if table { DataType::Utf8 } else { DataType::Float64 };
    let readable: SchemaRef = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| {
                if is_span(f.data_type()) {
                    Field::new(f.name(), to.clone(), true)
                } else {
                    f.as_ref().clone()
                }
            })
            .collect::<Vec<_>>(),
    ));
    let span_readable = |c: &ArrayRef| -> Result<ArrayRef, ArrowError> {
        if !is_span(c.data_type()) {
            return Ok(c.clone());
        }
        let seconds = crate::compat::seconds_of(c).map_err(|e| ArrowError::ComputeError(e.to_string()))?;
        if !table {
            return Ok(Arc::new(seconds));
        }
        let text: datafusion::arrow::array::StringArray =
            seconds.iter().map(|v| v.map(human_seconds)).collect();
        Ok(Arc::new(text))
    };
    let batches = batches
        .iter()
        .map(|b| {
            let columns = b
                .columns()
                .iter()
                .map(span_readable)
                .collect::<Result<Vec<_>, _>>()?;
            RecordBatch::try_new(readable.clone(), columns)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((readable, batches))
}

fn is_list(t: &DataType) -> bool {
    matches!(
        t,
        DataType::List(_) | DataType::LargeList(_) | DataType::ListView(_) | DataType::FixedSizeList(_, _)
    )
}

fn lists_as_text_schema(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if is_list(f.data_type()) {
                Field::new(f.name(), DataType::Utf8, true)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// CSV has no lists: each list becomes its JSON text, `["timeout","disk full"]`.
fn lists_as_text(batch: &RecordBatch, text_schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if !batch.schema().fields().iter().any(|f| is_list(f.data_type())) {
        return Ok(batch.clone());
    }
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (i, column) in batch.columns().iter().enumerate() {
        if !is_list(column.data_type()) {
            columns.push(column.clone());
            continue;
        }
        // Each list through the JSON writer, so that quoting and escapes are JSON's.
        let field = batch.schema().field(i).clone();
        let one = RecordBatch::try_new(Arc::new(Schema::new(vec![field])), vec![column.clone()])?;
        let mut lines = Vec::new();
        {
            let mut w = datafusion::arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, datafusion::arrow::json::writer::LineDelimited>(&mut lines);
            w.write(&one)?;
            w.finish()?;
        }
        let mut text = StringBuilder::new();
        for (row, line) in String::from_utf8_lossy(&lines).lines().enumerate() {
            if column.is_null(row) {
                text.append_null();
                continue;
            }
            let value: serde_json::Value =
                serde_json::from_str(line).map_err(|e| ArrowError::JsonError(e.to_string()))?;
            let list = value
                .as_object()
                .and_then(|o| o.values().next())
                .cloned()
                .unwrap_or_default();
            text.append_value(list.to_string());
        }
        columns.push(Arc::new(text.finish()));
    }
    RecordBatch::try_new(text_schema.clone(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{DurationMicrosecondArray, Int64Array, ListBuilder};

    #[test]
    fn spans_are_seconds_in_json_and_csv_and_words_in_a_table() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "span",
            DataType::Duration(datafusion::arrow::datatypes::TimeUnit::Microsecond),
            true,
        )]));
        let spans = DurationMicrosecondArray::from(vec![Some(1_173_600_000_000), Some(123_500_000), None]);
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(spans)]).unwrap();
        let text = |f| String::from_utf8(to_vec(&schema, std::slice::from_ref(&batch), f).unwrap()).unwrap();
        assert_eq!(
            text(Format::Json).trim(),
            r#"[{"span":1173600.0},{"span":123.5},{"span":null}]"#
        );
        assert_eq!(text(Format::Csv), "span\n1173600.0\n123.5\n\"\"\n");
        let table = text(Format::Table);
        assert!(
            table.contains("| 13d 14h |") && table.contains("| 2m 3s   |"),
            "{table}"
        );
        assert_eq!(human_seconds(3_723.0), "1h 2m");
        assert_eq!(human_seconds(4131.3745), "1h 8m");
        assert_eq!(human_seconds(-0.25), "-0.25s");
        assert_eq!(human_seconds(59.999), "60s");
        assert_eq!(human_seconds(61.0), "1m 1s");
    }

    #[test]
    fn a_table_shows_ratios_as_percentages_seconds_as_spans_and_times_to_the_second() {
        use datafusion::arrow::array::{Float64Array, TimestampMicrosecondArray};
        let schema = Arc::new(Schema::new(vec![
            Field::new("success_ratio", DataType::Float64, true),
            Field::new("p95_seconds", DataType::Float64, true),
            Field::new("per_day", DataType::Float64, true),
            Field::new(
                "at",
                DataType::Timestamp(
                    datafusion::arrow::datatypes::TimeUnit::Microsecond,
                    Some("UTC".into()),
                ),
                true,
            ),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Float64Array::from(vec![Some(0.8844621513944223), None])),
                Arc::new(Float64Array::from(vec![Some(4131.3745), Some(12.25)])),
                Arc::new(Float64Array::from(vec![Some(9.571428), Some(0.012345)])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![Some(1_764_625_842_647_000), None])
                        .with_timezone("UTC"),
                ),
            ],
        )
        .unwrap();
        let table =
            String::from_utf8(to_vec(&schema, std::slice::from_ref(&batch), Format::Table).unwrap()).unwrap();
        for shown in [
            "88.4%",
            "1h 8m",
            "12.25s",
            "9.57",
            "0.0123",
            "2025-12-01 21:50:42",
        ] {
            assert!(table.contains(shown), "{shown} in\n{table}");
        }
        assert!(
            !table.contains("0.88446") && !table.contains("4131") && !table.contains(".647"),
            "{table}"
        );
        // Programs get the values unchanged.
        let json =
            String::from_utf8(to_vec(&schema, std::slice::from_ref(&batch), Format::Json).unwrap()).unwrap();
        assert!(
            json.contains("0.8844621513944223") && json.contains("4131.3745"),
            "{json}"
        );
    }

    fn batch() -> (SchemaRef, RecordBatch) {
        let mut lists = ListBuilder::new(StringBuilder::new());
        lists.values().append_value("a \"quoted\", b");
        lists.values().append_value("c");
        lists.append(true);
        lists.append(true);
        let lists = lists.finish();
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("errors", lists.data_type().clone(), true),
        ]));
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(vec![1, 2])), Arc::new(lists)],
        )
        .unwrap();
        (schema, b)
    }

    #[test]
    fn lists_in_csv_are_json_text_and_round_trip() {
        let (schema, b) = batch();
        let text = String::from_utf8(to_vec(&schema, &[b], Format::Csv).unwrap()).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("n,errors"));
        let first = lines.next().unwrap();
        assert!(first.starts_with("1,\""), "{first}");
        let cell = first.strip_prefix("1,").unwrap();
        let unquoted = cell.trim_matches('"').replace("\"\"", "\"");
        let parsed: Vec<String> = serde_json::from_str(&unquoted).unwrap();
        assert_eq!(parsed, vec!["a \"quoted\", b", "c"]);
        assert_eq!(lines.next(), Some("2,[]"));
    }

    #[test]
    fn a_table_wraps_only_for_a_terminal() {
        let schema = Arc::new(Schema::new(vec![Field::new("notes", DataType::Utf8, false)]));
        let long = "increased start_period to 90s for n8n in docker-compose.yml ".repeat(3);
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(datafusion::arrow::array::StringArray::from(vec![
                long.as_str(),
            ]))],
        )
        .unwrap();
        let plain = text_table(&schema, std::slice::from_ref(&b), false)
            .unwrap()
            .to_string();
        assert_eq!(plain.lines().count(), 5, "{plain}");
        let mut wrapped = text_table(&schema, &[b], true).unwrap();
        wrapped.set_width(40);
        let text = wrapped.to_string();
        assert!(text.lines().all(|l| l.chars().count() <= 40), "{text}");
        assert!(text.lines().count() > 5, "{text}");
    }

    #[test]
    fn empty_results_keep_their_columns() {
        let (schema, _) = batch();
        let csv = String::from_utf8(to_vec(&schema, &[], Format::Csv).unwrap()).unwrap();
        assert_eq!(csv, "n,errors\n");
        let json = String::from_utf8(to_vec(&schema, &[], Format::Json).unwrap()).unwrap();
        assert_eq!(json.trim(), "[]");
        let table = String::from_utf8(to_vec(&schema, &[], Format::Table).unwrap()).unwrap();
        assert!(table.contains("| n | errors |"), "{table}");
    }
}
