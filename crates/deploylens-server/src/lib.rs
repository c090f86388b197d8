//! The HTTP face of `deploylens serve`, over axum.
//!
//! The server never computes on behalf of the collector: it reads the collector's figures and
//! queries the latest published snapshot of the store. A new snapshot is published after every
//! commit; a request in flight keeps the snapshot it started with. `/metrics` returns text that
//! [`refresh_loop`] rendered beforehand, so a scrape costs no SQL.

mod api;
mod auth;
mod metrics;
mod sql;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::{Notify, RwLock};

use deploylens_collector::CollectorStats;
use deploylens_knowledge::Index;
use deploylens_query::Engine;

pub use auth::{load_token, load_token_from};
pub use metrics::{RenderedMetrics, refresh_loop};
pub use sql::{SqlLimits, sql_runtime};

/// What every handler can see.
#[derive(Clone)]
pub struct AppState {
    pub stats: Arc<CollectorStats>,
    pub engine: Arc<RwLock<Arc<Engine>>>,
    pub metrics: Arc<RwLock<Arc<RenderedMetrics>>>,
    /// Wakes the metrics refresh when a new snapshot is published.
    pub changed: Arc<Notify>,
    /// Wakes the past-failure index rebuild when a new snapshot is published.
    pub index_stale: Arc<Notify>,
    /// Counts published snapshots, so that the windowed metrics know they are behind.
    pub generation: Arc<AtomicU64>,
    /// How long the previous scrape took, as f64 bits.
    pub last_scrape_bits: Arc<AtomicU64>,
    /// The past-failure index of the latest snapshot, for `/api/fixes`.
    pub knowledge: Arc<RwLock<Arc<Index>>>,
    /// The same snapshot for ad-hoc SQL, with its own memory limit.
    pub sql_engine: Arc<RwLock<Arc<Engine>>>,
    pub sql_runtime: tokio::runtime::Handle,
    pub sql_slots: sql::Slots,
    pub sql_limits: SqlLimits,
    pub access: Access,
}

/// Who may call what.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub token: Option<String>,
    /// Require the token on /healthz, /readyz and /metrics too.
    pub protect_health_and_metrics: bool,
}

impl AppState {
    pub fn new(
        stats: Arc<CollectorStats>,
        engine: Engine,
        sql_engine: Engine,
        limits: SqlLimits,
        access: Access,
    ) -> std::io::Result<Self> {
        Ok(AppState {
            stats,
            engine: Arc::new(RwLock::new(Arc::new(engine))),
            metrics: Arc::new(RwLock::new(Arc::new(RenderedMetrics::default()))),
            changed: Arc::new(Notify::new()),
            index_stale: Arc::new(Notify::new()),
            generation: Arc::new(AtomicU64::new(0)),
            last_scrape_bits: Arc::new(AtomicU64::new(0)),
            knowledge: Arc::new(RwLock::new(Arc::new(Index::new(Vec::new())))),
            sql_engine: Arc::new(RwLock::new(Arc::new(sql_engine))),
            sql_runtime: sql_runtime()?,
            sql_slots: Arc::new(tokio::sync::Semaphore::new(limits.max_concurrent.max(1))),
            sql_limits: limits,
            access,
        })
    }

    /// The snapshot to answer from.
    pub async fn engine(&self) -> Arc<Engine> {
        self.engine.read().await.clone()
    }

    /// Publishes the engines of a newer snapshot; the metrics and the past-failure index
    /// follow in their own tasks ([`refresh_loop`], [`index_loop`]).
    pub async fn publish(&self, engine: Engine, sql_engine: Engine) {
        *self.sql_engine.write().await = Arc::new(sql_engine);
        *self.engine.write().await = Arc::new(engine);
        self.generation.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.changed.notify_one();
        self.index_stale.notify_one();
    }

    /// Rebuilds the past-failure index from the published snapshot.
    pub async fn rebuild_index(&self) {
        let engine = self.engine().await;
        match deploylens_query::load_index(&engine).await {
            Ok(index) => *self.knowledge.write().await = Arc::new(index),
            Err(e) => tracing::error!("cannot rebuild the past-failure index: {e}"),
        }
    }
}

/// Rebuilds the past-failure index after each published snapshot; snapshots published during
/// a rebuild are folded into the next one.
pub async fn index_loop(state: AppState) {
    loop {
        state.index_stale.notified().await;
        state.rebuild_index().await;
    }
}

/// Every route, as (method, path): the router and the OpenAPI description (docs/openapi.yaml,
/// checked by a test) list the same ones.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/queries"),
    ("GET", "/api/queries/{name}"),
    ("GET", "/api/fixes"),
    ("POST", "/api/sql"),
];

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::scrape))
        .route("/api/queries", get(api::list_queries))
        .route("/api/queries/{name}", get(api::run_query))
        .route("/api/fixes", get(api::fixes))
        .route("/api/sql", axum::routing::post(sql::run_sql))
        .fallback(api::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(
            state.sql_limits.max_body_bytes,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .with_state(state)
}

/// Alive: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: the initial scan is committed and the last commit succeeded.
async fn readyz(State(state): State<AppState>) -> Response {
    use std::sync::atomic::Ordering::Relaxed;
    if state.stats.is_ready() {
        let unreadable = state.stats.unreadable();
        if unreadable.is_empty() {
            return (StatusCode::OK, "ready\n").into_response();
        }
        // Serving, but some history is missing: say which files, and keep answering.
        let mut text = format!(
            "ready, degraded: {} file(s) cannot be read and are tried again on every poll:\n",
            unreadable.len()
        );
        for u in unreadable.iter().take(20) {
            text.push_str(&format!("  {u}\n"));
        }
        return (StatusCode::OK, text).into_response();
    }
    let why = if !state.stats.ready.load(Relaxed) {
        "initial scan in progress\n"
    } else {
        "the store is not writable: the last commit failed (see the logs)\n"
    };
    (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
}

/// Serves until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
