//! The line sink of an ingest: decodes the lines a reader hands it, drops repeated events,
//! buffers events and rejects, and commits at the reader's commit points.

use deploylens_model::batch::{EventBatchBuilder, Location};
use deploylens_model::{Reject, RejectReason};
use deploylens_store::{Generation, SourceCheckpoint, SourceRange, StoreError, Want};

use super::commit::{Committer, Pending};
use super::lines::{LineBatch, side_by_side};
use super::{IngestOptions, IngestReport};
use crate::read::{LineSink, Plan, ReadProgress, SinkStop};

/// Why a sink stopped its reader.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A commit failed: the lines since the last landed commit will be read again.
    #[error(transparent)]
    Commit(#[from] StoreError),
}

/// The state of one ingest call: what is buffered, what was seen.
pub(crate) struct Run {
    pub(crate) opts: IngestOptions,
    pub(crate) pending: Pending,
    /// Lines read but not decoded yet.
    pub(crate) lines: LineBatch,
    pub(crate) report: IngestReport,
}

impl Run {
    pub(crate) fn new(opts: IngestOptions) -> Self {
        Run {
            opts,
            pending: Pending::new(opts.commit_rows),
            lines: LineBatch::default(),
            report: IngestReport::default(),
        }
    }

    fn full(&self) -> bool {
        // Gathered lines count too: they become rows at the next flush.
        let rows = self.pending.rows() + self.lines.len();
        let bytes = self.pending.bytes() + self.lines.byte_len();
        rows >= self.opts.commit_rows || bytes >= self.opts.commit_bytes
    }

    /// Commits what is buffered (after the previous commit has landed).
    pub(crate) fn commit(&mut self, committer: &mut Committer) -> Result<(), StoreError> {
        self.report.commits += committer.commit(&mut self.pending)?;
        Ok(())
    }

    /// Waits for the commit in flight.
    pub(crate) fn land(&mut self, committer: &mut Committer) -> Result<(), StoreError> {
        self.report.commits += committer.land()?;
        Ok(())
    }

    /// Records the new read state of `path` for the next commit, unless it is what the newest
    /// commit already holds.
    pub(crate) fn stage(&mut self, committer: &Committer, path: &str, plan: &Plan) {
        let cp = SourceCheckpoint {
            path: path.to_string(),
            generations: plan.settled(),
        };
        if committer.latest(path) == Some(&cp) {
            self.pending.sources.remove(path);
        } else {
            self.pending.sources.insert(path.to_string(), cp);
        }
    }
}

/// Decodes lines as the reader produces them, and commits when the buffers are full.
pub(crate) struct Sink<'a> {
    pub(crate) run: &'a mut Run,
    pub(crate) committer: &'a mut Committer,
    /// The source path and its plan: a commit point updates the plan's slot.
    pub(crate) key: &'a str,
    pub(crate) plan: &'a mut Plan,
    pub(crate) slot: usize,
    /// The file being read, as the rows name it.
    pub(crate) file: &'a str,
    pub(crate) repository: &'a str,
    /// Where the lines not yet in a commit's ranges begin: (offset, line before it).
    pub(crate) range_from: (u64, u64),
    /// Which rows to keep: both, or one kind when lines are read again for a repair.
    pub(crate) want: Want,
    /// Whether commit points record read positions (not when lines are read again).
    pub(crate) stage: bool,
    /// The reason the reader was stopped.
    pub(crate) error: Option<SinkError>,
}

impl Sink<'_> {
    /// Records that the lines from `range_from` to `generation`'s offset go into the pending
    /// commit.
    pub(crate) fn close_range(&mut self, generation: &Generation) {
        let (start, start_line) = self.range_from;
        if generation.offset > start {
            self.run.pending.ranges.push(SourceRange {
                path: self.key.to_string(),
                generation: generation.clone(),
                start,
                end: generation.offset,
                start_line,
            });
        }
        self.range_from = (generation.offset, generation.line);
    }

    fn reject(&mut self, reject: &Reject, raw: &[u8], raw_len: u64, at: Location<'_>) {
        if self.want == Want::Events {
            return;
        }
        *self.run.report.rejects.entry(reject.reason).or_default() += 1;
        self.run
            .pending
            .rejects
            .append(reject, self.repository, raw, raw_len, at);
    }

    /// Decodes the lines gathered so far and stores their outcomes. Decoding and appending to
    /// the builders run on two threads; matching duplicates runs in between, in line order, so
    /// the first copy of an event is the one kept.
    pub(crate) fn flush(&mut self) {
        // After an error nothing more is kept: the ingest stops and the lines are read again.
        if self.run.lines.is_empty() || self.error.is_some() {
            return;
        }
        let lines = std::mem::take(&mut self.run.lines);
        let decoded = lines.decode(self.repository);
        // Whether each event is stored, decided before anything changes: if the store cannot
        // say, nothing of these lines is kept, and they are read again.
        let mut stored = vec![false; decoded.len()];
        if self.want != Want::Rejects {
            for (i, outcome) in decoded.iter().enumerate() {
                if let Ok(Some((_, id))) = outcome {
                    match self.committer.knows(id) {
                        Ok(known) => stored[i] = known,
                        Err(e) => {
                            self.error = Some(SinkError::Commit(e));
                            self.run.lines = lines.cleared();
                            return;
                        }
                    }
                }
            }
        }
        let mut keep = vec![false; decoded.len()];
        for (i, (l, outcome)) in lines.lines.iter().zip(&decoded).enumerate() {
            match outcome {
                Ok(Some(_)) if self.want == Want::Rejects => {}
                Ok(Some((_, id))) => {
                    if !stored[i] && self.run.pending.ids.insert(*id) {
                        keep[i] = true;
                        self.run.report.events += 1;
                    } else {
                        self.run.report.duplicates += 1;
                        self.run.pending.duplicates += 1;
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
        let [first, second] = &mut self.run.pending.events;
        if n < LineBatch::SPLIT_LINES {
            append(first, 0, n);
        } else {
            side_by_side(|| append(first, 0, n / 2), || append(second, n / 2, n));
        }
        drop(decoded);
        self.run.lines = lines.cleared();
    }
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
        let at = Location {
            file: self.file,
            line,
            offset,
        };
        self.reject(&reject, head, len, at);
    }

    fn wants_checkpoint(&self) -> bool {
        // Rejects read again for a repair land in one commit: they have no id to drop
        // repeats by, and a part that landed would hide the rest from the next open.
        self.want != Want::Rejects && self.run.full()
    }

    fn checkpoint(&mut self, at: ReadProgress) -> Result<(), SinkStop> {
        // The position covers every line before it: they go into this commit.
        self.flush();
        if self.error.is_some() {
            return Err(SinkStop);
        }
        self.close_range(&at.generation);
        if self.stage {
            self.plan.generations[self.slot] = Some(at.generation);
            self.run.stage(self.committer, self.key, self.plan);
        }
        if let Err(e) = self.run.commit(self.committer) {
            self.error = Some(e.into());
            return Err(SinkStop);
        }
        Ok(())
    }
}
