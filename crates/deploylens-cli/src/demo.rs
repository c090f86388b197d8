//! `deploylens demo`: a generated ecosystem that looks like real deployment history.
//!
//! Each repository gets its own failure rate and lognormal deployment durations. Failures carry
//! errors drawn from recurring templates with variable parts (timeouts, hosts, ports, paths) and,
//! most of the time, the fix someone wrote down; production failures are often followed by a
//! rollback; health checks, backups and configuration changes are mixed in. Some repositories
//! keep the legacy format, and a few lines are broken the ways real files break.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use serde_json::{Value, json};

use crate::Global;

#[derive(Args)]
pub struct DemoArgs {
    /// Folder to create the repositories in
    pub dir: PathBuf,
    /// Number of repositories
    #[arg(long, default_value_t = 20)]
    pub repos: usize,
    /// Total number of events across all repositories
    #[arg(long, default_value_t = 10_000)]
    pub events: usize,
    /// Random seed: the same seed and --end give the same files
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Days of history
    #[arg(long, default_value_t = 90)]
    pub days: u32,
    /// End of the history (RFC 3339 or YYYY-MM-DD): the newest events land in the minutes
    /// before it; default now
    #[arg(long)]
    pub end: Option<String>,
    /// Fraction of lines written broken (for the rejects table)
    #[arg(long, default_value_t = 0.001)]
    pub bad_fraction: f64,
    /// After the history, keep appending events as they happen (until Ctrl-C), so that a
    /// running `serve`, its page and its metrics can be watched moving
    #[arg(long, conflicts_with = "end")]
    pub live: bool,
    /// With --live: moments a second (each is one event, or a deployment's one to three)
    #[arg(long, default_value_t = 1.0, value_name = "N", requires = "live")]
    pub rate: f64,
    /// With --live: stop after this many seconds instead of running until interrupted
    #[arg(long, value_name = "SECONDS", requires = "live")]
    pub stop_after: Option<f64>,
}

/// (error template, fix). `{n}` `{host}` `{port}` `{path}` `{ver}` `{pod}` `{sha}` vary.
const FAILURES: &[(&str, &str)] = &[
    (
        "Health check timeout after {n}s",
        "Solution: increased start_period to 45s in docker-compose.yml",
    ),
    (
        "container {pod} exited with code 137 (OOMKilled)",
        "Raised the memory limit from 512Mi to 1Gi",
    ),
    (
        "Readiness probe failed: HTTP probe failed with statuscode: 503 on {host}:{port}",
        "Fixed the /ready handler to skip the cache warm-up check",
    ),
    (
        "secret DATABASE_URL not found in environment",
        "Added DATABASE_URL to the deployment secrets and re-ran setup-secrets.sh",
    ),
    (
        "secret REDIS_URL not found in environment",
        "Created the REDIS_URL Docker secret",
    ),
    (
        "migration failed: could not obtain lock on table schema_migrations after {n}s",
        "Killed the stuck migration session and re-ran migrations",
    ),
    (
        "dial tcp {ip}:5432: connect: connection refused",
        "Database was restarting; added a wait-for-db step before migrations",
    ),
    (
        "lookup {host}: no such host",
        "Fixed the service name in docker-compose.prod.yml",
    ),
    (
        "x509: certificate has expired or is not yet valid: current time {ts}",
        "Renewed the TLS certificate and restarted the proxy",
    ),
    (
        "open {path}: permission denied",
        "Ran the container as uid 1000 and chowned the volume",
    ),
    (
        "write {path}: no space left on device",
        "Pruned old images with docker system prune and enlarged the disk",
    ),
    (
        "failed to pull image registry.example.com/app:{ver}: manifest unknown",
        "The release tag was not pushed; re-ran the publish job",
    ),
    (
        "Error response from daemon: driver failed programming external connectivity: Bind for 0.0.0.0:{port} failed: port is already allocated",
        "Stopped the old container still holding the port",
    ),
    (
        "timed out waiting for rollout of deployment/{pod} after {n}s",
        "Increased progressDeadlineSeconds and fixed the slow init container",
    ),
    (
        "Error acquiring the state lock: ConditionalCheckFailedException, lock id {sha}",
        "Released the stale Terraform lock with force-unlock",
    ),
    (
        "java.lang.OutOfMemoryError: Java heap space after {n} requests",
        "Set -Xmx to 75% of the container limit",
    ),
];

const NAMES: &[&str] = &[
    "chora-compose",
    "chora-workspace",
    "chora-base",
    "chora-indexer",
    "chora-search",
    "chora-gateway",
    "chora-memory",
    "chora-inbox",
    "chora-notify",
    "chora-billing",
    "chora-auth",
    "chora-ui",
];

struct Repo {
    name: String,
    failure_rate: f64,
    duration: LogNormal<f64>,
    legacy: bool,
    trace_seq: u32,
    /// The year of the last trace id given, and how many were given in it: an id names one
    /// deployment, and its pattern allows 999 a year (`CHORA-DEPLOY-YYYY-NNN`).
    traces: (i32, u32),
}

pub fn run(g: &Global, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let end = match &args.end {
        Some(t) => {
            let us = deploylens_query::parse_timestamp(t).with_context(|| format!("--end {t}"))?;
            DateTime::<Utc>::from_timestamp_micros(us).with_context(|| format!("--end {t}: out of range"))?
        }
        None => Utc::now(),
    };
    if args.live && !(args.rate > 0.0 && args.rate <= 10_000.0) {
        anyhow::bail!(
            "--rate {}: give a number of moments a second from 0 to 10000",
            args.rate
        );
    }
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut repos: Vec<Repo> = (0..args.repos.max(1))
        .map(|i| new_repo(i, &mut rng))
        .collect::<anyhow::Result<_>>()?;
    let per_repo = args.events / repos.len().max(1);
    let mut written = 0usize;
    for (i, repo) in repos.iter_mut().enumerate() {
        let count = if i + 1 == args.repos.max(1) {
            args.events - written
        } else {
            per_repo
        };
        write_repo(
            &args.dir,
            repo,
            count,
            end,
            args.days,
            args.bad_fraction,
            &mut rng,
        )?;
        written += count;
    }
    if !g.quiet {
        println!(
            "wrote {} events in {} repositories under {}",
            args.events,
            repos.len(),
            args.dir.display()
        );
        if args.live {
            println!(
                "appending about {} moments a second; watch with: deploylens serve {}",
                args.rate,
                args.dir.display()
            );
        } else {
            println!("next: deploylens ingest {}", args.dir.display());
        }
    }
    if args.live {
        live(&args.dir, &mut repos, args.rate, args.stop_after, &mut rng)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Appends events at their own time, as they happen: each moment's lines are written when
/// due (a rollback minutes after its deployment), each line whole in one write, until
/// `stop_after` seconds have passed or the process is interrupted. Lines not yet due at the
/// stop are not written.
fn live(
    dir: &Path,
    repos: &mut [Repo],
    rate: f64,
    stop_after: Option<f64>,
    rng: &mut StdRng,
) -> anyhow::Result<()> {
    let interval = std::time::Duration::from_secs_f64(1.0 / rate);
    let started = std::time::Instant::now();
    let mut pending: Vec<(i64, usize, String)> = Vec::new();
    while stop_after.is_none_or(|s| started.elapsed().as_secs_f64() < s) {
        let now = Utc::now().timestamp_micros();
        let r = rng.random_range(0..repos.len());
        for line in next_events(&mut repos[r], now, rng) {
            let at = line["timestamp"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map_or(now, |t| t.timestamp_micros());
            pending.push((at, r, serde_json::to_string(&line)?));
        }
        pending.sort_by_key(|p| p.0);
        let due = pending.partition_point(|p| p.0 <= now);
        for (_, r, text) in pending.drain(..due) {
            append_line(dir, &repos[r].name, &text)?;
        }
        std::thread::sleep(interval);
    }
    Ok(())
}

fn append_line(dir: &Path, repo: &str, text: &str) -> anyhow::Result<()> {
    let path = dir.join(repo).join(".chora/memory/events/deployment.jsonl");
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .with_context(|| format!("appending to {}", path.display()))?;
    let mut line = String::with_capacity(text.len() + 1);
    line.push_str(text);
    line.push('\n');
    file.write_all(line.as_bytes())
        .with_context(|| format!("appending to {}", path.display()))?;
    Ok(())
}

fn new_repo(i: usize, rng: &mut StdRng) -> anyhow::Result<Repo> {
    let base = NAMES[i % NAMES.len()];
    let name = if i < NAMES.len() {
        base.to_string()
    } else {
        format!("{base}-{}", i / NAMES.len() + 1)
    };
    let median: f64 = rng.random_range(45.0..420.0);
    Ok(Repo {
        name,
        failure_rate: rng.random_range(0.02..0.25),
        duration: LogNormal::new(median.ln(), 0.6).context("duration distribution")?,
        legacy: i % 10 == 7,
        trace_seq: 0,
        traces: (0, 0),
    })
}

fn write_repo(
    dir: &Path,
    repo: &mut Repo,
    count: usize,
    end: DateTime<Utc>,
    days: u32,
    bad: f64,
    rng: &mut StdRng,
) -> anyhow::Result<()> {
    let events_dir = dir.join(&repo.name).join(".chora/memory/events");
    fs::create_dir_all(&events_dir).with_context(|| format!("creating {}", events_dir.display()))?;
    let path = events_dir.join("deployment.jsonl");
    let file = fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    // A moment's time follows the share of its repository's events written so far, so that
    // the history reaches --end whatever the number of lines a moment writes (a deployment
    // writes up to three). Rollbacks land up to 15 minutes after their deployment: moments stop
    // that much before --end.
    let span_us = (days as i64 * 86_400_000_000 - ROLLBACK_DELAY_US).max(1);
    let step = (span_us / count.max(1) as i64).max(1);
    let start = end.timestamp_micros() - ROLLBACK_DELAY_US - span_us;
    let mut t = start;
    let mut n = 0usize;
    while n < count {
        let due = start + (span_us as i128 * n as i128 / count.max(1) as i128) as i64;
        t = (due + rng.random_range(0..step)).max(t + 1);
        let lines = next_events(repo, t, rng);
        for line in lines {
            if n >= count {
                break;
            }
            let mut text = serde_json::to_string(&line)?;
            if rng.random_bool(bad.clamp(0.0, 1.0)) {
                text = break_line(&text, rng);
            }
            out.write_all(text.as_bytes())?;
            out.write_all(b"\n")?;
            n += 1;
        }
    }
    out.flush()?;
    Ok(())
}

/// The longest time from a failed production deployment to its rollback.
const ROLLBACK_DELAY_US: i64 = 900_000_000;

fn timestamp(us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(us)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The events of one moment in a repository's life: a deployment (perhaps with its
/// in_progress record and a rollback), or a health check, backup or configuration change.
fn next_events(repo: &mut Repo, t: i64, rng: &mut StdRng) -> Vec<Value> {
    let env = match rng.random_range(0..10) {
        0..=4 => "development",
        5..=7 => "staging",
        _ => "production",
    };
    let kind = rng.random_range(0..100);
    let mut out = Vec::new();
    if kind < 30 {
        let ok = rng.random_bool(0.97);
        out.push(base(
            repo,
            t,
            "health_check",
            env,
            if ok { "success" } else { "failure" },
            rng.random_range(0.05..2.0),
        ));
        if !ok {
            out[0]["errors"] = json!([fill("Health check timeout after {n}s", rng)]);
        }
        return out;
    }
    if kind < 33 {
        out.push(base(
            repo,
            t,
            "backup",
            env,
            "success",
            rng.random_range(5.0..600.0),
        ));
        return out;
    }
    if kind < 38 {
        out.push(base(
            repo,
            t,
            "configuration_change",
            env,
            "success",
            rng.random_range(1.0..30.0),
        ));
        return out;
    }
    repo.trace_seq += 1;
    let version = format!(
        "v{}.{}.{}",
        1 + repo.trace_seq / 400,
        (repo.trace_seq / 20) % 20,
        repo.trace_seq % 20
    );
    let duration = repo.duration.sample(rng);
    let trace = if rng.random_bool(0.3) {
        next_trace_id(repo, t)
    } else {
        None
    };
    let failed = rng.random_bool(repo.failure_rate);
    if rng.random_bool(0.3) {
        let mut started = base(
            repo,
            t - (duration * 1e6) as i64,
            "deployment",
            env,
            "in_progress",
            0.0,
        );
        set_deploy_fields(&mut started, &version, trace.as_deref());
        out.push(started);
    }
    let mut done = base(
        repo,
        t,
        "deployment",
        env,
        if failed { "failure" } else { "success" },
        duration,
    );
    set_deploy_fields(&mut done, &version, trace.as_deref());
    if !repo.legacy && rng.random_bool(0.8) {
        // Lead times from 10 minutes to 3 days, log-uniform: most changes ship within hours.
        let lead_s = rng.random_range(600f64.ln()..259_200f64.ln()).exp();
        done["commit_timestamp"] = json!(timestamp(t - (lead_s * 1e6) as i64));
    }
    if failed {
        let (template, fix) = FAILURES[rng.random_range(0..FAILURES.len())];
        done["errors"] = json!([fill(template, rng)]);
        if rng.random_bool(0.75) {
            done["notes"] = json!(fix);
            if !repo.legacy {
                done["resolution_time_seconds"] = json!(rng.random_range(120..7200));
            }
        }
    }
    out.push(done);
    if failed && env == "production" && rng.random_bool(0.5) {
        let mut rb = base(
            repo,
            t + rng.random_range(60_000_000..ROLLBACK_DELAY_US),
            "rollback",
            env,
            "success",
            rng.random_range(20.0..120.0),
        );
        set_deploy_fields(&mut rb, &version, None);
        rb["notes"] = json!("Rolled back to the previous release");
        out.push(rb);
    }
    out
}

fn base(repo: &Repo, t: i64, kind: &str, env: &str, status: &str, duration: f64) -> Value {
    let mut v = json!({
        "timestamp": timestamp(t),
        "event_type": kind,
        "environment": env,
        "version": "",
        "status": status,
    });
    if !repo.legacy {
        v["repository"] = json!(repo.name);
        v["duration_seconds"] = json!((duration * 1000.0).round() / 1000.0);
        v["deployed_by"] = json!(["ci_cd", "agent", "human"][(t as usize / 7) % 3]);
    }
    v
}

fn set_deploy_fields(v: &mut Value, version: &str, trace: Option<&str>) {
    v["version"] = json!(version);
    if let Some(t) = trace {
        v["trace_id"] = json!(t);
    }
}

fn fill(template: &str, rng: &mut StdRng) -> String {
    template
        .replace("{n}", &rng.random_range(5..120).to_string())
        .replace(
            "{host}",
            &format!("db-{}.internal.example.com", rng.random_range(1..9)),
        )
        .replace("{port}", &rng.random_range(3000..9000).to_string())
        .replace(
            "{ip}",
            &format!("10.0.{}.{}", rng.random_range(0..255), rng.random_range(1..255)),
        )
        .replace(
            "{path}",
            &format!("/var/lib/app/data-{}/cache.db", rng.random_range(1..50)),
        )
        .replace(
            "{ver}",
            &format!("v1.{}.{}", rng.random_range(0..30), rng.random_range(0..10)),
        )
        .replace("{pod}", &pod_name(rng))
        .replace("{sha}", &format!("{:016x}", rng.random::<u64>()))
        .replace(
            "{ts}",
            &timestamp(1_760_000_000_000_000 + rng.random_range(0..10_000_000_000_000)),
        )
}

/// A trace id no other deployment of the repository has, in the year of `t`; none once the
/// year's 999 are used.
fn next_trace_id(repo: &mut Repo, t: i64) -> Option<String> {
    use chrono::Datelike;
    let year = DateTime::<Utc>::from_timestamp_micros(t).map_or(2025, |d| d.year());
    if repo.traces.0 != year {
        repo.traces = (year, 0);
    }
    repo.traces.1 += 1;
    (repo.traces.1 <= 999).then(|| format!("CHORA-DEPLOY-{year:04}-{:03}", repo.traces.1))
}

/// A pod name as Kubernetes writes it: deployment, ReplicaSet hash, pod suffix, from the
/// alphabet Kubernetes uses for them (no vowels, no 0, 1 or 3).
fn pod_name(rng: &mut StdRng) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut pick = |n: usize| -> String {
        (0..n)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect()
    };
    let hash = pick(10);
    let suffix = pick(5);
    format!("api-{hash}-{suffix}")
}

/// Breaks a good line the way files get broken: cut short, wrong types, bad enums.
fn break_line(text: &str, rng: &mut StdRng) -> String {
    match rng.random_range(0..5) {
        0 => text[..text.len() / 2].to_string(),
        1 => text
            .replacen("\"production\"", "\"prod\"", 1)
            .replacen("\"staging\"", "\"stage\"", 1)
            .replacen("\"development\"", "\"dev\"", 1),
        2 => text.replacen("\"timestamp\":\"", "\"timestamp\":\"last ", 1),
        3 => text.replacen("\"status\":\"", "\"status\":\"ok-", 1),
        _ => format!("{text},"),
    }
}
