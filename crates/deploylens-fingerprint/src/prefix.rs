//! Leading log prefixes and JSON log lines: the parts of a line that say when and where a
//! message was logged rather than what failed.

use std::sync::LazyLock;

use regex::Regex;

/// One alternative per kind of leading prefix; applied repeatedly because real lines stack
/// them ("2024-… ERROR [api] …").
static PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?x-u)
        ^(?:
            (?:[\t\n\r\x20:|>\-] | (?u:[\x{2502}\x{2575}\x{2577}]))+   # separators, box drawing
          | \#\d+\x20(?:\d+\.\d+\x20)?                                   # BuildKit step
          | (?i:fatal|error|warn|info|debug|trace)\x20+\d{1,7}\x20+---\x20   # Spring Boot: level, pid
          | \d{4}-\d{2}-\d{2}(?:[T\x20]\d{2}:\d{2}(?::\d{2})?(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2}|\x20UTC)?
          | \d{4}/\d{2}/\d{2}(?:\x20\d{2}:\d{2}:\d{2}(?:\.\d+)?)?
          | \d{2}:\d{2}:\d{2}(?:[.,]\d+)?
          | (?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\x20{1,2}\d{1,2}\x20\d{2}:\d{2}:\d{2}
            (?:\x20[\w.-]+\x20[\w./-]+(?:\[\d+\])?:)?                       # syslog: host program[pid]:
          | [IWEF]\d{4}\x20\d{2}:\d{2}:\d{2}\.\d+\s+\d+\s+[\w.-]+:\d+\]    # glog header
          | [IWEF]\d{4}\b
          | <\d{1,3}>                                                       # syslog priority
          | \d+\#\d+:(?:\x20\*\d+)?                                          # nginx: pid#tid: *conn
          | [\w.-]{1,40}\[[\w.-]{1,40}\]:                                    # program[pid]:
          | \[(?u:[^\]\n]){1,64}\]                                           # [component], [error]
          | (?i:time|ts|timestamp|level|lvl|severity|caller|logger)=(?:"(?u:[^"\n])*"|(?u:\S)+)
          | (?i:msg|message)="?
          | (?i:fatal|error|err|warn|warning|info|notice|debug|trace|crit|critical|alert|emerg|panic|severe)\b
          | [\w.-]{1,40}\x20+\|\x20                                          # docker compose: service |
        )"#,
    )
    .expect("prefix regex compiles")
});

pub(crate) fn strip_prefixes(mut s: &str) -> &str {
    // Bounded so that a line made only of prefixes cannot loop for long.
    for _ in 0..16 {
        match PREFIX.find(s) {
            Some(m) if m.end() > 0 => {
                let rest = &s[m.end()..];
                // "ERROR 1060 (42S21)" is an error code, not a log level.
                if m.as_str().bytes().all(|c| c.is_ascii_alphabetic()) && starts_with_code(rest) {
                    break;
                }
                s = rest;
            }
            _ => break,
        }
    }
    s
}

/// " 1060 (42S21)": a space, then a number that is not the start of a date or time.
fn starts_with_code(rest: &str) -> bool {
    let Some(after_space) = rest.strip_prefix(' ') else {
        return false;
    };
    let after = after_space.trim_start_matches(|c: char| c.is_ascii_digit());
    after.len() < after_space.len() && !after.starts_with(['-', '/', ':', '.'])
}

/// The message of a JSON log line: its `msg`/`message` field, followed by its `error`/`err`
/// field. Other fields (time, level, caller, ids) are left out. `None` when the line is not a
/// JSON object with one of those string fields.
pub(crate) fn json_message(line: &str) -> Option<String> {
    let b = line.trim_start().as_bytes();
    if b.first() != Some(&b'{') {
        return None;
    }
    let (mut msg, mut err) = (None, None);
    let mut i = 1;
    loop {
        i = skip_ws(b, i);
        match b.get(i)? {
            b'}' => break,
            b',' => {
                i += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let (key, after_key) = json_string(b, i)?;
        i = skip_ws(b, after_key);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        if b.get(i) == Some(&b'"') {
            let (value, after) = json_string(b, i)?;
            match key.as_str() {
                "msg" | "message" if msg.is_none() => msg = Some(value),
                "error" | "err" if err.is_none() => err = Some(value),
                _ => {}
            }
            i = after;
        } else {
            i = skip_json_value(b, i)?;
        }
    }
    match (msg, err) {
        (Some(m), Some(e)) => Some(format!("{m}: {e}")),
        (m, e) => m.or(e),
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// A JSON string starting at the quote at `i`: its unescaped text and the index after it.
fn json_string(b: &[u8], i: usize) -> Option<(String, usize)> {
    let mut out = Vec::new();
    let mut k = i + 1;
    while k < b.len() {
        match b[k] {
            b'"' => return Some((String::from_utf8(out).ok()?, k + 1)),
            b'\\' => {
                let c = *b.get(k + 1)?;
                k += 2;
                match c {
                    b'n' | b'r' | b't' => out.push(b' '),
                    b'u' => {
                        let hex = std::str::from_utf8(b.get(k..k + 4)?).ok()?;
                        let ch = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
                        let mut buf = [0; 4];
                        out.extend_from_slice(ch.unwrap_or(' ').encode_utf8(&mut buf).as_bytes());
                        k += 4;
                    }
                    other => out.push(other),
                }
            }
            c => {
                out.push(c);
                k += 1;
            }
        }
    }
    None
}

/// Skips a non-string JSON value (number, literal, object, array) starting at `i`.
fn skip_json_value(b: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = json_string(b, i)?.1;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth > 0 => depth -= 1,
            b',' | b'}' if depth == 0 => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}
