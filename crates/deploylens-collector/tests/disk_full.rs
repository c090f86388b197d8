//! A disk that fills up while committing: the commit fails, nothing half-written becomes
//! visible, read positions do not advance, and once there is room again the same lines are
//! committed exactly once. Uses a real, small tmpfs (needs root, as in CI).

use std::fs;
use std::path::Path;
use std::process::Command;

use deploylens_collector::{DiscoveryOptions, IngestOptions, Ingestor, discover};
use deploylens_store::{Location, StoreSnapshot, WriterOptions};

fn open(data: &Path) -> Ingestor {
    let writer = WriterOptions {
        collector_id: "test".into(),
    };
    Ingestor::open(&Location::local(data).unwrap(), &writer, IngestOptions::default()).unwrap()
}

fn mount_tmpfs(at: &Path, size: &str) -> bool {
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(at)
        .status()
        .is_ok_and(|s| s.success())
}

struct Unmount<'a>(&'a Path);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0).status();
    }
}

#[test]
fn a_full_disk_stops_commits_and_they_resume_exactly_once_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fs::create_dir_all(&data).unwrap();
    if !mount_tmpfs(&data, "256k") {
        // Without privileges to mount there is no real full disk to test against.
        eprintln!("SKIPPED: cannot mount a tmpfs here (run as root, as CI does)");
        return;
    }
    let _unmount = Unmount(&data);
    let root = dir.path().join("eco");
    let events_dir = root.join("repo/.chora/memory/events");
    fs::create_dir_all(&events_dir).unwrap();
    let mut text = String::new();
    for n in 0..20_000 {
        text.push_str(&format!(
            r#"{{"timestamp":"2025-11-20T10:00:00Z","event_type":"deployment","repository":"repo","environment":"staging","version":"v{n}","status":"failure","duration_seconds":{n},"errors":["error {n} {}"],"notes":"{}"}}"#,
            "e".repeat(40),
            "n".repeat(60)
        ));
        text.push('\n');
    }
    fs::write(events_dir.join("deployment.jsonl"), &text).unwrap();
    let found = discover(std::slice::from_ref(&root), &DiscoveryOptions::default());

    let mut ing = open(&data);
    let err = ing
        .ingest(&found.files, &mut |_| {})
        .expect_err("the commit cannot fit in 256 KiB");
    assert!(err.to_string().to_lowercase().contains("space"), "{err}");
    drop(ing);
    let snap = StoreSnapshot::read(&Location::local(&data).unwrap()).unwrap();
    assert_eq!(snap.event_count(), 0, "a failed commit must not be visible");
    assert!(
        snap.checkpoints_of("test").is_empty(),
        "positions must not advance past unstored lines"
    );

    // Room again: the same lines are stored, once.
    let grown = Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(&data)
        .status()
        .unwrap();
    assert!(grown.success());
    let mut ing = open(&data);
    let report = ing.ingest(&found.files, &mut |_| {}).unwrap();
    assert_eq!(report.events, 20_000);
    assert_eq!(ing.ingest(&found.files, &mut |_| {}).unwrap().events, 0);
    drop(ing);
    assert_eq!(
        StoreSnapshot::read(&Location::local(&data).unwrap())
            .unwrap()
            .event_count(),
        20_000
    );
}
