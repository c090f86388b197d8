//! Search quality on the labeled error set: past failures are the `train` messages with their
//! group's fix; each `heldout` message (new wording and values for a failure seen in `train`)
//! must find its group's fix first.

use deploylens_fingerprint::analyze;
use deploylens_knowledge::{Index, PastFailure, SearchOptions};

struct Labeled {
    group: String,
    split: String,
    message: String,
    repository: String,
    fix: String,
}

fn labeled() -> Vec<Labeled> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/errors/labeled.jsonl");
    std::fs::read_to_string(path)
        .expect("labeled set")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            Labeled {
                group: s("group"),
                split: s("split"),
                message: s("message"),
                repository: s("repository"),
                fix: s("fix"),
            }
        })
        .collect()
}

fn index_of(train: &[&Labeled]) -> Index {
    let failures = train
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let a = analyze(&l.message);
            PastFailure {
                timestamp_us: 1_760_000_000_000_000 + i as i64 * 3_600_000_000,
                repository: l.repository.clone(),
                environment: "production".into(),
                error: l.message.clone(),
                fingerprint: a.fingerprint,
                template: a.template,
                fix: Some(l.fix.clone()),
                resolution_time_seconds: Some(600.0),
                source: Default::default(),
            }
        })
        .collect();
    Index::new(failures)
}

#[test]
fn heldout_messages_find_their_fix_first() {
    let all = labeled();
    let train: Vec<&Labeled> = all.iter().filter(|l| l.split == "train").collect();
    let heldout: Vec<&Labeled> = all.iter().filter(|l| l.split == "heldout").collect();
    assert!(heldout.len() >= 40, "{} heldout messages", heldout.len());
    let index = index_of(&train);
    let opts = SearchOptions {
        limit: 5,
        now_us: 1_800_000_000_000_000,
    };
    let mut first = 0;
    let mut in_top3 = 0;
    let mut misses = Vec::new();
    for q in &heldout {
        let hits = index.search(&q.message, opts);
        if hits.first().and_then(|h| h.fix.as_deref()) == Some(q.fix.as_str()) {
            first += 1;
        } else {
            misses.push(format!(
                "{}: {:?} -> {:?}",
                q.group,
                q.message,
                hits.first().map(|h| &h.template)
            ));
        }
        if hits
            .iter()
            .take(3)
            .any(|h| h.fix.as_deref() == Some(q.fix.as_str()))
        {
            in_top3 += 1;
        }
    }
    let top1 = first as f64 / heldout.len() as f64;
    let top3 = in_top3 as f64 / heldout.len() as f64;
    eprintln!(
        "search quality on {} heldout messages: top-1 {:.3}, top-3 {:.3}",
        heldout.len(),
        top1,
        top3
    );
    for m in &misses {
        eprintln!("  miss: {m}");
    }
    assert!(top1 >= 0.90, "top-1 {top1:.3} < 0.90");
}

#[test]
fn same_fingerprint_ranks_first_and_says_why() {
    let all = labeled();
    let train: Vec<&Labeled> = all.iter().filter(|l| l.split == "train").collect();
    let index = index_of(&train);
    let probe = train[0];
    let hits = index.search(
        &probe.message,
        SearchOptions {
            limit: 3,
            now_us: 1_800_000_000_000_000,
        },
    );
    assert_eq!(hits[0].why, "same fingerprint");
    assert_eq!(hits[0].fix.as_deref(), Some(probe.fix.as_str()));
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
}

#[test]
fn a_fix_bearing_failure_outranks_one_without_a_fix() {
    let a = analyze("Health check timeout after 30s");
    let mk = |fix: Option<&str>, t: i64| PastFailure {
        timestamp_us: t,
        repository: "r".into(),
        environment: "production".into(),
        error: "Health check timeout after 30s".into(),
        fingerprint: a.fingerprint.clone(),
        template: a.template.clone(),
        fix: fix.map(str::to_string),
        resolution_time_seconds: None,
        source: Default::default(),
    };
    // The fixless one is more recent, the fix still wins.
    let index = Index::new(vec![
        mk(Some("raise start_period"), 1_000),
        mk(None, 2_000_000_000),
    ]);
    let hits = index.search(
        "health check timeout after 45s",
        SearchOptions {
            limit: 5,
            now_us: 3_000_000_000,
        },
    );
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].fix.as_deref(), Some("raise start_period"));
}
