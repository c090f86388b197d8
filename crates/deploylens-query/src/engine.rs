//! The DataFusion session over one snapshot of the store.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::MemTable;
use datafusion::common::{DataFusionError, ParamValues};
use datafusion::datasource::TableProvider;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{DataFrame, SQLOptions, SessionConfig, SessionContext};

use deploylens_model::schema::{events_schema, rejects_schema};
use deploylens_store::{Location, StoreError, StoreSnapshot};

use crate::canned::{CannedQuery, canned_queries};
use crate::functions::{error_template_udf, fingerprint_udf};
use crate::guard::{AdhocResult, SqlLimits, check_statement, collect_bounded};
use crate::percentile::percentile_cont_udaf;
use crate::view::MaterializedView;
use crate::window::{Granularity, Window};

/// Why a query did not answer. Each face (HTTP, MCP, the Postgres protocol, the CLI) maps the
/// kinds to its own codes; none of them is a crash.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The SQL is wrong: a syntax error, an unknown table or column, a type mismatch.
    #[error("{}", short_datafusion_message(.0))]
    DataFusion(DataFusionError),
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The SQL names a table that does not exist.
    #[error("{}", unknown_table_message(name, suggestion.as_deref(), tables))]
    UnknownTable {
        /// The name as written.
        name: String,
        /// The table (or canned query) it most likely meant.
        suggestion: Option<String>,
        /// The tables and views there are.
        tables: Vec<String>,
    },
    /// No canned report query has this name.
    #[error("no canned query named {0:?}; `deploylens report --list` shows them")]
    UnknownQuery(String),
    /// Not allowed here: a statement that changes something, a join without equal keys.
    #[error("{0}")]
    Refused(String),
    /// Expressions or subqueries nest deeper than [`SqlLimits::max_depth`].
    #[error(
        "the query nests expressions {depth} deep; the limit is {limit}: write long chains as IN (...) lists or CASE"
    )]
    TooDeep {
        /// How deep the query nests.
        depth: usize,
        /// The deepest nesting allowed.
        limit: usize,
    },
    /// The SQL text is longer than [`SqlLimits::max_sql_bytes`].
    #[error("the query is {bytes} bytes long; the limit is {limit}")]
    TooLong {
        /// Length of the SQL text, in bytes.
        bytes: usize,
        /// The longest allowed, in bytes.
        limit: usize,
    },
    /// Over a memory limit, or a value or result over its size limit.
    #[error("Resources exhausted: {0}")]
    ResourcesExhausted(String),
    /// The query ran longer than this timeout and was stopped.
    #[error(
        "the query ran longer than {0:?} and was stopped; narrow it (WHERE timestamp > ...) or add LIMIT"
    )]
    Timeout(std::time::Duration),
    /// Every one of this many concurrent query slots is taken.
    #[error("{0} queries are already running; retry shortly")]
    Busy(usize),
    /// A view of `queries/views/` could not be planned.
    #[error("view {name} in queries/views failed: {source}")]
    View {
        /// The view's name.
        name: String,
        /// Why planning it failed.
        source: DataFusionError,
    },
    /// A bug or a failed task, not the caller's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<DataFusionError> for QueryError {
    fn from(e: DataFusionError) -> Self {
        match e.find_root() {
            DataFusionError::ResourcesExhausted(m) => QueryError::ResourcesExhausted(m.clone()),
            _ => QueryError::DataFusion(e),
        }
    }
}

fn unknown_table_message(name: &str, suggestion: Option<&str>, tables: &[String]) -> String {
    if canned_queries().iter().any(|q| !q.is_view && q.name == name) {
        return format!(
            "{name} is a canned query, not a table: run it with `deploylens report {name}` or GET /api/queries/{name}; the tables are {}",
            tables.join(", ")
        );
    }
    match suggestion {
        Some(s) => format!(
            "no table named {name}; did you mean {s}? The tables are {}",
            tables.join(", ")
        ),
        None => format!("no table named {name}; the tables are {}", tables.join(", ")),
    }
}

/// The closest of `candidates` to `name`, if it is close enough to be a typo.
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    use datafusion::common::utils::datafusion_strsim::levenshtein;
    candidates
        .map(|c| (levenshtein(name, c), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min()
        .map(|(_, c)| c.to_string())
}

/// DataFusion's message without the repeated context prefixes and without a parser's dump
/// of the whole statement.
fn short_datafusion_message(e: &DataFusionError) -> String {
    let text = e.find_root().to_string();
    const MAX: usize = 600;
    if text.len() <= MAX {
        return text;
    }
    let mut cut = MAX;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{} ... ({} more bytes)", &text[..cut], text.len() - cut)
}

/// Limits of a session.
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    /// Memory for query execution, in bytes (sorts and aggregations fail past it, without
    /// spilling to disk).
    pub memory_limit: Option<usize>,
    /// Partitions DataFusion splits scans and operators into (default: the number of cores).
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

/// Which events a query reads: every event, or those of one repository and/or environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Scope {
    /// Only this repository's events.
    pub repository: Option<String>,
    /// Only events of this environment.
    pub environment: Option<String>,
}

impl Scope {
    /// No restriction.
    pub fn is_all(&self) -> bool {
        self.repository.is_none() && self.environment.is_none()
    }

    /// `events` restricted to the scope, as a view (the filter is pushed into the scan).
    fn select(&self, events: Arc<dyn TableProvider>) -> Result<Arc<dyn TableProvider>, QueryError> {
        use datafusion::logical_expr::{LogicalPlanBuilder, col, lit};
        let mut conditions = Vec::new();
        if let Some(r) = &self.repository {
            conditions.push(col("repository").eq(lit(r.as_str())));
        }
        if let Some(e) = &self.environment {
            conditions.push(col("environment").eq(lit(e.as_str())));
        }
        let mut plan =
            LogicalPlanBuilder::scan("events", datafusion::datasource::provider_as_source(events), None)?;
        if let Some(all) = conditions.into_iter().reduce(datafusion::logical_expr::Expr::and) {
            plan = plan.filter(all)?;
        }
        Ok(Arc::new(datafusion::datasource::ViewTable::new(
            plan.build()?,
            None,
        )))
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
    /// Opens the newest snapshot of a store (no lock: readers never block the writers), or the
    /// events table as of `version` (time travel).
    pub async fn open(
        location: &Location,
        version: Option<u64>,
        opts: EngineOptions,
    ) -> Result<Engine, QueryError> {
        if deploylens_store::legacy::needs_migration(location) {
            return Err(QueryError::Store(StoreError::NeedsMigration(
                location.to_string(),
            )));
        }
        let snapshot = StoreSnapshot::load(location, version).await?;
        Engine::from_snapshot(snapshot, opts).await
    }

    /// Opens an engine over a snapshot already read: its tables, views and functions.
    pub async fn from_snapshot(snapshot: StoreSnapshot, opts: EngineOptions) -> Result<Engine, QueryError> {
        let mut engine = Engine::bare(snapshot, opts)?;
        let events = table(&engine.snapshot.event_files(), events_schema()).await?;
        engine.add_table("events", events)?;
        let rejects = table(&engine.snapshot.reject_files(), rejects_schema()).await?;
        engine.add_table("rejects", rejects)?;
        engine.create_views(opts).await?;
        Ok(engine)
    }

    /// A session over `snapshot` that can read its object store, with no table yet.
    fn bare(snapshot: StoreSnapshot, opts: EngineOptions) -> Result<Engine, QueryError> {
        let ctx = session(opts)?;
        if let Some((url, store)) = &snapshot.object_store {
            ctx.register_object_store(url, store.clone());
        }
        Ok(Engine {
            ctx,
            snapshot,
            tables: Vec::new(),
        })
    }

    /// An engine over the same snapshot with other limits. It shares the tables and the views,
    /// so a view computed by one is not computed again by the other.
    pub fn sibling(&self, opts: EngineOptions) -> Result<Engine, QueryError> {
        let mut engine = Engine::bare(self.snapshot.clone(), opts)?;
        for (name, provider) in &self.tables {
            engine.add_table(name, provider.clone())?;
        }
        Ok(engine)
    }

    /// An engine over the same snapshot that sees only the events of `scope`: `events` is the
    /// selection, and the views are built again over it, so every canned query answers for
    /// the selection with its own definition (a repository's p95, not a pick from the fleet's
    /// rows). Its views are computed on first use, like any engine's.
    pub async fn scoped(&self, scope: &Scope, opts: EngineOptions) -> Result<Engine, QueryError> {
        if scope.is_all() {
            return self.sibling(opts);
        }
        let mut engine = Engine::bare(self.snapshot.clone(), opts)?;
        for (name, provider) in self
            .tables
            .iter()
            .filter(|(n, _)| n == "events" || n == "rejects")
        {
            let provider = if name == "events" {
                scope.select(provider.clone())?
            } else {
                provider.clone()
            };
            engine.add_table(name, provider)?;
        }
        engine.create_views(opts).await?;
        Ok(engine)
    }

    fn add_table(&mut self, name: &str, provider: Arc<dyn TableProvider>) -> Result<(), QueryError> {
        self.ctx.register_table(name, provider.clone())?;
        self.tables.push((name.to_string(), provider));
        Ok(())
    }

    /// The snapshot of the store this engine reads.
    pub fn snapshot(&self) -> &StoreSnapshot {
        &self.snapshot
    }

    /// The DataFusion session, with the tables, views and functions registered.
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
        Ok(self.ctx.sql_with_options(sql, read_only()).await?)
    }

    /// Runs read-only SQL, as [`sql`](Self::sql), and collects every batch.
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
    /// before any history are "no data", not days with zero deployments. A window ending before
    /// any history is empty (length 0), never negative.
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
                    start_us: window.start_us.max(day_start).min(window.end_us),
                    end_us: window.end_us,
                }
            }
            None => window,
        })
    }

    /// Runs a canned query once per period of the window ([`Granularity::periods`], after the
    /// window is cut to the history), each period being the query's window, with the period's
    /// `period_start` and `period_end` as the first two columns. The whole window
    /// ([`Granularity::Window`]) gives the query's own columns alone.
    pub async fn canned_by_period(
        &self,
        query: &CannedQuery,
        window: Window,
        granularity: Granularity,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), QueryError> {
        by_period(self, query, window, granularity, |period| async move {
            let df = self.sql(&bind_window(query.sql, period)).await?;
            let schema = df.schema().inner().clone();
            Ok((schema, df.collect().await?))
        })
        .await
    }

    /// Runs the canned report query of this name over a window and collects every batch.
    pub async fn canned_by_name(&self, name: &str, window: Window) -> Result<Vec<RecordBatch>, QueryError> {
        let query =
            crate::canned::canned_query(name).ok_or_else(|| QueryError::UnknownQuery(name.to_string()))?;
        Ok(self.canned(&query, window).await?.collect().await?)
    }
}

/// The periods of `window` (cut to the history) for `query`, each run by `run`, their rows
/// after two columns `period_start` and `period_end`; the whole window runs once, with the
/// query's own columns.
pub(crate) async fn by_period<F, Fut>(
    engine: &Engine,
    query: &CannedQuery,
    window: Window,
    granularity: Granularity,
    mut run: F,
) -> Result<(SchemaRef, Vec<RecordBatch>), QueryError>
where
    F: FnMut(Window) -> Fut,
    Fut: std::future::Future<Output = Result<(SchemaRef, Vec<RecordBatch>), QueryError>>,
{
    // Cut once: every period lies inside the cut window, so `run` binds them as they are.
    let window = engine.clamp_to_history(window).await?;
    if granularity == Granularity::Window {
        return run(window).await;
    }
    if !query.params.iter().any(|p| p == "start") {
        return Err(QueryError::Refused(format!(
            "{} has no window, so it cannot be divided by {}",
            query.name,
            granularity.name()
        )));
    }
    let periods = granularity
        .periods(window)
        .map_err(|e| QueryError::Refused(e.to_string()))?;
    let mut schema: Option<SchemaRef> = None;
    let mut out = Vec::new();
    for period in periods {
        let (inner, batches) = run(period).await?;
        let with_period = schema.get_or_insert_with(|| period_schema(&inner)).clone();
        for batch in batches {
            out.push(with_period_columns(&with_period, &batch, period)?);
        }
    }
    let schema = schema.ok_or_else(|| QueryError::Refused("the window holds no period".into()))?;
    Ok((schema, out))
}

/// A query's columns after `period_start` and `period_end` (UTC).
fn period_schema(inner: &SchemaRef) -> SchemaRef {
    let utc = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let mut fields = vec![
        Arc::new(Field::new("period_start", utc(), false)),
        Arc::new(Field::new("period_end", utc(), false)),
    ];
    fields.extend(inner.fields().iter().cloned());
    Arc::new(Schema::new(fields))
}

fn with_period_columns(
    schema: &SchemaRef,
    batch: &RecordBatch,
    period: Window,
) -> Result<RecordBatch, QueryError> {
    let rows = batch.num_rows();
    let column = |us: i64| -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from(vec![us; rows]).with_timezone("UTC"))
    };
    let mut columns = vec![column(period.start_us), column(period.end_us)];
    columns.extend(batch.columns().iter().cloned());
    Ok(RecordBatch::try_new(schema.clone(), columns).map_err(DataFusionError::from)?)
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
    let mut ctx = SessionContext::new_with_config_rt(config, runtime.build_arc()?);
    // `metadata` and `extra` hold JSON text: json_get_str(metadata, 'key'), `->`, `->>`.
    datafusion_functions_json::register_all(&mut ctx)?;
    ctx.register_udaf(percentile_cont_udaf());
    ctx.register_udf(fingerprint_udf());
    ctx.register_udf(error_template_udf());
    crate::compat::register(&ctx);
    if let Some(limit) = opts.memory_limit {
        // What one function call may allocate outside the pool: an eighth of the limit.
        crate::bounded::bound_functions(&ctx, (limit / 8).max(1 << 20));
    }
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

/// A view's SQL without its header (the `-- name:`, `-- description:` lines that open the
/// file), so that its definition reads as the query alone. Comments further down are kept.
fn strip_comments(sql: &str) -> String {
    sql.lines()
        .skip_while(|l| l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A table over exactly the data files of a snapshot (never a listing of the folder, which
/// would also see files a compaction replaced, or that no commit names yet).
async fn table(files: &[url::Url], schema: SchemaRef) -> Result<Arc<dyn TableProvider>, QueryError> {
    if files.is_empty() {
        return Ok(Arc::new(MemTable::try_new(schema, vec![vec![]])?));
    }
    let mut urls = Vec::with_capacity(files.len());
    for f in files {
        urls.push(ListingTableUrl::parse(f.as_str())?);
    }
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

impl Engine {
    /// Plans and runs SQL from an untrusted caller under `limits` (see [`crate::guard`]).
    pub async fn guarded(&self, sql: &str, limits: &SqlLimits) -> Result<AdhocResult, QueryError> {
        self.guarded_with(sql, &ParamValues::List(Vec::new()), limits)
            .await
    }

    /// As [`guarded`](Self::guarded), with values for the placeholders `$1`, `$2`... of `sql`.
    pub async fn guarded_with(
        &self,
        sql: &str,
        params: &ParamValues,
        limits: &SqlLimits,
    ) -> Result<AdhocResult, QueryError> {
        let (plan, warnings) = self.plan_checked(sql, limits).await?;
        let plan = plan.with_param_values(params.clone())?;
        let mut result = self.run_guarded(plan, limits).await?;
        result.warnings = warnings;
        Ok(result)
    }

    /// Checks and plans SQL from an untrusted caller: one read-only query, not too long, not
    /// nested too deep. Its placeholders are left unbound.
    pub async fn plan_guarded(&self, sql: &str, limits: &SqlLimits) -> Result<LogicalPlan, QueryError> {
        Ok(self.plan_checked(sql, limits).await?.0)
    }

    /// As [`plan_guarded`](Self::plan_guarded), with the warnings of
    /// [`crate::guard::vocabulary_warnings`].
    async fn plan_checked(
        &self,
        sql: &str,
        limits: &SqlLimits,
    ) -> Result<(LogicalPlan, Vec<String>), QueryError> {
        if sql.len() > limits.max_sql_bytes {
            return Err(QueryError::TooLong {
                bytes: sql.len(),
                limit: limits.max_sql_bytes,
            });
        }
        let state = self.ctx.state();
        let dialect = state.config().options().sql_parser.dialect;
        let mut statement = state.sql_to_statement(sql, &dialect)?;
        check_statement(&statement, limits.max_depth)?;
        crate::dialect::rewrite(&mut statement)?;
        let warnings = crate::guard::vocabulary_warnings(&statement);
        let plan = state
            .statement_to_plan(statement)
            .await
            .map_err(|e| self.explain_unknown_table(e))?;
        read_only().verify_plan(&plan)?;
        Ok((plan, warnings))
    }

    /// DataFusion's "table 'deploylens.public.x' not found" as [`QueryError::UnknownTable`], with
    /// the closest name (a table, a view or a canned query) and the list of tables.
    fn explain_unknown_table(&self, e: DataFusionError) -> QueryError {
        let DataFusionError::Plan(message) = e.find_root() else {
            return e.into();
        };
        let Some(full) = message
            .strip_prefix("table '")
            .and_then(|rest| rest.strip_suffix("' not found"))
        else {
            return e.into();
        };
        let name = full.rsplit('.').next().unwrap_or(full).to_string();
        let tables: Vec<String> = self.tables.iter().map(|(n, _)| n.clone()).collect();
        let canned: Vec<String> = canned_queries()
            .into_iter()
            .filter(|q| !q.is_view)
            .map(|q| q.name)
            .collect();
        let suggestion = closest(&name, tables.iter().chain(&canned).map(String::as_str));
        QueryError::UnknownTable {
            name,
            suggestion,
            tables,
        }
    }

    /// Runs a plan of [`plan_guarded`](Self::plan_guarded), its placeholders bound, under
    /// `limits`.
    async fn run_guarded(&self, plan: LogicalPlan, limits: &SqlLimits) -> Result<AdhocResult, QueryError> {
        let mut df = self.ctx.execute_logical_plan(plan).await?;
        if let Some(max) = limits.max_rows {
            // One more than the cap, to tell whether the result was cut.
            df = df.limit(0, Some(max.saturating_add(1)))?;
        }
        let plan = df.create_physical_plan().await?;
        if limits.refuse_unbounded_joins
            && let Some(name) = find_unbounded_join(plan.as_ref())
        {
            return Err(QueryError::Refused(format!(
                "the query needs a {name}, whose cost grows with the product of its inputs; join on equal keys instead, or run it with `deploylens sql` on the machine"
            )));
        }
        collect_bounded(plan, self.ctx.task_ctx(), limits).await
    }
}

/// What every face allows: queries only.
fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
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

/// An engine that follows the store: [`FollowingEngine::get`] opens the newest snapshot when
/// the store changed since the last call. For faces that run outside `serve` (MCP), so that an
/// answer never comes from a snapshot that a compaction has since replaced.
pub struct FollowingEngine {
    location: Location,
    opts: EngineOptions,
    current: tokio::sync::Mutex<Arc<Engine>>,
}

impl FollowingEngine {
    /// Opens the current snapshot of a data directory, to be followed from there.
    pub async fn open(location: &Location, opts: EngineOptions) -> Result<Self, QueryError> {
        let engine = Engine::open(location, None, opts).await?;
        Ok(FollowingEngine {
            location: location.clone(),
            opts,
            current: tokio::sync::Mutex::new(Arc::new(engine)),
        })
    }

    /// The engine of the newest snapshot, and whether it is new since the last call.
    pub async fn get(&self) -> Result<(Arc<Engine>, bool), QueryError> {
        let snapshot = StoreSnapshot::load(&self.location, None).await?;
        let mut current = self.current.lock().await;
        if current.snapshot().same_commits(&snapshot) {
            return Ok((current.clone(), false));
        }
        *current = Arc::new(Engine::from_snapshot(snapshot, self.opts).await?);
        Ok((current.clone(), true))
    }
}
