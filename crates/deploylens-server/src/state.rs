//! What every handler can see: the configuration, the collector's figures, and what the
//! latest published snapshot answers with.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::{Notify, RwLock};

use deploylens_collector::CollectorStats;
use deploylens_knowledge::Index;
use deploylens_query::{Engine, EngineOptions, SqlRunner};
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
}

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
        })
    }

    /// The engines to answer from.
    pub(crate) async fn engines(&self) -> Arc<Engines> {
        self.engines.read().await.clone()
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
