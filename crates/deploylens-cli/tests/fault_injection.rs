//! The fault-injection run: writers append to several repositories (some lines in two writes)
//! while `serve` is SIGKILLed at random moments, and the files are rotated in every style
//! while it runs and while it is down: rename rotation (numbered and dated), rotation twice
//! while stopped, copytruncate into a plain and into a gzip copy, truncate-and-rewrite, and a
//! new repository appearing. Afterwards every written event is stored exactly once.
//!
//! Seeded: `DEPLOYLENS_FAULT_SEED` replays a run, `DEPLOYLENS_FAULT_KILLS` sets the number of
//! kills (default 50). The seed and the counts are printed.

mod common;

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// A small deterministic generator, so that a failing run can be replayed from its seed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below.max(1)
    }
}

fn event(repo: &str, n: u64) -> String {
    format!(
        r#"{{"timestamp":"2025-11-{:02}T{:02}:{:02}:{:02}Z","event_type":"deployment","repository":"{repo}","environment":"staging","version":"v{n}","status":"success","duration_seconds":{}}}"#,
        1 + n / 86_400 % 28,
        n / 3600 % 24,
        n / 60 % 60,
        n % 60,
        n % 700
    )
}

/// One repository's event file and what was written to it.
struct Repo {
    name: String,
    file: PathBuf,
    next: u64,
    /// Numbered rotation (`.1`, `.2`, ...) or dated names (`-<k>`).
    numbered: bool,
    rotations: u64,
}

/// Everything the writers and the rotator share; the lock makes a rotation and a two-part
/// write exclusive, as a real rotator and a writer that holds its file open for one event are.
struct World {
    repos: Vec<Repo>,
    written: u64,
}

impl World {
    fn append(&mut self, i: usize, rng: &mut Lcg) {
        let r = &mut self.repos[i];
        let line = event(&r.name, r.next) + "\n";
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&r.file)
            .unwrap();
        if rng.next(3) == 0 {
            // Two writes: a reader may see the first half alone.
            let cut = 1 + rng.next(line.len() as u64 - 1) as usize;
            f.write_all(&line.as_bytes()[..cut]).unwrap();
            f.flush().unwrap();
            std::thread::sleep(Duration::from_micros(300));
            f.write_all(&line.as_bytes()[cut..]).unwrap();
        } else {
            f.write_all(line.as_bytes()).unwrap();
        }
        r.next += 1;
        self.written += 1;
    }

    /// A rotated name: `.1`, `.2`, ... shifted, or a fresh dated name.
    fn rotate_by_rename(&mut self, i: usize) {
        let r = &mut self.repos[i];
        if !r.file.exists() {
            return;
        }
        r.rotations += 1;
        if r.numbered {
            for k in (1..=r.rotations).rev() {
                let from = numbered(&r.file, k);
                if from.exists() {
                    fs::rename(&from, numbered(&r.file, k + 1)).unwrap();
                }
            }
            fs::rename(&r.file, numbered(&r.file, 1)).unwrap();
        } else {
            fs::rename(&r.file, dated(&r.file, r.rotations, "")).unwrap();
        }
    }

    /// copytruncate: a copy (plain or gzip) under a dated name, then the file emptied in place.
    fn copytruncate(&mut self, i: usize, gzip: bool) {
        let r = &mut self.repos[i];
        if !r.file.exists() {
            return;
        }
        r.rotations += 1;
        if gzip {
            let out = fs::File::create(dated(&r.file, r.rotations, ".gz")).unwrap();
            let ok = Command::new("gzip")
                .arg("-c")
                .arg(&r.file)
                .stdout(out)
                .status()
                .unwrap();
            assert!(ok.success());
        } else {
            fs::copy(&r.file, dated(&r.file, r.rotations, "")).unwrap();
        }
        OpenOptions::new()
            .write(true)
            .open(&r.file)
            .unwrap()
            .set_len(0)
            .unwrap();
    }
}

fn numbered(file: &Path, k: u64) -> PathBuf {
    file.with_file_name(format!("deployment.jsonl.{k}"))
}

fn dated(file: &Path, k: u64, ext: &str) -> PathBuf {
    file.with_file_name(format!("deployment.jsonl-2025{k:04}{ext}"))
}

fn events_file(root: &Path, repo: &str) -> PathBuf {
    let d = root.join(repo).join(".chora/memory/events");
    fs::create_dir_all(&d).unwrap();
    d.join("deployment.jsonl")
}

/// `serve` started without waiting for it to be ready: a kill may land during its start.
fn start(data: &Path, root: &Path) -> Child {
    let mut child = Command::new(bin())
        .arg("--data-dir")
        .arg(data)
        .arg("serve")
        .arg(root)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--rescan-interval",
            "1s",
            "--compact-max-small",
            "2",
            "--poll-interval",
            "200ms",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    let _ = BufReader::new(stdout).read_line(&mut line);
    child
}

/// (repository, version) -> times stored.
fn stored(data: &Path) -> BTreeMap<(String, String), i64> {
    sql(
        data,
        "SELECT repository, version, count(*) AS n FROM events GROUP BY 1, 2",
    )
    .into_iter()
    .map(|r| {
        (
            (
                r["repository"].as_str().unwrap().to_string(),
                r["version"].as_str().unwrap().to_string(),
            ),
            r["n"].as_i64().unwrap(),
        )
    })
    .collect()
}

#[test]
fn sigkill_at_random_moments_through_every_rotation_style_loses_and_doubles_nothing() {
    let seed: u64 = std::env::var("DEPLOYLENS_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_201);
    let kills: usize = std::env::var("DEPLOYLENS_FAULT_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    eprintln!("fault injection: seed {seed}, {kills} kills (DEPLOYLENS_FAULT_SEED replays it)");
    let dir = tempfile::tempdir().unwrap();
    let (root, data) = (dir.path().join("eco"), dir.path().join("data"));
    if std::env::var_os("DEPLOYLENS_FAULT_KEEP").is_some() {
        eprintln!("fault injection: keeping {}", dir.path().display());
    }
    let repos: Vec<Repo> = (0..4)
        .map(|i| {
            let name = format!("repo-{i}");
            Repo {
                file: events_file(&root, &name),
                name,
                next: 0,
                numbered: i % 2 == 0,
                rotations: 0,
            }
        })
        .collect();
    let world = Arc::new(Mutex::new(World { repos, written: 0 }));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (world, stop) = (world.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut rng = Lcg(seed ^ 0x9e37_79b9);
            while !stop.load(Ordering::Relaxed) {
                {
                    let mut w = world.lock().unwrap();
                    let i = rng.next(w.repos.len() as u64) as usize;
                    w.append(i, &mut rng);
                }
                std::thread::sleep(Duration::from_micros(500 + rng.next(3000)));
            }
        })
    };
    let mut rng = Lcg(seed);
    let mut actions: BTreeMap<&str, u64> = BTreeMap::new();
    let started = Instant::now();
    for k in 0..kills {
        let mut server = start(&data, &root);
        // While it runs: now and then a rotation, then the kill at a random moment.
        let run_for = Duration::from_millis(100 + rng.next(1900));
        let begun = Instant::now();
        while begun.elapsed() < run_for {
            std::thread::sleep(Duration::from_millis(50 + rng.next(300)));
            if rng.next(4) == 0 {
                let mut w = world.lock().unwrap();
                let i = rng.next(w.repos.len() as u64) as usize;
                let what = match rng.next(3) {
                    0 => {
                        w.rotate_by_rename(i);
                        "rename while running"
                    }
                    1 => {
                        w.copytruncate(i, false);
                        "copytruncate while running"
                    }
                    _ => {
                        w.copytruncate(i, true);
                        "copytruncate to gzip while running"
                    }
                };
                *actions.entry(what).or_default() += 1;
            }
        }
        let _ = server.kill();
        let _ = server.wait();
        // While it is down.
        let mut w = world.lock().unwrap();
        let i = rng.next(w.repos.len() as u64) as usize;
        match rng.next(6) {
            0 => {
                w.rotate_by_rename(i);
                w.append(i, &mut rng);
                w.rotate_by_rename(i);
                *actions.entry("rotated twice while stopped").or_default() += 1;
            }
            1 => {
                let gzip = rng.next(2) == 0;
                w.copytruncate(i, gzip);
                *actions.entry("copytruncate while stopped").or_default() += 1;
            }
            2 => {
                // Truncate and rewrite, once every line of the file is stored (otherwise the
                // unread lines would be gone for any reader): a one-shot ingest catches up
                // while the writers wait.
                let name = w.repos[i].name.clone();
                run(&data, &["ingest", "--quiet", root.to_str().unwrap()]);
                let all = stored(&data);
                let have = all.keys().filter(|(r, _)| *r == name).count() as u64;
                if have == w.repos[i].next {
                    OpenOptions::new()
                        .write(true)
                        .open(&w.repos[i].file)
                        .and_then(|f| f.set_len(0))
                        .ok();
                    for _ in 0..3 {
                        w.append(i, &mut rng);
                    }
                    *actions.entry("truncate and rewrite").or_default() += 1;
                }
            }
            3 if w.repos.len() < 8 => {
                let name = format!("late-{k}");
                let file = events_file(&root, &name);
                w.repos.push(Repo {
                    name,
                    file,
                    next: 0,
                    numbered: k % 2 == 0,
                    rotations: 0,
                });
                let last = w.repos.len() - 1;
                w.append(last, &mut rng);
                *actions.entry("new repository").or_default() += 1;
            }
            _ => {}
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    // A last run reads to the end; it is stopped once it has stored everything.
    let server = Server::start(
        &data,
        &root,
        &["--rescan-interval", "1s", "--poll-interval", "200ms"],
    );
    let (written, expect): (u64, Vec<(String, String)>) = {
        let w = world.lock().unwrap();
        let expect = w
            .repos
            .iter()
            .flat_map(|r| (0..r.next).map(move |n| (r.name.clone(), format!("v{n}"))))
            .collect();
        (w.written, expect)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let (_, body) = http_get(&server.addr, "/metrics").unwrap_or_default();
        if metric_value(&body, "deploylens_store_events") == Some(written as f64) {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(server.terminate().success());
    if std::env::var_os("DEPLOYLENS_FAULT_KEEP").is_some() {
        let _ = dir.keep();
    }
    let got = stored(&data);
    let doubled: Vec<_> = got.iter().filter(|(_, n)| **n > 1).take(5).collect();
    let missing: Vec<_> = expect.iter().filter(|k| !got.contains_key(*k)).take(5).collect();
    let stored_total: i64 = got.values().sum();
    eprintln!(
        "fault injection: seed {seed}: {kills} kills in {:.0?}; {written} events written, {stored_total} stored, {} distinct; actions {actions:?}",
        started.elapsed(),
        got.len()
    );
    assert!(doubled.is_empty(), "stored twice (seed {seed}): {doubled:?}");
    assert!(missing.is_empty(), "lost (seed {seed}): {missing:?}");
    assert_eq!(stored_total as u64, written, "seed {seed}");
    assert_eq!(got.len() as u64, written, "seed {seed}");
    assert_eq!(
        sql(&data, "SELECT count(*) AS n FROM rejects")[0]["n"],
        0,
        "seed {seed}"
    );
    for what in [
        "rename while running",
        "copytruncate to gzip while running",
        "rotated twice while stopped",
    ] {
        assert!(
            actions.get(what).copied().unwrap_or(0) > 0,
            "no {what} in this run (seed {seed})"
        );
    }
}
