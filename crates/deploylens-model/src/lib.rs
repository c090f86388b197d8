//! The deployment event model: what a line of `deployment.jsonl` may say, how it is decoded and
//! validated, and the Arrow schemas every other part of deploylens reads and writes.
//!
//! One line goes through [`decode_line`] and comes out either as an [`Event`] (borrowing from the
//! line where it can) or as a [`Reject`] that says why, with a stable [`RejectReason`] code. The
//! batch builders in [`batch`] turn those into Arrow record batches for the store.

#![warn(missing_docs)]

pub mod batch;
mod decode;
mod event;
mod reject;
pub mod schema;
mod types;

pub use decode::{
    DEFAULT_MAX_LINE_BYTES, DecodeOptions, EARLIEST_TIMESTAMP_US, FIELDS, LineOrigin, MAX_CLOCK_SKEW_US,
    Presence, decode_line,
};
pub use event::{Event, IdHasher, IdSet, Lookup, StoredIds, event_id_hex, format_event_id};
pub use reject::{Reject, RejectReason, escape_raw};
pub use types::{DeployedBy, Environment, EventType, ParseEnumError, RepositorySource, Status};

/// Now, in microseconds since the Unix epoch (UTC): the clock of `ingested_at`, commits and
/// windows.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
