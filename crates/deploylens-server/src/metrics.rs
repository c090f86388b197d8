//! `/metrics`: the query metrics rendered by the refresh loop, plus the collector's counters.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use deploylens_export::{collector_families, commit_families, encode, window_families};
use deploylens_query::now_us;

use crate::AppState;

/// The query metrics as last rendered: the cheap part after every commit, the windowed part
/// on its timer.
#[derive(Debug, Default)]
pub struct RenderedMetrics {
    pub commit_text: String,
    pub window_text: String,
    pub refreshed_at_unix: f64,
    pub refresh_seconds: f64,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Renders the per-commit metrics after each new snapshot (at most every `min_gap`) and the
/// windowed metrics at least every `every` (the windows move with time even when nothing is
/// appended), never while a scrape waits.
pub async fn refresh_loop(state: AppState, every: Duration, min_gap: Duration, windows: Vec<(String, i64)>) {
    let mut window_text = String::new();
    let mut last_window: Option<Instant> = None;
    loop {
        let started = Instant::now();
        let engine = state.engine().await;
        let now = now_us();
        let commit_text = match commit_families(&engine, now).await {
            Ok(f) => Some(encode(f)),
            Err(e) => {
                tracing::error!("metrics refresh failed: {e}");
                None
            }
        };
        if last_window.is_none_or(|t| t.elapsed() >= every) {
            match window_families(&engine, now, &windows).await {
                Ok(f) => window_text = encode(f),
                Err(e) => tracing::error!("metrics refresh failed: {e}"),
            }
            last_window = Some(Instant::now());
        }
        drop(engine);
        if let Some(commit_text) = commit_text {
            let rendered = RenderedMetrics {
                commit_text,
                window_text: window_text.clone(),
                refreshed_at_unix: unix_now(),
                refresh_seconds: started.elapsed().as_secs_f64(),
            };
            *state.metrics.write().await = std::sync::Arc::new(rendered);
        }
        let until_window = last_window.map_or(Duration::ZERO, |t| every.saturating_sub(t.elapsed()));
        tokio::select! {
            _ = state.changed.notified() => {}
            _ = tokio::time::sleep(until_window) => {}
        }
        let spent = started.elapsed();
        if spent < min_gap {
            tokio::time::sleep(min_gap - spent).await;
        }
    }
}

pub async fn scrape(State(state): State<AppState>) -> impl IntoResponse {
    let started = Instant::now();
    let rendered = state.metrics.read().await.clone();
    let previous = f64::from_bits(state.last_scrape_bits.load(Relaxed));
    let own = encode(collector_families(
        &state.stats,
        rendered.refresh_seconds,
        rendered.refreshed_at_unix,
        previous,
    ));
    let mut body = String::with_capacity(own.len() + rendered.commit_text.len() + rendered.window_text.len());
    body.push_str(&own);
    body.push_str(&rendered.commit_text);
    body.push_str(&rendered.window_text);
    state
        .last_scrape_bits
        .store(started.elapsed().as_secs_f64().to_bits(), Relaxed);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
}
