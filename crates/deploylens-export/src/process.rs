//! The process metrics: what this collector did since it started and its state now, read at
//! scrape time from its counters (no SQL).

use std::sync::atomic::Ordering::Relaxed;

use deploylens_collector::CollectorStats;

use crate::family::Family;

/// The default windows of the windowed metrics: (label, seconds).
pub const WINDOWS: &[(&str, i64)] = &[("1h", 3_600), ("24h", 86_400), ("7d", 604_800)];

/// The state of the server that the process metrics report besides the collector's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServerFigures {
    /// Whether the server is ready (`deploylens_ready`).
    pub ready: bool,
    /// How long the last refresh of the windowed query metrics took, in seconds.
    pub refresh_seconds: f64,
    /// When the windowed query metrics were last refreshed, Unix seconds.
    pub refreshed_at_unix: f64,
    /// How long the previous `/metrics` response took to build, in seconds.
    pub scrape_seconds: f64,
}

/// The collector's own figures and the freshness of the rendered metrics; cheap, read at
/// scrape time.
pub fn collector_families(stats: &CollectorStats, server: ServerFigures) -> Vec<Family> {
    let ServerFigures {
        ready,
        refresh_seconds,
        refreshed_at_unix,
        scrape_seconds,
    } = server;
    let gauge = |name: &str, help: &str, v: f64| {
        let mut f = Family::gauge(name, help);
        f.add(&[], v);
        f
    };
    let counter = |name: &str, help: &str, v: u64| {
        let mut f = Family::counter(name, help);
        f.add(&[], v as f64);
        f
    };
    let mut build = Family::gauge(
        "deploylens_build_info",
        "Always 1; the version of deploylens as a label.",
    );
    build.add(&[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    vec![
        build,
        gauge(
            "deploylens_files_watched",
            "Event files being collected.",
            stats.files_watched.load(Relaxed) as f64,
        ),
        counter(
            "deploylens_lines_read_total",
            "Lines read from event files since start.",
            stats.lines_read.load(Relaxed),
        ),
        counter(
            "deploylens_bytes_read_total",
            "Bytes read from event files since start.",
            stats.bytes_read.load(Relaxed),
        ),
        counter(
            "deploylens_events_ingested_total",
            "New events stored since start.",
            stats.events_stored.load(Relaxed),
        ),
        counter(
            "deploylens_duplicate_events_total",
            "Lines repeating a stored event, since start.",
            stats.duplicates.load(Relaxed),
        ),
        counter(
            "deploylens_commits_total",
            "Commits written since start.",
            stats.commits.load(Relaxed),
        ),
        counter(
            "deploylens_commit_errors_total",
            "Commits that failed (disk full, permissions) since start.",
            stats.commit_errors.load(Relaxed),
        ),
        counter(
            "deploylens_compactions_total",
            "Compactions since start.",
            stats.compactions.load(Relaxed),
        ),
        counter(
            "deploylens_collector_passes_total",
            "Passes of the collector over the event files since start (each after a change, a poll or a rescan).",
            stats.passes.load(Relaxed),
        ),
        gauge(
            "deploylens_collector_unreadable_files",
            "Event files (or rotated generations) that could not be read on their last try; they are tried again on every poll (see /readyz for which).",
            stats.unreadable().len() as f64,
        ),
        gauge(
            "deploylens_ingest_lag_seconds",
            "From the newest append seen to its commit, at the last commit.",
            stats.lag_seconds(),
        ),
        gauge(
            "deploylens_last_scan_timestamp_seconds",
            "When the collector last looked at every changed file, Unix seconds.",
            stats.last_scan_unix.load(Relaxed) as f64,
        ),
        gauge(
            "deploylens_ready",
            "1 when every route answers from the initial scan's snapshot and the store is writable.",
            if ready { 1.0 } else { 0.0 },
        ),
        gauge(
            "deploylens_polling",
            "1 when files are polled instead of watched.",
            if stats.polling.load(Relaxed) { 1.0 } else { 0.0 },
        ),
        gauge(
            "deploylens_metrics_refresh_duration_seconds",
            "How long the last refresh of the windowed query metrics took.",
            refresh_seconds,
        ),
        gauge(
            "deploylens_metrics_refresh_timestamp_seconds",
            "When the windowed query metrics were last refreshed, Unix seconds.",
            refreshed_at_unix,
        ),
        gauge(
            "deploylens_scrape_duration_seconds",
            "How long the previous /metrics response took to build.",
            scrape_seconds,
        ),
    ]
}
