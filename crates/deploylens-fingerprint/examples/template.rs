//! Prints the fingerprint and template of each line of standard input, to see how messages
//! normalize while working on the rules.
//!
//! `echo 'health check timeout after 45s' | cargo run -p deploylens-fingerprint --example template`

use std::io::{BufRead, Write};

fn main() -> std::io::Result<()> {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let a = deploylens_fingerprint::analyze(&line?);
        writeln!(out, "{}  {}", a.fingerprint, a.template)?;
    }
    Ok(())
}
