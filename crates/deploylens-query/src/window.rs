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
    /// The granularity is not day, week or month; holds the text.
    #[error("granularity {0:?}: use day, week or month")]
    UnknownGranularity(String),
    /// The window holds more periods than [`MAX_PERIODS`].
    #[error("the window holds more than {0} periods: shorten --window or use a coarser --granularity")]
    TooManyPeriods(usize),
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

/// How a report's window is divided: whole, or into UTC days, ISO weeks (from Monday) or
/// calendar months. Each period is a window of its own, cut to the report's window, so a
/// report by week gives for each week exactly what that week alone as `--as-of`/`--window`
/// would give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Granularity {
    /// The whole window, one period.
    #[default]
    Window,
    /// UTC days.
    Day,
    /// ISO weeks, Monday 00:00 UTC to Monday.
    Week,
    /// Calendar months, UTC.
    Month,
}

/// The most periods one report may be divided into: each is a run of the query.
pub const MAX_PERIODS: usize = 1000;

impl Granularity {
    /// `window` (or empty), `day`, `week` or `month`.
    pub fn parse(text: &str) -> Result<Granularity, WindowError> {
        match text.trim() {
            "" | "window" => Ok(Granularity::Window),
            "day" => Ok(Granularity::Day),
            "week" => Ok(Granularity::Week),
            "month" => Ok(Granularity::Month),
            other => Err(WindowError::UnknownGranularity(other.to_string())),
        }
    }

    /// Its name, as `parse` reads it.
    pub fn name(self) -> &'static str {
        match self {
            Granularity::Window => "window",
            Granularity::Day => "day",
            Granularity::Week => "week",
            Granularity::Month => "month",
        }
    }

    /// The periods covering `window`, in order, the first and last cut to it.
    pub fn periods(self, window: Window) -> Result<Vec<Window>, WindowError> {
        if self == Granularity::Window || window.start_us >= window.end_us {
            return Ok(vec![window]);
        }
        let mut out = Vec::new();
        let mut at = window.start_us;
        while at < window.end_us {
            let next = self.next_boundary(at).min(window.end_us);
            out.push(Window {
                start_us: at,
                end_us: next,
            });
            if out.len() > MAX_PERIODS {
                return Err(WindowError::TooManyPeriods(MAX_PERIODS));
            }
            at = next;
        }
        Ok(out)
    }

    /// The first boundary of this granularity after `us`.
    fn next_boundary(self, us: i64) -> i64 {
        use chrono::{Datelike, Duration, TimeZone, Utc};
        let Some(t) = DateTime::from_timestamp_micros(us) else {
            return i64::MAX;
        };
        let day = t.date_naive();
        let next_day = match self {
            Granularity::Window => return i64::MAX,
            Granularity::Day => day + Duration::days(1),
            Granularity::Week => day + Duration::days(7 - i64::from(day.weekday().num_days_from_monday())),
            Granularity::Month => {
                let (y, m) = if day.month() == 12 {
                    (day.year() + 1, 1)
                } else {
                    (day.year(), day.month() + 1)
                };
                NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(day + Duration::days(31))
            }
        };
        next_day
            .and_hms_opt(0, 0, 0)
            .map_or(i64::MAX, |n| Utc.from_utc_datetime(&n).timestamp_micros())
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
    fn periods_follow_days_iso_weeks_and_months_cut_to_the_window() {
        let t = |s: &str| parse_timestamp(s).unwrap();
        // Wednesday 2025-01-01 to Friday 2025-01-31.
        let window = Window {
            start_us: t("2025-01-01"),
            end_us: t("2025-01-31"),
        };
        let weeks = Granularity::Week.periods(window).unwrap();
        let starts: Vec<i64> = weeks.iter().map(|w| w.start_us).collect();
        assert_eq!(
            starts,
            [
                "2025-01-01",
                "2025-01-06",
                "2025-01-13",
                "2025-01-20",
                "2025-01-27"
            ]
            .map(t)
        );
        assert_eq!(weeks.last().unwrap().end_us, window.end_us);
        assert!(weeks.windows(2).all(|p| p[0].end_us == p[1].start_us));
        assert_eq!(Granularity::Day.periods(window).unwrap().len(), 30);
        let months = Granularity::Month
            .periods(Window {
                start_us: t("2024-11-15"),
                end_us: t("2025-02-10"),
            })
            .unwrap();
        let bounds: Vec<(i64, i64)> = months.iter().map(|w| (w.start_us, w.end_us)).collect();
        assert_eq!(
            bounds,
            vec![
                (t("2024-11-15"), t("2024-12-01")),
                (t("2024-12-01"), t("2025-01-01")),
                (t("2025-01-01"), t("2025-02-01")),
                (t("2025-02-01"), t("2025-02-10")),
            ]
        );
        assert_eq!(Granularity::Window.periods(window).unwrap(), vec![window]);
        let long = Window::ending_at(t("2025-01-01"), 5 * 365 * 86_400);
        assert!(matches!(
            Granularity::Day.periods(long),
            Err(WindowError::TooManyPeriods(_))
        ));
        assert!(Granularity::parse("fortnight").is_err());
    }

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
