//! Every store metric, declared once: its name, help, type, the canned query it comes from,
//! the columns that become its labels and its value. [`crate::render`] runs the queries and
//! reshapes their rows; nothing else lists the families, so none can be built and forgotten.
//!
//! Labels are bounded: repository, environment, event_type, status, reason, window,
//! quantile, le; never error text, versions or trace ids.

/// The Prometheus type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A cumulative count.
    Counter,
    /// A value that can go up and down.
    Gauge,
    /// Exact quantiles with their count and sum.
    Summary,
    /// Cumulative buckets with their count and sum.
    Histogram,
}

/// Where the value of each sample comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A numeric (or timestamp, as Unix seconds) column; rows where it is null give no sample.
    Column(&'static str),
    /// 1 when the text column equals the given text, else 0.
    Equals(&'static str, &'static str),
    /// Quantiles from columns, the count from a column and the sum as mean times count.
    Quantiles {
        /// (quantile, column) pairs, such as `(0.95, "p95_seconds")`.
        quantiles: &'static [(f64, &'static str)],
        /// The column holding the number of observations.
        count: &'static str,
        /// The column holding their mean.
        mean: &'static str,
    },
    /// Per-bucket counts in `count` for the upper bound in `le`, cumulated; the sum in `sum`.
    Buckets {
        /// The column holding each bucket's upper bound.
        le: &'static str,
        /// The column holding the observations in each bucket (not cumulated).
        count: &'static str,
        /// The column holding the sum of the observations.
        sum: &'static str,
    },
    /// Not from a query: a figure of the store snapshot.
    Store(StoreFigure),
}

/// Figures of the store snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFigure {
    /// Events in the store.
    Events,
    /// Commits (Parquet file pairs) in the store.
    Files,
    /// Bytes of Parquet in the store.
    SizeBytes,
}

/// Over which time the query runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// All history, re-rendered after every commit (cheap).
    AllAfterCommit,
    /// All history, re-rendered with the windowed families.
    All,
    /// Each configured window (`window` label), re-rendered on the metrics timer.
    EachWindow,
}

/// One metric family.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FamilySpec {
    /// The metric name, such as `deploylens_events_total`.
    pub name: &'static str,
    /// The help text.
    pub help: &'static str,
    /// The Prometheus type.
    pub kind: Kind,
    /// The canned query of `queries/` (empty for store figures).
    pub query: &'static str,
    /// Over which time the query runs, and when it is re-rendered.
    pub span: Span,
    /// Result columns that become labels, named as the columns are.
    pub labels: &'static [&'static str],
    /// Where each sample's value comes from.
    pub value: Value,
    /// A count: every repository and environment with a completed deployment in history gets a
    /// sample, 0 when the window holds none (a count of nothing is 0, not absent).
    pub zero_when_absent: bool,
}

/// The upper bounds of the duration histogram (the `le` values of `duration_histogram`).
pub const BUCKETS: &[f64] = &[
    10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0,
];

const REPO_ENV: &[&str] = &["repository", "environment"];

/// Every family rendered from the store.
pub const FAMILIES: &[FamilySpec] = &[
    FamilySpec {
        name: "deploylens_events_total",
        help: "Stored events by repository, environment, event type and status (query: event_counts).",
        kind: Kind::Counter,
        query: "event_counts",
        span: Span::AllAfterCommit,
        labels: &["repository", "environment", "event_type", "status"],
        value: Value::Column("events"),
        zero_when_absent: false,
    },
    FamilySpec {
        name: "deploylens_rejected_lines_total",
        help: "Stored rejected lines by reason (query: rejects_by_reason).",
        kind: Kind::Counter,
        query: "rejects_by_reason",
        span: Span::AllAfterCommit,
        labels: &["reason"],
        value: Value::Column("lines"),
        zero_when_absent: false,
    },
    FamilySpec {
        name: "deploylens_store_events",
        help: "Events in the store.",
        kind: Kind::Gauge,
        query: "",
        span: Span::AllAfterCommit,
        labels: &[],
        value: Value::Store(StoreFigure::Events),
        zero_when_absent: false,
    },
    FamilySpec {
        name: "deploylens_store_files",
        help: "Data files in the store's two tables (as of the published version).",
        kind: Kind::Gauge,
        query: "",
        span: Span::AllAfterCommit,
        labels: &[],
        value: Value::Store(StoreFigure::Files),
        zero_when_absent: false,
    },
    FamilySpec {
        name: "deploylens_store_size_bytes",
        help: "Bytes of Parquet in the store.",
        kind: Kind::Gauge,
        query: "",
        span: Span::AllAfterCommit,
        labels: &[],
        value: Value::Store(StoreFigure::SizeBytes),
        zero_when_absent: false,
    },
    FamilySpec {
        name: "deploylens_deployment_duration_seconds",
        help: "Durations of completed deployments (query: duration_histogram).",
        kind: Kind::Histogram,
        query: "duration_histogram",
        span: Span::All,
        labels: REPO_ENV,
        value: Value::Buckets {
            le: "le",
            count: "deployments",
            sum: "sum_seconds",
        },
        zero_when_absent: false,
    },
    FamilySpec {
        name: "deploylens_deployments",
        help: "Completed deployments in the window (query: success_rate).",
        kind: Kind::Gauge,
        query: "success_rate",
        span: Span::EachWindow,
        labels: REPO_ENV,
        value: Value::Column("deployments"),
        zero_when_absent: true,
    },
    FamilySpec {
        name: "deploylens_deployment_failures",
        help: "Failed deployments in the window (query: success_rate).",
        kind: Kind::Gauge,
        query: "success_rate",
        span: Span::EachWindow,
        labels: REPO_ENV,
        value: Value::Column("failures"),
        zero_when_absent: true,
    },
    FamilySpec {
        name: "deploylens_deployment_success_ratio",
        help: "Successful / completed deployments in the window, 0 to 1 (query: success_rate).",
        kind: Kind::Gauge,
        query: "success_rate",
        span: Span::EachWindow,
        labels: REPO_ENV,
        value: Value::Column("success_ratio"),
        zero_when_absent: false,
    },
    FamilySpec {
        name: "deploylens_deployment_failure_ratio",
        help: "Failed / completed deployments in the window, 0 to 1 (query: success_rate).",
        kind: Kind::Gauge,
        query: "success_rate",
        span: Span::EachWindow,
        labels: REPO_ENV,
        value: Value::Column("failure_ratio"),
        zero_when_absent: false,
    },
    FamilySpec {
        name: "deploylens_deployment_duration_quantile_seconds",
        help: "Exact p50, p95 and p99 of the durations of deployments completed in the window, with their count and sum (query: duration_percentiles).",
        kind: Kind::Summary,
        query: "duration_percentiles",
        span: Span::EachWindow,
        labels: REPO_ENV,
        value: Value::Quantiles {
            quantiles: &[(0.5, "p50_seconds"), (0.95, "p95_seconds"), (0.99, "p99_seconds")],
            count: "deployments",
            mean: "mean_seconds",
        },
        zero_when_absent: false,
    },
    FamilySpec {
        name: "deploylens_time_to_restore_median_seconds",
        help: "Median time from a failure streak's first failure to the next successful deployment or rollback, for streaks begun in the window (query: time_to_restore).",
        kind: Kind::Gauge,
        query: "time_to_restore",
        span: Span::EachWindow,
        labels: REPO_ENV,
        value: Value::Column("median_restore_seconds"),
        zero_when_absent: false,
    },
    FamilySpec {
        name: "deploylens_repeat_failure_ratio",
        help: "Failures repeating a fingerprint seen before in any repository / all failures with a fingerprint, in the window (query: repeat_ratio).",
        kind: Kind::Gauge,
        query: "repeat_ratio",
        span: Span::EachWindow,
        labels: &["repository"],
        value: Value::Column("repeat_ratio"),
        zero_when_absent: false,
    },
    FamilySpec {
        name: "deploylens_health_check_uptime_ratio",
        help: "Successful / all health checks in the window, 0 to 1 (query: uptime).",
        kind: Kind::Gauge,
        query: "uptime",
        span: Span::EachWindow,
        labels: REPO_ENV,
        value: Value::Column("uptime_ratio"),
        zero_when_absent: false,
    },
    FamilySpec {
        name: "deploylens_dora_deployments_per_day",
        help: "DORA deployment frequency: successful deployments per day of the window, each deployment counted once (query: dora).",
        kind: Kind::Gauge,
        query: "dora",
        span: Span::EachWindow,
        labels: REPO_ENV,
        value: Value::Column("deployments_per_day"),
        zero_when_absent: false,
    },
    FamilySpec {
        name: "deploylens_dora_lead_time_median_seconds",
        help: "DORA change lead time: median from commit to successful deployment, where events carry commit_timestamp; absent without one (query: dora).",
        kind: Kind::Gauge,
        query: "dora",
        span: Span::EachWindow,
        labels: REPO_ENV,
        value: Value::Column("lead_time_median_seconds"),
        zero_when_absent: false,
    },
    FamilySpec {
        name: "deploylens_dora_change_failure_rate",
        help: "DORA change failure rate: deployments with a failed attempt or undone by a rollback / deployments in the window, 0 to 1 (query: dora).",
        kind: Kind::Gauge,
        query: "dora",
        span: Span::EachWindow,
        labels: REPO_ENV,
        value: Value::Column("change_failure_rate"),
        zero_when_absent: false,
    },
    FamilySpec {
        name: "deploylens_dora_recovery_median_seconds",
        help: "DORA failed-deployment recovery time: median time to restore of the failure streaks begun in the window (query: dora).",
        kind: Kind::Gauge,
        query: "dora",
        span: Span::EachWindow,
        labels: REPO_ENV,
        value: Value::Column("recovery_median_seconds"),
        zero_when_absent: false,
    },
    FamilySpec {
        name: "deploylens_dora_rework_rate",
        help: "DORA deployment rework rate: rollbacks and deployments begun while failing / deployments and rollbacks in the window, 0 to 1 (query: dora).",
        kind: Kind::Gauge,
        query: "dora",
        span: Span::EachWindow,
        labels: REPO_ENV,
        value: Value::Column("rework_rate"),
        zero_when_absent: false,
    },
    FamilySpec {
        name: "deploylens_last_deployment_timestamp_seconds",
        help: "When the latest completed deployment finished, Unix seconds (query: last_deployment).",
        kind: Kind::Gauge,
        query: "last_deployment",
        span: Span::All,
        labels: REPO_ENV,
        value: Value::Column("last_deployment_at"),
        zero_when_absent: false,
    },
    FamilySpec {
        name: "deploylens_last_deployment_success",
        help: "1 if the latest completed deployment succeeded, 0 if it failed (query: last_deployment).",
        kind: Kind::Gauge,
        query: "last_deployment",
        span: Span::All,
        labels: REPO_ENV,
        value: Value::Equals("status", "success"),
        zero_when_absent: false,
    },
    FamilySpec {
        name: "deploylens_first_deployment_timestamp_seconds",
        help: "When the repository first deployed to the environment, Unix seconds (query: first_deployment).",
        kind: Kind::Gauge,
        query: "first_deployment",
        span: Span::All,
        labels: REPO_ENV,
        value: Value::Column("first_deployment_at"),
        zero_when_absent: false,
    },
];

/// The query whose rows name every repository and environment that has completed a
/// deployment: the label sets a zero count is given for.
pub const KNOWN_PAIRS_QUERY: &str = "last_deployment";

/// The families of the store metrics, with a name (for tests and docs).
pub fn family(name: &str) -> Option<&'static FamilySpec> {
    FAMILIES.iter().find(|f| f.name == name)
}
