//! The metrics against the real thing: Debian's Prometheus scrapes a real `deploylens serve`
//! with the shipped rules; every PromQL expression of the rules and of the Grafana dashboard
//! parses and the metrics they name exist; `promtool check metrics` is clean on a scrape; the
//! rule unit tests pass; and the OpenMetrics backfill is accepted by promtool.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (install Debian's prometheus package: scripts/install-test-deps.sh)");
    if let Some(text) = stdin {
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn prom_query(addr: &str, expr: &str) -> serde_json::Value {
    let mut enc = String::new();
    for b in expr.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    let (status, body) = http_get(addr, &format!("/api/v1/query?query={enc}")).expect("prometheus answers");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{status}: {body}"));
    v
}

struct Prometheus(std::process::Child);

impl Prometheus {
    /// Debian's Prometheus with a config, its own storage and address; stopped on drop.
    fn start(config: &std::path::Path, storage: &std::path::Path, addr: &str) -> Prometheus {
        Prometheus(
            Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", storage.display()))
                .arg(format!("--web.listen-address={addr}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("prometheus (Debian's prometheus package: scripts/install-test-deps.sh)"),
        )
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn rules_pass_promtool_check_and_unit_tests() {
    let (ok, out) = promtool(
        &["check", "rules", "dashboards/prometheus/deploylens-rules.yml"],
        None,
    );
    assert!(ok, "{out}");
    let (ok, out) = promtool(
        &["test", "rules", "dashboards/prometheus/deploylens-rules.test.yml"],
        None,
    );
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS"), "{out}");
    let (ok, out) = promtool(&["check", "config", "dashboards/prometheus/prometheus.yml"], None);
    assert!(ok, "{out}");
}

#[test]
fn prometheus_scrapes_serve_and_every_dashboard_and_rule_expression_works() {
    let dir = tempfile::tempdir().unwrap();
    let (eco, data) = (dir.path().join("eco"), dir.path().join("data"));
    run(
        dir.path(),
        &[
            "demo",
            &eco.to_string_lossy(),
            "--repos",
            "5",
            "--events",
            "4000",
            "--days",
            "2",
            "--seed",
            "11",
        ],
    );
    let server = Server::start(&data, &eco, &["--metrics-refresh", "2s"]);

    // promtool's linter on a real scrape.
    let deadline = Instant::now() + Duration::from_secs(60);
    let scrape = loop {
        let (_, body) = http_get(&server.addr, "/metrics").unwrap();
        if body.contains("deploylens_deployment_duration_seconds_bucket") || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (ok, out) = promtool(&["check", "metrics"], Some(&scrape));
    assert!(ok && out.trim().is_empty(), "promtool check metrics: {out}");
    let exported: BTreeSet<String> = scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next().map(str::to_string))
        .collect();

    // A real Prometheus with the shipped rules.
    let port = free_port();
    let prom_addr = format!("127.0.0.1:{port}");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: deploylens\n    static_configs:\n      - targets: ['{}']\n",
            repo_root().join("dashboards/prometheus/deploylens-rules.yml").display(),
            server.addr
        ),
    )
    .unwrap();
    let _prom = Prometheus::start(&config, &dir.path().join("tsdb"), &prom_addr);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = http_get(&prom_addr, "/api/v1/query?query=up")
            .map(|(_, b)| b)
            .unwrap_or_default();
        let has_data = http_get(
            &prom_addr,
            "/api/v1/query?query=count_over_time(deploylens_store_events%5B1m%5D)",
        )
        .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            v["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|x| x.parse::<f64>().ok())
        })
        .unwrap_or(0.0);
        if up.contains(r#""value":["#) && up.contains(r#","1"]"#) && has_data >= 3.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus never scraped deploylens: {up}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let (_, rules) = http_get(&prom_addr, "/api/v1/rules").unwrap();
    assert!(
        rules.contains("deploylens-deployments") && rules.contains("deploylens-self"),
        "{rules}"
    );
    assert!(
        !rules.contains(r#""health":"err"#),
        "a rule failed to evaluate: {rules}"
    );

    let out = Command::new("python3")
        .arg(repo_root().join("tests/prometheus/expressions.py"))
        .arg(repo_root().join("dashboards/prometheus/deploylens-rules.yml"))
        .arg(repo_root().join("dashboards/grafana/deploylens-ecosystem.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let exprs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut named = BTreeSet::new();
    for (kind, list) in [("rule", &exprs["rules"]), ("dashboard", &exprs["dashboard"])] {
        let list = list.as_array().unwrap();
        assert!(
            list.len() >= if kind == "rule" { 7 } else { 8 },
            "{kind}: {list:?}"
        );
        for e in list {
            let expr = e["expr"].as_str().unwrap();
            let v = prom_query(&prom_addr, expr);
            assert_eq!(v["status"], "success", "{kind} {}: {expr}: {v}", e["name"]);
            if kind == "dashboard" {
                assert!(
                    !v["data"]["result"].as_array().is_none_or(|r| r.is_empty()),
                    "dashboard panel {:?} returns no data: {expr}",
                    e["panel"]
                );
            }
            for m in metric_names(expr) {
                named.insert(m);
            }
        }
    }
    for m in &named {
        let base = m
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        assert!(
            exported.contains(m) || exported.iter().any(|x| x.starts_with(base)),
            "{m} is used by the dashboard or the rules but deploylens does not export it"
        );
    }
    assert!(named.len() >= 10, "{named:?}");
    server.kill();
}

/// `deploylens_...` names in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(pos) = expr[i..].find("deploylens_") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        out.push(expr[start..end].to_string());
        i = end;
    }
    out
}

#[test]
fn openmetrics_backfill_is_accepted_by_promtool_and_matches_the_store() {
    let dir = tempfile::tempdir().unwrap();
    ingest_json(dir.path(), &[&ecosystem()]);
    let file = dir.path().join("history.om");
    run(
        dir.path(),
        &[
            "export",
            "openmetrics",
            "--end",
            "2025-11-16",
            "-o",
            &file.to_string_lossy(),
        ],
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.ends_with("# EOF\n"));
    // The last sample of each events_total series sums to the stored events.
    let mut last: std::collections::BTreeMap<&str, f64> = Default::default();
    for line in text.lines().filter(|l| l.starts_with("deploylens_events_total{")) {
        let (series, rest) = line.split_once("} ").unwrap();
        last.insert(series, rest.split(' ').next().unwrap().parse().unwrap());
    }
    let total = sql(dir.path(), "SELECT count(*) AS n FROM events")[0]["n"]
        .as_f64()
        .unwrap();
    assert_eq!(last.values().sum::<f64>(), total);
    let tsdb = dir.path().join("tsdb");
    let (ok, out) = promtool(
        &[
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            &file.to_string_lossy(),
            &tsdb.to_string_lossy(),
        ],
        None,
    );
    assert!(ok, "{out}");
    let (ok, out) = promtool(&["tsdb", "list", &tsdb.to_string_lossy()], None);
    assert!(ok && out.lines().count() >= 2, "{out}");
}

#[test]
fn the_shipped_native_topology_runs_targets_up_and_rules_loaded() {
    // The shipped prometheus.yml, with the address this test's server got and the rules path
    // made absolute; nothing else changed.
    let dir = tempfile::tempdir().unwrap();
    let eco = dir.path().join("eco");
    copy_tree(&ecosystem(), &eco);
    let server = Server::start(&dir.path().join("data"), &eco, &[]);
    let shipped = std::fs::read_to_string(repo_root().join("dashboards/prometheus/prometheus.yml")).unwrap();
    assert!(shipped.contains("127.0.0.1:9464") && shipped.contains("deploylens-rules.yml"));
    let config = shipped.replace("127.0.0.1:9464", &server.addr).replace(
        "deploylens-rules.yml",
        &repo_root()
            .join("dashboards/prometheus/deploylens-rules.yml")
            .to_string_lossy(),
    );
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let (ok, out) = promtool(&["check", "config", &config_path.to_string_lossy()], None);
    assert!(ok, "{out}");
    let prom_addr = format!("127.0.0.1:{}", free_port());
    let _prom = Prometheus::start(&config_path, &dir.path().join("tsdb"), &prom_addr);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let targets = http_get(&prom_addr, "/api/v1/targets")
            .map(|(_, b)| b)
            .unwrap_or_default();
        if targets.contains(r#""health":"up""#) {
            break;
        }
        assert!(Instant::now() < deadline, "target never up: {targets}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let (_, rules) = http_get(&prom_addr, "/api/v1/rules").unwrap();
    let v: serde_json::Value = serde_json::from_str(&rules).unwrap();
    let groups = v["data"]["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{rules}");
    let rules_loaded: usize = groups.iter().map(|g| g["rules"].as_array().unwrap().len()).sum();
    assert!(rules_loaded >= 7, "{rules}");
    server.kill();
}

#[test]
fn the_compose_file_validates_against_the_compose_specification() {
    let out = Command::new("python3")
        .arg(repo_root().join("deploy/check-compose.py"))
        .current_dir(repo_root())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.trim_end().ends_with("OK"), "{text}");
}

/// Every metric that docs/metrics.md names in its tables appears in a scrape of a live
/// server over recent history: nothing documented is built and forgotten.
#[test]
fn every_metric_named_in_the_docs_is_in_a_scrape() {
    let dir = tempfile::tempdir().unwrap();
    let eco = dir.path().join("eco");
    run(
        dir.path(),
        &[
            "demo",
            eco.to_str().unwrap(),
            "--repos",
            "6",
            "--events",
            "3000",
            "--days",
            "10",
            "--bad-fraction",
            "0.01",
        ],
    );
    let server = Server::start(&dir.path().join("data"), &eco, &[]);
    let (_, body) = http_get(&server.addr, "/metrics").unwrap();
    let doc = std::fs::read_to_string(repo_root().join("docs/metrics.md")).unwrap();
    let mut named: Vec<String> = doc
        .lines()
        .filter(|l| l.starts_with("| `deploylens_"))
        .filter_map(|l| l.split('`').nth(1))
        .map(|m| m.to_string())
        .collect();
    named.sort();
    named.dedup();
    assert!(named.len() > 30, "{named:?}");
    let exposed = |name: &str| {
        body.lines().any(|l| {
            l.starts_with(&format!("# TYPE {name} "))
                || l.starts_with(&format!("{name} "))
                || l.starts_with(&format!("{name}{{"))
        })
    };
    let missing: Vec<&String> = named.iter().filter(|m| !exposed(m)).collect();
    assert!(missing.is_empty(), "documented but not in a scrape: {missing:?}");
    server.kill();
}
