//! Time windows of the canned queries: `24h`, `7d`, `30d`... ending at now or `--as-of`.

use chrono::{DateTime, NaiveDate};

/// A half-open interval `[start, end)` in UTC microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First instant inside the window, UTC microseconds.
    pub start_us: i64,
    /// First instant after the window, UTC microseconds.
    pub end_us: i64,
}

/// The length of the window `all`: two centuries, every event of any real history (its start
/// is clamped to the first event's day). No window is longer.
pub const ALL_SECONDS: i64 = 200 * 365 * 86_400;

impl Window {
    /// Everything up to `end_us`.
    pub fn all(end_us: i64) -> Self {
        Window::ending_at(end_us, ALL_SECONDS)
    }

    /// The window of `length` ending at `end_us`.
    pub fn ending_at(end_us: i64, length_seconds: i64) -> Self {
        Window {
            start_us: end_us - length_seconds * 1_000_000,
            end_us,
        }
    }

    /// The length in days (fractional), the value of `$window_days`.
    pub fn days(&self) -> f64 {
        (self.end_us - self.start_us) as f64 / 86_400e6
    }
}

/// Why a window or a time was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// The window text does not start with a number; holds the text.
    #[error("window {0:?}: expected a number and a unit, such as 24h, 7d or 30d")]
    NotANumber(String),
    /// The unit is not s, m, h, d or w; holds the window text and the unit.
    #[error("window {0:?}: unknown unit {1:?}; use s, m, h, d or w (e.g. 7d)")]
    UnknownUnit(String, String),
    /// The window has length zero; holds the text.
    #[error("window {0:?} must be longer than zero")]
    NotPositive(String),
    /// The window is longer than [`ALL_SECONDS`]; holds the text.
    #[error("window {0:?} is longer than 200 years; use `all` for the whole history")]
    TooLong(String),
    /// The time is neither RFC 3339 nor a `YYYY-MM-DD` date; holds the text.
    #[error("{0:?} is not a time: use RFC 3339 (2025-11-15T00:00:00Z) or a date (2025-11-15)")]
    NotATime(String),
    /// The time is before 1970 or more than a day past this machine's clock; holds the text.
    #[error("{0:?} is out of range: a time from 1970-01-01 to one day from now")]
    OutOfRange(String),
}

impl Window {
    /// The window named by a length (`7d`, `all`) ending at `as_of` (default: now): how every
    /// face (`--window`/`--as-of`, `?window=&as_of=`) builds one.
    pub fn parse(length: &str, as_of: Option<&str>) -> Result<Window, WindowError> {
        let seconds = parse_window(length)?;
        let end = match as_of {
            Some(t) => parse_timestamp(t)?,
            None => now_us(),
        };
        Ok(Window::ending_at(end, seconds))
    }
}

/// Parses a window length such as `90m`, `24h`, `7d`, `2w`, `all` into seconds.
pub fn parse_window(text: &str) -> Result<i64, WindowError> {
    let text = text.trim();
    if text == "all" {
        return Ok(ALL_SECONDS);
    }
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: i64 = digits
        .parse()
        .map_err(|_| WindowError::NotANumber(text.to_string()))?;
    let unit_seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(WindowError::UnknownUnit(text.to_string(), unit.to_string())),
    };
    if n <= 0 {
        return Err(WindowError::NotPositive(text.to_string()));
    }
    match n.checked_mul(unit_seconds) {
        Some(seconds) if seconds <= ALL_SECONDS => Ok(seconds),
        _ => Err(WindowError::TooLong(text.to_string())),
    }
}

/// Parses `--as-of`: RFC 3339 (`2025-11-15T00:00:00Z`) or a date (`2025-11-15`, midnight UTC),
/// between 1970 and a day past this machine's clock, the range of events' timestamps.
pub fn parse_timestamp(text: &str) -> Result<i64, WindowError> {
    let us = if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        t.timestamp_micros()
    } else if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        t.and_utc().timestamp_micros()
    } else {
        return Err(WindowError::NotATime(text.to_string()));
    };
    let latest = now_us().saturating_add(deploylens_model::MAX_CLOCK_SKEW_US);
    if !(deploylens_model::EARLIEST_TIMESTAMP_US..=latest).contains(&us) {
        return Err(WindowError::OutOfRange(text.to_string()));
    }
    Ok(us)
}

/// Now, in UTC microseconds (the one clock of deploylens, from the model crate).
pub use deploylens_model::now_us;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        assert_eq!(parse_window("24h"), Ok(86_400));
        assert_eq!(parse_window("7d"), Ok(604_800));
        assert!(
            parse_window("7x")
                .unwrap_err()
                .to_string()
                .contains("unknown unit")
        );
        assert!(parse_window("d").is_err());
        assert_eq!(
            parse_timestamp("2025-11-15"),
            parse_timestamp("2025-11-15T00:00:00Z")
        );
        assert!(parse_timestamp("yesterday").is_err());
        assert!(
            parse_timestamp("2262-04-12")
                .unwrap_err()
                .to_string()
                .contains("out of range")
        );
        assert!(
            parse_timestamp("1969-12-31")
                .unwrap_err()
                .to_string()
                .contains("out of range")
        );
        assert!(
            parse_window("99999999999999999w")
                .unwrap_err()
                .to_string()
                .contains("200 years")
        );
        assert!(
            parse_window("1000000d")
                .unwrap_err()
                .to_string()
                .contains("200 years")
        );
        assert_eq!(parse_window("73000d"), Ok(73_000 * 86_400));
    }
}
