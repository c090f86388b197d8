//! `deploylens serve` as a real process over real files: appends become visible, new
//! repositories are found, rotation and copytruncate lose and repeat nothing, partial lines
//! wait, SIGTERM flushes, and twenty-odd SIGKILLs at random moments (mid-write and
//! mid-compaction included) leave exactly one stored event per line written.

mod common;

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

fn event(repo: &str, n: u64) -> String {
    format!(
        r#"{{"timestamp":"2025-11-20T{:02}:{:02}:{:02}Z","event_type":"deployment","repository":"{repo}","environment":"staging","version":"v{n}","status":"success","duration_seconds":{}}}"#,
        n / 3600 % 24,
        n / 60 % 60,
        n % 60,
        n % 500
    )
}

fn repo_file(root: &Path, repo: &str) -> PathBuf {
    let d = root.join(repo).join(".chora/memory/events");
    fs::create_dir_all(&d).unwrap();
    d.join("deployment.jsonl")
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new().create(true).append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.sync_data().unwrap();
}

fn count(data: &Path, filter: &str) -> i64 {
    let rows = sql(data, &format!("SELECT count(*) AS n FROM events WHERE {filter}"));
    rows[0]["n"].as_i64().unwrap()
}

/// Waits until `count(filter) == want`; returns how long it took.
fn wait_for(data: &Path, filter: &str, want: i64, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let n = count(data, filter);
        if n == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{filter}: {n} events, want {want} after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn versions(data: &Path, repo: &str) -> Vec<String> {
    let rows = sql(
        data,
        &format!(
            "SELECT version FROM events WHERE repository = '{repo}' ORDER BY CAST(substr(version, 2) AS BIGINT)"
        ),
    );
    rows.iter()
        .map(|r| r["version"].as_str().unwrap().to_string())
        .collect()
}

fn vs(range: std::ops::Range<u64>) -> Vec<String> {
    range.map(|n| format!("v{n}")).collect()
}

#[test]
fn appends_are_visible_within_a_second_and_new_repositories_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let (root, data) = (dir.path().join("eco"), dir.path().join("data"));
    let f = repo_file(&root, "alpha");
    append(&f, &(event("alpha", 0) + "\n"));
    let server = Server::start(&data, &root, &["--rescan-interval", "1s"]);
    assert_eq!(count(&data, "true"), 1);
    let mut took = Vec::new();
    for n in 1..=5 {
        append(&f, &(event("alpha", n) + "\n"));
        took.push(wait_for(
            &data,
            "repository = 'alpha'",
            n as i64 + 1,
            Duration::from_secs(5),
        ));
    }
    took.sort();
    assert!(
        took[2] < Duration::from_millis(1500),
        "median append-to-visible {:?}",
        took[2]
    );
    // A repository created while serving.
    append(&repo_file(&root, "beta"), &(event("beta", 1) + "\n"));
    wait_for(&data, "repository = 'beta'", 1, Duration::from_secs(10));
    // The same file is never read twice.
    assert_eq!(versions(&data, "alpha"), vs(0..6));
    let (status, _) = http_get(&server.addr, "/healthz").unwrap();
    assert_eq!(status, 200);
    assert!(server.terminate().success());
}

#[test]
fn windowed_metrics_follow_a_commit_without_waiting_for_their_period() {
    let dir = tempfile::tempdir().unwrap();
    let (root, data) = (dir.path().join("eco"), dir.path().join("data"));
    let f = repo_file(&root, "alpha");
    append(&f, &(event("alpha", 0) + "\n"));
    // A period far longer than the test: only a commit can bring the new series.
    let server = Server::start(&data, &root, &["--metrics-refresh", "1h"]);
    let series =
        r#"deploylens_first_deployment_timestamp_seconds{repository="alpha",environment="production"}"#;
    let production = event("alpha", 1).replace("staging", "production");
    append(&f, &(production + "\n"));
    let start = Instant::now();
    loop {
        let (status, body) = http_get(&server.addr, "/metrics").unwrap();
        assert_eq!(status, 200);
        if body.contains(series) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the first deployment to production is not in /metrics after {:?}",
            start.elapsed()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(server.terminate().success());
}

/// The value of an unlabelled series in a /metrics body.
fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} is not in /metrics"))
}

#[test]
fn an_idle_collector_passes_only_on_its_timer() {
    let dir = tempfile::tempdir().unwrap();
    let (root, data) = (dir.path().join("eco"), dir.path().join("data"));
    for repo in ["alpha", "beta", "gamma"] {
        append(&repo_file(&root, repo), &(event(repo, 0) + "\n"));
    }
    // A rescan walks the watched folders, which the watcher reports as opened: that must not
    // cause another rescan. With one every 2 s, 6 idle seconds make 3 passes, not dozens.
    let server = Server::start(&data, &root, &["--rescan-interval", "2s"]);
    let passes = || {
        let (_, body) = http_get(&server.addr, "/metrics").unwrap();
        metric(&body, "deploylens_collector_passes_total")
    };
    std::thread::sleep(Duration::from_secs(1));
    let before = passes();
    std::thread::sleep(Duration::from_secs(6));
    let idle = passes() - before;
    assert!(idle <= 5.0, "{idle} passes in 6 idle seconds");
    let settled = passes();
    // An append still causes one.
    append(&repo_file(&root, "beta"), &(event("beta", 1) + "\n"));
    wait_for(&data, "repository = 'beta'", 2, Duration::from_secs(5));
    assert!(passes() > settled);
    assert!(server.terminate().success());
}

#[test]
fn polling_fallback_sees_appends() {
    let dir = tempfile::tempdir().unwrap();
    let (root, data) = (dir.path().join("eco"), dir.path().join("data"));
    let f = repo_file(&root, "alpha");
    append(&f, &(event("alpha", 0) + "\n"));
    let server = Server::start(&data, &root, &["--poll", "--poll-interval", "200ms"]);
    append(&f, &(event("alpha", 1) + "\n"));
    wait_for(&data, "true", 2, Duration::from_secs(5));
    assert!(server.terminate().success());
}

#[test]
fn rotation_copytruncate_deletion_and_partial_lines_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (root, data) = (dir.path().join("eco"), dir.path().join("data"));
    let rot = repo_file(&root, "rotated");
    let cpt = repo_file(&root, "copied");
    let del = repo_file(&root, "deleted");
    let part = repo_file(&root, "partial");
    for (f, repo) in [
        (&rot, "rotated"),
        (&cpt, "copied"),
        (&del, "deleted"),
        (&part, "partial"),
    ] {
        append(f, &(0..3).map(|n| event(repo, n) + "\n").collect::<String>());
    }
    let server = Server::start(&data, &root, &["--rescan-interval", "1s"]);
    wait_for(&data, "true", 12, Duration::from_secs(5));

    // Rotation: lines written just before the rename, then a new file.
    append(
        &rot,
        &(3..5).map(|n| event("rotated", n) + "\n").collect::<String>(),
    );
    fs::rename(&rot, rot.with_extension("jsonl.1")).unwrap();
    append(
        &rot,
        &(5..7).map(|n| event("rotated", n) + "\n").collect::<String>(),
    );
    // copytruncate: copy, truncate, keep appending.
    append(
        &cpt,
        &(3..5).map(|n| event("copied", n) + "\n").collect::<String>(),
    );
    fs::copy(&cpt, cpt.with_extension("jsonl.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&cpt)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(
        &cpt,
        &(5..7).map(|n| event("copied", n) + "\n").collect::<String>(),
    );
    // Deletion: its events stay.
    fs::remove_file(&del).unwrap();
    // A partial line waits for its end.
    let half = event("partial", 3);
    append(&part, &half[..30]);

    wait_for(&data, "repository = 'rotated'", 7, Duration::from_secs(10));
    wait_for(&data, "repository = 'copied'", 7, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(count(&data, "repository = 'partial'"), 3);
    assert_eq!(sql(&data, "SELECT count(*) AS n FROM rejects")[0]["n"], 0);
    append(&part, &format!("{}\n", &half[30..]));
    wait_for(&data, "repository = 'partial'", 4, Duration::from_secs(5));

    assert_eq!(versions(&data, "rotated"), vs(0..7));
    assert_eq!(versions(&data, "copied"), vs(0..7));
    assert_eq!(versions(&data, "deleted"), vs(0..3));
    assert_eq!(versions(&data, "partial"), vs(0..4));
    assert!(server.terminate().success());
}

#[test]
fn sigterm_flushes_what_was_appended_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let (root, data) = (dir.path().join("eco"), dir.path().join("data"));
    let f = repo_file(&root, "alpha");
    append(&f, &(event("alpha", 0) + "\n"));
    // Polling slowly: only the shutdown flush can have read the last lines.
    let server = Server::start(
        &data,
        &root,
        &["--poll", "--poll-interval", "60s", "--rescan-interval", "60s"],
    );
    append(&f, &(1..50).map(|n| event("alpha", n) + "\n").collect::<String>());
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    assert_eq!(versions(&data, "alpha"), vs(0..50));
}

#[test]
fn repeated_sigkill_while_writers_append_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (root, data) = (dir.path().join("eco"), dir.path().join("data"));
    let repos = ["r1", "r2", "r3", "r4"];
    let files: Vec<PathBuf> = repos.iter().map(|r| repo_file(&root, r)).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let files = files.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for (i, f) in files.iter().enumerate() {
                    let line = event(repos[i], n) + "\n";
                    // Two writes: a reader may see the first half alone.
                    let mut h = OpenOptions::new().create(true).append(true).open(f).unwrap();
                    h.write_all(&line.as_bytes()[..line.len() / 2]).unwrap();
                    h.write_all(&line.as_bytes()[line.len() / 2..]).unwrap();
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(3));
            }
        })
    };
    let mut seed = 0x5eed_u64;
    let mut kills = 0;
    // Small commits merged often: kills land mid-write and mid-compaction.
    let args = ["--rescan-interval", "1s", "--compact-max-small", "2"];
    for _ in 0..22 {
        let server = Server::start(&data, &root, &args);
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(50 + (seed >> 33) % 400));
        server.kill();
        kills += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    // A final run reads to the end and stops cleanly.
    let server = Server::start(&data, &root, &args);
    assert!(server.terminate().success());
    assert!(kills >= 20);

    let mut written: BTreeMap<(String, i64), ()> = BTreeMap::new();
    for f in &files {
        let text = fs::read_to_string(f).unwrap();
        for (i, _) in text.lines().enumerate() {
            written.insert((f.to_string_lossy().into_owned(), i as i64 + 1), ());
        }
    }
    let stored = sql(&data, "SELECT source_file, source_line FROM events");
    let mut seen: BTreeMap<(String, i64), usize> = BTreeMap::new();
    for r in &stored {
        *seen
            .entry((
                r["source_file"].as_str().unwrap().to_string(),
                r["source_line"].as_i64().unwrap(),
            ))
            .or_default() += 1;
    }
    let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "stored twice: {doubled:?}");
    let missing: Vec<_> = written
        .keys()
        .filter(|k| !seen.contains_key(*k))
        .take(5)
        .collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    assert_eq!(seen.len(), written.len());
    assert!(written.len() > 1000, "{} lines written", written.len());
    assert_eq!(sql(&data, "SELECT count(*) AS n FROM rejects")[0]["n"], 0);
}
