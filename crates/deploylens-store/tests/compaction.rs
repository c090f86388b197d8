//! The compaction policy keeps the number of Parquet files bounded under a trickle of live
//! appends: twenty-four hours of one append a minute in each of 50 files, committed once a
//! minute, simulated quickly.

use deploylens_model::batch::{EventBatchBuilder, Location};
use deploylens_model::{LineOrigin, decode_line};
use deploylens_store::{Generation, SourceCheckpoint, Store, StoreSnapshot};

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
fn a_day_of_trickling_appends_leaves_a_bounded_number_of_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let (small_rows, max_small) = (50_000, 16);
    let mut most_dirs = 0;
    for minute in 0..24 * 60 {
        let sources = (0..50).map(|f| checkpoint(f, minute)).collect();
        store
            .commit(&[minute_batch(minute, 50)], &[], sources, 0, vec![])
            .unwrap();
        store.compact(small_rows, max_small).unwrap();
        store.collect_garbage(std::time::Duration::ZERO).unwrap();
        let dirs = std::fs::read_dir(dir.path().join("store")).unwrap().count();
        most_dirs = most_dirs.max(dirs);
    }
    // Bound: the small commits (at most max_small + 1) plus one per 50,000 events.
    let events = 24 * 60 * 50;
    let bound = max_small + 1 + events / small_rows as usize;
    assert!(
        most_dirs <= bound,
        "{most_dirs} commit folders at the worst moment, bound {bound}"
    );

    // Nothing lost or doubled, and every source's newest position survived the merges.
    drop(store);
    let snap = StoreSnapshot::read(dir.path()).unwrap();
    assert_eq!(snap.event_count(), events as u64);
    let store = Store::open(dir.path()).unwrap();
    let ids = store.event_ids().unwrap();
    assert_eq!(ids.len(), events);
    let cps = snap.checkpoints();
    assert_eq!(cps.len(), 50);
    assert!(
        cps.values()
            .all(|c| c.newest().is_some_and(|g| g.line == 24 * 60))
    );
}

#[test]
fn a_chain_of_compactions_never_brings_old_rows_back_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let mut minute = 0;
    for _ in 0..3 {
        // Three small commits, merged (max 2 small ones): a chain C4 <- C1..C3, then C8 <- C4..C7.
        for _ in 0..3 {
            store
                .commit(
                    &[minute_batch(minute, 5)],
                    &[],
                    vec![checkpoint(0, minute)],
                    0,
                    vec![],
                )
                .unwrap();
            minute += 1;
        }
        store.compact(1_000_000, 2).unwrap();
        // No garbage collection: replaced folders stay, as after a crash or an idle server.
    }
    drop(store);
    let want = minute as u64 * 5;
    for _ in 0..3 {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.snapshot().event_count(), want);
        assert_eq!(store.event_ids().unwrap().len() as u64, want);
        drop(store);
        let snap = StoreSnapshot::read(dir.path()).unwrap();
        assert_eq!(snap.event_count(), want, "rows came back after a restart");
        assert!(
            snap.replaced.is_empty(),
            "replaced commits left on disk: {:?}",
            snap.replaced
        );
    }
}
