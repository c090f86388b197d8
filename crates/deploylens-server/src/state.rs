//! What every handler can see: the configuration, the collector's figures, and what the
//! latest published snapshot answers with.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::{Notify, RwLock};

use deploylens_collector::CollectorStats;
use deploylens_knowledge::Index;
use deploylens_query::{Engine, EngineOptions, Scope, SqlRunner};
use deploylens_store::StoreSnapshot;

use crate::metrics::RenderedMetrics;
use crate::{ServerConfig, ServerError};

/// The engines of one snapshot: one for the metrics and the server's own queries, one with the
/// memory limit of client SQL. They share the snapshot's views.
pub(crate) struct Engines {
    pub(crate) engine: Arc<Engine>,
    pub(crate) sql: Arc<Engine>,
}

impl Engines {
    pub(crate) async fn of(snapshot: StoreSnapshot, config: &ServerConfig) -> Result<Engines, ServerError> {
        let engine = Engine::from_snapshot(snapshot, EngineOptions::default()).await?;
        let sql = engine.sibling(EngineOptions {
            memory_limit: config.sql.memory_bytes,
            ..EngineOptions::default()
        })?;
        if config.pg.is_some() {
            crate::pg::install_catalog(sql.context())?;
        }
        Ok(Engines {
            engine: Arc::new(engine),
            sql: Arc::new(sql),
        })
    }
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) stats: Arc<CollectorStats>,
    engines: Arc<RwLock<Arc<Engines>>>,
    pub(crate) knowledge: Arc<RwLock<Arc<Index>>>,
    pub(crate) metrics: Arc<RwLock<Arc<RenderedMetrics>>>,
    /// Client SQL and canned queries, under the limits of `config.sql`.
    pub(crate) sql: SqlRunner,
    /// Wakes the per-commit metrics when a snapshot is published.
    pub(crate) changed: Arc<Notify>,
    /// Wakes the index rebuild when a snapshot is published.
    pub(crate) index_stale: Arc<Notify>,
    /// Counts published snapshots, so that the windowed metrics know they are behind.
    pub(crate) generation: Arc<AtomicU64>,
    /// True once every route answers from the initial scan's snapshot.
    ready: Arc<AtomicBool>,
    /// How long the previous scrape took, as f64 bits.
    pub(crate) last_scrape_bits: Arc<AtomicU64>,
    /// Engines restricted to a repository or environment (the page's filters), of the current
    /// snapshot only, the most recently used last.
    scoped: Arc<std::sync::Mutex<Vec<ScopedEngine>>>,
}

/// A scoped engine and the snapshot generation it was built for.
type ScopedEngine = (u64, Scope, Arc<Engine>);

/// Scoped engines kept at once: each holds the views of its selection.
const SCOPED_ENGINES_KEPT: usize = 8;

impl AppState {
    pub(crate) async fn new(
        config: ServerConfig,
        stats: Arc<CollectorStats>,
        snapshot: StoreSnapshot,
    ) -> Result<Self, ServerError> {
        let engines = Engines::of(snapshot, &config).await?;
        let sql = SqlRunner::new(config.sql)?;
        Ok(AppState {
            config: Arc::new(config),
            stats,
            engines: Arc::new(RwLock::new(Arc::new(engines))),
            knowledge: Arc::new(RwLock::new(Arc::new(Index::new(Vec::new())))),
            metrics: Arc::new(RwLock::new(Arc::new(RenderedMetrics::default()))),
            sql,
            changed: Arc::new(Notify::new()),
            index_stale: Arc::new(Notify::new()),
            generation: Arc::new(AtomicU64::new(0)),
            ready: Arc::new(AtomicBool::new(false)),
            last_scrape_bits: Arc::new(AtomicU64::new(0)),
            scoped: Arc::new(std::sync::Mutex::new(Vec::new())),
        })
    }

    /// The engines to answer from.
    pub(crate) async fn engines(&self) -> Arc<Engines> {
        self.engines.read().await.clone()
    }

    /// The client-SQL engine of the current snapshot restricted to `scope` (kept for the next
    /// request with the same filters until a new snapshot is published).
    pub(crate) async fn scoped_sql(
        &self,
        scope: &Scope,
    ) -> Result<Arc<Engine>, deploylens_query::QueryError> {
        // The generation first: if a snapshot is published in between, the entry is of an
        // older generation than its engine and is dropped at the next request, never served stale.
        let generation = self.generation.load(Ordering::Relaxed);
        let engines = self.engines().await;
        if scope.is_all() {
            return Ok(engines.sql.clone());
        }
        {
            let mut kept = self.scoped.lock().unwrap_or_else(|p| p.into_inner());
            kept.retain(|(g, _, _)| *g == generation);
            if let Some(i) = kept.iter().position(|(_, s, _)| s == scope) {
                let entry = kept.remove(i);
                let engine = entry.2.clone();
                kept.push(entry);
                return Ok(engine);
            }
        }
        let opts = EngineOptions {
            memory_limit: self.config.sql.memory_bytes,
            ..EngineOptions::default()
        };
        let engine = Arc::new(engines.sql.scoped(scope, opts).await?);
        let mut kept = self.scoped.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() >= SCOPED_ENGINES_KEPT {
            kept.remove(0);
        }
        kept.push((generation, scope.clone(), engine.clone()));
        Ok(engine)
    }

    pub(crate) async fn set_engines(&self, engines: Engines) {
        *self.engines.write().await = Arc::new(engines);
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.changed.notify_one();
        self.index_stale.notify_one();
    }

    pub(crate) fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// Every route answers from the initial snapshot, and the last commit succeeded.
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed) && self.stats.store_writable.load(Ordering::Relaxed)
    }

    pub(crate) fn initial_scan_done(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}
