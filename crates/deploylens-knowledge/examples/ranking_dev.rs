//! Ranking on the train split alone, for working on the ranking without looking at the
//! held-out messages: each train message is asked of an index of the other train messages
//! without those of its own fingerprint (so it must be found by its words, as a reworded
//! failure is). Prints top-1 and top-3 and the misses.
//!
//! ```sh
//! cargo run --release -p deploylens-knowledge --example ranking_dev
//! ```

use deploylens_fingerprint::analyze;
use deploylens_knowledge::{Index, PastFailure, SearchOptions};

fn main() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/errors/labeled.jsonl");
    let text = std::fs::read_to_string(path).expect("labeled set");
    let rows: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    let train: Vec<&serde_json::Value> = rows.iter().filter(|r| r["split"] == "train").collect();
    let fps: Vec<String> = train
        .iter()
        .map(|r| analyze(&s(r, "message")).fingerprint)
        .collect();
    let (mut asked, mut first, mut top3) = (0, 0, 0);
    let mut misses = Vec::new();
    for (qi, q) in train.iter().enumerate() {
        let others: Vec<PastFailure> = train
            .iter()
            .enumerate()
            .filter(|(i, _)| fps[*i] != fps[qi])
            .map(|(i, r)| {
                let a = analyze(&s(r, "message"));
                PastFailure {
                    timestamp_us: 1_760_000_000_000_000 + i as i64 * 3_600_000_000,
                    repository: s(r, "repository"),
                    environment: "production".into(),
                    error: s(r, "message"),
                    fingerprint: a.fingerprint,
                    template: a.template,
                    fix: Some(s(r, "fix")),
                    resolution_time_seconds: Some(600.0),
                    source: Default::default(),
                }
            })
            .collect();
        let fix = s(q, "fix");
        if !others.iter().any(|o| o.fix.as_deref() == Some(fix.as_str())) {
            continue; // its failure has no other wording in train
        }
        asked += 1;
        let index = Index::new(others);
        let hits = index.search(
            &s(q, "message"),
            SearchOptions {
                limit: 5,
                now_us: 1_800_000_000_000_000,
            },
        );
        let ok = hits.first().and_then(|h| h.fix.as_deref()) == Some(fix.as_str());
        if ok {
            first += 1;
        } else {
            misses.push(format!(
                "{}: {:?}\n    -> {:?} ({})",
                s(q, "group"),
                s(q, "message"),
                hits.first().map(|h| h.error.as_str()),
                hits.first().map(|h| h.why.as_str()).unwrap_or("")
            ));
        }
        if hits
            .iter()
            .take(3)
            .any(|h| h.fix.as_deref() == Some(fix.as_str()))
        {
            top3 += 1;
        }
    }
    println!(
        "train leave-one-wording-out: {asked} asked, top-1 {:.3}, top-3 {:.3}",
        first as f64 / asked as f64,
        top3 as f64 / asked as f64
    );
    for m in &misses {
        println!("  miss {m}");
    }
}
