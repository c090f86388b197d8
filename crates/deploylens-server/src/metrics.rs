//! `/metrics`: the store metrics rendered by the refresh loops, plus the collector's counters.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use deploylens_export::{Part, Rendered, ServerFigures, collector_families, dropped_family, encode, render};
use deploylens_query::now_us;

use crate::state::AppState;

/// The store metrics as last rendered: the cheap part after every commit, the windowed part
/// on its timer. Each part is replaced whole, so a scrape clones two pointers.
#[derive(Debug, Clone, Default)]
pub struct RenderedMetrics {
    pub commit_text: Arc<str>,
    pub window_text: Arc<str>,
    /// When the windowed part was last rendered, and how long that took.
    pub refreshed_at_unix: f64,
    pub refresh_seconds: f64,
    /// Label sets the cap left out, per family, in the last render of each part.
    pub commit_dropped: BTreeMap<&'static str, u64>,
    pub window_dropped: BTreeMap<&'static str, u64>,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Renders one part from the published snapshot: its text, and what the cap left out.
async fn render_part(state: &AppState, part: Part) -> Option<(String, BTreeMap<&'static str, u64>)> {
    let engines = state.engines().await;
    match render(&engines.engine, now_us(), part, &state.config.metrics.render).await {
        Ok(Rendered { families, dropped }) => {
            let total: u64 = dropped.values().sum();
            if total > 0 {
                tracing::warn!(
                    "{total} metric label sets left out by --metrics-max-label-sets ({}); deploylens_metrics_series_dropped says which families",
                    state.config.metrics.render.max_label_sets
                );
            }
            Some((encode(families), dropped))
        }
        Err(e) => {
            tracing::error!("metrics refresh failed: {e}");
            None
        }
    }
}

async fn render_commit_part(state: &AppState) {
    if let Some((text, dropped)) = render_part(state, Part::AfterCommit).await {
        let text: Arc<str> = text.into();
        update(state, |m| {
            m.commit_text = text;
            m.commit_dropped = dropped;
        })
        .await;
    }
}

async fn render_window_part(state: &AppState) {
    let started = Instant::now();
    if let Some((text, dropped)) = render_part(state, Part::Windowed).await {
        let text: Arc<str> = text.into();
        let took = started.elapsed().as_secs_f64();
        update(state, |m| {
            m.window_text = text;
            m.window_dropped = dropped;
            m.refresh_seconds = took;
            m.refreshed_at_unix = unix_now();
        })
        .await;
    }
}

/// Renders both parts from the published snapshot now (before the server says it is ready).
pub(crate) async fn render_now(state: &AppState) {
    render_commit_part(state).await;
    render_window_part(state).await;
}

/// Keeps `/metrics` current. Two loops that never wait for each other: the per-commit metrics
/// are rendered after each new snapshot (at most every `min_gap`), so an append shows within a
/// commit; the windowed metrics every `refresh` (the windows move with time even when nothing
/// is appended) and within 5 s of a new snapshot (longer when a refresh itself takes long).
pub(crate) async fn refresh_loop(state: AppState) {
    tokio::join!(commit_loop(state.clone()), window_loop(state));
}

async fn commit_loop(state: AppState) {
    let min_gap = state.config.metrics.min_gap;
    loop {
        state.changed.notified().await;
        let started = Instant::now();
        render_commit_part(&state).await;
        let spent = started.elapsed();
        if spent < min_gap {
            tokio::time::sleep(min_gap - spent).await;
        }
    }
}

async fn window_loop(state: AppState) {
    let every = state.config.metrics.refresh;
    // The first render is the one readiness waits for (`render_now`).
    while !state.initial_scan_done() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut rendered_at = Instant::now();
    let mut took = Duration::ZERO;
    let mut generation = state.generation.load(Relaxed);
    loop {
        // After a new snapshot the windowed metrics follow within a few seconds, not a full
        // period; on a history so large that a refresh takes long, the gap grows with it, so
        // that refreshing uses at most about a quarter of a core.
        let after_change = WINDOW_AFTER_CHANGE.max(took * 3).min(every);
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let since = rendered_at.elapsed();
            let behind = state.generation.load(Relaxed) != generation;
            if since >= every || (behind && since >= after_change) {
                break;
            }
        }
        rendered_at = Instant::now();
        generation = state.generation.load(Relaxed);
        render_window_part(&state).await;
        took = rendered_at.elapsed();
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

pub(crate) async fn scrape(State(state): State<AppState>) -> impl IntoResponse {
    let started = Instant::now();
    let rendered = state.metrics.read().await.clone();
    let mut own = collector_families(
        &state.stats,
        ServerFigures {
            ready: state.is_ready(),
            refresh_seconds: rendered.refresh_seconds,
            refreshed_at_unix: rendered.refreshed_at_unix,
            scrape_seconds: f64::from_bits(state.last_scrape_bits.load(Relaxed)),
        },
    );
    let mut dropped = rendered.commit_dropped.clone();
    dropped.extend(rendered.window_dropped.iter().map(|(k, v)| (*k, *v)));
    if !dropped.is_empty() {
        own.push(dropped_family(&dropped));
    }
    let own = encode(own);
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
