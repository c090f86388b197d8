//! SQL from people and programs, contained: one guarded path for every SQL face (the HTTP API,
//! MCP, the Postgres protocol and `deploylens sql`).
//!
//! A query goes through [`SqlRunner::run`]:
//!
//! 1. its text is at most [`SqlLimits::max_sql_bytes`] long and holds one statement, a query
//!    (`SELECT`, `WITH`, `VALUES`, `EXPLAIN` of a query): DDL, DML, `COPY`, `SET` and the rest
//!    are refused before planning;
//! 2. its expressions nest at most [`SqlLimits::max_depth`] deep, so planning cannot exhaust a
//!    thread's stack (`1+1+...+1` of 2,000 terms once aborted the process);
//! 3. it runs on a runtime of its own whose threads have large stacks, holding one of
//!    [`SqlLimits::max_concurrent`] slots until its work has stopped, under a timeout, and is
//!    cancelled as soon as its caller goes away (the future returned by `run` is dropped);
//! 4. its engine has a memory limit for operators and bounded scalar functions
//!    ([`crate::bound_functions`]); cross joins and nested-loop joins are refused (DataFusion
//!    cannot stop them promptly); the rows returned are capped, and so are their bytes.
//!
//! Errors are typed ([`QueryError`]) so that each face maps them to its own status codes.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ParamValues;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, Query, Statement as SqlStatement, Visit, Visitor};

use crate::canned::CannedQuery;
use crate::engine::{Engine, QueryError};
use crate::window::{Granularity, Window};

/// The limits of one SQL face.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlLimits {
    /// Longest a query may run; `None`: no limit.
    pub timeout: Option<Duration>,
    /// Most rows returned; `None`: all.
    pub max_rows: Option<usize>,
    /// Queries running at once; more are refused with [`QueryError::Busy`].
    pub max_concurrent: usize,
    /// Memory for query execution and for the rows returned; `None`: no limit.
    pub memory_bytes: Option<usize>,
    /// Longest SQL text.
    pub max_sql_bytes: usize,
    /// Deepest nesting of expressions and subqueries.
    pub max_depth: usize,
    /// Refuse plans with a cross join or a nested-loop join.
    pub refuse_unbounded_joins: bool,
}

/// Expressions nested deeper than this are refused (by every face).
pub const MAX_EXPR_DEPTH: usize = 1_000;

impl SqlLimits {
    /// For clients on the network: HTTP, MCP, the Postgres protocol.
    pub const fn network() -> Self {
        SqlLimits {
            timeout: Some(Duration::from_secs(10)),
            max_rows: Some(10_000),
            max_concurrent: 4,
            memory_bytes: Some(512 << 20),
            max_sql_bytes: 64 << 10,
            max_depth: MAX_EXPR_DEPTH,
            refuse_unbounded_joins: true,
        }
    }

    /// For `deploylens sql` on one's own machine: no timeout, no row or memory limit, but the
    /// same shape checks, so that no input can crash the process.
    pub const fn local() -> Self {
        SqlLimits {
            timeout: None,
            max_rows: None,
            max_concurrent: 1,
            memory_bytes: None,
            max_sql_bytes: 16 << 20,
            max_depth: MAX_EXPR_DEPTH,
            refuse_unbounded_joins: false,
        }
    }
}

impl Default for SqlLimits {
    fn default() -> Self {
        SqlLimits::network()
    }
}

/// The rows of a query, and whether more rows were left out.
#[derive(Debug, Clone)]
pub struct AdhocResult {
    /// The schema of the result.
    pub schema: SchemaRef,
    /// The rows kept, at most [`SqlLimits::max_rows`].
    pub batches: Vec<RecordBatch>,
    /// True when rows past [`SqlLimits::max_rows`] were left out.
    pub truncated: bool,
    /// Things the caller likely got wrong although the query ran, such as a value a column
    /// never holds (`status = 'failed'`). Each face shows them its own way.
    pub warnings: Vec<String>,
}

/// Stack of each SQL thread: planning and evaluating an expression tree recurse over it.
const SQL_THREAD_STACK: usize = 256 << 20;

/// Runs queries under [`SqlLimits`] on a runtime of its own.
#[derive(Clone)]
pub struct SqlRunner {
    runtime: tokio::runtime::Handle,
    slots: Arc<tokio::sync::Semaphore>,
    limits: SqlLimits,
}

impl SqlRunner {
    /// A runner with its own two-thread runtime, alive for the rest of the process.
    pub fn new(limits: SqlLimits) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("deploylens-sql")
            .thread_stack_size(SQL_THREAD_STACK)
            .enable_all()
            .build()?;
        let runtime = rt.handle().clone();
        // Dropping a runtime inside async code panics; this one lives until exit.
        std::mem::forget(rt);
        Ok(SqlRunner {
            runtime,
            slots: Arc::new(tokio::sync::Semaphore::new(limits.max_concurrent.max(1))),
            limits,
        })
    }

    /// The limits this runner applies.
    pub fn limits(&self) -> SqlLimits {
        self.limits
    }

    /// Runs ad-hoc SQL over `engine`. Dropping the returned future cancels the query.
    pub async fn run(&self, engine: Arc<Engine>, sql: String) -> Result<AdhocResult, QueryError> {
        let limits = self.limits;
        self.spawn(async move { engine.guarded(&sql, &limits).await })
            .await
    }

    /// Runs ad-hoc SQL with values for its placeholders `$1`, `$2`... (a prepared statement).
    pub async fn run_with(
        &self,
        engine: Arc<Engine>,
        sql: String,
        params: ParamValues,
    ) -> Result<AdhocResult, QueryError> {
        let limits = self.limits;
        self.spawn(async move { engine.guarded_with(&sql, &params, &limits).await })
            .await
    }

    /// What a query would return, without running it: the schema of its rows and the types of
    /// its placeholders, in order (`None`: the planner could not tell).
    pub async fn describe(&self, engine: Arc<Engine>, sql: String) -> Result<Described, QueryError> {
        let limits = self.limits;
        self.spawn(async move {
            let plan = engine.plan_guarded(&sql, &limits).await?;
            let types = plan.get_parameter_types()?;
            let mut ordered: Vec<(usize, Option<DataType>)> = types
                .into_iter()
                .filter_map(|(id, t)| Some((id.strip_prefix('$')?.parse::<usize>().ok()?, t)))
                .collect();
            ordered.sort_by_key(|(i, _)| *i);
            Ok(Described {
                schema: Arc::new(plan.schema().as_arrow().clone()),
                parameters: ordered.into_iter().map(|(_, t)| t).collect(),
            })
        })
        .await
    }

    /// Runs `work` on the SQL runtime under the same slots and timeout: for a face's own
    /// parsing of untrusted text, which recurses as deep as the text nests.
    pub async fn run_task<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = Result<T, QueryError>> + Send + 'static,
    ) -> Result<T, QueryError> {
        self.spawn(work).await
    }

    /// Runs a canned query over a window under the same limits.
    pub async fn canned(
        &self,
        engine: Arc<Engine>,
        query: CannedQuery,
        window: Window,
    ) -> Result<AdhocResult, QueryError> {
        self.canned_by_period(engine, query, window, Granularity::Window)
            .await
    }

    /// Runs a canned query once per period of the window (see [`Engine::canned_by_period`]),
    /// every period within the one timeout and row limit.
    pub async fn canned_by_period(
        &self,
        engine: Arc<Engine>,
        query: CannedQuery,
        window: Window,
        granularity: Granularity,
    ) -> Result<AdhocResult, QueryError> {
        self.canned_rows(engine, query, window, granularity, None).await
    }

    /// [`canned_by_period`](Self::canned_by_period), returning at most `max_rows` rows (and
    /// never more than the runner's own row limit).
    pub async fn canned_rows(
        &self,
        engine: Arc<Engine>,
        query: CannedQuery,
        window: Window,
        granularity: Granularity,
        max_rows: Option<usize>,
    ) -> Result<AdhocResult, QueryError> {
        // The canned SQL is ours: its joins are bounded by the window, not refused.
        let limits = SqlLimits {
            refuse_unbounded_joins: false,
            max_rows: match (self.limits.max_rows, max_rows) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            ..self.limits
        };
        self.spawn(async move {
            let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let (schema, batches) =
                crate::engine::by_period(&engine, &query, window, granularity, |period| {
                    let engine = engine.clone();
                    let cut = cut.clone();
                    let sql = query.sql;
                    async move {
                        let r = engine
                            .guarded(&crate::engine::bind_window(sql, period), &limits)
                            .await?;
                        if r.truncated {
                            cut.store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        Ok((r.schema, r.batches))
                    }
                })
                .await?;
            let mut truncated = cut.load(std::sync::atomic::Ordering::Relaxed);
            let mut kept = Vec::new();
            let mut rows = 0;
            for b in batches {
                let room = limits.max_rows.map_or(usize::MAX, |m| m.saturating_sub(rows));
                if b.num_rows() > room {
                    truncated = true;
                    if room > 0 {
                        kept.push(b.slice(0, room));
                    }
                    break;
                }
                rows += b.num_rows();
                kept.push(b);
            }
            Ok(AdhocResult {
                schema,
                batches: kept,
                truncated,
                warnings: Vec::new(),
            })
        })
        .await
    }

    async fn spawn<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = Result<T, QueryError>> + Send + 'static,
    ) -> Result<T, QueryError> {
        let permit = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| QueryError::Busy(self.limits.max_concurrent))?;
        // The slot is given back when the work has stopped, not when its caller gave up.
        let task = AbortOnDrop(self.runtime.spawn(async move {
            let _permit = permit;
            work.await
        }));
        let joined = match self.limits.timeout {
            Some(limit) => match tokio::time::timeout(limit, task).await {
                Ok(joined) => joined,
                Err(_) => return Err(QueryError::Timeout(limit)),
            },
            None => task.await,
        };
        joined.map_err(|e| QueryError::Internal(format!("the query task failed: {e}")))?
    }
}

/// The shape of a query's answer, known before it runs.
#[derive(Debug, Clone)]
pub struct Described {
    /// The columns of its rows.
    pub schema: SchemaRef,
    /// The type of each placeholder `$1`, `$2`..., in order; `None` where it is not known.
    pub parameters: Vec<Option<DataType>>,
}

/// Aborts its task when dropped: a caller that goes away (a closed connection, a timeout)
/// stops the work it started.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

/// Checks that a statement is one read-only query, not nested too deep.
pub fn check_statement(statement: &DfStatement, max_depth: usize) -> Result<(), QueryError> {
    match statement {
        DfStatement::Statement(s) => {
            let query = match s.as_ref() {
                SqlStatement::Query(_) => s.as_ref(),
                SqlStatement::Explain { statement, .. } if matches!(**statement, SqlStatement::Query(_)) => {
                    s.as_ref()
                }
                // Reading the catalog: `DESCRIBE events`, `SHOW TABLES`, `SHOW COLUMNS FROM events`.
                SqlStatement::ExplainTable { .. }
                | SqlStatement::ShowTables { .. }
                | SqlStatement::ShowColumns { .. } => {
                    return Ok(());
                }
                other => return Err(refused_statement(other)),
            };
            let depth = depth_of(query);
            if depth > max_depth {
                return Err(QueryError::TooDeep {
                    depth,
                    limit: max_depth,
                });
            }
            Ok(())
        }
        DfStatement::Explain(e) => check_statement(&e.statement, max_depth),
        DfStatement::CreateExternalTable(_) => Err(QueryError::Refused(
            "CREATE EXTERNAL TABLE is not allowed: the SQL here is read-only".into(),
        )),
        DfStatement::CopyTo(_) => Err(QueryError::Refused(
            "COPY is not allowed: the SQL here is read-only; use --format csv/json to export".into(),
        )),
        DfStatement::Reset(_) => Err(QueryError::Refused(
            "RESET is not allowed: the session settings are fixed".into(),
        )),
    }
}

fn refused_statement(s: &SqlStatement) -> QueryError {
    let text = s.to_string();
    let keyword: String = text
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase();
    QueryError::Refused(format!(
        "{keyword} is not allowed: the SQL here is read-only (SELECT, WITH, VALUES or EXPLAIN of a query)"
    ))
}

/// The closed vocabularies of the event schema, by column.
const VOCABULARIES: &[(&str, &[&str])] = &[
    (
        deploylens_model::EventType::FIELD,
        deploylens_model::EventType::NAMES,
    ),
    (
        deploylens_model::Environment::FIELD,
        deploylens_model::Environment::NAMES,
    ),
    (deploylens_model::Status::FIELD, deploylens_model::Status::NAMES),
    (
        deploylens_model::DeployedBy::FIELD,
        deploylens_model::DeployedBy::NAMES,
    ),
    (
        deploylens_model::RepositorySource::FIELD,
        deploylens_model::RepositorySource::NAMES,
    ),
];

/// Comparisons of a vocabulary column with a value it never holds (`status = 'failed'`,
/// `environment IN ('prod')`): the query runs, silently empty, so the caller is told.
pub fn vocabulary_warnings(statement: &DfStatement) -> Vec<String> {
    struct Check(Vec<String>);
    fn column(e: &SqlExpr) -> Option<&str> {
        match e {
            SqlExpr::Identifier(i) => Some(i.value.as_str()),
            SqlExpr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.as_str()),
            _ => None,
        }
    }
    fn text(e: &SqlExpr) -> Option<&str> {
        match e {
            SqlExpr::Value(v) => match &v.value {
                datafusion::sql::sqlparser::ast::Value::SingleQuotedString(s) => Some(s.as_str()),
                _ => None,
            },
            _ => None,
        }
    }
    impl Check {
        fn compare(&mut self, col: &SqlExpr, values: &[&SqlExpr]) {
            let Some(name) = column(col) else { return };
            let Some((field, allowed)) = VOCABULARIES.iter().find(|(f, _)| f.eq_ignore_ascii_case(name))
            else {
                return;
            };
            for v in values.iter().filter_map(|v| text(v)) {
                if !allowed.contains(&v) {
                    let message = format!("{field} is never '{v}'; its values are {}", allowed.join(", "));
                    if !self.0.contains(&message) {
                        self.0.push(message);
                    }
                }
            }
        }
    }
    impl Visitor for Check {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &SqlExpr) -> std::ops::ControlFlow<()> {
            use datafusion::sql::sqlparser::ast::BinaryOperator::{Eq, NotEq};
            match e {
                SqlExpr::BinaryOp {
                    left,
                    op: Eq | NotEq,
                    right,
                } => {
                    self.compare(left, &[right]);
                    self.compare(right, &[left]);
                }
                SqlExpr::InList { expr, list, .. } => self.compare(expr, &list.iter().collect::<Vec<_>>()),
                _ => {}
            }
            std::ops::ControlFlow::Continue(())
        }
    }
    let mut check = Check(Vec::new());
    if let DfStatement::Statement(s) = statement {
        let _ = s.visit(&mut check);
    }
    check.0
}

/// How deep expressions and queries nest in a statement.
fn depth_of(statement: &SqlStatement) -> usize {
    #[derive(Default)]
    struct Depth {
        now: usize,
        max: usize,
    }
    impl Visitor for Depth {
        type Break = ();
        fn pre_visit_expr(&mut self, _: &SqlExpr) -> std::ops::ControlFlow<()> {
            self.now += 1;
            self.max = self.max.max(self.now);
            std::ops::ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, _: &SqlExpr) -> std::ops::ControlFlow<()> {
            self.now -= 1;
            std::ops::ControlFlow::Continue(())
        }
        fn pre_visit_query(&mut self, _: &Query) -> std::ops::ControlFlow<()> {
            self.now += 1;
            self.max = self.max.max(self.now);
            std::ops::ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> std::ops::ControlFlow<()> {
            self.now -= 1;
            std::ops::ControlFlow::Continue(())
        }
    }
    let mut d = Depth::default();
    let _ = statement.visit(&mut d);
    d.max
}

/// Runs `plan` and keeps at most `limits.max_rows` rows and `limits.memory_bytes` bytes.
pub(crate) async fn collect_bounded(
    plan: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    task: Arc<datafusion::execution::TaskContext>,
    limits: &SqlLimits,
) -> Result<AdhocResult, QueryError> {
    use futures::StreamExt;
    let schema = plan.schema();
    let mut stream = datafusion::physical_plan::execute_stream(plan, task)?;
    let mut rows = 0usize;
    let mut bytes = 0usize;
    let mut kept = Vec::new();
    let mut truncated = false;
    let max_rows = limits.max_rows.unwrap_or(usize::MAX);
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        if rows + batch.num_rows() > max_rows {
            kept.push(batch.slice(0, max_rows - rows));
            truncated = true;
            break;
        }
        rows += batch.num_rows();
        bytes += batch.get_array_memory_size();
        if let Some(limit) = limits.memory_bytes
            && bytes > limit
        {
            return Err(QueryError::ResourcesExhausted(format!(
                "the result is over {limit} bytes; select fewer columns or rows (LIMIT, WHERE)"
            )));
        }
        kept.push(batch);
    }
    Ok(AdhocResult {
        schema,
        batches: kept,
        truncated,
        warnings: Vec::new(),
    })
}
