//! The collector's own figures, shared with the HTTP server (health, readiness, metrics).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use deploylens_model::RejectReason;

use crate::ingest::IngestReport;

/// Counters since the process started, and the state of the collector now.
#[derive(Debug, Default)]
pub struct CollectorStats {
    pub files_watched: AtomicU64,
    pub lines_read: AtomicU64,
    pub bytes_read: AtomicU64,
    pub events_stored: AtomicU64,
    pub duplicates: AtomicU64,
    pub commits: AtomicU64,
    pub commit_errors: AtomicU64,
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

    pub fn set_unreadable(&self, files: Vec<String>) {
        if let Ok(mut u) = self.unreadable.lock() {
            *u = files;
        }
    }

    pub fn lag_seconds(&self) -> f64 {
        f64::from_bits(self.lag_seconds_bits.load(Ordering::Relaxed))
    }

    pub fn set_lag_seconds(&self, lag: f64) {
        self.lag_seconds_bits.store(lag.to_bits(), Ordering::Relaxed);
    }
}
