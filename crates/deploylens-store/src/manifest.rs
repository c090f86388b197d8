//! What a commit covers: the source byte ranges it consumed, so that a restart resumes exactly
//! after the last committed line of every file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How many bytes before a committed offset are hashed to check, on restart, that the file is
/// still the one that was read (and not a new file reusing the inode, or a rewrite).
pub const TAIL_HASH_BYTES: u64 = 4096;

/// The read position of one source file after a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCheckpoint {
    /// The path the file was discovered under.
    pub path: String,
    /// File identity: device and inode.
    pub dev: u64,
    pub ino: u64,
    /// Where this commit started reading the file.
    pub start_offset: u64,
    /// Bytes consumed: everything before this offset is stored (as events, duplicates, rejects
    /// or blank lines). Always just after a newline, or at the end of a complete final line.
    pub offset: u64,
    /// Lines consumed before `offset` (so numbering resumes correctly).
    pub line: u64,
    /// xxh3 of the `tail_len` bytes just before `offset`.
    pub tail_hash: u64,
    pub tail_len: u64,
}

/// The footer metadata of a commit's `events.parquet`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub seq: u64,
    pub created_at_us: i64,
    /// Read positions after this commit, for every file it read from. When a file appears twice
    /// (the rotated tail, then the new file), the later entry is the current one.
    pub sources: Vec<SourceCheckpoint>,
    /// Commits whose rows this one contains (a compaction): they are ignored and removed.
    #[serde(default)]
    pub replaces: Vec<u64>,
    pub events: u64,
    pub rejects: u64,
    /// Lines that repeated an event already stored.
    #[serde(default)]
    pub duplicates: u64,
}

impl Manifest {
    pub const KEY: &'static str = "deploylens.manifest";
    pub const FORMAT: u32 = 1;
}

/// The hash stored in [`SourceCheckpoint::tail_hash`].
pub fn tail_hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// Folds the checkpoints of commits (in commit order) into the current position per path.
pub fn merge_checkpoints<'a>(
    manifests: impl IntoIterator<Item = &'a Manifest>,
) -> BTreeMap<String, SourceCheckpoint> {
    let mut current = BTreeMap::new();
    for m in manifests {
        for s in &m.sources {
            current.insert(s.path.clone(), s.clone());
        }
    }
    current
}
