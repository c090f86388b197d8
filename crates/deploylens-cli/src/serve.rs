//! `deploylens serve`: the initial scan, then live collection and the HTTP server, until
//! SIGTERM or SIGINT, when what is pending is flushed before exit.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use deploylens_collector::{Collector, CollectorStats, Ingestor, LiveOptions};
use deploylens_export::RenderOptions;
use deploylens_query::SqlLimits;
use deploylens_server::{Access, HttpLimits, MetricsConfig, PgConfig, Server, ServerConfig, TlsFiles};
use deploylens_store::StoreSnapshot;

use crate::Global;
use crate::args::parse_duration;
use crate::ingest::SourceArgs;

#[derive(Args, Clone)]
pub struct ServeArgs {
    /// Folders to search for .chora/memory/events/deployment.jsonl
    #[arg(
        required_unless_present = "read_only",
        env = "DEPLOYLENS_ROOTS",
        value_delimiter = ','
    )]
    pub roots: Vec<PathBuf>,
    /// Collect nothing: serve a table that other collectors write, following its new versions
    /// (a query node)
    #[arg(long, env = "DEPLOYLENS_READ_ONLY", conflicts_with = "roots")]
    pub read_only: bool,
    /// How often a query node looks for new table versions
    #[arg(long, env = "DEPLOYLENS_FOLLOW_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub follow_interval: Duration,
    /// Address of the HTTP server (port 0 picks a free port; the chosen address is printed)
    #[arg(long, env = "DEPLOYLENS_LISTEN", default_value = "127.0.0.1:9464")]
    pub listen: SocketAddr,
    /// Also serve the Postgres wire protocol here, for psql, drivers and Grafana's PostgreSQL
    /// data source (the password is the token; docs/sql-clients.md)
    #[arg(long, env = "DEPLOYLENS_PG_LISTEN", value_name = "ADDR")]
    pub pg_listen: Option<SocketAddr>,
    /// PEM certificate chain for TLS on --pg-listen (with --pg-tls-key)
    #[arg(
        long,
        env = "DEPLOYLENS_PG_TLS_CERT",
        requires = "pg_tls_key",
        value_name = "FILE"
    )]
    pub pg_tls_cert: Option<PathBuf>,
    /// PEM private key for TLS on --pg-listen
    #[arg(
        long,
        env = "DEPLOYLENS_PG_TLS_KEY",
        requires = "pg_tls_cert",
        value_name = "FILE"
    )]
    pub pg_tls_key: Option<PathBuf>,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Poll files instead of watching them (network filesystems, some container mounts)
    #[arg(long, env = "DEPLOYLENS_POLL")]
    pub poll: bool,
    /// How often files are checked when polling
    #[arg(long, env = "DEPLOYLENS_POLL_INTERVAL", default_value = "500ms", value_parser = parse_duration)]
    pub poll_interval: Duration,
    /// How often the roots are walked again for new repositories
    #[arg(long, env = "DEPLOYLENS_RESCAN_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub rescan_interval: Duration,
    /// Merge commits smaller than this many events...
    #[arg(long, env = "DEPLOYLENS_COMPACT_SMALL_ROWS", default_value_t = 50_000)]
    pub compact_small_rows: u64,
    /// ...once there are more than this many of them
    #[arg(long, env = "DEPLOYLENS_COMPACT_MAX_SMALL", default_value_t = 16)]
    pub compact_max_small: usize,
    /// Re-render the query metrics at least this often (the windows move with time)
    #[arg(long, env = "DEPLOYLENS_METRICS_REFRESH", default_value = "30s", value_parser = parse_duration)]
    pub metrics_refresh: Duration,
    /// Windows of the windowed metrics (the `window` label)
    #[arg(
        long,
        env = "DEPLOYLENS_METRICS_WINDOWS",
        value_delimiter = ',',
        default_value = "1h,24h,7d"
    )]
    pub metrics_windows: Vec<String>,
    /// Longest an ad-hoc query (POST /api/sql) may run
    #[arg(long, env = "DEPLOYLENS_SQL_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub sql_timeout: Duration,
    /// Most rows an ad-hoc query returns (the X-Deploylens-Truncated header says when cut)
    #[arg(long, env = "DEPLOYLENS_SQL_MAX_ROWS", default_value_t = 10_000)]
    pub sql_max_rows: usize,
    /// Ad-hoc queries running at once; more get 429
    #[arg(long, env = "DEPLOYLENS_SQL_MAX_CONCURRENT", default_value_t = 4)]
    pub sql_max_concurrent: usize,
    /// Memory for ad-hoc queries, in MiB (past it a query fails; nothing spills to disk)
    #[arg(long, env = "DEPLOYLENS_SQL_MEMORY_MIB", default_value_t = 512)]
    pub sql_memory_mib: usize,
    /// Largest request body, in bytes
    #[arg(long, env = "DEPLOYLENS_MAX_BODY_BYTES", default_value_t = 65_536)]
    pub max_body_bytes: usize,
    /// Allow listening on a non-loopback address without a token (DEPLOYLENS_TOKEN_FILE,
    /// /run/secrets/deploylens_token or DEPLOYLENS_TOKEN)
    #[arg(long, env = "DEPLOYLENS_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
    /// Require the token on /healthz, /readyz and /metrics too
    #[arg(long, env = "DEPLOYLENS_PROTECT_METRICS")]
    pub protect_metrics: bool,
    /// Host names requests may be addressed to besides IP addresses and localhost (`*`: any);
    /// others are refused, against DNS rebinding
    #[arg(
        long,
        env = "DEPLOYLENS_ALLOWED_HOSTS",
        value_delimiter = ',',
        value_name = "HOST"
    )]
    pub allowed_hosts: Vec<String>,
    /// Origins whose web pages may call the API (e.g. https://grafana.example:3000; `*`: any);
    /// same-origin requests are always allowed
    #[arg(
        long,
        env = "DEPLOYLENS_ALLOWED_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    pub allowed_origins: Vec<String>,
    /// HTTP connections open at once (lowered to what the file descriptor limit allows)
    #[arg(long, env = "DEPLOYLENS_MAX_CONNECTIONS", default_value_t = 256)]
    pub max_connections: usize,
    /// Time a client has to send a request's headers; also the idle keep-alive limit
    #[arg(long, env = "DEPLOYLENS_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// Longest a whole HTTP request may take
    #[arg(long, env = "DEPLOYLENS_REQUEST_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Most label sets one metric family exports; the least active repositories are left out
    /// first, and deploylens_metrics_series_dropped counts them
    #[arg(long, env = "DEPLOYLENS_METRICS_MAX_LABEL_SETS", default_value_t = deploylens_export::DEFAULT_MAX_LABEL_SETS)]
    pub metrics_max_label_sets: usize,
}

/// `1h,24h,7d` as (label, seconds) pairs.
pub fn metrics_windows(list: &[String]) -> anyhow::Result<Vec<(String, i64)>> {
    list.iter()
        .map(|w| Ok((w.clone(), deploylens_query::parse_window(w)?)))
        .collect()
}

impl ServeArgs {
    /// The flags lowered into the server's configuration.
    fn server_config(&self, token: Option<String>) -> anyhow::Result<ServerConfig> {
        Ok(ServerConfig {
            listen: self.listen,
            sql: SqlLimits {
                timeout: Some(self.sql_timeout),
                max_rows: Some(self.sql_max_rows),
                max_concurrent: self.sql_max_concurrent.max(1),
                memory_bytes: Some(self.sql_memory_mib.max(1) << 20),
                max_sql_bytes: self.max_body_bytes,
                ..SqlLimits::network()
            },
            max_body_bytes: self.max_body_bytes,
            access: Access {
                token,
                protect_health_and_metrics: self.protect_metrics,
                allowed_hosts: self.allowed_hosts.clone(),
                allowed_origins: self.allowed_origins.clone(),
            },
            http: HttpLimits {
                max_connections: self.max_connections.max(1),
                header_timeout: self.header_timeout,
                // A request may always run as long as its query may, and a little more.
                request_timeout: self
                    .request_timeout
                    .max(self.sql_timeout + Duration::from_secs(5)),
            },
            pg: self.pg_listen.map(|listen| PgConfig {
                listen,
                tls: match (&self.pg_tls_cert, &self.pg_tls_key) {
                    (Some(cert), Some(key)) => Some(TlsFiles {
                        cert: cert.clone(),
                        key: key.clone(),
                    }),
                    _ => None,
                },
            }),
            metrics: MetricsConfig {
                refresh: self.metrics_refresh,
                min_gap: Duration::from_millis(200),
                render: RenderOptions {
                    windows: metrics_windows(&self.metrics_windows)?,
                    max_label_sets: self.metrics_max_label_sets.max(1),
                },
            },
        })
    }

    fn live_options(&self) -> LiveOptions {
        LiveOptions {
            poll: self.poll,
            poll_interval: self.poll_interval,
            rescan_interval: self.rescan_interval,
            compact_small_rows: self.compact_small_rows,
            compact_max_small: self.compact_max_small,
            follow_interval: self.follow_interval.max(Duration::from_millis(100)),
            ..LiveOptions::default()
        }
    }
}

pub async fn run(g: &Global, args: ServeArgs) -> anyhow::Result<ExitCode> {
    deploylens_collector::discover::check_patterns(&args.source.discovery())?;
    let token = deploylens_server::load_token()?;
    for addr in std::iter::once(args.listen).chain(args.pg_listen) {
        if token.is_none() && !addr.ip().is_loopback() && !args.insecure_no_auth {
            anyhow::bail!(
                "refusing to listen on {addr} without a token: set DEPLOYLENS_TOKEN_FILE (or /run/secrets/deploylens_token, or DEPLOYLENS_TOKEN), or pass --insecure-no-auth",
            );
        }
    }
    let config = args.server_config(token)?;
    let pg_tls = match config.pg.as_ref().and_then(|pg| pg.tls.as_ref()) {
        Some(files) => Some(deploylens_server::tls_acceptor(files)?),
        None => None,
    };
    let location = g.location()?;
    let ingestor = if args.read_only {
        if deploylens_store::legacy::needs_migration(&location) {
            return Err(deploylens_store::StoreError::NeedsMigration(location.to_string()).into());
        }
        None
    } else {
        let opened = Ingestor::open(&location, &args.source.writer(), args.source.ingest_options())
            .with_context(|| format!("opening the store {location}"))?;
        Some(opened)
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}: is another server using it? (--listen)",
                args.listen
            )
        })?;
    let addr = listener.local_addr()?;
    let role = if args.read_only { " read-only" } else { "" };
    say(&format!(
        "deploylens serving{role} http://{addr} (data: {location})"
    ));
    let postgres = match &config.pg {
        Some(pg) => Some((bind_postgres(pg, pg_tls.is_some(), g.quiet).await?, pg_tls)),
        None => None,
    };

    let stats = Arc::new(CollectorStats::new());
    let snapshot = match &ingestor {
        Some(i) => i.store().snapshot().clone(),
        None => StoreSnapshot::load(&location, None)
            .await
            .with_context(|| format!("reading the table {location}"))?,
    };
    let (mut server, publisher) = Server::start(config, stats.clone(), snapshot.clone()).await?;
    if let Some((listener, tls)) = postgres {
        server = server.with_postgres(listener, tls);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let stop = stop.clone();
        let roots = args.roots.clone();
        let discovery = args.source.discovery();
        let live = args.live_options();
        let every = args.follow_interval.max(Duration::from_millis(100));
        std::thread::Builder::new()
            .name(
                if ingestor.is_some() {
                    "collector"
                } else {
                    "follower"
                }
                .into(),
            )
            .spawn(move || -> anyhow::Result<()> {
                let Some(ingestor) = ingestor else {
                    return follow_table(&location, snapshot, every, &stop, &publisher, &stats);
                };
                let mut collector = Collector::new(ingestor, roots, discovery, live, stats);
                let ran = collector.run(&stop, &mut |snapshot, initial| {
                    publisher.publish(snapshot.clone(), initial);
                });
                if ran.is_err() {
                    // Stop serving too: a fenced collector must not look healthy.
                    stop.store(true, Ordering::Relaxed);
                }
                Ok(ran?)
            })?
    };

    let server_stop = stop.clone();
    let server = tokio::spawn(async move {
        let shutdown = async move {
            while !server_stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        server.run(listener, shutdown).await
    });

    let stopped_by_worker = stop.clone();
    tokio::select! {
        _ = wait_for_signal() => {}
        _ = async {
            while !stopped_by_worker.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        } => {}
    }
    if !g.quiet {
        eprintln!("deploylens: stopping: flushing what is pending");
    }
    stop.store(true, Ordering::Relaxed);
    let joined = tokio::task::spawn_blocking(move || worker.join()).await?;
    let _ = server.await?;
    match joined {
        Ok(result) => result.context("the collector stopped")?,
        Err(_) => anyhow::bail!("the collector thread panicked; restart: the store is consistent"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a line on standard output, which may have been closed by whoever started the
/// server: a long-running server does not die of it (println! would panic).
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// Binds the Postgres listener, before any work starts.
async fn bind_postgres(pg: &PgConfig, tls: bool, quiet: bool) -> anyhow::Result<tokio::net::TcpListener> {
    if !tls && !pg.listen.ip().is_loopback() && !quiet {
        eprintln!(
            "deploylens: warning: --pg-listen {} without --pg-tls-cert: passwords and rows cross the network in clear",
            pg.listen
        );
    }
    let listener = tokio::net::TcpListener::bind(pg.listen).await.with_context(|| {
        format!(
            "cannot listen on {} (--pg-listen): is a Postgres server using it?",
            pg.listen
        )
    })?;
    let addr = listener.local_addr()?;
    let secure = if tls { " (TLS)" } else { "" };
    say(&format!("deploylens serving postgres://{addr}{secure}"));
    Ok(listener)
}

/// A query node's loop: looks for new table versions and publishes each one.
fn follow_table(
    location: &deploylens_store::Location,
    mut current: StoreSnapshot,
    every: Duration,
    stop: &AtomicBool,
    publisher: &deploylens_server::Publisher,
    stats: &CollectorStats,
) -> anyhow::Result<()> {
    let blocking = deploylens_store::Blocking::new()?;
    publisher.publish(current.clone(), true);
    let mut last = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50).min(every));
        if last.elapsed() < every {
            continue;
        }
        last = std::time::Instant::now();
        let loaded = blocking.run(StoreSnapshot::load(location, None));
        if loaded.is_ok() {
            // A query node's "scan" is its look at the table: the stalled-ingest alert then
            // fires when it cannot read the table, not merely because it collects nothing.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            stats.last_scan_unix.store(now, Ordering::Relaxed);
        }
        match loaded {
            Ok(next) if !next.same_commits(&current) => {
                publisher.publish(next.clone(), false);
                current = next;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot read the table {location}: {e}"),
        }
    }
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        // Without signal handlers, run until killed.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
