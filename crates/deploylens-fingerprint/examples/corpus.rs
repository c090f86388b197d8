//! Groups standard input as one corpus (masking, then learned templates) and prints how long
//! each stage took, to profile `deploylens fingerprint` without its JSON output.
//!
//! `cargo run --release -p deploylens-fingerprint --example corpus < lines.log`

use std::io::BufRead;
use std::time::Instant;

use deploylens_fingerprint::miner::{MinerOptions, group_corpus};

fn main() -> std::io::Result<()> {
    let lines: Vec<String> = std::io::stdin().lock().lines().collect::<Result<_, _>>()?;
    let t = Instant::now();
    let masked: Vec<String> = lines
        .iter()
        .map(|l| deploylens_fingerprint::template(l))
        .collect();
    let masking = t.elapsed();
    let t = Instant::now();
    let corpus = group_corpus(&masked, MinerOptions::default());
    let grouping = t.elapsed();
    eprintln!(
        "{} lines: masking {:.3} s, grouping {:.3} s, {} groups",
        lines.len(),
        masking.as_secs_f64(),
        grouping.as_secs_f64(),
        corpus.groups.len()
    );
    Ok(())
}
