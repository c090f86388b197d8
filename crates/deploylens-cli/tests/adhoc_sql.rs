//! Ad-hoc SQL as an engineer used to DuckDB or Postgres writes it: the query from a file or
//! standard input, functions they reach for, errors that say what was meant, warnings for
//! values a column never holds, one JSON document per `report`, and a closed pipe that ends a
//! command quietly.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;

fn store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    ingest_json(dir.path(), &[&ecosystem()]);
    dir
}

fn stderr_of(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn the_query_comes_from_an_argument_a_file_or_standard_input() {
    let dir = store();
    let direct = sql(dir.path(), "SELECT count(*) AS n FROM rejects");

    let commented = run(
        dir.path(),
        &[
            "sql",
            "-f",
            "json",
            "-- how many rejects\nSELECT count(*) AS n FROM rejects",
        ],
    );
    let commented: serde_json::Value = serde_json::from_str(&commented).unwrap();
    assert_eq!(commented[0]["n"], direct[0]["n"]);

    let file = dir.path().join("q.sql");
    std::fs::write(&file, "SELECT count(*) AS n FROM rejects\n").unwrap();
    let from_file = run(
        dir.path(),
        &["sql", "-f", "json", "--file", file.to_str().unwrap()],
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&from_file).unwrap()[0]["n"],
        direct[0]["n"]
    );

    let data = dir.path().to_str().unwrap();
    let out = run_with_stdin(
        &["--data-dir", data, "sql", "-", "-f", "csv"],
        b"SELECT count(*) AS n FROM rejects",
    );
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("n\n{}\n", direct[0]["n"])
    );

    let neither = run_raw(dir.path(), &["sql"]);
    assert!(!neither.status.success());

    // Reading the catalog is read-only too.
    let described = run(dir.path(), &["sql", "-f", "csv", "DESCRIBE deployments"]);
    assert!(
        described.contains("services") && described.contains("ingested_at"),
        "{described}"
    );
    let tables = run(dir.path(), &["sql", "-f", "csv", "SHOW TABLES"]);
    assert!(tables.contains("failure_occurrences"), "{tables}");
}

#[test]
fn errors_name_what_was_meant_and_warnings_name_the_allowed_values() {
    let dir = store();
    let typo = run_raw(dir.path(), &["sql", "SELECT * FROM deploymnts"]);
    assert_eq!(typo.status.code(), Some(2));
    let text = stderr_of(&typo);
    assert!(text.contains("did you mean deployments?"), "{text}");
    assert_eq!(text.matches("error:").count(), 1, "printed once: {text}");

    let canned = stderr_of(&run_raw(dir.path(), &["sql", "SELECT * FROM failed_deployments"]));
    assert!(
        canned.contains("deploylens report failed_deployments"),
        "{canned}"
    );

    let wrong = run_raw(
        dir.path(),
        &[
            "sql",
            "-f",
            "json",
            "SELECT count(*) AS n FROM deployments WHERE status = 'failed' AND environment IN ('prod')",
        ],
    );
    assert!(wrong.status.success());
    let text = stderr_of(&wrong);
    assert!(
        text.contains("status is never 'failed'; its values are success, failure, in_progress"),
        "{text}"
    );
    assert!(text.contains("environment is never 'prod'"), "{text}");
    let right = run_raw(
        dir.path(),
        &["sql", "SELECT count(*) FROM deployments WHERE status = 'failure'"],
    );
    assert!(stderr_of(&right).is_empty(), "{}", stderr_of(&right));
}

#[test]
fn functions_from_duckdb_and_postgres_answer_over_the_events() {
    let dir = store();
    let rows = sql(
        dir.path(),
        "SELECT repository, arg_max(version, timestamp) AS latest, \
                epoch(max(timestamp) - min(timestamp)) AS span_s, \
                date_diff('second', min(timestamp), max(timestamp)) AS span_boundaries, \
                strftime(max(timestamp), '%G-W%V') AS last_week \
         FROM deployments GROUP BY repository ORDER BY repository",
    );
    let check = sql(
        dir.path(),
        "SELECT repository, first_value(version ORDER BY timestamp DESC) AS latest, \
                CAST(max(timestamp) AS BIGINT) - CAST(min(timestamp) AS BIGINT) AS span_us \
         FROM deployments GROUP BY repository ORDER BY repository",
    );
    assert!(!rows.is_empty());
    for (r, c) in rows.iter().zip(&check) {
        assert_eq!(r["latest"], c["latest"], "{r}");
        let span_us = c["span_us"].as_f64().unwrap();
        assert!(
            (r["span_s"].as_f64().unwrap() - span_us / 1e6).abs() < 1e-6,
            "{r} {c}"
        );
        assert!(r["last_week"].as_str().unwrap().contains("-W"), "{r}");
    }
    let extracted = sql(
        dir.path(),
        "SELECT regexp_extract(errors[1], 'after ([0-9]+)s', 1) AS secs FROM events \
         WHERE errors[1] LIKE '%timeout after %s%' LIMIT 1",
    );
    assert!(
        extracted[0]["secs"].as_str().unwrap().parse::<u32>().is_ok(),
        "{extracted:?}"
    );
}

#[test]
fn order_by_all_orders_by_every_column_of_the_select_list() {
    let dir = store();
    let all = sql(
        dir.path(),
        "SELECT environment, repository, count(*) AS n FROM deployments GROUP BY ALL ORDER BY ALL DESC",
    );
    let positions = sql(
        dir.path(),
        "SELECT environment, repository, count(*) AS n FROM deployments GROUP BY 1, 2 ORDER BY 1 DESC, 2 DESC, 3 DESC",
    );
    assert!(all.len() > 5);
    assert_eq!(all, positions);
}

/// Each DuckDB or Postgres form gives what a plainer formulation DataFusion plans gives.
#[test]
fn duckdb_and_postgres_forms_agree_with_their_plain_equivalents() {
    let dir = store();
    let pairs = [
        (
            "SELECT * FROM (SELECT repository, status FROM deployments) \
             PIVOT (count(*) FOR status IN ('success', 'failure' AS failed)) ORDER BY repository",
            "SELECT repository, count(*) FILTER (WHERE status = 'success') AS success, \
             count(*) FILTER (WHERE status = 'failure') AS failed FROM deployments GROUP BY 1 ORDER BY 1",
        ),
        (
            "SELECT d.repository, s.service FROM deployments AS d CROSS JOIN unnest(d.services) AS s(service) ORDER BY ALL",
            "SELECT repository, service FROM (SELECT repository, unnest(services) AS service FROM deployments) ORDER BY 1, 2",
        ),
        (
            "SELECT count(*) AS n FROM deployments, unnest(services) AS service",
            "SELECT sum(cardinality(services)) AS n FROM deployments",
        ),
        (
            "SELECT substring(error FROM 'after ([0-9]+)s') AS s FROM failure_occurrences ORDER BY 1",
            "SELECT regexp_extract(error, 'after ([0-9]+)s', 1) AS s FROM failure_occurrences ORDER BY 1",
        ),
        (
            "SELECT to_char(timestamp, 'IYYY-\"W\"IW FMDD.MM HH24:MI') AS t FROM deployments ORDER BY 1",
            "SELECT strftime(timestamp, '%G-W%V %-d.%m %H:%M') AS t FROM deployments ORDER BY 1",
        ),
        (
            "SELECT extract(epoch FROM max(timestamp) - min(timestamp)) AS s FROM events",
            "SELECT epoch(max(timestamp)) - epoch(min(timestamp)) AS s FROM events",
        ),
        (
            "SELECT extract(hour FROM timestamp AT TIME ZONE '+02:00') AS local, extract(hour FROM timestamp) AS utc, \
             count(*) AS n FROM deployments GROUP BY 1, 2 ORDER BY ALL",
            "SELECT (extract(hour FROM timestamp) + 2) % 24 AS local, extract(hour FROM timestamp) AS utc, \
             count(*) AS n FROM deployments GROUP BY 1, 2 ORDER BY 1, 2",
        ),
    ];
    for (written, plain) in pairs {
        let got = sql(dir.path(), written);
        let expected = sql(dir.path(), plain);
        assert!(!got.is_empty(), "{written}: no rows to compare");
        assert_eq!(
            serde_json::to_string(&got).unwrap(),
            serde_json::to_string(&expected).unwrap(),
            "{written}"
        );
    }

    // A code with no equivalent is an error naming it, never the code as text.
    let quarter = run_raw(
        dir.path(),
        &["sql", "SELECT to_char(timestamp, 'YYYY-Q') FROM events"],
    );
    assert_eq!(quarter.status.code(), Some(2));
    assert!(
        stderr_of(&quarter).contains("\"Q\" has no equivalent"),
        "{}",
        stderr_of(&quarter)
    );
    let listed = run_raw(
        dir.path(),
        &["sql", "SELECT * FROM events PIVOT (count(*) FOR status IN (ANY))"],
    );
    assert!(
        stderr_of(&listed).contains("list the values"),
        "{}",
        stderr_of(&listed)
    );
}

#[test]
fn several_reports_as_json_are_one_document() {
    let dir = store();
    let text = run(dir.path(), &["report", "-f", "json", "--window", "all"]);
    let doc: serde_json::Value = serde_json::from_str(&text).expect("one JSON document");
    let names: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(
        names,
        ["dora", "duration_percentiles", "success_rate", "time_to_restore"]
    );
    assert!(!doc["success_rate"].as_array().unwrap().is_empty());
}

#[test]
fn a_closed_pipe_ends_a_command_quietly_with_status_0() {
    let dir = store();
    for args in [
        vec![
            "sql",
            "SELECT * FROM events CROSS JOIN (SELECT * FROM range(50)) AS r",
        ],
        vec!["report", "--all", "--window", "all"],
        vec!["ingest", ecosystem().to_str().unwrap()],
    ] {
        let mut child = Command::new(bin())
            .arg("--data-dir")
            .arg(dir.path())
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        // The reader is gone: the next writes fail with EPIPE.
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr_of(&out));
        assert!(stderr_of(&out).is_empty(), "{args:?}: {}", stderr_of(&out));
    }
}

#[test]
fn the_hint_after_ingest_can_be_pasted_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("a store");
    let out = run(&data, &["ingest", ecosystem().to_str().unwrap()]);
    let hint = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("see them with: "))
        .unwrap_or_else(|| panic!("no hint in {out}"));
    let pasted = Command::new("sh")
        .arg("-c")
        .arg(hint.replacen("deploylens", &format!("'{}'", bin().display()), 1))
        .env_remove("DEPLOYLENS_DATA_DIR")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(pasted.status.success(), "{hint}: {}", stderr_of(&pasted));
    assert!(String::from_utf8_lossy(&pasted.stdout).contains("source_line"));
}

#[test]
fn warnings_reach_http_clients_as_headers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &ecosystem(), &[]);
    let (status, headers, _) = http_request(
        &server.addr,
        "POST",
        "/api/sql",
        &[],
        b"SELECT count(*) FROM deployments WHERE status = 'failed'",
    )
    .expect("an answer");
    assert_eq!(status, 200);
    let warning = header(&headers, "x-deploylens-warning").unwrap_or_default();
    assert!(warning.contains("status is never 'failed'"), "{headers:?}");
    server.kill();
}

#[test]
fn deployment_attempts_agree_with_an_independent_count_of_attempts_and_rollbacks() {
    let dir = store();
    let attempts = sql(
        dir.path(),
        "SELECT deployment_id, repository, environment, CAST(timestamp AS BIGINT) AS t, \
                COALESCE(trace_id, version) AS key, attempt, attempts, rolled_back, \
                CAST(rolled_back_at AS BIGINT) AS rolled_back_at \
         FROM deployment_attempts",
    );
    let deployments = sql(
        dir.path(),
        "SELECT deployment_id, repository, environment, CAST(timestamp AS BIGINT) AS t, COALESCE(trace_id, version) AS key FROM deployments",
    );
    let rollbacks = sql(
        dir.path(),
        "SELECT repository, environment, CAST(timestamp AS BIGINT) AS t FROM events WHERE event_type = 'rollback' AND status = 'success'",
    );
    assert_eq!(attempts.len(), deployments.len());
    let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    let n = |v: &serde_json::Value, k: &str| v[k].as_i64();
    // Rolled back: the latest deployment or successful rollback before each rollback, when it
    // is a deployment of the same repository and environment.
    let mut expected = std::collections::BTreeMap::new();
    for r in &rollbacks {
        let (repo, env, t) = (s(r, "repository"), s(r, "environment"), n(r, "t").unwrap());
        let last_deployment = deployments
            .iter()
            .filter(|d| s(d, "repository") == repo && s(d, "environment") == env && n(d, "t").unwrap() <= t)
            .max_by_key(|d| n(d, "t"));
        let earlier_rollback = rollbacks.iter().any(|o| {
            s(o, "repository") == repo
                && s(o, "environment") == env
                && n(o, "t").unwrap() < t
                && last_deployment.is_some_and(|d| n(o, "t").unwrap() >= n(d, "t").unwrap())
        });
        if let (Some(d), false) = (last_deployment, earlier_rollback) {
            expected.insert(s(d, "deployment_id"), t);
        }
    }
    assert!(
        expected.len() >= 3,
        "the test ecosystem has rollbacks: {expected:?}"
    );
    for a in &attempts {
        let id = s(a, "deployment_id");
        assert_eq!(
            a["rolled_back"].as_bool(),
            Some(expected.contains_key(&id)),
            "{a}"
        );
        assert_eq!(n(a, "rolled_back_at"), expected.get(&id).copied(), "{a}");
        let same: Vec<&serde_json::Value> = deployments
            .iter()
            .filter(|d| {
                s(d, "repository") == s(a, "repository")
                    && s(d, "environment") == s(a, "environment")
                    && s(d, "key") == s(a, "key")
            })
            .collect();
        assert_eq!(n(a, "attempts"), Some(same.len() as i64), "{a}");
        let earlier = same.iter().filter(|d| n(d, "t") < n(a, "t")).count() as i64;
        assert_eq!(n(a, "attempt"), Some(earlier + 1), "{a}");
    }
}

#[test]
fn the_demo_gives_each_deployment_its_own_trace_id_and_pods_kubernetes_names() {
    let dir = tempfile::tempdir().unwrap();
    let eco = dir.path().join("eco");
    let data = dir.path().join("data");
    run(
        &data,
        &[
            "demo",
            eco.to_str().unwrap(),
            "--repos",
            "2",
            "--events",
            "20000",
            "--seed",
            "7",
        ],
    );
    run(&data, &["ingest", eco.to_str().unwrap()]);
    let ids = sql(
        &data,
        "SELECT count(*) AS records, count(DISTINCT repository || '/' || trace_id) AS ids, \
                count(DISTINCT repository || '/' || trace_id || '/' || version) AS versions \
         FROM events WHERE event_type = 'deployment' AND trace_id IS NOT NULL AND status <> 'in_progress'",
    );
    // One outcome per trace id: no two deployments share one.
    assert!(ids[0]["records"].as_i64().unwrap() > 500, "{ids:?}");
    assert_eq!(ids[0]["records"], ids[0]["ids"], "{ids:?}");
    assert_eq!(ids[0]["ids"], ids[0]["versions"], "{ids:?}");
    let pods = sql(
        &data,
        "SELECT DISTINCT regexp_extract(errors[1], 'api-[^ ]+') AS pod FROM events WHERE errors[1] LIKE '%container api-%'",
    );
    assert!(!pods.is_empty());
    let alphabet = "bcdfghjklmnpqrstvwxz2456789";
    for p in &pods {
        let pod = p["pod"].as_str().unwrap();
        let parts: Vec<&str> = pod.split('-').collect();
        assert_eq!(parts.len(), 3, "{pod}");
        assert_eq!((parts[1].len(), parts[2].len()), (10, 5), "{pod}");
        assert!(
            parts[1]
                .chars()
                .chain(parts[2].chars())
                .all(|c| alphabet.contains(c)),
            "{pod}"
        );
    }
}

/// The demo's history runs from `--days` before `--end` to the last minutes before it, so that
/// the 1h and 24h windows of a fresh demo hold events; `--end` takes a plain date.
#[test]
fn the_demo_history_reaches_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let eco = dir.path().join("eco");
    let out = run_raw(
        dir.path(),
        &[
            "demo",
            eco.to_str().unwrap(),
            "--repos",
            "4",
            "--events",
            "8000",
            "--days",
            "30",
            "--end",
            "2025-11-15",
            "--bad-fraction",
            "0",
        ],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let data = dir.path().join("data");
    ingest_json(&data, &[&eco]);
    let span = sql(
        &data,
        "SELECT CAST(min(timestamp) AS BIGINT) AS first, CAST(max(timestamp) AS BIGINT) AS last, \
         count(*) FILTER (WHERE timestamp >= TIMESTAMP '2025-11-14T00:00:00Z') AS last_day FROM events",
    );
    let end_us: i64 = 1_763_164_800_000_000; // 2025-11-15T00:00:00Z
    let hour = 3_600_000_000_i64;
    let (first, last) = (
        span[0]["first"].as_i64().unwrap(),
        span[0]["last"].as_i64().unwrap(),
    );
    assert!(last <= end_us && last > end_us - hour, "newest event {last}");
    assert!(
        first >= end_us - 30 * 24 * hour && first < end_us - 29 * 24 * hour,
        "oldest event {first}"
    );
    // 8,000 events over 30 days: about 267 a day, and the last day is not empty.
    assert!(span[0]["last_day"].as_i64().unwrap() > 150, "{span:?}");
}

/// `demo --live` keeps appending valid events at the present time, whole lines only.
#[test]
fn the_live_demo_appends_valid_events_as_they_happen() {
    let dir = tempfile::tempdir().unwrap();
    let eco = dir.path().join("eco");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "demo".to_string(),
            eco.to_string_lossy().into_owned(),
            "--repos".into(),
            "3".into(),
            "--events".into(),
            "300".into(),
            "--bad-fraction".into(),
            "0".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let refused = run_raw(
        dir.path(),
        &args(&["--live", "--rate", "0"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(refused.status.code(), Some(2), "{}", stderr_of(&refused));
    let out = run_raw(
        dir.path(),
        &args(&["--live", "--rate", "25", "--stop-after", "2"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let data = dir.path().join("data");
    let ingested = ingest_json(&data, &[&eco]);
    assert_eq!(ingested["rejects"], 0, "{ingested}");
    let now_us = chrono::Utc::now().timestamp_micros();
    let rows = sql(
        &data,
        &format!(
            "SELECT count(*) AS n, CAST(max(timestamp) AS BIGINT) AS last, \
             count(*) FILTER (WHERE CAST(timestamp AS BIGINT) > {}) AS recent FROM events",
            now_us - 60_000_000
        ),
    );
    // 2 s at 25 moments a second: at least 25 events beyond the 300 of the history.
    assert!(rows[0]["n"].as_i64().unwrap() >= 325, "{rows:?}");
    assert!(rows[0]["recent"].as_i64().unwrap() >= 25, "{rows:?}");
    assert!(
        rows[0]["last"].as_i64().unwrap() <= now_us,
        "no line is written before its time: {rows:?}"
    );
}
