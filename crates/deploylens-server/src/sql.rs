//! `POST /api/sql`: ad-hoc read-only SQL from the network, through the guarded runner of
//! [`deploylens_query::guard`] (read-only, nesting, timeout, memory, rows, concurrency, and
//! cancellation when the client goes away). Errors are JSON with a 4xx status.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use deploylens_query::encode::Format;

use crate::api::{error, rows_response, status_of};
use crate::state::AppState;

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

pub async fn run_sql(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            return error(
                e.status(),
                format!(
                    "{}; the limit is {} bytes",
                    e.body_text(),
                    state.config.max_body_bytes
                ),
            );
        }
    };
    let sql = match sql_of(&headers, &body) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let format = Format::from_accept(
        headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
    );
    let engines = state.engines().await;
    // Dropping this future (the client hung up) cancels the query.
    match state.sql.run(engines.sql.clone(), sql).await {
        Ok(result) => rows_response(&result, format),
        Err(e) => error(status_of(&e), e.to_string()),
    }
}
