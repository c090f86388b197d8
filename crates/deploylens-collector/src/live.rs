//! Keeping the store current: watch the event files, read what was appended, commit in
//! batches, compact small commits, find new repositories.
//!
//! A watch event is only a hint to look at a file: what is read is decided by the file's
//! identity, size and the committed offset (see [`crate::read`]), so a missed, repeated or
//! spurious event changes nothing. The loop also stats every known file on a timer when
//! polling (by flag, or when watches cannot be set), and re-walks the roots on a timer to find
//! new files. Files are opened only while being read: an idle file holds no handle.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use deploylens_store::{StoreError, StoreSnapshot};

use crate::discover::{DiscoveryOptions, SourceFile, discover};
use crate::ingest::{IngestReport, Ingestor};
use crate::stats::CollectorStats;

/// How the live loop paces itself.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Stat files on a timer instead of watching them.
    pub poll: bool,
    /// How often files are stat-ed when polling.
    pub poll_interval: Duration,
    /// How often the roots are walked again for new files.
    pub rescan_interval: Duration,
    /// After a hint, wait this long for more before reading: appends arrive in bursts, and one
    /// commit per burst keeps the number of files down.
    pub batch_window: Duration,
    /// Commits with fewer events than this are "small"...
    pub compact_small_rows: u64,
    /// ...and are merged into one once there are more than this many.
    pub compact_max_small: usize,
    /// How long replaced commits stay on disk for queries that already listed them.
    pub gc_grace: Duration,
    /// How often the table is reloaded for other collectors' commits (and the lease renewed).
    pub follow_interval: Duration,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            poll: false,
            poll_interval: Duration::from_millis(500),
            rescan_interval: Duration::from_secs(10),
            batch_window: Duration::from_millis(150),
            compact_small_rows: 50_000,
            compact_max_small: 16,
            gc_grace: Duration::from_secs(120),
            follow_interval: Duration::from_secs(2),
        }
    }
}

/// What the file system said about a file when it was last read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

fn seen(path: &Path) -> Option<Seen> {
    let m = fs::metadata(path).ok()?;
    Some(Seen {
        dev: m.dev(),
        ino: m.ino(),
        size: m.len(),
        mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
    })
}

/// The live collector: an [`Ingestor`] plus the set of files, the watcher and the timers.
pub struct Collector {
    ingestor: Ingestor,
    roots: Vec<PathBuf>,
    discovery: DiscoveryOptions,
    opts: LiveOptions,
    files: BTreeMap<PathBuf, SourceFile>,
    seen: HashMap<PathBuf, Seen>,
    stats: Arc<CollectorStats>,
    watcher: Option<RecommendedWatcher>,
    watched_dirs: HashSet<PathBuf>,
    hints: Receiver<notify::Result<notify::Event>>,
    hint_tx: mpsc::Sender<notify::Result<notify::Event>>,
    /// Source paths that could not be read on the last pass, and why: retried on a timer.
    unreadable: BTreeMap<PathBuf, String>,
    /// Source paths with a rotated file still being written beside them: looked at again on
    /// the polling period.
    revisit: HashSet<PathBuf>,
    /// When replaced files were last looked for (a listing of the log's tombstones).
    last_gc: Option<Instant>,
}

impl Collector {
    /// A collector of the files under `roots`. Nothing is walked, watched or read until
    /// [`Collector::rediscover`] or [`Collector::run`].
    pub fn new(
        ingestor: Ingestor,
        roots: Vec<PathBuf>,
        discovery: DiscoveryOptions,
        opts: LiveOptions,
        stats: Arc<CollectorStats>,
    ) -> Collector {
        let (hint_tx, hints) = mpsc::channel();
        stats.polling.store(opts.poll, Ordering::Relaxed);
        Collector {
            ingestor,
            roots,
            discovery,
            opts,
            files: BTreeMap::new(),
            seen: HashMap::new(),
            stats,
            watcher: None,
            watched_dirs: HashSet::new(),
            hints,
            hint_tx,
            unreadable: BTreeMap::new(),
            revisit: HashSet::new(),
            last_gc: None,
        }
    }

    /// The store as of this collector's last commit or reload.
    pub fn snapshot(&self) -> &StoreSnapshot {
        self.ingestor.store().snapshot()
    }

    /// Walks the roots; new files are added (and watched). Returns how many were new.
    pub fn rediscover(&mut self) -> usize {
        let mut found = discover(&self.roots, &self.discovery);
        crate::discover::add_known(&mut found, &self.roots, self.ingestor.known_sources());
        for e in &found.errors {
            tracing::warn!("{e}");
        }
        let mut new = 0;
        for f in found.files {
            if !self.files.contains_key(&f.path) {
                new += 1;
                self.watch_dir_of(&f.path);
                self.files.insert(f.path.clone(), f);
            }
        }
        self.stats
            .files_watched
            .store(self.files.len() as u64, Ordering::Relaxed);
        new
    }

    fn ensure_watcher(&mut self) {
        if self.opts.poll || self.watcher.is_some() {
            return;
        }
        let tx = self.hint_tx.clone();
        match notify::recommended_watcher(move |ev| {
            let _ = tx.send(ev);
        }) {
            Ok(w) => self.watcher = Some(w),
            Err(e) => self.fall_back_to_polling(&format!("cannot start the file watcher: {e}")),
        }
    }

    /// Watches the folder holding `path` (not recursively: one watch per folder of event files,
    /// so vendored trees cost nothing and the inotify limit is reached late).
    fn watch_dir_of(&mut self, path: &Path) {
        self.ensure_watcher();
        let Some(dir) = path.parent() else { return };
        if self.watched_dirs.contains(dir) {
            return;
        }
        let Some(w) = self.watcher.as_mut() else { return };
        match w.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                self.watched_dirs.insert(dir.to_path_buf());
            }
            Err(e) => self.fall_back_to_polling(&format!("cannot watch {}: {e}", dir.display())),
        }
    }

    fn fall_back_to_polling(&mut self, why: &str) {
        if !self.opts.poll {
            tracing::warn!("{why}; polling files every {:?} instead", self.opts.poll_interval);
        }
        self.opts.poll = true;
        self.watcher = None;
        self.watched_dirs.clear();
        self.stats.polling.store(true, Ordering::Relaxed);
    }

    /// Reads the given files (all known files when `None`) if they changed since they were last
    /// read, and commits. Returns what was read.
    pub fn pass(&mut self, only: Option<&HashSet<PathBuf>>) -> Result<IngestReport, StoreError> {
        self.stats.passes.fetch_add(1, Ordering::Relaxed);
        let mut changed = Vec::new();
        let mut newest_mtime_ns = 0i128;
        let mut observed = Vec::new();
        for (path, file) in &self.files {
            if only.is_some_and(|set| !set.contains(path)) {
                continue;
            }
            let now = seen(path);
            let retry = self.unreadable.contains_key(path) || self.revisit.contains(path);
            if !retry && now.is_some() && now == self.seen.get(path).copied() {
                continue;
            }
            if let Some(s) = now {
                newest_mtime_ns = newest_mtime_ns.max(s.mtime_ns);
            }
            observed.push((path.clone(), now));
            changed.push(file.clone());
        }
        if changed.is_empty() {
            self.mark_scanned();
            return Ok(IngestReport::default());
        }
        let result = self.ingestor.ingest(&changed, &mut |_| {});
        match &result {
            Ok(report) => {
                self.stats.record(report);
                self.stats.store_writable.store(true, Ordering::Relaxed);
                let failed: BTreeMap<PathBuf, String> = report
                    .unreadable
                    .iter()
                    .map(|u| (u.source.clone(), u.to_string()))
                    .collect();
                for p in &report.revisit {
                    self.revisit.insert(p.clone());
                }
                for (path, s) in observed {
                    if !report.revisit.contains(&path) {
                        self.revisit.remove(&path);
                    }
                    // A file that could not be read is not "seen": every pass tries it again.
                    if failed.contains_key(&path) || report.revisit.contains(&path) {
                        self.seen.remove(&path);
                        continue;
                    }
                    match s {
                        Some(s) => self.seen.insert(path, s),
                        None => self.seen.remove(&path),
                    };
                }
                self.note_unreadable(only, failed);
                if report.events + report.reject_total() > 0 && newest_mtime_ns > 0 {
                    let now_ns = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos() as i128);
                    self.stats
                        .set_lag_seconds(((now_ns - newest_mtime_ns).max(0)) as f64 / 1e9);
                }
                self.mark_scanned();
            }
            Err(e) => {
                self.stats.commit_errors.fetch_add(1, Ordering::Relaxed);
                self.stats.store_writable.store(false, Ordering::Relaxed);
                tracing::error!("commit failed, will retry from the last committed position: {e}");
            }
        }
        result
    }

    /// Keeps the set of unreadable files current: a warning when a file becomes unreadable,
    /// a note when it can be read again, and the figures for `/metrics` and `/readyz`.
    fn note_unreadable(&mut self, only: Option<&HashSet<PathBuf>>, failed: BTreeMap<PathBuf, String>) {
        let looked_at = |p: &PathBuf| only.is_none_or(|set| set.contains(p));
        let recovered: Vec<PathBuf> = self
            .unreadable
            .keys()
            .filter(|p| looked_at(p) && !failed.contains_key(*p))
            .cloned()
            .collect();
        for p in recovered {
            self.unreadable.remove(&p);
            tracing::info!(path = %p.display(), "readable again");
        }
        for (p, why) in failed {
            if self.unreadable.get(&p) != Some(&why) {
                tracing::warn!(
                    "cannot read {why}; trying again every {:?}",
                    self.opts.poll_interval
                );
            }
            self.unreadable.insert(p, why);
        }
        self.stats
            .set_unreadable(self.unreadable.values().cloned().collect());
    }

    fn mark_scanned(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.stats.last_scan_unix.store(now, Ordering::Relaxed);
    }

    /// Merges small commits and deletes replaced ones past their grace period.
    pub fn maintain(&mut self) -> Result<bool, StoreError> {
        let store = self.ingestor.store_mut();
        let compacted = store.compact(self.opts.compact_small_rows, self.opts.compact_max_small)?;
        if compacted {
            self.stats.compactions.fetch_add(1, Ordering::Relaxed);
        }
        self.collect_garbage()?;
        Ok(compacted)
    }

    /// Deletes replaced files past their grace period, at most every quarter of it (within
    /// 1 s to 60 s): finding them lists the log's tombstones.
    fn collect_garbage(&mut self) -> Result<(), StoreError> {
        let every = (self.opts.gc_grace / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
        if self.last_gc.is_some_and(|t| t.elapsed() < every) {
            return Ok(());
        }
        self.last_gc = Some(Instant::now());
        self.ingestor.store_mut().collect_garbage(self.opts.gc_grace)?;
        Ok(())
    }

    /// Runs until `stop` is set: the initial scan, then hints, polls and rescans. After each
    /// pass that committed, `on_commit` gets the new snapshot; after the initial scan it gets
    /// the snapshot with `true`, so that the consumer can declare itself ready once it serves
    /// that snapshot. On stop, a last pass flushes what was appended meanwhile.
    ///
    /// It returns early with [`StoreError::Fenced`] when another process committed with this
    /// collector's id: writing on would interleave two read states.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        on_commit: &mut dyn FnMut(&StoreSnapshot, bool),
    ) -> Result<(), StoreError> {
        self.rediscover();
        self.pass_and_publish(None, on_commit)?;
        on_commit(self.snapshot(), true);
        let mut last_rescan = Instant::now();
        let mut last_poll = Instant::now();
        let mut last_follow = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            if last_follow.elapsed() >= self.opts.follow_interval {
                last_follow = Instant::now();
                self.follow(on_commit)?;
            }
            // Short waits: the stop flag and the timers are checked at least four times a second.
            let wait = self.opts.poll_interval.min(Duration::from_millis(250));
            let mut hinted: HashSet<PathBuf> = HashSet::new();
            let mut rescan = false;
            match self.hints.recv_timeout(wait) {
                Ok(first) => {
                    self.take_hint(first, &mut hinted, &mut rescan);
                    // Gather the rest of the burst.
                    let until = Instant::now() + self.opts.batch_window;
                    while let Some(left) = until.checked_duration_since(Instant::now()) {
                        match self.hints.recv_timeout(left) {
                            Ok(ev) => self.take_hint(ev, &mut hinted, &mut rescan),
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {}
            }
            if rescan || last_rescan.elapsed() >= self.opts.rescan_interval {
                last_rescan = Instant::now();
                self.rediscover();
                self.pass_and_publish(None, on_commit)?;
                // Replaced commits are deleted after their grace period even when idle.
                if let Err(e) = self.collect_garbage() {
                    tracing::warn!("cannot remove replaced commits yet: {e}");
                }
            } else if self.opts.poll && last_poll.elapsed() >= self.opts.poll_interval {
                last_poll = Instant::now();
                self.pass_and_publish(None, on_commit)?;
            } else if !hinted.is_empty() {
                self.pass_and_publish(Some(&hinted), on_commit)?;
            } else if (!self.unreadable.is_empty() || !self.revisit.is_empty())
                && last_poll.elapsed() >= self.opts.poll_interval
            {
                // Unreadable files, and paths with a rotated file still being written beside
                // them, are tried again on the polling period, watched or not.
                last_poll = Instant::now();
                let mut retry: HashSet<PathBuf> = self.unreadable.keys().cloned().collect();
                retry.extend(self.revisit.iter().cloned());
                self.pass_and_publish(Some(&retry), on_commit)?;
            }
        }
        // Flush: whatever was appended before the stop is committed.
        self.rediscover();
        self.pass_and_publish(None, on_commit)
    }

    /// Renews the lease and reloads the table; publishes when other collectors committed.
    fn follow(&mut self, on_commit: &mut dyn FnMut(&StoreSnapshot, bool)) -> Result<(), StoreError> {
        let store = self.ingestor.store_mut();
        store.heartbeat();
        let before = store.snapshot().clone();
        match store.refresh() {
            Ok(()) => {
                if !before.same_commits(store.snapshot()) {
                    on_commit(store.snapshot(), false);
                }
                Ok(())
            }
            Err(e @ StoreError::Fenced { .. }) => Err(e),
            Err(e) => {
                tracing::warn!("cannot reload the table for other collectors' commits: {e}");
                Ok(())
            }
        }
    }

    fn take_hint(
        &mut self,
        ev: notify::Result<notify::Event>,
        hinted: &mut HashSet<PathBuf>,
        rescan: &mut bool,
    ) {
        match ev {
            // Opening a file or folder says nothing new, and our own reads open the ones we
            // watch: following those events would make every pass cause the next one.
            Ok(ev) if is_read_only(&ev.kind) => {}
            Ok(ev) => {
                if ev.need_rescan() {
                    *rescan = true;
                }
                for p in ev.paths {
                    if self.files.contains_key(&p) {
                        hinted.insert(p);
                    } else {
                        // A new or renamed file in a watched folder: look again.
                        *rescan = true;
                    }
                }
            }
            Err(e) => {
                tracing::warn!("file watcher error: {e}");
                if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
                    self.fall_back_to_polling(
                        "inotify watch limit reached (raise fs.inotify.max_user_watches)",
                    );
                }
                *rescan = true;
            }
        }
    }

    fn pass_and_publish(
        &mut self,
        only: Option<&HashSet<PathBuf>>,
        on_commit: &mut dyn FnMut(&StoreSnapshot, bool),
    ) -> Result<(), StoreError> {
        match self.pass(only) {
            Ok(report) if report.commits > 0 => {
                if let Err(e) = self.maintain() {
                    tracing::error!("compaction failed (the store stays consistent): {e}");
                }
                on_commit(self.snapshot(), false);
            }
            Ok(_) => {}
            Err(e @ StoreError::Fenced { .. }) => return Err(e),
            Err(_) => {
                // Reported in pass(); back off a little before the next try.
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        Ok(())
    }
}

/// Events of reads (open, close without writing), which cannot reveal new lines.
fn is_read_only(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    matches!(kind, notify::EventKind::Access(access) if !matches!(access, AccessKind::Close(AccessMode::Write)))
}
