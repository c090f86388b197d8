//! Prometheus metrics, rendered from the canned queries of `queries/` (they define every
//! figure; this crate only reshapes their rows into metric families), plus the collector's own
//! figures, and an OpenMetrics file of history for backfilling Prometheus.
//!
//! - [`table`] declares every store family once: name, help, query, label columns, value.
//! - [`render`] runs those queries when the store changes or a window moves, never while a
//!   scrape waits: a scrape returns text rendered beforehand plus a few atomic counters
//!   ([`collector_families`]).
//!
//! ```no_run
//! # async fn f(engine: &deploylens_query::Engine) -> Result<(), deploylens_export::RenderError> {
//! use deploylens_export::{Part, RenderOptions, encode, render};
//! let now = deploylens_query::now_us();
//! let rendered = render(engine, now, Part::Windowed, &RenderOptions::default()).await?;
//! print!("{}", encode(rendered.families));
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod family;
mod openmetrics;
mod process;
pub mod render;
mod rows;
pub mod table;

pub use family::{Family, encode};
pub use openmetrics::{BackfillOptions, write_openmetrics};
pub use process::{ServerFigures, WINDOWS, collector_families};
pub use render::{
    DEFAULT_MAX_LABEL_SETS, Part, RenderError, RenderOptions, Rendered, dropped_family, render,
};
pub use table::{FAMILIES, FamilySpec};
