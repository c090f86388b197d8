//! A decoded, validated deployment event.

use std::borrow::Cow;

use crate::types::{DeployedBy, Environment, EventType, RepositorySource, Status};

/// One valid line of `deployment.jsonl`, normalized: the timestamp in UTC microseconds, the
/// enums checked, unknown top-level fields gathered into `extra`. Strings borrow from the line
/// when they contain no JSON escapes.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    /// When it happened, in microseconds since the Unix epoch (UTC).
    pub timestamp_us: i64,
    /// What happened.
    pub event_type: EventType,
    /// The `repository` field, or for a legacy record the folder that holds `.chora`.
    pub repository: Cow<'a, str>,
    /// Whether `repository` came from the record or from its folder.
    pub repository_source: RepositorySource,
    /// Where it happened.
    pub environment: Environment,
    /// What was deployed or acted on, as written (may be empty).
    pub version: Cow<'a, str>,
    /// How it ended.
    pub status: Status,
    /// How long it took, in seconds (at least 0); `None` only for legacy records.
    pub duration_seconds: Option<f64>,
    /// Error messages; empty when absent or `null`.
    pub errors: Vec<Cow<'a, str>>,
    /// Free text, often the fix.
    pub notes: Option<Cow<'a, str>>,
    /// Who triggered it.
    pub deployed_by: Option<DeployedBy>,
    /// Coordination trace id, such as `CHORA-DEPLOY-2025-001`.
    pub trace_id: Option<Cow<'a, str>>,
    /// Services touched; empty when absent or `null`.
    pub services: Vec<Cow<'a, str>>,
    /// The `metadata` object as JSON text, exactly as written.
    pub metadata: Option<&'a str>,
    /// Unknown top-level fields as one JSON object, in the order they were written.
    pub extra: Option<String>,
    /// Seconds it took to find and apply the fix: the top-level field, else
    /// `metadata.resolution_time_seconds`.
    pub resolution_time_seconds: Option<f64>,
}

impl Event<'_> {
    /// The identity of an event: a 128-bit hash of its normalized content (everything but where
    /// it was read from). The same event appended twice, or the same current-format file
    /// copied into another repository folder, has the same id and is stored once. (A legacy
    /// record takes its repository from its folder, so a copy elsewhere is another event.)
    pub fn id(&self) -> u128 {
        // One hash over the fields laid end to end (the same value as feeding them to a
        // streaming hasher one by one, at a fraction of the cost for short fields).
        thread_local! {
            static CANONICAL: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        CANONICAL.with_borrow_mut(|buf| {
            buf.clear();
            self.canonical_bytes(buf);
            xxhash_rust::xxh3::xxh3_128(buf)
        })
    }

    /// The normalized content that [`id`](Self::id) hashes: each field as its length and bytes.
    fn canonical_bytes(&self, out: &mut Vec<u8>) {
        let mut field = |bytes: &[u8]| {
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(bytes);
        };
        field(&self.timestamp_us.to_le_bytes());
        field(self.event_type.as_str().as_bytes());
        field(self.repository.as_bytes());
        field(self.environment.as_str().as_bytes());
        field(self.version.as_bytes());
        field(self.status.as_str().as_bytes());
        field(&opt_f64(self.duration_seconds));
        field(&(self.errors.len() as u64).to_le_bytes());
        for e in &self.errors {
            field(e.as_bytes());
        }
        field(&opt_str(&self.notes));
        field(self.deployed_by.map(|d| d.as_str()).unwrap_or("\0").as_bytes());
        field(&opt_str(&self.trace_id));
        field(&(self.services.len() as u64).to_le_bytes());
        for s in &self.services {
            field(s.as_bytes());
        }
        field(self.metadata.unwrap_or("\0").as_bytes());
        field(self.extra.as_deref().unwrap_or("\0").as_bytes());
        field(&opt_f64(self.resolution_time_seconds));
    }

    /// The error message that identifies a failure: the first non-empty entry of `errors`.
    /// Only failed events carry one (status `failure`, or a rollback, which undoes a failure).
    pub fn primary_error(&self) -> Option<&str> {
        let failed = self.status == Status::Failure || self.event_type == EventType::Rollback;
        if !failed {
            return None;
        }
        self.errors.iter().map(|e| e.trim()).find(|e| !e.is_empty())
    }
}

/// An absent optional string is written as one NUL byte. A present value that starts with a
/// NUL gets one more in front, so that `"\u0000"` and an absent field differ, while every other
/// value (and so every id stored before) is written as it always was.
fn opt_str<'b>(v: &'b Option<Cow<'_, str>>) -> Cow<'b, [u8]> {
    match v.as_deref() {
        None => Cow::Borrowed(b"\0"),
        Some(s) if s.as_bytes().first() == Some(&0) => {
            let mut escaped = Vec::with_capacity(s.len() + 1);
            escaped.push(0);
            escaped.extend_from_slice(s.as_bytes());
            Cow::Owned(escaped)
        }
        Some(s) => Cow::Borrowed(s.as_bytes()),
    }
}

fn opt_f64(v: Option<f64>) -> [u8; 9] {
    let mut out = [0u8; 9];
    if let Some(x) = v {
        out[0] = 1;
        out[1..].copy_from_slice(&x.to_bits().to_le_bytes());
    }
    out
}

/// Formats an event id as the 32 lowercase hex digits stored in the `event_id` column.
pub fn format_event_id(id: u128) -> String {
    let mut buf = [0u8; 32];
    event_id_hex(id, &mut buf).to_string()
}

/// The 32 hex digits of an id, written into `buf` (no allocation: this runs once per event).
pub fn event_id_hex(id: u128, buf: &mut [u8; 32]) -> &str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in buf.iter_mut().enumerate() {
        *b = HEX[((id >> (124 - 4 * i)) & 0xf) as usize];
    }
    // Only ASCII hex digits were written.
    std::str::from_utf8(buf).unwrap_or_default()
}

/// A hasher for event ids, which are already uniformly distributed hashes: folding the two
/// halves is enough, and far cheaper than SipHash on the hot path of ingest.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used for u128 keys; a plain FNV-1a keeps it correct for anything else.
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100000001b3);
        }
    }

    fn write_u128(&mut self, id: u128) {
        self.0 = (id as u64) ^ ((id >> 64) as u64);
    }
}

/// A set of event ids.
pub type IdSet = std::collections::HashSet<u128, std::hash::BuildHasherDefault<IdHasher>>;

/// What [`StoredIds`] knows of an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Not stored.
    Absent,
    /// Stored.
    Present,
    /// A stored id shares its first 48 bits: the exact ids must decide
    /// ([`StoredIds::make_exact`]). About one new id in 280 million per million stored, and
    /// every repeat of an event stored before the last merge.
    Unsure,
}

/// The ids of every stored event, as a writer keeps them to drop repeats: the one structure
/// of an ingest that grows with the history, so it keeps about 4 bytes per event instead of
/// the 16 of an id and a hash table's slack.
///
/// Ids are kept as their first 48 bits: the top 16 choose one of 65,536 buckets, and the next
/// 32 are kept sorted within it. Ids added since the last merge are held whole in a small
/// set, merged in when it reaches [`StoredIds::MERGE_AT`]. A 48-bit match is only a maybe
/// ([`Lookup::Unsure`]): the caller then loads every id whole ([`StoredIds::make_exact`]) and
/// the set answers exactly from then on, at the old cost. Without repeats that never happens
/// in practice, and memory grows by about 4 MiB per million stored events.
///
/// ```
/// use deploylens_model::{Lookup, StoredIds};
/// let mut ids = StoredIds::default();
/// ids.insert(42);
/// assert_eq!(ids.lookup(&42), Lookup::Present);
/// assert_eq!(ids.lookup(&7 << 100), Lookup::Absent);
/// ```
#[derive(Clone)]
pub struct StoredIds {
    /// `starts[b]..starts[b + 1]` is bucket `b` of `low`.
    starts: Vec<u32>,
    /// Bits 80..112 of each merged id, sorted within each bucket.
    low: Vec<u32>,
    /// Ids added since the last merge, whole.
    recent: IdSet,
    /// Every id whole, once an unsure lookup asked for them; then the rest is unused.
    exact: Option<IdSet>,
}

impl Default for StoredIds {
    fn default() -> Self {
        StoredIds::with_capacity(0)
    }
}

impl StoredIds {
    const BUCKETS: usize = 1 << 16;
    /// Whole ids held before they are merged into the compact part (about 8 MiB).
    pub const MERGE_AT: usize = 1 << 18;

    /// An empty set; `ids` is a hint of how many will be added.
    pub fn with_capacity(ids: usize) -> Self {
        StoredIds {
            starts: vec![0; Self::BUCKETS + 1],
            low: Vec::with_capacity(ids),
            recent: IdSet::with_capacity_and_hasher(ids.min(Self::MERGE_AT), Default::default()),
            exact: None,
        }
    }

    fn bucket(id: u128) -> usize {
        (id >> 112) as usize
    }

    fn low_bits(id: u128) -> u32 {
        (id >> 80) as u32
    }

    /// Whether the id is stored, or may be.
    pub fn lookup(&self, id: &u128) -> Lookup {
        if let Some(exact) = &self.exact {
            return if exact.contains(id) {
                Lookup::Present
            } else {
                Lookup::Absent
            };
        }
        if self.recent.contains(id) {
            return Lookup::Present;
        }
        let b = Self::bucket(*id);
        let bucket = &self.low[self.starts[b] as usize..self.starts[b + 1] as usize];
        if bucket.binary_search(&Self::low_bits(*id)).is_ok() {
            Lookup::Unsure
        } else {
            Lookup::Absent
        }
    }

    /// Adds an id.
    pub fn insert(&mut self, id: u128) {
        if let Some(exact) = &mut self.exact {
            exact.insert(id);
            return;
        }
        if self.recent.insert(id) && self.recent.len() >= Self::MERGE_AT {
            self.merge();
        }
    }

    /// From now on, answers from `all`, every stored id whole (the ids added meanwhile are
    /// kept too).
    pub fn make_exact(&mut self, mut all: IdSet) {
        all.extend(self.recent.drain());
        self.exact = Some(all);
        self.low = Vec::new();
        self.starts = Vec::new();
    }

    /// Whether the set answers exactly (after [`make_exact`](Self::make_exact)).
    pub fn is_exact(&self) -> bool {
        self.exact.is_some()
    }

    /// Merges the recent ids into the compact part, in place: the array grows by the new
    /// entries (a large block grows by remapping, without a copy), and the two sorted runs of
    /// each bucket are merged from the back, so no second copy of the ids is ever held. A
    /// prefix may be held twice; lookups do not mind.
    fn merge(&mut self) {
        let mut fresh: Vec<(u16, u32)> = self
            .recent
            .drain()
            .map(|id| (Self::bucket(id) as u16, Self::low_bits(id)))
            .collect();
        fresh.sort_unstable();
        let old_len = self.low.len();
        self.low.resize(old_len + fresh.len(), 0);
        let low = &mut self.low;
        let mut starts = vec![0u32; Self::BUCKETS + 1];
        let mut w = low.len();
        starts[Self::BUCKETS] = w as u32;
        let mut f = fresh.len();
        for b in (0..Self::BUCKETS).rev() {
            let (old_start, mut i) = (self.starts[b] as usize, self.starts[b + 1] as usize);
            let mut j = f;
            while f > 0 && fresh[f - 1].0 as usize == b {
                f -= 1;
            }
            // The write position stays at or past the read position of the old run: it is
            // ahead by the new entries of this bucket and the ones before it.
            while i > old_start || j > f {
                let take_old = j == f || (i > old_start && low[i - 1] > fresh[j - 1].1);
                w -= 1;
                if take_old {
                    i -= 1;
                    low[w] = low[i];
                } else {
                    j -= 1;
                    low[w] = fresh[j].1;
                }
            }
            starts[b] = w as u32;
        }
        self.starts = starts;
        self.recent.shrink_to(Self::MERGE_AT);
    }

    /// Ids held: whole ones, plus the 48-bit prefixes of merged ones.
    pub fn len(&self) -> usize {
        match &self.exact {
            Some(e) => e.len(),
            None => self.low.len() + self.recent.len(),
        }
    }

    /// Whether no id is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of memory held, for the benchmarks and the tests of the bound.
    pub fn heap_bytes(&self) -> usize {
        let set = |s: &IdSet| s.capacity() * 17;
        self.low.capacity() * 4
            + self.starts.capacity() * 4
            + set(&self.recent)
            + self.exact.as_ref().map_or(0, set)
    }
}

impl Extend<u128> for StoredIds {
    fn extend<I: IntoIterator<Item = u128>>(&mut self, ids: I) {
        for id in ids {
            self.insert(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_matches_the_formatter() {
        for id in [0u128, 1, u128::MAX, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210] {
            assert_eq!(format_event_id(id), format!("{id:032x}"));
        }
        let mut set = IdSet::default();
        assert!(set.insert(5) && !set.insert(5) && set.insert(u128::MAX));
    }

    #[test]
    fn stored_ids_answer_present_absent_or_unsure_and_exactly_once_asked() {
        let spread = |i: u128| i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
        let n = StoredIds::MERGE_AT * 2 + 1000;
        let mut ids = StoredIds::default();
        for i in 0..n as u128 {
            ids.insert(spread(i));
        }
        // Merged twice: the old ids are unsure (their prefixes match), the recent present.
        assert_eq!(ids.low.len(), StoredIds::MERGE_AT * 2);
        assert!((0..100).all(|i| ids.lookup(&spread(i)) == Lookup::Unsure));
        // No stored id is ever absent, through any number of merges.
        assert!((0..n as u128).all(|i| ids.lookup(&spread(i)) != Lookup::Absent));
        assert_eq!(ids.lookup(&spread(n as u128 - 1)), Lookup::Present);
        // New ids are absent, but for a rare 48-bit coincidence.
        let unsure = (n as u128..n as u128 + 100_000)
            .filter(|i| ids.lookup(&spread(*i)) != Lookup::Absent)
            .count();
        assert!(unsure <= 2, "{unsure} new ids taken as maybe stored");
        // An id differing only below the 48 bits is unsure, never absent: no repeat is missed.
        let twin = spread(5) ^ 1;
        assert_eq!(ids.lookup(&twin), Lookup::Unsure);
        // Each bucket sorted, every merged id in its bucket.
        for b in 0..StoredIds::BUCKETS {
            let bucket = &ids.low[ids.starts[b] as usize..ids.starts[b + 1] as usize];
            assert!(bucket.windows(2).all(|w| w[0] <= w[1]), "bucket {b}");
        }
        assert_eq!(ids.starts[0], 0);
        assert_eq!(ids.starts[StoredIds::BUCKETS] as usize, ids.low.len());
        // About 4 bytes per id, not 30.
        assert!(
            ids.heap_bytes() < n * 4 + (9 << 20),
            "{} bytes for {n} ids",
            ids.heap_bytes()
        );
        let all: IdSet = (0..n as u128).map(spread).collect();
        ids.make_exact(all);
        ids.insert(7);
        assert!(ids.is_exact());
        assert_eq!(ids.lookup(&spread(5)), Lookup::Present);
        assert_eq!(ids.lookup(&twin), Lookup::Absent);
        assert_eq!(ids.lookup(&7), Lookup::Present);
        assert_eq!(ids.len(), n + 1);
    }

    /// Stored ids are compared with the ids of lines read later, possibly by a newer
    /// deploylens: the id of an event must never change. This one was stored by 0.1.0.
    #[test]
    fn the_id_of_an_event_is_stable_across_versions() {
        let line = br#"{"timestamp":"2025-11-20T10:00:00Z","event_type":"deployment","repository":"chora-base","environment":"production","version":"v1.2.3","status":"failure","duration_seconds":42.5,"errors":["connection refused to db:5432"],"notes":"raised pool size","trace_id":"CHORA-DEPLOY-2025-001","services":["api","web"],"metadata":{"k":1}}"#;
        let origin = crate::LineOrigin {
            inferred_repository: "r",
        };
        let event = crate::decode_line(line, origin)
            .expect("a valid line")
            .expect("not blank");
        assert_eq!(format_event_id(event.id()), "ba03b23c4fb19a3f6055d372cf2e3e1e");
        // And the one-shot hash equals feeding the same bytes piece by piece.
        let mut bytes = Vec::new();
        event.canonical_bytes(&mut bytes);
        let mut streaming = xxhash_rust::xxh3::Xxh3::new();
        for piece in bytes.chunks(7) {
            streaming.update(piece);
        }
        assert_eq!(streaming.digest128(), event.id());
    }

    #[test]
    fn an_absent_field_and_a_nul_value_are_different_events() {
        let base = r#"{"timestamp":"2025-11-20T10:00:00Z","event_type":"deployment","repository":"r","environment":"staging","version":"v1","status":"success","duration_seconds":1"#;
        let origin = crate::LineOrigin {
            inferred_repository: "r",
        };
        let id = |line: String| {
            crate::decode_line(line.as_bytes(), origin)
                .expect("valid")
                .expect("not blank")
                .id()
        };
        let absent = id(format!("{base}}}"));
        let nul = id(format!(r#"{base},"notes":"\u0000"}}"#));
        let two_nuls = id(format!(r#"{base},"notes":"\u0000\u0000"}}"#));
        let null = id(format!(r#"{base},"notes":null}}"#));
        assert_ne!(absent, nul);
        assert_ne!(nul, two_nuls);
        assert_eq!(absent, null, "null is absent");
    }
}
