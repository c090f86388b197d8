//! Search latency over a large synthetic history: N past failures drawn from realistic error
//! templates with varying values and fixes, then Q searches with reworded and exact errors.
//! Prints JSON with the build time and p50/p99 search latency. Used by bench/run.py.
//!
//! cargo run --release -p deploylens-knowledge --example search_bench -- 1000000 2000

use std::time::Instant;

use deploylens_fingerprint::analyze;
use deploylens_knowledge::{Index, PastFailure, SearchOptions};

const ERRORS: &[(&str, &str)] = &[
    (
        "Health check timeout after {n}s",
        "Increased start_period in docker-compose.yml",
    ),
    (
        "container api-{h}-{h2} exited with code 137 (OOMKilled)",
        "Raised the memory limit",
    ),
    (
        "Readiness probe failed: HTTP probe failed with statuscode: 503 on 10.0.{n}.{n2}:{p}",
        "Fixed the /ready handler",
    ),
    (
        "secret DATABASE_URL not found in environment",
        "Added DATABASE_URL to the secrets",
    ),
    (
        "secret REDIS_URL not found in environment",
        "Created the REDIS_URL secret",
    ),
    (
        "migration failed: could not obtain lock on table schema_migrations after {n}s",
        "Killed the stuck migration",
    ),
    (
        "dial tcp 10.0.{n}.{n2}:5432: connect: connection refused",
        "Waited for the database before migrating",
    ),
    (
        "lookup db-{n}.internal.example.com: no such host",
        "Fixed the service name",
    ),
    (
        "x509: certificate has expired or is not yet valid",
        "Renewed the TLS certificate",
    ),
    (
        "open /var/lib/app/data-{n}/cache.db: permission denied",
        "chowned the volume",
    ),
    (
        "write /var/lib/docker/tmp/blob{n}: no space left on device",
        "Pruned images and grew the disk",
    ),
    (
        "failed to pull image registry.example.com/app:v1.{n}.{n2}: manifest unknown",
        "Re-ran the publish job",
    ),
    (
        "Bind for 0.0.0.0:{p} failed: port is already allocated",
        "Stopped the old container",
    ),
    (
        "timed out waiting for rollout of deployment/api-{h} after {n}s",
        "Raised progressDeadlineSeconds",
    ),
    (
        "Error acquiring the state lock, lock id {h}{h2}",
        "terraform force-unlock",
    ),
    (
        "java.lang.OutOfMemoryError: Java heap space after {n} requests",
        "Set -Xmx to 75% of the limit",
    ),
];

fn fill(t: &str, i: u64) -> String {
    t.replace("{n}", &(i % 97 + 3).to_string())
        .replace("{n2}", &(i % 251).to_string())
        .replace("{p}", &(3000 + i % 5000).to_string())
        .replace("{h}", &format!("{:x}", 0x5f3a1b7 + i % 100_000))
        .replace("{h2}", &format!("{:05x}", i % 0xfffff))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let q: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    // Fingerprint each template once per value pattern; the index does not care how rows came.
    let built = Instant::now();
    let mut cache = std::collections::HashMap::new();
    let failures: Vec<PastFailure> = (0..n)
        .map(|i| {
            let (t, fix) = ERRORS[(i % ERRORS.len() as u64) as usize];
            let error = fill(t, i);
            let a = cache
                .entry((i % ERRORS.len() as u64, i % 7))
                .or_insert_with(|| analyze(&error))
                .clone();
            PastFailure {
                timestamp_us: 1_700_000_000_000_000 + i as i64 * 1_000_000,
                repository: format!("repo-{}", i % 1000),
                environment: ["development", "staging", "production"][(i % 3) as usize].into(),
                error,
                fingerprint: a.fingerprint,
                template: a.template,
                fix: (i % 4 != 0).then(|| format!("{fix} (case {})", i % 50)),
                resolution_time_seconds: Some((i % 3600) as f64),
                source: Default::default(),
            }
        })
        .collect();
    let index = Index::new(failures);
    let build_s = built.elapsed().as_secs_f64();
    let queries: Vec<String> = (0..q)
        .map(|i| {
            let (t, _) = ERRORS[i % ERRORS.len()];
            if i % 2 == 0 {
                format!("ERROR: {}", fill(t, 7_000_000 + i as u64))
            } else {
                format!(
                    "deploy failed, {}",
                    fill(t, i as u64).to_lowercase().replace(':', " -")
                )
            }
        })
        .collect();
    let mut lat = Vec::with_capacity(q);
    let mut found = 0;
    for question in &queries {
        let t = Instant::now();
        let hits = index.search(
            question,
            SearchOptions {
                limit: 5,
                now_us: 1_800_000_000_000_000,
            },
        );
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        found += usize::from(!hits.is_empty());
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
    println!(
        "{}",
        serde_json::json!({"failures": n, "templates": index.templates(), "queries": q, "answered": found,
            "build_seconds": build_s, "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": lat[lat.len() - 1]})
    );
}
