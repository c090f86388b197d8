//! The TOML configuration file: `config check` reports problems with their location, and a
//! file's settings apply where no flag or environment variable says otherwise.

mod common;

use common::*;

fn check(path: &std::path::Path) -> (Option<i32>, String) {
    let out = std::process::Command::new(bin())
        .args(["config", "check"])
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn config_check_accepts_a_good_file_and_locates_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        format!(
            "data_dir = \"{}\"\nroots = [\"{}\"]\n\n[serve]\nlisten = \"127.0.0.1:9464\"\npoll_interval = \"250ms\"\nmetrics_windows = [\"1h\", \"30d\"]\n\n[sql]\ntimeout = \"5s\"\nmax_rows = 100\n",
            dir.path().join("data").display(),
            ecosystem().display()
        ),
    )
    .unwrap();
    let (code, out) = check(&good);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ok"), "{out}");

    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, "roots = [\"/tmp\"]\n\n[serve]\nlistn = \"127.0.0.1:1\"\n").unwrap();
    let (code, out) = check(&typo);
    assert_eq!(code, Some(1));
    assert!(out.contains("typo.toml:4:") && out.contains("listn"), "{out}");

    let values = dir.path().join("values.toml");
    std::fs::write(&values, "roots = [\"/no/such/root\"]\n[serve]\npoll_interval = \"5 parsecs\"\nlisten = \"localhost\"\n[sql]\nmax_rows = 0\n").unwrap();
    let (code, out) = check(&values);
    assert_eq!(code, Some(1));
    for needle in [
        "serve.poll_interval",
        "serve.listen",
        "roots: /no/such/root",
        "sql.max_rows",
    ] {
        assert!(out.contains(needle), "{needle} not reported: {out}");
    }
    let wrong_type = dir.path().join("type.toml");
    std::fs::write(&wrong_type, "[sql]\nmax_rows = \"many\"\n").unwrap();
    let (code, out) = check(&wrong_type);
    assert_eq!(code, Some(1));
    assert!(out.contains("type.toml:2:"), "{out}");
}

#[test]
fn settings_come_from_the_file_unless_a_flag_says_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let from_file = dir.path().join("from-file");
    let config = dir.path().join("deploylens.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\nroots = [\"{}\"]\nmax_line_bytes = 100\n",
            from_file.display(),
            ecosystem().display()
        ),
    )
    .unwrap();
    // No roots and no data directory on the command line: both from the file.
    let out = std::process::Command::new(bin())
        .args(["--config", &config.to_string_lossy(), "ingest", "--json"])
        .env_remove("DEPLOYLENS_DATA_DIR")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // max_line_bytes = 100 from the file: every event line is longer, so all are rejected.
    assert_eq!(summary["events"], 0);
    assert!(summary["rejects_by_reason"]["line_too_long"].as_u64().unwrap() > 50);
    assert!(from_file.join("events/_delta_log").exists());

    // A flag wins over the file.
    let flagged = dir.path().join("flagged");
    let out = std::process::Command::new(bin())
        .args([
            "--config",
            &config.to_string_lossy(),
            "--data-dir",
            &flagged.to_string_lossy(),
            "ingest",
            "--json",
            "--max-line-bytes",
            "1048576",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["events"], 80);
    assert!(flagged.join("events/_delta_log").exists());

    // A broken file stops with a pointer to `config check`.
    std::fs::write(&config, "roots = [").unwrap();
    let out = std::process::Command::new(bin())
        .args(["--config", &config.to_string_lossy(), "report"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("config check"));
}
