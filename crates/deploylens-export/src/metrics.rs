//! Which metric comes from which query. Every metric is named `deploylens_...`, in base units
//! (seconds, bytes, ratios from 0 to 1). Labels are bounded: repository, environment,
//! event_type, status, window, quantile, reason; never error text, versions or trace ids.

use std::sync::atomic::Ordering::Relaxed;

use deploylens_collector::CollectorStats;
use deploylens_query::{Engine, QueryError, Window};
use deploylens_store::StoreSnapshot;

use crate::family::Family;
use crate::rows::Rows;

/// The default windows of the windowed metrics: (label, seconds).
pub const WINDOWS: &[(&str, i64)] = &[("1h", 3_600), ("24h", 86_400), ("7d", 604_800)];

async fn rows(
    engine: &Engine,
    name: &str,
    window: Window,
) -> Result<Vec<arrow::array::RecordBatch>, QueryError> {
    engine.canned_by_name(name, window).await
}

/// The cheap metrics that change with every commit: stored events by label, rejected lines,
/// the size of the store. Rendered after each commit, so an append shows at once.
pub async fn commit_families(engine: &Engine, now_us: i64) -> Result<Vec<Family>, QueryError> {
    let all = Window::ending_at(now_us, 200 * 365 * 86_400);
    let mut out = Vec::new();
    let mut events = Family::counter(
        "deploylens_events_total",
        "Stored events by repository, environment, event type and status (query: event_counts).",
    );
    for r in Rows::new(&rows(engine, "event_counts", all).await?).iter() {
        if let (Some(repo), Some(env), Some(kind), Some(status), Some(n)) = (
            r.str("repository"),
            r.str("environment"),
            r.str("event_type"),
            r.str("status"),
            r.f64("events"),
        ) {
            events.add(
                &[
                    ("repository", &repo),
                    ("environment", &env),
                    ("event_type", &kind),
                    ("status", &status),
                ],
                n,
            );
        }
    }
    out.push(events);
    let mut rejects = Family::counter(
        "deploylens_rejected_lines_total",
        "Stored rejected lines by reason (query: rejects_by_reason).",
    );
    let mut by_reason = std::collections::BTreeMap::<String, f64>::new();
    for r in Rows::new(&rows(engine, "rejects_by_reason", all).await?).iter() {
        if let (Some(reason), Some(n)) = (r.str("reason"), r.f64("lines")) {
            *by_reason.entry(reason).or_default() += n;
        }
    }
    for (reason, n) in by_reason {
        rejects.add(&[("reason", &reason)], n);
    }
    out.push(rejects);
    out.extend(store_size_families(engine.snapshot()));
    Ok(out)
}

/// The metrics of the time windows, the duration histogram and the first and last
/// deployments: the heavier queries, rendered on a timer (and after a commit when due).
pub async fn window_families(
    engine: &Engine,
    now_us: i64,
    windows: &[(String, i64)],
) -> Result<Vec<Family>, QueryError> {
    let all = Window::ending_at(now_us, 200 * 365 * 86_400);
    let mut out = Vec::new();

    out.push(histogram(engine, all).await?);

    let mut deployments = Family::gauge(
        "deploylens_deployments",
        "Completed deployments in the window (query: success_rate).",
    );
    let mut failures = Family::gauge(
        "deploylens_deployment_failures",
        "Failed deployments in the window (query: success_rate).",
    );
    let mut success = Family::gauge(
        "deploylens_deployment_success_ratio",
        "Successful / completed deployments in the window, 0 to 1 (query: success_rate).",
    );
    let mut failure = Family::gauge(
        "deploylens_deployment_failure_ratio",
        "Failed / completed deployments in the window, 0 to 1 (query: success_rate).",
    );
    let mut quantiles = Family::summary(
        "deploylens_deployment_duration_quantile_seconds",
        "Exact p50, p95 and p99 of the durations of deployments completed in the window, with their count and sum (query: duration_percentiles).",
    );
    let mut restore = Family::gauge(
        "deploylens_time_to_restore_median_seconds",
        "Median time from a failure streak's first failure to the next successful deployment or rollback, for streaks begun in the window (query: time_to_restore).",
    );
    let mut repeat = Family::gauge(
        "deploylens_repeat_failure_ratio",
        "Failures repeating a fingerprint seen before in any repository / all failures with a fingerprint, in the window (query: repeat_ratio).",
    );
    let mut uptime = Family::gauge(
        "deploylens_health_check_uptime_ratio",
        "Successful / all health checks in the window, 0 to 1 (query: uptime).",
    );
    for (label, seconds) in windows {
        let label = label.as_str();
        let window = Window::ending_at(now_us, *seconds);
        for r in Rows::new(&rows(engine, "success_rate", window).await?).iter() {
            let (Some(repo), Some(env)) = (r.str("repository"), r.str("environment")) else {
                continue;
            };
            let l = [
                ("repository", repo.as_str()),
                ("environment", env.as_str()),
                ("window", label),
            ];
            deployments.add(&l, r.f64("deployments").unwrap_or(0.0));
            failures.add(&l, r.f64("failures").unwrap_or(0.0));
            if let Some(v) = r.f64("success_ratio") {
                success.add(&l, v);
            }
            if let Some(v) = r.f64("failure_ratio") {
                failure.add(&l, v);
            }
        }
        for r in Rows::new(&rows(engine, "duration_percentiles", window).await?).iter() {
            let (Some(repo), Some(env)) = (r.str("repository"), r.str("environment")) else {
                continue;
            };
            let mut qs = Vec::new();
            for (q, column) in [(0.5, "p50_seconds"), (0.95, "p95_seconds"), (0.99, "p99_seconds")] {
                if let Some(v) = r.f64(column) {
                    qs.push((q, v));
                }
            }
            let count = r.f64("deployments").unwrap_or(0.0);
            let sum = r.f64("mean_seconds").unwrap_or(0.0) * count;
            let l = [
                ("repository", repo.as_str()),
                ("environment", env.as_str()),
                ("window", label),
            ];
            quantiles.add_summary(&l, &qs, count as u64, sum);
        }
        for r in Rows::new(&rows(engine, "time_to_restore", window).await?).iter() {
            let (Some(repo), Some(env), Some(v)) = (
                r.str("repository"),
                r.str("environment"),
                r.f64("median_restore_seconds"),
            ) else {
                continue;
            };
            restore.add(
                &[("repository", &repo), ("environment", &env), ("window", label)],
                v,
            );
        }
        for r in Rows::new(&rows(engine, "repeat_ratio", window).await?).iter() {
            let (Some(repo), Some(v)) = (r.str("repository"), r.f64("repeat_ratio")) else {
                continue;
            };
            repeat.add(&[("repository", &repo), ("window", label)], v);
        }
        for r in Rows::new(&rows(engine, "uptime", window).await?).iter() {
            let (Some(repo), Some(env), Some(v)) =
                (r.str("repository"), r.str("environment"), r.f64("uptime_ratio"))
            else {
                continue;
            };
            uptime.add(
                &[("repository", &repo), ("environment", &env), ("window", label)],
                v,
            );
        }
    }
    out.extend([
        deployments,
        failures,
        success,
        failure,
        quantiles,
        restore,
        uptime,
    ]);

    let mut last_at = Family::gauge(
        "deploylens_last_deployment_timestamp_seconds",
        "When the latest completed deployment finished, Unix seconds (query: last_deployment).",
    );
    let mut last_ok = Family::gauge(
        "deploylens_last_deployment_success",
        "1 if the latest completed deployment succeeded, 0 if it failed (query: last_deployment).",
    );
    for r in Rows::new(&rows(engine, "last_deployment", all).await?).iter() {
        let (Some(repo), Some(env), Some(at)) = (
            r.str("repository"),
            r.str("environment"),
            r.f64("last_deployment_at"),
        ) else {
            continue;
        };
        let l = [("repository", repo.as_str()), ("environment", env.as_str())];
        last_at.add(&l, at);
        last_ok.add(
            &l,
            if r.str("status").as_deref() == Some("success") {
                1.0
            } else {
                0.0
            },
        );
    }
    let mut first = Family::gauge(
        "deploylens_first_deployment_timestamp_seconds",
        "When the repository first deployed to the environment, Unix seconds (query: first_deployment).",
    );
    for r in Rows::new(&rows(engine, "first_deployment", all).await?).iter() {
        let (Some(repo), Some(env), Some(at)) = (
            r.str("repository"),
            r.str("environment"),
            r.f64("first_deployment_at"),
        ) else {
            continue;
        };
        first.add(&[("repository", &repo), ("environment", &env)], at);
    }
    out.extend([last_at, last_ok, first]);
    Ok(out)
}

/// Every metric computed from the store, for the windows ending at `now_us`.
pub async fn store_families(
    engine: &Engine,
    now_us: i64,
    windows: &[(String, i64)],
) -> Result<Vec<Family>, QueryError> {
    let mut out = commit_families(engine, now_us).await?;
    out.extend(window_families(engine, now_us, windows).await?);
    Ok(out)
}

const BUCKETS: &[f64] = &[
    10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0,
];

/// Cumulates the per-bucket counts of `duration_histogram` into a Prometheus histogram.
async fn histogram(engine: &Engine, all: Window) -> Result<Family, QueryError> {
    let mut family = Family::histogram(
        "deploylens_deployment_duration_seconds",
        "Durations of completed deployments (query: duration_histogram).",
    );
    let batches = rows(engine, "duration_histogram", all).await?;
    let mut per: std::collections::BTreeMap<(String, String), (Vec<u64>, u64, f64)> = Default::default();
    for r in Rows::new(&batches).iter() {
        let (Some(repo), Some(env), Some(le), Some(n)) = (
            r.str("repository"),
            r.str("environment"),
            r.f64("le"),
            r.f64("deployments"),
        ) else {
            continue;
        };
        let entry = per
            .entry((repo, env))
            .or_insert_with(|| (vec![0; BUCKETS.len()], 0, 0.0));
        if let Some(i) = BUCKETS.iter().position(|b| *b == le) {
            entry.0[i] += n as u64;
        }
        entry.1 += n as u64;
        entry.2 += r.f64("sum_seconds").unwrap_or(0.0);
    }
    for ((repo, env), (counts, total, sum)) in per {
        let mut cumulative = 0;
        let buckets: Vec<(f64, u64)> = BUCKETS
            .iter()
            .zip(counts)
            .map(|(le, n)| {
                cumulative += n;
                (*le, cumulative)
            })
            .collect();
        family.add_histogram(
            &[("repository", &repo), ("environment", &env)],
            &buckets,
            total,
            sum,
        );
    }
    Ok(family)
}

fn store_size_families(snapshot: &StoreSnapshot) -> Vec<Family> {
    let mut events = Family::gauge("deploylens_store_events", "Events in the store.");
    events.add(&[], snapshot.event_count() as f64);
    let mut commits = Family::gauge(
        "deploylens_store_commits",
        "Commit folders (Parquet file pairs) in the store.",
    );
    commits.add(&[], snapshot.commits.len() as f64);
    let mut size = Family::gauge("deploylens_store_size_bytes", "Bytes of Parquet in the store.");
    size.add(&[], snapshot.size_bytes() as f64);
    vec![events, commits, size]
}

/// The collector's own figures and the freshness of the rendered metrics; cheap, read at
/// scrape time.
pub fn collector_families(
    stats: &CollectorStats,
    refresh_seconds: f64,
    refreshed_at_unix: f64,
    scrape_seconds: f64,
) -> Vec<Family> {
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
            "1 when the initial scan is committed and the store is writable.",
            if stats.is_ready() { 1.0 } else { 0.0 },
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
