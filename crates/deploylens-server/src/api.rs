//! Health, readiness and the JSON API: canned queries by name (for people, scripts and Grafana's
//! JSON data sources) and the search of past fixes.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use deploylens_query::encode::Format;
use deploylens_query::{AdhocResult, Granularity, QueryError, Window, canned_queries, canned_query, now_us};

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
        "granularity_param": "granularity=day|week|month: one run per period of the window, rows with period_start and period_end (default: the whole window)"
    }))
}

/// `GET /api/queries/{name}?window=7d&as_of=...&granularity=week`: the rows as a JSON array of objects, under
/// the same limits as `/api/sql`.
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
    let engines = state.engines().await;
    match state
        .sql
        .canned_by_period(engines.sql.clone(), query, window, granularity)
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

/// Unknown routes answer JSON too.
pub async fn not_found(uri: axum::http::Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("no route {}; see docs/openapi.yaml", uri.path()),
    )
}
