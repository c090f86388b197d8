//! Many collectors, one table: four collectors on disjoint roots append to one table (local or
//! over the S3 API) while one of them is SIGKILLed again and again; a read-only query node
//! follows another collector's commits.

mod common;

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Server, bin, http_request};

/// Where the table is and what a process needs to reach it.
struct Target {
    data: String,
    env: Vec<(String, String)>,
}

impl Target {
    fn command(&self) -> Command {
        let mut cmd = Command::new(bin());
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .env_remove("DEPLOYLENS_COLLECTOR_ID")
            .arg("--data-dir")
            .arg(&self.data);
        cmd
    }

    fn sql(&self, query: &str) -> Vec<serde_json::Value> {
        let out = self
            .command()
            .args(["sql", "--format", "json", query])
            .output()
            .expect("run sql");
        assert!(
            out.status.success(),
            "sql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json rows")
    }

    fn collector_command(&self, root: &Path, id: &str) -> Command {
        let mut cmd = self.command();
        cmd.arg("serve")
            .arg(root)
            .args(["--listen", "127.0.0.1:0", "--collector-id", id])
            .args(["--rescan-interval", "1s", "--compact-max-small", "3"]);
        cmd
    }

    fn collector(&self, root: &Path, id: &str) -> Server {
        Server::spawn(self.collector_command(root, id))
    }
}

fn event(repo: &str, n: u64) -> String {
    format!(
        r#"{{"timestamp":"2025-11-20T{:02}:{:02}:{:02}Z","event_type":"deployment","repository":"{repo}","environment":"production","version":"v{n}","status":"success","duration_seconds":{}}}"#,
        n / 3600 % 24,
        n / 60 % 60,
        n % 60,
        n % 300
    )
}

fn repo_file(root: &Path, repo: &str) -> PathBuf {
    let d = root.join(repo).join(".chora/memory/events");
    fs::create_dir_all(&d).unwrap();
    d.join("deployment.jsonl")
}

/// Appends to every file until stopped, each line in two writes.
fn writer(files: Vec<(String, PathBuf)>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            for (repo, f) in &files {
                let line = event(repo, n) + "\n";
                let mut h = OpenOptions::new().create(true).append(true).open(f).unwrap();
                h.write_all(&line.as_bytes()[..line.len() / 2]).unwrap();
                h.write_all(&line.as_bytes()[line.len() / 2..]).unwrap();
            }
            n += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

/// Four collectors, one killed `kills` times at random moments; then per collector stored =
/// written and no line twice.
fn four_collectors(target: &Target, base: &Path, kills: usize) {
    let roots: Vec<PathBuf> = (1..=4).map(|i| base.join(format!("host{i}"))).collect();
    let mut files = Vec::new();
    for (i, root) in roots.iter().enumerate() {
        for r in 0..2 {
            let repo = format!("h{}-r{r}", i + 1);
            files.push((repo.clone(), repo_file(root, &repo)));
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writing = writer(files.clone(), stop.clone());
    let steady: Vec<Server> = (1..4)
        .map(|i| Server::spawn_unready(target.collector_command(&roots[i], &format!("c{}", i + 1))))
        .collect();
    for s in &steady {
        s.wait_ready();
    }
    // A second live collector with a taken id is refused, on a lock or on a lease.
    let twin = target
        .command()
        .args(["ingest", "--collector-id", "c2"])
        .arg(&roots[1])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&twin.stderr);
    assert!(
        !twin.status.success() && said.contains("another deploylens collector"),
        "{said}"
    );
    let mut seed = 0x2026_1201_u64;
    for kill in 0..kills {
        // Some kills land during the first scan, some while it follows the files.
        let command = target.collector_command(&roots[0], "c1");
        let victim = if kill % 3 == 0 {
            Server::spawn(command)
        } else {
            Server::spawn_unready(command)
        };
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(100 + (seed >> 33) % 1500));
        victim.kill();
    }
    stop.store(true, Ordering::Relaxed);
    writing.join().unwrap();
    // Every collector reads to the end and stops cleanly.
    let last = target.collector(&roots[0], "c1");
    assert!(last.terminate().success());
    for s in steady {
        assert!(s.terminate().success());
    }

    let stored = target.sql("SELECT source_file, source_line, count(*) AS n FROM events GROUP BY 1, 2");
    let mut seen: BTreeMap<(String, i64), i64> = BTreeMap::new();
    for r in &stored {
        let key = (
            r["source_file"].as_str().unwrap().to_string(),
            r["source_line"].as_i64().unwrap(),
        );
        seen.insert(key, r["n"].as_i64().unwrap());
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "stored twice: {twice:?}");
    for (host, root) in roots.iter().enumerate() {
        let mut written = 0;
        let mut lost = Vec::new();
        for (_, f) in files.iter().filter(|(_, f)| f.starts_with(root)) {
            let text = fs::read_to_string(f).unwrap();
            for i in 0..text.lines().count() {
                written += 1;
                let key = (f.to_string_lossy().into_owned(), i as i64 + 1);
                if !seen.contains_key(&key) {
                    lost.push(key);
                }
            }
        }
        assert!(
            lost.is_empty(),
            "collector c{}: lost {:?}",
            host + 1,
            &lost[..lost.len().min(5)]
        );
        assert!(
            written > 50,
            "collector c{}: only {written} lines written",
            host + 1
        );
    }
    let total: i64 = seen.values().sum();
    let lines: usize = files
        .iter()
        .map(|(_, f)| fs::read_to_string(f).unwrap().lines().count())
        .sum();
    assert_eq!(total as usize, lines);
    assert_eq!(target.sql("SELECT count(*) AS n FROM rejects")[0]["n"], 0);
}

#[test]
fn four_collectors_share_one_local_table_while_one_is_killed_again_and_again() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target {
        data: dir.path().join("data").to_string_lossy().into_owned(),
        env: vec![],
    };
    four_collectors(&target, dir.path(), 12);
}

/// A local S3-compatible server (moto's, from PyPI), on loopback, with one bucket.
struct S3Server {
    child: Child,
    endpoint: String,
}

impl S3Server {
    fn start() -> Option<S3Server> {
        let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let server = S3Server { child, endpoint };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let made = http_request(&format!("127.0.0.1:{port}"), "PUT", "/deploylens", &[], b"");
            if made.is_some_and(|(status, _, _)| status == 200) {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        None
    }

    fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ALLOW_HTTP", "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn four_collectors_share_one_table_over_the_s3_api() {
    let s3 = S3Server::start().expect("moto's S3 server (pip install 'moto[server]')");
    let dir = tempfile::tempdir().unwrap();
    let target = Target {
        data: "s3://deploylens/fleet".to_string(),
        env: s3.env(),
    };
    four_collectors(&target, dir.path(), 10);
    // The table is a Delta table on the bucket: its log is there.
    let log = http_request(
        &s3.endpoint.replace("http://", ""),
        "GET",
        "/deploylens?list-type=2&prefix=fleet/events/_delta_log/",
        &[],
        b"",
    )
    .expect("list the bucket");
    assert!(String::from_utf8_lossy(&log.2).contains("00000000000000000001.json"));
}

fn count_over_http(server: &Server) -> Option<i64> {
    let body = br#"{"sql":"SELECT count(*) AS n FROM events"}"#;
    let (status, _, reply) = http_request(
        &server.addr,
        "POST",
        "/api/sql",
        &[("Content-Type", "application/json")],
        body,
    )?;
    if status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&reply).ok()?;
    v[0]["n"].as_i64()
}

#[test]
fn a_read_only_node_follows_another_collectors_commits_within_five_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target {
        data: dir.path().join("data").to_string_lossy().into_owned(),
        env: vec![],
    };
    let root = dir.path().join("eco");
    let file = repo_file(&root, "svc");
    fs::write(&file, event("svc", 0) + "\n").unwrap();
    let collector = target.collector(&root, "writer");
    let mut cmd = target.command();
    cmd.args(["serve", "--read-only", "--listen", "127.0.0.1:0"]);
    let reader = Server::spawn(cmd);
    assert_eq!(count_over_http(&reader), Some(1));

    for round in 1..=3u64 {
        let mut f = OpenOptions::new().append(true).open(&file).unwrap();
        f.write_all((event("svc", round) + "\n").as_bytes()).unwrap();
        let want = round as i64 + 1;
        // When the collector has committed it...
        let deadline = Instant::now() + Duration::from_secs(30);
        while count_over_http(&collector) != Some(want) {
            assert!(
                Instant::now() < deadline,
                "the collector never committed line {want}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let committed = Instant::now();
        // ...the query node answers with it within five seconds, in SQL and in /metrics.
        while count_over_http(&reader) != Some(want) {
            assert!(
                committed.elapsed() < Duration::from_secs(5),
                "not visible after 5 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let stored = |addr: &str| {
            let text = common::http_get(addr, "/metrics")
                .map(|r| r.1)
                .unwrap_or_default();
            common::metric_value(&text, "deploylens_store_events")
        };
        while stored(&reader.addr) != Some(want as f64) {
            let late = committed.elapsed();
            assert!(late < Duration::from_secs(5), "/metrics behind after {late:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // A query node writes nothing: the only lease is the collector's.
    let leases: Vec<_> = fs::read_dir(dir.path().join("data/collectors"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leases, ["writer.lock"]);
    assert!(reader.terminate().success());
    assert!(collector.terminate().success());
}

#[test]
fn time_travel_shows_events_and_rejects_as_they_were_at_a_version() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target {
        data: dir.path().join("data").to_string_lossy().into_owned(),
        env: vec![],
    };
    let root = dir.path().join("eco");
    let file = repo_file(&root, "svc");
    let ingest = |lines: &str| {
        let mut f = OpenOptions::new().create(true).append(true).open(&file).unwrap();
        f.write_all(lines.as_bytes()).unwrap();
        let out = target
            .command()
            .args(["ingest", "--collector-id", "tt"])
            .arg(&root)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    ingest(&format!("{}\n{{broken\n", event("svc", 0)));
    ingest(&format!(
        "{}\n{}\n{{broken again\n",
        event("svc", 1),
        event("svc", 2)
    ));
    let at = |version: &str, table: &str| {
        let out = target
            .command()
            .args(["sql", "--format", "json", "--as-of-version", version])
            .arg(format!("SELECT count(*) AS n FROM {table}"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        rows[0]["n"].as_i64().unwrap()
    };
    // Version 1 is the first commit (version 0 created the table).
    assert_eq!((at("1", "events"), at("1", "rejects")), (1, 1));
    assert_eq!((at("2", "events"), at("2", "rejects")), (3, 2));
    assert_eq!(target.sql("SELECT count(*) AS n FROM rejects")[0]["n"], 2);
    let out = target
        .command()
        .args(["sql", "--as-of-version", "99", "SELECT 1"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a version that does not exist is an error");
}

#[test]
fn collectors_racing_to_create_the_store_make_one_table() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target {
        data: dir.path().join("data").to_string_lossy().into_owned(),
        env: vec![],
    };
    let mut children = Vec::new();
    for i in 0..4 {
        let root = dir.path().join(format!("host{i}"));
        let file = repo_file(&root, &format!("r{i}"));
        fs::write(
            &file,
            format!("{}\n{}\n", event(&format!("r{i}"), 0), event(&format!("r{i}"), 1)),
        )
        .unwrap();
        let mut cmd = target.command();
        cmd.args(["ingest", "--collector-id", &format!("c{i}")])
            .arg(&root);
        children.push(cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap());
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(target.sql("SELECT count(*) AS n FROM events")[0]["n"], 8);
    // Four collectors started at once on an empty store: one of them created each table.
    for table in ["events", "rejects"] {
        let log = dir.path().join("data").join(table).join("_delta_log");
        let creates = fs::read_dir(&log)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter(|e| {
                fs::read_to_string(e.path())
                    .unwrap_or_default()
                    .contains("\"CREATE TABLE\"")
            })
            .count();
        assert_eq!(creates, 1, "{table}: created {creates} times");
    }
}
