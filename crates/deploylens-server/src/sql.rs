//! `POST /api/sql`: ad-hoc read-only SQL from the network, contained and bounded.
//!
//! - read-only: DDL, DML, COPY, SET and other statements are refused at planning (DataFusion
//!   `SQLOptions`); the context reads no URLs or paths (no `enable_url_table`, no file-reading
//!   table functions), so only the store's tables are visible;
//! - cross joins and nested-loop joins are refused: DataFusion cannot stop them promptly;
//! - each query runs on a separate runtime (so a busy query does not stall the server's own
//!   threads), under a timeout, a memory limit, a row limit and a cap on concurrent queries;
//! - errors are JSON with a 4xx status.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use deploylens_query::{AdhocLimits, QueryError};

use crate::AppState;
use crate::api::{error, to_json};

/// Limits of `POST /api/sql`.
#[derive(Debug, Clone, Copy)]
pub struct SqlLimits {
    pub timeout: Duration,
    pub max_rows: usize,
    pub max_concurrent: usize,
    pub max_body_bytes: usize,
    pub memory_bytes: usize,
}

impl Default for SqlLimits {
    fn default() -> Self {
        SqlLimits {
            timeout: Duration::from_secs(10),
            max_rows: 10_000,
            max_concurrent: 4,
            max_body_bytes: 64 * 1024,
            memory_bytes: 512 << 20,
        }
    }
}

/// The SQL text of a request: a JSON `{"sql": ...}` body, or the body itself.
fn sql_of(headers: &HeaderMap, body: &[u8]) -> Result<String, Box<Response>> {
    let bad = |m: String| Box::new(error(StatusCode::BAD_REQUEST, m));
    let text = std::str::from_utf8(body).map_err(|_| bad("the body is not UTF-8".into()))?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let sql = if is_json || text.trim_start().starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            bad(format!(
                "the body is not JSON: {e}; send {{\"sql\": \"SELECT ...\"}} or the SQL text"
            ))
        })?;
        v.get("sql")
            .and_then(|s| s.as_str())
            .map(str::to_string)
            .ok_or_else(|| bad("the JSON body has no \"sql\" string".into()))?
    } else {
        text.to_string()
    };
    if sql.trim().is_empty() {
        return Err(bad("no SQL: send SELECT ... as the body or {\"sql\": ...}".into()));
    }
    Ok(sql)
}

/// How the rows are encoded, from the `Accept` header.
#[derive(Clone, Copy)]
enum Encoding {
    Json,
    Csv,
    Ndjson,
    Arrow,
}

fn encoding(headers: &HeaderMap) -> Encoding {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("text/csv") {
        Encoding::Csv
    } else if accept.contains("application/x-ndjson") || accept.contains("application/jsonl") {
        Encoding::Ndjson
    } else if accept.contains("application/vnd.apache.arrow.stream") {
        Encoding::Arrow
    } else {
        Encoding::Json
    }
}

fn status_of(e: &QueryError) -> StatusCode {
    let text = e.to_string();
    match e {
        QueryError::Refused(_) => StatusCode::FORBIDDEN,
        _ if text.contains("not supported")
            && (text.contains("DDL") || text.contains("DML") || text.contains("Statement")) =>
        {
            StatusCode::FORBIDDEN
        }
        _ if text.contains("Resources exhausted") => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::BAD_REQUEST,
    }
}

pub async fn run_sql(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let limits = state.sql_limits;
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            return error(
                e.status(),
                format!("{}; the limit is {} bytes", e.body_text(), limits.max_body_bytes),
            );
        }
    };
    let sql = match sql_of(&headers, &body) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let Ok(_permit) = state.sql_slots.clone().try_acquire_owned() else {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "{} queries are already running; retry shortly",
                limits.max_concurrent
            ),
        );
    };
    let engine = state.sql_engine.read().await.clone();
    let task = state.sql_runtime.spawn(async move {
        engine
            .adhoc(
                &sql,
                AdhocLimits {
                    max_rows: limits.max_rows,
                },
            )
            .await
    });
    let abort = task.abort_handle();
    let result = match tokio::time::timeout(limits.timeout, task).await {
        Ok(Ok(r)) => r,
        Ok(Err(join)) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the query failed: {join}"),
            );
        }
        Err(_) => {
            abort.abort();
            return error(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the query ran longer than {:?} and was stopped; narrow it (WHERE timestamp > ...) or add LIMIT",
                    limits.timeout
                ),
            );
        }
    };
    let result = match result {
        Ok(r) => r,
        Err(e) => return error(status_of(&e), e.to_string()),
    };
    let truncated = if result.truncated { "true" } else { "false" };
    let encoded: Result<(Vec<u8>, &str), arrow::error::ArrowError> = match encoding(&headers) {
        Encoding::Json => to_json(&result.batches).map(|b| (b, "application/json")),
        Encoding::Ndjson => {
            let mut out = Vec::new();
            let mut w = arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, arrow::json::writer::LineDelimited>(&mut out);
            let r = result
                .batches
                .iter()
                .try_for_each(|b| w.write(b))
                .and_then(|_| w.finish());
            drop(w);
            r.map(|_| (out, "application/x-ndjson"))
        }
        Encoding::Csv => {
            let mut out = Vec::new();
            let r = {
                let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(&mut out);
                result.batches.iter().try_for_each(|b| w.write(b))
            };
            r.map(|_| (out, "text/csv"))
        }
        Encoding::Arrow => {
            let mut out = Vec::new();
            let r = arrow::ipc::writer::StreamWriter::try_new(&mut out, &result.schema).and_then(|mut w| {
                result.batches.iter().try_for_each(|b| w.write(b))?;
                w.finish()
            });
            r.map(|_| (out, "application/vnd.apache.arrow.stream"))
        }
    };
    match encoded {
        Ok((body, content_type)) => (
            [
                (header::CONTENT_TYPE, content_type),
                (
                    header::HeaderName::from_static("x-deploylens-truncated"),
                    truncated,
                ),
            ],
            body,
        )
            .into_response(),
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            format!("cannot encode the result: {e} (lists cannot be CSV: use JSON)"),
        ),
    }
}

/// A runtime of its own for ad-hoc queries, alive for the whole process.
pub fn sql_runtime() -> std::io::Result<tokio::runtime::Handle> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("deploylens-sql")
        .enable_all()
        .build()?;
    let handle = rt.handle().clone();
    // Dropping a runtime inside async code panics; this one lives until exit.
    std::mem::forget(rt);
    Ok(handle)
}

pub type Slots = Arc<tokio::sync::Semaphore>;
