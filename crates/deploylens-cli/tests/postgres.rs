//! The Postgres face of `serve --pg-listen`, driven by real clients over real sockets: psql
//! (Debian's postgresql-client) and, through tests/postgres/clients.py, psycopg 3 and
//! SQLAlchemy 2. The guards are the ones of `/api/sql`; the dashboard's SQL panels run here
//! with their Grafana macros expanded.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `serve` over the bundled ecosystem with the Postgres face on a free port.
fn served(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> (Server, u16) {
    let port = free_port();
    let pg = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(bin());
    cmd.arg("--data-dir")
        .arg(data)
        .arg("serve")
        .arg(ecosystem())
        .args(["--listen", "127.0.0.1:0", "--pg-listen", &pg])
        .args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let server = Server::spawn_unready(cmd);
    if env.iter().all(|(k, _)| *k != "DEPLOYLENS_TOKEN") {
        server.wait_ready();
    } else {
        let token = env
            .iter()
            .find(|(k, _)| *k == "DEPLOYLENS_TOKEN")
            .map_or("", |(_, v)| *v);
        wait_for_rows(port, token, "SELECT count(*) FROM events");
    }
    (server, port)
}

fn psql(port: u16, password: &str, args: &[&str]) -> Output {
    Command::new("psql")
        .args([
            "-X",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "deploylens",
            "-d",
            "deploylens",
        ])
        .args(args)
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("psql (apt-get install postgresql-client)")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Waits until `sql` answers with a non-zero first value over the Postgres face.
fn wait_for_rows(port: u16, password: &str, sql: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let o = psql(port, password, &["-A", "-t", "-c", sql]);
        if o.status.success()
            && String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<u64>()
                .is_ok_and(|n| n > 0)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no rows over postgres: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn psql_lists_describes_and_gets_the_exact_percentiles_sql_gets() {
    let dir = tempfile::tempdir().unwrap();
    let (server, port) = served(&dir.path().join("data"), &[], &[]);

    let tables = stdout(&psql(port, "", &["-c", r"\dt"]));
    assert!(
        tables.contains("events") && tables.contains("rejects"),
        "{tables}"
    );
    let described = stdout(&psql(port, "", &["-c", r"\d events"]));
    for expected in ["timestamp with time zone", "text[]", "double precision", "bigint"] {
        assert!(
            described.contains(expected),
            "{expected} missing from:\n{described}"
        );
    }

    let query = "SELECT repository, percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_seconds) AS p95 \
                 FROM deployments WHERE duration_seconds IS NOT NULL GROUP BY repository ORDER BY repository";
    let over_pg = stdout(&psql(port, "", &["-A", "-t", "-F", "\t", "-c", query]));
    server.terminate();
    let direct = sql(&dir.path().join("data"), query);
    let lines: Vec<&str> = over_pg.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), direct.len(), "{over_pg}");
    for (line, row) in lines.iter().zip(&direct) {
        let (repo, p95) = line.split_once('\t').expect("two columns");
        assert_eq!(repo, row["repository"].as_str().unwrap());
        let got: f64 = p95.parse().unwrap();
        assert!(
            close(Some(got), as_f64(&row["p95"])),
            "{repo}: {got} vs {}",
            row["p95"]
        );
    }
}

#[test]
fn python_clients_get_parameters_types_guards_and_the_dashboard_sql() {
    let dir = tempfile::tempdir().unwrap();
    let (server, port) = served(&dir.path().join("data"), &["--sql-timeout", "3s"], &[]);
    let out = Command::new("python3")
        .arg(repo_root().join("tests/postgres/clients.py"))
        .arg(port.to_string())
        .arg("")
        .arg(repo_root().join("dashboards/grafana/deploylens-ecosystem.json"))
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "clients.py failed (pip install 'psycopg[binary]' sqlalchemy):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    server.terminate();
    let data = dir.path().join("data");

    // Parameters bound on the server give what the same literal SQL gives.
    let direct = sql(
        &data,
        "SELECT repository, count(*) AS n FROM deployments WHERE environment = 'production' AND duration_seconds > 1.0 \
         GROUP BY repository ORDER BY n DESC, repository",
    );
    let rows = got["params_rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert_eq!(rows.len(), direct.len());
    for (r, d) in rows.iter().zip(&direct) {
        assert_eq!(r[0], d["repository"]);
        assert_eq!(r[1], d["n"]);
    }
    // text, bigint
    assert_eq!(got["params_types"], serde_json::json!([25, 20]));
    for repo in ["chora-base", "chora-compose"] {
        let n = sql(
            &data,
            &format!("SELECT count(*) AS n FROM deployments WHERE repository = '{repo}'"),
        );
        assert_eq!(got["prepared"][repo], n[0]["n"], "{repo}");
    }
    // timestamptz with a zone, text[] as a list, bigint
    assert_eq!(got["types"]["timestamp"], serde_json::json!([1184, true]));
    assert_eq!(got["types"]["errors"], serde_json::json!([1009, true]));
    assert_eq!(got["types"]["count"], 20);

    // Refused as on HTTP, with Postgres' insufficient_privilege code, and the session goes on.
    for name in [
        "copy",
        "create",
        "set_engine",
        "set_timeout",
        "cross_join",
        "insert",
    ] {
        let e = &got["refused"][name];
        assert_eq!(e["sqlstate"], "42501", "{name}: {e}");
    }
    // Longer than --max-body-bytes, as for POST /api/sql: statement_too_complex.
    assert_eq!(
        got["refused"]["too_long"]["sqlstate"], "54001",
        "{}",
        got["refused"]
    );
    // DataFusion's own DDL is not Postgres syntax: it fails to parse before anything runs.
    assert_eq!(
        got["refused"]["external"]["sqlstate"], "42601",
        "{}",
        got["refused"]
    );
    assert!(
        got["refused"]["read_file"]["sqlstate"].is_string(),
        "{}",
        got["refused"]
    );
    let events = sql(&data, "SELECT count(*) AS n FROM events");
    assert_eq!(got["after_refusals"], events[0]["n"]);

    // The runaway query is stopped by --sql-timeout; the other session answered meanwhile.
    let runaway = &got["runaway"];
    assert_eq!(runaway["error"]["sqlstate"], "57014", "{runaway}");
    assert!(runaway["seconds"].as_f64().unwrap() < 20.0, "{runaway}");
    assert_eq!(runaway["other_session"], events[0]["n"]);
    assert!(runaway["other_seconds"].as_f64().unwrap() < 2.5, "{runaway}");

    let rejects = sql(&data, "SELECT count(*) AS n FROM rejects");
    assert_eq!(got["transaction_rejects"], rejects[0]["n"]);
    let tables = got["sqlalchemy_tables"].as_array().unwrap();
    assert!(
        tables.contains(&"events".into()) && tables.contains(&"rejects".into()),
        "{tables:?}"
    );
    let failed = sql(
        &data,
        "SELECT count(*) AS n FROM deployments WHERE status = 'failure'",
    );
    assert_eq!(got["sqlalchemy_count"], failed[0]["n"]);

    // A Grafana time series: time (timestamptz), metric (text), value (bigint), every deployment.
    let series = &got["time_series"];
    assert_eq!(series["columns"], serde_json::json!(["time", "metric", "value"]));
    assert_eq!(series["types"], serde_json::json!([1184, 25, 20]));
    let all = sql(&data, "SELECT count(*) AS n FROM deployments");
    assert_eq!(series["total"], all[0]["n"]);

    // Each SQL panel answers, and pastes its canned query unchanged: one definition.
    let panels = got["panels"].as_array().unwrap();
    assert_eq!(panels.len(), 2, "{panels:?}");
    for p in panels {
        assert!(p["error"].is_null(), "{p}");
        assert!(p["rows"].as_u64().unwrap() > 0, "{p}");
    }
    for (panel, query) in [
        ("Failed deployments", "failed_deployments"),
        ("p50 / p95 / p99", "duration_percentiles"),
    ] {
        let raw = panels
            .iter()
            .find(|p| p["panel"].as_str().unwrap().contains(panel))
            .unwrap_or_else(|| panic!("no SQL panel {panel}"))["raw"]
            .as_str()
            .unwrap()
            .to_string();
        let text = std::fs::read_to_string(repo_root().join(format!("queries/{query}.sql"))).unwrap();
        let body: Vec<&str> = text.lines().filter(|l| !l.starts_with("--")).collect();
        let body = body
            .join("\n")
            .trim()
            .replace("$start", "$__timeFrom()")
            .replace("$end", "$__timeTo()");
        assert!(
            raw.contains(&body),
            "the {panel} panel does not hold queries/{query}.sql:\n{raw}"
        );
    }
}

#[test]
fn the_password_is_the_token_and_tls_is_offered_with_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let (server, port) = served(
        &dir.path().join("data"),
        &[
            "--pg-tls-cert",
            cert.to_str().unwrap(),
            "--pg-tls-key",
            key.to_str().unwrap(),
        ],
        &[("DEPLOYLENS_TOKEN", "s3cret-token")],
    );
    let wrong = psql(port, "guess", &["-c", "SELECT 1"]);
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("password authentication failed"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    let tls = Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={port} user=deploylens dbname=deploylens sslmode=require password=s3cret-token"
        ))
        .args(["-X", "-A", "-t", "-c", "SELECT count(*) FROM events"])
        .output()
        .unwrap();
    let n: u64 = stdout(&tls).trim().parse().expect("a count");
    assert!(n > 0);
    server.kill();

    // Without a certificate, a client that insists on TLS is turned away, not served in clear.
    let (server, port) = served(&dir.path().join("data2"), &[], &[]);
    let insisted = Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={port} user=deploylens dbname=deploylens sslmode=require"
        ))
        .args(["-X", "-c", "SELECT 1"])
        .output()
        .unwrap();
    assert!(!insisted.status.success());
    server.kill();

    // A non-loopback Postgres address without a token is refused at start, as HTTP's is.
    let refused = run_raw(
        &dir.path().join("data3"),
        &[
            "serve",
            ecosystem().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--pg-listen",
            "0.0.0.0:0",
        ],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("without a token"));
}

#[test]
fn a_statement_prepared_before_new_events_sees_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    copy_tree(&ecosystem(), &root);
    let port = free_port();
    let mut cmd = Command::new(bin());
    cmd.arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("serve")
        .arg(&root)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--pg-listen",
            &format!("127.0.0.1:{port}"),
        ]);
    let server = Server::spawn(cmd);
    let script = r#"
import sys, time, psycopg
port, path = sys.argv[1], sys.argv[2]
with psycopg.connect(f"host=127.0.0.1 port={port} user=u dbname=d", autocommit=True) as c:
    q = "SELECT count(*) FROM events WHERE repository = %s"
    before = c.execute(q, ("pg-late",), prepare=True).fetchone()[0]
    with open(path, "a") as f:
        f.write('{"event_type":"deployment","timestamp":"2025-11-20T10:00:00Z","repository":"pg-late","environment":"staging","version":"1.0.0","status":"success","duration_seconds":12}\n')
    deadline = time.monotonic() + 60
    after = before
    while after == before and time.monotonic() < deadline:
        time.sleep(0.2)
        after = c.execute(q, ("pg-late",), prepare=True).fetchone()[0]
    print(before, after)
"#;
    let file = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join(".chora/memory/events/deployment.jsonl"))
        .find(|p| p.exists())
        .expect("a repository with an events file");
    let out = Command::new("python3")
        .args(["-c", script, &port.to_string()])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0 1");
    server.kill();
}
