//! The duplicate guard past its compact form: once more ids are stored than
//! `StoredIds::MERGE_AT`, they are kept as 48-bit prefixes, and a repeat of a stored event
//! is only a maybe until every id is loaded whole. Repeats must still be dropped, exactly,
//! across a restart and within one ingest, and no new event may be taken for a repeat.

mod common;

use std::io::Write;
use std::path::Path;

use common::*;

/// More events than the compact set merges at (262,144), so every test here goes past it.
const MANY: usize = 300_000;

fn line(repo: &str, i: usize) -> String {
    let (day, rest) = (i / 86_400 % 28 + 1, i % 86_400);
    format!(
        r#"{{"timestamp":"2025-10-{day:02}T{:02}:{:02}:{:02}Z","event_type":"deployment","repository":"{repo}","environment":"production","version":"v1.{i}","status":"success","duration_seconds":{}}}"#,
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        i % 600
    )
}

fn write_repo(root: &Path, repo: &str, lines: impl Iterator<Item = String>) {
    let dir = root.join(repo).join(".chora/memory/events");
    std::fs::create_dir_all(&dir).unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("deployment.jsonl")).unwrap());
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

#[test]
fn repeats_are_dropped_exactly_once_the_ids_are_compact() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // One ingest: many events, then repeats of the first ones (stored before the merge,
    // so only prefixes remain of them) and new ones.
    let first = dir.path().join("first");
    write_repo(
        &first,
        "big",
        (0..MANY)
            .map(|i| line("big", i))
            .chain((0..500).map(|i| line("big", i)))
            .chain((MANY..MANY + 500).map(|i| line("big", i))),
    );
    // Small commits: most events have landed, and been merged into prefixes, when their
    // repeats are read, so the exact ids are loaded in the middle of the ingest, with a
    // commit in flight.
    let out = run(
        &data,
        &[
            "ingest",
            "--json",
            "--commit-rows",
            "20000",
            first.to_str().unwrap(),
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["events"], (MANY + 500) as u64, "{report}");
    assert_eq!(report["duplicates"], 500, "{report}");

    // A restart: the stored ids are loaded compact. Another repository's file repeats 1,000
    // stored events (their repository names them, not the folder) and adds 1,000 new ones.
    let second = dir.path().join("second");
    write_repo(
        &second,
        "other",
        (1000..2000)
            .map(|i| line("big", i))
            .chain((0..1000).map(|i| line("other", i))),
    );
    let report = ingest_json(&data, &[&second]);
    assert_eq!(report["events"], 1000, "{report}");
    assert_eq!(report["duplicates"], 1000, "{report}");
    let rows = sql(
        &data,
        "SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM events",
    );
    assert_eq!(rows[0]["n"], (MANY + 1500) as u64);
    assert_eq!(rows[0]["ids"], rows[0]["n"]);
}
