//! Decoding and validating one line of `deployment.jsonl`.
//!
//! Strict where the schema is strict (enums are exact, required fields are required, numbers are
//! numbers) and tolerant where files are messy in practice (CRLF endings, a UTF-8 BOM, blank
//! lines, `null` for an optional field). Each way a line can be wrong maps to one
//! [`RejectReason`], with a message that names the field and what to do.

use std::borrow::Cow;
use std::fmt;

use chrono::DateTime;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::event::Event;
use crate::reject::{Reject, RejectReason};
use crate::types::{DeployedBy, Environment, EventType, RepositorySource, Status};

/// Lines longer than this (in bytes, default 1 MiB) are rejected without being buffered whole.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

/// Knobs of the decoder.
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions {
    /// Lines longer than this many bytes are rejected as `line_too_long`.
    pub max_line_bytes: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

/// What the decoder needs to know about where a line came from.
#[derive(Debug, Clone, Copy)]
pub struct LineOrigin<'a> {
    /// The repository a legacy record (one without `repository`) belongs to: the name of the
    /// folder that holds `.chora`.
    pub inferred_repository: &'a str,
}

/// Decodes one line (without its `\n`). `Ok(None)` is a blank line, which is skipped.
pub fn decode_line<'a>(line: &'a [u8], origin: LineOrigin<'_>) -> Result<Option<Event<'a>>, Reject> {
    let line = trim_line(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if let Some(at) = memchr::memchr(0, line) {
        return Err(Reject::new(
            RejectReason::NulByte,
            format!(
                "NUL byte at column {}; the file may have been truncated while a writer kept its position",
                at + 1
            ),
        ));
    }
    let text = std::str::from_utf8(line).map_err(|e| {
        Reject::new(
            RejectReason::InvalidUtf8,
            format!(
                "invalid UTF-8 at byte {} of the line; write the file as UTF-8",
                e.valid_up_to() + 1
            ),
        )
    })?;
    if !text.trim_start().starts_with('{') {
        return Err(not_an_object(text));
    }
    let fields = parse_fields(text)?;
    build_event(fields, origin).map(Some)
}

/// Strips a trailing `\r` (CRLF files) and a leading UTF-8 byte order mark.
fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
}

fn not_an_object(text: &str) -> Reject {
    match serde_json::from_str::<&RawValue>(text) {
        Ok(v) => Reject::new(
            RejectReason::NotAnObject,
            format!(
                "the line is a JSON {}, expected one object per line",
                json_type(v)
            ),
        ),
        Err(e) => json_error(e),
    }
}

fn json_error(e: serde_json::Error) -> Reject {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => Reject::new(
            RejectReason::TruncatedLine,
            format!(
                "the line ends in the middle of a JSON value (column {}); was the write interrupted?",
                e.column()
            ),
        ),
        Category::Data if e.to_string().starts_with("duplicate field") => {
            Reject::new(RejectReason::DuplicateField, strip_position(&e))
        }
        _ => Reject::new(
            RejectReason::MalformedJson,
            format!("invalid JSON at column {}: {}", e.column(), strip_position(&e)),
        ),
    }
}

/// serde_json appends " at line 1 column N"; the column is reported separately.
fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// The top-level members of the object, values left as raw JSON text.
struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

fn parse_fields(text: &str) -> Result<Fields<'_>, Reject> {
    serde_json::from_str::<Fields>(text).map_err(json_error)
}

impl<'de> de::Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FieldsVisitor)
    }
}

struct FieldsVisitor;

/// The schema's fields.
/// The top-level fields of an event line, and whether each is optional: the one list the
/// decoder reads (the schema in `schemas/` is checked against it by a test). Any other field
/// goes to `extra`.
pub const FIELDS: &[(&str, Presence)] = &[
    ("timestamp", Presence::Required),
    ("event_type", Presence::Required),
    ("repository", Presence::Current),
    ("environment", Presence::Required),
    ("version", Presence::Required),
    ("status", Presence::Required),
    ("duration_seconds", Presence::Current),
    ("errors", Presence::Optional),
    ("notes", Presence::Optional),
    ("deployed_by", Presence::Optional),
    ("trace_id", Presence::Optional),
    ("services", Presence::Optional),
    ("metadata", Presence::Optional),
    ("resolution_time_seconds", Presence::Optional),
];

/// Whether a field must be present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Must be present and not `null`.
    Required,
    /// Required in the current format, absent in legacy records (both or neither).
    Current,
    /// May be absent; `null` counts as absent.
    Optional,
}

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::with_capacity(16);
        // Known fields are checked for repeats with a bit each; only unknown keys are compared.
        let mut seen_known = 0u32;
        while let Some(Key(key)) = map.next_key::<Key>()? {
            let value: &'de RawValue = map.next_value()?;
            let repeated = match FIELDS.iter().position(|(k, _)| *k == key) {
                Some(bit) => {
                    let before = seen_known;
                    seen_known |= 1 << bit;
                    before & (1 << bit) != 0
                }
                None => fields.iter().any(|(k, _)| *k == key),
            };
            if repeated {
                return Err(de::Error::custom(format_args!(
                    "duplicate field `{key}`: each field may appear once per event"
                )));
            }
            fields.push((key, value));
        }
        Ok(Fields(fields))
    }
}

/// An object key, borrowed from the line unless it contains escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The JSON type of a raw value, for messages.
fn json_type(v: &RawValue) -> &'static str {
    match v.get().as_bytes().first() {
        Some(b'"') => "string",
        Some(b'{') => "object",
        Some(b'[') => "array",
        Some(b't' | b'f') => "boolean",
        Some(b'n') => "null",
        _ => "number",
    }
}

fn wrong_type(field: &str, v: &RawValue, expected: &str) -> Reject {
    Reject::new(
        RejectReason::WrongType,
        format!("{field} is a {}, expected {expected}", json_type(v)),
    )
}

fn is_null(v: &RawValue) -> bool {
    v.get() == "null"
}

fn string<'a>(field: &str, v: &'a RawValue) -> Result<Cow<'a, str>, Reject> {
    let raw = v.get();
    if !raw.starts_with('"') {
        return Err(wrong_type(field, v, "a string"));
    }
    if !raw.contains('\\') {
        // No escapes: the text between the quotes is the string itself.
        return Ok(Cow::Borrowed(&raw[1..raw.len() - 1]));
    }
    serde_json::from_str::<String>(raw)
        .map(Cow::Owned)
        .map_err(|e| Reject::new(RejectReason::MalformedJson, format!("{field}: {e}")))
}

fn number(field: &str, v: &RawValue) -> Result<f64, Reject> {
    let raw = v.get();
    let first = raw.as_bytes().first().copied().unwrap_or(b' ');
    if !(first == b'-' || first.is_ascii_digit()) {
        return Err(wrong_type(field, v, "a number"));
    }
    match raw.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(Reject::new(
            RejectReason::WrongType,
            format!("{field} ({raw}) is out of range for a number"),
        )),
    }
}

fn non_negative(field: &str, v: &RawValue) -> Result<f64, Reject> {
    let x = number(field, v)?;
    if x < 0.0 {
        return Err(Reject::new(
            RejectReason::NegativeDuration,
            format!("{field} is {x}; durations cannot be negative"),
        ));
    }
    Ok(x)
}

fn enumeration<T>(
    field: &str,
    v: &RawValue,
    parse: fn(&str) -> Result<T, crate::ParseEnumError>,
) -> Result<T, Reject> {
    let text = string(field, v)?;
    parse(&text).map_err(|e| Reject::new(RejectReason::BadEnum, format!("{field} is \"{text}\"; {e}")))
}

fn string_array<'a>(field: &str, v: &'a RawValue) -> Result<Vec<Cow<'a, str>>, Reject> {
    if !v.get().starts_with('[') {
        return Err(wrong_type(field, v, "an array of strings"));
    }
    let items: Vec<&'a RawValue> = serde_json::from_str(v.get())
        .map_err(|e| Reject::new(RejectReason::MalformedJson, format!("{field}: {e}")))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| string(&format!("{field}[{i}]"), item))
        .collect()
}

fn timestamp_us(v: &RawValue) -> Result<i64, Reject> {
    let text = string("timestamp", v)?;
    let bad = |hint: String| {
        Reject::new(
            RejectReason::BadTimestamp,
            format!("timestamp \"{text}\" is not valid: {hint}"),
        )
    };
    let t = match DateTime::parse_from_rfc3339(&text) {
        Ok(t) => t,
        Err(e) => {
            let hint = if looks_naive(&text) {
                "it has no time zone: append Z for UTC (2025-11-02T14:30:00Z) or an offset (+02:00)"
                    .to_string()
            } else {
                format!("{e}; expected RFC 3339 such as 2025-11-02T14:30:00Z")
            };
            return Err(bad(hint));
        }
    };
    // chrono also takes a space between date and time; RFC 3339's date-time (and the schema's
    // `format: date-time`) does not.
    if !matches!(text.as_bytes().get(10), Some(b'T' | b't')) {
        return Err(bad(
            "the date and the time must be separated by T (2025-11-02T14:30:00Z)".into(),
        ));
    }
    let offset = t.offset().local_minus_utc();
    if !(-MAX_OFFSET_WEST_SECONDS..=MAX_OFFSET_EAST_SECONDS).contains(&offset) {
        return Err(bad(format!(
            "the offset {} is not a real UTC offset (they run from -12:00 to +14:00)",
            t.offset()
        )));
    }
    let us = t.timestamp_micros();
    check_range(us, &text)?;
    Ok(us)
}

/// Offsets in use run from -12:00 to +14:00.
const MAX_OFFSET_EAST_SECONDS: i32 = 14 * 3600;
const MAX_OFFSET_WEST_SECONDS: i32 = 12 * 3600;

/// The earliest timestamp a deployment can have: the Unix epoch. Anything before it is a
/// default value or a typo, not a deployment.
pub const EARLIEST_TIMESTAMP_US: i64 = 0;

/// How far past the reading machine's clock a timestamp may be: the clocks of the machines
/// that write events may run ahead of the one that reads them.
pub const MAX_CLOCK_SKEW_US: i64 = 24 * 3600 * 1_000_000;

/// The newest clock reading seen, so that a line in the past (nearly every line) costs no
/// clock call.
static CLOCK_SEEN_US: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

fn check_range(us: i64, text: &str) -> Result<(), Reject> {
    use std::sync::atomic::Ordering::Relaxed;
    let out_of_range = |why: String| {
        Reject::new(
            RejectReason::TimestampOutOfRange,
            format!("timestamp \"{text}\" {why}"),
        )
    };
    if us < EARLIEST_TIMESTAMP_US {
        return Err(out_of_range(
            "is before 1970-01-01T00:00:00Z; no deployment is that old".into(),
        ));
    }
    if us > CLOCK_SEEN_US.load(Relaxed).saturating_add(MAX_CLOCK_SKEW_US) {
        let now = crate::now_us();
        CLOCK_SEEN_US.fetch_max(now, Relaxed);
        if us > now.saturating_add(MAX_CLOCK_SKEW_US) {
            return Err(out_of_range(format!(
                "is {:.1} days ahead of this machine's clock (at most 1 day is allowed for clock skew)",
                (us - now) as f64 / 86_400e6
            )));
        }
    }
    Ok(())
}

/// A date and time without a zone, as `datetime.utcnow().isoformat()` writes it.
fn looks_naive(text: &str) -> bool {
    DateTime::parse_from_rfc3339(&format!("{text}Z")).is_ok()
}

/// `^(CHORA|COORD|MULTI)-(DEPLOY|COORD)-[0-9]{4}-[0-9]{3}$`, checked by hand.
pub(crate) fn valid_trace_id(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    parts.len() == 4
        && matches!(parts[0], "CHORA" | "COORD" | "MULTI")
        && matches!(parts[1], "DEPLOY" | "COORD")
        && digits(parts[2], 4)
        && digits(parts[3], 3)
}

/// The resolution time from `metadata.resolution_time_seconds`, when the top level has none.
fn resolution_from_metadata(metadata: &RawValue) -> Result<Option<f64>, Reject> {
    if !metadata.get().contains("resolution_time_seconds") {
        return Ok(None);
    }
    let Fields(fields) = parse_fields(metadata.get())?;
    match fields.iter().find(|(k, _)| k == "resolution_time_seconds") {
        Some((_, v)) if !is_null(v) => non_negative("metadata.resolution_time_seconds", v).map(Some),
        _ => Ok(None),
    }
}

fn build_event<'a>(Fields(fields): Fields<'a>, origin: LineOrigin<'_>) -> Result<Event<'a>, Reject> {
    let mut timestamp = None;
    let mut event_type = None;
    let mut repository = None;
    let mut environment = None;
    let mut version = None;
    let mut status = None;
    let mut duration = None;
    let mut duration_present = false;
    let mut metadata_raw: Option<&'a RawValue> = None;
    let mut extra: Vec<(Cow<'a, str>, &'a RawValue)> = Vec::new();
    let mut event = Event {
        timestamp_us: 0,
        event_type: EventType::Deployment,
        repository: Cow::Borrowed(""),
        repository_source: RepositorySource::Field,
        environment: Environment::Development,
        version: Cow::Borrowed(""),
        status: Status::Success,
        duration_seconds: None,
        errors: Vec::new(),
        notes: None,
        deployed_by: None,
        trace_id: None,
        services: Vec::new(),
        metadata: None,
        extra: None,
        resolution_time_seconds: None,
    };

    for (key, v) in fields {
        let optional_null = is_null(v);
        match &*key {
            "timestamp" => timestamp = Some(timestamp_us(v)?),
            "event_type" => event_type = Some(enumeration("event_type", v, EventType::parse)?),
            // A null repository or duration is absent: with both absent, a legacy record.
            "repository" if optional_null => {}
            "duration_seconds" if optional_null => {}
            "repository" => {
                let repo = string("repository", v)?;
                if repo.trim().is_empty() {
                    return Err(Reject::new(RejectReason::MissingField, "repository is empty"));
                }
                repository = Some(repo);
            }
            "environment" => environment = Some(enumeration("environment", v, Environment::parse)?),
            "version" => version = Some(string("version", v)?),
            "status" => status = Some(enumeration("status", v, Status::parse)?),
            "duration_seconds" => {
                duration_present = true;
                duration = Some(non_negative("duration_seconds", v)?);
            }
            _ if optional_null && is_optional(&key) => {}
            "errors" => event.errors = string_array("errors", v)?,
            "services" => event.services = string_array("services", v)?,
            "notes" => event.notes = Some(string("notes", v)?),
            "deployed_by" => event.deployed_by = Some(enumeration("deployed_by", v, DeployedBy::parse)?),
            "trace_id" => {
                let id = string("trace_id", v)?;
                if !valid_trace_id(&id) {
                    return Err(Reject::new(
                        RejectReason::BadTraceId,
                        format!(
                            "trace_id \"{id}\" does not match (CHORA|COORD|MULTI)-(DEPLOY|COORD)-NNNN-NNN, e.g. CHORA-DEPLOY-2025-001"
                        ),
                    ));
                }
                event.trace_id = Some(id);
            }
            "metadata" => {
                if !v.get().starts_with('{') {
                    return Err(wrong_type("metadata", v, "an object"));
                }
                metadata_raw = Some(v);
            }
            "resolution_time_seconds" => {
                event.resolution_time_seconds = Some(non_negative("resolution_time_seconds", v)?)
            }
            _ => extra.push((key, v)),
        }
    }

    let missing = |field: &str| {
        Reject::new(
            RejectReason::MissingField,
            format!("required field {field} is missing"),
        )
    };
    event.timestamp_us = timestamp.ok_or_else(|| missing("timestamp"))?;
    event.event_type = event_type.ok_or_else(|| missing("event_type"))?;
    event.environment = environment.ok_or_else(|| missing("environment"))?;
    event.version = version.ok_or_else(|| missing("version"))?;
    event.status = status.ok_or_else(|| missing("status"))?;
    match (repository, duration_present) {
        (Some(repo), true) => event.repository = repo,
        // The first format had neither field: infer the repository from the folder.
        (None, false) => {
            event.repository = Cow::Owned(origin.inferred_repository.to_string());
            event.repository_source = RepositorySource::Path;
        }
        (None, true) => {
            return Err(Reject::new(
                RejectReason::MissingField,
                "required field repository is missing (only legacy records, which also lack duration_seconds, may omit it)",
            ));
        }
        (Some(_), false) => {
            return Err(Reject::new(
                RejectReason::MissingField,
                "required field duration_seconds is missing (only legacy records, which also lack repository, may omit it)",
            ));
        }
    }
    event.duration_seconds = duration;
    if let Some(m) = metadata_raw {
        if event.resolution_time_seconds.is_none() {
            event.resolution_time_seconds = resolution_from_metadata(m)?;
        }
        event.metadata = Some(m.get());
    }
    if !extra.is_empty() {
        event.extra = Some(extra_json(&extra));
    }
    Ok(event)
}

fn is_optional(key: &str) -> bool {
    FIELDS.iter().any(|(k, p)| *k == key && *p == Presence::Optional)
}

fn extra_json(extra: &[(Cow<'_, str>, &RawValue)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in extra.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // Serializing a &str cannot fail.
        out.push_str(&serde_json::to_string(&**k).unwrap_or_default());
        out.push(':');
        out.push_str(v.get());
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: LineOrigin<'static> = LineOrigin {
        inferred_repository: "from-path",
    };

    fn ok(line: &str) -> Event<'_> {
        decode_line(line.as_bytes(), ORIGIN)
            .expect("valid")
            .expect("not blank")
    }

    fn reason(line: &[u8]) -> RejectReason {
        decode_line(line, ORIGIN).expect_err("should be rejected").reason
    }

    const GOOD: &str = r#"{"timestamp":"2025-11-02T16:30:00+02:00","event_type":"deployment","repository":"chora-compose","environment":"production","version":"v1.9.1","status":"failure","duration_seconds":93.5,"errors":["Health check timeout after 30s"],"notes":"Solution: raise start_period","deployed_by":"ci_cd","trace_id":"CHORA-DEPLOY-2025-001","services":["api"],"metadata":{"resolution_time_seconds":300},"runner":"gh"}"#;

    #[test]
    fn decodes_a_full_event() {
        let e = ok(GOOD);
        assert_eq!(e.timestamp_us, 1_762_093_800_000_000); // 14:30Z
        assert_eq!(e.repository, "chora-compose");
        assert_eq!(e.repository_source, RepositorySource::Field);
        assert_eq!(e.status, Status::Failure);
        assert_eq!(e.duration_seconds, Some(93.5));
        assert_eq!(e.errors, vec!["Health check timeout after 30s"]);
        assert_eq!(e.resolution_time_seconds, Some(300.0));
        assert_eq!(e.metadata, Some(r#"{"resolution_time_seconds":300}"#));
        assert_eq!(e.extra.as_deref(), Some(r#"{"runner":"gh"}"#));
        assert_eq!(e.primary_error(), Some("Health check timeout after 30s"));
    }

    #[test]
    fn tolerates_crlf_bom_blank_and_null_optionals() {
        let crlf = format!("\u{feff}{GOOD}\r");
        assert_eq!(ok(&crlf).id(), ok(GOOD).id());
        assert!(decode_line(b"  \r", ORIGIN).unwrap().is_none());
        let with_null = GOOD.replace(r#""notes":"Solution: raise start_period""#, r#""notes":null"#);
        assert_eq!(ok(&with_null).notes, None);
    }

    #[test]
    fn legacy_records_take_the_repository_from_the_path() {
        let e = ok(
            r#"{"timestamp":"2025-11-01T10:00:00Z","event_type":"deployment","environment":"staging","version":"v1","status":"success"}"#,
        );
        assert_eq!(e.repository, "from-path");
        assert_eq!(e.repository_source, RepositorySource::Path);
        assert_eq!(e.duration_seconds, None);
    }

    #[test]
    fn each_bad_line_has_its_reason() {
        let cases: &[(&[u8], RejectReason)] = &[
            (
                br#"{"timestamp": "2025-11-03T10:00:00Z", "event_type": deployment}"#,
                RejectReason::MalformedJson,
            ),
            (
                br#"{"timestamp": "2025-11-03T10:00:00Z", "event_type": "depl"#,
                RejectReason::TruncatedLine,
            ),
            (b"[1,2,3]", RejectReason::NotAnObject),
            (b"\"just text\"", RejectReason::NotAnObject),
            (b"hello", RejectReason::MalformedJson),
            (b"{\"a\":\"\xff\"}", RejectReason::InvalidUtf8),
            (b"{\"a\":1,\x00}", RejectReason::NulByte),
            (
                br#"{"status":"success","status":"failure"}"#,
                RejectReason::DuplicateField,
            ),
        ];
        for (line, want) in cases {
            assert_eq!(reason(line), *want, "{}", String::from_utf8_lossy(line));
        }
        let field_cases: &[(&str, &str, RejectReason)] = &[
            (
                r#""duration_seconds":93.5"#,
                r#""duration_seconds":"93.5""#,
                RejectReason::WrongType,
            ),
            (
                r#""duration_seconds":93.5"#,
                r#""duration_seconds":-5"#,
                RejectReason::NegativeDuration,
            ),
            (
                r#""environment":"production""#,
                r#""environment":"prod""#,
                RejectReason::BadEnum,
            ),
            (
                r#""status":"failure""#,
                r#""status":"FAILURE""#,
                RejectReason::BadEnum,
            ),
            (
                r#""timestamp":"2025-11-02T16:30:00+02:00""#,
                r#""timestamp":"2025-11-02T16:30:00""#,
                RejectReason::BadTimestamp,
            ),
            (
                r#""timestamp":"2025-11-02T16:30:00+02:00""#,
                r#""timestamp":"yesterday""#,
                RejectReason::BadTimestamp,
            ),
            (
                r#""trace_id":"CHORA-DEPLOY-2025-001""#,
                r#""trace_id":"DEPLOY-1""#,
                RejectReason::BadTraceId,
            ),
            (r#""status":"failure","#, "", RejectReason::MissingField),
            (r#""repository":"chora-compose","#, "", RejectReason::MissingField),
            (
                r#""errors":["Health check timeout after 30s"]"#,
                r#""errors":["a",3]"#,
                RejectReason::WrongType,
            ),
            (
                r#""metadata":{"resolution_time_seconds":300}"#,
                r#""metadata":[1]"#,
                RejectReason::WrongType,
            ),
            (
                r#""metadata":{"resolution_time_seconds":300}"#,
                r#""metadata":{"resolution_time_seconds":-1}"#,
                RejectReason::NegativeDuration,
            ),
            (
                r#""version":"v1.9.1""#,
                r#""version":null"#,
                RejectReason::WrongType,
            ),
        ];
        for (from, to, want) in field_cases {
            let line = GOOD.replacen(from, to, 1);
            assert_ne!(line, GOOD, "{from} not in GOOD");
            assert_eq!(reason(line.as_bytes()), *want, "{line}");
        }
    }

    #[test]
    fn messages_say_what_to_do() {
        let r = decode_line(GOOD.replace("+02:00", "").as_bytes(), ORIGIN).unwrap_err();
        assert!(r.message.contains("append Z"), "{}", r.message);
        let r = decode_line(GOOD.replace(r#""production""#, r#""prod""#).as_bytes(), ORIGIN).unwrap_err();
        assert!(
            r.message.contains("development, staging, production"),
            "{}",
            r.message
        );
    }

    #[test]
    fn same_content_same_id_and_different_content_different_id() {
        assert_ne!(ok(GOOD).id(), ok(&GOOD.replace("93.5", "93.6")).id());
        // The same instant written in another offset is the same event.
        assert_eq!(
            ok(GOOD).id(),
            ok(&GOOD.replace("16:30:00+02:00", "14:30:00Z")).id()
        );
    }

    #[test]
    fn trace_ids() {
        assert!(valid_trace_id("MULTI-COORD-2025-123"));
        assert!(!valid_trace_id("MULTI-COORD-2025-1234"));
        assert!(!valid_trace_id("chora-DEPLOY-2025-123"));
    }

    #[test]
    fn timestamps_no_deployment_has_are_rejected_with_their_reason() {
        let line = |ts: &str| {
            format!(
                r#"{{"timestamp":"{ts}","event_type":"deployment","repository":"r","environment":"staging","version":"v1","status":"success","duration_seconds":1}}"#
            )
        };
        let origin = LineOrigin {
            inferred_repository: "r",
        };
        let reason = |ts: &str| decode_line(line(ts).as_bytes(), origin).err().map(|r| r.reason);
        assert_eq!(
            reason("0000-01-01T00:00:00Z"),
            Some(RejectReason::TimestampOutOfRange)
        );
        assert_eq!(
            reason("1969-12-31T23:59:59Z"),
            Some(RejectReason::TimestampOutOfRange)
        );
        assert_eq!(
            reason("9999-12-31T23:59:59Z"),
            Some(RejectReason::TimestampOutOfRange)
        );
        assert_eq!(
            reason("2025-11-02T14:30:00+23:59"),
            Some(RejectReason::BadTimestamp)
        );
        assert_eq!(
            reason("2025-11-02T14:30:00-12:30"),
            Some(RejectReason::BadTimestamp)
        );
        assert_eq!(reason("2025-11-02 14:30:00Z"), Some(RejectReason::BadTimestamp));
        assert_eq!(reason("2025-11-02T14:30:00+14:00"), None);
        assert_eq!(reason("2025-11-02t14:30:00z"), None);
        assert_eq!(reason("1970-01-01T00:00:00Z"), None);
        // Tomorrow is within the skew allowance; next week is not.
        let at = |days: i64| {
            chrono::DateTime::<chrono::Utc>::from_timestamp_micros(
                crate::now_us() + days * 86_400_000_000 / 2,
            )
            .unwrap()
            .to_rfc3339()
        };
        assert_eq!(reason(&at(1)), None);
        assert_eq!(reason(&at(14)), Some(RejectReason::TimestampOutOfRange));
    }
}
