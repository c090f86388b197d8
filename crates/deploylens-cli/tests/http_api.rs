//! The HTTP API over a real socket: every route, every refused attack, every limit (timeout,
//! memory, rows, body size, concurrency), the token rules, the OpenAPI description against the
//! live routes, and a bounded mixed load with zero errors.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn served(extra: &[&str]) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let eco = dir.path().join("eco");
    copy_tree(&ecosystem(), &eco);
    let server = Server::start(&dir.path().join("data"), &eco, extra);
    (dir, server)
}

fn post_sql(addr: &str, sql: &str, accept: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let body = serde_json::json!({ "sql": sql }).to_string();
    http_request(
        addr,
        "POST",
        "/api/sql",
        &[("Content-Type", "application/json"), ("Accept", accept)],
        body.as_bytes(),
    )
    .expect("server answers")
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

#[test]
fn sql_and_canned_queries_in_every_format() {
    let (_dir, server) = served(&[]);
    let a = &server.addr;
    let (status, headers, body) = post_sql(
        a,
        "SELECT repository, count(*) AS n FROM events GROUP BY repository ORDER BY repository",
        "application/json",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let rows = json(&body);
    assert_eq!(rows.as_array().unwrap().len(), 4);
    assert_eq!(rows[1]["repository"], "chora-compose");
    assert_eq!(rows[1]["n"], 25);
    assert_eq!(header(&headers, "x-deploylens-truncated"), Some("false"));
    // The SQL as the raw body.
    let (status, _, body) =
        http_request(a, "POST", "/api/sql", &[], b"SELECT count(*) AS n FROM rejects").unwrap();
    assert_eq!((status, json(&body)[0]["n"].as_i64()), (200, Some(12)));
    let (status, headers, body) = post_sql(a, "SELECT repository FROM events ORDER BY 1 LIMIT 2", "text/csv");
    assert_eq!(
        (status, header(&headers, "content-type")),
        (200, Some("text/csv"))
    );
    assert_eq!(String::from_utf8_lossy(&body).lines().next(), Some("repository"));
    let (_, _, body) = post_sql(a, "SELECT repository FROM events LIMIT 3", "application/x-ndjson");
    assert_eq!(String::from_utf8_lossy(&body).lines().count(), 3);
    let (status, _, body) = post_sql(
        a,
        "SELECT repository, timestamp FROM events",
        "application/vnd.apache.arrow.stream",
    );
    assert_eq!(status, 200);
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(body), None).unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 80);

    let (status, _, body) = http_request(a, "GET", "/api/queries", &[], b"").unwrap();
    assert_eq!(status, 200);
    assert!(
        json(&body)["queries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["name"] == "dora")
    );
    let (status, _, body) = http_request(a, "GET", "/api/queries/success_rate?window=all", &[], b"").unwrap();
    assert_eq!(status, 200);
    assert_eq!(json(&body).as_array().unwrap().len(), 12);
    let (status, _, body) = http_request(a, "GET", "/api/queries/success_rate?window=7x", &[], b"").unwrap();
    assert_eq!(status, 400);
    assert!(json(&body)["error"].as_str().unwrap().contains("unknown unit"));
    let (status, _, body) = http_request(a, "GET", "/nope", &[], b"").unwrap();
    assert_eq!(status, 404);
    assert!(json(&body)["error"].is_string());
    server.kill();
}

#[test]
fn attacks_are_refused_and_nothing_outside_the_store_is_read() {
    let (_dir, server) = served(&[]);
    for attack in [
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_parquet('/etc/passwd')",
        "CREATE EXTERNAL TABLE p (line VARCHAR) STORED AS CSV LOCATION '/etc/passwd'",
        "COPY (SELECT 1) TO '/tmp/deploylens-http-copy.csv'",
        "CREATE TABLE t AS SELECT 1",
        "CREATE VIEW v AS SELECT 1",
        "INSERT INTO events SELECT * FROM events",
        "DELETE FROM events",
        "DROP VIEW deployments",
        "SET datafusion.execution.target_partitions = 1",
        "SELECT 1; DROP VIEW deployments",
        "PREPARE p AS SELECT 1",
        "SELECT a.event_id, b.event_id FROM events a CROSS JOIN events b",
        "SELECT a.event_id, b.event_id FROM events a JOIN events b ON a.timestamp < b.timestamp",
        "SELEC broken",
    ] {
        let (status, _, body) = post_sql(&server.addr, attack, "application/json");
        let text = String::from_utf8_lossy(&body);
        assert!((400..500).contains(&status), "{attack} gave {status}: {text}");
        assert!(
            json(&body)["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{attack}: {text}"
        );
        assert!(!text.contains("root:"), "{attack} leaked /etc/passwd");
    }
    assert!(!std::path::Path::new("/tmp/deploylens-http-copy.csv").exists());
    let (status, _, _) = http_request(&server.addr, "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(status, 200, "the server keeps serving after bad requests");
    server.kill();
}

#[test]
fn limits_timeout_memory_rows_body_and_concurrency() {
    let (_dir, server) = served(&[
        "--sql-timeout",
        "1s",
        "--sql-max-rows",
        "10",
        "--max-body-bytes",
        "1024",
        "--sql-max-concurrent",
        "1",
    ]);
    let a = server.addr.clone();
    // Rows.
    let (status, headers, body) = post_sql(&a, "SELECT value FROM range(1, 100)", "application/json");
    assert_eq!(status, 200);
    assert_eq!(json(&body).as_array().unwrap().len(), 10);
    assert_eq!(header(&headers, "x-deploylens-truncated"), Some("true"));
    // Body size.
    let big = format!("SELECT '{}'", "x".repeat(2000));
    let (status, _, body) = http_request(&a, "POST", "/api/sql", &[], big.as_bytes()).unwrap();
    assert_eq!(status, 413);
    assert!(json(&body)["error"].as_str().unwrap().contains("1024"));
    // Timeout, and a slow query does not stall the rest of the server.
    let slow = std::thread::spawn({
        let a = a.clone();
        move || {
            let started = Instant::now();
            let r = post_sql(
                &a,
                "SELECT count(*) FROM range(1, 100000000000) WHERE value % 7 = 3",
                "application/json",
            );
            (r, started.elapsed())
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    // Concurrency: the one slot is taken.
    let (status, _, body) = post_sql(&a, "SELECT 1", "application/json");
    assert_eq!(status, 429, "{}", String::from_utf8_lossy(&body));
    let t = Instant::now();
    let (status, _, _) = http_request(&a, "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(status, 200);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "healthz took {:?} during a slow query",
        t.elapsed()
    );
    let ((status, _, body), took) = slow.join().unwrap();
    assert_eq!(status, 408, "{}", String::from_utf8_lossy(&body));
    assert!(took < Duration::from_secs(3), "the timeout fired after {took:?}");
    // The slot is free again once the timed-out work has stopped (it is held until then).
    let freed = Instant::now();
    loop {
        let (status, _, _) = post_sql(&a, "SELECT 1 AS one", "application/json");
        if status == 200 {
            break;
        }
        assert_eq!(status, 429);
        assert!(
            freed.elapsed() < Duration::from_secs(5),
            "the slot stayed taken for 5 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server.kill();

    // Memory: millions of groups do not fit in 16 MiB, and the query fails fast and cleanly.
    let (_dir2, server) = served(&["--sql-memory-mib", "16", "--sql-timeout", "60s"]);
    let (status, _, body) = post_sql(
        &server.addr,
        "SELECT value % 3000000 AS k, count(*) AS n FROM range(1, 6000000) GROUP BY 1 ORDER BY 2 DESC",
        "application/json",
    );
    assert_eq!(status, 422, "{}", String::from_utf8_lossy(&body));
    assert!(
        json(&body)["error"]
            .as_str()
            .unwrap()
            .contains("Resources exhausted")
    );
    assert_eq!(
        post_sql(&server.addr, "SELECT 1 AS one", "application/json").0,
        200
    );
    server.kill();
}

#[test]
fn token_rules() {
    let dir = tempfile::tempdir().unwrap();
    let eco = dir.path().join("eco");
    copy_tree(&ecosystem(), &eco);
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let start = |extra: &[&str]| {
        let mut child = std::process::Command::new(bin());
        child
            .arg("--data-dir")
            .arg(dir.path().join(format!("data-{}", extra.len())))
            .arg("serve")
            .arg(&eco)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .env("DEPLOYLENS_TOKEN_FILE", &token_file)
            .env("DEPLOYLENS_TOKEN", "ignored-because-the-file-wins")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let mut child = child.spawn().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap()
            .to_string();
        Server { child, addr }
    };
    let server = start(&[]);
    let a = &server.addr;
    std::thread::sleep(Duration::from_millis(300));
    let body = br#"{"sql":"SELECT 1 AS one"}"#;
    let (status, _, _) = http_request(a, "POST", "/api/sql", &[], body).unwrap();
    assert_eq!(status, 401);
    let (status, _, _) =
        http_request(a, "POST", "/api/sql", &[("Authorization", "Bearer wrong")], body).unwrap();
    assert_eq!(status, 401);
    let (status, _, _) = http_request(
        a,
        "POST",
        "/api/sql",
        &[("Authorization", "Bearer ignored-because-the-file-wins")],
        body,
    )
    .unwrap();
    assert_eq!(status, 401, "the token file comes before DEPLOYLENS_TOKEN");
    let (status, _, _) = http_request(
        a,
        "POST",
        "/api/sql",
        &[("Authorization", "Bearer s3cret-token")],
        body,
    )
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        http_request(a, "GET", "/metrics", &[], b"").unwrap().0,
        200,
        "metrics are open by default"
    );
    assert_eq!(http_request(a, "GET", "/api/fixes?q=x", &[], b"").unwrap().0, 401);
    // The page holds no data and asks for the token; what it reads needs the token.
    assert_eq!(http_request(a, "GET", "/", &[], b"").unwrap().0, 200);
    assert_eq!(http_request(a, "GET", "/assets/app.js", &[], b"").unwrap().0, 200);
    for path in [
        "/api/status",
        "/api/source?event_id=x",
        "/api/queries/success_rate",
    ] {
        assert_eq!(http_request(a, "GET", path, &[], b"").unwrap().0, 401, "{path}");
    }
    server.kill();

    let protected = start(&["--protect-metrics"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        http_request(&protected.addr, "GET", "/metrics", &[], b"")
            .unwrap()
            .0,
        401
    );
    assert_eq!(
        http_request(
            &protected.addr,
            "GET",
            "/healthz",
            &[("Authorization", "Bearer s3cret-token")],
            b""
        )
        .unwrap()
        .0,
        200
    );
    protected.kill();

    // No token and a non-loopback address: refused before listening.
    let out = run_raw(
        &dir.path().join("data-x"),
        &["serve", &eco.to_string_lossy(), "--listen", "0.0.0.0:0"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--insecure-no-auth"));
}

#[test]
fn openapi_description_matches_the_live_routes() {
    let (_dir, server) = served(&[]);
    let out = std::process::Command::new("python3")
        .args(["-c", "import json,sys,yaml; d=yaml.safe_load(open(sys.argv[1])); print(json.dumps(sorted([m.upper()+' '+p for p,v in d['paths'].items() for m in v])))"])
        .arg(repo_root().join("docs/openapi.yaml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let documented: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    let mut live: Vec<String> = deploylens_server_routes()
        .iter()
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    live.sort();
    assert_eq!(documented, live);
    for (method, path) in deploylens_server_routes() {
        let path = path.replace("{name}", "success_rate").replace("{file}", "app.js");
        let (status, _, body) = http_request(
            &server.addr,
            method,
            &path,
            &[],
            if method == "POST" { b"SELECT 1" } else { b"" },
        )
        .unwrap();
        assert_ne!(status, 404, "{method} {path}: {}", String::from_utf8_lossy(&body));
    }
    server.kill();
}

/// The server's own list of routes, read from its source so the test cannot drift from it.
fn deploylens_server_routes() -> Vec<(&'static str, String)> {
    let src = std::fs::read_to_string(repo_root().join("crates/deploylens-server/src/lib.rs")).unwrap();
    let start = src.find("pub const ROUTES").unwrap();
    let end = start + src[start..].find("];").unwrap();
    src[start..end]
        .lines()
        .filter_map(|l| {
            let l = l.trim().trim_start_matches('(').trim_end_matches("),");
            let (m, p) = l.split_once(", ")?;
            let m = m.trim_matches('"');
            let method = if m == "GET" {
                "GET"
            } else if m == "POST" {
                "POST"
            } else {
                return None;
            };
            Some((method, p.trim_matches('"').to_string()))
        })
        .collect()
}

#[test]
fn a_bounded_mixed_load_has_no_errors() {
    let (_dir, server) = served(&[]);
    let deadline = Instant::now() + Duration::from_secs(8);
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let a = server.addr.clone();
            std::thread::spawn(move || {
                let mut done = 0u32;
                let mut errors = Vec::new();
                while Instant::now() < deadline {
                    let r = match (w + done) % 3 {
                        0 => http_request(&a, "GET", "/metrics", &[], b""),
                        1 => http_request(
                            &a,
                            "POST",
                            "/api/sql",
                            &[],
                            b"SELECT repository, count(*) FROM deployments GROUP BY 1",
                        ),
                        _ => http_request(
                            &a,
                            "GET",
                            "/api/fixes?q=Port%208080%20already%20in%20use",
                            &[],
                            b"",
                        ),
                    };
                    match r {
                        Some((200, _, _)) => {}
                        Some((429, _, _)) => {} // the concurrency cap answering, by design
                        other => errors.push(format!(
                            "{:?}",
                            other.map(|(s, _, b)| (s, String::from_utf8_lossy(&b).into_owned()))
                        )),
                    }
                    done += 1;
                }
                (done, errors)
            })
        })
        .collect();
    let mut total = 0;
    for w in workers {
        let (done, errors) = w.join().unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        total += done;
    }
    assert!(total > 50, "only {total} requests in 8 s");
    server.kill();
}

/// The page's filters: a canned query scoped to a repository or environment runs its own
/// definition over that selection alone (not a pick of the fleet's rows), and the scope
/// parameters are bounded.
#[test]
fn a_scoped_canned_query_answers_for_the_selection_alone() {
    let (_dir, server) = served(&[]);
    let a = &server.addr;
    let get = |path: &str| -> serde_json::Value {
        let (status, _, body) = http_request(a, "GET", path, &[], b"").unwrap();
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        json(&body)
    };
    let fleet = get("/api/queries/success_rate?window=all");
    let rows = fleet.as_array().unwrap();
    let repo = rows[0]["repository"].as_str().unwrap().to_string();
    let mine: Vec<_> = rows
        .iter()
        .filter(|r| r["repository"] == repo.as_str())
        .cloned()
        .collect();
    assert!(
        mine.len() < rows.len(),
        "the testdata has more than one repository"
    );
    // Per-repository rows are the same whether scoped or picked from the fleet's.
    let scoped = get(&format!("/api/queries/success_rate?window=all&repository={repo}"));
    assert_eq!(scoped.as_array().unwrap(), &mine);
    // A fleet-level figure becomes the repository's own: environment_summary's deployments
    // per environment equal that repository's success_rate rows, not the fleet's.
    let envs = get(&format!(
        "/api/queries/environment_summary?window=all&repository={repo}"
    ));
    let envs = envs.as_array().unwrap();
    assert_eq!(envs.len(), mine.len());
    for e in envs {
        let same_env = mine
            .iter()
            .find(|r| r["environment"] == e["environment"])
            .unwrap();
        assert_eq!(e["deployments"], same_env["deployments"], "{e}");
        assert_eq!(e["repositories"], 1);
    }
    let env = mine[0]["environment"].as_str().unwrap();
    let both = get(&format!(
        "/api/queries/success_rate?window=all&repository={repo}&environment={env}"
    ));
    assert_eq!(both.as_array().unwrap(), &vec![mine[0].clone()]);
    // Nobody's events: no rows, not an error.
    let none = get("/api/queries/success_rate?window=all&repository=no-such-repository");
    assert_eq!(none.as_array().unwrap().len(), 0);
    let long = "r".repeat(300);
    let (status, _, body) = http_request(
        a,
        "GET",
        &format!("/api/queries/success_rate?repository={long}"),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    // `limit` keeps the first rows and says that it cut.
    let (status, headers, body) =
        http_request(a, "GET", "/api/queries/success_rate?window=all&limit=2", &[], b"").unwrap();
    assert_eq!(status, 200);
    assert_eq!(json(&body).as_array().unwrap(), &rows[..2].to_vec());
    assert_eq!(header(&headers, "x-deploylens-truncated"), Some("true"));
    for bad in ["0", "-1", "many"] {
        let (status, _, _) = http_request(
            a,
            "GET",
            &format!("/api/queries/success_rate?limit={bad}"),
            &[],
            b"",
        )
        .unwrap();
        assert_eq!(status, 400, "limit={bad}");
    }
    // SQL in a scope value is a name like any other.
    let (status, _, body) = http_request(
        a,
        "GET",
        "/api/queries/success_rate?window=all&repository=x%27%20OR%20%271%27%3D%271",
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(json(&body).as_array().unwrap().len(), 0);
    server.kill();
}

/// `/api/source` returns the very line an event was read from; `/api/status` counts
/// snapshots; the page carries its security headers.
#[test]
fn source_status_and_the_page_headers() {
    let (_dir, server) = served(&[]);
    let a = &server.addr;
    let (status, _, body) =
        http_request(a, "GET", "/api/queries/failed_deployments?window=all", &[], b"").unwrap();
    assert_eq!(status, 200);
    let failures = json(&body);
    let first = &failures.as_array().unwrap()[0];
    let id = first["event_id"].as_str().unwrap();
    let (status, _, body) = http_request(a, "GET", &format!("/api/source?event_id={id}"), &[], b"").unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let source = json(&body);
    assert_eq!(source["source_file"], first["source_file"]);
    assert_eq!(source["source_line"], first["source_line"]);
    let file = std::fs::read_to_string(first["source_file"].as_str().unwrap()).unwrap();
    let n = first["source_line"].as_u64().unwrap() as usize;
    assert_eq!(source["line"].as_str().unwrap(), file.lines().nth(n - 1).unwrap());
    assert!(
        source["line"]
            .as_str()
            .unwrap()
            .contains(first["error"].as_str().unwrap())
    );
    for (path, want) in [
        ("/api/source", 400),
        ("/api/source?event_id=ffff", 404),
        ("/assets/..%2F..%2Fetc%2Fpasswd", 404),
        ("/assets/nothing.js", 404),
    ] {
        let (status, _, _) = http_request(a, "GET", path, &[], b"").unwrap();
        assert_eq!(status, want, "{path}");
    }
    let (status, _, body) = http_request(a, "GET", "/api/status", &[], b"").unwrap();
    assert_eq!(status, 200);
    let status_json = json(&body);
    assert!(status_json["generation"].as_u64().unwrap() >= 1, "{status_json}");
    assert_eq!(status_json["ready"], true);
    let (status, headers, body) = http_request(a, "GET", "/", &[], b"").unwrap();
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("/assets/app.js"));
    let csp = header(&headers, "content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(header(&headers, "x-frame-options"), Some("DENY"));
    assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
    server.kill();
}
