//! The foundation, end to end through the `deploylens` binary: discovery, validation, the
//! store, SQL and the canned queries on the hand-checked testdata ecosystem, whose expected
//! figures were computed independently (testdata/expected_figures.py, numpy).

mod common;

use std::collections::BTreeMap;
use std::io::Write;

use common::*;
use serde_json::Value;

fn report(data_dir: &std::path::Path, name: &str) -> Vec<Value> {
    let text = run(data_dir, &["report", name, "--window", "all", "--format", "json"]);
    serde_json::from_str::<Vec<Value>>(&text).expect("report json")
}

fn by_repo_env(rows: Vec<Value>) -> BTreeMap<(String, String), Value> {
    rows.into_iter()
        .map(|r| {
            (
                (
                    r["repository"].as_str().unwrap().to_string(),
                    r["environment"].as_str().unwrap().to_string(),
                ),
                r,
            )
        })
        .collect()
}

#[test]
fn testdata_ingests_to_the_expected_events_and_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let want = expected();
    let summary = ingest_json(dir.path(), &[&ecosystem()]);
    assert_eq!(summary["events"], want["events_total"]);
    assert_eq!(summary["duplicates"], want["duplicates"]);
    assert_eq!(summary["rejects"], want["rejects_total"]);
    assert_eq!(summary["rejects_by_reason"], want["rejects_by_reason"]);
    assert_eq!(summary["blank_lines"], want["blank_lines"]);
    assert_eq!(
        summary["files"],
        Value::from(want["files"].as_array().unwrap().len())
    );

    let counts = sql(
        dir.path(),
        "SELECT repository, count(*) AS n FROM events GROUP BY repository",
    );
    let counts: BTreeMap<String, Value> = counts
        .into_iter()
        .map(|r| (r["repository"].as_str().unwrap().to_string(), r["n"].clone()))
        .collect();
    let want_counts: BTreeMap<String, Value> = want["events_by_repository"]
        .as_object()
        .unwrap()
        .clone()
        .into_iter()
        .collect();
    assert_eq!(counts, want_counts);

    // Every bad line is in rejects, at its file and line, with its reason.
    let root = ecosystem();
    let rejects = sql(
        dir.path(),
        "SELECT source_file, source_line, reason, raw, message FROM rejects ORDER BY source_file, source_line",
    );
    let got: Vec<(String, i64, String)> = rejects
        .iter()
        .map(|r| {
            let file = r["source_file"].as_str().unwrap();
            let rel = std::path::Path::new(file)
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (
                rel,
                r["source_line"].as_i64().unwrap(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut wanted: Vec<(String, i64, String)> = want["rejects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["file"].as_str().unwrap().to_string(),
                r["line"].as_i64().unwrap(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    wanted.sort();
    assert_eq!(got, wanted);
    assert!(
        rejects
            .iter()
            .all(|r| !r["raw"].as_str().unwrap().is_empty() && !r["message"].as_str().unwrap().is_empty())
    );

    // Legacy records: repository from the folder, no duration.
    let legacy = sql(
        dir.path(),
        "SELECT DISTINCT repository, count(*) OVER () AS n FROM events WHERE repository_source = 'path' AND duration_seconds IS NULL",
    );
    assert_eq!(legacy.len(), 1);
    assert_eq!(legacy[0]["repository"], "chora-base");
    assert_eq!(legacy[0]["n"], want["legacy_events"]);

    // Unknown fields are kept in `extra`; resolution times are found at the top level and in metadata.
    for e in want["events_with_extra_fields"].as_array().unwrap() {
        let file = root.join(e["file"].as_str().unwrap());
        let rows = sql(
            dir.path(),
            &format!(
                "SELECT extra FROM events WHERE source_file = '{}' AND source_line = {}",
                file.display(),
                e["line"]
            ),
        );
        let extra: Value = serde_json::from_str(rows[0]["extra"].as_str().unwrap()).unwrap();
        for key in e["keys"].as_array().unwrap() {
            assert!(
                extra.get(key.as_str().unwrap()).is_some(),
                "{key} missing from {extra}"
            );
        }
    }
    let resolutions = sql(
        dir.path(),
        "SELECT count(*) AS n FROM events WHERE resolution_time_seconds IS NOT NULL",
    );
    assert_eq!(
        resolutions[0]["n"],
        Value::from(want["resolution_times"].as_array().unwrap().len())
    );
    let deployments = sql(
        dir.path(),
        "SELECT count(*) AS n FROM deployments WHERE status <> 'in_progress'",
    );
    assert_eq!(deployments[0]["n"], want["deployments_total"]);
}

#[test]
fn canned_queries_agree_with_the_independent_computation() {
    let dir = tempfile::tempdir().unwrap();
    ingest_json(dir.path(), &[&ecosystem()]);
    let want = expected();
    let success = by_repo_env(report(dir.path(), "success_rate"));
    let durations = by_repo_env(report(dir.path(), "duration_percentiles"));
    let uptime = by_repo_env(report(dir.path(), "uptime"));
    let restore = by_repo_env(report(dir.path(), "time_to_restore"));
    let first = by_repo_env(report(dir.path(), "first_deployment"));
    let mut checked = 0;
    for (repo, envs) in want["by_repository_environment"].as_object().unwrap() {
        for (env, w) in envs.as_object().unwrap() {
            let key = (repo.clone(), env.clone());
            let ctx = format!("{repo} {env}");
            if w["deployments"].as_i64().unwrap() > 0 {
                let s = &success[&key];
                assert_eq!(s["deployments"], w["deployments"], "{ctx}");
                assert_eq!(s["successes"], w["successes"], "{ctx}");
                assert_eq!(s["failures"], w["failures"], "{ctx}");
                assert!(
                    close(s["success_ratio"].as_f64(), w["success_ratio"].as_f64()),
                    "{ctx}"
                );
                assert_eq!(
                    first[&key]["first_deployment_at"].as_str().map(normalize_ts),
                    w["first_deployment"].as_str().map(normalize_ts),
                    "{ctx}"
                );
            }
            match durations.get(&key) {
                Some(d) => {
                    for p in ["p50", "p95", "p99"] {
                        let got = d[format!("{p}_seconds")].as_f64();
                        assert!(close(got, w[p].as_f64()), "{ctx} {p}: {got:?} vs {}", w[p]);
                    }
                }
                None => assert!(
                    w["p50"].is_null(),
                    "{ctx}: no durations but expected {}",
                    w["p50"]
                ),
            }
            match uptime.get(&key) {
                Some(u) => assert!(close(u["uptime_ratio"].as_f64(), w["uptime"].as_f64()), "{ctx}"),
                None => assert!(w["uptime"].is_null(), "{ctx}"),
            }
            match restore.get(&key) {
                Some(r) => {
                    assert!(
                        close(
                            r["median_restore_seconds"].as_f64(),
                            w["time_to_restore_median"].as_f64()
                        ),
                        "{ctx}"
                    );
                    assert_eq!(
                        r["open_streaks"].as_i64().unwrap() > 0,
                        !w["open_failure_streak_since"].is_null(),
                        "{ctx}"
                    );
                }
                None => assert!(
                    w["time_to_restore_median"].is_null() && w["open_failure_streak_since"].is_null(),
                    "{ctx}"
                ),
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 10,
        "only {checked} repository x environment pairs checked"
    );
}

/// `2025-11-04T07:30:00Z` and `2025-11-04T07:30:00.000Z` are the same instant.
fn normalize_ts(s: &str) -> String {
    s.replace(".000000Z", "Z").replace(".000Z", "Z")
}

#[test]
fn every_canned_query_runs_on_testdata_and_on_an_empty_store() {
    let full = tempfile::tempdir().unwrap();
    ingest_json(full.path(), &[&ecosystem()]);
    let empty = tempfile::tempdir().unwrap();
    let empty_root = tempfile::tempdir().unwrap();
    ingest_json(empty.path(), &[empty_root.path()]);
    let list = run(full.path(), &["report", "--list"]);
    let names: Vec<&str> = list.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(names.len() >= 10, "{list}");
    for name in names {
        for (dir, window) in [(full.path(), "all"), (full.path(), "7d"), (empty.path(), "30d")] {
            run(
                dir,
                &[
                    "report",
                    name,
                    "--window",
                    window,
                    "--as-of",
                    "2025-11-15",
                    "--format",
                    "json",
                ],
            );
        }
    }
    // The summary (no name) prints the main reports.
    let summary = run(
        full.path(),
        &["report", "--window", "30d", "--as-of", "2025-11-15"],
    );
    assert!(
        summary.contains("== dora") && summary.contains("chora-compose"),
        "{summary}"
    );
}

#[test]
fn reingest_adds_nothing_and_appended_lines_are_added_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let eco = tempfile::tempdir().unwrap();
    copy_tree(&ecosystem(), eco.path());
    let first = ingest_json(dir.path(), &[eco.path()]);
    assert_eq!(first["events"], 80);

    let again = ingest_json(dir.path(), &[eco.path()]);
    assert_eq!(
        (
            again["events"].as_u64(),
            again["rejects"].as_u64(),
            again["lines"].as_u64()
        ),
        (Some(0), Some(0), Some(0))
    );

    let file = eco
        .path()
        .join("chora-compose/.chora/memory/events/deployment.jsonl");
    let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
    for i in 0..10 {
        writeln!(
            f,
            r#"{{"timestamp":"2025-11-20T10:{i:02}:00Z","event_type":"deployment","repository":"chora-compose","environment":"staging","version":"v9.9.{i}","status":"success","duration_seconds":{}}}"#,
            60 + i
        )
        .unwrap();
    }
    drop(f);
    let third = ingest_json(dir.path(), &[eco.path()]);
    assert_eq!(third["events"], 10);
    assert_eq!(third["lines"], 10);
    let total = sql(dir.path(), "SELECT count(*) AS n FROM events");
    assert_eq!(total[0]["n"], 90);
    let numbered = sql(
        dir.path(),
        "SELECT min(source_line) AS lo, max(source_line) AS hi FROM events WHERE version LIKE 'v9.9.%'",
    );
    let lines_before = std::fs::read_to_string(&file).unwrap().lines().count() as i64 - 10;
    assert_eq!(numbered[0]["lo"].as_i64(), Some(lines_before + 1));
    assert_eq!(numbered[0]["hi"].as_i64(), Some(lines_before + 10));
}

#[test]
fn over_long_lines_are_rejected_with_their_length_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let eco = tempfile::tempdir().unwrap();
    let events = eco.path().join("big-repo/.chora/memory/events");
    std::fs::create_dir_all(&events).unwrap();
    let good = r#"{"timestamp":"2025-11-20T10:00:00Z","event_type":"backup","repository":"big-repo","environment":"production","version":"v1","status":"success","duration_seconds":3}"#;
    let long = format!(r#"{{"notes":"{}"}}"#, "x".repeat(5000));
    std::fs::write(
        events.join("deployment.jsonl"),
        format!("{good}\n{long}\n{}\n", good.replace("10:00", "11:00")),
    )
    .unwrap();
    let summary = run(
        dir.path(),
        &[
            "ingest",
            "--json",
            "--max-line-bytes",
            "1000",
            &eco.path().to_string_lossy(),
        ],
    );
    let summary: Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["events"], 2);
    let rows = sql(
        dir.path(),
        "SELECT source_line, source_offset, reason, raw_bytes, length(raw) AS kept FROM rejects",
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["reason"], "line_too_long");
    assert_eq!(rows[0]["source_line"], 2);
    assert_eq!(rows[0]["source_offset"].as_u64(), Some(good.len() as u64 + 1));
    assert_eq!(rows[0]["raw_bytes"].as_u64(), Some(long.len() as u64));
    assert!(rows[0]["kept"].as_u64().unwrap() <= 4096);
}

#[test]
fn discovery_skips_vendored_folders_and_does_not_follow_symlinks_unless_asked() {
    let eco = tempfile::tempdir().unwrap();
    copy_tree(
        &ecosystem().join("chora-compose"),
        &eco.path().join("chora-compose"),
    );
    let outside = tempfile::tempdir().unwrap();
    copy_tree(
        &ecosystem().join("chora-workspace"),
        &outside.path().join("chora-workspace"),
    );
    std::os::unix::fs::symlink(outside.path().join("chora-workspace"), eco.path().join("linked")).unwrap();
    copy_tree(
        &ecosystem().join("chora-base"),
        &eco.path().join("node_modules/chora-base"),
    );

    let plain = tempfile::tempdir().unwrap();
    let s = ingest_json(plain.path(), &[eco.path()]);
    assert_eq!(s["files"], 1, "{s}");
    let followed = tempfile::tempdir().unwrap();
    let out = run(
        followed.path(),
        &[
            "ingest",
            "--json",
            "--follow-symlinks",
            &eco.path().to_string_lossy(),
        ],
    );
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["files"], 2, "{s}");
    // A missing root is reported and the run goes on.
    let out = run_raw(
        plain.path(),
        &[
            "ingest",
            "/nonexistent/deploylens-root",
            &eco.path().to_string_lossy(),
        ],
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/deploylens-root"));
}

#[test]
fn validate_prints_file_line_reason_and_fails_on_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let bad = ecosystem().join("chora-indexer/.chora/memory/events/deployment.jsonl");
    let out = run_raw(dir.path(), &["validate", &bad.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 12, "{text}");
    assert!(
        text.contains(&format!("{}:11: bad_enum:", bad.display())),
        "{text}"
    );
    let good = ecosystem().join("chora-compose/.chora/memory/events/deployment.jsonl");
    let out = run_raw(dir.path(), &["validate", &good.to_string_lossy()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let legacy = ecosystem().join("chora-base/.chora/memory/events/deployment.jsonl");
    assert_eq!(
        run_raw(dir.path(), &["validate", &legacy.to_string_lossy()])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        run_raw(
            dir.path(),
            &["validate", "--no-legacy", &legacy.to_string_lossy()]
        )
        .status
        .code(),
        Some(1)
    );
}

#[test]
fn ad_hoc_sql_is_read_only_and_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    ingest_json(dir.path(), &[&ecosystem()]);
    for attack in [
        "CREATE TABLE t AS SELECT 1",
        "DROP VIEW deployments",
        "INSERT INTO events SELECT * FROM events",
        "COPY (SELECT 1) TO '/tmp/deploylens-copy.csv'",
        "SET datafusion.execution.batch_size = 1",
        "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'",
        "SELECT * FROM '/etc/passwd'",
    ] {
        let out = run_raw(dir.path(), &["sql", attack]);
        assert_eq!(out.status.code(), Some(2), "{attack} was accepted");
        assert!(
            String::from_utf8_lossy(&out.stderr).starts_with("error:"),
            "{attack}"
        );
    }
    assert!(!std::path::Path::new("/tmp/deploylens-copy.csv").exists());
    let out = run_raw(tempfile::tempdir().unwrap().path(), &["sql", "SELECT 1"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("deploylens ingest"),
        "the error says what to do"
    );
}

#[test]
fn exact_percentile_cont_in_ad_hoc_sql() {
    let dir = tempfile::tempdir().unwrap();
    ingest_json(dir.path(), &[&ecosystem()]);
    let rows = sql(
        dir.path(),
        "SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY x) AS a, percentile_cont(x, 0.95) AS b, \
         quantile_cont(x, 0.95) AS c, percentile_cont(0.95) WITHIN GROUP (ORDER BY x DESC) AS d \
         FROM (SELECT CAST(value AS DOUBLE) AS x FROM range(1, 101)) AS t",
    );
    assert_eq!(rows[0]["a"].as_f64(), Some(95.05));
    assert_eq!(rows[0]["b"].as_f64(), Some(95.05));
    assert_eq!(rows[0]["c"].as_f64(), Some(95.05));
    assert!(close(rows[0]["d"].as_f64(), Some(5.95)));
}

#[test]
fn json_fields_of_metadata_are_reachable_in_ad_hoc_sql() {
    let dir = tempfile::tempdir().unwrap();
    ingest_json(dir.path(), &[&ecosystem()]);
    let rows = sql(
        dir.path(),
        "SELECT repository, metadata->>'backup_dir' AS dir, json_get_int(metadata, 'size_bytes') AS size \
         FROM events WHERE repository = 'chora-compose' AND event_type = 'backup'",
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["dir"], "/var/backups/chora-compose/2025-11-04");
    assert_eq!(rows[0]["size"], 48213760);
    // A key that is not there is null, not an error.
    let missing = sql(
        dir.path(),
        "SELECT count(json_get_str(metadata, 'no_such_key')) AS n FROM events",
    );
    assert_eq!(missing[0]["n"], 0);
}
