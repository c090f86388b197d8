//! The TOML configuration file. Every key is also a flag and an environment variable; the
//! order of precedence is flag, then environment, then file, then the built-in default. The
//! file is applied by setting the `DEPLOYLENS_*` variables it names that are not already set,
//! before the command line is parsed, so there is one path for every setting.
//!
//! ```toml
//! data_dir = "/var/lib/deploylens"
//! roots = ["/srv/repos"]
//! patterns = ["**/deploy/events.jsonl"]
//! follow_symlinks = false
//! max_line_bytes = 1048576
//!
//! [serve]
//! listen = "127.0.0.1:9464"
//! pg_listen = "127.0.0.1:5433"
//! pg_tls_cert = "/etc/deploylens/tls.crt"
//! pg_tls_key = "/etc/deploylens/tls.key"
//! poll = false
//! poll_interval = "500ms"
//! rescan_interval = "10s"
//! metrics_refresh = "30s"
//! metrics_windows = ["1h", "24h", "7d"]
//! compact_small_rows = 50000
//! compact_max_small = 16
//! protect_metrics = false
//! insecure_no_auth = false
//! allowed_hosts = ["deploylens.internal"]
//! allowed_origins = ["https://grafana.internal"]
//! max_connections = 256
//! header_timeout = "10s"
//! request_timeout = "60s"
//! metrics_max_label_sets = 10000
//!
//! [sql]
//! timeout = "10s"
//! max_rows = 10000
//! max_concurrent = 4
//! memory_mib = 512
//! max_body_bytes = 65536
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    data_dir: Option<PathBuf>,
    roots: Option<Vec<PathBuf>>,
    patterns: Option<Vec<String>>,
    follow_symlinks: Option<bool>,
    max_line_bytes: Option<u64>,
    #[serde(default)]
    serve: ServeSection,
    #[serde(default)]
    sql: SqlSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeSection {
    listen: Option<String>,
    pg_listen: Option<String>,
    pg_tls_cert: Option<PathBuf>,
    pg_tls_key: Option<PathBuf>,
    poll: Option<bool>,
    poll_interval: Option<String>,
    rescan_interval: Option<String>,
    metrics_refresh: Option<String>,
    metrics_windows: Option<Vec<String>>,
    compact_small_rows: Option<u64>,
    compact_max_small: Option<u64>,
    protect_metrics: Option<bool>,
    insecure_no_auth: Option<bool>,
    allowed_hosts: Option<Vec<String>>,
    allowed_origins: Option<Vec<String>>,
    max_connections: Option<u64>,
    header_timeout: Option<String>,
    request_timeout: Option<String>,
    metrics_max_label_sets: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlSection {
    timeout: Option<String>,
    max_rows: Option<u64>,
    max_concurrent: Option<u64>,
    memory_mib: Option<u64>,
    max_body_bytes: Option<u64>,
}

fn join<T: ToString>(v: &[T]) -> String {
    v.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

impl ConfigFile {
    /// Parses a file; errors carry the line and column.
    pub fn load(path: &Path) -> Result<ConfigFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start].matches('\n').count() + 1;
                    let col = s.start - text[..s.start].rfind('\n').map_or(0, |i| i + 1) + 1;
                    format!(":{line}:{col}")
                })
                .unwrap_or_default();
            format!("{}{at}: {}", path.display(), e.message())
        })
    }

    /// The environment variables this file sets.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut put = |k: &'static str, v: Option<String>| {
            if let Some(v) = v {
                out.push((k, v));
            }
        };
        put(
            "DEPLOYLENS_DATA_DIR",
            self.data_dir.as_ref().map(|p| p.display().to_string()),
        );
        put(
            "DEPLOYLENS_ROOTS",
            self.roots
                .as_ref()
                .map(|r| join(&r.iter().map(|p| p.display()).collect::<Vec<_>>())),
        );
        // Globs may hold commas (`{a,b}`): patterns are separated by semicolons.
        put("DEPLOYLENS_PATTERNS", self.patterns.as_ref().map(|p| p.join(";")));
        put(
            "DEPLOYLENS_FOLLOW_SYMLINKS",
            self.follow_symlinks.map(|b| b.to_string()),
        );
        put(
            "DEPLOYLENS_MAX_LINE_BYTES",
            self.max_line_bytes.map(|n| n.to_string()),
        );
        let s = &self.serve;
        put("DEPLOYLENS_LISTEN", s.listen.clone());
        put("DEPLOYLENS_PG_LISTEN", s.pg_listen.clone());
        put(
            "DEPLOYLENS_PG_TLS_CERT",
            s.pg_tls_cert.as_ref().map(|p| p.display().to_string()),
        );
        put(
            "DEPLOYLENS_PG_TLS_KEY",
            s.pg_tls_key.as_ref().map(|p| p.display().to_string()),
        );
        put("DEPLOYLENS_POLL", s.poll.map(|b| b.to_string()));
        put("DEPLOYLENS_POLL_INTERVAL", s.poll_interval.clone());
        put("DEPLOYLENS_RESCAN_INTERVAL", s.rescan_interval.clone());
        put("DEPLOYLENS_METRICS_REFRESH", s.metrics_refresh.clone());
        put(
            "DEPLOYLENS_METRICS_WINDOWS",
            s.metrics_windows.as_deref().map(join),
        );
        put(
            "DEPLOYLENS_COMPACT_SMALL_ROWS",
            s.compact_small_rows.map(|n| n.to_string()),
        );
        put(
            "DEPLOYLENS_COMPACT_MAX_SMALL",
            s.compact_max_small.map(|n| n.to_string()),
        );
        put(
            "DEPLOYLENS_PROTECT_METRICS",
            s.protect_metrics.map(|b| b.to_string()),
        );
        put(
            "DEPLOYLENS_INSECURE_NO_AUTH",
            s.insecure_no_auth.map(|b| b.to_string()),
        );
        put("DEPLOYLENS_ALLOWED_HOSTS", s.allowed_hosts.as_deref().map(join));
        put(
            "DEPLOYLENS_ALLOWED_ORIGINS",
            s.allowed_origins.as_deref().map(join),
        );
        put(
            "DEPLOYLENS_MAX_CONNECTIONS",
            s.max_connections.map(|n| n.to_string()),
        );
        put("DEPLOYLENS_HEADER_TIMEOUT", s.header_timeout.clone());
        put("DEPLOYLENS_REQUEST_TIMEOUT", s.request_timeout.clone());
        put(
            "DEPLOYLENS_METRICS_MAX_LABEL_SETS",
            s.metrics_max_label_sets.map(|n| n.to_string()),
        );
        let q = &self.sql;
        put("DEPLOYLENS_SQL_TIMEOUT", q.timeout.clone());
        put("DEPLOYLENS_SQL_MAX_ROWS", q.max_rows.map(|n| n.to_string()));
        put(
            "DEPLOYLENS_SQL_MAX_CONCURRENT",
            q.max_concurrent.map(|n| n.to_string()),
        );
        put("DEPLOYLENS_SQL_MEMORY_MIB", q.memory_mib.map(|n| n.to_string()));
        put(
            "DEPLOYLENS_MAX_BODY_BYTES",
            q.max_body_bytes.map(|n| n.to_string()),
        );
        out
    }

    /// Checks the values, not only their types: each problem as `key: message`.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let durations = [
            ("serve.poll_interval", &self.serve.poll_interval),
            ("serve.rescan_interval", &self.serve.rescan_interval),
            ("serve.metrics_refresh", &self.serve.metrics_refresh),
            ("serve.header_timeout", &self.serve.header_timeout),
            ("serve.request_timeout", &self.serve.request_timeout),
            ("sql.timeout", &self.sql.timeout),
        ];
        for (key, value) in durations {
            if let Some(v) = value
                && let Err(e) = crate::args::parse_duration(v)
            {
                out.push(format!("{key}: {e}"));
            }
        }
        for (key, value, example) in [
            ("serve.listen", &self.serve.listen, "127.0.0.1:9464"),
            ("serve.pg_listen", &self.serve.pg_listen, "127.0.0.1:5433"),
        ] {
            if let Some(l) = value
                && l.parse::<std::net::SocketAddr>().is_err()
            {
                out.push(format!("{key}: {l:?} is not an address such as {example}"));
            }
        }
        for w in self.serve.metrics_windows.iter().flatten() {
            if let Err(e) = deploylens_query::parse_window(w) {
                out.push(format!("serve.metrics_windows: {e}"));
            }
        }
        for r in self.roots.iter().flatten() {
            if !r.exists() {
                out.push(format!("roots: {} does not exist", r.display()));
            }
        }
        let opts = deploylens_collector::DiscoveryOptions {
            extra_patterns: self.patterns.clone().unwrap_or_default(),
            follow_symlinks: false,
        };
        if let Err(e) = deploylens_collector::discover::check_patterns(&opts) {
            out.push(format!("patterns: {e}"));
        }
        for (key, v) in [
            ("sql.max_rows", self.sql.max_rows),
            ("sql.max_concurrent", self.sql.max_concurrent),
            ("sql.memory_mib", self.sql.memory_mib),
            ("serve.max_connections", self.serve.max_connections),
            ("serve.metrics_max_label_sets", self.serve.metrics_max_label_sets),
        ] {
            if v == Some(0) {
                out.push(format!("{key}: must be at least 1"));
            }
        }
        out
    }
}

/// The config file named by `--config FILE` (or `--config=FILE`) or `DEPLOYLENS_CONFIG`.
fn config_path() -> Option<PathBuf> {
    let args: Vec<String> = std::env::args().collect();
    for (i, a) in args.iter().enumerate() {
        if a == "--config" {
            return args.get(i + 1).map(PathBuf::from);
        }
        if let Some(v) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(v));
        }
    }
    std::env::var_os("DEPLOYLENS_CONFIG").map(PathBuf::from)
}

/// Applies the config file, if any, before the command line is parsed.
pub fn apply() -> Result<(), String> {
    let Some(path) = config_path() else { return Ok(()) };
    let config = ConfigFile::load(&path)?;
    for (key, value) in config.env() {
        if std::env::var_os(key).is_none() {
            // SAFETY: called first thing in main, before any other thread exists.
            unsafe { std::env::set_var(key, value) };
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub what: ConfigWhat,
}

#[derive(Subcommand)]
pub enum ConfigWhat {
    /// Check a configuration file: syntax, unknown keys, types and values
    Check {
        /// The file (default: --config, DEPLOYLENS_CONFIG, or ./deploylens.toml)
        file: Option<PathBuf>,
    },
}

pub fn run(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let ConfigWhat::Check { file } = args.what;
    let path = file
        .or_else(config_path)
        .unwrap_or_else(|| PathBuf::from("deploylens.toml"));
    match ConfigFile::load(&path) {
        Err(e) => {
            println!("{e}");
            Ok(ExitCode::from(1))
        }
        Ok(config) => {
            let problems = config.problems();
            for p in &problems {
                println!("{}: {p}", path.display());
            }
            if problems.is_empty() {
                println!("{}: ok ({} settings)", path.display(), config.env().len());
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::from(1))
            }
        }
    }
}
