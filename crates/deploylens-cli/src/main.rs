//! `deploylens`: deployment history from every repository's `deployment.jsonl`, as SQL,
//! reports, metrics and answers.

mod args;
mod config;
mod demo;
mod export;
mod ingest;
mod knowledge;
mod mcp;
mod output;
mod report;
mod serve;
mod store;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use output::Format;

#[derive(Parser)]
#[command(
    name = "deploylens",
    version,
    about = "Collects deployment events from many repositories and answers questions about them",
    long_about = "deploylens collects the deployment events that repositories append to \
.chora/memory/events/deployment.jsonl, validates every line, stores them as Parquet in a local \
data directory and answers with SQL, reports, Prometheus metrics and past fixes.\n\n\
Start with:  deploylens ingest ROOT...  then  deploylens report"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Global {
    /// The store: a local folder, or object storage (s3://bucket/prefix)
    #[arg(long, global = true, env = "DEPLOYLENS_DATA_DIR", default_value = deploylens_store::DEFAULT_DATA_DIR, value_name = "PATH|URL")]
    data_dir: String,
    /// Print only results and errors
    #[arg(long, short, global = true)]
    quiet: bool,
    /// More log output (-v info, -vv debug); RUST_LOG overrides
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// TOML configuration file; its settings apply where no flag or environment variable is given
    #[arg(long, global = true, env = "DEPLOYLENS_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Read every deployment.jsonl under the roots into the store (only what is new)
    Ingest(ingest::IngestArgs),
    /// Run read-only SQL over the tables `events`, `rejects` and the views
    Sql(SqlArgs),
    /// Run a canned query (or a summary of the main ones) over a time window
    Report(report::ReportArgs),
    /// Check files strictly against the event schema; exits 1 if any line fails
    Validate(validate::ValidateArgs),
    /// Generate a realistic demo ecosystem of repositories
    Demo(demo::DemoArgs),
    /// Scan the roots, then keep the store current and serve HTTP (health, metrics, API)
    Serve(Box<serve::ServeArgs>),
    /// Export history for other tools (OpenMetrics for Prometheus backfill)
    Export(export::ExportArgs),
    /// Print the template and fingerprint of error messages, learning templates from all lines read
    Fingerprint(knowledge::FingerprintArgs),
    /// Has anyone seen this error before, and what fixed it?
    Fixes(knowledge::FixesArgs),
    /// Failure knowledge for agents: export the knowledge file
    Knowledge(knowledge::KnowledgeArgs),
    /// Serve the Model Context Protocol on stdio (tools: search_past_fixes, run_sql, deployment_summary)
    Mcp(mcp::McpArgs),
    /// Configuration files: check one
    Config(config::ConfigArgs),
    /// The store: convert an old data directory, show the tables' history
    Store(store::StoreArgs),
}

#[derive(Args)]
struct SqlArgs {
    /// The SQL query, e.g. "SELECT repository, count(*) FROM deployments GROUP BY 1"; `-` reads
    /// it from standard input. It may begin with a `-- comment`
    #[arg(
        allow_hyphen_values = true,
        required_unless_present = "file",
        conflicts_with = "file"
    )]
    query: Option<String>,
    /// Read the SQL query from this file
    #[arg(long, value_name = "FILE")]
    file: Option<std::path::PathBuf>,
    /// Query the events table as of this table version (time travel; see `deploylens store history`)
    #[arg(long, value_name = "N")]
    as_of_version: Option<u64>,
    /// Output format
    #[arg(long, short, value_enum, default_value_t = Format::Table)]
    format: Format,
}

impl Global {
    /// The store named by `--data-dir`.
    fn location(&self) -> anyhow::Result<deploylens_store::Location> {
        Ok(deploylens_store::Location::parse(&self.data_dir)?)
    }
}

fn init_logging(global: &Global) {
    let default = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    if let Err(e) = config::apply() {
        eprintln!("error: {e}\ncheck it with: deploylens config check FILE");
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    // SIGPIPE stays ignored (Rust's default): a write to a closed pipe is an error that ends the
    // command quietly with status 0, and a closed socket is only an error of that request.
    exit_quietly_on_closed_stdout();
    init_logging(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(run(cli));
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The query of `deploylens sql`: the argument, standard input (`-`) or `--file`.
fn sql_text(args: &SqlArgs) -> anyhow::Result<String> {
    use anyhow::Context;
    match (&args.query, &args.file) {
        (_, Some(path)) => {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
        }
        (Some(q), None) if q == "-" => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("cannot read the query from standard input")?;
            Ok(text)
        }
        (Some(q), None) => Ok(q.clone()),
        (None, None) => anyhow::bail!("no query: give it as an argument, `-` for standard input, or --file"),
    }
}

/// `println!` panics when standard output is closed: such a panic ends the process quietly,
/// with status 0, as a closed pipe does for the commands that write through `output`.
fn exit_quietly_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// Output piped into `head` that closed early is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.to_string().contains("Broken pipe")
    })
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let g = cli.global;
    match cli.command {
        Command::Ingest(args) => ingest::run(&g, args).await,
        Command::Sql(args) => {
            let engine = std::sync::Arc::new(report::open_engine(&g, args.as_of_version).await?);
            // The same checks as every other face, without its time, row or memory limits.
            let runner = deploylens_query::SqlRunner::new(deploylens_query::SqlLimits::local())?;
            let result = runner.run(engine, sql_text(&args)?).await?;
            for w in &result.warnings {
                eprintln!("warning: {w}");
            }
            output::print(&result.schema, &result.batches, args.format)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(args) => report::run(&g, args).await,
        Command::Validate(args) => validate::run(&g, args),
        Command::Demo(args) => demo::run(&g, args),
        Command::Serve(args) => serve::run(&g, *args).await,
        Command::Export(args) => export::run(&g, args).await,
        Command::Fingerprint(args) => knowledge::fingerprint(args),
        Command::Fixes(args) => knowledge::fixes(&g, args).await,
        Command::Knowledge(args) => knowledge::knowledge(&g, args).await,
        Command::Mcp(args) => mcp::run(&g, args).await,
        Command::Config(args) => config::run(args),
        Command::Store(args) => store::run(&g, args).await,
    }
}
