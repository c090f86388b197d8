//! Backfill: an OpenMetrics file of past values, for `promtool tsdb create-blocks-from
//! openmetrics`, so history from before the first scrape shows in Prometheus.
//!
//! Written for every step (default one hour) from the first event's day to now:
//! `deploylens_events_total` (cumulative, as the live counter), and over the 24 hours before each
//! step `deploylens_deployments` and `deploylens_deployment_failures`, with
//! `deploylens_deployment_failure_ratio` where deployments happened: the series the failure-rate
//! alert and the dashboard read. The hourly counts come from SQL over the `events` table and
//! the `deployments` view; only their running sums are computed here.

use std::collections::BTreeMap;
use std::io::Write;

use deploylens_query::{Engine, QueryError};

use crate::rows::Rows;

/// What the backfill file covers.
#[derive(Debug, Clone, Copy)]
pub struct BackfillOptions {
    /// Seconds between samples; values under 60 count as 60.
    pub step_seconds: i64,
    /// Last sample time, Unix seconds.
    pub end_unix: i64,
}

type Key = Vec<(String, String)>;

fn labels(key: &Key) -> String {
    key.iter()
        .map(|(k, v)| {
            format!(
                "{k}=\"{}\"",
                v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Writes the file; returns the number of samples.
pub async fn write_openmetrics(
    engine: &Engine,
    opts: BackfillOptions,
    out: &mut dyn Write,
) -> Result<u64, anyhow::Error> {
    let step = opts.step_seconds.max(60);
    let events = hourly(
        engine,
        &format!(
            "SELECT repository, environment, event_type, status, \
             CAST(timestamp AS BIGINT) / 1000000 / {step} * {step} AS bucket, \
             COUNT(*) AS n FROM events GROUP BY 1, 2, 3, 4, 5"
        ),
        &["repository", "environment", "event_type", "status"],
        &["n"],
    )
    .await?;
    let deploys = hourly(
        engine,
        &format!(
            "SELECT repository, environment, \
             CAST(timestamp AS BIGINT) / 1000000 / {step} * {step} AS bucket, \
             COUNT(*) AS n, SUM(CASE WHEN status = 'failure' THEN 1 ELSE 0 END) AS failed \
             FROM deployments WHERE status IN ('success', 'failure') GROUP BY 1, 2, 3"
        ),
        &["repository", "environment"],
        &["n", "failed"],
    )
    .await?;
    let Some(first) = events.values().flat_map(|m| m.keys()).min().copied() else {
        writeln!(out, "# EOF")?;
        return Ok(0);
    };
    let steps: Vec<i64> = (0..)
        .map(|i| first + step + i * step)
        .take_while(|t| *t <= opts.end_unix)
        .collect();
    let mut samples = 0u64;

    writeln!(
        out,
        "# HELP deploylens_events_total Stored events by repository, environment, event type and status."
    )?;
    writeln!(out, "# TYPE deploylens_events_total counter")?;
    for (key, buckets) in &events {
        let mut total = 0.0;
        let mut it = buckets.iter().peekable();
        for t in &steps {
            // A sample at t counts the events of every bucket that ended by t.
            while let Some((b, v)) = it.peek() {
                if **b + step <= *t {
                    total += v[0];
                    it.next();
                } else {
                    break;
                }
            }
            writeln!(out, "deploylens_events_total{{{}}} {total} {t}", labels(key))?;
            samples += 1;
        }
    }

    let day = 86_400 / step;
    let window = [("window".to_string(), "24h".to_string())];
    for (name, help, pick) in [
        (
            "deploylens_deployments",
            "Completed deployments in the window.",
            0usize,
        ),
        (
            "deploylens_deployment_failures",
            "Failed deployments in the window.",
            1,
        ),
        (
            "deploylens_deployment_failure_ratio",
            "Failed / completed deployments in the window, 0 to 1.",
            2,
        ),
    ] {
        writeln!(out, "# HELP {name} {help}")?;
        writeln!(out, "# TYPE {name} gauge")?;
        for (key, buckets) in &deploys {
            let mut key = key.clone();
            key.extend(window.iter().cloned());
            for t in &steps {
                let from = t - day.max(1) * step;
                let (n, failed) = buckets
                    .range(from..*t)
                    .fold((0.0, 0.0), |(n, f), (_, v)| (n + v[0], f + v[1]));
                let value = match pick {
                    0 => Some(n),
                    1 => Some(failed),
                    _ if n > 0.0 => Some(failed / n),
                    _ => None,
                };
                if let Some(v) = value {
                    writeln!(out, "{name}{{{}}} {v} {t}", labels(&key))?;
                    samples += 1;
                }
            }
        }
    }
    writeln!(out, "# EOF")?;
    Ok(samples)
}

/// Runs a query grouped by labels and a `bucket` (Unix seconds), returning per label set the
/// values of `value_columns` per bucket.
async fn hourly(
    engine: &Engine,
    sql: &str,
    label_columns: &[&str],
    value_columns: &[&str],
) -> Result<BTreeMap<Key, BTreeMap<i64, Vec<f64>>>, QueryError> {
    let batches = engine.sql_collect(sql).await?;
    let mut out: BTreeMap<Key, BTreeMap<i64, Vec<f64>>> = BTreeMap::new();
    for r in Rows::new(&batches).iter() {
        let Some(bucket) = r.f64("bucket") else { continue };
        let key: Key = label_columns
            .iter()
            .map(|c| (c.to_string(), r.str(c).unwrap_or_default()))
            .collect();
        let values = value_columns.iter().map(|c| r.f64(c).unwrap_or(0.0)).collect();
        out.entry(key).or_default().insert(bucket as i64, values);
    }
    Ok(out)
}
