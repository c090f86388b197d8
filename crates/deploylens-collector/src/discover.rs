//! Finding the event files under a set of roots.

use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use walkdir::WalkDir;

/// Where every repository keeps its deployment events.
pub const DEFAULT_PATTERN: &str = "**/.chora/memory/events/deployment.jsonl";

/// Folders never worth walking: version control, build output, dependencies.
const SKIPPED_DIRS: &[&str] = &[".git", "target", "node_modules"];

/// What a walk looks for besides [`DEFAULT_PATTERN`], and how it walks.
#[derive(Debug, Clone, Default)]
pub struct DiscoveryOptions {
    /// Globs matched against paths relative to each root. The default pattern is always used.
    pub extra_patterns: Vec<String>,
    /// Walk through symbolic links to folders and files.
    pub follow_symlinks: bool,
}

/// An event file and the repository its legacy records belong to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SourceFile {
    /// Its absolute path: read positions are kept under this name.
    pub path: PathBuf,
    /// The name of the folder that holds `.chora` (or, for other patterns, the first folder
    /// under the root).
    pub repository: String,
}

/// What a walk found, and what it could not read.
#[derive(Debug, Default)]
pub struct Discovery {
    /// The event files found, sorted, each file once even when links reach it twice.
    pub files: Vec<SourceFile>,
    /// What could not be walked, as messages: a missing root, an unreadable folder, a bad
    /// pattern.
    pub errors: Vec<String>,
}

fn glob_set(opts: &DiscoveryOptions) -> Result<GlobSet, globset::Error> {
    let mut builder = GlobSetBuilder::new();
    builder.add(Glob::new(DEFAULT_PATTERN)?);
    for p in &opts.extra_patterns {
        builder.add(Glob::new(p)?);
    }
    builder.build()
}

/// A `--pattern` that is not a glob.
#[derive(Debug, thiserror::Error)]
#[error("bad --pattern: {0}")]
pub struct PatternError(#[from] globset::Error);

/// Checks the patterns, so that a typo is reported before anything is read.
pub fn check_patterns(opts: &DiscoveryOptions) -> Result<(), PatternError> {
    glob_set(opts).map(|_| ()).map_err(PatternError)
}

/// Walks every root. A root that is itself a file is taken as an event file. Unreadable
/// folders are reported in [`Discovery::errors`] and the walk goes on.
pub fn discover(roots: &[PathBuf], opts: &DiscoveryOptions) -> Discovery {
    let mut found = Discovery::default();
    let globs = match glob_set(opts) {
        Ok(g) => g,
        Err(e) => {
            found.errors.push(format!("bad --pattern: {e}"));
            return found;
        }
    };
    for root in roots {
        // Absolute paths: the same file must have the same name in every run, whatever the
        // working directory or spelling of the root, because read positions are kept by name.
        let root = &std::fs::canonicalize(root).unwrap_or_else(|_| root.clone());
        if root.is_file() {
            found.files.push(SourceFile {
                path: root.clone(),
                repository: infer_repository(root, Path::new("")),
            });
            continue;
        }
        if !root.exists() {
            found
                .errors
                .push(format!("{}: no such file or directory", root.display()));
            continue;
        }
        let walker = WalkDir::new(root)
            .follow_links(opts.follow_symlinks)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| !(e.file_type().is_dir() && e.depth() > 0 && is_skipped(e.file_name())));
        for entry in walker {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    found.errors.push(e.to_string());
                    continue;
                }
            };
            if !entry.file_type().is_file() {
                continue;
            }
            let relative = entry.path().strip_prefix(root).unwrap_or(entry.path());
            if globs.is_match(relative) {
                found.files.push(SourceFile {
                    path: entry.path().to_path_buf(),
                    repository: infer_repository(root, relative),
                });
            }
        }
    }
    found.files.sort();
    found.files.dedup();
    found.files = one_path_per_file(std::mem::take(&mut found.files));
    found
}

/// Adds the source paths that the store read before and that the walk did not find because
/// their file was rotated away and not recreated: their rotated generations may still hold
/// unread lines. Only paths under one of the roots, whose folder still exists, are added.
pub fn add_known(found: &mut Discovery, roots: &[PathBuf], known: impl IntoIterator<Item = PathBuf>) {
    let roots: Vec<PathBuf> = roots
        .iter()
        .map(|r| std::fs::canonicalize(r).unwrap_or_else(|_| r.clone()))
        .collect();
    let present: std::collections::HashSet<PathBuf> = found.files.iter().map(|f| f.path.clone()).collect();
    for path in known {
        if present.contains(&path) || path.exists() || !path.parent().is_some_and(Path::is_dir) {
            continue;
        }
        let Some(root) = roots.iter().find(|r| path.starts_with(r)) else {
            continue;
        };
        let relative = path.strip_prefix(root).unwrap_or(&path);
        let repository = if relative.as_os_str().is_empty() {
            infer_repository(&path, Path::new(""))
        } else {
            infer_repository(root, relative)
        };
        found.files.push(SourceFile { path, repository });
    }
    found.files.sort();
}

/// One file is one file: when links make it reachable by several paths, keep one, the path
/// without links if there is one (else the first in order), so that its lines are read once
/// and its legacy records get one repository.
fn one_path_per_file(files: Vec<SourceFile>) -> Vec<SourceFile> {
    use std::collections::HashMap;
    use std::os::unix::fs::MetadataExt;
    let mut chosen: HashMap<(u64, u64), usize> = HashMap::new();
    let mut keep: Vec<Option<SourceFile>> = Vec::with_capacity(files.len());
    for f in files {
        let Ok(meta) = std::fs::metadata(&f.path) else {
            keep.push(Some(f));
            continue;
        };
        let id = (meta.dev(), meta.ino());
        let is_real = |p: &Path| std::fs::canonicalize(p).is_ok_and(|c| c == p);
        match chosen.get(&id) {
            None => {
                chosen.insert(id, keep.len());
                keep.push(Some(f));
            }
            Some(&i) => {
                let current_real = keep[i].as_ref().is_some_and(|c| is_real(&c.path));
                if !current_real && is_real(&f.path) {
                    keep[i] = Some(f);
                }
            }
        }
    }
    keep.into_iter().flatten().collect()
}

fn is_skipped(name: &std::ffi::OsStr) -> bool {
    name.to_str().is_some_and(|n| SKIPPED_DIRS.contains(&n))
}

/// The repository a path implies on its own (no root): the folder that holds `.chora`, else
/// the folder of the file.
pub fn repository_of(path: &Path) -> String {
    folder_name(path)
}

/// The folder that holds `.chora`; else the first folder under the root; else the root's name.
fn infer_repository(root: &Path, relative: &Path) -> String {
    let parts: Vec<&str> = relative
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    if let Some(i) = parts.iter().rposition(|p| *p == ".chora") {
        if i > 0 {
            return parts[i - 1].to_string();
        }
        return folder_name(root);
    }
    if parts.len() > 1 {
        return parts[0].to_string();
    }
    folder_name(root)
}

fn folder_name(path: &Path) -> String {
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut p = abs.as_path();
    // A root given as the file itself: climb out of .chora/memory/events.
    loop {
        match p.file_name().and_then(|n| n.to_str()) {
            Some(".chora") | Some("memory") | Some("events") | Some("deployment.jsonl") => match p.parent() {
                Some(parent) => p = parent,
                None => break,
            },
            Some(name) => return name.to_string(),
            None => break,
        }
    }
    "unknown".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_the_folder_holding_chora() {
        let root = Path::new("/x/eco");
        assert_eq!(
            infer_repository(root, Path::new("repo-a/.chora/memory/events/deployment.jsonl")),
            "repo-a"
        );
        assert_eq!(
            infer_repository(
                root,
                Path::new("org/repo-b/.chora/memory/events/deployment.jsonl")
            ),
            "repo-b"
        );
        assert_eq!(
            infer_repository(root, Path::new("repo-c/logs/deploy.jsonl")),
            "repo-c"
        );
    }
}
