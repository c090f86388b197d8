//! SQL over the store, with DataFusion.
//!
//! [`Engine`] opens a snapshot of the data directory as the tables `events` and `rejects`,
//! creates the views of `queries/views/` (`deployments`, ...), registers the exact
//! `percentile_cont` and the `fingerprint` / `error_template` functions, and runs the canned
//! queries of `queries/*.sql` with their window parameters. Ad-hoc SQL is read-only. Functions
//! people know from DuckDB and Postgres that DataFusion lacks (`epoch`, `date_diff`, `strftime`,
//! `regexp_extract`, `arg_max`...) are registered too, and forms of theirs DataFusion does not
//! plan (`ORDER BY ALL`, `PIVOT`, a lateral `unnest`...) are rewritten first ([`dialect`]).

#![warn(missing_docs)]

mod bounded;
mod canned;
mod compat;
pub mod dialect;
pub mod encode;
mod engine;
mod functions;
pub mod guard;
mod knowledge;
mod percentile;
mod view;
mod window;

pub use bounded::bound_functions;
pub use canned::{CannedQuery, canned_queries, canned_query};
pub use engine::{Engine, EngineOptions, FollowingEngine, QueryError, Scope, bind_window};
pub use guard::{AdhocResult, Described, SqlLimits, SqlRunner};
pub use knowledge::{export_knowledge, load_index};
pub use percentile::{exact_percentile, percentile_cont_udaf};
pub use view::MaterializedView;
pub use window::{
    ALL_SECONDS, Granularity, MAX_PERIODS, Window, WindowError, now_us, parse_timestamp, parse_window,
};

/// Re-exported so that callers format and convert results with the same Arrow.
pub use datafusion::arrow;
