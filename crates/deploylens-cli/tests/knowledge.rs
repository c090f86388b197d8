//! Failure knowledge through the public interfaces: `fingerprint`, `fixes`, `knowledge
//! export`, the repeat-failure queries and `GET /api/fixes` over a real socket.

mod common;

use common::*;

#[test]
fn fingerprint_groups_the_same_failure_and_reads_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let lines = fingerprint_json(
        &[],
        &[
            "ERROR: Health check timeout after 30s",
            "2025-11-02T10:00:00Z health check timeout after 45s",
            "secret DATABASE_URL not found",
        ],
    );
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["fingerprint"], lines[1]["fingerprint"]);
    assert_ne!(lines[0]["fingerprint"], lines[2]["fingerprint"]);
    assert_eq!(lines[0]["template"], "health check timeout after <duration>");
    let text = run(dir.path(), &["fingerprint", "--text", "Port 8080 already in use"]);
    assert!(text.contains("\tport <port> already in use"), "{text}");
}

/// Whether any string in `v` contains `text`.
fn holds_text(v: &serde_json::Value, text: &str) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains(text),
        serde_json::Value::Array(a) => a.iter().any(|x| holds_text(x, text)),
        serde_json::Value::Object(o) => o.values().any(|x| holds_text(x, text)),
        _ => false,
    }
}

#[test]
fn fixes_answers_with_past_fixes_best_first() {
    let dir = tempfile::tempdir().unwrap();
    ingest_json(dir.path(), &[&ecosystem()]);
    let text = run(
        dir.path(),
        &[
            "fixes",
            "ERROR: Health check timeout after 90s",
            "--format",
            "json",
            "--limit",
            "3",
        ],
    );
    let hits: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(hits.len(), 3);
    assert!(
        hits.iter()
            .all(|h| h["why"] == "same fingerprint" && h["fix"].as_str().unwrap().contains("start_period"))
    );
    assert!(
        hits.windows(2)
            .all(|w| w[0]["score"].as_f64() >= w[1]["score"].as_f64())
    );
    // Each result points at the line it came from, and at its event.
    for h in &hits {
        let file = h["source_file"].as_str().unwrap();
        let line = h["source_line"].as_u64().unwrap();
        // The test data holds invalid UTF-8 on purpose, on other lines.
        let text = String::from_utf8_lossy(&std::fs::read(file).unwrap()).into_owned();
        let raw = text.lines().nth(line as usize - 1).unwrap();
        let first_error = h["error"].as_str().unwrap().split(" | ").next().unwrap();
        let event: serde_json::Value = serde_json::from_str(raw).unwrap();
        assert!(holds_text(&event, first_error), "{file}:{line} is {raw}");
        let id = h["event_id"].as_str().unwrap();
        let found = sql(
            dir.path(),
            &format!("SELECT source_line FROM events WHERE event_id = '{id}'"),
        );
        assert_eq!(found[0]["source_line"].as_u64(), Some(line));
    }
    // A reworded error still finds the volume fix by its words.
    let text = run(
        dir.path(),
        &[
            "fixes",
            "could not mount volume: directory /opt/data not found",
            "--format",
            "json",
        ],
    );
    let hits: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert!(
        hits[0]["template"]
            .as_str()
            .unwrap()
            .contains("volume mount failed"),
        "{text}"
    );
    assert!(hits[0]["why"].as_str().unwrap().starts_with("similar words"));
    let human = run(dir.path(), &["fixes", "Health check timeout after 5s"]);
    assert!(
        human.contains("fix:") && human.contains("same fingerprint"),
        "{human}"
    );
}

#[test]
fn knowledge_export_writes_one_line_per_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    ingest_json(dir.path(), &[&ecosystem()]);
    let out = dir
        .path()
        .join("repo/.chora/memory/knowledge/deployment-failures.jsonl");
    run(dir.path(), &["knowledge", "export", "-o", &out.to_string_lossy()]);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let fingerprints = sql(
        dir.path(),
        "SELECT count(DISTINCT error_fingerprint) AS n FROM events",
    );
    assert_eq!(lines.len() as i64, fingerprints[0]["n"].as_i64().unwrap());
    let health = lines
        .iter()
        .find(|l| l["template"] == "health check timeout after <duration>")
        .expect("health check line");
    assert_eq!(health["occurrences"], 6);
    assert_eq!(health["repositories"].as_array().unwrap().len(), 4);
    assert!(health["fixes"].as_array().unwrap().len() >= 3);
    assert!(health["median_resolution_seconds"].as_f64().is_some());
    // The latest occurrence, by file, line and event id.
    let latest = sql(
        dir.path(),
        &format!(
            "SELECT source_file, source_line, event_id FROM events WHERE error_fingerprint = '{}' ORDER BY timestamp DESC LIMIT 1",
            health["fingerprint"].as_str().unwrap()
        ),
    );
    for k in ["source_file", "source_line", "event_id"] {
        assert_eq!(health[k], latest[0][k], "{k}");
    }
}

#[test]
fn repeat_failures_and_ratio_agree() {
    let dir = tempfile::tempdir().unwrap();
    ingest_json(dir.path(), &[&ecosystem()]);
    let repeats: Vec<serde_json::Value> = serde_json::from_str(&run(
        dir.path(),
        &["report", "repeat_failures", "--window", "all", "--format", "json"],
    ))
    .unwrap();
    let ratio: Vec<serde_json::Value> = serde_json::from_str(&run(
        dir.path(),
        &["report", "repeat_ratio", "--window", "all", "--format", "json"],
    ))
    .unwrap();
    let total_repeats: i64 = ratio.iter().map(|r| r["repeats"].as_i64().unwrap()).sum();
    assert_eq!(total_repeats, repeats.len() as i64);
    // The first occurrence of a fingerprint is never a repeat.
    assert!(repeats.iter().all(|r| r["occurrence"].as_i64().unwrap() >= 2));
    let health: Vec<_> = repeats
        .iter()
        .filter(|r| r["error_template"] == "health check timeout after <duration>")
        .collect();
    assert!(!health.is_empty() && health.iter().all(|r| r["occurrences"].as_i64().unwrap() >= 2));
}

#[test]
fn api_fixes_over_a_real_socket() {
    let dir = tempfile::tempdir().unwrap();
    let eco = dir.path().join("eco");
    copy_tree(&ecosystem(), &eco);
    let server = Server::start(&dir.path().join("data"), &eco, &[]);
    let (status, body) = http_get(
        &server.addr,
        "/api/fixes?q=Health%20check%20timeout%20after%2012s&limit=2",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["results"].as_array().unwrap().len(), 2);
    assert_eq!(v["results"][0]["why"], "same fingerprint");
    assert!(
        v["results"][0]["source_file"]
            .as_str()
            .unwrap()
            .ends_with("deployment.jsonl")
    );
    assert!(v["results"][0]["source_line"].as_u64().unwrap() >= 1);
    assert_eq!(v["results"][0]["event_id"].as_str().unwrap().len(), 32);
    let (status, body) = http_get(&server.addr, "/api/fixes").unwrap();
    assert_eq!(status, 400);
    assert!(body.contains("missing q"));
    let (status, _) = http_get(&server.addr, "/api/fixes?q=x&limit=0").unwrap();
    assert_eq!(status, 400);
    assert!(server.terminate().success());
}

/// Runs `deploylens fingerprint ARGS` over `lines` on standard input; one JSON object per line.
fn fingerprint_json(args: &[&str], lines: &[&str]) -> Vec<serde_json::Value> {
    let all: Vec<&str> = ["fingerprint", "--format", "json"]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    let out = run_with_stdin(&all, (lines.join("\n") + "\n").as_bytes());
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn fingerprint_learns_templates_from_its_input_and_explains_them() {
    let lines = [
        "Accepted publickey for alice from 10.0.0.1 port 52311 ssh2",
        "Accepted publickey for bob from 10.0.0.9 port 40112 ssh2",
        "Accepted publickey for carol from 10.0.0.7 port 40113 ssh2",
    ];
    let learned = fingerprint_json(&["--explain"], &lines);
    assert_eq!(learned.len(), 3);
    assert!(
        learned
            .iter()
            .all(|l| l["fingerprint"] == learned[0]["fingerprint"])
    );
    assert_eq!(
        learned[0]["template"],
        "accepted publickey for <*> from <ip> port <port> ssh2"
    );
    let why = learned[1]["explain"].as_array().unwrap();
    let user = why
        .iter()
        .find(|e| e["as"] == "<*>")
        .expect("the user name is learned");
    assert_eq!(user["word"], "bob");
    assert!(
        user["why"].as_str().unwrap().contains("alice, bob, carol"),
        "{user}"
    );
    assert!(why.iter().any(|e| e["as"] == "<ip>"));

    // Each line alone, by the rules: three fingerprints, each the one SQL and ingest give.
    let alone = fingerprint_json(&["--per-line"], &lines);
    let dir = tempfile::tempdir().unwrap();
    ingest_json(dir.path(), &[&ecosystem()]);
    for (line, got) in lines.iter().zip(&alone) {
        let want = sql(dir.path(), &format!("SELECT fingerprint('{line}') AS f"));
        assert_eq!(got["fingerprint"], want[0]["f"], "{line}");
    }
    assert_ne!(alone[0]["fingerprint"], alone[1]["fingerprint"]);
    // The group takes its first line's own fingerprint.
    assert_eq!(learned[0]["fingerprint"], alone[0]["fingerprint"]);
}
