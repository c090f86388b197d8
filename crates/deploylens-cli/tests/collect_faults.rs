//! Faults of collection that once lost or doubled lines, each through the real binary on real
//! files: rotation during a long ingest and a crash, rotation twice while stopped, copytruncate
//! into a compressed copy, a file that cannot be opened, a repository reachable by two paths.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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

fn lines(repo: &str, range: std::ops::Range<u64>) -> String {
    range.map(|n| event(repo, n) + "\n").collect()
}

fn append(path: &Path, text: &str) {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

fn events_file(root: &Path, repo: &str) -> PathBuf {
    let d = root.join(repo).join(".chora/memory/events");
    fs::create_dir_all(&d).unwrap();
    d.join("deployment.jsonl")
}

/// (events stored, distinct versions stored)
fn counts(data: &Path) -> (i64, i64) {
    let rows = sql(
        data,
        "SELECT count(*) AS n, count(DISTINCT version) AS d FROM events",
    );
    (
        rows[0]["n"].as_i64().unwrap_or(-1),
        rows[0]["d"].as_i64().unwrap_or(-1),
    )
}

fn commits(data: &Path) -> usize {
    delta_commits(data)
}

fn gzip(from: &Path, to: &Path) {
    let out = fs::File::create(to).unwrap();
    let status = Command::new("gzip")
        .arg("-c")
        .arg(from)
        .stdout(out)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn rotation_during_a_long_ingest_then_a_crash_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("eco");
    let data = dir.path().join("data");
    let file = events_file(&root, "big");
    let total = 60_000;
    fs::write(&file, lines("big", 0..total)).unwrap();
    let mut child = Command::new(bin())
        .arg("--data-dir")
        .arg(&data)
        .args(["ingest", "--commit-rows", "500"])
        .arg(&root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    // Rotate after a few commits: the rest of the file is read through its old descriptor.
    while commits(&data) < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    fs::rename(&file, file.with_extension("jsonl.1")).unwrap();
    fs::write(&file, lines("big", total..total + 3)).unwrap();
    while commits(&data) < 40 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(commits(&data) >= 40, "the ingest ended before it was killed");
    run(&data, &["ingest", root.to_str().unwrap()]);
    assert_eq!(counts(&data), (total as i64 + 3, total as i64 + 3));
    // And nothing more on a rerun.
    let again = ingest_json(&data, &[&root]);
    assert_eq!(again["events"], 0);
    assert_eq!(again["duplicates"], 0);
}

#[test]
fn rotated_twice_while_stopped_every_generation_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("eco");
    let data = dir.path().join("data");
    let file = events_file(&root, "r");
    let (one, two) = (file.with_extension("jsonl.1"), file.with_extension("jsonl.2"));
    fs::write(&file, lines("r", 0..10)).unwrap();
    run(&data, &["ingest", root.to_str().unwrap()]);
    append(&file, &lines("r", 10..15));
    fs::rename(&file, &one).unwrap();
    fs::write(&file, lines("r", 15..20)).unwrap();
    fs::rename(&one, &two).unwrap();
    fs::rename(&file, &one).unwrap();
    fs::write(&file, lines("r", 20..25)).unwrap();
    let report = ingest_json(&data, &[&root]);
    assert_eq!(report["events"], 15, "{report}");
    assert_eq!(counts(&data), (25, 25));
    // Line numbers are those of each file: the middle generation is lines 1-5 of .1.
    let rows = sql(
        &data,
        "SELECT min(source_line) AS lo, max(source_line) AS hi, count(*) AS n FROM events WHERE version IN ('v15','v16','v17','v18','v19')",
    );
    assert_eq!(
        (rows[0]["lo"].as_i64(), rows[0]["hi"].as_i64()),
        (Some(1), Some(5))
    );
    assert_eq!(ingest_json(&data, &[&root])["events"], 0);
}

#[test]
fn a_file_rotated_away_and_not_recreated_is_finished_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("eco");
    let data = dir.path().join("data");
    let file = events_file(&root, "r");
    fs::write(&file, lines("r", 0..10)).unwrap();
    run(&data, &["ingest", root.to_str().unwrap()]);
    append(&file, &lines("r", 10..14));
    // Rotated twice while stopped, and nothing at the path afterwards.
    fs::rename(&file, file.with_extension("jsonl.2")).unwrap();
    let report = ingest_json(&data, &[&root]);
    assert_eq!(report["events"], 4, "{report}");
    fs::write(file.with_extension("jsonl.1"), lines("r", 14..16)).unwrap();
    let report = ingest_json(&data, &[&root]);
    assert_eq!(report["events"], 2, "{report}");
    assert_eq!(counts(&data), (16, 16));
}

#[test]
fn copytruncate_into_a_gzip_copy_while_stopped_reads_the_copy_from_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("eco");
    let data = dir.path().join("data");
    let file = events_file(&root, "r");
    fs::write(&file, lines("r", 0..10)).unwrap();
    run(&data, &["ingest", root.to_str().unwrap()]);
    append(&file, &lines("r", 10..15));
    gzip(&file, &file.with_extension("jsonl.1.gz"));
    OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&file, &lines("r", 15..20));
    let report = ingest_json(&data, &[&root]);
    assert_eq!(report["events"], 10, "{report}");
    assert_eq!(
        report["duplicates"], 0,
        "the copy is read from where the file was left"
    );
    assert_eq!(counts(&data), (20, 20));
    // Later the compressed copy is rotated on and a new one appears: neither is read again.
    fs::rename(
        file.with_extension("jsonl.1.gz"),
        file.with_extension("jsonl.2.gz"),
    )
    .unwrap();
    append(&file, &lines("r", 20..22));
    gzip(&file, &file.with_extension("jsonl.1.gz"));
    OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(0)
        .unwrap();
    let report = ingest_json(&data, &[&root]);
    assert_eq!(
        (report["events"].as_i64(), report["duplicates"].as_i64()),
        (Some(2), Some(0)),
        "{report}"
    );
    assert_eq!(counts(&data), (22, 22));
}

#[test]
fn logrotate_styles_with_delaycompress_and_dateext_lose_and_double_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("eco");
    let data = dir.path().join("data");
    let file = events_file(&root, "r");
    let name = |s: &str| file.with_file_name(format!("deployment.jsonl{s}"));
    let mut n = 0u64;
    let mut write = |count: u64| {
        append(&file, &lines("r", n..n + count));
        n += count;
    };
    write(7);
    run(&data, &["ingest", root.to_str().unwrap()]);
    // create + delaycompress: the newest rotated file stays plain one round, then is gzipped.
    write(3);
    fs::rename(&file, name(".1")).unwrap();
    write(4);
    run(&data, &["ingest", root.to_str().unwrap()]);
    write(2);
    gzip(&name(".1"), &name(".2.gz"));
    fs::remove_file(name(".1")).unwrap();
    fs::rename(&file, name(".1")).unwrap();
    write(5);
    // dateext, while stopped: the plain .1 becomes a dated gzip, the path a dated plain file.
    gzip(&name(".1"), &name("-20251119.gz"));
    fs::remove_file(name(".1")).unwrap();
    write(1);
    fs::rename(&file, name("-20251120")).unwrap();
    write(6);
    run(&data, &["ingest", root.to_str().unwrap()]);
    assert_eq!(counts(&data), (n as i64, n as i64));
    assert_eq!(ingest_json(&data, &[&root])["events"], 0);
}

#[test]
fn a_repository_reachable_by_two_paths_is_collected_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("eco");
    let data = dir.path().join("data");
    let file = events_file(&root, "real-repo");
    // A legacy record (no repository field) and a bad line, besides current events.
    let legacy = r#"{"timestamp":"2025-11-20T10:00:00Z","event_type":"deployment","environment":"staging","version":"legacy","status":"success"}"#;
    fs::write(&file, format!("{}{legacy}\nnot json\n", lines("real-repo", 0..8))).unwrap();
    std::os::unix::fs::symlink(root.join("real-repo"), root.join("alias")).unwrap();
    std::os::unix::fs::symlink(root.join("real-repo"), root.join("0-first-alias")).unwrap();
    let report = ingest_json(&data, &[&root, &root.join("alias")]);
    assert_eq!(report["files"], 1, "{report}");
    let _ = run(&data, &["ingest", "--follow-symlinks", root.to_str().unwrap()]);
    assert_eq!(counts(&data), (9, 9));
    let repos = sql(
        &data,
        "SELECT DISTINCT repository FROM events WHERE version = 'legacy'",
    );
    assert_eq!(repos, vec![serde_json::json!({"repository": "real-repo"})]);
    let rejects = sql(&data, "SELECT count(*) AS n FROM rejects");
    assert_eq!(rejects[0]["n"], 1);
}

#[test]
fn a_file_that_cannot_be_opened_is_retried_reported_and_read_once_it_can() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("eco");
    let data = dir.path().join("data");
    let good = events_file(&root, "good");
    let locked = events_file(&root, "locked");
    fs::write(&good, lines("good", 0..5)).unwrap();
    fs::write(&locked, lines("locked", 0..5)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    // Root reads any file: serve as an unprivileged user, as a service would run.
    for d in [dir.path(), &root, &data] {
        fs::create_dir_all(d).unwrap();
        fs::set_permissions(d, fs::Permissions::from_mode(0o777)).unwrap();
    }
    let as_nobody = unsafe_uid_is_root();
    let mut cmd = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin());
        c
    } else {
        Command::new(bin())
    };
    cmd.arg("--data-dir").arg(&data).arg("serve").arg(&root).args([
        "--listen",
        "127.0.0.1:0",
        "--poll-interval",
        "200ms",
    ]);
    let server = Server::spawn(cmd);
    let (status, body) = http_get(&server.addr, "/readyz").unwrap();
    assert_eq!(status, 200);
    assert!(
        body.contains("cannot be read") && body.contains("locked"),
        "{body}"
    );
    let metrics = http_get(&server.addr, "/metrics").unwrap().1;
    assert!(
        metrics.contains("deploylens_collector_unreadable_files 1"),
        "{metrics}"
    );
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o644)).unwrap();
    // Read without any new append, within a few polls.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stored = 0;
    while Instant::now() < deadline {
        let m = http_get(&server.addr, "/metrics").unwrap().1;
        stored = metric_value(&m, "deploylens_store_events").unwrap_or(0.0) as i64;
        if stored == 10 && m.contains("deploylens_collector_unreadable_files 0") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(stored, 10);
    let (_, body) = http_get(&server.addr, "/readyz").unwrap();
    assert!(!body.contains("cannot be read"), "{body}");
    server.terminate();
}

fn unsafe_uid_is_root() -> bool {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() == 0 }
}
