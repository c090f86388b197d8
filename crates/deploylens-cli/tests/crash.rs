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

#[test]
fn sigkill_mid_ingest_then_rerun_equals_an_uninterrupted_run() {
    let eco = tempfile::tempdir().unwrap();
    let eco_path = eco.path().to_string_lossy().into_owned();
    let scratch = tempfile::tempdir().unwrap();
    run(
        scratch.path(),
        &[
            "demo",
            &eco_path,
            "--repos",
            "6",
            "--events",
            "30000",
            "--seed",
            "7",
            "--end",
            "2025-11-15T00:00:00Z",
            "--bad-fraction",
            "0.01",
        ],
    );
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
    assert_eq!(events.len(), ref_events.len(), "events lost or doubled");
    assert_eq!(events, ref_events);
    assert_eq!(rejects, ref_rejects);
    // Every file the log names is whole: the data files were synced before each commit.
    let names = std::fs::read_dir(victim.path().join("events")).unwrap().count();
    assert!(names > 1);
}
