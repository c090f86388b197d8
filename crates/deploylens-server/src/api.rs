//! Health, readiness and the JSON API: canned queries by name (for people, scripts and Grafana's
//! JSON data sources) and the search of past fixes.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use deploylens_query::encode::Format;
use deploylens_query::{
    AdhocResult, Granularity, QueryError, Scope, Window, canned_queries, canned_query, now_us,
};

use crate::state::AppState;

/// An error as JSON with a 4xx or 5xx status.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// The HTTP status of each kind of query error.
pub fn status_of(e: &QueryError) -> StatusCode {
    match e {
        QueryError::Refused(_) => StatusCode::FORBIDDEN,
        QueryError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
        QueryError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
        QueryError::ResourcesExhausted(_) => StatusCode::UNPROCESSABLE_ENTITY,
        QueryError::UnknownQuery(_) => StatusCode::NOT_FOUND,
        QueryError::DataFusion(_)
        | QueryError::UnknownTable { .. }
        | QueryError::TooDeep { .. }
        | QueryError::TooLong { .. } => StatusCode::BAD_REQUEST,
        QueryError::Store(_) | QueryError::View { .. } | QueryError::Internal(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// The rows of a query in `format`, with `X-Deploylens-Truncated` saying whether the row cap
/// cut them, and an `X-Deploylens-Warning` header per warning of the query.
pub fn rows_response(result: &AdhocResult, format: Format) -> Response {
    match deploylens_query::encode::to_vec(&result.schema, &result.batches, format) {
        Ok(body) => {
            let mut response = (
                [
                    (header::CONTENT_TYPE, format.content_type()),
                    (
                        header::HeaderName::from_static("x-deploylens-truncated"),
                        if result.truncated { "true" } else { "false" },
                    ),
                ],
                body,
            )
                .into_response();
            for w in &result.warnings {
                if let Ok(value) = header::HeaderValue::from_str(w) {
                    response
                        .headers_mut()
                        .append(header::HeaderName::from_static("x-deploylens-warning"), value);
                }
            }
            response
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the result: {e}"),
        ),
    }
}

/// Alive: the process answers.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: every route answers from the initial scan's snapshot, and the last commit succeeded.
/// Files that cannot be read are named (the server stays ready: the rest of the history is
/// served).
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.is_ready() {
        let unreadable = state.stats.unreadable();
        if unreadable.is_empty() {
            return (StatusCode::OK, "ready\n").into_response();
        }
        let mut text = format!(
            "ready, degraded: {} file(s) cannot be read and are tried again on every poll:\n",
            unreadable.len()
        );
        for u in unreadable.iter().take(20) {
            text.push_str(&format!("  {u}\n"));
        }
        return (StatusCode::OK, text).into_response();
    }
    let why = if !state.initial_scan_done() {
        "initial scan in progress\n"
    } else {
        "the store is not writable: the last commit failed (see the logs)\n"
    };
    (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
}

/// `GET /api/queries`: the canned queries and their parameters.
pub async fn list_queries() -> impl IntoResponse {
    let list: Vec<_> = canned_queries()
        .into_iter()
        .filter(|q| !q.is_view)
        .map(|q| json!({ "name": q.name, "description": q.description, "params": q.params }))
        .collect();
    Json(json!({
        "queries": list,
        "window_param": "window=1h|24h|7d|30d|all (default 7d; at most 200 years)",
        "as_of_param": "as_of=RFC 3339 or YYYY-MM-DD, from 1970 to a day from now (default now)",
        "granularity_param": "granularity=day|week|month: one run per period of the window, rows with period_start and period_end (default: the whole window)",
        "scope_params": "repository=NAME&environment=NAME: the query reads only those events (every view is built again over them)"
    }))
}

/// Longest repository or environment name a scope may name.
const MAX_SCOPE_NAME: usize = 256;

/// The `repository` and `environment` parameters: absent or empty means every one.
fn scope_of(params: &HashMap<String, String>) -> Result<Scope, String> {
    let one = |key: &str| -> Result<Option<String>, String> {
        match params.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) if v.len() > MAX_SCOPE_NAME => {
                Err(format!("{key} is longer than {MAX_SCOPE_NAME} bytes"))
            }
            Some(v) => Ok(Some(v.to_string())),
        }
    };
    Ok(Scope {
        repository: one("repository")?,
        environment: one("environment")?,
    })
}

/// `GET /api/queries/{name}?window=7d&as_of=...&granularity=week&repository=r&environment=e&limit=n`:
/// the rows as a JSON array of objects (the first `limit`), under the same limits as `/api/sql`.
pub async fn run_query(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Some(query) = canned_query(&name) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no canned query named {name:?}; GET /api/queries lists them"),
        );
    };
    let window = match Window::parse(
        params.get("window").map_or("7d", String::as_str),
        params.get("as_of").map(String::as_str),
    ) {
        Ok(w) => w,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let granularity = match Granularity::parse(params.get("granularity").map_or("", String::as_str)) {
        Ok(g) => g,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let scope = match scope_of(&params) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let limit = match params.get("limit").map(|l| l.parse::<usize>()) {
        None => None,
        Some(Ok(n)) if n >= 1 => Some(n),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "limit must be a whole number of rows, at least 1",
            );
        }
    };
    let engine = match state.scoped_sql(&scope).await {
        Ok(e) => e,
        Err(e) => return error(status_of(&e), e.to_string()),
    };
    match state
        .sql
        .canned_rows(engine, query, window, granularity, limit)
        .await
    {
        Ok(result) => rows_response(&result, Format::Json),
        Err(e) => error(status_of(&e), e.to_string()),
    }
}

/// `GET /api/fixes?q=...&limit=5`: past failures like the error in `q`, best first.
pub async fn fixes(State(state): State<AppState>, Query(params): Query<HashMap<String, String>>) -> Response {
    let Some(q) = params.get("q").filter(|q| !q.trim().is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "missing q: GET /api/fixes?q=<the error message>&limit=5",
        );
    };
    let limit = match params.get("limit").map(|l| l.parse::<usize>()) {
        None => 5,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => return error(StatusCode::BAD_REQUEST, "limit must be a number from 1 to 100"),
    };
    let index = state.knowledge.read().await.clone();
    let hits = index.search(
        q,
        deploylens_knowledge::SearchOptions {
            limit,
            now_us: now_us(),
        },
    );
    Json(json!({ "query": q, "searched": index.len(), "results": hits })).into_response()
}

/// `GET /api/status`: the generation of the snapshot served (it grows with each commit
/// published), for a page to know when to refresh; and readiness.
pub async fn status(State(state): State<AppState>) -> Response {
    Json(json!({
        "generation": state.generation.load(std::sync::atomic::Ordering::Relaxed),
        "ready": state.is_ready(),
    }))
    .into_response()
}

/// Longest line `/api/source` returns; a longer one is cut, and says so.
const MAX_SOURCE_LINE: usize = 64 * 1024;

/// `GET /api/source?event_id=...`: the line an event was read from, as it stands in its file
/// on this host. Only a file the store names as an event's source is read.
pub async fn source(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Some(id) = params.get("event_id").map(|v| v.trim()).filter(|v| !v.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "missing event_id: GET /api/source?event_id=<id>",
        );
    };
    if id.len() > 128 {
        return error(StatusCode::BAD_REQUEST, "event_id is longer than 128 bytes");
    }
    let engines = state.engines().await;
    let located = match locate(&engines.engine, id).await {
        Ok(l) => l,
        Err(e) => return error(status_of(&e), e.to_string()),
    };
    let Some((file, line)) = located else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no stored event has the id {id:?}"),
        );
    };
    let path = std::path::PathBuf::from(&file);
    let read = tokio::task::spawn_blocking(move || read_line(&path, line)).await;
    match read {
        Ok(Ok(Some((text, cut)))) => Json(json!({
            "event_id": id, "source_file": file, "source_line": line, "line": text, "cut": cut,
        }))
        .into_response(),
        Ok(Ok(None)) => error(
            StatusCode::NOT_FOUND,
            format!("{file} has fewer than {line} lines now (rotated or truncated since it was read)"),
        ),
        Ok(Err(e)) => error(
            StatusCode::NOT_FOUND,
            format!("{file}:{line} cannot be read on this host: {e}"),
        ),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the source failed: {e}"),
        ),
    }
}

/// The source file and line of a stored event.
async fn locate(engine: &deploylens_query::Engine, id: &str) -> Result<Option<(String, u64)>, QueryError> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Int64Type;
    use datafusion::prelude::{col, lit};
    let df = engine
        .context()
        .table("events")
        .await
        .map_err(QueryError::DataFusion)?
        .filter(col("event_id").eq(lit(id)))
        .and_then(|df| {
            df.select(vec![
                col("source_file"),
                datafusion::prelude::cast(col("source_line"), datafusion::arrow::datatypes::DataType::Int64),
            ])
        })
        .and_then(|df| df.limit(0, Some(1)))
        .map_err(QueryError::DataFusion)?;
    let batches = df.collect().await.map_err(QueryError::DataFusion)?;
    let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(None);
    };
    let (Some(files), Some(lines)) = (
        b.column(0).as_string_opt::<i32>(),
        b.column(1).as_primitive_opt::<Int64Type>(),
    ) else {
        return Err(QueryError::Internal(
            "source columns of an unexpected type".into(),
        ));
    };
    if files.is_null(0) || lines.is_null(0) {
        return Ok(None);
    }
    Ok(Some((files.value(0).to_string(), lines.value(0).max(0) as u64)))
}

/// Line `n` (from 1) of a file, cut at [`MAX_SOURCE_LINE`] bytes (with `true` when cut), or
/// `None` if the file has fewer lines. Reads one line at a time: memory stays bounded whatever
/// the file's size.
fn read_line(path: &std::path::Path, n: u64) -> std::io::Result<Option<(String, bool)>> {
    use std::io::{BufRead, Read};
    let mut reader = std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(path)?);
    let mut seen = 0u64;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let got = (&mut reader)
            .take(MAX_SOURCE_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if got == 0 {
            return Ok(None);
        }
        let whole = buf.last() == Some(&b'\n') || got <= MAX_SOURCE_LINE;
        if !whole {
            // Skip the rest of an over-long line.
            let mut rest = Vec::new();
            loop {
                rest.clear();
                let more = (&mut reader).take(1 << 16).read_until(b'\n', &mut rest)?;
                if more == 0 || rest.last() == Some(&b'\n') {
                    break;
                }
            }
        }
        seen += 1;
        if seen == n {
            let cut = !whole;
            buf.truncate(MAX_SOURCE_LINE);
            let text = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\n', '\r'])
                .to_string();
            return Ok(Some((text, cut)));
        }
    }
}

/// Unknown routes answer JSON too.
pub async fn not_found(uri: axum::http::Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("no route {}; see docs/openapi.yaml", uri.path()),
    )
}
