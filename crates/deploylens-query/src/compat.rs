//! Functions engineers reach for from DuckDB and Postgres that DataFusion lacks, so that
//! everyday questions need no rewriting:
//!
//! | function | returns |
//! |---|---|
//! | `epoch(x)` | seconds, with their fraction, of a timestamp (since 1970) or of an interval (a month is 30 days, as Postgres counts) |
//! | `date_diff(part, start, end)` | how many `part` boundaries lie between two timestamps (DuckDB's rule): `second`, `minute`, `hour`, `day`, `week` (ISO, from Monday), `month`, `quarter`, `year` |
//! | `strftime(timestamp, format)` | the timestamp in UTC as text, by strftime codes (`%G-W%V` is the ISO week) |
//! | `regexp_extract(text, pattern [, group])` | the first match of a regular expression, or its numbered group; NULL without a match |
//! | `arg_max(x, y)`, `arg_min(x, y)` | the `x` of the row with the largest (smallest) non-null `y` |
//! | `timezone(zone, timestamp)` | the same instant shown in another time zone (Postgres' name for `AT TIME ZONE`, which is planned as this) |
//!
//! ```sql
//! SELECT repository, arg_max(version, timestamp) AS latest,
//!        epoch(max(timestamp) - min(timestamp)) / 86400 AS days_active
//! FROM deployments GROUP BY repository
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, IntervalMonthDayNanoType, IntervalUnit, TimeUnit,
};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion::prelude::SessionContext;

/// Registers every function of this module.
pub fn register(ctx: &SessionContext) {
    for f in [
        ScalarUDF::new_from_impl(Epoch::new()),
        ScalarUDF::new_from_impl(DateDiff::new()),
        ScalarUDF::new_from_impl(Strftime::new()),
        ScalarUDF::new_from_impl(RegexpExtract::new()),
        ScalarUDF::new_from_impl(Timezone::new()),
    ] {
        ctx.register_udf(f);
    }
    ctx.register_udaf(AggregateUDF::from(ArgBest::new(true)));
    ctx.register_udaf(AggregateUDF::from(ArgBest::new(false)));
}

const MICROS_PER_SECOND: i64 = 1_000_000;
const UTC_MICROS: DataType = DataType::Timestamp(TimeUnit::Microsecond, None);

/// A timestamp-like argument as microseconds since 1970, UTC.
fn micros(array: &ArrayRef) -> Result<TimestampMicrosecondArray> {
    let plain = cast(array, &UTC_MICROS)?;
    Ok(plain.as_primitive().clone())
}

fn is_temporal(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 | DataType::Utf8 | DataType::Null
    )
}

// ---------------------------------------------------------------- epoch

#[derive(Debug, PartialEq, Eq, Hash)]
struct Epoch {
    signature: Signature,
}

impl Epoch {
    fn new() -> Self {
        Epoch {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Epoch {
    fn name(&self) -> &str {
        "epoch"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match &args[0] {
            t if is_temporal(t) => Ok(DataType::Float64),
            DataType::Duration(_) | DataType::Interval(_) => Ok(DataType::Float64),
            other => plan_err!("epoch: expected a timestamp or an interval, got {other}"),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let a = &arrays[0];
        let seconds = seconds_of(a)?;
        Ok(ColumnarValue::Array(Arc::new(seconds)))
    }
}

/// Seconds, with their fraction, of timestamps (since 1970) or of intervals and durations (a
/// month of an interval is 30 days, as Postgres counts).
pub(crate) fn seconds_of(a: &ArrayRef) -> Result<Float64Array> {
    Ok(match a.data_type() {
        DataType::Interval(_) => {
            let iv = cast(a, &DataType::Interval(IntervalUnit::MonthDayNano))?;
            iv.as_primitive::<IntervalMonthDayNanoType>()
                .iter()
                .map(|v| {
                    v.map(|v| {
                        (v.months as f64) * 30.0 * 86_400.0
                            + (v.days as f64) * 86_400.0
                            + (v.nanoseconds as f64) / 1e9
                    })
                })
                .collect()
        }
        DataType::Duration(_) => {
            let d = cast(a, &DataType::Duration(TimeUnit::Microsecond))?;
            let d = cast(&d, &DataType::Int64)?;
            d.as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .iter()
                .map(|v| v.map(|v| v as f64 / 1e6))
                .collect()
        }
        _ => micros(a)?.iter().map(|v| v.map(|v| v as f64 / 1e6)).collect(),
    })
}

// ---------------------------------------------------------------- date_diff

#[derive(Debug, PartialEq, Eq, Hash)]
struct DateDiff {
    signature: Signature,
    aliases: Vec<String>,
}

impl DateDiff {
    fn new() -> Self {
        DateDiff {
            signature: Signature::any(3, Volatility::Immutable),
            aliases: vec!["datediff".into()],
        }
    }
}

/// A part of `date_diff`: a fixed length, or a calendar count.
enum Part {
    Fixed(i64),
    /// ISO weeks: days since the Monday before 1970-01-01 (a Thursday), by 7.
    Week,
    Months(i64),
}

fn part_of(name: &str) -> Result<Part> {
    Ok(match name.trim().to_lowercase().trim_end_matches('s') {
        "microsecond" | "u" => Part::Fixed(1),
        "millisecond" | "m" => Part::Fixed(1_000),
        "second" => Part::Fixed(MICROS_PER_SECOND),
        "minute" => Part::Fixed(60 * MICROS_PER_SECOND),
        "hour" => Part::Fixed(3_600 * MICROS_PER_SECOND),
        "day" => Part::Fixed(86_400 * MICROS_PER_SECOND),
        "week" => Part::Week,
        "month" => Part::Months(1),
        "quarter" => Part::Months(3),
        "year" => Part::Months(12),
        other => {
            return exec_err!(
                "date_diff: unknown part {other:?}; use second, minute, hour, day, week, month, quarter or year"
            );
        }
    })
}

fn boundaries(part: &Part, start: i64, end: i64) -> Option<i64> {
    Some(match part {
        Part::Fixed(unit) => end.div_euclid(*unit) - start.div_euclid(*unit),
        Part::Week => {
            let day = 86_400 * MICROS_PER_SECOND;
            let week = |us: i64| (us.div_euclid(day) + 3).div_euclid(7);
            week(end) - week(start)
        }
        Part::Months(n) => {
            let month = |us: i64| {
                DateTime::<Utc>::from_timestamp_micros(us).map(|t| t.year() as i64 * 12 + t.month0() as i64)
            };
            month(end)?.div_euclid(*n) - month(start)?.div_euclid(*n)
        }
    })
}

impl ScalarUDFImpl for DateDiff {
    fn name(&self) -> &str {
        "date_diff"
    }
    fn aliases(&self) -> &[String] {
        &self.aliases
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if !(is_temporal(&args[1]) && is_temporal(&args[2])) {
            return plan_err!(
                "date_diff(part, start, end): start and end must be timestamps, got {} and {}",
                args[1],
                args[2]
            );
        }
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let parts = cast(&arrays[0], &DataType::Utf8)?;
        let parts = parts.as_string::<i32>();
        let (start, end) = (micros(&arrays[1])?, micros(&arrays[2])?);
        let mut known: HashMap<String, Part> = HashMap::new();
        let mut out = Vec::with_capacity(start.len());
        for i in 0..start.len() {
            if parts.is_null(i) || start.is_null(i) || end.is_null(i) {
                out.push(None);
                continue;
            }
            let name = parts.value(i);
            if !known.contains_key(name) {
                known.insert(name.to_string(), part_of(name)?);
            }
            out.push(
                known
                    .get(name)
                    .and_then(|p| boundaries(p, start.value(i), end.value(i))),
            );
        }
        Ok(ColumnarValue::Array(Arc::new(Int64Array::from(out))))
    }
}

// ---------------------------------------------------------------- strftime

#[derive(Debug, PartialEq, Eq, Hash)]
struct Strftime {
    signature: Signature,
}

impl Strftime {
    fn new() -> Self {
        Strftime {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

/// A strftime format, checked: chrono panics when it displays an invalid one.
fn checked_format(format: &str) -> Result<Vec<chrono::format::Item<'_>>> {
    chrono::format::StrftimeItems::new(format).parse().or_else(|_| {
        exec_err!("strftime: {format:?} is not a strftime format (e.g. '%Y-%m-%d %H:%M', '%G-W%V')")
    })
}

impl ScalarUDFImpl for Strftime {
    fn name(&self) -> &str {
        "strftime"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if !is_temporal(&args[0]) {
            return plan_err!(
                "strftime(timestamp, format): expected a timestamp, got {}",
                args[0]
            );
        }
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let ts = micros(&arrays[0])?;
        let formats = cast(&arrays[1], &DataType::Utf8)?;
        let formats = formats.as_string::<i32>();
        let mut out = Vec::with_capacity(ts.len());
        for i in 0..ts.len() {
            if ts.is_null(i) || formats.is_null(i) {
                out.push(None);
                continue;
            }
            let items = checked_format(formats.value(i))?;
            let text = DateTime::<Utc>::from_timestamp_micros(ts.value(i))
                .map(|t| t.format_with_items(items.iter()).to_string());
            out.push(text);
        }
        Ok(ColumnarValue::Array(Arc::new(StringArray::from(out))))
    }
}

// ---------------------------------------------------------------- regexp_extract

#[derive(Debug, PartialEq, Eq, Hash)]
struct RegexpExtract {
    signature: Signature,
}

impl RegexpExtract {
    fn new() -> Self {
        RegexpExtract {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

/// Compiled patterns are bounded: a pattern from the network cannot take much memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl ScalarUDFImpl for RegexpExtract {
    fn name(&self) -> &str {
        "regexp_extract"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if !(2..=3).contains(&args.len()) {
            return plan_err!("regexp_extract(text, pattern [, group]) takes 2 or 3 arguments");
        }
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let text = cast(&arrays[0], &DataType::Utf8)?;
        let text = text.as_string::<i32>();
        let patterns = cast(&arrays[1], &DataType::Utf8)?;
        let patterns = patterns.as_string::<i32>();
        let groups = match arrays.get(2) {
            Some(g) => Some(cast(g, &DataType::Int64)?),
            None => None,
        };
        let groups = groups
            .as_ref()
            .map(|g| g.as_primitive::<datafusion::arrow::datatypes::Int64Type>());
        let mut compiled: HashMap<String, regex::Regex> = HashMap::new();
        let mut out = Vec::with_capacity(text.len());
        for i in 0..text.len() {
            let group = groups.map_or(Some(0), |g| (!g.is_null(i)).then(|| g.value(i)));
            let (Some(group), false, false) = (group, text.is_null(i), patterns.is_null(i)) else {
                out.push(None);
                continue;
            };
            let pattern = patterns.value(i);
            if !compiled.contains_key(pattern) {
                let re = regex::RegexBuilder::new(pattern)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .or_else(|e| exec_err!("regexp_extract: {e}"))?;
                compiled.insert(pattern.to_string(), re);
            }
            let re = &compiled[pattern];
            let Ok(group) = usize::try_from(group) else {
                return exec_err!("regexp_extract: the group must be 0 or more, got {group}");
            };
            let found = re
                .captures(text.value(i))
                .and_then(|c| c.get(group))
                .map(|m| m.as_str().to_string());
            out.push(found);
        }
        Ok(ColumnarValue::Array(Arc::new(StringArray::from(out))))
    }
}

// ---------------------------------------------------------------- timezone

/// `timezone(zone, ts)`: the instant unchanged, its zone replaced. `x AT TIME ZONE z` is planned
/// as this call (see `dialect`): DataFusion plans it as a cast, and a cast takes its operand's
/// name, so `extract(hour FROM ts AT TIME ZONE 'Europe/Berlin')` and `extract(hour FROM ts)`
/// collided as "duplicate field" in one GROUP BY.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Timezone {
    signature: Signature,
}

impl Timezone {
    fn new() -> Self {
        Timezone {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

/// The zone named by `timezone`'s first argument, checked (`Europe/Berlin`, `UTC`, `+02:00`).
fn zone_argument(zone: Option<&ScalarValue>) -> Result<Arc<str>> {
    let Some(
        ScalarValue::Utf8(Some(zone))
        | ScalarValue::LargeUtf8(Some(zone))
        | ScalarValue::Utf8View(Some(zone)),
    ) = zone
    else {
        return plan_err!(
            "timezone(zone, timestamp): the zone must be a text constant such as 'Europe/Berlin'"
        );
    };
    if zone.parse::<datafusion::arrow::array::timezone::Tz>().is_err() {
        return plan_err!("timezone: {zone:?} is not a time zone (e.g. 'Europe/Berlin', 'UTC', '+02:00')");
    }
    Ok(Arc::from(zone.as_str()))
}

impl ScalarUDFImpl for Timezone {
    fn name(&self) -> &str {
        "timezone"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        plan_err!("timezone: the return type depends on the zone argument")
    }
    fn return_field_from_args(&self, args: datafusion::logical_expr::ReturnFieldArgs) -> Result<FieldRef> {
        let zone = zone_argument(args.scalar_arguments.first().copied().flatten())?;
        let unit = match args.arg_fields[1].data_type() {
            DataType::Timestamp(unit, _) => *unit,
            DataType::Date32 | DataType::Date64 | DataType::Utf8 | DataType::Null => TimeUnit::Microsecond,
            other => return plan_err!("timezone(zone, timestamp): expected a timestamp, got {other}"),
        };
        Ok(Arc::new(Field::new(
            self.name(),
            DataType::Timestamp(unit, Some(zone)),
            true,
        )))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let target = args.return_field.data_type().clone();
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        Ok(ColumnarValue::Array(cast(&arrays[1], &target)?))
    }
}

// ---------------------------------------------------------------- arg_max / arg_min

#[derive(Debug, PartialEq, Eq, Hash)]
struct ArgBest {
    signature: Signature,
    max: bool,
    aliases: Vec<String>,
}

impl ArgBest {
    fn new(max: bool) -> Self {
        ArgBest {
            signature: Signature::any(2, Volatility::Immutable),
            max,
            aliases: vec![if max { "max_by" } else { "min_by" }.to_string()],
        }
    }
}

impl AggregateUDFImpl for ArgBest {
    fn name(&self) -> &str {
        if self.max { "arg_max" } else { "arg_min" }
    }
    fn aliases(&self) -> &[String] {
        &self.aliases
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[0].clone())
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let types: Vec<DataType> = args.input_fields.iter().map(|f| f.data_type().clone()).collect();
        Ok(vec![
            Arc::new(Field::new(
                format_state_name(args.name, "arg"),
                types[0].clone(),
                true,
            )),
            Arc::new(Field::new(
                format_state_name(args.name, "by"),
                types[1].clone(),
                true,
            )),
        ])
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let types: Vec<DataType> = args.expr_fields.iter().map(|f| f.data_type().clone()).collect();
        Ok(Box::new(ArgBestAccumulator {
            max: self.max,
            arg: ScalarValue::try_from(&types[0])?,
            by: ScalarValue::try_from(&types[1])?,
        }))
    }
}

#[derive(Debug)]
struct ArgBestAccumulator {
    max: bool,
    arg: ScalarValue,
    by: ScalarValue,
}

impl ArgBestAccumulator {
    fn offer(&mut self, args: &ArrayRef, by: &ArrayRef) -> Result<()> {
        for i in 0..by.len() {
            if by.is_null(i) {
                continue;
            }
            let candidate = ScalarValue::try_from_array(by, i)?;
            let better = self.by.is_null()
                || match candidate.partial_cmp(&self.by) {
                    Some(std::cmp::Ordering::Greater) => self.max,
                    Some(std::cmp::Ordering::Less) => !self.max,
                    _ => false,
                };
            if better {
                self.by = candidate;
                self.arg = ScalarValue::try_from_array(args, i)?;
            }
        }
        Ok(())
    }
}

impl Accumulator for ArgBestAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.offer(&values[0], &values[1])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.offer(&states[0], &states[1])
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.arg.clone(), self.by.clone()])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.arg.clone())
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.arg.size() + self.by.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn one(sql: &str) -> String {
        let ctx = SessionContext::new();
        register(&ctx);
        let batches = ctx.sql(sql).await.expect("plans").collect().await.expect("runs");
        datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .expect("prints")
            .to_string()
    }

    #[tokio::test]
    async fn each_function_answers_as_duckdb_or_postgres_would() {
        let t = "TIMESTAMP '2026-11-30 23:59:30'";
        let u = "TIMESTAMP '2026-12-01 00:00:10.5'";
        let got = one(&format!(
            "SELECT epoch({u} - {t}) AS secs, date_diff('second', {t}, {u}) AS s, date_diff('day', {t}, {u}) AS d, \
             date_diff('month', {t}, {u}) AS m, date_diff('week', TIMESTAMP '2026-11-29', TIMESTAMP '2026-11-30') AS w, \
             strftime({t}, '%G-W%V') AS iso_week, regexp_extract('retry after 30s', 'after ([0-9]+)s', 1) AS g, \
             regexp_extract('no digits', '[0-9]+') AS none"
        ))
        .await;
        // 40.5 s apart, 40 second boundaries between them; one day and one month boundary
        // crossed; Sunday -> Monday starts an ISO week; no match is NULL.
        assert!(
            got.contains("| 40.5 | 40 | 1 | 1 | 1 | 2026-W49 | 30 |      |"),
            "{got}"
        );
    }

    #[tokio::test]
    async fn arg_max_and_arg_min_skip_null_keys() {
        let got = one(
            "SELECT arg_max(v, k) AS hi, arg_min(v, k) AS lo, max_by(v, k) AS alias \
             FROM (VALUES ('a', 1), ('b', 3), ('c', NULL), ('d', 2)) AS t(v, k)",
        )
        .await;
        assert!(got.contains("| b  | a  | b     |"), "{got}");
    }

    #[tokio::test]
    async fn bad_arguments_are_errors_not_panics() {
        let ctx = SessionContext::new();
        register(&ctx);
        for sql in [
            "SELECT strftime(TIMESTAMP '2026-01-01', '%Q%')",
            "SELECT date_diff('fortnight', TIMESTAMP '2026-01-01', TIMESTAMP '2026-02-01')",
            "SELECT regexp_extract('x', '(')",
            "SELECT regexp_extract('x', 'x', -1)",
        ] {
            let result = match ctx.sql(sql).await {
                Ok(df) => df.collect().await.map(|_| ()),
                Err(e) => Err(e),
            };
            assert!(result.is_err(), "{sql} should fail");
        }
    }
}
