//! The cases trusted tailers were bitten by, each against real files and a real store. A
//! "restart" is a new `Ingestor` on the same data directory, as after a crash.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use deploylens_collector::{DiscoveryOptions, IngestOptions, IngestReport, Ingestor, discover};
use deploylens_store::{Location, StoreSnapshot, Table, WriterOptions};

fn event(n: u32) -> String {
    format!(
        r#"{{"timestamp":"2025-11-20T10:{:02}:{:02}Z","event_type":"deployment","repository":"r","environment":"staging","version":"v{n}","status":"success","duration_seconds":{n}}}"#,
        n / 60 % 60,
        n % 60
    )
}

struct Eco {
    _dir: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
}

impl Eco {
    fn new() -> Eco {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("eco");
        let data = dir.path().join("data");
        fs::create_dir_all(&root).unwrap();
        Eco {
            _dir: dir,
            root,
            data,
        }
    }

    fn file(&self, repo: &str) -> PathBuf {
        let d = self.root.join(repo).join(".chora/memory/events");
        fs::create_dir_all(&d).unwrap();
        d.join("deployment.jsonl")
    }

    /// One ingest by a fresh process (a restart each time).
    fn ingest(&self) -> IngestReport {
        let found = discover(std::slice::from_ref(&self.root), &DiscoveryOptions::default());
        let mut ing = open(&self.data, IngestOptions::default()).unwrap();
        ing.ingest(&found.files, &mut |_| {}).unwrap()
    }

    fn snapshot(&self) -> StoreSnapshot {
        StoreSnapshot::read(&Location::local(&self.data).unwrap()).unwrap()
    }

    /// (version, source_line) of every stored event, sorted.
    fn stored(&self) -> Vec<(String, i64)> {
        let snap = self.snapshot();
        let mut out = Vec::new();
        {
            for b in snap.read_rows(Table::Events).unwrap() {
                let version = b.column_by_name("version").unwrap().as_string::<i32>().clone();
                let line = b
                    .column_by_name("source_line")
                    .unwrap()
                    .as_primitive::<Int64Type>()
                    .clone();
                for i in 0..b.num_rows() {
                    out.push((version.value(i).to_string(), line.value(i)));
                }
            }
        }
        out.sort();
        out
    }

    fn versions(&self) -> Vec<String> {
        let mut v: Vec<String> = self.stored().into_iter().map(|(v, _)| v).collect();
        v.sort_by_key(|s| s[1..].parse::<u32>().unwrap_or(0));
        v
    }

    fn reject_count(&self) -> u64 {
        self.snapshot().reject_count()
    }
}

fn open(data: &Path, opts: IngestOptions) -> Result<Ingestor, deploylens_store::StoreError> {
    let writer = WriterOptions {
        collector_id: "test".into(),
    };
    Ingestor::open(&Location::local(data)?, &writer, opts)
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

fn lines(range: std::ops::Range<u32>) -> String {
    range.map(|n| event(n) + "\n").collect()
}

fn vs(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|n| format!("v{n}")).collect()
}

#[test]
fn a_partial_line_completed_after_a_restart_is_stored_once() {
    let eco = Eco::new();
    let f = eco.file("a");
    let third = event(3);
    append(&f, &(lines(1..3) + &third[..40]));
    let r = eco.ingest();
    assert_eq!((r.events, r.pending.len()), (2, 1));
    append(&f, &format!("{}\n", &third[40..]));
    let r = eco.ingest();
    assert_eq!(r.events, 1);
    assert_eq!(eco.reject_count(), 0);
    assert_eq!(
        eco.stored(),
        vec![("v1".into(), 1), ("v2".into(), 2), ("v3".into(), 3)]
    );
}

#[test]
fn rotation_while_down_reads_the_old_tail_once_and_the_new_file_from_zero() {
    let eco = Eco::new();
    let f = eco.file("a");
    append(&f, &lines(0..5));
    eco.ingest();
    append(&f, &lines(5..8)); // unread when the collector stops
    fs::rename(&f, f.with_extension("jsonl.1")).unwrap();
    append(&f, &lines(8..10));
    let r = eco.ingest();
    assert_eq!(r.events, 5);
    assert_eq!(eco.versions(), vs(0..10));
    // The old file's lines keep their numbers; the new file starts at 1.
    let stored: BTreeMap<String, i64> = eco.stored().into_iter().collect();
    assert_eq!((stored["v7"], stored["v8"], stored["v9"]), (8, 1, 2));
    assert_eq!(eco.ingest().events, 0);
}

#[test]
fn copytruncate_with_a_writer_that_keeps_its_position_loses_nothing_and_stores_no_nul_rows() {
    let eco = Eco::new();
    let f = eco.file("a");
    append(&f, &lines(0..4));
    eco.ingest();
    append(&f, &lines(4..6));
    let old_len = fs::metadata(&f).unwrap().len();
    // copytruncate: copy, then truncate in place; the writer keeps writing at its old offset,
    // which leaves a hole of NUL bytes before its next line.
    fs::copy(&f, f.with_extension("jsonl.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(0)
        .unwrap();
    let mut w = OpenOptions::new().write(true).open(&f).unwrap();
    use std::io::{Seek, SeekFrom};
    w.seek(SeekFrom::Start(old_len)).unwrap();
    w.write_all(lines(6..8).as_bytes()).unwrap();
    drop(w);
    let r = eco.ingest();
    assert_eq!(eco.versions(), vs(0..8));
    assert_eq!(eco.reject_count(), 0, "NUL padding must not become rejected rows");
    assert!(r.nul_bytes_skipped >= old_len);
}

#[test]
fn truncate_and_quickly_rewrite_past_the_old_offset_reads_the_new_content() {
    let eco = Eco::new();
    let f = eco.file("a");
    append(&f, &lines(0..3));
    eco.ingest();
    fs::write(&f, lines(100..110)).unwrap(); // longer than before, different bytes
    eco.ingest();
    let mut want = vs(0..3);
    want.extend(vs(100..110));
    assert_eq!(eco.versions(), want);
}

#[test]
fn delete_and_recreate_the_same_path_reads_the_new_file() {
    let eco = Eco::new();
    let f = eco.file("a");
    append(&f, &lines(0..3));
    eco.ingest();
    fs::remove_file(&f).unwrap();
    // A deleted file stops being read and its events stay.
    assert_eq!(eco.ingest().events, 0);
    assert_eq!(eco.versions(), vs(0..3));
    // Same path, probably the same inode number: a different file all the same.
    append(&f, &lines(50..52));
    eco.ingest();
    let mut want = vs(0..3);
    want.extend(vs(50..52));
    assert_eq!(eco.versions(), want);
}

#[test]
fn two_repositories_with_identical_first_lines_are_both_read() {
    let eco = Eco::new();
    let shared = "{\"timestamp\":\"2025-11-01T00:00:00Z\",\"event_type\":\"backup\",\"environment\":\"staging\",\"version\":\"v0\",\"status\":\"success\"}\n";
    append(&eco.file("one"), &(shared.to_string() + &lines(1..3)));
    append(&eco.file("two"), &(shared.to_string() + &lines(3..5)));
    let r = eco.ingest();
    // Legacy lines: the repository comes from the folder, so these are two different events.
    assert_eq!(r.events, 6);
    assert_eq!(r.duplicates, 0);
}

#[test]
fn a_stored_offset_beyond_the_file_size_rereads_from_the_start() {
    let eco = Eco::new();
    let f = eco.file("a");
    append(&f, &lines(0..6));
    eco.ingest();
    fs::write(&f, lines(20..22)).unwrap(); // shorter than the committed offset
    eco.ingest();
    let mut want = vs(0..6);
    want.extend(vs(20..22));
    assert_eq!(eco.versions(), want);
}

#[test]
fn an_over_long_line_is_rejected_once_across_restarts() {
    let eco = Eco::new();
    let f = eco.file("a");
    let long = format!("{{\"notes\":\"{}\"}}\n", "x".repeat(2 << 20));
    append(&f, &(lines(0..2) + &long + &lines(2..3)));
    let r = eco.ingest();
    assert_eq!(r.reject_total(), 1);
    assert_eq!(eco.ingest().reject_total(), 0);
    append(&f, &lines(3..4));
    assert_eq!(eco.ingest().events, 1);
    assert_eq!(eco.reject_count(), 1);
    assert_eq!(eco.versions(), vs(0..4));
}

#[test]
fn an_over_long_partial_line_waits_without_being_buffered_then_is_rejected_once() {
    let eco = Eco::new();
    let f = eco.file("a");
    append(&f, &(lines(0..1) + &"y".repeat(3 << 20)));
    let r = eco.ingest();
    assert_eq!((r.events, r.reject_total(), r.pending.len()), (1, 0, 1));
    append(&f, &format!("\n{}", lines(1..2)));
    let r = eco.ingest();
    assert_eq!((r.events, r.reject_total()), (1, 1));
}

#[test]
fn a_damaged_data_file_is_moved_aside_and_its_lines_are_read_again_once() {
    let eco = Eco::new();
    let f = eco.file("a");
    append(&f, &lines(0..3));
    eco.ingest();
    append(&f, &lines(3..5));
    eco.ingest();
    // Cut the newest data file in half: the store must still open, and nothing is lost.
    let snap = eco.snapshot();
    let newest = snap
        .events
        .files
        .iter()
        .max_by_key(|f| f.tags.txn)
        .unwrap()
        .url
        .to_file_path()
        .unwrap();
    let len = fs::metadata(&newest).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&newest)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let r = eco.ingest();
    assert_eq!(r.events, 0, "nothing new in the files");
    assert_eq!(
        eco.versions(),
        vs(0..5),
        "the damaged file's lines are stored again"
    );
    let quarantined = fs::read_dir(eco.data.join("quarantine/events")).unwrap().count();
    assert_eq!(quarantined, 1, "a copy is kept for a person to look at");
    // And once only: the next open finds nothing to repair.
    assert_eq!(eco.ingest().events, 0);
    assert_eq!(eco.versions(), vs(0..5));
}

#[test]
fn the_data_directory_takes_one_writer_at_a_time() {
    let eco = Eco::new();
    let _first = open(&eco.data, IngestOptions::default()).unwrap();
    let second = open(&eco.data, IngestOptions::default());
    let err = second
        .err()
        .expect("a second collector with the same id must be refused")
        .to_string();
    assert!(err.contains("another deploylens collector"), "{err}");
}

#[test]
fn a_burst_of_lines_into_one_file_is_committed_in_bounded_pieces() {
    let eco = Eco::new();
    let f = eco.file("a");
    append(&f, &lines(0..20_000));
    let found = discover(std::slice::from_ref(&eco.root), &DiscoveryOptions::default());
    let opts = IngestOptions {
        commit_rows: 3_000,
        ..IngestOptions::default()
    };
    let mut ing = open(&eco.data, opts).unwrap();
    let r = ing.ingest(&found.files, &mut |_| {}).unwrap();
    assert_eq!(r.events, 20_000);
    assert!(
        r.commits >= 7,
        "{} commits: rows were not flushed as they came",
        r.commits
    );
    let snap = eco.snapshot();
    assert!(snap.events.files.iter().all(|f| f.rows <= 3_000));
}

#[test]
fn a_repeat_read_while_the_first_copy_is_being_committed_is_a_duplicate() {
    // Small commits, so that the repeats arrive while the commit of their first copies is
    // still being written by the commit thread, and while it has landed.
    let eco = Eco::new();
    let first = eco.file("a");
    let second = eco.file("b");
    append(&first, &lines(0..3_000));
    append(&first, &lines(0..3_000));
    append(&second, &lines(1_000..2_000));
    let found = discover(std::slice::from_ref(&eco.root), &DiscoveryOptions::default());
    let opts = IngestOptions {
        commit_rows: 700,
        ..IngestOptions::default()
    };
    let mut ing = open(&eco.data, opts).unwrap();
    let r = ing.ingest(&found.files, &mut |_| {}).unwrap();
    assert_eq!(r.events, 3_000);
    assert_eq!(r.duplicates, 4_000);
    assert!(r.commits >= 9, "{} commits", r.commits);
    assert_eq!(eco.versions(), vs(0..3_000));
    // The first copy is the one stored: lines 1..=3000 of the first file.
    assert!(eco.stored().iter().all(|(_, line)| *line <= 3_000));
}
