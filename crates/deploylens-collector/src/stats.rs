//! The collector's own figures, shared with the HTTP server (health, readiness, metrics).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use deploylens_model::RejectReason;

use crate::ingest::IngestReport;

/// Counters since the process started, and the state of the collector now.
#[derive(Debug, Default)]
pub struct CollectorStats {
    /// Source files known now, whether watched or polled.
    pub files_watched: AtomicU64,
    /// Lines read.
    pub lines_read: AtomicU64,
    /// Bytes read from the source files.
    pub bytes_read: AtomicU64,
    /// New events stored.
    pub events_stored: AtomicU64,
    /// Lines that repeated an event already stored.
    pub duplicates: AtomicU64,
    /// Commits that landed.
    pub commits: AtomicU64,
    /// Passes whose ingest failed with a store error (usually a commit).
    pub commit_errors: AtomicU64,
    /// Maintenance runs that merged small files.
    pub compactions: AtomicU64,
    /// Passes over the event files (after a change, a timer or a rescan).
    pub passes: AtomicU64,
    /// Unix time (seconds) of the end of the last pass that read every changed file.
    pub last_scan_unix: AtomicU64,
    /// Seconds from the newest append seen to its commit, as f64 bits.
    pub lag_seconds_bits: AtomicU64,
    /// False after a failed commit, until one succeeds.
    pub store_writable: AtomicBool,
    /// True when files are polled instead of watched.
    pub polling: AtomicBool,
    rejects: Mutex<BTreeMap<RejectReason, u64>>,
    /// Files that could not be read on their last try, each as "path: error".
    unreadable: Mutex<Vec<String>>,
}

impl CollectorStats {
    /// All counters at zero, and the store taken as writable until a commit fails.
    pub fn new() -> Self {
        CollectorStats {
            store_writable: AtomicBool::new(true),
            ..Default::default()
        }
    }

    /// Adds what one ingest pass did.
    pub fn record(&self, report: &IngestReport) {
        self.lines_read.fetch_add(report.lines, Ordering::Relaxed);
        self.bytes_read.fetch_add(report.bytes_read, Ordering::Relaxed);
        self.events_stored.fetch_add(report.events, Ordering::Relaxed);
        self.duplicates.fetch_add(report.duplicates, Ordering::Relaxed);
        self.commits.fetch_add(report.commits, Ordering::Relaxed);
        if let Ok(mut rejects) = self.rejects.lock() {
            for (reason, n) in &report.rejects {
                *rejects.entry(*reason).or_default() += n;
            }
        }
    }

    /// Rejected lines by reason since start.
    pub fn rejects(&self) -> BTreeMap<RejectReason, u64> {
        self.rejects.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The files that could not be read on their last try ("path: error").
    pub fn unreadable(&self) -> Vec<String> {
        self.unreadable.lock().map(|u| u.clone()).unwrap_or_default()
    }

    /// Replaces the list of files that could not be read on their last try.
    pub fn set_unreadable(&self, files: Vec<String>) {
        if let Ok(mut u) = self.unreadable.lock() {
            *u = files;
        }
    }

    /// Seconds from the newest append seen to its commit, as of the last pass that stored rows.
    pub fn lag_seconds(&self) -> f64 {
        f64::from_bits(self.lag_seconds_bits.load(Ordering::Relaxed))
    }

    /// Records the lag of the latest commit, in seconds.
    pub fn set_lag_seconds(&self, lag: f64) {
        self.lag_seconds_bits.store(lag.to_bits(), Ordering::Relaxed);
    }
}
