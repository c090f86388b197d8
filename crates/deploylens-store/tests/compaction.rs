//! The compaction policy keeps the number of Parquet files bounded under a trickle of live
//! appends: six hours of one append a minute in each of 50 files, committed once a minute,
//! simulated quickly; and compactions never bring rows back or lose a read position.

use deploylens_model::batch::{EventBatchBuilder, Location};
use deploylens_model::{LineOrigin, decode_line};
use deploylens_store::{
    CommitBatch, Generation, Location as StoreLocation, SourceCheckpoint, Store, StoreSnapshot, WriterOptions,
};

fn open(dir: &std::path::Path) -> Store {
    let writer = WriterOptions {
        collector_id: "test".into(),
    };
    Store::open(&StoreLocation::local(dir).unwrap(), &writer).unwrap()
}

fn snapshot(dir: &std::path::Path) -> StoreSnapshot {
    StoreSnapshot::read(&StoreLocation::local(dir).unwrap()).unwrap()
}

fn commit(store: &mut Store, minute: u32, files: u32, sources: Vec<SourceCheckpoint>) {
    store
        .commit(CommitBatch {
            events: vec![minute_batch(minute, files)],
            sources,
            ..CommitBatch::default()
        })
        .unwrap();
}

fn minute_batch(minute: u32, files: u32) -> arrow::array::RecordBatch {
    let mut b = EventBatchBuilder::new();
    for f in 0..files {
        let line = format!(
            r#"{{"timestamp":"2025-11-20T{:02}:{:02}:00Z","event_type":"health_check","repository":"repo-{f}","environment":"production","version":"v1","status":"success","duration_seconds":0.2}}"#,
            minute / 60,
            minute % 60
        );
        let e = decode_line(
            line.as_bytes(),
            LineOrigin {
                inferred_repository: "",
            },
        )
        .unwrap()
        .unwrap();
        b.append(
            &e,
            e.id(),
            Location {
                file: "f",
                line: minute as u64 + 1,
                offset: 0,
            },
        );
    }
    b.finish(0).unwrap()
}

fn checkpoint(file: u32, minute: u32) -> SourceCheckpoint {
    SourceCheckpoint {
        path: format!("/eco/repo-{file}/.chora/memory/events/deployment.jsonl"),
        generations: vec![Generation {
            dev: 1,
            ino: file as u64,
            gzip: false,
            start_offset: minute as u64 * 100,
            offset: (minute as u64 + 1) * 100,
            line: minute as u64 + 1,
            tail_hash: 0,
            tail_len: 100,
            head_hash: 0,
            head_len: 100,
            unfinished: false,
        }],
    }
}

#[test]
fn hours_of_trickling_appends_leave_a_bounded_number_of_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let (small_rows, max_small) = (50_000, 16);
    let minutes = 6 * 60;
    let mut most_files = 0;
    for minute in 0..minutes {
        let sources = (0..50).map(|f| checkpoint(f, minute)).collect();
        commit(&mut store, minute, 50, sources);
        store.compact(small_rows, max_small).unwrap();
        if minute % 30 == 29 {
            store.collect_garbage(std::time::Duration::ZERO).unwrap();
        }
        most_files = most_files.max(store.snapshot().events.files.len());
    }
    // Bound: the small files (at most max_small + 1) plus one per 50,000 events.
    let events = minutes as usize * 50;
    let bound = max_small + 1 + events / small_rows as usize;
    assert!(
        most_files <= bound,
        "{most_files} files at the worst moment, bound {bound}"
    );
    // Replaced files are deleted from the folder, not only from the log.
    store.collect_garbage(std::time::Duration::ZERO).unwrap();
    let on_disk = std::fs::read_dir(dir.path().join("events"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
        .count();
    assert_eq!(on_disk, store.snapshot().events.files.len());

    // Nothing lost or doubled, and every source's newest position survived the merges.
    drop(store);
    let snap = snapshot(dir.path());
    assert_eq!(snap.event_count(), events as u64);
    let store = open(dir.path());
    assert_eq!(store.event_ids().unwrap().len(), events);
    let cps = store.checkpoints();
    assert_eq!(cps.len(), 50);
    assert!(
        cps.values()
            .all(|c| c.newest().is_some_and(|g| g.line == minutes as u64))
    );
}

#[test]
fn a_chain_of_compactions_never_brings_old_rows_back_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let mut minute = 0;
    for _ in 0..3 {
        // Three small commits, merged (max 2 small ones): a chain of merges of merges.
        for _ in 0..3 {
            commit(&mut store, minute, 5, vec![checkpoint(0, minute)]);
            minute += 1;
        }
        store.compact(1_000_000, 2).unwrap();
        // No cleanup: replaced files stay on disk, as after a crash or an idle server.
    }
    drop(store);
    let want = minute as u64 * 5;
    for _ in 0..3 {
        let store = open(dir.path());
        assert_eq!(store.snapshot().event_count(), want);
        assert_eq!(store.event_ids().unwrap().len() as u64, want);
        assert_eq!(
            store.checkpoints()["/eco/repo-0/.chora/memory/events/deployment.jsonl"]
                .newest()
                .map(|g| g.line),
            Some(minute as u64)
        );
        drop(store);
        assert_eq!(
            snapshot(dir.path()).event_count(),
            want,
            "rows came back after a restart"
        );
    }
}

#[test]
fn compacting_commits_after_one_with_rejects_never_stores_those_rejects_again() {
    use deploylens_model::batch::RejectBatchBuilder;
    use deploylens_model::{Reject, RejectReason};
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let mut rejects = RejectBatchBuilder::new();
    let reject = Reject::new(RejectReason::InvalidUtf8, "expected value at line 1 column 1");
    let at = Location {
        file: "f",
        line: 1,
        offset: 0,
    };
    rejects.append(&reject, "repo-0", b"{oops", 5, at);
    store
        .commit(CommitBatch {
            events: vec![minute_batch(0, 2)],
            rejects: vec![rejects.finish(0).unwrap()],
            sources: vec![checkpoint(0, 0)],
            ..CommitBatch::default()
        })
        .unwrap();
    // Later commits without rejects, then a merge of all of them.
    for minute in 1..4 {
        commit(&mut store, minute, 2, vec![checkpoint(0, minute)]);
    }
    assert!(store.compact(1_000_000, 2).unwrap());
    drop(store);
    for _ in 0..2 {
        let store = open(dir.path());
        assert!(
            store.repairs().is_empty(),
            "repairs after a clean merge: {:?}",
            store.repairs()
        );
        assert_eq!(store.snapshot().reject_count(), 1);
        assert_eq!(store.snapshot().event_count(), 8);
    }
}
