//! Reading a source file from its committed position, exactly once, through rotation.
//!
//! A source path holds a sequence of **generations**: the file at the path now, and the files
//! it was before rotation (`deployment.jsonl.1`, `deployment.jsonl.2.gz`, ...). The checkpoint
//! of a path lists the generations read so far, each named by identity (device, inode) and
//! proven by the hash of the bytes just before its committed offset and of its first bytes.
//! On each pass [`plan`] compares that with what is on disk:
//!
//! | on disk                                     | what is read                                  |
//! |---------------------------------------------|-----------------------------------------------|
//! | the newest generation, grown or unchanged   | from its offset (no other file is looked at)  |
//! | another file at the path (rotation)         | every generation beside the path that still   |
//! |                                             | has unread bytes, found by identity or content|
//! |                                             | (plain or gzip), then the new file from 0     |
//! | same inode, shorter or other bytes          | a copy holding the old bytes (copytruncate),  |
//! | (truncation, rewrite, inode reuse)          | from the offset, then the file from 0         |
//! | nothing at the path                         | the rotated generations' unread tails         |
//!
//! A rotated generation is a file in the same folder named after the path with a rotation
//! suffix ([`is_rotated_name`]). Every position written to a checkpoint comes from the
//! descriptor that was read, never from the path, which may name another file by then.
//!
//! Lines are split on `\n`; a last line without one is read only if it is already a complete
//! JSON object, otherwise it waits for its writer (in a rotated generation that has been quiet
//! for [`ROTATED_QUIET`], the partial line is final and is read as it is). Over-long lines are
//! never buffered whole.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use deploylens_store::{Generation, MAX_GENERATIONS, SourceCheckpoint, TAIL_HASH_BYTES, tail_hash};

/// How long a rotated generation must go unmodified before a partial last line in it is taken
/// as final: its writer may still hold the renamed file open for a moment.
pub const ROTATED_QUIET: Duration = Duration::from_secs(2);

const HASHED: usize = TAIL_HASH_BYTES as usize;

/// One file to read, from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadTask {
    /// The file to open (the path itself, a rotated name or a compressed copy).
    pub open: PathBuf,
    /// Whether `open` is read through gzip (offsets are then in the decompressed bytes).
    pub gzip: bool,
    /// The identity the plan saw; a different file at `open` when it is read is not read.
    pub dev: u64,
    /// The inode half of that identity.
    pub ino: u64,
    /// Where the read starts.
    pub start_offset: u64,
    /// Lines before `start_offset`, so that numbering goes on from there.
    pub start_line: u64,
    /// The generation this read continues, if any (its head and tail prove the bytes before
    /// `start_offset`).
    pub resumes: Option<Generation>,
    /// Where this generation's position goes in [`Plan::generations`].
    pub slot: usize,
    /// The file is no longer at the source path: nobody will complete its partial last line.
    pub rotated: bool,
    /// Stop here (a range read again); `None`: read to the end of the file.
    pub end_offset: Option<u64>,
    /// Why, for logs: "new", "resume", "rotated tail", "replaced", ...
    pub why: &'static str,
}

/// What to read for one source path, and its generations once read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The reads to do, oldest generation first.
    pub tasks: Vec<ReadTask>,
    /// The generations of the path, oldest first, at their state before the tasks run. A task
    /// updates its slot; a slot still `None` after the pass (its file could not be opened) is
    /// left out of the checkpoint.
    pub generations: Vec<Option<Generation>>,
    /// A file beside the path was left for a later pass (it is being written): the path's
    /// newest generation is marked so that the next pass looks again.
    pub deferred: bool,
}

impl Plan {
    /// The plan of a range read again: one slot, never checkpointed.
    pub fn for_repair() -> Plan {
        Plan {
            tasks: vec![],
            generations: vec![None],
            deferred: false,
        }
    }

    /// Nothing to read, generations unchanged.
    fn unchanged(cp: &SourceCheckpoint) -> Plan {
        Plan {
            tasks: vec![],
            generations: cp.generations.iter().cloned().map(Some).collect(),
            deferred: false,
        }
    }

    /// The generations to checkpoint, oldest first, at most [`MAX_GENERATIONS`]. After a
    /// deferral the newest is marked unfinished, so that the next pass lists the folder again.
    pub fn settled(&self) -> Vec<Generation> {
        let mut all: Vec<Generation> = self.generations.iter().flatten().cloned().collect();
        if self.deferred
            && let Some(last) = all.last_mut()
        {
            last.unfinished = true;
        }
        let skip = all.len().saturating_sub(MAX_GENERATIONS);
        all.into_iter().skip(skip).collect()
    }
}

/// Identity of a file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// The device it is on.
    pub dev: u64,
    /// Its inode number.
    pub ino: u64,
    /// Its length in bytes.
    pub size: u64,
}

impl Identity {
    /// The identity of the file `meta` describes.
    pub fn of(meta: &fs::Metadata) -> Self {
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
        }
    }
}

/// Whether `name` is a rotated generation of a file named `base`: `base.1`, `base.1.gz`,
/// `base-20251102`, `base.2025-11-02.gz`, `base.old`, `base.gz`.
pub fn is_rotated_name(base: &str, name: &str) -> bool {
    let Some(suffix) = name.strip_prefix(base) else {
        return false;
    };
    let suffix = suffix.strip_suffix(".gz").map_or(suffix, |s| s);
    if suffix.is_empty() {
        return name.len() > base.len(); // `base.gz`
    }
    if suffix == ".old" {
        return true;
    }
    let mut chars = suffix.chars();
    matches!(chars.next(), Some('.' | '-' | '_'))
        && chars.clone().next().is_some_and(|c| c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '_' | 'T' | ':'))
}

/// A file that holds, or held, the bytes of a source path.
#[derive(Debug, Clone)]
struct Candidate {
    path: PathBuf,
    gzip: bool,
    dev: u64,
    ino: u64,
    mtime: SystemTime,
    at_path: bool,
}

impl Candidate {
    /// Written to within [`ROTATED_QUIET`]: a copy or a compression may be under way.
    fn young(&self) -> bool {
        self.mtime.elapsed().map_or(true, |age| age < ROTATED_QUIET)
    }
}

fn candidates(path: &Path) -> (Vec<Candidate>, bool) {
    let mut out = Vec::new();
    let mut complete = true;
    let mut push = |p: PathBuf, at_path: bool| match fs::metadata(&p) {
        Ok(m) if m.is_file() => out.push(Candidate {
            gzip: p.extension().is_some_and(|e| e == "gz"),
            dev: m.dev(),
            ino: m.ino(),
            mtime: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            path: p,
            at_path,
        }),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(_) => complete = false,
    };
    push(path.to_path_buf(), true);
    if let (Some(dir), Some(base)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) {
        match fs::read_dir(dir) {
            Ok(entries) => {
                let mut rotated: Vec<PathBuf> = entries
                    .flatten()
                    .filter(|e| e.file_name().to_str().is_some_and(|n| is_rotated_name(base, n)))
                    .map(|e| e.path())
                    .collect();
                rotated.sort();
                for p in rotated {
                    push(p, false);
                }
            }
            Err(_) => complete = false,
        }
    }
    // The file at the path was pushed first; the order between it and the others is decided
    // when the tasks are ordered.
    (out, complete)
}

/// What a content check learned about a candidate and one known generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Match {
    /// The candidate holds more bytes than the generation's offset.
    more: bool,
}

/// The first bytes of a file, and whether bytes follow `offset`: enough to compare it with a
/// generation without reading it whole.
fn plain_matches(file: &File, size: u64, g: &Generation) -> Option<Match> {
    if size < g.offset || g.offset < g.tail_len {
        return None;
    }
    let mut tail = vec![0u8; g.tail_len as usize];
    file.read_exact_at(&mut tail, g.offset - g.tail_len).ok()?;
    if tail_hash(&tail) != g.tail_hash {
        return None;
    }
    if g.head_len > 0 {
        let mut head = vec![0u8; g.head_len as usize];
        file.read_exact_at(&mut head, 0).ok()?;
        if tail_hash(&head) != g.head_hash {
            return None;
        }
    }
    Some(Match {
        more: size > g.offset,
    })
}

/// What a candidate is, compared with the known generations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Identified {
    /// Known generation `i`, possibly with bytes past its offset.
    Known(usize, Match),
    /// Its bytes are a beginning of known generation `i`: all of them are stored already (a
    /// copy being made, or an old short copy).
    PrefixOf(usize),
    /// Bytes no known generation holds.
    Unknown,
    /// It cannot be read whole (a compressed file being written, or damaged).
    Damaged,
}

/// Whether the first `head_len` bytes of `g` are those hashed in `head` (which must hold at
/// least that many).
fn head_matches(head: &[u8], g: &Generation) -> bool {
    g.head_len == 0
        || (head.len() as u64 >= g.head_len && tail_hash(&head[..g.head_len as usize]) == g.head_hash)
}

/// Streams a gzip file once and checks it against each generation.
fn gzip_identify(path: &Path, known: &[Generation]) -> Identified {
    let wanted: Vec<usize> = (0..known.len()).filter(|i| known[*i].offset > 0).collect();
    let Some(until) = wanted.iter().map(|i| known[*i].offset).max() else {
        return gzip_complete(path);
    };
    let Ok(file) = File::open(path) else {
        return Identified::Damaged;
    };
    let mut gz = flate2::read::MultiGzDecoder::new(BufReader::new(file));
    let mut head: Vec<u8> = Vec::with_capacity(HASHED);
    let mut window = Tail::default();
    let mut pos = 0u64;
    let mut ok: Vec<bool> = vec![true; known.len()];
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // Never read past the next offset of a generation in one step, so the window is exact
        // there.
        let next = wanted
            .iter()
            .map(|i| known[*i].offset)
            .filter(|o| *o > pos)
            .min()
            .unwrap_or(until + 1);
        let step = ((next - pos) as usize).clamp(1, buf.len());
        let n = match gz.read(&mut buf[..step]) {
            Ok(n) => n,
            Err(_) => return Identified::Damaged,
        };
        if n == 0 {
            break;
        }
        if head.len() < HASHED {
            let take = (HASHED - head.len()).min(n);
            head.extend_from_slice(&buf[..take]);
        }
        window.push(&buf[..n]);
        pos += n as u64;
        for &i in &wanted {
            let g = &known[i];
            if g.offset == pos {
                ok[i] = ok[i] && window.hash() == (g.tail_hash, g.tail_len) && head_matches(&head, g);
            }
        }
        if pos > until {
            break;
        }
    }
    if let Some(i) = wanted.iter().copied().find(|i| ok[*i] && pos >= known[*i].offset) {
        return Identified::Known(
            i,
            Match {
                more: pos > known[i].offset,
            },
        );
    }
    // It ended before an offset: a beginning of that generation?
    if let Some(i) = wanted
        .iter()
        .copied()
        .find(|i| pos < known[*i].offset && known[*i].head_len > 0 && head_matches(&head, &known[*i]))
    {
        return match gzip_complete(path) {
            Identified::Damaged => Identified::Damaged,
            _ => Identified::PrefixOf(i),
        };
    }
    gzip_complete(path)
}

/// A gzip file that decompresses to its end is `Unknown` (new bytes); one that does not is
/// `Damaged`.
fn gzip_complete(path: &Path) -> Identified {
    let Ok(file) = File::open(path) else {
        return Identified::Damaged;
    };
    let mut gz = flate2::read::MultiGzDecoder::new(BufReader::new(file));
    match io::copy(&mut gz, &mut io::sink()) {
        Ok(_) => Identified::Unknown,
        Err(_) => Identified::Damaged,
    }
}

/// The known generation a candidate is, if any.
fn identify(c: &Candidate, known: &[Generation]) -> Identified {
    if c.gzip {
        return gzip_identify(&c.path, known);
    }
    let Ok(file) = File::open(&c.path) else {
        return Identified::Damaged;
    };
    let Ok(size) = file.metadata().map(|m| m.len()) else {
        return Identified::Damaged;
    };
    // The same inode first (a rename keeps it), then a copy by content.
    let same_inode = known
        .iter()
        .position(|g| !g.gzip && g.dev == c.dev && g.ino == c.ino);
    if let Some(i) = same_inode
        && let Some(m) = plain_matches(&file, size, &known[i])
    {
        return Identified::Known(i, m);
    }
    if let Some((i, m)) = known
        .iter()
        .enumerate()
        .filter(|(i, g)| Some(*i) != same_inode && g.offset > 0)
        .find_map(|(i, g)| plain_matches(&file, size, g).map(|m| (i, m)))
    {
        return Identified::Known(i, m);
    }
    // Shorter than a generation and starting with its bytes: a copy of it, part-way.
    let mut head = vec![0u8; size.min(TAIL_HASH_BYTES) as usize];
    if file.read_exact_at(&mut head, 0).is_ok()
        && let Some(i) = known
            .iter()
            .position(|g| g.head_len > 0 && size < g.offset && head_matches(&head, g))
    {
        return Identified::PrefixOf(i);
    }
    Identified::Unknown
}

/// The first bytes of a candidate (decompressed for gzip), to tell copies apart.
fn head_of(c: &Candidate) -> Option<Vec<u8>> {
    let file = File::open(&c.path).ok()?;
    let mut head = Vec::with_capacity(HASHED);
    if c.gzip {
        flate2::read::MultiGzDecoder::new(BufReader::new(file))
            .take(TAIL_HASH_BYTES)
            .read_to_end(&mut head)
            .ok()?;
    } else {
        file.take(TAIL_HASH_BYTES).read_to_end(&mut head).ok()?;
    }
    Some(head)
}

/// Decides what to read for one source path.
pub fn plan(path: &Path, checkpoint: Option<&SourceCheckpoint>) -> Plan {
    if let Some(cp) = checkpoint
        && let Some(fast) = plan_fast(path, cp)
    {
        return fast;
    }
    let known: &[Generation] = checkpoint.map_or(&[], |cp| &cp.generations);
    let (found, complete) = candidates(path);
    let mut slots: Vec<Option<Generation>> = Vec::new();
    let mut tasks = Vec::new();
    let mut matched = vec![false; known.len()];
    let mut waiting = vec![false; known.len()];
    let mut unmatched = Vec::new();
    let mut deferred = false;
    for c in found {
        match identify(&c, known) {
            Identified::Known(i, _) if matched[i] => {} // a second copy of a generation already found
            Identified::Known(i, m) => {
                matched[i] = true;
                waiting[i] = m.more;
                if m.more {
                    let g = &known[i];
                    tasks.push((
                        i,
                        ReadTask {
                            open: c.path.clone(),
                            gzip: c.gzip,
                            dev: c.dev,
                            ino: c.ino,
                            start_offset: g.offset,
                            start_line: g.line,
                            resumes: Some(g.clone()),
                            slot: 0,
                            rotated: !c.at_path,
                            end_offset: None,
                            why: if c.at_path { "resume" } else { "rotated tail" },
                        },
                    ));
                }
            }
            // Stored already; while it is being written (a copy under way) it may grow past
            // what is stored, so it is looked at again.
            Identified::PrefixOf(i) => {
                // Kept: the copy may grow past what is stored, and is then known by it.
                matched[i] = true;
                deferred |= c.young();
            }
            // Half a compressed file (gzip still writing it) is looked at again once whole.
            Identified::Damaged if c.young() && !c.at_path => deferred = true,
            Identified::Unknown | Identified::Damaged => unmatched.push(c),
        }
    }
    // Known generations keep their order; those no longer on disk are forgotten, unless a file
    // beside the path could not be examined (it may be one of them).
    for (i, g) in known.iter().enumerate() {
        if matched[i] || !complete {
            let mut g = g.clone();
            // Nothing left to read in it: it no longer needs looking at.
            g.unfinished &= waiting[i] || !matched[i];
            slots.push(Some(g));
        }
    }
    let mut ordered: Vec<(usize, ReadTask)> = Vec::new();
    for (i, mut t) in tasks {
        let slot = known[..i]
            .iter()
            .enumerate()
            .filter(|(j, _)| matched[*j] || !complete)
            .count();
        t.slot = slot;
        ordered.push((slot, t));
    }
    // New generations: the oldest rotated file first, the file at the path last. A rotated
    // plain file and its compressed copy (seen while it is being compressed) are one.
    unmatched.sort_by_key(|c| (c.at_path, c.mtime, std::cmp::Reverse(c.path.clone())));
    let heads: Vec<Option<Vec<u8>>> = unmatched.iter().map(head_of).collect();
    for (k, c) in unmatched.iter().enumerate() {
        let copy_of_plain = c.gzip
            && heads[k].as_ref().is_some_and(|h| {
                unmatched
                    .iter()
                    .zip(&heads)
                    .any(|(o, oh)| !o.gzip && !o.at_path && oh.as_ref() == Some(h))
            });
        if copy_of_plain {
            continue;
        }
        let slot = slots.len();
        slots.push(None);
        ordered.push((
            slot,
            ReadTask {
                open: c.path.clone(),
                gzip: c.gzip,
                dev: c.dev,
                ino: c.ino,
                start_offset: 0,
                start_line: 0,
                resumes: None,
                slot,
                rotated: !c.at_path,
                end_offset: None,
                why: if c.at_path {
                    if known.is_empty() { "new" } else { "replaced" }
                } else {
                    "rotated generation"
                },
            },
        ));
    }
    ordered.sort_by_key(|(slot, _)| *slot);
    Plan {
        tasks: ordered.into_iter().map(|(_, t)| t).collect(),
        generations: slots,
        deferred,
    }
}

/// The task that reads `[start, end)` of a generation again, if a file beside `path` (or at
/// it) still holds those bytes: the same inode, or a copy, proven by the generation's hashes
/// at `end`.
pub fn locate(path: &Path, generation: &Generation, start: u64, start_line: u64) -> Option<ReadTask> {
    let (found, _) = candidates(path);
    found.into_iter().find_map(|c| {
        let known = std::slice::from_ref(generation);
        match identify(&c, known) {
            Identified::Known(_, _) => Some(ReadTask {
                open: c.path.clone(),
                gzip: c.gzip,
                dev: c.dev,
                ino: c.ino,
                start_offset: start,
                start_line,
                resumes: None,
                slot: 0,
                rotated: !c.at_path,
                end_offset: Some(generation.offset),
                why: "read again",
            }),
            _ => None,
        }
    })
}

/// The common case: the newest generation is still the file at the path, and no older one
/// waits for anything. Only the path is looked at.
fn plan_fast(path: &Path, cp: &SourceCheckpoint) -> Option<Plan> {
    let newest = cp.newest()?;
    if newest.gzip || cp.generations.iter().any(|g| g.unfinished) {
        return None;
    }
    let file = File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    if meta.dev() != newest.dev || meta.ino() != newest.ino {
        return None;
    }
    let m = plain_matches(&file, meta.len(), newest)?;
    let mut plan = Plan::unchanged(cp);
    if m.more {
        plan.tasks.push(ReadTask {
            open: path.to_path_buf(),
            gzip: false,
            dev: newest.dev,
            ino: newest.ino,
            start_offset: newest.offset,
            start_line: newest.line,
            resumes: Some(newest.clone()),
            slot: cp.generations.len() - 1,
            rotated: false,
            end_offset: None,
            why: "resume",
        });
    }
    Some(plan)
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
    /// A commit point: every line before `at` has been handed over. An error stops the read
    /// with [`ReadError::Stopped`].
    fn checkpoint(&mut self, at: ReadProgress) -> Result<(), SinkStop>;
}

/// A sink asked the reader to stop (its commit failed); the sink keeps the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkStop;

/// A position between two lines: the generation as it would be checkpointed there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadProgress {
    /// The generation's state at this position: offset, line count and the hashes that prove it.
    pub generation: Generation,
    /// Bytes this read has taken from the file so far (they may run past the position).
    pub bytes_read: u64,
}

/// The end of a read: where the consumed bytes end, and whether a partial last line waits.
#[derive(Debug, Clone)]
pub struct ReadEnd {
    /// The position after the last consumed line.
    pub progress: ReadProgress,
    /// Bytes of an incomplete last line left for a later read (0 when there is none).
    pub pending_bytes: u64,
}

/// Why a read did not happen or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Another file is at the path than the plan saw: the next pass plans again.
    #[error("{0}: replaced while being planned")]
    Moved(PathBuf),
    /// The sink stopped the read at a commit point (see [`SinkStop`]).
    #[error("the consumer stopped the read")]
    Stopped,
}

const CHUNK: usize = 1 << 20;

/// The last bytes consumed: what the tail hash of a position covers.
#[derive(Default)]
struct Tail {
    bytes: Vec<u8>,
}

impl Tail {
    fn push(&mut self, more: &[u8]) {
        if more.len() >= HASHED {
            self.bytes.clear();
            self.bytes.extend_from_slice(&more[more.len() - HASHED..]);
            return;
        }
        let over = (self.bytes.len() + more.len()).saturating_sub(HASHED);
        self.bytes.drain(..over);
        self.bytes.extend_from_slice(more);
    }

    fn hash(&self) -> (u64, u64) {
        (tail_hash(&self.bytes), self.bytes.len() as u64)
    }

    /// The hash as it would be after also consuming `more`.
    fn hash_with(&self, more: &[u8]) -> (u64, u64) {
        if more.len() >= HASHED {
            return (tail_hash(&more[more.len() - HASHED..]), TAIL_HASH_BYTES);
        }
        let keep = HASHED - more.len();
        let from = self.bytes.len().saturating_sub(keep);
        let mut joined = Vec::with_capacity(HASHED);
        joined.extend_from_slice(&self.bytes[from..]);
        joined.extend_from_slice(more);
        (tail_hash(&joined), joined.len() as u64)
    }
}

/// An opened generation: its bytes from the start offset, and what proves a position in it.
struct Opened {
    reader: Box<dyn Read>,
    dev: u64,
    ino: u64,
    gzip: bool,
    /// The first bytes of the file (up to [`TAIL_HASH_BYTES`]), as far as known.
    head: Vec<u8>,
    /// The bytes just before the start offset.
    tail: Tail,
    quiet: bool,
}

/// Reads at most `left` more bytes from `inner`.
struct Until {
    inner: Box<dyn Read>,
    left: u64,
}

impl Read for Until {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (buf.len() as u64).min(self.left) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

fn open(task: &ReadTask) -> Result<Opened, ReadError> {
    let mut opened = open_whole(task)?;
    if let Some(end) = task.end_offset {
        let inner = std::mem::replace(&mut opened.reader, Box::new(io::empty()));
        opened.reader = Box::new(Until {
            inner,
            left: end.saturating_sub(task.start_offset),
        });
        // A range read again ends where a line ended when it was first read.
        opened.quiet = true;
    }
    Ok(opened)
}

fn open_whole(task: &ReadTask) -> Result<Opened, ReadError> {
    let io_err = |source| ReadError::Io {
        path: task.open.clone(),
        source,
    };
    let file = File::open(&task.open).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if meta.dev() != task.dev || meta.ino() != task.ino {
        return Err(ReadError::Moved(task.open.clone()));
    }
    let quiet = meta
        .modified()
        .ok()
        .and_then(|m| m.elapsed().ok())
        .is_some_and(|age| age >= ROTATED_QUIET);
    let start = task.start_offset;
    if task.gzip {
        let mut gz = flate2::read::MultiGzDecoder::new(BufReader::new(file));
        let mut head = Vec::new();
        let mut tail = Tail::default();
        // Skip what was read before, keeping what identifies it.
        let mut left = start;
        let mut buf = vec![0u8; 64 * 1024];
        while left > 0 {
            let want = (left as usize).min(buf.len());
            let n = gz.read(&mut buf[..want]).map_err(io_err)?;
            if n == 0 {
                return Err(ReadError::Moved(task.open.clone()));
            }
            if head.len() < HASHED {
                let take = (HASHED - head.len()).min(n);
                head.extend_from_slice(&buf[..take]);
            }
            tail.push(&buf[..n]);
            left -= n as u64;
        }
        if let Some(g) = &task.resumes
            && tail.hash() != (g.tail_hash, g.tail_len)
        {
            return Err(ReadError::Moved(task.open.clone()));
        }
        return Ok(Opened {
            reader: Box::new(gz),
            dev: meta.dev(),
            ino: meta.ino(),
            gzip: true,
            head,
            tail,
            quiet,
        });
    }
    // The bytes before the start, from this descriptor: they prove the position it resumes.
    let size = meta.len();
    let mut head = vec![0u8; size.min(TAIL_HASH_BYTES) as usize];
    file.read_exact_at(&mut head, 0).map_err(io_err)?;
    let before = start.min(TAIL_HASH_BYTES);
    let mut tail_bytes = vec![0u8; before as usize];
    if size < start {
        return Err(ReadError::Moved(task.open.clone()));
    }
    file.read_exact_at(&mut tail_bytes, start - before)
        .map_err(io_err)?;
    let mut tail = Tail::default();
    tail.push(&tail_bytes);
    if let Some(g) = &task.resumes
        && tail.hash() != (g.tail_hash, g.tail_len)
    {
        return Err(ReadError::Moved(task.open.clone()));
    }
    let mut file = file;
    file.seek(SeekFrom::Start(start)).map_err(io_err)?;
    Ok(Opened {
        reader: Box::new(file),
        dev: meta.dev(),
        ino: meta.ino(),
        gzip: false,
        head,
        tail,
        quiet,
    })
}

/// An over-long line being skipped: where it starts, its first bytes, its length so far, and
/// the tail hash of the position just before it.
struct Skip {
    offset: u64,
    line: u64,
    head: Vec<u8>,
    len: u64,
    tail_before: (u64, u64),
}

/// The position `offset` of an opened generation, as a checkpoint.
struct Position<'a> {
    opened: &'a Opened,
    task: &'a ReadTask,
}

impl Position<'_> {
    fn at(&self, offset: u64, line: u64, tail: (u64, u64)) -> Generation {
        let head_len = (self.opened.head.len() as u64).min(offset);
        Generation {
            dev: self.opened.dev,
            ino: self.opened.ino,
            gzip: self.opened.gzip,
            start_offset: self.task.start_offset,
            offset,
            line,
            tail_hash: tail.0,
            tail_len: tail.1,
            head_hash: tail_hash(&self.opened.head[..head_len as usize]),
            head_len,
            unfinished: false,
        }
    }
}

/// Reads `task` line by line into `sink`. Lines longer than `max_line` are reported with
/// [`LineSink::too_long`] and skipped without being held in memory.
pub fn read_lines(task: &ReadTask, max_line: usize, sink: &mut dyn LineSink) -> Result<ReadEnd, ReadError> {
    let mut opened = open(task)?;
    let io_err = |source| ReadError::Io {
        path: task.open.clone(),
        source,
    };
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK * 2);
    let mut buf_offset = task.start_offset; // offset of buf[0] in the generation
    let mut line_no = task.start_line;
    let mut bytes_read = 0u64;
    // Consumed bytes not yet folded into the tail window; folded when buf is drained.
    let mut tail = std::mem::take(&mut opened.tail);
    let mut skipping: Option<Skip> = None;

    loop {
        let before = buf.len();
        buf.resize(before + CHUNK, 0);
        let n = loop {
            match opened.reader.read(&mut buf[before..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(e)),
            }
        };
        buf.truncate(before + n);
        bytes_read += n as u64;
        if n == 0 {
            break;
        }
        // The head grows while the first bytes of a file are read.
        if buf_offset < TAIL_HASH_BYTES && opened.head.len() < HASHED {
            let known = opened.head.len() as u64;
            let end = (buf_offset + buf.len() as u64).min(TAIL_HASH_BYTES);
            if end > known && known >= buf_offset {
                let from = (known - buf_offset) as usize;
                let to = (end - buf_offset) as usize;
                let extra = buf[from..to].to_vec();
                opened.head.extend_from_slice(&extra);
            }
        }
        let mut start = 0usize;
        for nl in memchr::memchr_iter(b'\n', &buf[before..]).map(|i| i + before) {
            let bytes = &buf[start..nl];
            if let Some(skip) = skipping.take() {
                sink.too_long(&skip.head, skip.len + bytes.len() as u64, skip.line, skip.offset);
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
                let position = Position {
                    opened: &opened,
                    task,
                };
                let generation = position.at(offset, line_no, tail.hash_with(&buf[..start]));
                sink.checkpoint(ReadProgress {
                    generation,
                    bytes_read,
                })
                .map_err(|_| ReadError::Stopped)?;
            }
        }
        tail.push(&buf[..start]);
        buf.drain(..start);
        buf_offset += start as u64;
        // A partial line already over the limit: keep its head only.
        if buf.len() > max_line {
            match &mut skipping {
                Some(skip) => skip.len += buf.len() as u64,
                None => {
                    line_no += 1;
                    skipping = Some(Skip {
                        offset: buf_offset,
                        line: line_no,
                        head: buf[..buf.len().min(8192)].to_vec(),
                        len: buf.len() as u64,
                        tail_before: tail.hash(),
                    });
                }
            }
            tail.push(&buf);
            buf_offset += buf.len() as u64;
            buf.clear();
        }
    }

    let position = Position {
        opened: &opened,
        task,
    };
    let last_is_final = (task.rotated || task.end_offset.is_some()) && opened.quiet;
    if let Some(skip) = skipping {
        if last_is_final {
            sink.too_long(&skip.head, skip.len, skip.line, skip.offset);
            return Ok(ReadEnd {
                progress: ReadProgress {
                    generation: position.at(buf_offset, skip.line, tail.hash()),
                    bytes_read,
                },
                pending_bytes: 0,
            });
        }
        // The over-long line has no end yet: wait for it, from its start.
        return Ok(ReadEnd {
            progress: ReadProgress {
                generation: position.at(skip.offset, skip.line - 1, skip.tail_before),
                bytes_read,
            },
            pending_bytes: skip.len,
        });
    }
    // A final line without '\n' is taken when it is already a whole JSON object, or when
    // nobody can complete it any more.
    let mut pending = buf.len() as u64;
    if !buf.is_empty() && (last_is_final || is_complete_object(&buf)) {
        line_no += 1;
        if buf.len() > max_line {
            sink.too_long(&buf[..max_line.min(8192)], buf.len() as u64, line_no, buf_offset);
        } else {
            sink.line(&buf, line_no, buf_offset);
        }
        tail.push(&buf);
        buf_offset += buf.len() as u64;
        pending = 0;
    }
    Ok(ReadEnd {
        progress: ReadProgress {
            generation: position.at(buf_offset, line_no, tail.hash()),
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
        fn checkpoint(&mut self, _at: ReadProgress) -> Result<(), SinkStop> {
            Ok(())
        }
    }

    fn task(path: &Path, offset: u64, line: u64) -> ReadTask {
        let m = fs::metadata(path).unwrap();
        ReadTask {
            open: path.to_path_buf(),
            gzip: false,
            dev: m.dev(),
            ino: m.ino(),
            start_offset: offset,
            start_line: line,
            resumes: None,
            slot: 0,
            rotated: false,
            end_offset: None,
            why: "test",
        }
    }

    #[test]
    fn rotated_names() {
        for yes in [
            "deployment.jsonl.1",
            "deployment.jsonl.2.gz",
            "deployment.jsonl-20251102",
            "deployment.jsonl-20251102.gz",
            "deployment.jsonl.2025-11-02",
            "deployment.jsonl.old",
            "deployment.jsonl.gz",
        ] {
            assert!(is_rotated_name("deployment.jsonl", yes), "{yes}");
        }
        for no in [
            "deployment.jsonl",
            "deployment.jsonl.swp",
            "deployment.jsonl.lock",
            "deployment.jsonl.bak",
            "deployment.jsonl.1a",
            "other.jsonl.1",
            "deployment.jsonl.",
        ] {
            assert!(!is_rotated_name("deployment.jsonl", no), "{no}");
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
        assert_eq!(end.progress.generation.offset, 16);
        assert_eq!(end.pending_bytes, 5);
        // The position is proven by the bytes that were read.
        let g = &end.progress.generation;
        assert_eq!(
            (g.tail_hash, g.tail_len),
            (tail_hash(b"{\"a\":1}\n{\"b\":2}\n"), 16)
        );
        assert_eq!(
            (g.head_hash, g.head_len),
            (tail_hash(b"{\"a\":1}\n{\"b\":2}\n"), 16)
        );
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
    fn a_position_comes_from_the_descriptor_even_if_the_path_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.jsonl");
        fs::write(&p, "{\"a\":1}\n").unwrap();
        struct Rotating {
            path: PathBuf,
            seen: Vec<Generation>,
        }
        impl LineSink for Rotating {
            fn line(&mut self, _: &[u8], _: u64, _: u64) {
                // Rotation in the middle of the read: another file at the path.
                let _ = fs::rename(&self.path, self.path.with_extension("jsonl.1"));
                fs::write(&self.path, "{}\n").unwrap();
            }
            fn too_long(&mut self, _: &[u8], _: u64, _: u64, _: u64) {}
            fn wants_checkpoint(&self) -> bool {
                true
            }
            fn checkpoint(&mut self, at: ReadProgress) -> Result<(), SinkStop> {
                self.seen.push(at.generation);
                Ok(())
            }
        }
        let t = task(&p, 0, 0);
        let mut sink = Rotating {
            path: p.clone(),
            seen: vec![],
        };
        read_lines(&t, 100, &mut sink).unwrap();
        let g = &sink.seen[0];
        assert_eq!((g.ino, g.offset), (t.ino, 8));
        assert_eq!((g.tail_hash, g.tail_len), (tail_hash(b"{\"a\":1}\n"), 8));
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
        assert_eq!(end.progress.generation.line, 3);
        let g = &end.progress.generation;
        let all = fs::read(&p).unwrap();
        assert_eq!(g.tail_hash, tail_hash(&all[all.len() - HASHED..]));
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

    #[test]
    fn a_gzip_copy_of_a_generation_is_recognised_and_read_from_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("deployment.jsonl");
        fs::write(&p, "{\"a\":1}\n{\"b\":2}\n").unwrap();
        let mut c = Collect::default();
        let end = read_lines(&task(&p, 0, 0), 100, &mut c).unwrap();
        let cp = SourceCheckpoint {
            path: p.to_string_lossy().into_owned(),
            generations: vec![end.progress.generation],
        };
        // copytruncate into a compressed copy after one more line, then a new line at the path.
        let gz = dir.path().join("deployment.jsonl.1.gz");
        let mut enc = flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        enc.write_all(b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n").unwrap();
        enc.finish().unwrap();
        fs::write(&p, "{\"d\":4}\n").unwrap();
        let plan = plan(&p, Some(&cp));
        assert_eq!(plan.tasks.len(), 2, "{plan:?}");
        assert!(plan.tasks[0].gzip && plan.tasks[0].start_offset == 16);
        let mut c = Collect::default();
        read_lines(&plan.tasks[0], 100, &mut c).unwrap();
        read_lines(&plan.tasks[1], 100, &mut c).unwrap();
        let got: Vec<&str> = c.lines.iter().map(|l| l.0.as_str()).collect();
        assert_eq!(got, vec!["{\"c\":3}", "{\"d\":4}"]);
        assert_eq!(c.lines[0].1, 3, "line numbers continue in the copy");
    }

    #[test]
    fn half_a_copy_or_half_a_gzip_is_never_read_as_a_generation_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("deployment.jsonl");
        let body: String = (0..400)
            .map(|n| format!("{{\"n\":{n},\"pad\":\"{}\"}}\n", "x".repeat(40)))
            .collect();
        fs::write(&p, &body).unwrap();
        let mut c = Collect::default();
        let end = read_lines(&task(&p, 0, 0), 1 << 20, &mut c).unwrap();
        let cp = SourceCheckpoint {
            path: p.to_string_lossy().into_owned(),
            generations: vec![end.progress.generation],
        };
        // copytruncate under way: the copy holds the first 10,000 bytes so far.
        fs::write(dir.path().join("deployment.jsonl.1"), &body.as_bytes()[..10_000]).unwrap();
        fs::write(&p, "").unwrap();
        let first = plan(&p, Some(&cp));
        assert!(first.tasks.iter().all(|t| !t.rotated), "{first:?}");
        assert!(first.deferred, "a young partial copy is looked at again");
        assert!(first.settled().last().is_some_and(|g| g.unfinished));
        // A gzip file cut short (still being written) is not read either.
        fs::remove_file(dir.path().join("deployment.jsonl.1")).unwrap();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(body.as_bytes()).unwrap();
        let gz = enc.finish().unwrap();
        fs::write(dir.path().join("deployment.jsonl.1.gz"), &gz[..gz.len() / 2]).unwrap();
        let second = plan(&p, Some(&cp));
        assert!(second.tasks.iter().all(|t| !t.gzip), "{second:?}");
        assert!(second.deferred);
    }
}
