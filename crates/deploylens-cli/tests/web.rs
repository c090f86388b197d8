//! The dashboard page (GET / of `deploylens serve`) in a real browser: `serve` over a fresh
//! demo ecosystem, and tests/web/page_check.py driving Debian's headless Chromium over the
//! DevTools protocol. It checks every panel renders, the numbers shown are the API's, the
//! filters narrow the data, an appended failure shows without a reload, the fix search
//! answers, and nothing fails in the console or on the network. Screenshots are left in
//! target/web-screenshots/ for a person to look at.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const TOKEN: &str = "web-test-token-5f0c";

/// Chromium, or a failure saying how to install it: the test never skips silently.
fn chromium() -> PathBuf {
    let debian = PathBuf::from("/usr/bin/chromium");
    if debian.is_file() {
        return debian;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("chromium"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "Chromium is not installed (no /usr/bin/chromium, no `chromium` on PATH): \
                 run scripts/install-test-deps.sh"
            )
        })
}

/// A demo ecosystem whose history ends now (the page's windows end now, so the bundled
/// testdata, months old, would leave them empty); returns its folder, its first repository
/// and that repository's deployment file.
fn demo(dir: &Path) -> (PathBuf, String, PathBuf) {
    let eco = dir.join("eco");
    run(
        &dir.join("scratch"),
        &[
            "demo",
            eco.to_str().unwrap(),
            "--repos",
            "12",
            "--events",
            "3000",
            "--days",
            "14",
        ],
    );
    let mut repos: Vec<String> = std::fs::read_dir(&eco)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join(".chora/memory/events/deployment.jsonl").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    repos.sort();
    let repo = repos.first().expect("a demo repository").clone();
    let file = eco.join(&repo).join(".chora/memory/events/deployment.jsonl");
    (eco, repo, file)
}

/// Runs page_check.py against the server; returns its JSON summary, or fails with its stderr.
fn page_check(
    server: &Server,
    repo: &str,
    file: &Path,
    shots: &Path,
    token: Option<&str>,
) -> serde_json::Value {
    let script = repo_root().join("crates/deploylens-cli/tests/web/page_check.py");
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .arg("--url")
        .arg(format!("http://{}", server.addr))
        .arg("--append-file")
        .arg(file)
        .args(["--repository", repo])
        .arg("--screenshots")
        .arg(shots)
        .arg("--chromium")
        .arg(chromium());
    if let Some(t) = token {
        cmd.args(["--token", t]);
    }
    let out = cmd.output().expect("run python3");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "page_check.py failed ({}):\n{stderr}\n{stdout}",
        out.status
    );
    println!("{stdout}");
    serde_json::from_str(&stdout).expect("page_check.py prints one JSON object")
}

#[test]
fn the_dashboard_page_renders_the_api_numbers_and_refreshes_live() {
    chromium(); // fails first, and says what to install, on a machine without Chromium
    let dir = tempfile::tempdir().unwrap();
    let (eco, repo, file) = demo(dir.path());
    let server = Server::start(&dir.path().join("data"), &eco, &[]);
    let shots = repo_root().join("target/web-screenshots");
    let summary = page_check(&server, &repo, &file, &shots, None);
    assert!(summary["cells_compared"].as_u64().unwrap_or(0) > 0, "{summary}");
    assert!(summary["live_event"].as_str().is_some(), "{summary}");
    for name in ["dashboard.png", "filtered.png"] {
        assert!(
            shots.join(name).metadata().map(|m| m.len() > 0).unwrap_or(false),
            "no {name}"
        );
    }
    server.kill();
}

#[test]
fn with_a_token_the_page_asks_for_it_and_the_api_refuses_without_it() {
    chromium(); // fails first, and says what to install, on a machine without Chromium
    let dir = tempfile::tempdir().unwrap();
    let (eco, repo, file) = demo(dir.path());
    let mut cmd = Command::new(bin());
    cmd.arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("serve")
        .arg(&eco)
        .args(["--listen", "127.0.0.1:0"])
        .env("DEPLOYLENS_TOKEN", TOKEN)
        .env_remove("DEPLOYLENS_TOKEN_FILE")
        .env_remove("DEPLOYLENS_DATA_DIR");
    let server = Server::spawn(cmd);
    let a = &server.addr;
    // The page itself holds no data and is open; the API is not.
    assert_eq!(http_get(a, "/").map(|(s, _)| s), Some(200));
    assert_eq!(
        http_get(a, "/api/queries/success_rate").map(|(s, _)| s),
        Some(401)
    );
    let auth = format!("Bearer {TOKEN}");
    let (status, _, body) = http_request(
        a,
        "GET",
        "/api/queries/success_rate",
        &[("Authorization", auth.as_str())],
        b"",
    )
    .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let shots = repo_root().join("target/web-screenshots/token");
    let summary = page_check(&server, &repo, &file, &shots, Some(TOKEN));
    assert_eq!(summary["token"], true, "{summary}");
    assert!(summary["cells_compared"].as_u64().unwrap_or(0) > 0, "{summary}");
    server.kill();
}
