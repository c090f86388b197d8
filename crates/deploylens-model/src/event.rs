//! A decoded, validated deployment event.

use std::borrow::Cow;

use xxhash_rust::xxh3::Xxh3;

use crate::types::{DeployedBy, Environment, EventType, RepositorySource, Status};

/// One valid line of `deployment.jsonl`, normalized: the timestamp in UTC microseconds, the
/// enums checked, unknown top-level fields gathered into `extra`. Strings borrow from the line
/// when they contain no JSON escapes.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    pub timestamp_us: i64,
    pub event_type: EventType,
    pub repository: Cow<'a, str>,
    pub repository_source: RepositorySource,
    pub environment: Environment,
    pub version: Cow<'a, str>,
    pub status: Status,
    pub duration_seconds: Option<f64>,
    pub errors: Vec<Cow<'a, str>>,
    pub notes: Option<Cow<'a, str>>,
    pub deployed_by: Option<DeployedBy>,
    pub trace_id: Option<Cow<'a, str>>,
    pub services: Vec<Cow<'a, str>>,
    /// The `metadata` object as JSON text, exactly as written.
    pub metadata: Option<&'a str>,
    /// Unknown top-level fields as one JSON object, in the order they were written.
    pub extra: Option<String>,
    pub resolution_time_seconds: Option<f64>,
}

impl Event<'_> {
    /// The identity of an event: a 128-bit hash of its normalized content (everything but where
    /// it was read from). The same event appended twice, or the same current-format file
    /// copied into another repository folder, has the same id and is stored once. (A legacy
    /// record takes its repository from its folder, so a copy elsewhere is another event.)
    pub fn id(&self) -> u128 {
        let mut h = Xxh3::new();
        let mut field = |bytes: &[u8]| {
            h.update(&(bytes.len() as u64).to_le_bytes());
            h.update(bytes);
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
        field(opt_str(&self.notes));
        field(self.deployed_by.map(|d| d.as_str()).unwrap_or("\0").as_bytes());
        field(opt_str(&self.trace_id));
        field(&(self.services.len() as u64).to_le_bytes());
        for s in &self.services {
            field(s.as_bytes());
        }
        field(self.metadata.unwrap_or("\0").as_bytes());
        field(self.extra.as_deref().unwrap_or("\0").as_bytes());
        field(&opt_f64(self.resolution_time_seconds));
        h.digest128()
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

fn opt_str<'b>(v: &'b Option<Cow<'_, str>>) -> &'b [u8] {
    v.as_deref().map(str::as_bytes).unwrap_or(b"\0")
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
    format!("{id:032x}")
}
