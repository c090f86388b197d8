//! The ingest pipeline: lines -> validated events (or rejects) -> commits, with read positions
//! committed together with the rows they produced.
//!
//! Two stages share the work: this thread reads lines and, in batches, has them decoded,
//! validated and appended to Arrow builders on two threads; when the builders are full, a
//! commit thread finishes the batches, encodes the Parquet files and writes the commit, while
//! this thread goes on with the next lines. At most one
//! commit is in flight, and an event counts as stored (for duplicate detection and read
//! positions) only once its commit has landed.

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::RecordBatch;
use deploylens_model::batch::{EventBatchBuilder, Location, RejectBatchBuilder};
use deploylens_model::{DecodeOptions, LineOrigin, Reject, RejectReason, decode_line};
use deploylens_store::{SourceCheckpoint, Store, StoreError};

use crate::discover::SourceFile;
use crate::read::{LineSink, ReadProgress, ReadTask, plan, read_lines, tail_hash_at};

/// Limits of one ingest.
#[derive(Debug, Clone, Copy)]
pub struct IngestOptions {
    pub decode: DecodeOptions,
    /// Commit after this many buffered rows...
    pub commit_rows: usize,
    /// ...or this many buffered bytes, so memory stays bounded whatever the input size.
    pub commit_bytes: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            decode: DecodeOptions::default(),
            commit_rows: 100_000,
            commit_bytes: 48 << 20,
        }
    }
}

/// What an ingest did, for the summary and the metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestReport {
    pub files_seen: u64,
    pub files_read: u64,
    pub bytes_read: u64,
    pub lines: u64,
    pub events: u64,
    pub duplicates: u64,
    pub blank_lines: u64,
    pub rejects: BTreeMap<RejectReason, u64>,
    /// Bytes of NUL padding skipped at line starts (left by copytruncate).
    pub nul_bytes_skipped: u64,
    /// Files whose last line is not complete yet, and its length so far.
    pub pending: Vec<(String, u64)>,
    /// Files that could not be read, with why.
    pub unreadable: Vec<String>,
    pub commits: u64,
}

impl IngestReport {
    pub fn reject_total(&self) -> u64 {
        self.rejects.values().sum()
    }
}

/// Owns the store while collecting: the set of stored event ids, the builders, the read
/// positions not yet committed.
pub struct Ingestor {
    parts: Parts,
    opts: IngestOptions,
}

/// What a commit needs, apart from the rows of the current run.
struct Parts {
    /// `None` only while a commit thread holds it, inside [`Ingestor::ingest`].
    store: Option<Store>,
    ids: deploylens_model::StoredIds,
    checkpoints: BTreeMap<String, SourceCheckpoint>,
    in_flight: Option<InFlight>,
}

/// A commit being written by its thread, and what it will make true once it lands.
struct InFlight {
    thread: std::thread::JoinHandle<(Store, Result<(), StoreError>)>,
    ids: deploylens_model::IdSet,
    sources: Vec<SourceCheckpoint>,
}

impl Ingestor {
    /// Opens the data directory for writing (taking its lock) and loads what is stored.
    pub fn open(data_dir: &Path, opts: IngestOptions) -> Result<Ingestor, StoreError> {
        let store = Store::open(data_dir)?;
        let ids = store.event_ids()?;
        let checkpoints = store.snapshot().checkpoints();
        Ok(Ingestor {
            parts: Parts {
                store: Some(store),
                ids,
                checkpoints,
                in_flight: None,
            },
            opts,
        })
    }

    pub fn store(&self) -> &Store {
        self.parts
            .store
            .as_ref()
            .expect("a commit is in flight only inside ingest()")
    }

    pub fn store_mut(&mut self) -> &mut Store {
        self.parts
            .store
            .as_mut()
            .expect("a commit is in flight only inside ingest()")
    }

    /// Reads every file from its committed position and commits what is new. `progress`
    /// receives the bytes read as they are read.
    pub fn ingest(
        &mut self,
        files: &[SourceFile],
        progress: &mut dyn FnMut(u64),
    ) -> Result<IngestReport, StoreError> {
        let mut run = Run::new(self.opts);
        run.report.files_seen = files.len() as u64;
        let read = self.read_all(&mut run, files, progress);
        // Whatever happened, the commit in flight lands (or fails) before returning.
        let landed = self.parts.land(&mut run);
        read?;
        landed?;
        self.parts.commit(&mut run)?;
        self.parts.land(&mut run)?;
        Ok(run.report)
    }

    fn read_all(
        &mut self,
        run: &mut Run,
        files: &[SourceFile],
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), StoreError> {
        for file in files {
            let key = file.path.to_string_lossy().into_owned();
            let tasks = plan(&file.path, self.parts.checkpoints.get(&key));
            for task in tasks {
                self.read_task(run, &key, file, &task, progress)?;
            }
        }
        Ok(())
    }

    fn read_task(
        &mut self,
        run: &mut Run,
        key: &str,
        file: &SourceFile,
        task: &ReadTask,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), StoreError> {
        tracing::debug!(path = %task.open.display(), offset = task.start_offset, why = task.why, "reading");
        let source_file = task.open.to_string_lossy().into_owned();
        let mut sink = Sink {
            run: &mut *run,
            parts: &mut self.parts,
            key,
            task,
            file: &source_file,
            repository: &file.repository,
            error: None,
        };
        let result = read_lines(task, self.opts.decode.max_line_bytes, &mut sink);
        sink.flush();
        if let Some(e) = sink.error.take() {
            return Err(e);
        }
        let end = match result {
            Ok(end) => end,
            Err(e) => {
                run.report
                    .unreadable
                    .push(format!("{}: {e}", task.open.display()));
                return Ok(());
            }
        };
        progress(end.progress.bytes_read);
        run.report.files_read += 1;
        run.report.bytes_read += end.progress.bytes_read;
        if end.pending_bytes > 0 {
            run.report.pending.push((source_file, end.pending_bytes));
        }
        self.parts.stage(run, key, task, end.progress);
        Ok(())
    }
}

impl Parts {
    /// Records the position `at` of `key` for the next commit, if it moved.
    fn stage(&mut self, run: &mut Run, key: &str, task: &ReadTask, at: ReadProgress) {
        let (tail_hash, tail_len) = std::fs::File::open(&task.open)
            .and_then(|f| tail_hash_at(&f, at.offset))
            .unwrap_or((0, 0));
        let cp = SourceCheckpoint {
            path: key.to_string(),
            dev: at.identity.dev,
            ino: at.identity.ino,
            start_offset: task.start_offset,
            offset: at.offset,
            line: at.line,
            tail_hash,
            tail_len,
        };
        let same = |old: &SourceCheckpoint| {
            old.path == cp.path
                && old.dev == cp.dev
                && old.ino == cp.ino
                && old.offset == cp.offset
                && old.tail_hash == cp.tail_hash
        };
        // Unchanged since the last commit, landed or in flight.
        let unchanged = match self
            .in_flight
            .as_ref()
            .and_then(|f| f.sources.iter().rfind(|s| s.path == key))
        {
            Some(old) => same(old),
            None => self.checkpoints.get(key).is_some_and(same),
        };
        if !unchanged {
            run.sources.retain(|s| s.path != key || s.ino != cp.ino);
            run.sources.push(cp);
        }
    }

    fn root(&self) -> std::path::PathBuf {
        self.store
            .as_ref()
            .map(|s| s.root().to_path_buf())
            .unwrap_or_default()
    }

    /// Whether an event is stored or on its way to be.
    fn knows(&self, id: &u128) -> bool {
        self.ids.contains(id) || self.in_flight.as_ref().is_some_and(|f| f.ids.contains(id))
    }

    /// Hands what the run buffered to a commit thread, after the previous commit has landed.
    fn commit(&mut self, run: &mut Run) -> Result<(), StoreError> {
        self.land(run)?;
        if run.sources.is_empty() && run.events.iter().all(|b| b.is_empty()) && run.rejects.is_empty() {
            return Ok(());
        }
        // The thread starts before it is given the store, so a failure to start loses nothing.
        let (send, receive) = std::sync::mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("commit".into())
            .spawn(move || match receive.recv() {
                Ok(job) => job.run(),
                Err(_) => unreachable!("the job is sent right after the spawn"),
            })
            .map_err(|source| StoreError::Io {
                action: "starting the commit thread for",
                path: self.root(),
                source,
            })?;
        // The next builders are sized like these, so that they fill without growing.
        let next_builders = run.events.each_ref().map(EventBatchBuilder::sized_like);
        let job = Job {
            store: self.store.take().expect("land() returned the store"),
            events: std::mem::replace(&mut run.events, next_builders),
            rejects: std::mem::replace(&mut run.rejects, RejectBatchBuilder::new()),
            sources: run.sources.clone(),
            duplicates: std::mem::take(&mut run.duplicates_uncommitted),
        };
        let sources = std::mem::take(&mut run.sources);
        if let Err(std::sync::mpsc::SendError(job)) = send.send(job) {
            self.store = Some(job.store);
            return Err(StoreError::Io {
                action: "handing the commit to its thread for",
                path: self.root(),
                source: std::io::Error::other("the commit thread ended early"),
            });
        }
        self.in_flight = Some(InFlight {
            thread,
            ids: std::mem::replace(&mut run.pending_ids, id_set(run.opts.commit_rows)),
            sources,
        });
        Ok(())
    }

    /// Waits for the commit in flight, if any. Once it has landed, its events are stored and its
    /// read positions are the committed ones; if it failed, they will be read again.
    fn land(&mut self, run: &mut Run) -> Result<(), StoreError> {
        let Some(flight) = self.in_flight.take() else {
            return Ok(());
        };
        let (store, result) = match flight.thread.join() {
            Ok(done) => done,
            Err(_) => unreachable!("the commit thread catches its panics"),
        };
        self.store = Some(store);
        result?;
        run.report.commits += 1;
        self.ids.extend(flight.ids);
        for s in flight.sources {
            self.checkpoints.insert(s.path.clone(), s);
        }
        Ok(())
    }
}

/// What the commit thread writes.
struct Job {
    store: Store,
    events: [EventBatchBuilder; 2],
    rejects: RejectBatchBuilder,
    sources: Vec<SourceCheckpoint>,
    duplicates: u64,
}

impl Job {
    /// Finishes the batches and writes them with the read positions; gives the store back,
    /// whatever happened.
    fn run(mut self) -> (Store, Result<(), StoreError>) {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.write()));
        let result = result.unwrap_or_else(|_| {
            Err(StoreError::Io {
                action: "committing to (the commit thread panicked)",
                path: self.store.root().to_path_buf(),
                source: std::io::Error::other("panic"),
            })
        });
        (self.store, result)
    }

    fn write(&mut self) -> Result<(), StoreError> {
        let now = now_us();
        let mut events: Vec<RecordBatch> = Vec::new();
        for builder in &mut self.events {
            if !builder.is_empty() {
                events.push(builder.finish(now)?);
            }
        }
        let rejects: Vec<RecordBatch> = if self.rejects.is_empty() {
            vec![]
        } else {
            vec![self.rejects.finish(now)?]
        };
        let sources = std::mem::take(&mut self.sources);
        let info = self
            .store
            .commit(&events, &rejects, sources, self.duplicates, vec![])?;
        tracing::debug!(
            seq = info.manifest.seq,
            events = info.manifest.events,
            "committed"
        );
        Ok(())
    }
}

/// The state of one ingest call.
struct Run {
    opts: IngestOptions,
    /// Two builders, filled side by side from the two halves of each batch of lines.
    events: [EventBatchBuilder; 2],
    rejects: RejectBatchBuilder,
    sources: Vec<SourceCheckpoint>,
    duplicates_uncommitted: u64,
    /// Ids of the events buffered for the next commit.
    pending_ids: deploylens_model::IdSet,
    /// Lines read but not decoded yet.
    lines: LineBatch,
    report: IngestReport,
}

impl Run {
    fn new(opts: IngestOptions) -> Self {
        Run {
            opts,
            events: Default::default(),
            rejects: RejectBatchBuilder::new(),
            sources: Vec::new(),
            duplicates_uncommitted: 0,
            pending_ids: deploylens_model::IdSet::default(),
            lines: LineBatch::default(),
            report: IngestReport::default(),
        }
    }

    fn full(&self) -> bool {
        // Gathered lines count too: they become rows at the next flush.
        let rows: usize = self.events.iter().map(|b| b.len()).sum::<usize>() + self.lines.lines.len();
        let bytes: usize =
            self.events.iter().map(|b| b.buffered_bytes()).sum::<usize>() + self.lines.bytes.len();
        rows + self.rejects.len() >= self.opts.commit_rows || bytes >= self.opts.commit_bytes
    }
}

/// Decodes lines as the reader produces them, and commits when the buffers are full.
struct Sink<'a> {
    run: &'a mut Run,
    parts: &'a mut Parts,
    key: &'a str,
    task: &'a ReadTask,
    file: &'a str,
    repository: &'a str,
    /// A commit that failed: reading stops and the error is returned.
    error: Option<StoreError>,
}

impl Sink<'_> {
    fn reject(&mut self, reject: &Reject, raw: &[u8], raw_len: u64, at: Location<'_>) {
        *self.run.report.rejects.entry(reject.reason).or_default() += 1;
        self.run.rejects.append(reject, self.repository, raw, raw_len, at);
    }

    /// Decodes the lines gathered so far and stores their outcomes. Decoding and appending to
    /// the builders run on two threads; matching duplicates runs in between, in line order, so
    /// the first copy of an event is the one kept.
    fn flush(&mut self) {
        if self.run.lines.is_empty() {
            return;
        }
        let lines = std::mem::take(&mut self.run.lines);
        let decoded = lines.decode(self.repository);
        let mut keep = vec![false; decoded.len()];
        for (i, (l, outcome)) in lines.lines.iter().zip(&decoded).enumerate() {
            match outcome {
                Ok(Some((_, id))) => {
                    if !self.parts.knows(id) && self.run.pending_ids.insert(*id) {
                        keep[i] = true;
                        self.run.report.events += 1;
                    } else {
                        self.run.report.duplicates += 1;
                        self.run.duplicates_uncommitted += 1;
                    }
                }
                Ok(None) => self.run.report.blank_lines += 1,
                Err(reject) => {
                    let bytes = lines.bytes_of(l);
                    self.reject(reject, bytes, bytes.len() as u64, l.at(self.file));
                }
            }
        }
        let file = self.file;
        let append = |builder: &mut EventBatchBuilder, from: usize, to: usize| {
            for i in (from..to).filter(|i| keep[*i]) {
                if let Ok(Some((event, id))) = &decoded[i] {
                    builder.append(event, *id, lines.lines[i].at(file));
                }
            }
        };
        let n = decoded.len();
        let [first, second] = &mut self.run.events;
        if n < LineBatch::SPLIT_LINES {
            append(first, 0, n);
        } else {
            side_by_side(|| append(first, 0, n / 2), || append(second, n / 2, n));
        }
        drop(decoded);
        self.run.lines = lines.cleared();
    }
}

/// Lines gathered to be decoded together, split over two threads: decoding and validating is
/// most of an ingest's work, and lines do not depend on each other until duplicates are
/// matched, which [`Sink::flush`] does afterwards in line order.
#[derive(Default)]
struct LineBatch {
    bytes: Vec<u8>,
    lines: Vec<GatheredLine>,
}

struct GatheredLine {
    start: usize,
    end: usize,
    line: u64,
    offset: u64,
}

impl GatheredLine {
    fn at<'f>(&self, file: &'f str) -> Location<'f> {
        Location {
            file,
            line: self.line,
            offset: self.offset,
        }
    }
}

type Decoded<'a> = Result<Option<(deploylens_model::Event<'a>, u128)>, Reject>;

impl LineBatch {
    /// Decode once this many bytes are gathered.
    const BYTES: usize = 1 << 20;
    /// Below this many lines, a second thread costs more than it saves.
    const SPLIT_LINES: usize = 512;

    fn push(&mut self, bytes: &[u8], line: u64, offset: u64) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        self.lines.push(GatheredLine {
            start,
            end: self.bytes.len(),
            line,
            offset,
        });
    }

    fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    fn is_full(&self) -> bool {
        self.bytes.len() >= Self::BYTES
    }

    fn bytes_of(&self, l: &GatheredLine) -> &[u8] {
        &self.bytes[l.start..l.end]
    }

    fn cleared(mut self) -> Self {
        self.bytes.clear();
        self.lines.clear();
        self
    }

    fn decode<'a>(&'a self, repository: &str) -> Vec<Decoded<'a>> {
        let decode = |lines: &[GatheredLine]| -> Vec<Decoded<'a>> {
            lines
                .iter()
                .map(|l| {
                    let origin = LineOrigin {
                        inferred_repository: repository,
                    };
                    decode_line(self.bytes_of(l), origin).map(|e| {
                        e.map(|e| {
                            let id = e.id();
                            (e, id)
                        })
                    })
                })
                .collect()
        };
        if self.lines.len() < Self::SPLIT_LINES {
            return decode(&self.lines);
        }
        let (first, second) = self.lines.split_at(self.lines.len() / 2);
        let (mut out, rest) = side_by_side(|| decode(first), || decode(second));
        out.extend(rest);
        out
    }
}

/// Runs `a` here and `b` on a second thread, and returns both results (a panic in `b` is
/// raised here).
fn side_by_side<A, B: Send>(a: impl FnOnce() -> A, b: impl FnOnce() -> B + Send) -> (A, B) {
    std::thread::scope(|scope| {
        let other = scope.spawn(b);
        let here = a();
        match other.join() {
            Ok(there) => (here, there),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

impl LineSink for Sink<'_> {
    fn line(&mut self, bytes: &[u8], line: u64, offset: u64) {
        self.run.report.lines += 1;
        // copytruncate with a writer that kept its position leaves a run of NULs: skip it.
        let nuls = bytes.iter().take_while(|b| **b == 0).count();
        self.run.report.nul_bytes_skipped += nuls as u64;
        self.run.lines.push(&bytes[nuls..], line, offset + nuls as u64);
        if self.run.lines.is_full() {
            self.flush();
        }
    }

    fn too_long(&mut self, head: &[u8], len: u64, line: u64, offset: u64) {
        self.flush();
        self.run.report.lines += 1;
        let reject = Reject::new(
            RejectReason::LineTooLong,
            format!(
                "line is {len} bytes, over the limit of {} (raise --max-line-bytes if it is genuine)",
                self.run.opts.decode.max_line_bytes
            ),
        );
        self.reject(
            &reject,
            head,
            len,
            Location {
                file: self.file,
                line,
                offset,
            },
        );
    }

    fn wants_checkpoint(&self) -> bool {
        self.run.full()
    }

    fn checkpoint(&mut self, at: ReadProgress) -> std::io::Result<()> {
        // The position covers every line before it: they go into this commit.
        self.flush();
        self.parts.stage(self.run, self.key, self.task, at);
        if let Err(e) = self.parts.commit(self.run) {
            let message = e.to_string();
            self.error = Some(e);
            return Err(std::io::Error::other(message));
        }
        Ok(())
    }
}

/// An empty id set sized for one commit, so that it does not grow by rehashing.
fn id_set(rows: usize) -> deploylens_model::IdSet {
    deploylens_model::IdSet::with_capacity_and_hasher(rows.min(1 << 20), Default::default())
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
