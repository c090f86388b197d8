//! `deploylens fingerprint`, `deploylens fixes` and `deploylens knowledge export`: failure
//! knowledge for people and for agents that only have a shell.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use deploylens_knowledge::SearchOptions;
use deploylens_query::now_us;
use deploylens_query::{export_knowledge, load_index};

use crate::Global;
use crate::report::open_engine;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TextOrJson {
    Text,
    Json,
}

#[derive(Args)]
pub struct FingerprintArgs {
    /// The error message (otherwise one message per line on standard input, read as one
    /// corpus: words that vary between lines of one template become `<*>`)
    #[arg(long)]
    pub text: Option<String>,
    #[arg(long, short, value_enum, default_value_t = TextOrJson::Text)]
    pub format: TextOrJson,
    /// Fingerprint each line alone, by the masking rules only: the fingerprint that ingest
    /// stores in `error_fingerprint`
    #[arg(long)]
    pub per_line: bool,
    /// Say which words were taken as variables and why (JSON: an `explain` list; text: a
    /// line after each message)
    #[arg(long)]
    pub explain: bool,
}

/// What `fingerprint` prints for one line; the strings are shared by the lines of a group.
struct Outcome {
    fingerprint: Arc<str>,
    template: Arc<str>,
    explain: Option<Vec<deploylens_fingerprint::miner::Explanation>>,
}

/// One output line of `fingerprint --format json`.
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    fingerprint: &'a str,
    message: &'a str,
    template: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    explain: Option<Vec<JsonExplanation<'a>>>,
}

#[derive(serde::Serialize)]
struct JsonExplanation<'a> {
    position: usize,
    word: &'a str,
    #[serde(rename = "as")]
    placeholder: &'a str,
    why: &'a str,
}

/// Every line grouped with the others before any is printed, so that each gets its group's
/// final template; a group's id never changes once founded.
fn grouped(messages: &[String], explain: bool) -> Vec<Outcome> {
    use deploylens_fingerprint::miner::{MinerOptions, explain as why, group_corpus};
    let masked: Vec<String> = messages
        .iter()
        .map(|m| deploylens_fingerprint::template(m))
        .collect();
    let corpus = group_corpus(&masked, MinerOptions::default());
    let shown: Vec<(Arc<str>, Arc<str>)> = corpus
        .groups
        .iter()
        .map(|g| (Arc::from(g.id.as_str()), Arc::from(g.template())))
        .collect();
    masked
        .iter()
        .zip(&corpus.assignment)
        .map(|(t, &g)| Outcome {
            fingerprint: shown[g].0.clone(),
            template: shown[g].1.clone(),
            explain: explain.then(|| why(t, &corpus.groups[g])),
        })
        .collect()
}

/// One line by the masking rules alone.
fn line_alone(message: &str, explain: bool) -> Outcome {
    let a = deploylens_fingerprint::analyze(message);
    let explain = explain.then(|| {
        let mut miner = deploylens_fingerprint::miner::Miner::default();
        let g = miner.add_template(&a.template);
        deploylens_fingerprint::miner::explain(&a.template, miner.group(g))
    });
    Outcome {
        fingerprint: Arc::from(a.fingerprint),
        template: Arc::from(a.template),
        explain,
    }
}

pub fn fingerprint(args: FingerprintArgs) -> anyhow::Result<ExitCode> {
    if args.per_line && !args.explain && args.text.is_none() {
        return fingerprint_stream(args.format);
    }
    let messages: Vec<String> = match &args.text {
        Some(t) => vec![t.clone()],
        None => {
            let mut all = Vec::new();
            for line in std::io::stdin().lock().lines() {
                let line = line.context("reading standard input")?;
                if !line.trim().is_empty() {
                    all.push(line);
                }
            }
            all
        }
    };
    let outcomes = if args.per_line {
        messages.iter().map(|m| line_alone(m, args.explain)).collect()
    } else {
        grouped(&messages, args.explain)
    };
    // Buffered: standard output alone writes each line with its own system call.
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    for (message, o) in messages.iter().zip(outcomes) {
        match args.format {
            TextOrJson::Text => {
                writeln!(out, "{}\t{}", o.fingerprint, o.template)?;
                for e in o.explain.iter().flatten() {
                    writeln!(out, "  {} -> {}: {}", e.word, e.placeholder, e.why)?;
                }
            }
            TextOrJson::Json => {
                let line = JsonLine {
                    fingerprint: &o.fingerprint,
                    message,
                    template: &o.template,
                    explain: o.explain.as_ref().map(|e| {
                        e.iter()
                            .map(|e| JsonExplanation {
                                position: e.position,
                                word: &e.word,
                                placeholder: &e.placeholder,
                                why: &e.why,
                            })
                            .collect()
                    }),
                };
                serde_json::to_writer(&mut out, &line)?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `--per-line` over standard input: each line is read, masked and printed before the next,
/// through reused buffers, so that memory stays flat whatever the input's length.
fn fingerprint_stream(format: TextOrJson) -> anyhow::Result<ExitCode> {
    use std::io::BufRead;
    // Large buffers: standard input alone reads 8 KiB at a time.
    let mut input = std::io::BufReader::with_capacity(1 << 20, std::io::stdin().lock());
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut raw = Vec::new();
    let mut template = String::new();
    loop {
        raw.clear();
        if input
            .read_until(b'\n', &mut raw)
            .context("reading standard input")?
            == 0
        {
            break;
        }
        let line = std::str::from_utf8(&raw).context("reading standard input: not UTF-8")?;
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        deploylens_fingerprint::template_into(line, &mut template);
        let hex = deploylens_fingerprint::fingerprint_hex(&template);
        let fingerprint = std::str::from_utf8(&hex).unwrap_or_default();
        match format {
            TextOrJson::Text => writeln!(out, "{fingerprint}\t{template}")?,
            TextOrJson::Json => {
                let json = JsonLine {
                    fingerprint,
                    message: line,
                    template: &template,
                    explain: None,
                };
                serde_json::to_writer(&mut out, &json)?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct FixesArgs {
    /// The error you are seeing, e.g. "ERROR: Health check timeout after 45s"
    pub error: String,
    /// How many results
    #[arg(long, short, default_value_t = 5)]
    pub limit: usize,
    #[arg(long, short, value_enum, default_value_t = TextOrJson::Text)]
    pub format: TextOrJson,
}

pub async fn fixes(g: &Global, args: FixesArgs) -> anyhow::Result<ExitCode> {
    let engine = open_engine(g, None).await?;
    let index = load_index(&engine).await?;
    let hits = index.search(
        &args.error,
        SearchOptions {
            limit: args.limit.max(1),
            now_us: now_us(),
        },
    );
    match args.format {
        TextOrJson::Json => println!("{}", serde_json::to_string_pretty(&hits)?),
        TextOrJson::Text => {
            if hits.is_empty() {
                println!(
                    "no past failure looks like this ({} failures searched)",
                    index.len()
                );
            }
            for (i, h) in hits.iter().enumerate() {
                println!(
                    "{}. [{:.2}] {} {} at {} ({})",
                    i + 1,
                    h.score,
                    h.repository,
                    h.environment,
                    h.time,
                    h.why
                );
                println!("   error: {}", h.error);
                match &h.fix {
                    Some(fix) => println!("   fix:   {fix}"),
                    None => println!("   fix:   (none recorded)"),
                }
                let resolution = h
                    .resolution_time_seconds
                    .map(|s| format!(", resolved in {s:.0}s"))
                    .unwrap_or_default();
                println!(
                    "   seen {} time(s) with this fix, in {} repositories{resolution}; fingerprint {}",
                    h.occurrences, h.repositories, h.fingerprint
                );
                println!(
                    "   from:  {}:{} (event {})",
                    h.source_file, h.source_line, h.event_id
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct KnowledgeArgs {
    #[command(subcommand)]
    pub what: KnowledgeWhat,
}

#[derive(Subcommand)]
pub enum KnowledgeWhat {
    /// Write one JSON line per error fingerprint: template, examples, occurrences, fixes
    Export(KnowledgeExportArgs),
}

#[derive(Args)]
pub struct KnowledgeExportArgs {
    /// Where to write it
    #[arg(
        long,
        short,
        default_value = ".chora/memory/knowledge/deployment-failures.jsonl"
    )]
    pub output: PathBuf,
}

pub async fn knowledge(g: &Global, args: KnowledgeArgs) -> anyhow::Result<ExitCode> {
    let KnowledgeWhat::Export(args) = args.what;
    let engine = open_engine(g, None).await?;
    if let Some(dir) = args.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // Written beside, then renamed: a reader never sees half a file.
    let tmp = args.output.with_extension("jsonl.tmp");
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?,
    );
    let lines = export_knowledge(&engine, &mut file).await?;
    file.flush()?;
    drop(file);
    std::fs::rename(&tmp, &args.output).with_context(|| format!("writing {}", args.output.display()))?;
    if !g.quiet {
        eprintln!("wrote {lines} failure fingerprints to {}", args.output.display());
    }
    Ok(ExitCode::SUCCESS)
}
