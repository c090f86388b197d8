//! Grouping accuracy on the train split of `testdata/logs/labeled.jsonl` alone (the held-out
//! split stays unseen while rules are worked on): per tool and the mean, learned templates
//! and the masking rules alone.
//!
//! ```sh
//! cargo run --release -p deploylens-fingerprint --example accuracy [-- --tools]
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};

use deploylens_fingerprint::miner::{MinerOptions, group_corpus};
use deploylens_fingerprint::template;

fn accuracy<T: std::hash::Hash + Eq, P: std::hash::Hash + Eq>(truth: &[T], predicted: &[P]) -> f64 {
    let mut by_truth: HashMap<&T, HashSet<usize>> = HashMap::new();
    let mut by_pred: HashMap<&P, HashSet<usize>> = HashMap::new();
    for (i, (t, p)) in truth.iter().zip(predicted).enumerate() {
        by_truth.entry(t).or_default().insert(i);
        by_pred.entry(p).or_default().insert(i);
    }
    let correct = truth
        .iter()
        .zip(predicted)
        .filter(|(t, p)| by_truth[t] == by_pred[p])
        .count();
    correct as f64 / truth.len().max(1) as f64
}

fn main() {
    let per_tool = std::env::args().any(|a| a == "--tools");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/logs/labeled.jsonl");
    let text = std::fs::read_to_string(path).expect("labeled set");
    let mut by_tool: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).expect("json line");
        if v["split"] != "train" {
            continue;
        }
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        by_tool
            .entry(s("tool"))
            .or_default()
            .push((s("message"), s("template")));
    }
    let (mut learned_sum, mut rules_sum) = (0.0, 0.0);
    for (tool, rows) in &by_tool {
        let truth: Vec<&String> = rows.iter().map(|(_, t)| t).collect();
        let masked: Vec<String> = rows.iter().map(|(m, _)| template(m)).collect();
        let corpus = group_corpus(&masked, MinerOptions::default());
        let (l, r) = (accuracy(&truth, &corpus.assignment), accuracy(&truth, &masked));
        learned_sum += l;
        rules_sum += r;
        if per_tool {
            println!("{tool:16} {:4} lines  learned {l:.3}  rules {r:.3}", rows.len());
        }
    }
    let n = by_tool.len() as f64;
    println!(
        "train, {} tools: learned {:.3}, rules alone {:.3}",
        by_tool.len(),
        learned_sum / n,
        rules_sum / n
    );
}
