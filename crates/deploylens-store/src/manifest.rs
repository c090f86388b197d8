//! What a commit covers: the read position of every source file it consumed, so that a restart
//! resumes exactly after the last committed line of every file, and of every rotated
//! generation of it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How many bytes before a committed offset are hashed to check, on restart, that the file is
/// still the one that was read (and not a new file reusing the inode, or a rewrite). The same
/// number of bytes at the start of a file identify its content when it is copied or compressed.
pub const TAIL_HASH_BYTES: u64 = 4096;

/// How many past generations of one path are remembered (a `.1`, `.2.gz`, ... each).
pub const MAX_GENERATIONS: usize = 64;

/// One file's worth of bytes that were, or are, at a source path: the file itself while it is
/// appended to, and later its rotated name or its compressed copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    /// Identity of the file last read for this generation: device and inode. A compressed copy
    /// has its own inode; it is recognised by content instead.
    pub dev: u64,
    /// The inode half of that identity.
    pub ino: u64,
    /// True when the bytes were read through gzip.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gzip: bool,
    /// Where the last commit that read this generation started reading it.
    pub start_offset: u64,
    /// Bytes consumed: everything before this offset is stored (as events, duplicates, rejects
    /// or blank lines). Always just after a newline, or at the end of a complete final line.
    pub offset: u64,
    /// Lines consumed before `offset` (so numbering resumes correctly).
    pub line: u64,
    /// xxh3 of the `tail_len` bytes just before `offset`, as read from the descriptor.
    pub tail_hash: u64,
    /// How many bytes `tail_hash` covers: [`TAIL_HASH_BYTES`], or fewer near the file's start.
    pub tail_len: u64,
    /// xxh3 of the first `head_len` bytes: what identifies a copy of this generation.
    #[serde(default)]
    pub head_hash: u64,
    /// How many bytes `head_hash` covers: up to [`TAIL_HASH_BYTES`], fewer for a short file.
    #[serde(default)]
    pub head_len: u64,
    /// Bytes past `offset` were left when it was last read from a rotated name (a partial line
    /// whose writer may return, or a read cut short): the next pass looks at it again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unfinished: bool,
}

/// The read state of one source path: its generations, oldest first. The last one is the
/// newest: normally the file now at the path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "CheckpointRepr")]
pub struct SourceCheckpoint {
    /// The path the file was discovered under.
    pub path: String,
    /// The generations read so far, oldest first.
    pub generations: Vec<Generation>,
}

impl SourceCheckpoint {
    /// The newest generation.
    pub fn newest(&self) -> Option<&Generation> {
        self.generations.last()
    }
}

/// Reads both the current layout and the one-generation layout of manifest format 1.
#[derive(Deserialize)]
#[serde(untagged)]
enum CheckpointRepr {
    Current {
        path: String,
        generations: Vec<Generation>,
    },
    One {
        path: String,
        dev: u64,
        ino: u64,
        start_offset: u64,
        offset: u64,
        line: u64,
        tail_hash: u64,
        tail_len: u64,
    },
}

impl From<CheckpointRepr> for SourceCheckpoint {
    fn from(repr: CheckpointRepr) -> Self {
        match repr {
            CheckpointRepr::Current { path, generations } => SourceCheckpoint { path, generations },
            CheckpointRepr::One {
                path,
                dev,
                ino,
                start_offset,
                offset,
                line,
                tail_hash,
                tail_len,
            } => SourceCheckpoint {
                path,
                generations: vec![Generation {
                    dev,
                    ino,
                    gzip: false,
                    start_offset,
                    offset,
                    line,
                    tail_hash,
                    tail_len,
                    head_hash: tail_hash_of_nothing(),
                    head_len: 0,
                    unfinished: false,
                }],
            },
        }
    }
}

fn tail_hash_of_nothing() -> u64 {
    tail_hash(&[])
}

/// The footer metadata of a commit's `events.parquet`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The layout of this manifest (see [`Manifest::FORMAT`]).
    pub format: u32,
    /// The commit's sequence number, as in its folder name `commit-<seq>`.
    pub seq: u64,
    /// When the commit was written, in microseconds since the epoch.
    pub created_at_us: i64,
    /// Read positions after this commit, for every path it read from.
    pub sources: Vec<SourceCheckpoint>,
    /// Commits whose rows this one contains (a compaction): they are ignored and removed.
    #[serde(default)]
    pub replaces: Vec<u64>,
    /// Rows in the commit's `events.parquet`.
    pub events: u64,
    /// Rows in the commit's `rejects.parquet`.
    pub rejects: u64,
    /// Lines that repeated an event already stored.
    #[serde(default)]
    pub duplicates: u64,
}

impl Manifest {
    /// The footer metadata key the manifest is stored under, as JSON.
    pub const KEY: &'static str = "deploylens.manifest";
    /// 2: a source holds its generations. Format 1 manifests (one position per path) are read.
    pub const FORMAT: u32 = 2;
}

/// The hash stored in [`Generation::tail_hash`] and [`Generation::head_hash`].
pub fn tail_hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// Folds the checkpoints of commits (in commit order) into the current state per path.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_format_1_position_reads_as_one_generation() {
        let old = r#"{"path":"/a","dev":1,"ino":2,"start_offset":0,"offset":10,"line":1,"tail_hash":7,"tail_len":10}"#;
        let cp: SourceCheckpoint = serde_json::from_str(old).unwrap();
        assert_eq!(cp.path, "/a");
        let g = cp.newest().unwrap();
        assert_eq!(
            (g.dev, g.ino, g.offset, g.line, g.tail_hash, g.head_len),
            (1, 2, 10, 1, 7, 0)
        );
        let again: SourceCheckpoint = serde_json::from_str(&serde_json::to_string(&cp).unwrap()).unwrap();
        assert_eq!(again, cp);
    }
}
