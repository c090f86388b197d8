//! The Postgres face of `deploylens serve --pg-listen`: psql, psycopg, SQLAlchemy, DBeaver and
//! Grafana's PostgreSQL data source query the tables, views and functions of `/api/sql`.
//!
//! Every statement a client sends goes through the guarded runner that `/api/sql` uses
//! ([`deploylens_query::SqlRunner`]): the same read-only rule, timeout, memory limit, row cap
//! and concurrency cap, counted together with HTTP's. The protocol itself (startup, the simple
//! and extended query flows, TLS) is `pgwire`'s; the catalog that clients browse on connect
//! (`pg_catalog`, `information_schema`) and the rewriting of their catalog queries come from
//! `datafusion-pg-catalog`. What deploylens adds:
//!
//! - [`startup`]: the password is the server's token, compared in constant time;
//! - [`session`]: the statements drivers send around queries (`SET`, `SHOW`, `BEGIN`...),
//!   answered without touching the engine;
//! - [`query`]: parsing on the SQL runtime, planning each execution against the newest
//!   snapshot, and results encoded from the same Arrow batches every other face encodes.
//!
//! ```text
//! $ deploylens serve ~/src --pg-listen 127.0.0.1:5433
//! $ psql -h 127.0.0.1 -p 5433 -U deploylens -c 'SELECT count(*) FROM events'
//! ```

mod catalog;
mod query;
mod session;
mod startup;

pub(crate) use catalog::install_catalog;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion_postgres::pgwire;
use pgwire::api::PgWireServerHandlers;
use pgwire::tokio::TlsAcceptor;
use pgwire::tokio::tokio_rustls::rustls;

use crate::state::AppState;

/// Where the Postgres face listens, and its certificate.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// The address it listens on.
    pub listen: SocketAddr,
    /// A PEM certificate chain and private key: clients may then ask for TLS (`sslmode=require`).
    pub tls: Option<TlsFiles>,
}

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, server certificate first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why the Postgres face could not start.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The certificate or the key could not be read or used.
    #[error("TLS for --pg-listen: {0}")]
    Tls(String),
}

/// Reads the certificate and key into a TLS acceptor (ring as the crypto provider: the
/// process links two, so none is picked implicitly).
pub fn tls_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, PgError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| {
        PgError::Tls(format!("{what} {}: {e}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad("cannot read the certificate", &files.cert, &e))?;
    if certs.is_empty() {
        return Err(PgError::Tls(format!(
            "no certificate in {}",
            files.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| bad("cannot read the private key", &files.key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| PgError::Tls(format!("the certificate and key do not fit: {e}")))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The handlers of one server: shared by every connection.
struct Handlers {
    startup: Arc<startup::TokenStartup>,
    queries: Arc<query::Queries>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl pgwire::api::query::SimpleQueryHandler> {
        self.queries.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl pgwire::api::query::ExtendedQueryHandler> {
        self.queries.clone()
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        self.startup.clone()
    }
}

/// Accepts Postgres connections until `shutdown` completes. Connections past the HTTP
/// connection cap are closed at once; a connection's failure is logged, never fatal.
pub(crate) async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    let handlers = Arc::new(Handlers {
        startup: Arc::new(startup::TokenStartup::new(state.config.access.token.clone())),
        queries: Arc::new(query::Queries::new(state.clone())),
    });
    let slots = Arc::new(tokio::sync::Semaphore::new(
        state.config.http.max_connections.max(1),
    ));
    tokio::pin!(shutdown);
    loop {
        let (socket, peer) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and the like: wait instead of spinning.
                    tracing::warn!("postgres: cannot accept a connection: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!("postgres: refusing {peer}: the connection cap is reached");
            continue;
        };
        let handlers = handlers.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = pgwire::tokio::process_socket(socket, tls, handlers).await {
                tracing::debug!("postgres: connection from {peer} ended: {e}");
            }
        });
    }
}
