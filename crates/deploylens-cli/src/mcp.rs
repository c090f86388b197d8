//! `deploylens mcp`: the Model Context Protocol on stdio, for AI agents. Three tools:
//! `search_past_fixes` (the `fixes` search), `run_sql` (read-only SQL, bounded rows and time)
//! and `deployment_summary` (the main reports over a window).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use deploylens_knowledge::{Index, SearchOptions};
use deploylens_query::{Engine, now_us};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{ServiceExt, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;

use crate::Global;
use crate::report::{open_engine, window_of};

#[derive(Args)]
pub struct McpArgs {
    /// Most rows run_sql returns
    #[arg(long, default_value_t = 1000)]
    pub max_rows: usize,
    /// Longest a run_sql query may run
    #[arg(long, default_value = "10s", value_parser = crate::serve::parse_duration)]
    pub timeout: Duration,
}

#[derive(Clone)]
struct Tools {
    engine: Arc<Engine>,
    index: Arc<Index>,
    max_rows: usize,
    timeout: Duration,
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

fn json_rows(batches: &[arrow::array::RecordBatch]) -> Result<String, String> {
    let mut out = Vec::new();
    crate::output::write(&mut out, batches, crate::output::Format::Json).map_err(|e| e.to_string())?;
    String::from_utf8(out).map_err(|e| e.to_string())
}

#[tool_router]
impl Tools {
    #[tool(
        description = "Search past deployment failures for the same or a similar error and return what fixed them, best first: repository, environment, time, error, fix, resolution time, score and why it matched."
    )]
    async fn search_past_fixes(&self, Parameters(args): Parameters<SearchArgs>) -> Result<String, String> {
        let hits = self.index.search(
            &args.error,
            SearchOptions {
                limit: args.limit.unwrap_or(5).clamp(1, 50),
                now_us: now_us(),
            },
        );
        serde_json::to_string_pretty(&hits).map_err(|e| e.to_string())
    }

    #[tool(
        description = "Run one read-only SQL query (DataFusion dialect) over deployment history. Tables: events, rejects; views: deployments (one row per deployment attempt), restores (failure streaks). Returns JSON rows."
    )]
    async fn run_sql(&self, Parameters(args): Parameters<SqlArgs>) -> Result<String, String> {
        let run = async {
            let df = self.engine.sql(&args.sql).await.map_err(|e| e.to_string())?;
            df.limit(0, Some(self.max_rows))
                .map_err(|e| e.to_string())?
                .collect()
                .await
                .map_err(|e| e.to_string())
        };
        let batches = tokio::time::timeout(self.timeout, run)
            .await
            .map_err(|_| format!("the query ran longer than {:?} and was stopped", self.timeout))??;
        json_rows(&batches)
    }

    #[tool(
        description = "Summary of deployments over a window: success rate per repository and environment, exact p50/p95/p99 durations, time to restore and the DORA figures."
    )]
    async fn deployment_summary(&self, Parameters(args): Parameters<SummaryArgs>) -> Result<String, String> {
        let window = window_of(args.window.as_deref().unwrap_or("7d"), None).map_err(|e| e.to_string())?;
        let mut summary = serde_json::Map::new();
        for name in ["success_rate", "duration_percentiles", "time_to_restore", "dora"] {
            let batches = self
                .engine
                .canned_by_name(name, window)
                .await
                .map_err(|e| e.to_string())?;
            let rows: serde_json::Value =
                serde_json::from_str(&json_rows(&batches)?).map_err(|e| e.to_string())?;
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
    let engine = Arc::new(open_engine(&g.data_dir).await?);
    let index = Arc::new(deploylens_query::load_index(&engine).await?);
    let tools = Tools {
        engine,
        index,
        max_rows: args.max_rows,
        timeout: args.timeout,
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
