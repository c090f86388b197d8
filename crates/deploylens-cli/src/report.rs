//! `deploylens report`: the canned queries of `queries/`, over a window.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use deploylens_query::{Engine, EngineOptions, Granularity, Window, canned_queries, canned_query};
use deploylens_store::Location;

use crate::Global;
use crate::output::{self, Format};

/// The reports shown when no name is given.
const SUMMARY: &[&str] = &["success_rate", "duration_percentiles", "time_to_restore", "dora"];

#[derive(Args)]
pub struct ReportArgs {
    /// A canned query (see --list); without one, a summary of the main reports
    pub name: Option<String>,
    /// Window length ending at --as-of: 1h, 24h, 7d, 30d, 2w, or all
    #[arg(long, short, default_value = "7d")]
    pub window: String,
    /// End of the window (RFC 3339 or YYYY-MM-DD); default now
    #[arg(long)]
    pub as_of: Option<String>,
    /// Divide the window into periods, each a window of its own: day (UTC), week (ISO, from
    /// Monday) or month; each row gains period_start and period_end
    #[arg(long, short = 'g', value_name = "PERIOD", value_parser = ["day", "week", "month"])]
    pub granularity: Option<String>,
    /// List the canned queries and their descriptions
    #[arg(long)]
    pub list: bool,
    /// Run every canned query (what a dashboard refresh does)
    #[arg(long, conflicts_with = "name")]
    pub all: bool,
    #[arg(long, short, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Read the events table as of this table version (time travel)
    #[arg(long, value_name = "N")]
    pub as_of_version: Option<u64>,
}

/// Fails with what to do when a local data directory holds no store.
pub fn check_store(g: &Global) -> anyhow::Result<Location> {
    let location = g.location()?;
    if let Some(dir) = location.local_path()
        && !dir.join("events").join("_delta_log").is_dir()
        && !dir.join("store").is_dir()
    {
        anyhow::bail!(
            "no store in {}: run `deploylens ingest ROOT...` first, or point --data-dir / DEPLOYLENS_DATA_DIR at an existing one",
            dir.display()
        );
    }
    Ok(location)
}

/// The engine over the store's newest snapshot (or the events table as of `version`).
pub async fn open_engine(g: &Global, version: Option<u64>) -> anyhow::Result<Engine> {
    let location = check_store(g)?;
    Engine::open(&location, version, EngineOptions::default())
        .await
        .with_context(|| format!("opening the store in {location}"))
}

pub fn window_of(window: &str, as_of: Option<&str>) -> anyhow::Result<Window> {
    Ok(Window::parse(window, as_of)?)
}

pub async fn run(g: &Global, args: ReportArgs) -> anyhow::Result<ExitCode> {
    if args.list {
        for q in canned_queries().into_iter().filter(|q| !q.is_view) {
            println!("{:<24} {}", q.name, q.description);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let window = window_of(&args.window, args.as_of.as_deref())?;
    let granularity = Granularity::parse(args.granularity.as_deref().unwrap_or(""))?;
    let engine = open_engine(g, args.as_of_version).await?;
    let every: Vec<String> = canned_queries()
        .into_iter()
        .filter(|q| !q.is_view)
        .map(|q| q.name)
        .collect();
    let names: Vec<&str> = match &args.name {
        Some(n) => vec![n.as_str()],
        None if args.all => every.iter().map(String::as_str).collect(),
        None => SUMMARY.to_vec(),
    };
    // Several reports as JSON: one document, an object of arrays keyed by report name.
    let one_document = names.len() > 1 && args.format == Format::Json;
    let mut document = serde_json::Map::new();
    for name in &names {
        let query = canned_query(name)
            .with_context(|| format!("no report named {name:?}; `deploylens report --list` shows them"))?;
        let (schema, batches) = engine.canned_by_period(&query, window, granularity).await?;
        if one_document {
            let rows =
                deploylens_query::encode::to_vec(&schema, &batches, deploylens_query::encode::Format::Json)?;
            document.insert(query.name.clone(), serde_json::from_slice(&rows)?);
            continue;
        }
        if names.len() > 1 && args.format == Format::Table {
            println!("\n== {} ({}) ==", query.name, args.window);
        }
        output::print(&schema, &batches, args.format)?;
    }
    if one_document {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, &document)?;
        writeln!(out)?;
    }
    Ok(ExitCode::SUCCESS)
}
