//! Measures single-core throughput of `analyze` on short deployment error messages.
//!
//! `cargo run --release -p deploylens-fingerprint --example throughput`

use std::hint::black_box;
use std::time::Instant;

const MESSAGES: &[&str] = &[
    "2024-11-02T14:30:00Z ERROR: health check timeout after 45s on 10.0.3.17:8080",
    "2024-11-02T14:30:00Z dial tcp: lookup db.internal.example.com on 10.96.0.10:53: no such host",
    "Back-off restarting failed container api in pod api-7d9f8b6c5-x2x4z_default(3f2a)",
    "container api exited with code 137 (OOMKilled) after 4m12s, memory limit 512Mi",
    "Error: environment variable DATABASE_URL is not set in deployment web",
    "open /var/lib/app/data/cache.db: permission denied (uid 1000, gid 1000)",
    "write /var/lib/docker/tmp/GetImageBlob1234: no space left on device",
    "[kubelet] Error: secret \"db-credentials\" not found in namespace prod",
    "listen tcp 0.0.0.0:8080: bind: address already in use, retry in 5s",
    "Error response from daemon: manifest for ghcr.io/acme/api:1.4.2 not found: manifest unknown",
    "time=2024-11-02T14:30:00Z level=error msg=\"migration lock held by 10.244.1.17 since 2m30s\"",
    "Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space",
    "x509: certificate has expired or is not yet valid: current time 2024-11-02",
    "Nov 02 14:30:00 ip-10-0-1-5 dockerd[812]: pull rate limit reached (429)",
    "0/5 nodes are available: 5 Insufficient cpu. preemption: 0/5 nodes are available: 5 No victims",
    "deploy 3f2a1b4c9d8e failed after 12 attempts; rollout of v2.3.0-rc.1 halted",
];

fn main() {
    let bytes: usize = MESSAGES.iter().map(|m| m.len()).sum();
    let avg = bytes as f64 / MESSAGES.len() as f64;
    // Warm up lazily compiled regexes and caches.
    for m in MESSAGES {
        black_box(deploylens_fingerprint::analyze(m));
    }
    let rounds = 40_000;
    let start = Instant::now();
    for _ in 0..rounds {
        for m in MESSAGES {
            black_box(deploylens_fingerprint::analyze(black_box(m)));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let n = rounds * MESSAGES.len();
    println!(
        "{n} messages (avg {avg:.0} bytes) in {secs:.3}s: {:.0} messages/s, {:.1} MB/s",
        n as f64 / secs,
        (rounds * bytes) as f64 / secs / 1e6
    );
}
