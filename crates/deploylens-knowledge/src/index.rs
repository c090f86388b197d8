//! The in-memory search index over past failures.

use std::collections::HashMap;

use deploylens_fingerprint::analyze;

use crate::terms::{terms, text_terms};
use serde::Serialize;

/// One past failure, as the `past_failures` query returns it.
#[derive(Debug, Clone, Serialize)]
pub struct PastFailure {
    /// When it failed, in microseconds since the Unix epoch (UTC).
    pub timestamp_us: i64,
    /// The repository that failed.
    pub repository: String,
    /// The environment it failed in.
    pub environment: String,
    /// The error messages of the event, joined with ` | `.
    pub error: String,
    /// The error fingerprint: 16 hex digits identifying the template.
    pub fingerprint: String,
    /// The primary error with its variable parts replaced by placeholders.
    pub template: String,
    /// The fix written down for it (the event's notes), if any.
    pub fix: Option<String>,
    /// Seconds it took to find and apply the fix, if recorded.
    pub resolution_time_seconds: Option<f64>,
    /// Where the event was read, so that a person or an agent can open it.
    pub source: SourceRef,
}

/// The line an event was read from, and its id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceRef {
    /// The JSONL file, as the collector read it.
    pub source_file: String,
    /// Its line number, from 1.
    pub source_line: u64,
    /// The event's content id (32 hex digits).
    pub event_id: String,
}

/// A search result.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    /// Ranking score, higher first: 2 and up for the same fingerprint (or a fix it shares),
    /// up to 1 for similar words, plus small bonuses for a recorded fix, recency and
    /// frequency.
    pub score: f64,
    /// Why it matched: "same fingerprint" or the words shared with the question.
    pub why: String,
    /// The repository of the occurrence shown.
    pub repository: String,
    /// The environment of the occurrence shown.
    pub environment: String,
    /// RFC 3339, UTC.
    pub time: String,
    /// The error of the occurrence shown.
    pub error: String,
    /// The recorded fix, trimmed; `None` when none was written down.
    pub fix: Option<String>,
    /// Seconds it took to find and apply the fix, if recorded.
    pub resolution_time_seconds: Option<f64>,
    /// The fingerprint of the occurrence shown.
    pub fingerprint: String,
    /// The template of that fingerprint.
    pub template: String,
    /// Failures with this fingerprint and this fix.
    pub occurrences: usize,
    /// Repositories where this fingerprint failed.
    pub repositories: usize,
    /// The file of the occurrence shown.
    pub source_file: String,
    /// Its line number in that file.
    pub source_line: u64,
    /// Its event id: `SELECT * FROM events WHERE event_id = '…'`.
    pub event_id: String,
}

/// How a search runs.
#[derive(Debug, Clone, Copy)]
pub struct SearchOptions {
    /// The most hits returned.
    pub limit: usize,
    /// Time that "recent" is measured from, UTC microseconds.
    pub now_us: i64,
}

/// All failures of one fingerprint.
struct Group {
    template: String,
    /// Weighted terms of the template and of one raw error.
    terms: Vec<(String, f64)>,
    failures: Vec<usize>,
    repositories: usize,
    /// Per distinct fix (None: no fix recorded): its most recent failure and how many.
    by_fix: Vec<(Option<String>, usize, usize)>,
}

/// A known problem: fingerprint groups linked by an identical recorded fix. The same fix
/// written down for differently worded errors says they are one problem, so a new wording
/// that resembles any of them finds the fix.
struct Problem {
    groups: Vec<usize>,
}

/// How much a word of a recorded fix counts against a word of the error itself: fixes name
/// the cause ("DNS", "registry", "disk") in other words than the error did.
const FIX_WEIGHT: f64 = 0.35;

/// Distinct raw errors per fingerprint whose words are indexed.
const MAX_RAW_SAMPLES: usize = 8;

/// BM25 parameters (the usual defaults).
const K1: f64 = 1.2;
const B: f64 = 0.75;

/// Past failures indexed by fingerprint and by the words of their templates and fixes,
/// built once and searched with [`Index::search`].
pub struct Index {
    failures: Vec<PastFailure>,
    groups: Vec<Group>,
    by_fingerprint: HashMap<String, usize>,
    problems: Vec<Problem>,
    problem_of: Vec<usize>,
    /// term -> (problem, weighted term frequency)
    postings: HashMap<String, Vec<(usize, f64)>>,
    /// Weighted length of each problem's document.
    lengths: Vec<f64>,
    avg_len: f64,
}

/// A fix as a key: case and spacing do not make another fix.
fn fix_key(fix: Option<&str>) -> Option<String> {
    let text = fix?
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    (!text.is_empty()).then_some(text)
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

impl Index {
    /// Indexes these failures.
    pub fn new(failures: Vec<PastFailure>) -> Index {
        let mut by_fingerprint: HashMap<String, usize> = HashMap::new();
        let mut groups: Vec<Group> = Vec::new();
        for (i, f) in failures.iter().enumerate() {
            let g = *by_fingerprint.entry(f.fingerprint.clone()).or_insert_with(|| {
                groups.push(Group {
                    template: f.template.clone(),
                    terms: terms(&f.template, &f.error),
                    failures: Vec::new(),
                    repositories: 0,
                    by_fix: Vec::new(),
                });
                groups.len() - 1
            });
            groups[g].failures.push(i);
        }
        for g in &mut groups {
            let mut repos: Vec<&str> = g
                .failures
                .iter()
                .map(|i| failures[*i].repository.as_str())
                .collect();
            repos.sort_unstable();
            repos.dedup();
            g.repositories = repos.len();
            // The words of a few distinct raw errors, not only the first: values the template
            // masked and prefixes it dropped differ between occurrences.
            let mut raws: Vec<&str> = g.failures.iter().map(|i| failures[*i].error.as_str()).collect();
            raws.sort_unstable();
            raws.dedup();
            let mut merged: HashMap<String, f64> = HashMap::new();
            for raw in raws.iter().take(MAX_RAW_SAMPLES) {
                let mut own: HashMap<String, f64> = HashMap::new();
                for (t, w) in terms(&g.template, raw) {
                    *own.entry(t).or_default() += w;
                }
                for (t, w) in own {
                    let slot = merged.entry(t).or_default();
                    *slot = slot.max(w);
                }
            }
            g.terms = merged.into_iter().collect();
            // Precomputed so that a search costs the number of distinct fixes, not failures.
            let mut by_fix: HashMap<Option<String>, (usize, usize)> = HashMap::new();
            for &i in &g.failures {
                let entry = by_fix
                    .entry(fix_key(failures[i].fix.as_deref()))
                    .or_insert((i, 0));
                entry.1 += 1;
                if failures[i].timestamp_us > failures[entry.0].timestamp_us {
                    entry.0 = i;
                }
            }
            g.by_fix = by_fix
                .into_iter()
                .map(|(k, (latest, count))| (k, latest, count))
                .collect();
        }

        // Link groups that share a fix.
        let mut parent: Vec<usize> = (0..groups.len()).collect();
        let mut first_with_fix: HashMap<String, usize> = HashMap::new();
        for (gi, g) in groups.iter().enumerate() {
            for &i in &g.failures {
                if let Some(key) = fix_key(failures[i].fix.as_deref()) {
                    let other = *first_with_fix.entry(key).or_insert(gi);
                    let (a, b) = (find(&mut parent, gi), find(&mut parent, other));
                    parent[a] = b;
                }
            }
        }
        let mut problem_index: HashMap<usize, usize> = HashMap::new();
        let mut problems: Vec<Problem> = Vec::new();
        let mut problem_of = vec![0; groups.len()];
        for (gi, slot) in problem_of.iter_mut().enumerate() {
            let root = find(&mut parent, gi);
            let p = *problem_index.entry(root).or_insert_with(|| {
                problems.push(Problem { groups: Vec::new() });
                problems.len() - 1
            });
            problems[p].groups.push(gi);
            *slot = p;
        }

        let mut postings: HashMap<String, Vec<(usize, f64)>> = HashMap::new();
        let mut lengths = Vec::with_capacity(problems.len());
        for (pi, problem) in problems.iter().enumerate() {
            let mut tf: HashMap<String, f64> = HashMap::new();
            let mut fixes: Vec<&str> = Vec::new();
            for &gi in &problem.groups {
                // Each wording adds the words it has; a word every wording shares counts once,
                // so a problem seen in many wordings is not penalized as a long document.
                let mut own: HashMap<&str, f64> = HashMap::new();
                for (t, w) in &groups[gi].terms {
                    *own.entry(t.as_str()).or_default() += w;
                }
                for (t, w) in own {
                    let slot = tf.entry(t.to_string()).or_default();
                    *slot = slot.max(w);
                }
                fixes.extend(
                    groups[gi]
                        .failures
                        .iter()
                        .filter_map(|i| failures[*i].fix.as_deref()),
                );
            }
            fixes.sort_unstable();
            fixes.dedup();
            for fix in fixes.iter().take(20) {
                for (t, w) in text_terms(fix) {
                    *tf.entry(t).or_default() += FIX_WEIGHT * w;
                }
            }
            lengths.push(tf.values().sum::<f64>());
            for (t, n) in tf {
                postings.entry(t).or_default().push((pi, n));
            }
        }
        let avg_len = if lengths.is_empty() {
            1.0
        } else {
            lengths.iter().sum::<f64>() / lengths.len() as f64
        };
        Index {
            failures,
            groups,
            by_fingerprint,
            problems,
            problem_of,
            postings,
            lengths,
            avg_len: avg_len.max(1.0),
        }
    }

    /// Past failures indexed.
    pub fn len(&self) -> usize {
        self.failures.len()
    }

    /// Whether no failure is indexed.
    pub fn is_empty(&self) -> bool {
        self.failures.is_empty()
    }

    /// Templates (distinct fingerprints) indexed.
    pub fn templates(&self) -> usize {
        self.groups.len()
    }

    /// The best past failures for an error message, best first.
    pub fn search(&self, question: &str, opts: SearchOptions) -> Vec<Hit> {
        let analysis = analyze(question);
        let query_terms = terms(&analysis.template, question);
        let exact_group = self.by_fingerprint.get(&analysis.fingerprint).copied();
        let exact_problem = exact_group.map(|g| self.problem_of[g]);
        let mut problem_scores: Vec<(usize, f64, String)> = Vec::new();
        if let Some(p) = exact_problem {
            problem_scores.push((p, 2.0, "same fingerprint".to_string()));
        }
        let lexical = self.bm25(&query_terms);
        let best = lexical.iter().map(|(_, s)| *s).fold(0.0f64, f64::max);
        for (p, s) in lexical {
            if Some(p) == exact_problem || best <= 0.0 {
                continue;
            }
            let mut shared: Vec<&str> = self.problems[p]
                .groups
                .iter()
                .flat_map(|g| self.groups[*g].terms.iter())
                .map(|(t, _)| t.as_str())
                .filter(|t| !t.contains('+') && query_terms.iter().any(|(q, _)| q == t))
                .map(|t| t.trim_start_matches('~'))
                .collect();
            shared.sort_unstable();
            shared.dedup();
            // Normalized to (0, 1]: below any exact match.
            problem_scores.push((p, s / best, format!("similar words: {}", shared.join(", "))));
        }
        let mut hits = Vec::new();
        for (p, score, why) in problem_scores {
            hits.extend(self.hits_of_problem(p, score, &why, exact_group, opts.now_us));
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| b.time.cmp(&a.time)));
        hits.truncate(opts.limit);
        hits
    }

    fn bm25(&self, query: &[(String, f64)]) -> Vec<(usize, f64)> {
        let n = self.groups.len() as f64;
        let mut scores: HashMap<usize, f64> = HashMap::new();
        let mut seen: Vec<&str> = Vec::new();
        for (t, query_weight) in query {
            if seen.contains(&t.as_str()) {
                continue;
            }
            seen.push(t);
            let Some(list) = self.postings.get(t) else {
                continue;
            };
            let df = list.len() as f64;
            let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
            for (g, tf) in list {
                let len = self.lengths[*g];
                let tf = *tf;
                let s = query_weight * idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / self.avg_len));
                *scores.entry(*g).or_default() += s;
            }
        }
        let mut out: Vec<(usize, f64)> = scores.into_iter().collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out.truncate(50);
        out
    }

    /// One hit per distinct fix of the problem (plus one for failures without a fix), each
    /// shown with its most recent occurrence.
    fn hits_of_problem(
        &self,
        p: usize,
        score: f64,
        why: &str,
        exact: Option<usize>,
        now_us: i64,
    ) -> Vec<Hit> {
        let mut by_fix: HashMap<Option<&str>, (usize, usize)> = HashMap::new(); // fix -> (shown, count)
        for &g in &self.problems[p].groups {
            let own = exact == Some(g);
            for (key, latest, count) in &self.groups[g].by_fix {
                let entry = by_fix.entry(key.as_deref()).or_insert((*latest, 0));
                entry.1 += count;
                // Prefer showing the failure of the question's own fingerprint, then the latest.
                let f = &self.failures[*latest];
                let current = &self.failures[entry.0];
                let current_own =
                    exact.is_some_and(|e| self.by_fingerprint.get(&current.fingerprint) == Some(&e));
                if (own, f.timestamp_us) > (current_own, current.timestamp_us) {
                    entry.0 = *latest;
                }
            }
        }
        by_fix
            .into_values()
            .map(|(latest, count)| {
                let f = &self.failures[latest];
                let g = &self.groups[self.by_fingerprint[&f.fingerprint]];
                let age_days = ((now_us - f.timestamp_us).max(0) as f64) / 86_400e6;
                let recency = 0.1 * (-age_days / 90.0).exp();
                let fix = f.fix.as_deref().map(str::trim).filter(|s| !s.is_empty());
                let fix_bonus = if fix.is_some() { 0.3 } else { 0.0 };
                let popularity = (0.05 * (count as f64).ln_1p() / 10f64.ln_1p()).min(0.1);
                let why = if why == "same fingerprint" && Some(self.by_fingerprint[&f.fingerprint]) != exact {
                    "same fix as a failure with the same fingerprint".to_string()
                } else {
                    why.to_string()
                };
                Hit {
                    score: score + fix_bonus + recency + popularity,
                    why,
                    repository: f.repository.clone(),
                    environment: f.environment.clone(),
                    time: chrono::DateTime::<chrono::Utc>::from_timestamp_micros(f.timestamp_us)
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_default(),
                    error: f.error.clone(),
                    fix: fix.map(str::to_string),
                    resolution_time_seconds: f.resolution_time_seconds,
                    fingerprint: f.fingerprint.clone(),
                    template: g.template.clone(),
                    occurrences: count,
                    repositories: g.repositories,
                    source_file: f.source.source_file.clone(),
                    source_line: f.source.source_line,
                    event_id: f.source.event_id.clone(),
                }
            })
            .collect()
    }
}
