//! Building metric families by hand (the values come from SQL rows, not from instrumented
//! code), encoded with the `prometheus` crate's text encoder.

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType, Quantile, Summary,
};
use prometheus::{Encoder, TextEncoder};

/// One metric family under construction.
pub struct Family {
    inner: MetricFamily,
}

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut l = LabelPair::default();
            l.set_name(k.to_string());
            l.set_value(v.to_string());
            l
        })
        .collect()
}

impl Family {
    fn new(name: &str, help: &str, kind: MetricType) -> Family {
        let mut inner = MetricFamily::default();
        inner.set_name(name.to_string());
        inner.set_help(help.to_string());
        inner.set_field_type(kind);
        Family { inner }
    }

    /// An empty gauge family with this name and help text.
    pub fn gauge(name: &str, help: &str) -> Family {
        Family::new(name, help, MetricType::GAUGE)
    }

    /// An empty counter family with this name and help text.
    pub fn counter(name: &str, help: &str) -> Family {
        Family::new(name, help, MetricType::COUNTER)
    }

    /// An empty histogram family with this name and help text.
    pub fn histogram(name: &str, help: &str) -> Family {
        Family::new(name, help, MetricType::HISTOGRAM)
    }

    /// An empty summary family with this name and help text.
    pub fn summary(name: &str, help: &str) -> Family {
        Family::new(name, help, MetricType::SUMMARY)
    }

    /// Adds one summary: (quantile, value) pairs, the count and the sum of the observations.
    pub fn add_summary(&mut self, pairs: &[(&str, &str)], quantiles: &[(f64, f64)], count: u64, sum: f64) {
        self.push(pairs, |m| {
            let mut s = Summary::default();
            s.set_sample_count(count);
            s.set_sample_sum(sum);
            s.set_quantile(
                quantiles
                    .iter()
                    .map(|(q, v)| {
                        let mut x = Quantile::default();
                        x.set_quantile(*q);
                        x.set_value(*v);
                        x
                    })
                    .collect(),
            );
            m.set_summary(s);
        });
    }

    /// The metric name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// Samples (label sets) added so far.
    pub fn len(&self) -> usize {
        self.inner.get_metric().len()
    }

    /// Whether no sample was added; empty families are left out of [`encode`].
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&mut self, pairs: &[(&str, &str)], fill: impl FnOnce(&mut Metric)) {
        let mut m = Metric::default();
        m.set_label(labels(pairs));
        fill(&mut m);
        self.inner.mut_metric().push(m);
    }

    /// Adds a sample; a kind mismatch is a programming error caught by the tests.
    pub fn add(&mut self, pairs: &[(&str, &str)], value: f64) {
        match self.inner.get_field_type() {
            MetricType::COUNTER => self.push(pairs, |m| {
                let mut c = Counter::default();
                c.set_value(value);
                m.set_counter(c);
            }),
            _ => self.push(pairs, |m| {
                let mut g = Gauge::default();
                g.set_value(value);
                m.set_gauge(g);
            }),
        }
    }

    /// Adds one histogram: cumulative counts per upper bound (ascending, +Inf excluded).
    pub fn add_histogram(&mut self, pairs: &[(&str, &str)], buckets: &[(f64, u64)], count: u64, sum: f64) {
        self.push(pairs, |m| {
            let mut h = Histogram::default();
            h.set_sample_count(count);
            h.set_sample_sum(sum);
            h.set_bucket(
                buckets
                    .iter()
                    .map(|(le, n)| {
                        let mut b = Bucket::default();
                        b.set_upper_bound(*le);
                        b.set_cumulative_count(*n);
                        b
                    })
                    .collect(),
            );
            m.set_histogram(h);
        });
    }

    /// The `prometheus` protobuf family, for encoding.
    pub fn into_inner(self) -> MetricFamily {
        self.inner
    }
}

/// Prometheus text exposition (format 0.0.4) of the families that have samples.
pub fn encode(families: Vec<Family>) -> String {
    let families: Vec<MetricFamily> = families
        .into_iter()
        .filter(|f| !f.is_empty())
        .map(Family::into_inner)
        .collect();
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
        tracing::error!("cannot encode metrics: {e}");
    }
    String::from_utf8(out).unwrap_or_default()
}
