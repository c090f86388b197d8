//! DORA's figures against a conformance suite: the small ecosystems of
//! `testdata/dora/fixtures.json`, each with figures computed by hand and the reason for them,
//! covering what DORA tools are known to get wrong (a change failure rate above 1, incidents
//! taken for failed deployments, retries counted twice, "no data" shown as 0, window edges,
//! offsets, rollbacks, streaks across the window's start).

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

const WINDOW: [&str; 4] = ["--window", "30d", "--as-of", "2025-01-31"];

fn fixtures() -> Vec<Value> {
    let path = repo_root().join("testdata/dora/fixtures.json");
    let text = std::fs::read_to_string(&path).expect("fixtures.json");
    match serde_json::from_str(&text).expect("fixtures.json is JSON") {
        Value::Array(all) => all,
        other => panic!("not a list: {other}"),
    }
}

/// Writes a fixture's events as an ecosystem, one event file per repository, in order.
fn write_ecosystem(root: &Path, events: &[Value]) {
    for event in events {
        let repo = event["repository"].as_str().expect("repository");
        let dir = root.join(repo).join(".chora/memory/events");
        std::fs::create_dir_all(&dir).expect("dir");
        let mut line = serde_json::to_string(event).expect("event");
        line.push('\n');
        let file = dir.join("deployment.jsonl");
        let mut text = std::fs::read_to_string(&file).unwrap_or_default();
        text.push_str(&line);
        std::fs::write(&file, text).expect("write");
    }
}

fn same(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Number(_), _) => close(as_f64(want), as_f64(got)),
        _ => want == got,
    }
}

#[test]
fn every_fixture_gives_its_hand_computed_figures() {
    let all = fixtures();
    assert!(all.len() >= 30, "{} fixtures", all.len());
    let mut failures = Vec::new();
    for f in &all {
        let name = f["name"].as_str().unwrap_or("?");
        let dir = tempfile::tempdir().expect("tmp");
        let eco = dir.path().join("eco");
        write_ecosystem(&eco, f["events"].as_array().expect("events"));
        let data = dir.path().join("data");
        ingest_json(&data, &[&eco]);
        let rejects = sql(&data, "SELECT count(*) AS n FROM rejects");
        assert_eq!(rejects[0]["n"], 0, "{name}: a fixture line was rejected");
        let mut args = vec!["report", "dora", "-f", "json"];
        args.extend(WINDOW);
        let rows: Value = serde_json::from_str(&run(&data, &args)).expect("json");
        let rows = rows.as_array().expect("rows");

        for row in rows {
            for rate in ["change_failure_rate", "rework_rate"] {
                if let Some(r) = as_f64(&row[rate]) {
                    assert!((0.0..=1.0).contains(&r), "{name}: {rate} {r} outside 0..1");
                }
            }
        }
        if let Some(pairs) = f.get("rows").and_then(Value::as_array) {
            let got: Vec<Value> = rows
                .iter()
                .map(|r| serde_json::json!([r["repository"], r["environment"]]))
                .collect();
            if &got != pairs {
                failures.push(format!("{name}: rows {got:?}, expected {pairs:?}"));
            }
        }
        for expected in f["expected"].as_array().expect("expected") {
            let row = rows.iter().find(|r| {
                r["repository"] == expected["repository"] && r["environment"] == expected["environment"]
            });
            let Some(row) = row else {
                failures.push(format!("{name}: no row for {expected}"));
                continue;
            };
            for (column, want) in expected.as_object().expect("object") {
                if !same(want, &row[column]) {
                    failures.push(format!(
                        "{name} ({}): {column} = {}, expected {want}",
                        f["reason"].as_str().unwrap_or(""),
                        row[column]
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A report by week gives, for each week, what that week alone as the window gives; the weeks
/// add up to the whole window. Over HTTP too.
#[test]
fn figures_by_period_are_the_figures_of_each_period_alone() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    ingest_json(&data, &[&ecosystem()]);
    let report = |extra: &[&str]| -> Vec<Value> {
        let mut args = vec!["report", "dora", "-f", "json"];
        args.extend(extra);
        match serde_json::from_str(&run(&data, &args)).expect("json") {
            Value::Array(rows) => rows,
            other => panic!("{other}"),
        }
    };
    let weekly = report(&[
        "--window",
        "30d",
        "--as-of",
        "2025-11-15",
        "--granularity",
        "week",
    ]);
    let whole = report(&["--window", "30d", "--as-of", "2025-11-15"]);
    let mut periods: Vec<(String, String)> = weekly
        .iter()
        .map(|r| {
            (
                r["period_start"].as_str().unwrap_or("").to_string(),
                r["period_end"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    periods.dedup();
    // History starts on Saturday 2025-11-01: that week is cut to it, the last one to --as-of.
    assert_eq!(
        periods,
        [
            ("2025-11-01T00:00:00Z", "2025-11-03T00:00:00Z"),
            ("2025-11-03T00:00:00Z", "2025-11-10T00:00:00Z"),
            ("2025-11-10T00:00:00Z", "2025-11-15T00:00:00Z"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    for (start, end) in &periods {
        let days = (chrono::DateTime::parse_from_rfc3339(end).unwrap()
            - chrono::DateTime::parse_from_rfc3339(start).unwrap())
        .num_days();
        let alone = report(&["--window", &format!("{days}d"), "--as-of", end]);
        let of_period: Vec<Value> = weekly
            .iter()
            .filter(|r| r["period_start"] == start.as_str())
            .map(|r| {
                let mut r = r.clone();
                let o = r.as_object_mut().expect("row");
                o.remove("period_start");
                o.remove("period_end");
                r
            })
            .collect();
        assert_eq!(of_period, alone, "the week from {start}");
    }
    for row in &whole {
        let sum: i64 = weekly
            .iter()
            .filter(|r| r["repository"] == row["repository"] && r["environment"] == row["environment"])
            .map(|r| r["deployments"].as_i64().unwrap_or(0))
            .sum();
        assert_eq!(Some(sum), row["deployments"].as_i64(), "{row}");
    }

    let server = Server::start(&dir.path().join("served"), &ecosystem(), &[]);
    let (status, body) = http_get(
        &server.addr,
        "/api/queries/dora?window=30d&as_of=2025-11-15&granularity=week",
    )
    .expect("http");
    assert_eq!(status, 200, "{body}");
    let served: Vec<Value> = serde_json::from_str(&body).expect("json");
    assert_eq!(served.len(), weekly.len());
    assert_eq!(served[0]["period_end"], "2025-11-03T00:00:00Z");
    let (status, body) = http_get(&server.addr, "/api/queries/dora?granularity=fortnight").expect("http");
    assert_eq!(status, 400, "{body}");
    let (status, body) =
        http_get(&server.addr, "/api/queries/rejects_by_reason?granularity=week").expect("http");
    assert_ne!(status, 200, "{body}");
    server.terminate();
}

/// The bundled ecosystem carries two commit times, one at the top level and one in metadata,
/// one with an offset: lead times computed by hand.
#[test]
fn lead_times_of_the_bundled_ecosystem() {
    let dir = tempfile::tempdir().expect("tmp");
    ingest_json(dir.path(), &[&ecosystem()]);
    let mut args = vec!["report", "dora", "-f", "json"];
    args.extend(["--window", "30d", "--as-of", "2025-11-15"]);
    let rows: Value = serde_json::from_str(&run(dir.path(), &args)).expect("json");
    let lead = |repo: &str| {
        rows.as_array()
            .expect("rows")
            .iter()
            .find(|r| r["repository"] == repo && r["environment"] == "production")
            .map(|r| {
                (
                    r["changes_with_commit_time"].clone(),
                    r["lead_time_median_seconds"].clone(),
                )
            })
    };
    // 13:02:13.5Z - 09:40:00Z
    let compose = lead("chora-compose").expect("row");
    assert_eq!(compose.0, 1);
    assert!(close(as_f64(&compose.1), Some(12_133.5)), "{compose:?}");
    // 2025-11-09T10:04:36.05Z - 2025-11-07T16:30:00+01:00 = 1 d 18 h 34 min 36.05 s
    let workspace = lead("chora-workspace").expect("row");
    assert!(close(as_f64(&workspace.1), Some(153_276.05)), "{workspace:?}");
    assert_eq!(lead("chora-base").expect("row").1, Value::Null);
}
