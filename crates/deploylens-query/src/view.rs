//! Views computed at most once per snapshot.
//!
//! The views of `queries/views/` (`deployments`, `restores`, ...) run window functions over
//! the whole history, and most reports read them: as plain SQL views, every report would
//! compute them again. A snapshot of the store never changes, so [`MaterializedView`] runs its
//! view the first time a query scans it, keeps the rows in memory and answers every later scan
//! from them. Engines over the same snapshot share the provider, and with it the rows.
//!
//! The rows are kept only up to a memory budget: past it the view is computed per query, as a
//! plain view would be, so a very large history costs time rather than memory.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{MemTable, Session, TableProvider};
use datafusion::common::Result;
use datafusion::datasource::ViewTable;
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use futures::StreamExt;
use tokio::sync::OnceCell;

/// A view whose rows are computed on first use and kept for the life of the snapshot.
#[derive(Debug)]
pub struct MaterializedView {
    name: String,
    schema: SchemaRef,
    view: ViewTable,
    max_bytes: usize,
    /// `Some(rows)` once computed; `None` if they were over the budget.
    rows: OnceCell<Option<Arc<MemTable>>>,
}

impl MaterializedView {
    /// A view named `name` over `plan` (from `sql`), keeping its rows while they take at most
    /// `max_bytes` bytes.
    pub fn new(name: &str, plan: LogicalPlan, sql: &str, max_bytes: usize) -> Self {
        let schema = Arc::new(plan.schema().as_arrow().clone());
        MaterializedView {
            name: name.to_string(),
            schema,
            view: ViewTable::new(plan, Some(sql.to_string())),
            max_bytes,
            rows: OnceCell::new(),
        }
    }

    /// Whether the rows are computed and kept (false before first use, or over the budget).
    pub fn is_kept(&self) -> bool {
        matches!(self.rows.get(), Some(Some(_)))
    }

    /// The rows, computing them if no query has yet. A failed or cancelled computation leaves
    /// nothing behind: the next scan tries again.
    async fn rows(&self, state: &dyn Session) -> Result<Option<Arc<MemTable>>> {
        let rows = self
            .rows
            .get_or_try_init(|| async {
                let started = std::time::Instant::now();
                let plan = state.create_physical_plan(self.view.logical_plan()).await?;
                let partitions = state.config().target_partitions().max(1);
                let rows = collect_within(plan, state, self.max_bytes, partitions).await?;
                let bytes: usize = rows
                    .iter()
                    .flatten()
                    .flatten()
                    .map(|b| b.get_array_memory_size())
                    .sum();
                let kept = match rows {
                    Some(parts) => Some(Arc::new(MemTable::try_new(
                        self.schema.clone(),
                        self.with_declared_schema(parts)?,
                    )?)),
                    None => None,
                };
                tracing::debug!(
                    view = %self.name,
                    kept = kept.is_some(),
                    bytes,
                    ms = started.elapsed().as_millis() as u64,
                    "view computed"
                );
                Ok::<_, datafusion::error::DataFusionError>(kept)
            })
            .await?;
        Ok(rows.clone())
    }
}

impl MaterializedView {
    /// The batches under the view's declared (logical) schema. The physical plan may name a
    /// field's nullability or metadata differently (window functions over a union do); the
    /// columns are the same, and `RecordBatch::try_new` still checks their types and nulls.
    fn with_declared_schema(&self, parts: Vec<Vec<RecordBatch>>) -> Result<Vec<Vec<RecordBatch>>> {
        parts
            .into_iter()
            .map(|part| {
                part.into_iter()
                    .map(|b| {
                        if b.schema() == self.schema {
                            Ok(b)
                        } else {
                            Ok(RecordBatch::try_new(self.schema.clone(), b.columns().to_vec())?)
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

/// Runs `plan` to the end and returns its batches spread over `partitions`, or `None` as soon
/// as they take more than `max_bytes`.
async fn collect_within(
    plan: Arc<dyn ExecutionPlan>,
    state: &dyn Session,
    max_bytes: usize,
    partitions: usize,
) -> Result<Option<Vec<Vec<RecordBatch>>>> {
    let mut stream = execute_stream(plan, state.task_ctx())?;
    let mut parts: Vec<Vec<RecordBatch>> = vec![Vec::new(); partitions];
    let mut bytes = 0usize;
    let mut i = 0usize;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        bytes += batch.get_array_memory_size();
        if bytes > max_bytes {
            return Ok(None);
        }
        parts[i % partitions].push(batch);
        i += 1;
    }
    Ok(Some(parts))
}

#[async_trait]
impl TableProvider for MaterializedView {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn get_table_definition(&self) -> Option<&str> {
        self.view.definition().map(|s| s.as_str())
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        // Filters stay above the scan: the kept rows are the whole view.
        Ok(vec![TableProviderFilterPushDown::Unsupported; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match self.rows(state).await? {
            Some(rows) => rows.scan(state, projection, filters, limit).await,
            None => self.view.scan(state, projection, filters, limit).await,
        }
    }
}
