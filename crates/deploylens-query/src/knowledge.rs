//! Loading the index from the store, and the knowledge file for agents that only have a shell.

use std::io::Write;

use datafusion::arrow;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use deploylens_knowledge::{Index, PastFailure, SourceRef};

use crate::engine::Engine;
use crate::window::{Window, now_us};

fn column<'a>(b: &'a RecordBatch, name: &str) -> anyhow::Result<&'a arrow::array::ArrayRef> {
    b.column_by_name(name)
        .ok_or_else(|| anyhow::anyhow!("the query has no column {name}"))
}

fn strings(b: &RecordBatch, name: &str) -> anyhow::Result<Vec<Option<String>>> {
    let col = cast(column(b, name)?, &DataType::Utf8)?;
    let col = col.as_string::<i32>();
    Ok((0..col.len())
        .map(|i| col.is_valid(i).then(|| col.value(i).to_string()))
        .collect())
}

fn floats(b: &RecordBatch, name: &str) -> anyhow::Result<Vec<Option<f64>>> {
    let col = cast(column(b, name)?, &DataType::Float64)?;
    let col = col.as_primitive::<Float64Type>();
    Ok((0..col.len())
        .map(|i| col.is_valid(i).then(|| col.value(i)))
        .collect())
}

/// Integers (timestamps as microseconds, line numbers); a null reads as 0.
fn integers(b: &RecordBatch, name: &str) -> anyhow::Result<Vec<i64>> {
    let col = cast(column(b, name)?, &DataType::Int64)?;
    let col = col.as_primitive::<Int64Type>();
    Ok((0..col.len()).map(|i| col.value(i)).collect())
}

/// Builds the past-failure index from the store (the `past_failures` query).
pub async fn load_index(engine: &Engine) -> anyhow::Result<Index> {
    let all = Window::all(now_us());
    let batches = engine.canned_by_name("past_failures", all).await?;
    let mut failures = Vec::new();
    for b in &batches {
        let ts = integers(b, "timestamp")?;
        let repo = strings(b, "repository")?;
        let env = strings(b, "environment")?;
        let error = strings(b, "error")?;
        let fp = strings(b, "error_fingerprint")?;
        let tpl = strings(b, "error_template")?;
        let fix = strings(b, "fix")?;
        let res = floats(b, "resolution_time_seconds")?;
        let file = strings(b, "source_file")?;
        let line = integers(b, "source_line")?;
        let id = strings(b, "event_id")?;
        for i in 0..b.num_rows() {
            failures.push(PastFailure {
                timestamp_us: ts[i],
                repository: repo[i].clone().unwrap_or_default(),
                environment: env[i].clone().unwrap_or_default(),
                error: error[i].clone().unwrap_or_default(),
                fingerprint: fp[i].clone().unwrap_or_default(),
                template: tpl[i].clone().unwrap_or_default(),
                fix: fix[i].clone(),
                resolution_time_seconds: res[i],
                source: SourceRef {
                    source_file: file[i].clone().unwrap_or_default(),
                    source_line: line[i].max(0) as u64,
                    event_id: id[i].clone().unwrap_or_default(),
                },
            });
        }
    }
    Ok(Index::new(failures))
}

/// Writes one JSON line per fingerprint (the `knowledge` query): template, example errors,
/// occurrences, repositories, fixes seen, median resolution time. Returns the line count.
pub async fn export_knowledge(engine: &Engine, out: &mut dyn Write) -> anyhow::Result<usize> {
    let all = Window::all(now_us());
    let batches = engine.canned_by_name("knowledge", all).await?;
    let mut buf = Vec::new();
    {
        let mut w = arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow::json::writer::LineDelimited>(&mut buf);
        for b in &batches {
            w.write(b)?;
        }
        w.finish()?;
    }
    out.write_all(&buf)?;
    Ok(batches.iter().map(|b| b.num_rows()).sum())
}
