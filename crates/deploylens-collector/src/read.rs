//! Reading a source file from its committed position, exactly once.
//!
//! A checkpoint names a file by identity (device, inode) and proves it with a hash of the bytes
//! just before the committed offset. On each pass [`plan`] compares that with what is on disk:
//!
//! | on disk                                   | what is read                                    |
//! |-------------------------------------------|-------------------------------------------------|
//! | same file, grown or unchanged             | from the offset                                 |
//! | another file at the path (rotation)       | the old file's unread tail, found by inode in   |
//! |                                           | the same folder, then the new file from 0       |
//! | same inode, shorter or different bytes    | a copy holding the old bytes (copytruncate) from|
//! | (truncation, rewrite, inode reuse)        | the offset if one is beside it, then from 0     |
//! | nothing at the path                       | the old file's tail if it was renamed; else     |
//! |                                           | nothing (its events stay stored)                |
//!
//! Lines are split on `\n`; a last line without one is read only if it is already a complete
//! JSON object, otherwise it waits for its writer. Over-long lines are never buffered whole.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use deploylens_store::{SourceCheckpoint, TAIL_HASH_BYTES, tail_hash};

/// One file to read, from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadTask {
    /// The file to open (the rotated copy, or the path itself).
    pub open: PathBuf,
    pub start_offset: u64,
    pub start_line: u64,
    /// Why, for logs: "new", "resume", "rotated tail", "truncated", ...
    pub why: &'static str,
}

/// Identity of a file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
}

impl Identity {
    pub fn of(meta: &fs::Metadata) -> Self {
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
        }
    }
}

/// Hashes the bytes of `file` just before `offset`, as the checkpoint does.
pub fn tail_hash_at(file: &File, offset: u64) -> io::Result<(u64, u64)> {
    let len = offset.min(TAIL_HASH_BYTES);
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, offset - len)?;
    Ok((tail_hash(&buf), len))
}

fn matches_checkpoint(path: &Path, cp: &SourceCheckpoint) -> bool {
    let Ok(file) = File::open(path) else { return false };
    let Ok(meta) = file.metadata() else { return false };
    if meta.len() < cp.offset {
        return false;
    }
    matches!(tail_hash_at(&file, cp.offset), Ok((h, l)) if h == cp.tail_hash && l == cp.tail_len)
}

/// A file beside `path` that still holds the checkpointed bytes: the rotated original (same
/// inode) first, else a copy (copytruncate) whose bytes before the offset match.
fn find_old_bytes(path: &Path, cp: &SourceCheckpoint) -> Option<PathBuf> {
    let dir = path.parent()?;
    let mut same_inode = None;
    let mut copies = Vec::new();
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let candidate = entry.path();
        if candidate == path {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() || meta.len() < cp.offset {
            continue;
        }
        if meta.dev() == cp.dev && meta.ino() == cp.ino {
            same_inode = Some(candidate);
        } else {
            copies.push(candidate);
        }
    }
    if let Some(p) = same_inode.filter(|p| matches_checkpoint(p, cp)) {
        return Some(p);
    }
    copies.sort();
    copies.into_iter().find(|p| matches_checkpoint(p, cp))
}

/// Decides what to read for one logical source path.
pub fn plan(path: &Path, checkpoint: Option<&SourceCheckpoint>) -> Vec<ReadTask> {
    let fresh = |why| ReadTask {
        open: path.to_path_buf(),
        start_offset: 0,
        start_line: 0,
        why,
    };
    let Some(cp) = checkpoint else {
        return vec![fresh("new")];
    };
    let tail_of = |old: PathBuf, why| ReadTask {
        open: old,
        start_offset: cp.offset,
        start_line: cp.line,
        why,
    };
    let current = fs::metadata(path).ok().map(|m| Identity::of(&m));
    match current {
        Some(id) if id.dev == cp.dev && id.ino == cp.ino && matches_checkpoint(path, cp) => {
            if id.size == cp.offset {
                vec![]
            } else {
                vec![tail_of(path.to_path_buf(), "resume")]
            }
        }
        Some(_) => {
            // Rotated, truncated, rewritten or recreated: finish the old bytes if they are still
            // beside it, then read what is at the path now from the start.
            let mut tasks: Vec<ReadTask> = find_old_bytes(path, cp)
                .map(|old| tail_of(old, "rotated tail"))
                .into_iter()
                .collect();
            tasks.push(fresh("replaced"));
            tasks
        }
        None => find_old_bytes(path, cp)
            .map(|old| tail_of(old, "rotated tail"))
            .into_iter()
            .collect(),
    }
}

/// What the reader hands to its consumer.
pub trait LineSink {
    /// A complete line, without its `\n`. `line` is 1-based; `offset` is where it starts.
    fn line(&mut self, bytes: &[u8], line: u64, offset: u64);
    /// A line longer than the limit: its first bytes and its full length.
    fn too_long(&mut self, head: &[u8], len: u64, line: u64, offset: u64);
    /// Called between reads; returning true asks the reader to report its position now (a
    /// commit point), through [`ReadProgress`].
    fn wants_checkpoint(&self) -> bool {
        false
    }
    fn checkpoint(&mut self, at: ReadProgress) -> io::Result<()>;
}

/// A position between two lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadProgress {
    pub identity: Identity,
    pub offset: u64,
    pub line: u64,
    pub bytes_read: u64,
}

/// The end of a read: where the consumed bytes end, and whether a partial last line waits.
#[derive(Debug, Clone, Copy)]
pub struct ReadEnd {
    pub progress: ReadProgress,
    pub pending_bytes: u64,
}

const CHUNK: usize = 1 << 20;

/// Reads `task` line by line into `sink`. Lines longer than `max_line` are reported with
/// [`LineSink::too_long`] and skipped without being held in memory.
pub fn read_lines(task: &ReadTask, max_line: usize, sink: &mut dyn LineSink) -> io::Result<ReadEnd> {
    let mut file = File::open(&task.open)?;
    let identity = Identity::of(&file.metadata()?);
    file.seek(SeekFrom::Start(task.start_offset))?;

    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK * 2);
    let mut buf_offset = task.start_offset; // file offset of buf[0]
    let mut line_no = task.start_line;
    let mut bytes_read = 0u64;
    // An over-long line being skipped: (offset, line number, head bytes, length so far).
    let mut skipping: Option<(u64, u64, Vec<u8>, u64)> = None;

    loop {
        let before = buf.len();
        buf.resize(before + CHUNK, 0);
        let n = file.read(&mut buf[before..])?;
        buf.truncate(before + n);
        bytes_read += n as u64;
        if n == 0 {
            break;
        }
        let mut start = 0usize;
        // Complete lines in the buffer.
        for nl in memchr::memchr_iter(b'\n', &buf[before..]).map(|i| i + before) {
            let bytes = &buf[start..nl];
            if let Some((off, no, head, len)) = skipping.take() {
                sink.too_long(&head, len + bytes.len() as u64, no, off);
            } else {
                line_no += 1;
                let offset = buf_offset + start as u64;
                if bytes.len() > max_line {
                    sink.too_long(&bytes[..max_line.min(8192)], bytes.len() as u64, line_no, offset);
                } else {
                    sink.line(bytes, line_no, offset);
                }
            }
            start = nl + 1;
            // Commit points fall between lines, as soon as the consumer's buffers are full.
            if skipping.is_none() && sink.wants_checkpoint() {
                let offset = buf_offset + start as u64;
                sink.checkpoint(ReadProgress {
                    identity,
                    offset,
                    line: line_no,
                    bytes_read,
                })?;
            }
        }
        buf.drain(..start);
        buf_offset += start as u64;
        // A partial line already over the limit: keep its head only.
        if buf.len() > max_line {
            match &mut skipping {
                Some((_, _, _, len)) => *len += buf.len() as u64,
                None => {
                    line_no += 1;
                    let head = buf[..buf.len().min(8192)].to_vec();
                    skipping = Some((buf_offset, line_no, head, buf.len() as u64));
                }
            }
            buf_offset += buf.len() as u64;
            buf.clear();
        }
    }

    if let Some((off, no, _, len)) = skipping {
        // The over-long line has no end yet: wait for it, from its start.
        return Ok(ReadEnd {
            progress: ReadProgress {
                identity,
                offset: off,
                line: no - 1,
                bytes_read,
            },
            pending_bytes: len,
        });
    }
    // A final line without '\n' is taken only when it is already a whole JSON object.
    let mut pending = buf.len() as u64;
    if !buf.is_empty() && is_complete_object(&buf) {
        line_no += 1;
        sink.line(&buf, line_no, buf_offset);
        buf_offset += buf.len() as u64;
        pending = 0;
    }
    Ok(ReadEnd {
        progress: ReadProgress {
            identity,
            offset: buf_offset,
            line: line_no,
            bytes_read,
        },
        pending_bytes: pending,
    })
}

fn is_complete_object(bytes: &[u8]) -> bool {
    let trimmed = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    trimmed.trim_ascii_start().starts_with(b"{")
        && serde_json::from_slice::<serde::de::IgnoredAny>(trimmed).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[derive(Default)]
    struct Collect {
        lines: Vec<(String, u64, u64)>,
        long: Vec<(u64, u64, u64)>,
    }

    impl LineSink for Collect {
        fn line(&mut self, bytes: &[u8], line: u64, offset: u64) {
            self.lines
                .push((String::from_utf8_lossy(bytes).into_owned(), line, offset));
        }
        fn too_long(&mut self, _head: &[u8], len: u64, line: u64, offset: u64) {
            self.long.push((len, line, offset));
        }
        fn checkpoint(&mut self, _at: ReadProgress) -> io::Result<()> {
            Ok(())
        }
    }

    fn task(path: &Path, offset: u64, line: u64) -> ReadTask {
        ReadTask {
            open: path.to_path_buf(),
            start_offset: offset,
            start_line: line,
            why: "test",
        }
    }

    #[test]
    fn splits_lines_and_waits_for_a_partial_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.jsonl");
        fs::write(&p, "{\"a\":1}\n{\"b\":2}\n{\"c\":").unwrap();
        let mut c = Collect::default();
        let end = read_lines(&task(&p, 0, 0), 100, &mut c).unwrap();
        assert_eq!(
            c.lines,
            vec![("{\"a\":1}".into(), 1, 0), ("{\"b\":2}".into(), 2, 8)]
        );
        assert_eq!(end.progress.offset, 16);
        assert_eq!(end.pending_bytes, 5);
        // Completed later, read from the committed position: stored once.
        fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"3}")
            .unwrap();
        let mut c = Collect::default();
        let end = read_lines(&task(&p, 16, 2), 100, &mut c).unwrap();
        assert_eq!(c.lines, vec![("{\"c\":3}".into(), 3, 16)]);
        assert_eq!(end.pending_bytes, 0);
    }

    #[test]
    fn over_long_lines_are_reported_not_buffered() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.jsonl");
        let long = "x".repeat(3 * CHUNK + 17);
        fs::write(&p, format!("{{}}\n{long}\n{{}}\n")).unwrap();
        let mut c = Collect::default();
        let end = read_lines(&task(&p, 0, 0), 1000, &mut c).unwrap();
        assert_eq!(c.long, vec![(long.len() as u64, 2, 3)]);
        assert_eq!(c.lines.len(), 2);
        assert_eq!(c.lines[1], ("{}".into(), 3, 3 + long.len() as u64 + 1));
        assert_eq!(end.progress.line, 3);
    }

    #[test]
    fn a_line_split_across_reads_is_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.jsonl");
        let first = format!("{{\"pad\":\"{}\"}}", "y".repeat(CHUNK - 20));
        let second = format!("{{\"z\":\"{}\"}}", "q".repeat(100));
        fs::write(&p, format!("{first}\n{second}\n")).unwrap();
        let mut c = Collect::default();
        read_lines(&task(&p, 0, 0), 2 * CHUNK, &mut c).unwrap();
        assert_eq!(c.lines.len(), 2);
        assert_eq!(c.lines[1].0, second);
    }
}
