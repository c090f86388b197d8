//! Embeds every file of `queries/` in the binary, so the SQL files stay the single source of
//! truth and the installed binary needs nothing beside it.

use std::fmt::Write;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../queries");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut out = String::from(
        "/// (relative path, SQL text) of every file under `queries/`.\npub const QUERY_FILES: &[(&str, &str)] = &[\n",
    );
    let mut files = Vec::new();
    collect(&dir, &dir, &mut files);
    files.sort();
    for rel in files {
        println!("cargo:rerun-if-changed={}", dir.join(&rel).display());
        let abs = dir.join(&rel).canonicalize().expect("query file path");
        writeln!(
            out,
            "    ({rel:?}, include_str!({:?})),",
            abs.display().to_string()
        )
        .expect("write");
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("queries.rs");
    std::fs::write(dest, out).expect("write queries.rs");
}

fn collect(base: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        println!("cargo:rerun-if-changed={}", path.display());
        if path.is_dir() {
            collect(base, &path, out);
        } else if path.extension().is_some_and(|e| e == "sql") {
            let rel = path
                .strip_prefix(base)
                .expect("under base")
                .to_string_lossy()
                .replace('\\', "/");
            out.push(rel);
        }
    }
}
