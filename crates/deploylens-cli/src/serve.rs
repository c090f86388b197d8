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
use deploylens_query::{Engine, EngineOptions};
use deploylens_server::{Access, AppState, SqlLimits};
use deploylens_store::StoreSnapshot;
use tokio::sync::mpsc;

use crate::Global;
use crate::ingest::SourceArgs;

#[derive(Args, Clone)]
pub struct ServeArgs {
    /// Folders to search for .chora/memory/events/deployment.jsonl
    #[arg(required = true, env = "DEPLOYLENS_ROOTS", value_delimiter = ',')]
    pub roots: Vec<PathBuf>,
    /// Address of the HTTP server (port 0 picks a free port; the chosen address is printed)
    #[arg(long, env = "DEPLOYLENS_LISTEN", default_value = "127.0.0.1:9464")]
    pub listen: SocketAddr,
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
}

/// `1h,24h,7d` as (label, seconds) pairs.
pub fn metrics_windows(list: &[String]) -> anyhow::Result<Vec<(String, i64)>> {
    list.iter()
        .map(|w| {
            Ok((
                w.clone(),
                deploylens_query::parse_window(w).map_err(anyhow::Error::msg)?,
            ))
        })
        .collect()
}

/// Parses `250ms`, `10s`, `5m`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?}: expected a number and a unit, e.g. 500ms or 10s"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("{text:?}: unknown unit {unit:?}; use ms, s, m or h")),
    }
}

pub async fn run(g: &Global, args: ServeArgs) -> anyhow::Result<ExitCode> {
    deploylens_collector::discover::check_patterns(&args.source.discovery()).map_err(anyhow::Error::msg)?;
    let token = deploylens_server::load_token().map_err(anyhow::Error::msg)?;
    if token.is_none() && !args.listen.ip().is_loopback() && !args.insecure_no_auth {
        anyhow::bail!(
            "refusing to listen on {} without a token: set DEPLOYLENS_TOKEN_FILE (or /run/secrets/deploylens_token, or DEPLOYLENS_TOKEN), or pass --insecure-no-auth",
            args.listen
        );
    }
    let ingestor = Ingestor::open(&g.data_dir, args.source.ingest_options())
        .with_context(|| format!("opening the data directory {}", g.data_dir.display()))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}: is another server using it? (--listen)",
                args.listen
            )
        })?;
    let addr = listener.local_addr()?;
    println!(
        "deploylens serving http://{addr} (data: {})",
        g.data_dir.display()
    );

    let stats = Arc::new(CollectorStats::new());
    let limits = SqlLimits {
        timeout: args.sql_timeout,
        max_rows: args.sql_max_rows,
        max_concurrent: args.sql_max_concurrent,
        max_body_bytes: args.max_body_bytes,
        memory_bytes: args.sql_memory_mib << 20,
    };
    let sql_options = EngineOptions {
        memory_limit: Some(limits.memory_bytes),
        ..EngineOptions::default()
    };
    let snapshot = ingestor.store().snapshot().clone();
    // The two engines share the views of the snapshot: each is computed once, by whichever
    // needs it first.
    let engine = Engine::from_snapshot(snapshot, EngineOptions::default()).await?;
    let sql_engine = engine.sibling(sql_options)?;
    let access = Access {
        token,
        protect_health_and_metrics: args.protect_metrics,
    };
    let state = AppState::new(stats.clone(), engine, sql_engine, limits, access)?;
    // The past-failure index of the starting snapshot (its engines are already built).
    state.rebuild_index().await;
    let indexer = tokio::spawn(deploylens_server::index_loop(state.clone()));
    let windows = metrics_windows(&args.metrics_windows)?;
    let refresher = tokio::spawn(deploylens_server::refresh_loop(
        state.clone(),
        args.metrics_refresh,
        Duration::from_millis(200),
        windows,
    ));

    // Snapshots from the collector thread become engines on the async side.
    let (snap_tx, mut snap_rx) = mpsc::unbounded_channel::<(StoreSnapshot, bool)>();
    let publisher = {
        let state = state.clone();
        tokio::spawn(async move {
            while let Some((mut snapshot, mut initial)) = snap_rx.recv().await {
                while let Ok((newer, newer_initial)) = snap_rx.try_recv() {
                    snapshot = newer;
                    initial |= newer_initial;
                }
                let engines = Engine::from_snapshot(snapshot, EngineOptions::default())
                    .await
                    .and_then(|engine| Ok((engine.sibling(sql_options)?, engine)));
                match engines {
                    Ok((sql_engine, engine)) => state.publish(engine, sql_engine).await,
                    Err(e) => tracing::error!("cannot open the new snapshot: {e}"),
                }
                // Ready once what the initial scan committed is what the server answers from,
                // past failures included.
                if initial {
                    state.rebuild_index().await;
                    state.stats.ready.store(true, Ordering::Relaxed);
                }
            }
        })
    };

    let stop = Arc::new(AtomicBool::new(false));
    let live = LiveOptions {
        poll: args.poll,
        poll_interval: args.poll_interval,
        rescan_interval: args.rescan_interval,
        compact_small_rows: args.compact_small_rows,
        compact_max_small: args.compact_max_small,
        ..LiveOptions::default()
    };
    let collector_thread = {
        let stop = stop.clone();
        let stats = stats.clone();
        let roots = args.roots.clone();
        let discovery = args.source.discovery();
        std::thread::Builder::new()
            .name("collector".into())
            .spawn(move || {
                let mut collector = Collector::new(ingestor, roots, discovery, live, stats);
                collector.run(&stop, &mut |snapshot, initial| {
                    let _ = snap_tx.send((snapshot.clone(), initial));
                });
            })?
    };

    let server_stop = stop.clone();
    let server = tokio::spawn(async move {
        let shutdown = async move {
            while !server_stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        deploylens_server::serve(listener, state, shutdown).await
    });

    wait_for_signal().await;
    if !g.quiet {
        eprintln!("deploylens: stopping: flushing what is pending");
    }
    stop.store(true, Ordering::Relaxed);
    let joined = tokio::task::spawn_blocking(move || collector_thread.join()).await?;
    if joined.is_err() {
        anyhow::bail!("the collector thread panicked; restart: the store is consistent");
    }
    let _ = server.await?;
    publisher.abort();
    refresher.abort();
    indexer.abort();
    Ok(ExitCode::SUCCESS)
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
