//! The store: two Delta Lake tables, `events` and `rejects`, on a local folder or on object
//! storage, written by any number of collectors at once and read by any Delta reader.
//!
//! - [`Location`]: where the store is (`--data-dir`: a path or a URL) and its credentials.
//! - [`Store`]: one collector's writer: commits rows, read positions and its transaction
//!   version exactly once ([`writer`] explains how), compacts its small files, cleans up.
//! - [`StoreSnapshot`]: what a reader sees: the data files of both tables at one version.
//! - [`manifest`]: the read state of a source path (its generations), which commits carry.
//! - [`legacy`]: the folder layout of earlier versions, converted on first open.
//!
//! ```no_run
//! use deploylens_store::{Location, Store, StoreSnapshot, WriterOptions};
//! let location = Location::parse("/var/lib/deploylens")?;
//! let store = Store::open(&location, &WriterOptions { collector_id: "ci-runner-3".into() })?;
//! println!("{} events", store.snapshot().event_count());
//! # Ok::<(), deploylens_store::StoreError>(())
//! ```

#![warn(missing_docs)]

mod delta;
pub mod lease;
pub mod legacy;
mod location;
pub mod manifest;
mod snapshot;
pub mod tags;
pub mod writer;

use std::path::PathBuf;

pub use delta::{history, register_handlers};
pub use location::{Location, Table};
pub use manifest::{Generation, MAX_GENERATIONS, Manifest, SourceCheckpoint, TAIL_HASH_BYTES, tail_hash};
pub use snapshot::{DataFile, StoreSnapshot, TableFiles};
pub use tags::{FileTags, SourceRange};
pub use writer::{CommitBatch, CommitInfo, Repair, Store, Want, WriterOptions};

/// The environment variable that names the data directory when `--data-dir` is not given.
pub const DATA_DIR_ENV: &str = "DEPLOYLENS_DATA_DIR";
/// The data directory used when neither the flag nor the environment variable is set.
pub const DEFAULT_DATA_DIR: &str = "./deploylens-data";

/// Errors a person can act on: each names what it was doing and where.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another live collector holds this collector id's lease.
    #[error(
        "another deploylens collector with id {collector:?} is writing to {location} ({holder}); stop it, or give this one another --collector-id"
    )]
    Locked {
        /// The collector id whose lease is taken.
        collector: String,
        /// Who holds it, as the lock file or the lease object says (a pid, a host).
        holder: String,
        /// The store, as a person would name it.
        location: String,
    },
    /// A file or folder of a local store could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done, worded to come before the path ("opening", "writing data file").
        action: &'static str,
        /// The file or folder it was done to.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// deltalake failed to open, create, read or commit to a table.
    #[error("{action} the Delta table: {source}")]
    Delta {
        /// What was being done, worded to come before "the Delta table" ("opening", "committing to").
        action: &'static str,
        /// The deltalake error.
        source: deltalake::DeltaTableError,
    },
    /// A commit lost to other writers more often than it retries.
    #[error("committing to the Delta table: {0}")]
    Conflict(String),
    /// A request to the object store failed; the message names the object.
    #[error("{0}")]
    Object(String),
    /// Rows could not be written as a Parquet file.
    #[error("encoding Parquet: {0}")]
    Encode(String),
    /// A data file that cannot be read as it was written.
    #[error("data file {file} is damaged: {reason}")]
    Damaged {
        /// The file's path or URL.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The store's location, or a name in it, cannot be used: a bad path, URL or collector
    /// id, or a table that cannot be created there.
    #[error("the store location: {0}")]
    Location(String),
    /// Another collector wrote with this collector's id.
    #[error(
        "another collector committed as {collector:?} (transaction version {found}, this one expected {expected}); two collectors must not share an id"
    )]
    Fenced {
        /// The shared collector id.
        collector: String,
        /// The newest transaction version this process knew of (or was committing).
        expected: i64,
        /// The newer version found in the table.
        found: i64,
    },
    /// The manifest in the footer of an old-layout commit cannot be read.
    #[error("old commit manifest {path}: {reason}")]
    Manifest {
        /// The `events.parquet` file whose footer should hold it.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A reader found the data directory (named here) in the earlier folder layout, which only
    /// a writer converts.
    #[error(
        "the data directory {0} holds a store in the format of earlier versions: run `deploylens store migrate` (or any `ingest` or `serve`) to convert it"
    )]
    NeedsMigration(String),
    /// Building or reading Arrow record batches failed.
    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

impl StoreError {
    /// Wraps a deltalake error with what was being done.
    pub fn delta(action: &'static str) -> impl FnOnce(deltalake::DeltaTableError) -> StoreError {
        move |source| StoreError::Delta { action, source }
    }
}

/// Runs the store's async work from synchronous code (the collector's threads), on a runtime
/// of its own; from inside another runtime it runs on a scoped thread, so that it never blocks
/// that runtime's own workers in a nested `block_on`.
pub struct Blocking {
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for Blocking {
    fn drop(&mut self) {
        // Dropped inside async code (a CLI command) a runtime may not wait for its threads.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Blocking {
    /// A runtime with two workers for object-store I/O.
    pub fn new() -> Result<Blocking, StoreError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("deploylens-store")
            .enable_all()
            .build()
            .map_err(|source| StoreError::Io {
                action: "starting the store's runtime for",
                path: PathBuf::from("."),
                source,
            })?;
        Ok(Blocking { rt: Some(rt) })
    }

    /// Runs `f` to completion.
    pub fn run<F: std::future::Future + Send>(&self, f: F) -> F::Output
    where
        F::Output: Send,
    {
        let Some(rt) = &self.rt else {
            unreachable!("the runtime is taken only when dropped")
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| match s.spawn(|| rt.block_on(f)).join() {
                Ok(v) => v,
                Err(panic) => std::panic::resume_unwind(panic),
            })
        } else {
            rt.block_on(f)
        }
    }
}
