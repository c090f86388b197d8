//! `deploylens validate`: the strict check a repository's own CI runs on its event file.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use deploylens_model::{LineOrigin, decode_line};

use crate::Global;

#[derive(Args)]
pub struct ValidateArgs {
    /// Event files to check (deployment.jsonl)
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Also refuse legacy records (no repository and no duration_seconds)
    #[arg(long)]
    pub no_legacy: bool,
}

/// Prints `file:line: reason: message` for every bad line; exit 1 if there was one.
pub fn run(g: &Global, args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let mut bad = 0u64;
    let mut good = 0u64;
    for path in &args.files {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                println!("{}: cannot read: {e}", path.display());
                bad += 1;
                continue;
            }
        };
        let mut reader = std::io::BufReader::new(file);
        let mut line = Vec::new();
        let mut number = 0u64;
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            number += 1;
            let bytes = line.strip_suffix(b"\n").unwrap_or(&line);
            match decode_line(
                bytes,
                LineOrigin {
                    inferred_repository: "",
                },
            ) {
                Ok(Some(event))
                    if args.no_legacy
                        && event.repository_source == deploylens_model::RepositorySource::Path =>
                {
                    println!(
                        "{}:{number}: missing_field: legacy record without repository and duration_seconds",
                        path.display()
                    );
                    bad += 1;
                }
                Ok(Some(_)) => good += 1,
                Ok(None) => {}
                Err(r) => {
                    println!("{}:{number}: {}: {}", path.display(), r.reason, r.message);
                    bad += 1;
                }
            }
        }
    }
    if !g.quiet {
        eprintln!("{good} valid events, {bad} problems");
    }
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
