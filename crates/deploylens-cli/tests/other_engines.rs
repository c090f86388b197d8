//! The Parquet store is an open format: DuckDB and pyarrow read it directly, and DuckDB's own
//! `quantile_cont` over the same files gives the same exact percentiles as deploylens.

mod common;

use std::process::Command;

use common::*;

fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
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
