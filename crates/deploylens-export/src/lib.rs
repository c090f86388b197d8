//! Prometheus metrics, rendered from the canned queries of `queries/` (they define every
//! figure; this crate only reshapes their rows into metric families), plus the collector's own
//! figures, and an OpenMetrics file of history for backfilling Prometheus.
//!
//! The SQL runs in [`store_families`] when the store changes or a window moves, never while a
//! scrape waits: a scrape returns text rendered beforehand plus a few atomic counters.

mod family;
mod metrics;
mod openmetrics;
mod rows;

pub use family::{Family, encode};
pub use metrics::{WINDOWS, collector_families, commit_families, store_families, window_families};
pub use openmetrics::{BackfillOptions, write_openmetrics};
