//! Rendering the families of [`crate::table`] from the canned queries: each query runs once per
//! window, its rows become samples, and each family keeps at most a configured number of label
//! sets (the most active repositories first), counting what it drops.

use std::collections::{BTreeMap, HashMap};

use arrow::array::RecordBatch;
use deploylens_query::{Engine, QueryError, Window, canned_query};
use deploylens_store::StoreSnapshot;

use crate::family::Family;
use crate::rows::Rows;
use crate::table::{BUCKETS, FAMILIES, FamilySpec, KNOWN_PAIRS_QUERY, Kind, Span, StoreFigure, Value};

/// How the store metrics are rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOptions {
    /// The windows of the windowed families: (label, seconds).
    pub windows: Vec<(String, i64)>,
    /// Most label sets one family exports; the rest are dropped and counted.
    pub max_label_sets: usize,
}

/// The default cap on label sets per family: 1,000 repositories in 3 environments and 3
/// windows fit.
pub const DEFAULT_MAX_LABEL_SETS: usize = 10_000;

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            windows: crate::WINDOWS.iter().map(|(l, s)| (l.to_string(), *s)).collect(),
            max_label_sets: DEFAULT_MAX_LABEL_SETS,
        }
    }
}

/// Which families to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The cheap families that change with every commit.
    AfterCommit,
    /// The windowed families and the other all-history ones.
    Windowed,
}

/// Families and what their caps dropped.
#[derive(Default)]
pub struct Rendered {
    /// The rendered families, with their samples.
    pub families: Vec<Family>,
    /// Label sets left out of each family by the cap, in this render.
    pub dropped: BTreeMap<&'static str, u64>,
}

/// Why rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A query failed to plan or run.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// A query's result lacks a column a family reads.
    #[error("metric {family}: query {query} has no column {column}")]
    MissingColumn {
        /// The metric family.
        family: &'static str,
        /// The canned query it reads.
        query: &'static str,
        /// The column that is missing.
        column: &'static str,
    },
    /// A family names a canned query that does not exist.
    #[error("metric {family}: no canned query named {query}")]
    UnknownQuery {
        /// The metric family.
        family: &'static str,
        /// The query name it gives.
        query: &'static str,
    },
}

/// The query results of one render, each query and window run once.
struct Results<'e> {
    engine: &'e Engine,
    now_us: i64,
    cache: HashMap<(&'static str, i64), Vec<RecordBatch>>,
}

impl Results<'_> {
    async fn get(
        &mut self,
        spec: &FamilySpec,
        query: &'static str,
        seconds: i64,
    ) -> Result<&[RecordBatch], RenderError> {
        if !self.cache.contains_key(&(query, seconds)) {
            let canned = canned_query(query).ok_or(RenderError::UnknownQuery {
                family: spec.name,
                query,
            })?;
            let df = self
                .engine
                .canned(&canned, Window::ending_at(self.now_us, seconds))
                .await?;
            let schema = df.schema().clone();
            for column in needed_columns(spec) {
                if schema.field_with_unqualified_name(column).is_err() {
                    return Err(RenderError::MissingColumn {
                        family: spec.name,
                        query,
                        column,
                    });
                }
            }
            let batches = df.collect().await.map_err(QueryError::from)?;
            self.cache.insert((query, seconds), batches);
        }
        Ok(self
            .cache
            .get(&(query, seconds))
            .map(Vec::as_slice)
            .unwrap_or(&[]))
    }
}

/// The columns a family reads.
pub fn needed_columns(spec: &FamilySpec) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = spec.labels.to_vec();
    match spec.value {
        Value::Column(c) | Value::Equals(c, _) => out.push(c),
        Value::Quantiles {
            quantiles,
            count,
            mean,
        } => {
            out.extend(quantiles.iter().map(|(_, c)| *c));
            out.extend([count, mean]);
        }
        Value::Buckets { le, count, sum } => out.extend([le, count, sum]),
        Value::Store(_) => {}
    }
    out
}

fn wanted(spec: &FamilySpec, part: Part) -> bool {
    match part {
        Part::AfterCommit => spec.span == Span::AllAfterCommit,
        Part::Windowed => spec.span != Span::AllAfterCommit,
    }
}

/// Renders one part of the store families from `engine`'s snapshot, for windows ending at
/// `now_us`.
pub async fn render(
    engine: &Engine,
    now_us: i64,
    part: Part,
    opts: &RenderOptions,
) -> Result<Rendered, RenderError> {
    let mut results = Results {
        engine,
        now_us,
        cache: HashMap::new(),
    };
    let all = Window::all(now_us);
    let all_seconds = (all.end_us - all.start_us) / 1_000_000;
    let rank = repository_rank(&mut results, all_seconds).await?;
    let mut out = Rendered::default();
    for spec in FAMILIES.iter().filter(|s| wanted(s, part)) {
        let mut samples = Samples::default();
        match spec.span {
            Span::EachWindow => {
                for (label, seconds) in &opts.windows {
                    let batches = results.get(spec, spec.query, *seconds).await?.to_vec();
                    samples.add_rows(spec, &batches, Some(label));
                    if spec.zero_when_absent {
                        let known = results
                            .get(&KNOWN_PAIRS, KNOWN_PAIRS_QUERY, all_seconds)
                            .await?
                            .to_vec();
                        samples.fill_zeros(&known, label);
                    }
                }
            }
            Span::All | Span::AllAfterCommit => match spec.value {
                Value::Store(figure) => {
                    samples.add_value(Vec::new(), store_figure(engine.snapshot(), figure))
                }
                _ => {
                    let batches = results.get(spec, spec.query, all_seconds).await?.to_vec();
                    samples.add_rows(spec, &batches, None);
                }
            },
        }
        let (family, dropped) = samples.into_family(spec, &rank, opts.max_label_sets);
        out.dropped.insert(spec.name, dropped);
        out.families.push(family);
    }
    Ok(out)
}

/// The pairs that get a zero count: read from `last_deployment`.
const KNOWN_PAIRS: FamilySpec = FamilySpec {
    name: "(repositories and environments with a completed deployment)",
    help: "",
    kind: Kind::Gauge,
    query: KNOWN_PAIRS_QUERY,
    span: Span::All,
    labels: &["repository", "environment"],
    value: Value::Column("last_deployment_at"),
    zero_when_absent: false,
};

const EVENT_COUNTS: FamilySpec = FamilySpec {
    name: "(repository activity)",
    help: "",
    kind: Kind::Gauge,
    query: "event_counts",
    span: Span::All,
    labels: &["repository"],
    value: Value::Column("events"),
    zero_when_absent: false,
};

/// Repositories by stored events, most first: when a family has more label sets than its cap,
/// those of the most active repositories are kept.
async fn repository_rank(
    results: &mut Results<'_>,
    all_seconds: i64,
) -> Result<HashMap<String, usize>, RenderError> {
    let batches = results.get(&EVENT_COUNTS, "event_counts", all_seconds).await?;
    let mut events: HashMap<String, f64> = HashMap::new();
    for r in Rows::new(batches).iter() {
        if let (Some(repo), Some(n)) = (r.str("repository"), r.f64("events")) {
            *events.entry(repo).or_default() += n;
        }
    }
    let mut ordered: Vec<(String, f64)> = events.into_iter().collect();
    ordered.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(ordered
        .into_iter()
        .enumerate()
        .map(|(i, (r, _))| (r, i))
        .collect())
}

fn store_figure(snapshot: &StoreSnapshot, figure: StoreFigure) -> f64 {
    match figure {
        StoreFigure::Events => snapshot.event_count() as f64,
        StoreFigure::Files => snapshot.file_count() as f64,
        StoreFigure::SizeBytes => snapshot.size_bytes() as f64,
    }
}

/// One sample's value.
enum Sample {
    Value(f64),
    Summary {
        quantiles: Vec<(f64, f64)>,
        count: u64,
        sum: f64,
    },
    Histogram {
        counts: Vec<u64>,
        count: u64,
        sum: f64,
    },
}

/// The samples of one family by label set; repeated label sets are summed.
#[derive(Default)]
struct Samples {
    by_labels: BTreeMap<Vec<(&'static str, String)>, Sample>,
}

impl Samples {
    fn add_value(&mut self, labels: Vec<(&'static str, String)>, v: f64) {
        if let Sample::Value(x) = self.by_labels.entry(labels).or_insert(Sample::Value(0.0)) {
            *x += v;
        }
    }

    fn add_rows(&mut self, spec: &FamilySpec, batches: &[RecordBatch], window: Option<&str>) {
        for r in Rows::new(batches).iter() {
            let mut labels = Vec::with_capacity(spec.labels.len() + 1);
            let mut complete = true;
            for column in spec.labels {
                match r.str(column) {
                    Some(v) => labels.push((*column, v)),
                    None => complete = false,
                }
            }
            if !complete {
                continue;
            }
            if let Some(w) = window {
                labels.push(("window", w.to_string()));
            }
            match spec.value {
                Value::Column(c) => {
                    if let Some(v) = r.f64(c) {
                        self.add_value(labels, v);
                    }
                }
                Value::Equals(c, text) => {
                    let v = if r.str(c).as_deref() == Some(text) {
                        1.0
                    } else {
                        0.0
                    };
                    self.add_value(labels, v);
                }
                Value::Quantiles {
                    quantiles,
                    count,
                    mean,
                } => {
                    let qs: Vec<(f64, f64)> = quantiles
                        .iter()
                        .filter_map(|(q, c)| r.f64(c).map(|v| (*q, v)))
                        .collect();
                    let n = r.f64(count).unwrap_or(0.0);
                    let sum = r.f64(mean).unwrap_or(0.0) * n;
                    self.by_labels.insert(
                        labels,
                        Sample::Summary {
                            quantiles: qs,
                            count: n as u64,
                            sum,
                        },
                    );
                }
                Value::Buckets { le, count, sum } => {
                    let (Some(bound), Some(n)) = (r.f64(le), r.f64(count)) else {
                        continue;
                    };
                    let entry = self.by_labels.entry(labels).or_insert_with(|| Sample::Histogram {
                        counts: vec![0; BUCKETS.len()],
                        count: 0,
                        sum: 0.0,
                    });
                    if let Sample::Histogram {
                        counts,
                        count,
                        sum: total,
                    } = entry
                    {
                        if let Some(i) = BUCKETS.iter().position(|b| *b == bound) {
                            counts[i] += n as u64;
                        }
                        *count += n as u64;
                        *total += r.f64(sum).unwrap_or(0.0);
                    }
                }
                Value::Store(_) => {}
            }
        }
    }

    /// A zero for every known repository and environment the window's rows left out.
    fn fill_zeros(&mut self, known: &[RecordBatch], window: &str) {
        for r in Rows::new(known).iter() {
            if let (Some(repo), Some(env)) = (r.str("repository"), r.str("environment")) {
                let labels = vec![
                    ("repository", repo),
                    ("environment", env),
                    ("window", window.to_string()),
                ];
                self.by_labels.entry(labels).or_insert(Sample::Value(0.0));
            }
        }
    }

    /// The family, keeping at most `cap` label sets (the most active repositories first), and
    /// how many it dropped.
    fn into_family(self, spec: &FamilySpec, rank: &HashMap<String, usize>, cap: usize) -> (Family, u64) {
        let mut family = match spec.kind {
            Kind::Counter => Family::counter(spec.name, spec.help),
            Kind::Gauge => Family::gauge(spec.name, spec.help),
            Kind::Summary => Family::summary(spec.name, spec.help),
            Kind::Histogram => Family::histogram(spec.name, spec.help),
        };
        let mut entries: Vec<(Vec<(&'static str, String)>, Sample)> = self.by_labels.into_iter().collect();
        let dropped = entries.len().saturating_sub(cap) as u64;
        if dropped > 0 {
            let rank_of = |labels: &[(&str, String)]| {
                labels
                    .iter()
                    .find(|(k, _)| *k == "repository")
                    .map_or(0, |(_, v)| rank.get(v).copied().unwrap_or(usize::MAX))
            };
            entries.sort_by(|a, b| rank_of(&a.0).cmp(&rank_of(&b.0)).then_with(|| a.0.cmp(&b.0)));
            entries.truncate(cap);
        }
        for (labels, sample) in entries {
            let pairs: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            match sample {
                Sample::Value(v) => family.add(&pairs, v),
                Sample::Summary {
                    quantiles,
                    count,
                    sum,
                } => family.add_summary(&pairs, &quantiles, count, sum),
                Sample::Histogram { counts, count, sum } => {
                    let mut cumulative = 0;
                    let buckets: Vec<(f64, u64)> = BUCKETS
                        .iter()
                        .zip(counts)
                        .map(|(le, n)| {
                            cumulative += n;
                            (*le, cumulative)
                        })
                        .collect();
                    family.add_histogram(&pairs, &buckets, count, sum);
                }
            }
        }
        (family, dropped)
    }
}

/// `deploylens_metrics_series_dropped{family}`: what the cap left out in the last render.
pub fn dropped_family(dropped: &BTreeMap<&'static str, u64>) -> Family {
    let mut f = Family::gauge(
        "deploylens_metrics_series_dropped",
        "Label sets left out of a family by --metrics-max-label-sets in the last render (the least active repositories go first); 0 when complete.",
    );
    for (name, n) in dropped {
        f.add(&[("family", name)], *n as f64);
    }
    f
}
