//! `deploylens export openmetrics`: past values for `promtool tsdb create-blocks-from openmetrics`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use deploylens_export::{BackfillOptions, write_openmetrics};

use crate::Global;
use crate::args::parse_duration;
use crate::report::open_engine;

#[derive(Args)]
pub struct ExportArgs {
    #[command(subcommand)]
    pub what: ExportWhat,
}

#[derive(Subcommand)]
pub enum ExportWhat {
    /// Write history as OpenMetrics text for backfilling Prometheus
    Openmetrics(OpenMetricsArgs),
}

#[derive(Args)]
pub struct OpenMetricsArgs {
    /// Output file (standard output if omitted)
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Time between samples
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub step: std::time::Duration,
    /// Last sample time (RFC 3339 or YYYY-MM-DD); default now
    #[arg(long)]
    pub end: Option<String>,
}

pub async fn run(g: &Global, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let ExportWhat::Openmetrics(args) = args.what;
    let engine = open_engine(g, None).await?;
    let end = match &args.end {
        Some(t) => deploylens_query::parse_timestamp(t)? / 1_000_000,
        None => deploylens_query::now_us() / 1_000_000,
    };
    let opts = BackfillOptions {
        step_seconds: args.step.as_secs() as i64,
        end_unix: end,
    };
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let samples = write_openmetrics(&engine, opts, &mut out).await?;
    out.flush()?;
    if !g.quiet && args.output.is_some() {
        eprintln!(
            "wrote {samples} samples; load them with: promtool tsdb create-blocks-from openmetrics FILE DATA_DIR"
        );
    }
    Ok(ExitCode::SUCCESS)
}
