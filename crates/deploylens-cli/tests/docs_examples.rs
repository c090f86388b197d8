//! Every command example of README.md and docs/*.md, run and compared with what the page shows,
//! so that a page that drifts from the binary fails the tests.
//!
//! A fenced block whose first line starts with `$ ` is a session. Each `$ command` (a line
//! ending in `\` continues on the next) runs in `sh` with standard error joined to standard
//! output; its expected output is the lines up to the next `$ `. In expected output, `[..]`
//! matches any text within a line, and a line holding only `...` (or `…`) matches any number
//! of lines.
//! The blocks of a page run in order, in one scratch folder per page that holds `testdata` (the
//! bundled one) and, in `./deploylens-data` (the default data directory), the bundled ecosystem
//! ingested, with the binary under test first on `PATH`; `/tmp/docs-dl`, the data directory some
//! pages use, is emptied before each page. `echo $?` prints the exit status of the command
//! before it, and a command that only sets a shell variable (`fp=$(...)`) is run again before
//! each later command of its block. A block right after a line `<!-- not run: REASON -->` is skipped: it needs a
//! running server, a terminal or a network.
//!
//! Blocks marked `sh` show commands without their output. Each `deploylens ...` line of them
//! runs too: the commands that read or write the local store (`ingest`, `report`, `sql`,
//! `validate`, `fixes`) against the bundled ecosystem, with its paths (`~/src`, `/srv/repos`,
//! `/var/lib/deploylens`...) standing for it, and must succeed; the others (servers, S3 stores,
//! a config file in /etc) with `--help` appended, so that their subcommand and flags must exist
//! and their values parse.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// One `$ command` and the output the page shows for it.
struct Example {
    page: String,
    /// The line of the block's opening fence: the commands of one block share shell variables.
    block: usize,
    line: usize,
    command: String,
    expected: Vec<String>,
}

fn examples_of(page: &Path) -> Vec<Example> {
    let text = std::fs::read_to_string(page).expect("page");
    let name = page
        .strip_prefix(repo_root())
        .unwrap_or(page)
        .display()
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i].trim_start();
        let skipped = i > 0 && lines[i - 1].trim_start().starts_with("<!-- not run:");
        if !fence.starts_with("```") {
            i += 1;
            continue;
        }
        let end = (i + 1..lines.len())
            .find(|&j| lines[j].trim_start().starts_with("```"))
            .unwrap_or(lines.len());
        let body = &lines[i + 1..end];
        if !skipped && body.first().is_some_and(|l| l.starts_with("$ ")) {
            let mut k = 0;
            while k < body.len() {
                let start = k;
                let mut command = body[k][2..].to_string();
                while command.ends_with('\\') && k + 1 < body.len() {
                    k += 1;
                    command.push('\n');
                    command.push_str(body[k]);
                }
                k += 1;
                let mut expected = Vec::new();
                while k < body.len() && !body[k].starts_with("$ ") {
                    expected.push(body[k].trim_end().to_string());
                    k += 1;
                }
                while expected.last().is_some_and(|l| l.is_empty()) {
                    expected.pop();
                }
                out.push(Example {
                    page: name.clone(),
                    block: i,
                    line: i + 2 + start,
                    command,
                    expected,
                });
            }
        }
        i = end + 1;
    }
    out
}

/// Whether `got` matches `want`, where `want` may hold `[..]` (any text) wildcards.
fn line_matches(want: &str, got: &str) -> bool {
    let parts: Vec<&str> = want.split("[..]").collect();
    if parts.len() == 1 {
        return want == got;
    }
    let Some(mut rest) = got.strip_prefix(parts[0]) else {
        return false;
    };
    for (n, part) in parts.iter().enumerate().skip(1) {
        if n == parts.len() - 1 {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Whether the lines of `got` match `want`, where a line `...` matches any lines.
fn output_matches(want: &[String], got: &[String]) -> bool {
    match want.split_first() {
        None => got.is_empty(),
        Some((w, rest)) if w == "..." || w == "…" => {
            (0..=got.len()).any(|skip| output_matches(rest, &got[skip..]))
        }
        Some((w, rest)) => got
            .split_first()
            .is_some_and(|(g, more)| line_matches(w, g) && output_matches(rest, more)),
    }
}

/// A page's scratch folder; `/tmp/docs-dl`, which pages share, emptied.
fn scratch() -> tempfile::TempDir {
    let _ = std::fs::remove_dir_all("/tmp/docs-dl");
    scratch_store()
}

/// A folder holding `testdata` and the bundled ecosystem ingested in `./deploylens-data`.
fn scratch_store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("scratch");
    std::os::unix::fs::symlink(repo_root().join("testdata"), dir.path().join("testdata")).expect("link");
    let ingested = Command::new(bin())
        .args(["ingest", "testdata/ecosystem"])
        .current_dir(dir.path())
        .env_remove("DEPLOYLENS_DATA_DIR")
        .output()
        .expect("ingest");
    assert!(
        ingested.status.success(),
        "{}",
        String::from_utf8_lossy(&ingested.stderr)
    );
    dir
}

/// The output lines of a command, and its exit status.
fn run_command(command: &str, cwd: &Path, path: &str) -> (Vec<String>, i32) {
    // A command that waits (a server) is cut after a minute, and fails its comparison.
    let out = Command::new("timeout")
        .args(["60", "sh", "-c"])
        .arg(format!("{command} 2>&1"))
        .current_dir(cwd)
        .env("PATH", path)
        .env_remove("DEPLOYLENS_DATA_DIR")
        .env_remove("DEPLOYLENS_CONFIG")
        .env("COLUMNS", "100")
        .output()
        .expect("sh");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    (lines, out.status.code().unwrap_or(-1))
}

/// `name=value` and nothing else: a shell variable for the commands after it.
fn is_assignment(command: &str) -> bool {
    let Some((name, _)) = command.split_once('=') else {
        return false;
    };
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn pages() -> Vec<PathBuf> {
    let mut pages = vec![repo_root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo_root().join("docs"))
        .expect("docs")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md") && !p.ends_with("benchmarks.md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

#[test]
fn every_command_example_in_the_docs_gives_the_output_shown() {
    let bin_dir = bin().parent().expect("bin dir").to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut failures = Vec::new();
    let mut ran = 0;
    for page in pages() {
        let examples = examples_of(&page);
        if examples.is_empty() {
            continue;
        }
        let scratch = scratch();
        let mut status = 0;
        let mut variables: Vec<(usize, String)> = Vec::new();
        for e in &examples {
            variables.retain(|(block, _)| *block == e.block);
            if is_assignment(&e.command) {
                variables.push((e.block, e.command.clone()));
            }
            let prelude: String = variables.iter().map(|(_, v)| format!("{v}; ")).collect();
            let (got, code) = if e.command.trim() == "echo $?" {
                (vec![status.to_string()], 0)
            } else {
                run_command(&format!("{prelude}{}", e.command), scratch.path(), &path)
            };
            status = code;
            ran += 1;
            if !output_matches(&e.expected, &got) {
                failures.push(format!(
                    "{}:{}: $ {}\n--- the page shows\n{}\n--- the binary prints\n{}\n",
                    e.page,
                    e.line,
                    e.command,
                    e.expected.join("\n"),
                    got.join("\n")
                ));
            }
        }
    }
    assert!(ran >= 50, "only {ran} examples found");
    assert!(
        failures.is_empty(),
        "{} of {ran} examples disagree with the binary:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The `deploylens ...` commands of `sh` blocks, with their page and line; a line whose quotes
/// do not close continues on the next.
fn plain_commands_of(page: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(page).expect("page");
    let name = page
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start();
        if fence.starts_with("```") {
            in_sh = !in_sh && fence.trim_start_matches('`').trim() == "sh";
            pending = None;
            continue;
        }
        if !in_sh {
            continue;
        }
        let (start, command) = match pending.take() {
            Some((start, so_far)) => (start, format!("{so_far}\n{line}")),
            None if line.trim_start().starts_with("deploylens ") => (i + 1, line.trim().to_string()),
            None => continue,
        };
        if command.matches('"').count() % 2 == 1 {
            pending = Some((start, command));
            continue;
        }
        out.push((format!("{name}:{start}"), command));
    }
    out
}

/// A shell command line without its trailing `# comment`, `&` and the rest of a pipeline (the
/// tools after `|` are not deploylens: `grep REPOSITORY` finds nothing in the testdata).
fn without_comment(command: &str) -> String {
    let mut quoted = false;
    let mut end = command.len();
    for (i, c) in command.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' | '|' if !quoted && command[..i].ends_with(' ') => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    command[..end].trim().trim_end_matches('&').trim().to_string()
}

#[test]
fn every_deploylens_command_of_a_plain_block_runs() {
    let bin_dir = bin().parent().expect("bin dir").to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let repos = "testdata/ecosystem";
    let event_file = "testdata/ecosystem/chora-base/.chora/memory/events/deployment.jsonl";
    let mut failures = Vec::new();
    let mut ran = 0;
    for page in pages() {
        let commands = plain_commands_of(&page);
        if commands.is_empty() {
            continue;
        }
        // Not `scratch()`: the page examples, run alongside, use /tmp/docs-dl.
        let scratch = scratch_store();
        std::fs::write(scratch.path().join("empty.toml"), "").expect("config");
        for (at, command) in commands {
            let mut line = without_comment(&command)
                .replace("/path/to/repo/.chora/memory/events/deployment.jsonl", event_file)
                .replace(
                    " .chora/memory/events/deployment.jsonl",
                    &format!(" {event_file}"),
                )
                .replace("~/src/repos", repos)
                .replace("~/src", repos)
                .replace("/srv/repos", repos)
                .replace("/var/lib/deploylens", "./deploylens-data")
                .split(' ')
                .map(|w| match w.starts_with("/etc/") && w.ends_with(".toml") {
                    true => "empty.toml",
                    false => w,
                })
                .collect::<Vec<_>>()
                .join(" ");
            let words: Vec<&str> = line.split_whitespace().collect();
            let subcommand = words
                .iter()
                .skip(1)
                .scan(false, |after_flag_value, w| {
                    let this = !*after_flag_value && !w.starts_with('-');
                    *after_flag_value = matches!(*w, "--data-dir" | "--config");
                    Some((this, *w))
                })
                .find_map(|(is_command, w)| is_command.then_some(w))
                .unwrap_or("");
            let local = ["ingest", "report", "sql", "validate", "fixes"].contains(&subcommand)
                && !line.contains("s3://")
                && !line.contains("/etc/");
            if !local {
                line.push_str(" --help");
            }
            let (got, code) = run_command(&line, scratch.path(), &path);
            ran += 1;
            if code != 0 || got.is_empty() {
                failures.push(format!("{at}: {line}\n  exit {code}: {}", got.join("\n  ")));
            }
        }
    }
    assert!(ran >= 20, "only {ran} plain commands found");
    assert!(
        failures.is_empty(),
        "{} of {ran} plain commands fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn wildcards_match_what_they_say() {
    assert!(line_matches("took [..] s", "took 0.52 s"));
    assert!(!line_matches("took [..] s", "took 0.52 ms"));
    assert!(line_matches("[..]", "anything"));
    let want: Vec<String> = ["a", "...", "z"].map(String::from).to_vec();
    let got: Vec<String> = ["a", "b", "c", "z"].map(String::from).to_vec();
    assert!(output_matches(&want, &got));
    assert!(!output_matches(&want, &got[..3]));
}
