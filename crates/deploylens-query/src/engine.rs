//! The DataFusion session over one snapshot of the store.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::MemTable;
use datafusion::common::DataFusionError;
use datafusion::datasource::TableProvider;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{DataFrame, SQLOptions, SessionConfig, SessionContext};

use deploylens_model::schema::{events_schema, rejects_schema};
use deploylens_store::{StoreError, StoreSnapshot};

use crate::canned::{CannedQuery, canned_queries};
use crate::functions::{error_template_udf, fingerprint_udf};
use crate::percentile::percentile_cont_udaf;
use crate::view::MaterializedView;
use crate::window::Window;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no canned query named {0:?}; `deploylens report --list` shows them")]
    UnknownQuery(String),
    #[error("{0}")]
    Refused(String),
    #[error("view {name} in queries/views failed: {source}")]
    View { name: String, source: DataFusionError },
}

/// Limits of a session.
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    /// Memory for query execution, in bytes (sorts and aggregations fail past it, without
    /// spilling to disk).
    pub memory_limit: Option<usize>,
    pub target_partitions: usize,
    /// Memory for the rows of each view kept per snapshot; a view over it is computed per query.
    pub view_cache_bytes: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        EngineOptions {
            memory_limit: None,
            target_partitions: cores,
            view_cache_bytes: 1 << 30,
        }
    }
}

/// A SQL session over a snapshot of the store: `events`, `rejects`, the views and functions.
pub struct Engine {
    ctx: SessionContext,
    snapshot: StoreSnapshot,
    /// `events`, `rejects` and the views, in creation order: what a sibling engine shares.
    tables: Vec<(String, Arc<dyn TableProvider>)>,
}

impl Engine {
    /// Opens the current snapshot of a data directory (no lock: readers never block the writer).
    pub async fn open(data_dir: &Path, opts: EngineOptions) -> Result<Engine, QueryError> {
        let snapshot = StoreSnapshot::read(data_dir)?;
        Engine::from_snapshot(snapshot, opts).await
    }

    pub async fn from_snapshot(snapshot: StoreSnapshot, opts: EngineOptions) -> Result<Engine, QueryError> {
        let ctx = session(opts)?;
        let mut engine = Engine {
            ctx,
            snapshot,
            tables: Vec::new(),
        };
        let events = table(&engine.snapshot.event_files(), events_schema()).await?;
        engine.add_table("events", events)?;
        let rejects = table(&engine.snapshot.reject_files(), rejects_schema()).await?;
        engine.add_table("rejects", rejects)?;
        engine.create_views(opts).await?;
        Ok(engine)
    }

    /// An engine over the same snapshot with other limits. It shares the tables and the views,
    /// so a view computed by one is not computed again by the other.
    pub fn sibling(&self, opts: EngineOptions) -> Result<Engine, QueryError> {
        let mut engine = Engine {
            ctx: session(opts)?,
            snapshot: self.snapshot.clone(),
            tables: Vec::new(),
        };
        for (name, provider) in &self.tables {
            engine.add_table(name, provider.clone())?;
        }
        Ok(engine)
    }

    fn add_table(&mut self, name: &str, provider: Arc<dyn TableProvider>) -> Result<(), QueryError> {
        self.ctx.register_table(name, provider.clone())?;
        self.tables.push((name.to_string(), provider));
        Ok(())
    }

    pub fn snapshot(&self) -> &StoreSnapshot {
        &self.snapshot
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Views may build on each other: create them in passes until all exist. Each is a
    /// [`MaterializedView`], computed once per snapshot when first read.
    async fn create_views(&mut self, opts: EngineOptions) -> Result<(), QueryError> {
        let mut pending: Vec<CannedQuery> = canned_queries().into_iter().filter(|q| q.is_view).collect();
        while !pending.is_empty() {
            let mut failed = Vec::new();
            let mut last_error = None;
            let before = pending.len();
            for view in pending {
                let sql = strip_comments(view.sql);
                match self.ctx.state().create_logical_plan(&sql).await {
                    Ok(plan) => {
                        let provider = MaterializedView::new(&view.name, plan, &sql, opts.view_cache_bytes);
                        self.add_table(&view.name, Arc::new(provider))?;
                    }
                    Err(e) => {
                        last_error = Some((view.name.clone(), e));
                        failed.push(view);
                    }
                }
            }
            if failed.len() == before
                && let Some((name, source)) = last_error
            {
                return Err(QueryError::View { name, source });
            }
            pending = failed;
        }
        Ok(())
    }

    /// Runs read-only SQL: statements that change anything (DDL, DML, COPY, SET...) are refused.
    pub async fn sql(&self, sql: &str) -> Result<DataFrame, QueryError> {
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        Ok(self.ctx.sql_with_options(sql, options).await?)
    }

    pub async fn sql_collect(&self, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
        Ok(self.sql(sql).await?.collect().await?)
    }

    /// Runs a canned query over a window. The parameters are bound as literals before planning,
    /// so they can be used anywhere (even to generate the days of a series).
    pub async fn canned(&self, query: &CannedQuery, window: Window) -> Result<DataFrame, QueryError> {
        let window = self.clamp_to_history(window).await?;
        self.sql(&bind_window(query.sql, window)).await
    }

    /// A window reaching back before the first event starts at that event's day instead: days
    /// before any history are "no data", not days with zero deployments.
    pub async fn clamp_to_history(&self, window: Window) -> Result<Window, QueryError> {
        let batches = self
            .ctx
            .sql("SELECT CAST(min(timestamp) AS BIGINT) FROM events")
            .await?
            .collect()
            .await?;
        let first = batches.first().filter(|b| b.num_rows() > 0).and_then(|b| {
            b.column(0)
                .as_primitive_opt::<Int64Type>()
                .filter(|a| a.is_valid(0))
                .map(|a| a.value(0))
        });
        Ok(match first {
            Some(first_us) => {
                let day_start = first_us - first_us.rem_euclid(86_400_000_000);
                Window {
                    start_us: window.start_us.max(day_start),
                    end_us: window.end_us,
                }
            }
            None => window,
        })
    }

    pub async fn canned_by_name(&self, name: &str, window: Window) -> Result<Vec<RecordBatch>, QueryError> {
        let query =
            crate::canned::canned_query(name).ok_or_else(|| QueryError::UnknownQuery(name.to_string()))?;
        Ok(self.canned(&query, window).await?.collect().await?)
    }
}

/// A session with the limits of `opts` and deploylens' functions, but no tables yet.
fn session(opts: EngineOptions) -> Result<SessionContext, QueryError> {
    let config = SessionConfig::new()
        .with_information_schema(true)
        .with_target_partitions(opts.target_partitions.max(1))
        .with_default_catalog_and_schema("deploylens", "public");
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(limit) = opts.memory_limit {
        runtime = runtime.with_memory_limit(limit, 1.0).with_disk_manager_builder(
            datafusion::execution::disk_manager::DiskManagerBuilder::default()
                .with_mode(datafusion::execution::disk_manager::DiskManagerMode::Disabled),
        );
    }
    let ctx = SessionContext::new_with_config_rt(config, runtime.build_arc()?);
    ctx.register_udaf(percentile_cont_udaf());
    ctx.register_udf(fingerprint_udf());
    ctx.register_udf(error_template_udf());
    Ok(ctx)
}

/// Replaces `$start`, `$end` and `$window_days` with literals of the window.
pub fn bind_window(sql: &str, window: Window) -> String {
    let ts = |us: i64| {
        let text = chrono::DateTime::<chrono::Utc>::from_timestamp_micros(us)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        format!("arrow_cast('{text}', 'Timestamp(Microsecond, Some(\"UTC\"))')")
    };
    let values = [
        ("start", ts(window.start_us)),
        ("end", ts(window.end_us)),
        ("window_days", format!("CAST({:?} AS DOUBLE)", window.days())),
    ];
    let mut out = String::with_capacity(sql.len() + 128);
    let mut rest = sql;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        match values.iter().find(|(name, _)| *name == &after[..len]) {
            Some((_, literal)) => out.push_str(literal),
            None => out.push_str(&rest[i..i + 1 + len]),
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// SQL without its leading header comments (CREATE VIEW wants a bare query).
fn strip_comments(sql: &str) -> String {
    sql.lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn table(
    files: &[std::path::PathBuf],
    schema: SchemaRef,
) -> Result<Arc<dyn TableProvider>, QueryError> {
    if files.is_empty() {
        return Ok(Arc::new(MemTable::try_new(schema, vec![vec![]])?));
    }
    let mut urls = Vec::with_capacity(files.len());
    for f in files {
        let abs = std::fs::canonicalize(f).unwrap_or_else(|_| f.clone());
        urls.push(ListingTableUrl::parse(abs.to_string_lossy())?);
    }
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// Limits of an ad-hoc query from the network.
#[derive(Debug, Clone, Copy)]
pub struct AdhocLimits {
    /// Rows returned at most; one more is fetched to tell whether the result was cut.
    pub max_rows: usize,
}

/// The rows of an ad-hoc query, and whether more rows were left out.
pub struct AdhocResult {
    pub schema: datafusion::arrow::datatypes::SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub truncated: bool,
}

impl Engine {
    /// Plans read-only SQL for an untrusted caller and runs it with a row limit. Plans with a
    /// cross join or a nested-loop join are refused: their work grows with the product of the
    /// inputs and DataFusion cannot stop them promptly when a timeout fires.
    pub async fn adhoc(&self, sql: &str, limits: AdhocLimits) -> Result<AdhocResult, QueryError> {
        let df = self.sql(sql).await?;
        let df = df.limit(0, Some(limits.max_rows.saturating_add(1)))?;
        let plan = df.clone().create_physical_plan().await?;
        if let Some(name) = find_unbounded_join(plan.as_ref()) {
            return Err(QueryError::Refused(format!(
                "the query needs a {name}, whose cost grows with the product of its inputs; join on equal keys instead, or run it with `deploylens sql` on the machine"
            )));
        }
        let schema = plan.schema();
        let batches = datafusion::physical_plan::collect(plan, self.ctx.task_ctx()).await?;
        let mut rows = 0usize;
        let mut kept = Vec::new();
        let mut truncated = false;
        for b in batches {
            if rows + b.num_rows() > limits.max_rows {
                kept.push(b.slice(0, limits.max_rows - rows));
                truncated = true;
                break;
            }
            rows += b.num_rows();
            kept.push(b);
        }
        Ok(AdhocResult {
            schema,
            batches: kept,
            truncated,
        })
    }
}

fn find_unbounded_join(plan: &dyn datafusion::physical_plan::ExecutionPlan) -> Option<&'static str> {
    match plan.name() {
        "CrossJoinExec" => return Some("cross join"),
        "NestedLoopJoinExec" => return Some("nested-loop join (a join without equal keys)"),
        _ => {}
    }
    plan.children()
        .into_iter()
        .find_map(|c| find_unbounded_join(c.as_ref()))
}
