//! `/metrics`: the query metrics rendered by the refresh loop, plus the collector's counters.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use deploylens_export::{collector_families, commit_families, encode, window_families};
use deploylens_query::now_us;

use crate::AppState;

/// The query metrics as last rendered: the cheap part after every commit, the windowed part
/// on its timer. Each part is replaced whole, so a scrape clones two pointers.
#[derive(Debug, Clone, Default)]
pub struct RenderedMetrics {
    pub commit_text: Arc<str>,
    pub window_text: Arc<str>,
    /// When the windowed part was last rendered, and how long that took.
    pub refreshed_at_unix: f64,
    pub refresh_seconds: f64,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Keeps `/metrics` current. Two loops that never wait for each other: the per-commit metrics
/// are rendered after each new snapshot (at most every `min_gap`), so an append shows within a
/// commit; the windowed metrics every `every` (the windows move with time even when nothing is
/// appended) and within 5 s of a new snapshot (longer when a refresh itself takes long).
pub async fn refresh_loop(state: AppState, every: Duration, min_gap: Duration, windows: Vec<(String, i64)>) {
    tokio::join!(
        commit_loop(state.clone(), min_gap),
        window_loop(state, every, windows)
    );
}

async fn commit_loop(state: AppState, min_gap: Duration) {
    loop {
        let started = Instant::now();
        let engine = state.engine().await;
        match commit_families(&engine, now_us()).await {
            Ok(f) => {
                let text: Arc<str> = encode(f).into();
                update(&state, |m| m.commit_text = text).await;
            }
            Err(e) => tracing::error!("metrics refresh failed: {e}"),
        }
        drop(engine);
        state.changed.notified().await;
        let spent = started.elapsed();
        if spent < min_gap {
            tokio::time::sleep(min_gap - spent).await;
        }
    }
}

async fn window_loop(state: AppState, every: Duration, windows: Vec<(String, i64)>) {
    loop {
        let started = Instant::now();
        let generation = state.generation.load(Relaxed);
        let engine = state.engine().await;
        match window_families(&engine, now_us(), &windows).await {
            Ok(f) => {
                let text: Arc<str> = encode(f).into();
                let took = started.elapsed().as_secs_f64();
                update(&state, |m| {
                    m.window_text = text;
                    m.refresh_seconds = took;
                    m.refreshed_at_unix = unix_now();
                })
                .await;
            }
            Err(e) => tracing::error!("metrics refresh failed: {e}"),
        }
        drop(engine);
        // After a new snapshot the windowed metrics follow within a few seconds, not a full
        // period; on a history so large that a refresh takes long, the gap grows with it, so
        // that refreshing uses at most about a quarter of a core.
        let after_change = WINDOW_AFTER_CHANGE.max(started.elapsed() * 3).min(every);
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let since = started.elapsed();
            let behind = state.generation.load(Relaxed) != generation;
            if since >= every || (behind && since >= after_change) {
                break;
            }
        }
    }
}

/// How soon after a commit the windowed metrics are rendered again, unless refreshing is slow.
const WINDOW_AFTER_CHANGE: Duration = Duration::from_secs(5);

async fn update(state: &AppState, change: impl FnOnce(&mut RenderedMetrics)) {
    let mut guard = state.metrics.write().await;
    let mut next = (**guard).clone();
    change(&mut next);
    *guard = Arc::new(next);
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
