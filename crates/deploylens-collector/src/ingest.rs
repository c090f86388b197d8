//! The ingest pipeline: lines -> validated events (or rejects) -> commits, with read positions
//! committed together with the rows they produced.

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
            commit_rows: 250_000,
            commit_bytes: 96 << 20,
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
    store: Store,
    ids: deploylens_model::IdSet,
    checkpoints: BTreeMap<String, SourceCheckpoint>,
}

impl Ingestor {
    /// Opens the data directory for writing (taking its lock) and loads what is stored.
    pub fn open(data_dir: &Path, opts: IngestOptions) -> Result<Ingestor, StoreError> {
        let store = Store::open(data_dir)?;
        let ids = store.event_ids()?;
        let checkpoints = store.snapshot().checkpoints();
        Ok(Ingestor {
            parts: Parts {
                store,
                ids,
                checkpoints,
            },
            opts,
        })
    }

    pub fn store(&self) -> &Store {
        &self.parts.store
    }

    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.parts.store
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
        for file in files {
            let key = file.path.to_string_lossy().into_owned();
            let tasks = plan(&file.path, self.parts.checkpoints.get(&key));
            for task in tasks {
                self.read_task(&mut run, &key, file, &task, progress)?;
            }
        }
        self.parts.commit(&mut run)?;
        Ok(run.report)
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
        let unchanged = self.checkpoints.get(key).is_some_and(|old| {
            old.dev == cp.dev && old.ino == cp.ino && old.offset == cp.offset && old.tail_hash == cp.tail_hash
        });
        if !unchanged {
            run.sources.retain(|s| s.path != key || s.ino != cp.ino);
            run.sources.push(cp);
        }
    }

    fn commit(&mut self, run: &mut Run) -> Result<(), StoreError> {
        if run.sources.is_empty() && run.events.is_empty() && run.rejects.is_empty() {
            return Ok(());
        }
        let now = now_us();
        let events: Vec<RecordBatch> = if run.events.is_empty() {
            vec![]
        } else {
            vec![run.events.finish(now)?]
        };
        let rejects: Vec<RecordBatch> = if run.rejects.is_empty() {
            vec![]
        } else {
            vec![run.rejects.finish(now)?]
        };
        let sources = std::mem::take(&mut run.sources);
        let info = self.store.commit(
            &events,
            &rejects,
            sources.clone(),
            run.duplicates_uncommitted,
            vec![],
        )?;
        tracing::debug!(
            seq = info.manifest.seq,
            events = info.manifest.events,
            "committed"
        );
        run.duplicates_uncommitted = 0;
        run.report.commits += 1;
        // Only now are these events stored: if the commit had failed, they would be read again.
        self.ids.extend(run.pending_ids.drain());
        for s in sources {
            self.checkpoints.insert(s.path.clone(), s);
        }
        Ok(())
    }
}

/// The state of one ingest call.
struct Run {
    opts: IngestOptions,
    events: EventBatchBuilder,
    rejects: RejectBatchBuilder,
    sources: Vec<SourceCheckpoint>,
    duplicates_uncommitted: u64,
    /// Ids of the events buffered for the next commit.
    pending_ids: deploylens_model::IdSet,
    report: IngestReport,
}

impl Run {
    fn new(opts: IngestOptions) -> Self {
        Run {
            opts,
            events: EventBatchBuilder::new(),
            rejects: RejectBatchBuilder::new(),
            sources: Vec::new(),
            duplicates_uncommitted: 0,
            pending_ids: deploylens_model::IdSet::default(),
            report: IngestReport::default(),
        }
    }

    fn full(&self) -> bool {
        self.events.len() + self.rejects.len() >= self.opts.commit_rows
            || self.events.buffered_bytes() >= self.opts.commit_bytes
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
}

impl LineSink for Sink<'_> {
    fn line(&mut self, bytes: &[u8], line: u64, offset: u64) {
        self.run.report.lines += 1;
        // copytruncate with a writer that kept its position leaves a run of NULs: skip it.
        let nuls = bytes.iter().take_while(|b| **b == 0).count();
        let (bytes, offset) = (&bytes[nuls..], offset + nuls as u64);
        self.run.report.nul_bytes_skipped += nuls as u64;
        let at = Location {
            file: self.file,
            line,
            offset,
        };
        match decode_line(
            bytes,
            LineOrigin {
                inferred_repository: self.repository,
            },
        ) {
            Ok(Some(event)) => {
                let id = event.id();
                if !self.parts.ids.contains(&id) && self.run.pending_ids.insert(id) {
                    self.run.events.append(&event, id, at);
                    self.run.report.events += 1;
                } else {
                    self.run.report.duplicates += 1;
                    self.run.duplicates_uncommitted += 1;
                }
            }
            Ok(None) => self.run.report.blank_lines += 1,
            Err(reject) => self.reject(&reject, bytes, bytes.len() as u64, at),
        }
    }

    fn too_long(&mut self, head: &[u8], len: u64, line: u64, offset: u64) {
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
        self.parts.stage(self.run, self.key, self.task, at);
        if let Err(e) = self.parts.commit(self.run) {
            let message = e.to_string();
            self.error = Some(e);
            return Err(std::io::Error::other(message));
        }
        Ok(())
    }
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
