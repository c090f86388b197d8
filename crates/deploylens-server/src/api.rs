//! The JSON API: canned queries by name, for people, scripts and Grafana's JSON datasources.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use deploylens_query::{Window, canned_queries, canned_query, now_us, parse_timestamp, parse_window};

use crate::AppState;

/// An error as JSON with a 4xx or 5xx status.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// `GET /api/queries`: the canned queries and their parameters.
pub async fn list_queries() -> impl IntoResponse {
    let list: Vec<_> = canned_queries()
        .into_iter()
        .filter(|q| !q.is_view)
        .map(|q| json!({ "name": q.name, "description": q.description, "params": q.params }))
        .collect();
    Json(
        json!({ "queries": list, "window_param": "window=1h|24h|7d|30d|all (default 7d)", "as_of_param": "as_of=RFC 3339 or YYYY-MM-DD (default now)" }),
    )
}

/// `GET /api/queries/{name}?window=7d&as_of=...`: the rows as a JSON array of objects.
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
    let seconds = match parse_window(params.get("window").map_or("7d", String::as_str)) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let end = match params.get("as_of") {
        Some(t) => match parse_timestamp(t) {
            Ok(t) => t,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        },
        None => now_us(),
    };
    let engine = state.engine().await;
    let batches = match engine.canned(&query, Window::ending_at(end, seconds)).await {
        Ok(df) => df.collect().await,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    match batches {
        Ok(batches) => match to_json(&batches) {
            Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        },
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Rows as a JSON array of objects, nulls explicit.
pub fn to_json(batches: &[arrow::array::RecordBatch]) -> Result<Vec<u8>, arrow::error::ArrowError> {
    let mut out = Vec::new();
    let mut w = arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow::json::writer::JsonArray>(&mut out);
    for b in batches {
        w.write(b)?;
    }
    w.finish()?;
    drop(w);
    if out.is_empty() {
        out.extend_from_slice(b"[]");
    }
    Ok(out)
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
