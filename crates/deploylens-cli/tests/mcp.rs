//! `deploylens mcp` driven by the official Python MCP client (tests/mcp/client.py) over stdio:
//! it lists the tools and calls each.

mod common;

use std::process::Command;

use common::*;

#[test]
fn a_real_mcp_client_lists_and_calls_every_tool() {
    let dir = tempfile::tempdir().unwrap();
    ingest_json(dir.path(), &[&ecosystem()]);
    let out = Command::new("python3")
        .arg(repo_root().join("tests/mcp/client.py"))
        .arg(bin())
        .arg(dir.path())
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "MCP client failed (scripts/install-test-deps.sh installs the `mcp` package):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).expect("client output");
    assert_eq!(got["server"], "deploylens");
    assert_eq!(
        got["tools"],
        serde_json::json!(["deployment_summary", "run_sql", "search_past_fixes"])
    );

    let search = &got["search"];
    assert_eq!(search["is_error"], false);
    let first = &search["hits"][0];
    assert_eq!(first["why"], "same fingerprint");
    assert!(
        first["source_file"]
            .as_str()
            .unwrap()
            .ends_with("deployment.jsonl"),
        "{first}"
    );
    assert_eq!(first["event_id"].as_str().unwrap().len(), 32, "{first}");
    assert!(first["fix"].as_str().unwrap().contains("start_period"), "{first}");

    let sql = &got["sql"];
    assert_eq!(sql["is_error"], false);
    let total: i64 = sql["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["n"].as_i64().unwrap())
        .sum();
    let direct = common::sql(dir.path(), "SELECT count(*) AS n FROM deployments");
    assert_eq!(total, direct[0]["n"].as_i64().unwrap());

    assert_eq!(got["sql_refused"]["is_error"], true, "DDL must be refused");
    assert_eq!(got["summary"]["is_error"], false);
    assert_eq!(
        got["summary"]["reports"],
        serde_json::json!(["dora", "duration_percentiles", "success_rate", "time_to_restore"])
    );
}
