//! Collecting deployment events: find the `deployment.jsonl` files under the roots, read each
//! from where the store's last commit left it, and commit what was read.
//!
//! - [`discover`] walks the roots (walkdir) for the files.
//! - [`read`] plans where to resume each file (following rotation and truncation by file
//!   identity and a hash of the bytes before the committed offset) and splits it into lines.
//! - [`ingest`] decodes the lines, drops repeated events, and commits events, rejects and the
//!   new read positions to the store together.

#![warn(missing_docs)]

pub mod discover;
pub mod ingest;
pub mod live;
pub mod read;
pub mod stats;

pub use discover::{DEFAULT_PATTERN, Discovery, DiscoveryOptions, SourceFile, discover};
pub use ingest::{IngestOptions, IngestReport, Ingestor};
pub use live::{Collector, LiveOptions};
pub use stats::CollectorStats;
