//! Templates and fingerprints for deployment error messages.
//!
//! The same deployment failure shows up in many repositories with different numbers, hosts,
//! paths, ids, versions and log prefixes. [`template`] rewrites a message into a normalized form
//! in which that variable data is replaced by placeholders such as `<ip>`, `<path>` or
//! `<duration>`, and [`fingerprint`] hashes the template into a short id. Occurrences of one
//! failure then share a fingerprint, while different failures keep different ones.
//! [`tokens`] splits a template into words for lexical search over past failures.
//!
//! ```
//! use deploylens_fingerprint::{fingerprint, template};
//!
//! assert_eq!(
//!     template("2024-11-02T14:30:00Z ERROR: health check timeout after 45s"),
//!     "health check timeout after <duration>"
//! );
//! assert_eq!(
//!     fingerprint("[web] Health check timeout after 2m30s."),
//!     fingerprint("health check timeout after 10 seconds"),
//! );
//! ```
//!
//! # Normalization
//!
//! 1. Leading prefixes that carry no meaning are stripped: timestamps (ISO 8601, syslog with
//!    host and program, glog headers), log levels (`ERROR:`, `[warn]`, `level=error`, `FATAL`),
//!    bracketed component tags, `program[pid]:`, docker-compose `service | `, nginx, Spring
//!    Boot and BuildKit line headers, and logfmt `time=`/`level=`/`msg=`. Of a JSON log line
//!    only its `msg` and `error` fields are read.
//! 2. The rest is read token by token and variable data becomes a placeholder: `<url>`,
//!    `<email>`, `<uuid>`, `<timestamp>`, `<ip>`, `<port>`, `<hex>`, `<sha>`, `<container>`,
//!    `<path>`, `<version>`, `<duration>`, `<size>`, `<host>`, `<pod>`, `<id>` (generated
//!    alphanumeric ids), `<str>` (quoted values, and lowercase values after `key=`) and `<num>`.
//! 3. Words are lowercased, punctuation is dropped, and a run of one placeholder becomes one
//!    (a list of values is the same failure whatever its length), so the template is a
//!    single-space separated list of words and placeholders.
//!
//! Stable identifiers stay as words: environment variable names (`DATABASE_URL`, also when
//! quoted), exception and reason names (`OOMKilled`), and numbers that name a code rather
//! than a quantity (`exit code 137`, `status 503`, `signal 9`, `SQLSTATE 42701`).
//!
//! Only the first 4 KiB of a message are read: the head of an error names the failure, and the
//! bound keeps the cost of a pathological message small.
//!
//! # Stability
//!
//! A fingerprint is the xxh3-64 hash of the template, written as 16 lowercase hex digits. It is
//! the same across versions of this crate as long as the normalization rules produce the same
//! template. Any change to the rules that changes templates changes fingerprints of stored
//! failures, and must be treated as a breaking change (the crate's tests pin known values).

#![warn(missing_docs)]

mod lexical;
pub mod miner;
mod normalize;
mod prefix;

use xxhash_rust::xxh3::xxh3_64;

/// Template and fingerprint of one message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Analysis {
    /// Normalized template, e.g. `"health check timeout after <duration>"`.
    pub template: String,
    /// 16 lowercase hex chars: xxh3-64 of [`Analysis::template`].
    pub fingerprint: String,
}

/// Normalized template, e.g. `"health check timeout after <duration>"`.
pub fn template(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_INPUT) + 16);
    template_into(message, &mut out);
    out
}

/// [`template`] written into `out` (cleared first): one buffer for many messages.
pub fn template_into(message: &str, out: &mut String) {
    let message = truncate(message, MAX_INPUT);
    match prefix::json_message(message) {
        Some(text) => normalize::normalize_into(prefix::strip_prefixes(&text), out),
        None => normalize::normalize_into(prefix::strip_prefixes(message), out),
    }
}

/// The fingerprint of a template (as [`fingerprint`] gives for its message), as 16 lowercase
/// hex digits without allocating.
pub fn fingerprint_hex(template: &str) -> [u8; 16] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let h = xxh3_64(template.as_bytes());
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = HEX[((h >> (60 - 4 * i)) & 0xf) as usize];
    }
    out
}

/// 16 lowercase hex chars: xxh3-64 of the [`template`].
///
/// Stable across versions of this crate unless the template rules change (see the crate docs).
pub fn fingerprint(message: &str) -> String {
    fingerprint_of_template(&template(message))
}

/// Template and fingerprint at once, normalizing the message only once.
pub fn analyze(message: &str) -> Analysis {
    let template = template(message);
    let fingerprint = fingerprint_of_template(&template);
    Analysis {
        template,
        fingerprint,
    }
}

/// Tokens of a template for lexical search: its lowercase words and placeholders.
pub fn tokens(template: &str) -> Vec<&str> {
    template.split_ascii_whitespace().collect()
}

fn fingerprint_of_template(template: &str) -> String {
    let hex = fingerprint_hex(template);
    // Hex digits are ASCII.
    String::from_utf8_lossy(&hex).into_owned()
}

/// Only the head of a message is read; see the crate docs.
const MAX_INPUT: usize = 4096;

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hex_of_a_fingerprint_is_its_hash_in_16_digits_and_buffers_give_the_same_template() {
        let mut buffer = String::from("left over from a longer message before it");
        for message in [
            "",
            "x",
            "health check timeout after 45s",
            "ERROR [api] dial tcp 10.0.0.1:5432: refused",
        ] {
            let t = template(message);
            let hex = fingerprint_hex(&t);
            assert_eq!(
                std::str::from_utf8(&hex).unwrap(),
                format!("{:016x}", xxh3_64(t.as_bytes()))
            );
            template_into(message, &mut buffer);
            assert_eq!(buffer, t);
        }
    }
}
