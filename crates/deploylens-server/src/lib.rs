//! The HTTP face of `deploylens serve`.
//!
//! The server never computes on behalf of the collector: it answers from the latest published
//! snapshot of the store. The collector hands each new snapshot to a [`Publisher`]; the server
//! builds its engines, then its metrics and past-failure index follow in their own tasks. A
//! request in flight keeps the snapshot it started with. `/metrics` returns text rendered
//! beforehand, so a scrape costs no SQL. The server is ready once every route answers from the
//! initial scan's snapshot: engines, metrics and the past-failure index.
//!
//! ```no_run
//! # async fn f(stats: std::sync::Arc<deploylens_collector::CollectorStats>,
//! #            snapshot: deploylens_store::StoreSnapshot) -> anyhow::Result<()> {
//! use deploylens_server::{Server, ServerConfig};
//! let config = ServerConfig::new("127.0.0.1:9464".parse()?);
//! let (server, publisher) = Server::start(config, stats, snapshot).await?;
//! // The collector calls publisher.publish(snapshot, initial) after each commit.
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9464").await?;
//! server.run(listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod api;
mod auth;
mod http;
mod metrics;
mod pg;
mod publish;
mod sql;
mod state;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;

use deploylens_collector::CollectorStats;
use deploylens_export::RenderOptions;
use deploylens_query::{QueryError, SqlLimits};
use deploylens_store::StoreSnapshot;

pub use auth::{TokenError, load_token, load_token_from};
pub use datafusion_postgres::pgwire;
pub use http::HttpLimits;
pub use pg::{PgConfig, PgError, TlsFiles, tls_acceptor};
pub use publish::Publisher;
use state::AppState;

/// Everything the server is told, lowered from flags, the environment and the config file.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The address it listens on: its own name is always an allowed Host.
    pub listen: SocketAddr,
    /// Limits of ad-hoc SQL and canned queries over HTTP.
    pub sql: SqlLimits,
    /// Largest request body accepted, in bytes (default 64 KiB); larger ones get 413.
    pub max_body_bytes: usize,
    /// Who may call what, and from where.
    pub access: Access,
    /// Limits of the transport: connections and timeouts.
    pub http: HttpLimits,
    /// How `/metrics` is kept current.
    pub metrics: MetricsConfig,
    /// The Postgres face, when `serve` has `--pg-listen`: its client SQL engine then has the
    /// Postgres catalog too.
    pub pg: Option<PgConfig>,
}

impl ServerConfig {
    /// The defaults, listening on `listen`.
    pub fn new(listen: SocketAddr) -> Self {
        ServerConfig {
            listen,
            sql: SqlLimits::network(),
            max_body_bytes: 64 * 1024,
            access: Access::default(),
            http: HttpLimits::default(),
            metrics: MetricsConfig::default(),
            pg: None,
        }
    }
}

/// How `/metrics` is kept current.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// Re-render the windowed families at least this often.
    pub refresh: Duration,
    /// At most one per-commit render in this time.
    pub min_gap: Duration,
    /// The windows and the label-set cap of the rendered families.
    pub render: RenderOptions,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            refresh: Duration::from_secs(30),
            min_gap: Duration::from_millis(200),
            render: RenderOptions::default(),
        }
    }
}

/// Who may call what, and from where.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// The bearer token requests must carry; `None`: no token is required.
    pub token: Option<String>,
    /// Require the token on /healthz, /readyz and /metrics too.
    pub protect_health_and_metrics: bool,
    /// Host names, besides IP addresses and `localhost`, that requests may be addressed to
    /// (`*`: any). Anything else is refused: a foreign page cannot reach the server through a
    /// DNS name it controls (DNS rebinding).
    pub allowed_hosts: Vec<String>,
    /// Origins (`https://grafana.example:3000`) whose pages may call the API from a browser
    /// (`*`: any). Same-origin requests are always allowed.
    pub allowed_origins: Vec<String>,
}

/// Every route, as (method, path): the router and the OpenAPI description (docs/openapi.yaml,
/// checked by a test) list the same ones.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/assets/{file}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/queries"),
    ("GET", "/api/queries/{name}"),
    ("GET", "/api/fixes"),
    ("GET", "/api/status"),
    ("GET", "/api/source"),
    ("POST", "/api/sql"),
];

fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(web::index))
        .route("/assets/{file}", get(web::asset))
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(metrics::scrape))
        .route("/api/queries", get(api::list_queries))
        .route("/api/queries/{name}", get(api::run_query))
        .route("/api/fixes", get(api::fixes))
        .route("/api/status", get(api::status))
        .route("/api/source", get(api::source))
        .route("/api/sql", axum::routing::post(sql::run_sql))
        .fallback(api::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http::same_origin,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http::request_timeout,
        ))
        .with_state(state)
}

/// A running server's state, before it accepts connections.
pub struct Server {
    state: AppState,
    publications: publish::Receiver,
    postgres: Option<(
        tokio::net::TcpListener,
        Option<datafusion_postgres::pgwire::tokio::TlsAcceptor>,
    )>,
}

impl Server {
    /// Builds the engines of the starting snapshot and the publisher the collector feeds.
    pub async fn start(
        config: ServerConfig,
        stats: Arc<CollectorStats>,
        snapshot: StoreSnapshot,
    ) -> Result<(Server, Publisher), ServerError> {
        let state = AppState::new(config, stats, snapshot).await?;
        let (publisher, publications) = publish::channel();
        Ok((
            Server {
                state,
                publications,
                postgres: None,
            },
            publisher,
        ))
    }

    /// Serves the Postgres protocol on `listener` too (see [`PgConfig`]), with TLS when given
    /// an acceptor ([`tls_acceptor`]).
    pub fn with_postgres(
        mut self,
        listener: tokio::net::TcpListener,
        tls: Option<datafusion_postgres::pgwire::tokio::TlsAcceptor>,
    ) -> Self {
        self.postgres = Some((listener, tls));
        self
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight. The metrics,
    /// the past-failure index and the publishing of new snapshots run meanwhile.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let state = self.state;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut background = vec![
            tokio::spawn(publish::publish_loop(state.clone(), self.publications)),
            tokio::spawn(publish::index_loop(state.clone())),
            tokio::spawn(metrics::refresh_loop(state.clone())),
        ];
        if let Some((pg_listener, tls)) = self.postgres {
            let mut stopped = stopped.clone();
            let until = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            background.push(tokio::spawn(pg::serve(state.clone(), pg_listener, tls, until)));
        }
        let mut http_stopped = stopped;
        let http_until = async move {
            let _ = http_stopped.wait_for(|s| *s).await;
        };
        let signal = tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let result = http::serve(listener, router(state.clone()), state.config.http, http_until).await;
        signal.abort();
        for task in background {
            task.abort();
        }
        result
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The engines of the starting snapshot could not be built.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The runtime of the SQL runner could not be started.
    #[error("cannot start the SQL runtime: {0}")]
    Runtime(#[from] std::io::Error),
}
