//! `/metrics`: the query metrics rendered by the refresh loop, plus the collector's counters.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use deploylens_export::{collector_families, encode, store_families};
use deploylens_query::now_us;

use crate::AppState;

/// The query metrics as last rendered.
#[derive(Debug, Default)]
pub struct RenderedMetrics {
    pub text: String,
    pub refreshed_at_unix: f64,
    pub refresh_seconds: f64,
}

/// Renders the query metrics after each new snapshot (at most every `min_gap`) and at least
/// every `every`, so the time windows move even when nothing is appended.
pub async fn refresh_loop(state: AppState, every: Duration, min_gap: Duration, windows: Vec<(String, i64)>) {
    loop {
        let started = Instant::now();
        let engine = state.engine().await;
        match store_families(&engine, now_us(), &windows).await {
            Ok(families) => {
                let text = encode(families);
                let rendered = RenderedMetrics {
                    text,
                    refreshed_at_unix: SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64()),
                    refresh_seconds: started.elapsed().as_secs_f64(),
                };
                *state.metrics.write().await = std::sync::Arc::new(rendered);
            }
            Err(e) => tracing::error!("metrics refresh failed: {e}"),
        }
        drop(engine);
        tokio::select! {
            _ = state.changed.notified() => {}
            _ = tokio::time::sleep(every) => {}
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
    let mut body = String::with_capacity(rendered.text.len() + own.len());
    body.push_str(&own);
    body.push_str(&rendered.text);
    state
        .last_scrape_bits
        .store(started.elapsed().as_secs_f64().to_bits(), Relaxed);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
}
