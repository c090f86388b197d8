//! What deploylens records about each data file, in the `tags` of its `add` action in the
//! Delta log (so it survives log checkpoints, and damage to the file itself):
//!
//! | tag | what |
//! |---|---|
//! | `deploylens.collector` | the collector that wrote the file |
//! | `deploylens.txn` | that collector's transaction version of the commit (the newest one, for a compacted file) |
//! | `deploylens.state` | the read state, after the commit, of every source path the file's rows came from |
//! | `deploylens.ranges` | the byte ranges of the source files whose lines the file holds: enough to read them again if the file is damaged |
//! | `deploylens.xxh3` | xxh3-64 of the file's bytes, to tell a damaged file |
//! | `deploylens.rows` | the rows it holds |
//! | `deploylens.rejects` | on an events file: the rejects its commit stored in the rejects table (0 on a compacted file: only commits whose rejects landed are merged) |
//! | `deploylens.duplicates` | on an events file: the lines of its commit that repeated a stored event |

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::manifest::{Generation, SourceCheckpoint};

/// Tag name: the collector that wrote the file.
pub const COLLECTOR: &str = "deploylens.collector";
/// Tag name: the writing collector's transaction version of the commit.
pub const TXN: &str = "deploylens.txn";
/// Tag name: the read state after the commit, as JSON.
pub const STATE: &str = "deploylens.state";
/// Tag name: the source byte ranges the file's rows came from, as JSON.
pub const RANGES: &str = "deploylens.ranges";
/// Tag name: xxh3-64 of the file's bytes, in hex.
pub const XXH3: &str = "deploylens.xxh3";
/// Tag name: the rows the file holds.
pub const ROWS: &str = "deploylens.rows";
/// Tag name: the rejects an events file's commit stored in the rejects table.
pub const REJECTS: &str = "deploylens.rejects";
/// Tag name: the lines of an events file's commit that repeated a stored event.
pub const DUPLICATES: &str = "deploylens.duplicates";

/// Bytes `[start, end)` of one generation of a source path, whose lines start at line
/// `start_line + 1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRange {
    /// The source path the bytes were read under.
    pub path: String,
    /// The generation as it was when the range was read (its identity and proofs).
    pub generation: Generation,
    /// Offset of the range's first byte.
    pub start: u64,
    /// Offset just past its last byte.
    pub end: u64,
    /// Lines before `start`, so that line numbers come out the same when it is read again.
    pub start_line: u64,
}

impl SourceRange {
    /// Joins ranges of the same generation that touch or overlap, so that a compacted file
    /// lists one range per generation rather than one per small commit, and lines listed by
    /// two torn commits (a repair that was itself torn) are read again once.
    pub fn coalesce(mut ranges: Vec<SourceRange>) -> Vec<SourceRange> {
        ranges.sort_by(|a, b| {
            (
                a.path.as_str(),
                a.generation.dev,
                a.generation.ino,
                a.generation.gzip,
                a.start,
            )
                .cmp(&(
                    b.path.as_str(),
                    b.generation.dev,
                    b.generation.ino,
                    b.generation.gzip,
                    b.start,
                ))
        });
        let mut out: Vec<SourceRange> = Vec::with_capacity(ranges.len());
        for r in ranges {
            if let Some(last) = out.last_mut()
                && last.path == r.path
                && same_generation(&last.generation, &r.generation)
                && r.start <= last.end
            {
                if r.end > last.end {
                    last.end = r.end;
                    last.generation = r.generation;
                }
                continue;
            }
            out.push(r);
        }
        out
    }
}

fn same_generation(a: &Generation, b: &Generation) -> bool {
    a.dev == b.dev && a.ino == b.ino && a.gzip == b.gzip
}

/// The deploylens tags of one data file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileTags {
    /// The collector that wrote the file.
    pub collector: Option<String>,
    /// That collector's transaction version of the commit (the newest, for a compacted file).
    pub txn: Option<i64>,
    /// The read state, after the commit, of every source path the rows came from.
    pub state: Vec<SourceCheckpoint>,
    /// The source byte ranges the rows came from, to read them again if the file is damaged.
    pub ranges: Vec<SourceRange>,
    /// xxh3-64 of the file's bytes, to tell a damaged file.
    pub xxh3: Option<u64>,
    /// The rows the file holds.
    pub rows: Option<u64>,
    /// On an events file: the rejects its commit stored in the rejects table, so that a
    /// commit whose rejects never landed can be found.
    pub rejects: Option<u64>,
    /// On an events file: the lines of its commit that repeated a stored event.
    pub duplicates: Option<u64>,
}

impl FileTags {
    /// As the `tags` of an `add` action.
    pub fn to_map(&self) -> HashMap<String, Option<String>> {
        let mut m = HashMap::new();
        if let Some(c) = &self.collector {
            m.insert(COLLECTOR.to_string(), Some(c.clone()));
        }
        if let Some(t) = self.txn {
            m.insert(TXN.to_string(), Some(t.to_string()));
        }
        if !self.state.is_empty() {
            m.insert(STATE.to_string(), serde_json::to_string(&self.state).ok());
        }
        if !self.ranges.is_empty() {
            m.insert(RANGES.to_string(), serde_json::to_string(&self.ranges).ok());
        }
        if let Some(h) = self.xxh3 {
            m.insert(XXH3.to_string(), Some(format!("{h:016x}")));
        }
        for (k, v) in [
            (ROWS, self.rows),
            (REJECTS, self.rejects),
            (DUPLICATES, self.duplicates),
        ] {
            if let Some(v) = v {
                m.insert(k.to_string(), Some(v.to_string()));
            }
        }
        m
    }

    /// From the `tags` of an `add` action; tags written by other tools are ignored, and a tag
    /// that cannot be read is left out (its file is then treated as foreign).
    pub fn from_map(m: &HashMap<String, Option<String>>) -> FileTags {
        let get = |k: &str| m.get(k).and_then(|v| v.as_deref());
        FileTags {
            collector: get(COLLECTOR).map(str::to_string),
            txn: get(TXN).and_then(|v| v.parse().ok()),
            state: get(STATE)
                .and_then(|v| serde_json::from_str(v).ok())
                .unwrap_or_default(),
            ranges: get(RANGES)
                .and_then(|v| serde_json::from_str(v).ok())
                .unwrap_or_default(),
            xxh3: get(XXH3).and_then(|v| u64::from_str_radix(v, 16).ok()),
            rows: get(ROWS).and_then(|v| v.parse().ok()),
            rejects: get(REJECTS).and_then(|v| v.parse().ok()),
            duplicates: get(DUPLICATES).and_then(|v| v.parse().ok()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generation(ino: u64) -> Generation {
        Generation {
            dev: 1,
            ino,
            gzip: false,
            start_offset: 0,
            offset: 0,
            line: 0,
            tail_hash: 0,
            tail_len: 0,
            head_hash: 0,
            head_len: 0,
            unfinished: false,
        }
    }

    #[test]
    fn touching_ranges_of_one_generation_coalesce() {
        let r = |ino, start, end| SourceRange {
            path: "/p".into(),
            generation: generation(ino),
            start,
            end,
            start_line: start / 10,
        };
        let out = SourceRange::coalesce(vec![r(1, 100, 200), r(1, 0, 100), r(2, 0, 50), r(1, 300, 400)]);
        let spans: Vec<(u64, u64, u64)> = out.iter().map(|r| (r.generation.ino, r.start, r.end)).collect();
        assert_eq!(spans, vec![(1, 0, 200), (1, 300, 400), (2, 0, 50)]);
    }

    #[test]
    fn tags_round_trip() {
        let t = FileTags {
            collector: Some("host-a".into()),
            txn: Some(7),
            state: vec![SourceCheckpoint {
                path: "/p".into(),
                generations: vec![generation(3)],
            }],
            ranges: vec![],
            xxh3: Some(0xdead_beef),
            rows: Some(12),
            rejects: Some(1),
            duplicates: None,
        };
        assert_eq!(FileTags::from_map(&t.to_map()), t);
    }
}
