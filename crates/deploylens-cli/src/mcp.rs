//! `deploylens mcp`: the Model Context Protocol on stdio, for AI agents. Three tools:
//! `search_past_fixes` (the `fixes` search), `run_sql` (read-only SQL, bounded rows and time)
//! and `deployment_summary` (the main reports over a window).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use deploylens_knowledge::{Index, SearchOptions};
use deploylens_query::{EngineOptions, FollowingEngine, SqlLimits, SqlRunner, now_us};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{ServiceExt, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;
use tokio::sync::RwLock;

use crate::Global;
use crate::report::window_of;

#[derive(Args)]
pub struct McpArgs {
    /// Most rows run_sql returns
    #[arg(long, default_value_t = 1000)]
    pub max_rows: usize,
    /// Longest a run_sql query may run
    #[arg(long, default_value = "10s", value_parser = crate::args::parse_duration)]
    pub timeout: Duration,
    /// Memory for run_sql queries, in MiB (past it a query fails)
    #[arg(long, default_value_t = 512)]
    pub memory_mib: usize,
}

/// The tools, over an engine that follows the store: each call answers from the newest
/// snapshot, and the past-failure index is rebuilt when the snapshot changed.
#[derive(Clone)]
struct Tools {
    engine: Arc<FollowingEngine>,
    index: Arc<RwLock<Arc<Index>>>,
    sql: SqlRunner,
}

impl Tools {
    async fn engine(&self) -> Result<Arc<deploylens_query::Engine>, String> {
        let (engine, fresh) = self.engine.get().await.map_err(|e| e.to_string())?;
        if fresh {
            let index = deploylens_query::load_index(&engine)
                .await
                .map_err(|e| e.to_string())?;
            *self.index.write().await = Arc::new(index);
        }
        Ok(engine)
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
struct SearchArgs {
    /// The error message seen, as printed (numbers, hosts and paths may differ from the past)
    error: String,
    /// How many results (default 5)
    limit: Option<usize>,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct SqlArgs {
    /// One read-only SQL query over the tables events, rejects and the views deployments, restores
    sql: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct SummaryArgs {
    /// Window length: 1h, 24h, 7d, 30d or all (default 7d)
    window: Option<String>,
}

fn json_rows(
    schema: &arrow::datatypes::SchemaRef,
    batches: &[arrow::array::RecordBatch],
) -> Result<String, String> {
    let out = deploylens_query::encode::to_vec(schema, batches, deploylens_query::encode::Format::Json)
        .map_err(|e| e.to_string())?;
    String::from_utf8(out).map_err(|e| e.to_string())
}

#[tool_router]
impl Tools {
    #[tool(
        description = "Search past deployment failures for the same or a similar error and return what fixed them, best first: repository, environment, time, error, fix, resolution time, score and why it matched."
    )]
    async fn search_past_fixes(&self, Parameters(args): Parameters<SearchArgs>) -> Result<String, String> {
        self.engine().await?;
        let index = self.index.read().await.clone();
        let hits = index.search(
            &args.error,
            SearchOptions {
                limit: args.limit.unwrap_or(5).clamp(1, 50),
                now_us: now_us(),
            },
        );
        serde_json::to_string_pretty(&hits).map_err(|e| e.to_string())
    }

    #[tool(
        description = "Run one read-only SQL query (DataFusion dialect) over deployment history. Tables: events, rejects; views: deployments (one row per deployment attempt), deployment_attempts (attempt number, final outcome, rolled back), failure_occurrences, restores (failure streaks). Returns JSON rows."
    )]
    async fn run_sql(&self, Parameters(args): Parameters<SqlArgs>) -> Result<String, String> {
        let engine = self.engine().await?;
        let result = self.sql.run(engine, args.sql).await.map_err(|e| e.to_string())?;
        let rows = json_rows(&result.schema, &result.batches)?;
        if !result.warnings.is_empty() {
            let warnings = serde_json::to_string(&result.warnings).map_err(|e| e.to_string())?;
            return Ok(format!(
                "{{\"rows\": {rows}, \"truncated\": {}, \"warnings\": {warnings}}}",
                result.truncated
            ));
        }
        if result.truncated {
            return Ok(format!(
                "{{\"rows\": {rows}, \"truncated\": true, \"note\": \"more rows than the limit of {}; add LIMIT or aggregate\"}}",
                self.sql.limits().max_rows.unwrap_or(0)
            ));
        }
        Ok(rows)
    }

    #[tool(
        description = "Summary of deployments over a window: success rate per repository and environment, exact p50/p95/p99 durations, time to restore and the DORA figures."
    )]
    async fn deployment_summary(&self, Parameters(args): Parameters<SummaryArgs>) -> Result<String, String> {
        let window = window_of(args.window.as_deref().unwrap_or("7d"), None).map_err(|e| e.to_string())?;
        let mut summary = serde_json::Map::new();
        for name in ["success_rate", "duration_percentiles", "time_to_restore", "dora"] {
            let query =
                deploylens_query::canned_query(name).ok_or_else(|| format!("no canned query {name}"))?;
            let result = self
                .sql
                .canned(self.engine().await?, query, window)
                .await
                .map_err(|e| e.to_string())?;
            let rows: serde_json::Value = serde_json::from_str(&json_rows(&result.schema, &result.batches)?)
                .map_err(|e| e.to_string())?;
            summary.insert(name.to_string(), rows);
        }
        serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())
    }
}

#[tool_handler(
    name = "deploylens",
    instructions = "Deployment history of many repositories. Ask search_past_fixes before debugging a deployment failure; use run_sql for anything else."
)]
impl rmcp::ServerHandler for Tools {}

pub async fn run(g: &Global, args: McpArgs) -> anyhow::Result<ExitCode> {
    let location = crate::report::check_store(g)?;
    let opts = EngineOptions {
        memory_limit: Some(args.memory_mib.max(1) << 20),
        ..EngineOptions::default()
    };
    let engine = FollowingEngine::open(&location, opts).await?;
    let (first, _) = engine.get().await?;
    let index = deploylens_query::load_index(&first).await?;
    let sql = SqlRunner::new(SqlLimits {
        timeout: Some(args.timeout),
        max_rows: Some(args.max_rows),
        memory_bytes: opts.memory_limit,
        ..SqlLimits::network()
    })?;
    let tools = Tools {
        engine: Arc::new(engine),
        index: Arc::new(RwLock::new(Arc::new(index))),
        sql,
    };
    let service = tools
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| anyhow::anyhow!("MCP handshake failed: {e}"))?;
    service
        .waiting()
        .await
        .map_err(|e| anyhow::anyhow!("MCP session ended with an error: {e}"))?;
    Ok(ExitCode::SUCCESS)
}
