//! Where the store lives: a local folder (the embedded default) or a URL of object storage
//! (`s3://bucket/prefix`; the other stores deltalake supports come with it), and the
//! credentials to reach it.
//!
//! Credentials follow the project's rule for secrets: for each setting `NAME` (for example
//! `AWS_SECRET_ACCESS_KEY`), the file named by `NAME_FILE` if set, then `/run/secrets/name`
//! (lower case, a Docker or Kubernetes secret), then the environment variable itself.
//!
//! ```
//! use deploylens_store::{Location, Table};
//! let local = Location::parse("/var/lib/deploylens").unwrap();
//! assert_eq!(local.table_url(Table::Events).as_str(), "file:///var/lib/deploylens/events/");
//! let s3 = Location::parse("s3://bucket/team").unwrap();
//! assert_eq!(s3.table_url(Table::Rejects).as_str(), "s3://bucket/team/rejects/");
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use url::Url;

use crate::StoreError;

/// The two tables of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// One row per distinct valid deployment event.
    Events,
    /// One row per line that could not be stored as an event.
    Rejects,
}

impl Table {
    /// The folder of the table under the store's root.
    pub fn dir(self) -> &'static str {
        match self {
            Table::Events => "events",
            Table::Rejects => "rejects",
        }
    }
}

/// The root of a store and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    root: Url,
    options: HashMap<String, String>,
}

/// Object-store settings read from files, secrets or the environment.
const SECRET_SETTINGS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ALLOW_HTTP",
    "AWS_CONDITIONAL_PUT",
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "GOOGLE_SERVICE_ACCOUNT",
];

impl Location {
    /// A local path (relative paths are made absolute) or a URL.
    pub fn parse(text: &str) -> Result<Location, StoreError> {
        let looks_like_url = text.contains("://");
        let mut root = if looks_like_url {
            Url::parse(text).map_err(|e| StoreError::Location(format!("{text:?} is not a URL: {e}")))?
        } else {
            let path = Path::new(text);
            let abs = if path.is_absolute() {
                path.to_path_buf()
            } else {
                std::env::current_dir()
                    .map_err(|e| StoreError::Location(format!("the working directory: {e}")))?
                    .join(path)
            };
            Url::from_directory_path(normalize(&abs))
                .map_err(|_| StoreError::Location(format!("{text:?} is not a usable path")))?
        };
        if !root.path().ends_with('/') {
            let p = format!("{}/", root.path());
            root.set_path(&p);
        }
        let mut options = credentials();
        if root.scheme() == "s3" {
            // Many collectors commit at once: a log entry must be created only if absent.
            // S3 (since 2024), MinIO, R2 and most compatible stores honour If-None-Match.
            options
                .entry("aws_conditional_put".to_string())
                .or_insert_with(|| "etag".to_string());
        }
        Ok(Location { root, options })
    }

    /// A local folder.
    pub fn local(path: &Path) -> Result<Location, StoreError> {
        Location::parse(&path.to_string_lossy())
    }

    /// The folder, when the store is on the local file system.
    pub fn local_path(&self) -> Option<PathBuf> {
        (self.root.scheme() == "file")
            .then(|| self.root.to_file_path().ok())
            .flatten()
    }

    /// The URL of one table (a folder ending in `/`).
    pub fn table_url(&self, table: Table) -> Url {
        self.join(&format!("{}/", table.dir()))
    }

    /// A URL below the root.
    pub fn join(&self, relative: &str) -> Url {
        // Joining a relative path to a directory URL cannot fail.
        self.root.join(relative).unwrap_or_else(|_| self.root.clone())
    }

    /// The object-store path of `relative` below the root: the root's own prefix (the
    /// `prefix` of `s3://bucket/prefix`) and then `relative`, from the bucket's top.
    pub fn object_path(&self, relative: &str) -> String {
        let prefix = self.root.path().trim_start_matches('/');
        format!("{prefix}{relative}")
    }

    /// The root URL.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// Settings for the object store (credentials, endpoint).
    pub fn storage_options(&self) -> HashMap<String, String> {
        self.options.clone()
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.local_path() {
            Some(p) => write!(f, "{}", p.display()),
            None => write!(f, "{}", self.root),
        }
    }
}

/// `a/./b/../c` as `a/c`, without touching the file system (the folder may not exist yet).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Each secret setting from `NAME_FILE`, then `/run/secrets/name`, then `NAME`.
fn credentials() -> HashMap<String, String> {
    credentials_from(Path::new("/run/secrets"), |k| std::env::var(k).ok())
}

fn credentials_from(secrets: &Path, env: impl Fn(&str) -> Option<String>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for name in SECRET_SETTINGS {
        let from_file = env(&format!("{name}_FILE")).and_then(|p| std::fs::read_to_string(p).ok());
        let from_secret = || std::fs::read_to_string(secrets.join(name.to_lowercase())).ok();
        let value = from_file.or_else(from_secret).or_else(|| env(name));
        if let Some(v) = value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
            out.insert(name.to_lowercase(), v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_become_absolute_folders() {
        let l = Location::parse("data/./x/../store").unwrap();
        let p = l.local_path().unwrap();
        assert!(p.is_absolute() && p.ends_with("data/store"), "{p:?}");
        assert!(
            l.table_url(Table::Events)
                .as_str()
                .ends_with("/data/store/events/")
        );
    }

    #[test]
    fn secrets_come_from_a_file_then_the_secrets_folder_then_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, "from-file\n").unwrap();
        std::fs::write(dir.path().join("aws_region"), "from-secret").unwrap();
        let env = |k: &str| match k {
            "AWS_SECRET_ACCESS_KEY_FILE" => Some(file.display().to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("from-env".into()),
            "AWS_REGION" => Some("env-region".into()),
            "AWS_ACCESS_KEY_ID" => Some("id-from-env".into()),
            _ => None,
        };
        let c = credentials_from(dir.path(), env);
        assert_eq!(c["aws_secret_access_key"], "from-file");
        assert_eq!(c["aws_region"], "from-secret");
        assert_eq!(c["aws_access_key_id"], "id-from-env");
    }
}
