//! The store is a Delta table that other engines read: the Python `deltalake` package and
//! DuckDB over it give the same exact percentiles as deploylens; Spark runs deploylens's own
//! definitions over the table's current files and returns the same rows; an outside reader
//! never sees a row twice while deploylens compacts.

mod common;

use std::process::Command;

use common::*;

/// Ends a script without the interpreter's teardown: the deltalake package's native threads can
/// abort the process at exit ("terminate called without an active exception", delta-rs issue
/// 2184) after the answer was printed.
fn exiting_at_once(script: &str) -> String {
    format!(
        "{script}\nimport os as _os, sys as _sys\n_sys.stdout.flush()\n_sys.stderr.flush()\n_os._exit(0)\n"
    )
}

fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(exiting_at_once(script))
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python failed (install the test dependencies with scripts/install-test-deps.sh):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The reading script's answer. The deltalake package's native code sometimes aborts the
/// process ("terminate called without an active exception") while it reads a table that is
/// being committed to; such a crash says nothing about what the reader saw, so the script runs
/// again, at most three times. An answer, or a failure of the script itself, is final.
fn reader_without_crashing(script: &str, table: &str) -> serde_json::Value {
    for _ in 0..3 {
        let out = Command::new("python3")
            .arg("-c")
            .arg(exiting_at_once(script))
            .args([table, "15"])
            .output()
            .expect("python3");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && stderr.contains("terminate called") {
            continue;
        }
        assert!(out.status.success(), "the reader failed: {stderr}");
        return serde_json::from_slice(&out.stdout).expect("the reader's JSON");
    }
    panic!("the reader crashed three times");
}

#[test]
fn duckdb_and_pyarrow_read_the_store_and_agree_on_percentiles() {
    let dir = tempfile::tempdir().unwrap();
    let eco = tempfile::tempdir().unwrap();
    run(
        dir.path(),
        &[
            "demo",
            &eco.path().to_string_lossy(),
            "--repos",
            "5",
            "--events",
            "4000",
            "--seed",
            "3",
            "--end",
            "2025-11-15T00:00:00Z",
        ],
    );
    ingest_json(dir.path(), &[eco.path()]);

    let ours = run(
        dir.path(),
        &[
            "report",
            "duration_percentiles",
            "--window",
            "all",
            "--format",
            "json",
        ],
    );
    let ours: Vec<serde_json::Value> = serde_json::from_str(&ours).unwrap();
    assert!(ours.len() >= 10);

    let script = r#"
import json, sys, duckdb, pyarrow as pa, deltalake
store = sys.argv[1]
dt = deltalake.DeltaTable(store + "/events")
events = dt.to_pyarrow_dataset()
table = events.to_table()
schema = table.schema
assert schema.field("timestamp").type == pa.timestamp("us", tz="UTC"), schema.field("timestamp").type
assert schema.field("errors").type.value_type == pa.string()
con = duckdb.connect()
con.register("events", events)
rows = con.execute(f"""
  SELECT repository, environment, quantile_cont(duration_seconds, 0.5), quantile_cont(duration_seconds, 0.95),
         quantile_cont(duration_seconds, 0.99), count(*)
  FROM events
  WHERE event_type = 'deployment' AND status IN ('success', 'failure') AND duration_seconds IS NOT NULL
  GROUP BY ALL
""").fetchall()
n = con.execute("SELECT count(*) FROM events").fetchone()[0]
print(json.dumps({"pyarrow_rows": table.num_rows, "duckdb_rows": n,
  "p": {f"{r[0]}|{r[1]}": [r[2], r[3], r[4], r[5]] for r in rows}}))
"#;
    let theirs: serde_json::Value =
        serde_json::from_str(&python(script, &[&dir.path().to_string_lossy()])).unwrap();
    let total = sql(dir.path(), "SELECT count(*) AS n FROM events");
    assert_eq!(theirs["pyarrow_rows"], total[0]["n"]);
    assert_eq!(theirs["duckdb_rows"], total[0]["n"]);
    for row in &ours {
        let key = format!(
            "{}|{}",
            row["repository"].as_str().unwrap(),
            row["environment"].as_str().unwrap()
        );
        let t = &theirs["p"][&key];
        assert_eq!(t[3], row["deployments"], "{key}");
        for (i, p) in ["p50_seconds", "p95_seconds", "p99_seconds"].iter().enumerate() {
            assert!(
                close(row[*p].as_f64(), t[i].as_f64()),
                "{key} {p}: ours {} duckdb {}",
                row[*p],
                t[i]
            );
        }
    }
}

/// A table whose current files are fewer than the files on disk: several commits, merged.
fn table_with_compacted_files(dir: &std::path::Path, eco: &std::path::Path) {
    run(
        dir,
        &[
            "demo",
            &eco.to_string_lossy(),
            "--repos",
            "4",
            "--events",
            "3000",
            "--seed",
            "11",
            "--end",
            "2025-11-15T00:00:00Z",
        ],
    );
    let out = Command::new(bin())
        .arg("--data-dir")
        .arg(dir)
        .args(["ingest", "--commit-rows", "150"])
        .arg(eco)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn spark_runs_the_success_rate_and_percentile_definitions_over_the_current_files() {
    let dir = tempfile::tempdir().unwrap();
    let eco = tempfile::tempdir().unwrap();
    table_with_compacted_files(dir.path(), eco.path());
    let out = Command::new("python3")
        .arg(repo_root().join("tests/spark/definitions.py"))
        .arg(dir.path())
        .arg(repo_root().join("queries"))
        .args(["1970-01-01 00:00:00", "2100-01-01 00:00:00"])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "Spark failed (scripts/install-test-deps.sh installs pyspark and a JDK):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spark: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let total = sql(dir.path(), "SELECT count(*) AS n FROM events")[0]["n"].clone();
    assert_eq!(spark["events"], total, "Spark counted another number of rows");
    for name in ["success_rate", "duration_percentiles"] {
        let ours: Vec<serde_json::Value> = serde_json::from_str(&run(
            dir.path(),
            &["report", name, "--window", "all", "--format", "json"],
        ))
        .unwrap();
        let theirs = spark[name].as_array().unwrap();
        assert!(ours.len() >= 8, "{name}: {} rows", ours.len());
        assert_eq!(ours.len(), theirs.len(), "{name}: row counts differ");
        for (a, b) in ours.iter().zip(theirs) {
            for (key, value) in a.as_object().unwrap() {
                let other = &b[key];
                let equal = match (value.as_f64(), other.as_f64()) {
                    (Some(_), Some(_)) => close(value.as_f64(), other.as_f64()),
                    _ => value == other,
                };
                assert!(equal, "{name} {key}: deploylens {value}, Spark {other} in {a}");
            }
        }
    }
}

#[test]
fn an_outside_reader_never_sees_a_row_twice_while_deploylens_compacts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("eco");
    let events = root.join("svc/.chora/memory/events");
    std::fs::create_dir_all(&events).unwrap();
    let file = events.join("deployment.jsonl");
    std::fs::write(&file, "").unwrap();
    let data = dir.path().join("data");
    let server = Server::start(
        &data,
        &root,
        &["--compact-max-small", "2", "--rescan-interval", "1s"],
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, file) = (stop.clone(), file.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let line = format!(
                    r#"{{"timestamp":"2025-11-20T10:{:02}:{:02}Z","event_type":"deployment","repository":"svc","environment":"staging","version":"v{n}","status":"success","duration_seconds":3}}"#,
                    n / 60 % 60,
                    n % 60
                );
                let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
                writeln!(f, "{line}").unwrap();
                n += 1;
                std::thread::sleep(std::time::Duration::from_millis(40));
            }
        })
    };
    // Reads the newest version again and again while small commits are merged.
    let script = r#"
import json, sys, time, deltalake, pyarrow.compute as pc
path, seconds = sys.argv[1], float(sys.argv[2])
reads, versions, worst, last = 0, set(), 0, 0
end = time.time() + seconds
while time.time() < end:
    try:
        dt = deltalake.DeltaTable(path)
    except Exception:
        time.sleep(0.1)
        continue
    t = dt.to_pyarrow_dataset().to_table(columns=["event_id"])
    ids = t.column("event_id")
    twice = len(ids) - len(pc.unique(ids))
    worst = max(worst, twice)
    if len(ids) < last:
        print(json.dumps({"shrank": [last, len(ids)]})); sys.exit(1)
    last = len(ids)
    reads += 1
    versions.add(dt.version())
print(json.dumps({"reads": reads, "versions": len(versions), "twice": worst, "rows": last}))
"#;
    let seen = reader_without_crashing(script, &data.join("events").to_string_lossy());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert!(server.terminate().success());
    assert_eq!(seen["twice"], 0, "a reader saw rows twice: {seen}");
    assert!(
        seen["versions"].as_u64().unwrap() >= 5,
        "too few versions read: {seen}"
    );
    let log = std::fs::read_dir(data.join("events/_delta_log")).unwrap();
    let optimized = log
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .filter(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .contains("\"OPTIMIZE\"")
        })
        .count();
    assert!(
        optimized >= 2,
        "only {optimized} compactions while the reader read"
    );
}
