//! `deploylens ingest`: one batch pass over the roots.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use deploylens_collector::{DiscoveryOptions, IngestOptions, IngestReport, Ingestor, discover};
use deploylens_model::DecodeOptions;
use indicatif::{ProgressBar, ProgressStyle};

use crate::Global;

#[derive(Args, Clone)]
pub struct IngestArgs {
    /// Folders to search for .chora/memory/events/deployment.jsonl (a file is taken as is)
    #[arg(required = true, env = "DEPLOYLENS_ROOTS", value_delimiter = ',')]
    pub roots: Vec<PathBuf>,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Print the summary as JSON
    #[arg(long)]
    pub json: bool,
}

/// How sources are found and read: shared by `ingest` and `serve`.
#[derive(Args, Clone)]
pub struct SourceArgs {
    /// Also collect files matching this glob (relative to each root); repeatable
    #[arg(
        long = "pattern",
        value_name = "GLOB",
        env = "DEPLOYLENS_PATTERNS",
        value_delimiter = ';'
    )]
    pub patterns: Vec<String>,
    /// Follow symbolic links while walking the roots
    #[arg(long, env = "DEPLOYLENS_FOLLOW_SYMLINKS")]
    pub follow_symlinks: bool,
    /// Lines longer than this many bytes are rejected (line_too_long)
    #[arg(long, env = "DEPLOYLENS_MAX_LINE_BYTES", default_value_t = deploylens_model::DEFAULT_MAX_LINE_BYTES)]
    pub max_line_bytes: usize,
    /// Commit after this many rows (smaller commits: finer crash recovery, more files)
    #[arg(long, hide = true)]
    pub commit_rows: Option<usize>,
    /// This collector's id in the shared store: its read positions and transactions are its own
    /// (default: the host name; two live collectors with one id are refused)
    #[arg(long, env = "DEPLOYLENS_COLLECTOR_ID", value_name = "ID")]
    pub collector_id: Option<String>,
}

impl SourceArgs {
    pub fn discovery(&self) -> DiscoveryOptions {
        DiscoveryOptions {
            extra_patterns: self.patterns.clone(),
            follow_symlinks: self.follow_symlinks,
        }
    }

    /// The collector's identity in the store.
    pub fn writer(&self) -> deploylens_store::WriterOptions {
        deploylens_store::WriterOptions {
            collector_id: self
                .collector_id
                .clone()
                .unwrap_or_else(deploylens_store::WriterOptions::default_collector_id),
        }
    }

    pub fn ingest_options(&self) -> IngestOptions {
        let defaults = IngestOptions::default();
        IngestOptions {
            decode: DecodeOptions {
                max_line_bytes: self.max_line_bytes,
            },
            commit_rows: self.commit_rows.unwrap_or(defaults.commit_rows).max(1),
            ..defaults
        }
    }
}

pub async fn run(g: &Global, args: IngestArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    deploylens_collector::discover::check_patterns(&args.source.discovery())?;
    let mut found = discover(&args.roots, &args.source.discovery());
    for e in &found.errors {
        eprintln!("warning: {e}");
    }
    let location = g.location()?;
    let mut ingestor = Ingestor::open(&location, &args.source.writer(), args.source.ingest_options())
        .with_context(|| format!("opening the store {location}"))?;
    // A file rotated away and not recreated still has generations to finish.
    deploylens_collector::discover::add_known(&mut found, &args.roots, ingestor.known_sources());
    if found.files.is_empty() {
        eprintln!(
            "warning: no deployment.jsonl found under {}; expected <repo>/.chora/memory/events/deployment.jsonl (add --pattern GLOB for other layouts)",
            args.roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let total: u64 = found
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(&f.path).ok())
        .map(|m| m.len())
        .sum();
    let bar = progress_bar(g, total);
    let report = ingestor.ingest(&found.files, &mut |n| bar.inc(n))?;
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    if args.json {
        println!("{}", summary_json(&report, elapsed.as_secs_f64()));
    } else if !g.quiet {
        print_summary(&report, elapsed.as_secs_f64(), &location.to_string());
    }
    Ok(ExitCode::SUCCESS)
}

fn progress_bar(g: &Global, total: u64) -> ProgressBar {
    if g.quiet || !std::io::stderr().is_terminal() || total < (8 << 20) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} ingesting [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

pub fn summary_json(r: &IngestReport, seconds: f64) -> serde_json::Value {
    serde_json::json!({
        "files": r.files_seen,
        "files_read": r.files_read,
        "bytes_read": r.bytes_read,
        "lines": r.lines,
        "events": r.events,
        "duplicates": r.duplicates,
        "blank_lines": r.blank_lines,
        "rejects": r.reject_total(),
        "rejects_by_reason": r.rejects.iter().map(|(k, v)| (k.code().to_string(), serde_json::Value::from(*v))).collect::<serde_json::Map<_, _>>(),
        "pending_partial_lines": r.pending.iter().map(|(f, n)| serde_json::json!({"file": f, "bytes": n})).collect::<Vec<_>>(),
        "unreadable": r.unreadable.iter().map(|u| serde_json::json!({"file": u.file, "error": u.error})).collect::<Vec<_>>(),
        "nul_bytes_skipped": r.nul_bytes_skipped,
        "commits": r.commits,
        "seconds": seconds,
    })
}

/// `text` as one shell word: quoted unless it is made of safe characters only.
fn shell_word(text: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._:-+=@,".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

fn print_summary(r: &IngestReport, seconds: f64, data_dir: &str) {
    let mb = r.bytes_read as f64 / 1e6;
    println!(
        "ingested {} new events from {} files ({} lines, {:.1} MB) in {:.2}s ({:.0} MB/s)",
        r.events,
        r.files_seen,
        r.lines,
        mb,
        seconds,
        if seconds > 0.0 { mb / seconds } else { 0.0 }
    );
    println!(
        "  duplicates skipped: {}   blank lines: {}   rejected lines: {}",
        r.duplicates,
        r.blank_lines,
        r.reject_total()
    );
    for (reason, n) in &r.rejects {
        println!("    {:<18} {n}", reason.code());
    }
    if r.reject_total() > 0 {
        println!(
            "  see them with: deploylens --data-dir {} sql \"SELECT source_file, source_line, reason, message FROM rejects\"",
            shell_word(data_dir)
        );
    }
    for (file, bytes) in &r.pending {
        println!("  waiting for the end of a partial last line ({bytes} bytes) in {file}");
    }
    for e in &r.unreadable {
        println!("  could not read {e}");
    }
    if r.nul_bytes_skipped > 0 {
        println!(
            "  skipped {} NUL padding bytes (a file truncated under a writer)",
            r.nul_bytes_skipped
        );
    }
    println!("  store: {data_dir}");
}
