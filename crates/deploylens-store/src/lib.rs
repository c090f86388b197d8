//! The data directory: Parquet files that carry their own checkpoints.
//!
//! Each ingest step writes one **commit**: a folder `store/commit-<seq>/` holding
//! `events.parquet` and `rejects.parquet`. The commit's [`Manifest`] (which source files it
//! covers, up to which byte offset, and which older commits it replaces after a compaction) is
//! stored in the footer of its `events.parquet`. A commit is written in a temporary folder,
//! fsynced and renamed into place, so it appears whole or not at all: the data files are the
//! checkpoint, and a crash at any moment leaves the last consistent state. One process writes a
//! data directory at a time (an exclusive lock on `LOCK`); readers need no lock.

#![warn(missing_docs)]

mod commit;
pub mod manifest;

pub use commit::{CommitInfo, Store, StoreError, StoreSnapshot, read_batches, read_manifest};
pub use manifest::{Generation, MAX_GENERATIONS, Manifest, SourceCheckpoint, TAIL_HASH_BYTES, tail_hash};

/// The environment variable that names the data directory when `--data-dir` is not given.
pub const DATA_DIR_ENV: &str = "DEPLOYLENS_DATA_DIR";
/// The data directory used when neither the flag nor the environment variable is set.
pub const DEFAULT_DATA_DIR: &str = "./deploylens-data";
