//! Why a line was not stored as an event. Every bad line becomes a [`Reject`]: nothing is
//! dropped silently, and the reason is a stable code that SQL and alerts can group by.

use std::fmt;

/// A stable, machine-readable reason code. The codes are part of the public interface (the
/// `rejects.reason` column and the `deploylens_rejected_lines_total{reason}` metric): never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// `invalid_utf8`: the line is not valid UTF-8.
    InvalidUtf8,
    /// `nul_byte`: the line contains a 0x00 byte.
    NulByte,
    /// `line_too_long`: the line is longer than the decoder's `max_line_bytes`.
    LineTooLong,
    /// `malformed_json`: a JSON syntax error not covered by a more specific reason.
    MalformedJson,
    /// `truncated_line`: the JSON ends in the middle of a value.
    TruncatedLine,
    /// `not_an_object`: valid JSON, but not an object.
    NotAnObject,
    /// `duplicate_field`: a top-level field appears twice.
    DuplicateField,
    /// `missing_field`: a required field is absent or empty, or only one of `repository` and
    /// `duration_seconds` is present.
    MissingField,
    /// `wrong_type`: a known field has the wrong JSON type, a required field is `null`, or a
    /// number is out of range.
    WrongType,
    /// `bad_enum`: an enum field is not one of its exact, case-sensitive values.
    BadEnum,
    /// `bad_timestamp`: `timestamp` is not RFC 3339 with a `T` and a real UTC offset.
    BadTimestamp,
    /// `timestamp_out_of_range`: `timestamp` is before the Unix epoch or more than a day
    /// ahead of this machine's clock.
    TimestampOutOfRange,
    /// `negative_duration`: a duration or resolution time is below 0.
    NegativeDuration,
    /// `bad_trace_id`: `trace_id` does not match `(CHORA|COORD|MULTI)-(DEPLOY|COORD)-NNNN-NNN`.
    BadTraceId,
}

impl RejectReason {
    /// Every reason, in declaration order.
    pub const ALL: &'static [RejectReason] = &[
        RejectReason::InvalidUtf8,
        RejectReason::NulByte,
        RejectReason::LineTooLong,
        RejectReason::MalformedJson,
        RejectReason::TruncatedLine,
        RejectReason::NotAnObject,
        RejectReason::DuplicateField,
        RejectReason::MissingField,
        RejectReason::WrongType,
        RejectReason::BadEnum,
        RejectReason::BadTimestamp,
        RejectReason::TimestampOutOfRange,
        RejectReason::NegativeDuration,
        RejectReason::BadTraceId,
    ];

    /// The stable snake_case code, as stored in `rejects.reason`.
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::InvalidUtf8 => "invalid_utf8",
            RejectReason::NulByte => "nul_byte",
            RejectReason::LineTooLong => "line_too_long",
            RejectReason::MalformedJson => "malformed_json",
            RejectReason::TruncatedLine => "truncated_line",
            RejectReason::NotAnObject => "not_an_object",
            RejectReason::DuplicateField => "duplicate_field",
            RejectReason::MissingField => "missing_field",
            RejectReason::WrongType => "wrong_type",
            RejectReason::BadEnum => "bad_enum",
            RejectReason::BadTimestamp => "bad_timestamp",
            RejectReason::TimestampOutOfRange => "timestamp_out_of_range",
            RejectReason::NegativeDuration => "negative_duration",
            RejectReason::BadTraceId => "bad_trace_id",
        }
    }

    /// The reason with this code, if any.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| r.code() == code)
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A line that could not become an event, with a message a person can act on.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    /// Why the line was rejected.
    pub reason: RejectReason,
    /// What is wrong, naming the field and what to do.
    pub message: String,
}

impl Reject {
    /// A reject with this reason and message.
    pub fn new(reason: RejectReason, message: impl Into<String>) -> Self {
        Reject {
            reason,
            message: message.into(),
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

/// Makes the first `limit` bytes of a raw line storable as text without losing anything.
///
/// Returns the text and whether it was escaped. A line that is valid UTF-8 without control
/// characters is kept verbatim. Otherwise every backslash becomes `\\`, and every byte that is
/// not printable UTF-8 (invalid sequences, NUL, other control characters except tab) becomes
/// `\xNN`, so the original bytes can always be recovered from the escaped form.
pub fn escape_raw(line: &[u8], limit: usize) -> (String, bool) {
    let cut = &line[..line.len().min(limit)];
    if let Ok(text) = std::str::from_utf8(cut)
        && !text.chars().any(|c| c.is_control() && c != '\t')
    {
        return (text.to_owned(), false);
    }
    let mut out = String::with_capacity(cut.len() + 16);
    for chunk in cut.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c.is_control() && c != '\t' && (c as u32) < 0x100 => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    (out, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for r in RejectReason::ALL {
            assert_eq!(RejectReason::from_code(r.code()), Some(*r));
        }
    }

    #[test]
    fn clean_text_is_kept_verbatim() {
        assert_eq!(
            escape_raw(br#"{"a":"b\\c"}"#, 100),
            (r#"{"a":"b\\c"}"#.to_string(), false)
        );
    }

    #[test]
    fn escaping_is_lossless_and_truncates() {
        let (text, escaped) = escape_raw(b"a\\b\x00c\xff\tz", 100);
        assert!(escaped);
        assert_eq!(text, "a\\\\b\\x00c\\xff\tz");
        let (text, _) = escape_raw(b"abcdef", 3);
        assert_eq!(text, "abc");
    }
}
