//! The ingest pipeline: lines -> validated events (or rejects) -> commits, with read positions
//! committed together with the rows they produced.
//!
//! Two stages share the work: the calling thread reads lines and, in batches, has them decoded,
//! validated and appended to Arrow builders on two threads ([`lines`], [`sink`]); when the
//! builders are full, a commit thread finishes the batches, encodes the Parquet files and
//! writes the commit ([`commit`]), while reading goes on with the next lines. At most one
//! commit is in flight, and an event counts as stored (for duplicate detection and read
//! positions) only once its commit has landed.
//!
//! ```no_run
//! # use deploylens_collector::{discover, DiscoveryOptions, IngestOptions, Ingestor};
//! let found = discover(&["/src".into()], &DiscoveryOptions::default());
//! let mut ingestor = Ingestor::open("/var/lib/deploylens".as_ref(), IngestOptions::default())?;
//! let report = ingestor.ingest(&found.files, &mut |_bytes| {})?;
//! println!("{} new events", report.events);
//! # Ok::<(), deploylens_store::StoreError>(())
//! ```

mod commit;
mod lines;
mod sink;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use deploylens_model::{DecodeOptions, RejectReason};
use deploylens_store::{Location, Repair, Store, StoreError, Want, WriterOptions};

use crate::discover::SourceFile;
use crate::read::{Plan, ReadError, ReadTask, plan, read_lines};
use commit::Committer;
pub use sink::SinkError;
use sink::{Run, Sink};

/// Limits of one ingest.
#[derive(Debug, Clone, Copy)]
pub struct IngestOptions {
    /// How lines are decoded and validated (the longest line accepted).
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

/// A file that could not be read on this pass, and why. It is tried again on the next pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    /// The source path it belongs to.
    pub source: PathBuf,
    /// The file that failed (the path itself, or a rotated generation of it).
    pub file: PathBuf,
    /// What went wrong, as a message.
    pub error: String,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.error)
    }
}

/// What an ingest did, for the summary and the metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestReport {
    /// Source paths handed to the ingest.
    pub files_seen: u64,
    /// Files read without error; each rotated generation of a path counts as one.
    pub files_read: u64,
    /// Bytes read from them.
    pub bytes_read: u64,
    /// Lines read, blank and over-long ones included.
    pub lines: u64,
    /// New events stored.
    pub events: u64,
    /// Lines that repeated an event already stored, or seen earlier in this ingest.
    pub duplicates: u64,
    /// Empty lines, which store nothing.
    pub blank_lines: u64,
    /// Rejected lines, by reason.
    pub rejects: BTreeMap<RejectReason, u64>,
    /// Bytes of NUL padding skipped at line starts (left by copytruncate).
    pub nul_bytes_skipped: u64,
    /// Files whose last line is not complete yet, and its length so far.
    pub pending: Vec<(String, u64)>,
    /// Files that could not be read.
    pub unreadable: Vec<Unreadable>,
    /// Rotated generations read (a `.1`, a `.2.gz`, ...), for the logs.
    pub rotated_reads: u64,
    /// Source paths to look at again soon, although they did not change: a rotated file
    /// beside them was still being written, or a read of one was cut short.
    pub revisit: Vec<PathBuf>,
    /// Commits that landed.
    pub commits: u64,
}

impl IngestReport {
    /// Rejected lines, all reasons together.
    pub fn reject_total(&self) -> u64 {
        self.rejects.values().sum()
    }
}

/// Owns the store while collecting: the set of stored event ids, the builders, the read
/// positions not yet committed.
pub struct Ingestor {
    committer: Committer,
    opts: IngestOptions,
}

impl Ingestor {
    /// Opens the store for writing as one collector (taking its lease), loads what it stored
    /// before, and first of all reads again what a repair needs (a damaged file, a commit whose
    /// rejects never landed).
    pub fn open(
        location: &Location,
        writer: &WriterOptions,
        opts: IngestOptions,
    ) -> Result<Ingestor, StoreError> {
        let store = Store::open(location, writer)?;
        let mut ingestor = Ingestor {
            committer: Committer::new(store, opts.commit_rows)?,
            opts,
        };
        ingestor.repair()?;
        Ok(ingestor)
    }

    /// Reads again the ranges of every pending repair and commits what they hold, with the
    /// removal of the damaged files they replace. Ranges whose bytes are gone are reported.
    fn repair(&mut self) -> Result<IngestReport, StoreError> {
        let repairs: Vec<Repair> = self.store().repairs().to_vec();
        let mut run = Run::new(self.opts);
        for repair in repairs {
            let mut lost = 0u64;
            for range in &repair.ranges {
                let path = Path::new(&range.path);
                let Some(task) = crate::read::locate(path, &range.generation, range.start, range.start_line)
                else {
                    lost += range.end - range.start;
                    continue;
                };
                let file = SourceFile {
                    path: path.to_path_buf(),
                    repository: crate::discover::repository_of(path),
                };
                let mut plan = Plan::for_repair();
                self.read_task_as(
                    &mut run,
                    &range.path,
                    &file,
                    &mut plan,
                    &task,
                    repair.want,
                    &mut |_| {},
                )?;
            }
            if lost > 0 {
                tracing::error!(
                    "{}: {lost} bytes of its lines are no longer in any source file; they cannot be stored again",
                    repair.why
                );
            }
            tracing::warn!("repaired: {}", repair.why);
            run.pending.repaired.push(repair);
            run.commit(&mut self.committer)?;
            run.land(&mut self.committer)?;
        }
        Ok(run.report)
    }

    /// The store. Between ingests no commit is in flight, so it is always there.
    pub fn store(&self) -> &Store {
        self.committer
            .store()
            .expect("a commit is in flight only inside ingest()")
    }

    /// The store, for upkeep between ingests: compaction, clean-up, reloads.
    pub fn store_mut(&mut self) -> &mut Store {
        self.committer
            .store_mut()
            .expect("a commit is in flight only inside ingest()")
    }

    /// The source paths the store holds read positions for.
    pub fn known_sources(&self) -> Vec<PathBuf> {
        self.committer.known_paths().map(PathBuf::from).collect()
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
        let landed = run.land(&mut self.committer);
        read?;
        landed?;
        run.commit(&mut self.committer)?;
        run.land(&mut self.committer)?;
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
            let mut plan = plan(&file.path, self.committer.checkpoint(&key));
            for task in plan.tasks.clone() {
                self.read_task(run, &key, file, &mut plan, &task, progress)?;
            }
            if plan.settled().iter().any(|g| g.unfinished) {
                run.report.revisit.push(file.path.clone());
            }
            run.stage(&self.committer, &key, &plan);
        }
        Ok(())
    }

    fn read_task(
        &mut self,
        run: &mut Run,
        key: &str,
        file: &SourceFile,
        plan: &mut Plan,
        task: &ReadTask,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), StoreError> {
        self.read_task_as(run, key, file, plan, task, Want::Both, progress)
    }

    /// Reads one task into the pending commit. With `want` other than [`Want::Both`] it is a
    /// repair: only that kind of row is kept, and no read position moves.
    #[allow(clippy::too_many_arguments)]
    fn read_task_as(
        &mut self,
        run: &mut Run,
        key: &str,
        file: &SourceFile,
        plan: &mut Plan,
        task: &ReadTask,
        want: Want,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), StoreError> {
        let repairing = task.end_offset.is_some();
        tracing::debug!(path = %task.open.display(), offset = task.start_offset, why = task.why, "reading");
        let source_file = task.open.to_string_lossy().into_owned();
        let mut sink = Sink {
            run: &mut *run,
            committer: &mut self.committer,
            key,
            plan: &mut *plan,
            slot: task.slot,
            file: &source_file,
            repository: &file.repository,
            range_from: (task.start_offset, task.start_line),
            want,
            stage: !repairing,
            error: None,
        };
        let result = read_lines(task, self.opts.decode.max_line_bytes, &mut sink);
        sink.flush();
        if let Ok(end) = &result {
            sink.close_range(&end.progress.generation);
        }
        if let Some(SinkError::Commit(e)) = sink.error.take() {
            return Err(e);
        }
        let end = match result {
            Ok(end) => end,
            Err(e) => {
                // Tried again on the next pass: the generation keeps its last committed state,
                // marked so that the pass looks at it again.
                if let Some(Some(g)) = plan.generations.get_mut(task.slot) {
                    g.unfinished = true;
                }
                match e {
                    ReadError::Moved(_) => {
                        tracing::debug!(path = %task.open.display(), "replaced while planned; planning again next pass")
                    }
                    e => run.report.unreadable.push(Unreadable {
                        source: file.path.clone(),
                        file: task.open.clone(),
                        error: match e {
                            ReadError::Io { source, .. } => source.to_string(),
                            other => other.to_string(),
                        },
                    }),
                }
                return Ok(());
            }
        };
        progress(end.progress.bytes_read);
        run.report.files_read += 1;
        run.report.bytes_read += end.progress.bytes_read;
        if task.rotated {
            run.report.rotated_reads += 1;
        }
        if end.pending_bytes > 0 {
            run.report.pending.push((source_file, end.pending_bytes));
        }
        if repairing {
            return Ok(());
        }
        let mut generation = end.progress.generation;
        generation.unfinished = task.rotated && end.pending_bytes > 0;
        plan.generations[task.slot] = Some(generation);
        Ok(())
    }
}
