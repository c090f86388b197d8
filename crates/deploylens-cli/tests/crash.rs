//! A process killed with SIGKILL in the middle of an ingest, and run again, leaves exactly the
//! tables an uninterrupted run gives: no event lost, none stored twice, no reject repeated.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// A small deterministic generator, so a failing run can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

fn table_contents(data_dir: &std::path::Path) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let events = sql(
        data_dir,
        "SELECT event_id, source_file, source_line FROM events ORDER BY event_id",
    );
    let rejects = sql(
        data_dir,
        "SELECT source_file, source_line, reason FROM rejects ORDER BY source_file, source_line",
    );
    (events, rejects)
}

/// A demo ecosystem in a temporary folder (kept while the first value lives), and its path.
fn demo(args: &[&str]) -> (tempfile::TempDir, String) {
    let eco = tempfile::tempdir().unwrap();
    let eco_path = eco.path().to_string_lossy().into_owned();
    let scratch = tempfile::tempdir().unwrap();
    let mut all = vec!["demo", eco_path.as_str(), "--end", "2025-11-15T00:00:00Z"];
    all.extend_from_slice(args);
    run(scratch.path(), &all);
    (eco, eco_path)
}

/// Fails with the rows lost and the rows doubled, not two long lists.
fn assert_same_rows(table: &str, got: &[serde_json::Value], want: &[serde_json::Value]) {
    let count = |rows: &[serde_json::Value]| {
        let mut m = std::collections::BTreeMap::<String, i64>::new();
        for r in rows {
            *m.entry(r.to_string()).or_default() += 1;
        }
        m
    };
    let (got_n, want_n) = (count(got), count(want));
    let lost: Vec<&String> = want_n.keys().filter(|k| !got_n.contains_key(*k)).collect();
    let doubled: Vec<(&String, i64)> = got_n
        .iter()
        .filter(|(k, n)| **n > want_n.get(*k).copied().unwrap_or(0))
        .map(|(k, n)| (k, *n))
        .collect();
    assert!(
        lost.is_empty() && doubled.is_empty(),
        "{table}: {} rows against {}; lost {lost:?}; too many {doubled:?}",
        got.len(),
        want.len()
    );
}

#[test]
fn sigkill_mid_ingest_then_rerun_equals_an_uninterrupted_run() {
    let (_eco, eco_path) = demo(&[
        "--repos",
        "6",
        "--events",
        "30000",
        "--seed",
        "7",
        "--bad-fraction",
        "0.01",
    ]);
    let args = |dir: &std::path::Path| {
        vec![
            "--data-dir".to_string(),
            dir.to_string_lossy().into_owned(),
            "ingest".into(),
            "--quiet".into(),
            "--commit-rows".into(),
            "1000".into(),
            eco_path.clone(),
        ]
    };

    let reference = tempfile::tempdir().unwrap();
    let status = Command::new(bin()).args(args(reference.path())).status().unwrap();
    assert!(status.success());
    // Commits of 1,000 rows: a kill lands between commits as well as inside one.
    let commits = delta_commits(reference.path());
    assert!(commits >= 25, "{commits} commits for 30,000 lines");

    let victim = tempfile::tempdir().unwrap();
    let mut rng = Lcg(20261127);
    let mut killed = 0;
    for _ in 0..12 {
        let mut child = Command::new(bin())
            .args(args(victim.path()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(30 + rng.next(400)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();
    }
    assert!(
        killed >= 3,
        "the ingest finished before it could be killed; make the input bigger"
    );
    let status = Command::new(bin()).args(args(victim.path())).status().unwrap();
    assert!(status.success());

    let (ref_events, ref_rejects) = table_contents(reference.path());
    let (events, rejects) = table_contents(victim.path());
    assert!(ref_events.len() > 20_000, "{}", ref_events.len());
    assert!(!ref_rejects.is_empty());
    assert_same_rows("events", &events, &ref_events);
    assert_same_rows("rejects", &rejects, &ref_rejects);
    // Every file the log names is whole: the data files were synced before each commit.
    let names = std::fs::read_dir(victim.path().join("events")).unwrap().count();
    assert!(names > 1);
}

/// The newest commit of the rejects table, taken out of its log as if the process had died
/// between its events and its rejects commits.
fn tear_last_rejects_commit(data_dir: &std::path::Path) {
    let log = data_dir.join("rejects/_delta_log");
    let newest = std::fs::read_dir(&log)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && n.len() == 25)
        .max()
        .unwrap();
    assert_ne!(newest, format!("{:020}.json", 0), "no rejects commit to tear");
    std::fs::remove_file(log.join(newest)).unwrap();
}

#[test]
fn a_repair_torn_like_the_commit_it_repairs_stores_each_reject_once() {
    let (_eco, eco_path) = demo(&[
        "--repos",
        "2",
        "--events",
        "400",
        "--seed",
        "5",
        "--bad-fraction",
        "0.05",
    ]);
    let reference = tempfile::tempdir().unwrap();
    run(reference.path(), &["ingest", "--quiet", &eco_path]);
    let (_, want) = table_contents(reference.path());
    assert!(want.len() > 5, "{} rejects", want.len());

    let victim = tempfile::tempdir().unwrap();
    run(victim.path(), &["ingest", "--quiet", &eco_path]);
    tear_last_rejects_commit(victim.path());
    // The next open repairs the torn commit; its repair is torn the same way.
    run(victim.path(), &["ingest", "--quiet", &eco_path]);
    tear_last_rejects_commit(victim.path());
    run(victim.path(), &["ingest", "--quiet", &eco_path]);
    let (events, rejects) = table_contents(victim.path());
    let (ref_events, _) = table_contents(reference.path());
    assert_same_rows("events", &events, &ref_events);
    assert_same_rows("rejects", &rejects, &want);
    // And a further open finds nothing left to repair.
    run(victim.path(), &["ingest", "--quiet", &eco_path]);
    assert_same_rows("rejects", &table_contents(victim.path()).1, &want);
}
