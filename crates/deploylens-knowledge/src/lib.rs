//! "Has anyone seen this error before, and what fixed it?"
//!
//! [`Index`] holds every past failure with an error message (the `past_failures` query). A
//! search normalizes the question with the same fingerprinting as ingest, then ranks:
//!
//! 1. failures with the **same fingerprint** (the same failure with other numbers, hosts,
//!    paths...) first;
//! 2. then failures whose templates share words with the question, by **BM25** over template
//!    tokens, so a reworded error still finds its kin;
//! 3. within those, failures with a recorded **fix** and **recent** ones are preferred.
//!
//! Results are grouped by (fingerprint, fix): ten copies of one fix are one answer, shown with
//! its most recent occurrence (with the file, line and event id it came from) and how often
//! it happened.

#![warn(missing_docs)]

mod index;
mod terms;

pub use index::{Hit, Index, PastFailure, SearchOptions, SourceRef};
