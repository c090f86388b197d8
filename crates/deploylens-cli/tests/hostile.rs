//! The server under hostile or careless clients, each over a real socket against the real
//! binary: nothing a client sends may abort the process, hold it, or make it lie.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn served(extra: &[&str]) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let eco = dir.path().join("eco");
    copy_tree(&ecosystem(), &eco);
    let server = Server::start(&dir.path().join("data"), &eco, extra);
    (dir, server)
}

fn post_sql(addr: &str, sql: &str, headers: &[(&str, &str)]) -> (u16, Vec<(String, String)>, String) {
    let mut all = vec![("Content-Type", "text/plain")];
    all.extend_from_slice(headers);
    let (status, h, body) = http_request(addr, "POST", "/api/sql", &all, sql.as_bytes()).expect("an answer");
    (status, h, String::from_utf8_lossy(&body).into_owned())
}

fn alive(addr: &str) {
    let (status, _) = http_get(addr, "/healthz").expect("the server answers");
    assert_eq!(status, 200);
}

/// User plus system CPU seconds a process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = stat.rsplit_once(')').unwrap().1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// Peak resident memory of a process, in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap() / 1024.0
}

#[test]
fn deep_sql_gets_a_400_on_every_face_and_kills_nothing() {
    let (dir, server) = served(&[]);
    let deep = format!("SELECT {}", vec!["1"; 2000].join("+"));
    let (status, _, body) = post_sql(&server.addr, &deep, &[]);
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("nests expressions") && body.contains("limit"),
        "{body}"
    );
    alive(&server.addr);
    // A shallower chain is answered.
    let fine = format!("SELECT {} AS n", vec!["1"; 300].join("+"));
    let (status, _, body) = post_sql(&server.addr, &fine, &[]);
    assert_eq!((status, body.contains("300")), (200, true), "{body}");
    // The same from a web page: a cross-site "simple" POST is refused before it is parsed.
    let (status, _, body) = post_sql(&server.addr, &deep, &[("Origin", "http://attacker.example")]);
    assert_eq!(status, 403, "{body}");
    alive(&server.addr);
    // And on the command line, 20,000 terms end with an error, not a signal.
    let deeper = format!("SELECT {}", vec!["1"; 20_000].join("+"));
    let out = run_raw(&dir.path().join("data"), &["sql", &deeper]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("nests expressions"));
    server.kill();
}

#[test]
fn foreign_hosts_and_origins_are_refused_and_allowed_ones_get_cors() {
    let (_dir, server) = served(&["--allowed-origins", "https://grafana.example"]);
    let a = &server.addr;
    let get = |headers: &[(&str, &str)], path: &str, method: &str| {
        http_request_with_host(a, method, path, headers).expect("an answer")
    };
    // DNS rebinding: a name the server was not told about.
    let (status, _, body) = get(
        &[
            ("Host", "attacker.example"),
            ("Origin", "http://attacker.example"),
        ],
        "/api/queries",
        "GET",
    );
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = get(&[("Host", "attacker.example:9464")], "/api/queries", "GET");
    assert_eq!(status, 403);
    // Addressed by IP or localhost: fine.
    assert_eq!(get(&[("Host", a)], "/api/queries", "GET").0, 200);
    assert_eq!(get(&[("Host", "localhost:9464")], "/api/queries", "GET").0, 200);
    // A foreign origin, even with a good Host.
    let (status, _, _) = get(
        &[("Host", a), ("Origin", "https://evil.example")],
        "/api/queries",
        "GET",
    );
    assert_eq!(status, 403);
    // Preflight: refused for a foreign origin, answered for an allowed one.
    let pre = [
        ("Host", a.as_str()),
        ("Origin", "https://evil.example"),
        ("Access-Control-Request-Method", "POST"),
    ];
    assert_eq!(get(&pre, "/api/sql", "OPTIONS").0, 403);
    let pre = [
        ("Host", a.as_str()),
        ("Origin", "https://grafana.example"),
        ("Access-Control-Request-Method", "POST"),
    ];
    let (status, headers, _) = get(&pre, "/api/sql", "OPTIONS");
    assert_eq!(status, 204);
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        Some("https://grafana.example")
    );
    assert!(header(&headers, "access-control-allow-methods").is_some_and(|m| m.contains("POST")));
    let (status, headers, _) = get(
        &[("Host", a), ("Origin", "https://grafana.example")],
        "/api/queries",
        "GET",
    );
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        Some("https://grafana.example")
    );
    server.kill();
}

/// One request with exactly these headers (Host included).
fn http_request_with_host(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<HttpReply> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    Some((status, headers, raw[split + 4..].to_vec()))
}

#[test]
fn slow_and_idle_clients_are_cut_off_and_a_low_fd_limit_leaves_the_collector_working() {
    let dir = tempfile::tempdir().unwrap();
    let eco = dir.path().join("eco");
    copy_tree(&ecosystem(), &eco);
    let mut cmd = Command::new("prlimit");
    cmd.arg("--nofile=256:256")
        .arg(bin())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("serve")
        .arg(&eco)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--header-timeout",
            "2s",
            "--poll",
            "--poll-interval",
            "200ms",
        ]);
    let server = Server::spawn(cmd);
    let a = server.addr.clone();
    // One header byte a second: cut off at the header deadline.
    let mut slow = TcpStream::connect(&a).unwrap();
    let started = Instant::now();
    let mut cut = false;
    for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\n" {
        if slow.write_all(&[*b]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        if started.elapsed() > Duration::from_secs(6) {
            break;
        }
    }
    let mut buf = [0u8; 16];
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let closed = cut || matches!(slow.read(&mut buf), Ok(0) | Err(_));
    assert!(
        closed,
        "a slow client was still connected after {:?}",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    // 300 connections that send nothing, under a limit of 256 descriptors.
    let idle: Vec<TcpStream> = (0..300).filter_map(|_| TcpStream::connect(&a).ok()).collect();
    assert!(idle.len() >= 100, "only {} connections opened", idle.len());
    // The collector still has descriptors: a new event is committed and counted.
    let file = eco.join("chora-base/.chora/memory/events/deployment.jsonl");
    let mut f = fs::OpenOptions::new().append(true).open(&file).unwrap();
    writeln!(
        f,
        r#"{{"timestamp":"2025-11-20T12:00:00Z","event_type":"deployment","repository":"chora-base","environment":"staging","version":"v-fd","status":"success","duration_seconds":5}}"#
    )
    .unwrap();
    drop(f);
    // Once the idle ones are cut (header deadline), the server answers again.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stored = 0.0;
    while Instant::now() < deadline {
        if let Some((200, body)) = http_get(&a, "/metrics") {
            stored = metric_value(&body, "deploylens_store_events").unwrap_or(0.0);
            if stored == 81.0 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        stored, 81.0,
        "the appended event was not committed under the descriptor limit"
    );
    drop(idle);
    assert_eq!(http_get(&a, "/readyz").map(|r| r.0), Some(200));
    server.kill();
}

#[test]
fn abandoned_queries_stop_and_hold_their_slot_until_they_do() {
    let (_dir, server) = served(&["--sql-max-concurrent", "2", "--sql-timeout", "30s"]);
    let a = server.addr.clone();
    let pid = server.child.id();
    let heavy = "SELECT count(*) FROM range(1, 100000000000) WHERE value % 7 = 3";
    // Six clients send a heavy query at once and hang up after 0.2 s.
    let mut clients = Vec::new();
    for _ in 0..6 {
        let mut s = TcpStream::connect(&a).unwrap();
        let req = format!(
            "POST /api/sql HTTP/1.1\r\nHost: {a}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{heavy}",
            heavy.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        clients.push(s);
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut statuses = Vec::new();
    for mut s in clients {
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let mut buf = [0u8; 64];
        if let Ok(n) = s.read(&mut buf) {
            statuses.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        drop(s);
    }
    // The two slots were taken: some of the six were refused at once.
    assert!(
        statuses.iter().filter(|s| s.contains(" 429 ")).count() >= 3,
        "{statuses:?}"
    );
    // Once the clients are gone, their work stops: the process goes quiet within a second.
    std::thread::sleep(Duration::from_millis(1500));
    let before = cpu_seconds(pid);
    std::thread::sleep(Duration::from_secs(3));
    let used = cpu_seconds(pid) - before;
    assert!(
        used < 0.6,
        "{used:.2} CPU seconds used in 3 s after every client hung up"
    );
    // And the slots are free again.
    let (status, _, body) = post_sql(&a, "SELECT 1 AS one", &[]);
    assert_eq!(status, 200, "{body}");
    server.kill();
}

#[test]
fn functions_that_would_allocate_past_the_memory_limit_are_refused() {
    let (_dir, server) = served(&["--sql-memory-mib", "64", "--sql-timeout", "30s"]);
    let a = server.addr.clone();
    for q in [
        "SELECT length(repeat('x', 300000000))",
        "SELECT count(*) FROM unnest(range(1, 50000000))",
        "SELECT length(lpad('x', 300000000))",
        "SELECT cardinality(array_repeat(1, 50000000))",
        "WITH a AS (SELECT repeat('x', 4000000) AS s), b AS (SELECT concat(s, s, s, s) AS s FROM a), c AS (SELECT concat(s, s, s, s) AS s FROM b) SELECT length(concat(s, s, s, s)) FROM c",
    ] {
        let (status, _, body) = post_sql(&a, q, &[]);
        assert_eq!(status, 422, "{q}: {body}");
        assert!(body.contains("Resources exhausted"), "{q}: {body}");
    }
    // Within the limit, the same functions work.
    let (status, _, body) = post_sql(&a, "SELECT length(repeat('x', 1000)) AS n", &[]);
    assert_eq!((status, body.contains("1000")), (200, true), "{body}");
    let peak = peak_rss_mib(server.child.id());
    assert!(peak < 400.0, "peak RSS {peak:.0} MiB under a 64 MiB SQL limit");
    server.kill();
}

#[test]
fn canned_queries_have_the_limits_of_ad_hoc_sql() {
    let (_dir, server) = served(&["--sql-max-rows", "50"]);
    let a = server.addr.clone();
    for (path, expect) in [
        (
            "/api/queries/deploy_frequency?window=1000000d&as_of=2025-11-20",
            400,
        ),
        ("/api/queries/deploy_frequency?window=99999999999999999w", 400),
        ("/api/queries/deploy_frequency?window=7d&as_of=2262-04-12", 400),
        ("/api/queries/deploy_frequency?window=7d&as_of=1900-01-01", 400),
    ] {
        let (status, body) = http_get(&a, path).unwrap();
        assert_eq!(status, expect, "{path}: {body}");
        assert!(body.contains("error"), "{body}");
    }
    let (status, headers, body) = http_request(
        &a,
        "GET",
        "/api/queries/deploy_frequency?window=all&as_of=2025-11-20",
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(status, 200);
    let rows: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 50);
    assert_eq!(header(&headers, "x-deploylens-truncated"), Some("true"));
    server.kill();
}

#[test]
fn mcp_uses_the_guarded_engine_and_follows_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ingest_json(&data, &[&ecosystem()]);
    let more = dir.path().join("more");
    let events = more.join("late-repo/.chora/memory/events");
    fs::create_dir_all(&events).unwrap();
    let line = |n: u32| {
        format!(
            r#"{{"timestamp":"2025-11-20T10:{n:02}:00Z","event_type":"deployment","repository":"late-repo","environment":"staging","version":"v{n}","status":"failure","duration_seconds":3,"errors":["zz-new-failure-token disk quota exceeded on /srv"],"notes":"Fixed by raising the quota"}}"#
        )
    };
    fs::write(
        events.join("deployment.jsonl"),
        (0..5).map(|n| line(n) + "\n").collect::<String>(),
    )
    .unwrap();
    let out = Command::new("python3")
        .arg(repo_root().join("tests/mcp/hostile.py"))
        .arg(bin())
        .arg(&data)
        .arg(&more)
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for refused in ["deep", "cross", "repeat", "unnest"] {
        assert_eq!(got[refused]["is_error"], true, "{refused}: {}", got[refused]);
    }
    assert!(
        got["deep"]["text"]
            .as_str()
            .unwrap()
            .contains("nests expressions")
    );
    assert!(
        got["repeat"]["text"]
            .as_str()
            .unwrap()
            .contains("Resources exhausted")
    );
    let count = |v: &serde_json::Value| {
        let rows: serde_json::Value = serde_json::from_str(v["text"].as_str().unwrap()).unwrap();
        rows[0]["n"].as_i64().unwrap()
    };
    assert_eq!(count(&got["before"]), 80);
    assert_eq!(
        count(&got["after"]),
        85,
        "the session answers from the newest snapshot"
    );
    let hits = got["search_after"]["hits"].as_array().unwrap();
    assert!(
        hits.first().is_some_and(|h| h["repository"] == "late-repo"),
        "{hits:?}"
    );
}

/// `n` repositories, each deploying once to every environment, a day before `now`.
fn wide_ecosystem(root: &Path, n: usize) {
    let d = root.join("many/.chora/memory/events");
    fs::create_dir_all(&d).unwrap();
    let yesterday = chrono_like_yesterday();
    let mut text = String::new();
    for r in 0..n {
        for env in ["development", "staging", "production"] {
            text.push_str(&format!(
                r#"{{"timestamp":"{yesterday}","event_type":"deployment","repository":"repo-{r:04}","environment":"{env}","version":"v1","status":"success","duration_seconds":{}}}"#,
                10 + r % 50
            ));
            text.push('\n');
        }
    }
    fs::write(d.join("deployment.jsonl"), text).unwrap();
}

/// Two hours ago, as RFC 3339 UTC (inside the 24h and 7d windows, outside 1h).
fn chrono_like_yesterday() -> String {
    let out = Command::new("date")
        .args(["-u", "-d", "2 hours ago", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn metric_label_sets_are_capped_and_what_is_dropped_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let eco = dir.path().join("eco");
    wide_ecosystem(&eco, 300);
    let server = Server::start(
        &dir.path().join("data"),
        &eco,
        &["--metrics-max-label-sets", "500"],
    );
    let (_, body) = http_get(&server.addr, "/metrics").unwrap();
    let series = |name: &str| {
        body.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .count()
    };
    // 300 repositories x 3 environments x 3 windows = 2,700 label sets, capped at 500.
    assert_eq!(series("deploylens_deployments"), 500);
    assert_eq!(series("deploylens_last_deployment_timestamp_seconds"), 500);
    let dropped = body
        .lines()
        .find(|l| l.starts_with("deploylens_metrics_series_dropped{family=\"deploylens_deployments\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok());
    assert_eq!(dropped, Some(2200.0));
    server.kill();
}

#[test]
fn ready_means_the_metrics_are_there_and_empty_windows_count_zero() {
    let dir = tempfile::tempdir().unwrap();
    let eco = dir.path().join("eco");
    wide_ecosystem(&eco, 3);
    let server = Server::start(&dir.path().join("data"), &eco, &[]);
    // The very first scrape after ready.
    let (_, body) = http_get(&server.addr, "/metrics").unwrap();
    assert_eq!(
        metric_value(&body, "deploylens_store_events"),
        Some(9.0),
        "{body}"
    );
    assert_eq!(metric_value(&body, "deploylens_ready"), Some(1.0));
    let sample = |name: &str, labels: &str| {
        body.lines()
            .find(|l| l.starts_with(&format!("{name}{{")) && labels.split(',').all(|p| l.contains(p)))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse::<f64>().ok())
    };
    let l24 = r#"repository="repo-0001",environment="staging",window="24h""#;
    let l1 = r#"repository="repo-0001",environment="staging",window="1h""#;
    assert_eq!(sample("deploylens_deployments", l24), Some(1.0));
    // Nothing in the last hour: a count of 0, and no ratio at all.
    assert_eq!(sample("deploylens_deployments", l1), Some(0.0));
    assert_eq!(sample("deploylens_deployment_failures", l1), Some(0.0));
    assert_eq!(sample("deploylens_deployment_success_ratio", l1), None);
    assert_eq!(sample("deploylens_deployment_success_ratio", l24), Some(1.0));
    server.kill();
}

#[test]
fn the_bearer_scheme_is_case_insensitive() {
    let dir = tempfile::tempdir().unwrap();
    let eco = dir.path().join("eco");
    copy_tree(&ecosystem(), &eco);
    let token = dir.path().join("token");
    fs::write(&token, "s3cret-token-value").unwrap();
    let mut cmd = Command::new(bin());
    cmd.env("DEPLOYLENS_TOKEN_FILE", &token)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("serve")
        .arg(&eco)
        .args(["--listen", "127.0.0.1:0"]);
    let server = Server::spawn(cmd);
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let auth = format!("{scheme} s3cret-token-value");
        let (status, _, _) = http_request(
            &server.addr,
            "GET",
            "/api/queries",
            &[("Authorization", &auth)],
            b"",
        )
        .unwrap();
        assert_eq!(status, 200, "{scheme}");
    }
    let (status, _, _) = http_request(
        &server.addr,
        "GET",
        "/api/queries",
        &[("Authorization", "Bearer s3cret-token-valuE")],
        b"",
    )
    .unwrap();
    assert_eq!(status, 401);
    server.kill();
}
