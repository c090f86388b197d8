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
//!    bracketed component tags, docker-compose `service | ` prefixes and logfmt `msg=`.
//! 2. The rest is read token by token and variable data becomes a placeholder: `<url>`,
//!    `<email>`, `<uuid>`, `<timestamp>`, `<ip>`, `<port>`, `<hex>`, `<sha>`, `<container>`,
//!    `<path>`, `<version>`, `<duration>`, `<size>`, `<host>`, `<pod>`, `<str>` (quoted
//!    values, and lowercase values after `key=`) and `<num>`.
//! 3. Words are lowercased and punctuation is dropped, so the template is a single-space
//!    separated list of words and placeholders.
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

use std::sync::LazyLock;

use regex::Regex;
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
    let body = strip_prefixes(truncate(message, MAX_INPUT));
    let mut n = Normalizer {
        src: body,
        b: body.as_bytes(),
        i: 0,
        out: String::with_capacity(body.len() + 16),
        last: Last::Start,
    };
    n.run();
    n.out
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
    format!("{:016x}", xxh3_64(template.as_bytes()))
}

const MAX_INPUT: usize = 4096;
/// A quote whose closing quote is further away than this is taken as stray punctuation.
const MAX_QUOTED: usize = 512;

const URL: &str = "<url>";
const EMAIL: &str = "<email>";
const UUID: &str = "<uuid>";
const TIMESTAMP: &str = "<timestamp>";
const IP: &str = "<ip>";
const PORT: &str = "<port>";
const HEX: &str = "<hex>";
const SHA: &str = "<sha>";
const PATH: &str = "<path>";
const VERSION: &str = "<version>";
const DURATION: &str = "<duration>";
const SIZE: &str = "<size>";
const HOST: &str = "<host>";
const CONTAINER: &str = "<container>";
const POD: &str = "<pod>";
const STR: &str = "<str>";
const NUM: &str = "<num>";

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

/// One alternative per kind of leading prefix; applied repeatedly because real lines stack
/// them ("2024-… ERROR [api] …").
static PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?x)
        ^(?:
            [\s:|>\-\x{2502}\x{2575}\x{2577}]+
          | \#\d+\x20(?:\d+\.\d+\x20)?
          | \d{1,7}\x20+---\x20
          | \d{4}-\d{2}-\d{2}(?:[T\x20]\d{2}:\d{2}(?::\d{2})?(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2}|\x20UTC)?
          | \d{4}/\d{2}/\d{2}(?:\x20\d{2}:\d{2}:\d{2}(?:\.\d+)?)?
          | \d{2}:\d{2}:\d{2}(?:[.,]\d+)?
          | (?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\x20{1,2}\d{1,2}\x20\d{2}:\d{2}:\d{2}
            (?:\x20[\w.-]+\x20[\w./-]+(?:\[\d+\])?:)?
          | [IWEF]\d{4}\x20\d{2}:\d{2}:\d{2}\.\d+\s+\d+\s+[\w.-]+:\d+\]
          | [IWEF]\d{4}\b
          | <\d{1,3}>
          | [\w.-]{1,40}\[[\w.-]{1,40}\]:
          | \[[^\]\n]{1,64}\]
          | (?i:time|ts|timestamp|level|lvl|severity|caller|logger)=(?:"[^"\n]*"|\S+)
          | (?i:msg|message)="?
          | (?i:fatal|error|err|warn|warning|info|notice|debug|trace|crit|critical|alert|emerg|panic|severe)\b
          | [\w.-]{1,40}\x20+\|\x20
        )"#,
    )
    .expect("prefix regex compiles")
});

fn strip_prefixes(mut s: &str) -> &str {
    // Bounded so that a line made only of prefixes cannot loop for long.
    for _ in 0..16 {
        match PREFIX.find(s) {
            Some(m) if m.end() > 0 => s = &s[m.end()..],
            _ => break,
        }
    }
    s
}

/// What was emitted last; some tokens read differently depending on the word before them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    Start,
    Word(Kw),
    Ph(&'static str),
}

/// Words that change how the following number is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kw {
    None,
    /// A number after it names a code (`exit code 137`), which is kept.
    Code,
    /// A number after it is a port.
    Port,
    /// A hex id after it is a container id.
    Container,
}

#[derive(Clone, Copy, Default)]
struct Ctx {
    /// The token followed `=` directly (`key=value`).
    after_eq: bool,
    /// The token followed `:` directly (`host:port`).
    colon_before: bool,
    /// The token stood on its own in the text, so a unit word after it may be read with it.
    standalone: bool,
    /// The token began with `+` or `-` (time zone offsets).
    signed: bool,
}

struct Normalizer<'a> {
    src: &'a str,
    b: &'a [u8],
    i: usize,
    out: String,
    last: Last,
}

impl Normalizer<'_> {
    fn run(&mut self) {
        let b = self.b;
        let n = b.len();
        while self.i < n {
            let c = b[self.i];
            if is_quote(c) {
                let opens = self.i == 0 || !is_word_byte(b[self.i - 1]);
                if opens && let Some(end) = find_close(b, self.i + 1, c) {
                    self.quoted(self.i + 1, end);
                    self.i = end + 1;
                    continue;
                }
                self.i += 1;
                continue;
            }
            if is_boundary(c) {
                self.i += 1;
                continue;
            }
            let start = self.i;
            let mut end = start;
            while end < n && !is_boundary(b[end]) {
                end += 1;
            }
            // URLs contain characters that end other tokens, so they are cut at whitespace.
            if let Some((url_start, url_end)) = find_url(b, start, end) {
                if url_start == start {
                    self.ph(URL);
                    self.i = url_end;
                    continue;
                }
                end = url_start;
            }
            self.i = end;
            self.token(start, end);
        }
    }

    fn token(&mut self, start: usize, end: usize) {
        let raw = &self.src[start..end];
        let rb = raw.as_bytes();
        let ctx = Ctx {
            after_eq: start > 0 && self.b[start - 1] == b'=',
            colon_before: rb[0] == b':',
            standalone: true,
            signed: rb[0] == b'+' || rb[0] == b'-',
        };
        // Trimming would eat the leading colons of "::1" and the "::" of "[::]:8080".
        if rb.len() >= 2 && rb[0] == b':' && rb[1] == b':' {
            let t = raw.trim_end_matches([':', '.', ',']);
            if t.is_empty() || is_ipv6(t.as_bytes()) {
                self.ph(IP);
                return;
            }
        }
        let tok = trim_token(raw);
        if !tok.is_empty() {
            self.classify(tok, ctx);
        }
    }

    fn quoted(&mut self, start: usize, end: usize) {
        let content = self.src[start..end].trim();
        // Quoted names of environment variables identify the failure; other quoted values
        // (names of resources, users, columns, whole sub-messages) vary between repositories.
        if is_env_name(content.as_bytes()) {
            self.push_word(content, true);
        } else {
            self.ph(STR);
        }
    }

    fn classify(&mut self, tok: &str, ctx: Ctx) {
        let b = tok.as_bytes();
        let f = Features::of(b);
        if !f.digit && f.dot == 0 && f.colon == 0 && f.slash == 0 && !f.at && !f.backslash {
            // Fast path: plain words are the common case.
            if f.dash && is_pod(b) {
                return self.ph(POD);
            }
            return self.word(tok, ctx, &f);
        }
        if is_path(b) {
            return self.ph(PATH);
        }
        if f.at && self.at_token(tok, ctx) {
            return;
        }
        if starts_with_ci(b, b"sha256:") || starts_with_ci(b, b"sha512:") || starts_with_ci(b, b"sha1:") {
            return self.ph(SHA);
        }
        if b.len() > 2 && b[0] == b'0' && (b[1] | 0x20) == b'x' && b[2..].iter().all(u8::is_ascii_hexdigit) {
            return self.ph(HEX);
        }
        if is_uuid(b) {
            return self.ph(UUID);
        }
        if is_date(b) || is_time(b) {
            return self.ph(TIMESTAMP);
        }
        if f.colon >= 2 && is_ipv6(b) {
            return self.ph(IP);
        }
        if let Some(port) = ipv4(b) {
            self.ph(IP);
            if port {
                self.ph(PORT);
            }
            return;
        }
        if f.colon > 0 {
            return self.colon_parts(tok, ctx);
        }
        if f.slash > 0 {
            return self.slashed(tok, ctx);
        }
        if f.dot > 0 && is_hostname(b) {
            return self.ph(HOST);
        }
        if is_version(b) {
            return self.ph(VERSION);
        }
        if is_hex_id(b) {
            let p = if b.len() == 40 || b.len() == 64 {
                SHA
            } else if self.last == Last::Word(Kw::Container) {
                CONTAINER
            } else {
                HEX
            };
            return self.ph(p);
        }
        if b[0].is_ascii_digit() && self.numeric(tok, ctx) {
            return;
        }
        if f.dash && is_pod(b) {
            return self.ph(POD);
        }
        self.word(tok, ctx, &f)
    }

    /// `user@host`, `image@sha256:…`.
    fn at_token(&mut self, tok: &str, ctx: Ctx) -> bool {
        let at = match tok.find('@') {
            Some(at) => at,
            None => return false,
        };
        let (left, right) = (&tok[..at], &tok[at + 1..]);
        if starts_with_ci(right.as_bytes(), b"sha256:") {
            if !left.is_empty() {
                self.classify(
                    left,
                    Ctx {
                        standalone: false,
                        ..ctx
                    },
                );
            }
            self.ph(SHA);
            return true;
        }
        if !left.is_empty() && !right.is_empty() && !tok.contains('/') && !right.contains('@') {
            self.ph(EMAIL);
            return true;
        }
        false
    }

    /// `host:port`, `image:tag`, `Pkg::Error` and other colon-joined tokens, part by part.
    fn colon_parts(&mut self, tok: &str, ctx: Ctx) {
        let mut prev: Option<&str> = None;
        for part in tok.split(':') {
            let part = trim_token(part);
            if part.is_empty() {
                continue;
            }
            let pb = part.as_bytes();
            match prev {
                None => self.classify(
                    part,
                    Ctx {
                        standalone: false,
                        ..ctx
                    },
                ),
                Some(prev_part) => {
                    if pb.iter().all(u8::is_ascii_digit) {
                        // A number after a file name is a line number, after anything else a port.
                        let file_like = self.last == Last::Ph(PATH)
                            || (prev_part.contains('.')
                                && !matches!(self.last, Last::Ph(HOST) | Last::Ph(IP)));
                        self.ph(if file_like { NUM } else { PORT });
                    } else if is_tag(pb) {
                        self.ph(VERSION);
                    } else {
                        let sub = Ctx {
                            after_eq: false,
                            colon_before: true,
                            standalone: false,
                            signed: false,
                        };
                        self.classify(part, sub);
                    }
                }
            }
            prev = Some(part);
        }
    }

    /// Relative paths and image names (`ghcr.io/acme/api`), ratios (`0/3`), and short
    /// slash-joined words that are vocabulary (`i/o`, `tcp/ip`).
    fn slashed(&mut self, tok: &str, ctx: Ctx) {
        let segments = || tok.split('/').filter(|s| !s.is_empty());
        if segments().all(|s| s.bytes().all(|c| c.is_ascii_digit())) {
            for _ in segments() {
                self.ph(NUM);
            }
            return;
        }
        let slashes = tok.bytes().filter(|&c| c == b'/').count();
        let pathy =
            slashes >= 2 || segments().any(|s| s.len() > 3 || s.bytes().any(|c| !c.is_ascii_alphabetic()));
        if pathy {
            self.ph(PATH);
        } else {
            let f = Features::of(tok.as_bytes());
            self.word(tok, ctx, &f);
        }
    }

    /// Numbers, with or without a unit. Returns false when the token only starts with a digit.
    fn numeric(&mut self, tok: &str, ctx: Ctx) -> bool {
        let b = tok.as_bytes();
        let int_end = b.iter().position(|c| !c.is_ascii_digit()).unwrap_or(b.len());
        let mut num_end = int_end;
        if num_end + 1 < b.len() && b[num_end] == b'.' && b[num_end + 1].is_ascii_digit() {
            num_end += 1;
            while num_end < b.len() && b[num_end].is_ascii_digit() {
                num_end += 1;
            }
        }
        if num_end == b.len() {
            let integer = int_end == b.len();
            if ctx.signed && b.len() == 4 && self.last == Last::Ph(TIMESTAMP) {
                // "+0000" after a timestamp is its time zone.
                return true;
            }
            if integer && self.last == Last::Word(Kw::Code) {
                self.push_word(tok, true);
                return true;
            }
            if integer && (ctx.colon_before || self.last == Last::Word(Kw::Port)) {
                self.ph(PORT);
                return true;
            }
            if ctx.standalone {
                if let Some((p, end)) = unit_after(self.b, self.i) {
                    self.ph(p);
                    self.i = end;
                    return true;
                }
            }
            self.ph(NUM);
            return true;
        }
        if is_size_unit(&b[num_end..]) {
            self.ph(SIZE);
            return true;
        }
        if is_duration(b) {
            self.ph(DURATION);
            return true;
        }
        if matches!(&b[num_end..], b"M" | b"G" | b"K" | b"T" | b"P" | b"k" | b"g") {
            self.ph(SIZE);
            return true;
        }
        false
    }

    fn word(&mut self, tok: &str, ctx: Ctx, f: &Features) {
        // A lowercase value of key=value is usually a name (user=app, namespace=prod);
        // CamelCase and upper-case values are usually enums (reason=OOMKilled).
        if ctx.after_eq && (!f.upper || f.digit) {
            return self.ph(STR);
        }
        if self.last == Last::Ph(TIMESTAMP)
            && (tok.eq_ignore_ascii_case("utc") || tok.eq_ignore_ascii_case("gmt"))
        {
            return;
        }
        self.push_word(tok, !f.digit);
    }

    fn ph(&mut self, p: &'static str) {
        // A run of values of one kind is one value: "2024-11-02 14:30:00" is one timestamp, and
        // a list of quoted labels is the same failure whatever its length.
        if self.last == Last::Ph(p) {
            return;
        }
        if !self.out.is_empty() {
            self.out.push(' ');
        }
        self.out.push_str(p);
        self.last = Last::Ph(p);
    }

    /// Lowercases a word; unless `plain`, numeric segments become `<num>` and long hex
    /// segments `<hex>` (`postgres-0`, `api-7d9f8b6c5`).
    fn push_word(&mut self, tok: &str, plain: bool) {
        if !self.out.is_empty() {
            self.out.push(' ');
        }
        let mark = self.out.len();
        if plain {
            push_lower(&mut self.out, tok);
        } else {
            let b = tok.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if !is_segment_byte(b[i]) {
                    let j = b[i..]
                        .iter()
                        .position(|&c| is_segment_byte(c))
                        .map_or(b.len(), |p| i + p);
                    self.out.push_str(&tok[i..j]);
                    i = j;
                    continue;
                }
                let j = b[i..]
                    .iter()
                    .position(|&c| !is_segment_byte(c))
                    .map_or(b.len(), |p| i + p);
                let seg = &b[i..j];
                if seg.iter().all(u8::is_ascii_digit) {
                    self.out.push_str(NUM);
                } else if is_hex_id(seg) {
                    self.out.push_str(HEX);
                } else {
                    push_lower(&mut self.out, &tok[i..j]);
                }
                i = j;
            }
        }
        self.last = Last::Word(keyword(&self.out[mark..]));
    }
}

fn push_lower(out: &mut String, s: &str) {
    if s.is_ascii() {
        out.extend(s.bytes().map(|c| c.to_ascii_lowercase() as char));
    } else {
        out.extend(s.chars().flat_map(char::to_lowercase));
    }
}

fn keyword(w: &str) -> Kw {
    match w {
        "code" | "exitcode" | "exit_code" | "statuscode" | "status_code" | "status" | "exit" | "signal"
        | "errno" | "sqlstate" | "error" | "rc" | "returncode" => Kw::Code,
        "port" => Kw::Port,
        "container" => Kw::Container,
        _ => Kw::None,
    }
}

/// Byte classes found in a token, gathered in one pass.
struct Features {
    digit: bool,
    upper: bool,
    dash: bool,
    at: bool,
    backslash: bool,
    dot: usize,
    colon: usize,
    slash: usize,
}

impl Features {
    fn of(b: &[u8]) -> Features {
        let mut f = Features {
            digit: false,
            upper: false,
            dash: false,
            at: false,
            backslash: false,
            dot: 0,
            colon: 0,
            slash: 0,
        };
        for &c in b {
            match c {
                b'0'..=b'9' => f.digit = true,
                b'A'..=b'Z' => f.upper = true,
                b'-' => f.dash = true,
                b'@' => f.at = true,
                b'\\' => f.backslash = true,
                b'.' => f.dot += 1,
                b':' => f.colon += 1,
                b'/' => f.slash += 1,
                _ => {}
            }
        }
        f
    }
}

fn is_quote(c: u8) -> bool {
    matches!(c, b'"' | b'\'' | b'`')
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

fn is_segment_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c >= 0x80
}

/// Bytes that end a token. Apostrophes are not among them so that "can't" stays a word.
fn is_boundary(c: u8) -> bool {
    matches!(
        c,
        b' ' | b'\t'
            | b'\n'
            | b'\r'
            | 0x0b
            | 0x0c
            | b','
            | b';'
            | b'('
            | b')'
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'<'
            | b'>'
            | b'|'
            | b'!'
            | b'?'
            | b'*'
            | b'"'
            | b'`'
            | b'='
    )
}

/// The closing quote: the same quote character, not followed by a word character
/// (so the apostrophe of "don't" does not close a quote), on the same line.
fn find_close(b: &[u8], from: usize, q: u8) -> Option<usize> {
    let limit = b.len().min(from + MAX_QUOTED);
    let mut k = from;
    while k < limit {
        let c = b[k];
        if c == b'\n' {
            return None;
        }
        if c == q && (k + 1 == b.len() || !is_word_byte(b[k + 1])) {
            return Some(k);
        }
        k += 1;
    }
    None
}

/// A URL starting inside the token `[start, end)`: its start and its end at the next whitespace.
fn find_url(b: &[u8], start: usize, end: usize) -> Option<(usize, usize)> {
    let tok = &b[start..end];
    let p = tok.windows(3).position(|w| w == b"://")? + start;
    let mut s = p;
    while s > start && (b[s - 1].is_ascii_alphanumeric() || matches!(b[s - 1], b'+' | b'.' | b'-')) {
        s -= 1;
    }
    if s == p {
        return None;
    }
    let mut e = p + 3;
    while e < b.len() && !b[e].is_ascii_whitespace() {
        e += 1;
    }
    while e > p + 3
        && matches!(
            b[e - 1],
            b'.' | b',' | b';' | b':' | b')' | b']' | b'}' | b'\'' | b'"' | b'`' | b'>'
        )
    {
        e -= 1;
    }
    Some((s, e))
}

/// Drops punctuation around a token, keeping the leading characters of `./x`, `../x`, `~/x`
/// and `\\share`.
fn trim_token(s: &str) -> &str {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let next = b.get(i + 1).copied();
        match b[i] {
            b'.' if next == Some(b'/') || (next == Some(b'.') && b.get(i + 2) == Some(&b'/')) => break,
            b'~' if next == Some(b'/') => break,
            b'\\' if next == Some(b'\\') => break,
            b':' | b'\'' | b'.' | b'-' | b'$' | b'#' | b'@' | b'&' | b'+' | b'%' | b'^' | b'~' | b'\\' => {
                i += 1
            }
            _ => break,
        }
    }
    let mut j = b.len();
    while j > i
        && matches!(
            b[j - 1],
            b':' | b'.' | b',' | b'\'' | b'-' | b'%' | b'\\' | b';' | b'$' | b'&' | b'^' | b'~'
        )
    {
        j -= 1;
    }
    &s[i..j]
}

fn starts_with_ci(b: &[u8], prefix: &[u8]) -> bool {
    b.len() >= prefix.len() && b[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn is_path(b: &[u8]) -> bool {
    match b {
        [b'/', ..] | [b'.', b'/', ..] | [b'.', b'.', b'/', ..] | [b'~', b'/', ..] | [b'\\', b'\\', ..] => {
            true
        }
        [d, b':', b'\\' | b'/', ..] => d.is_ascii_alphabetic(),
        _ => false,
    }
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn digits(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_digit)
}

/// `2024-11-02…` or `2024/11/02…`; whatever follows the date belongs to it.
fn is_date(b: &[u8]) -> bool {
    b.len() >= 10
        && digits(&b[0..4])
        && (b[4] == b'-' || b[4] == b'/')
        && digits(&b[5..7])
        && b[7] == b[4]
        && digits(&b[8..10])
}

/// `14:30`, `14:30:00.123`, `9:05:00Z`, `14:30:00+02:00`.
fn is_time(b: &[u8]) -> bool {
    let h = b.iter().position(|&c| c == b':').unwrap_or(0);
    if !(1..=2).contains(&h) || !digits(&b[..h]) || b.len() < h + 3 || !digits(&b[h + 1..h + 3]) {
        return false;
    }
    if b.len() > h + 3 && b[h + 3].is_ascii_digit() {
        return false;
    }
    b[h + 3..]
        .iter()
        .all(|&c| c.is_ascii_digit() || matches!(c, b':' | b'.' | b',' | b'+' | b'-' | b'Z' | b'z'))
}

fn is_ipv6(b: &[u8]) -> bool {
    let colons = b.iter().filter(|&&c| c == b':').count();
    let has_double = b.windows(2).any(|w| w == b"::");
    (colons >= 7 || (has_double && colons >= 2))
        && b.len() >= 3
        && b.iter()
            .all(|&c| c.is_ascii_hexdigit() || c == b':' || c == b'.' || c == b'%')
}

/// Dotted-quad IPv4 with an optional `/prefix` or `:port`; `Some(true)` when a port follows.
fn ipv4(b: &[u8]) -> Option<bool> {
    let mut i = 0;
    for octet in 0..4 {
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == s || i - s > 3 {
            return None;
        }
        if octet < 3 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
    }
    match b.get(i) {
        None => Some(false),
        Some(b'/') if i + 1 < b.len() && digits(&b[i + 1..]) => Some(false),
        Some(b':') if i + 1 < b.len() && digits(&b[i + 1..]) => Some(true),
        _ => None,
    }
}

/// Top-level and private-network domains; a whitelist so that `java.lang.OutOfMemoryError`
/// or `values.yaml` are not taken for host names.
const TLDS: &[&str] = &[
    "com",
    "net",
    "org",
    "io",
    "dev",
    "app",
    "cloud",
    "ai",
    "co",
    "internal",
    "local",
    "localdomain",
    "localhost",
    "svc",
    "lan",
    "corp",
    "home",
    "intranet",
    "example",
    "test",
    "invalid",
    "us",
    "eu",
    "uk",
    "de",
    "fr",
    "nl",
    "se",
    "ch",
    "jp",
    "cn",
    "in",
    "br",
    "au",
    "ca",
    "info",
    "biz",
    "me",
    "tech",
    "xyz",
    "site",
    "online",
    "gov",
    "edu",
    "arpa",
    "cluster",
];

fn is_hostname(b: &[u8]) -> bool {
    let mut labels = 0;
    let mut last: &[u8] = &[];
    for label in b.split(|&c| c == b'.') {
        if label.is_empty()
            || !label
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        {
            return false;
        }
        labels += 1;
        last = label;
    }
    labels >= 2
        && last.iter().all(u8::is_ascii_alphabetic)
        && TLDS.iter().any(|t| t.as_bytes().eq_ignore_ascii_case(last))
}

/// `v1.2.3`, `1.2.3`, `1.25-alpine`, `2.0.0-rc.1+build.5`, `v2`; a bare `1.5` is a number.
fn is_version(b: &[u8]) -> bool {
    let mut i = 0;
    let v = matches!(b.first(), Some(b'v' | b'V'));
    if v {
        i = 1;
    }
    let s = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i == s {
        return false;
    }
    let mut dots = 0;
    while i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        dots += 1;
    }
    let mut suffix = false;
    if i + 1 < b.len() && (b[i] == b'-' || b[i] == b'+') {
        if !b[i + 1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+' | b'_'))
        {
            return false;
        }
        suffix = true;
        i = b.len();
    }
    i == b.len() && (v || dots >= 2 || (dots >= 1 && suffix))
}

/// An image tag or similar after a colon: contains a digit, made of tag characters.
fn is_tag(b: &[u8]) -> bool {
    b.iter().any(u8::is_ascii_digit)
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'+'))
        && ipv4(b).is_none()
        && !is_hostname(b)
}

/// Seven or more hex digits with at least one digit and one letter: commit SHAs, container
/// and image ids. Words such as "deadbeef" or "facade" have no digit and stay words.
fn is_hex_id(b: &[u8]) -> bool {
    b.len() >= 7
        && b.iter().all(u8::is_ascii_hexdigit)
        && b.iter().any(u8::is_ascii_digit)
        && b.iter().any(u8::is_ascii_alphabetic)
}

fn is_duration(b: &[u8]) -> bool {
    // Go-style compound durations: 45s, 1m30s, 10m0s, 1.5h, 250ms.
    let mut i = 0;
    let mut parts = 0;
    while i < b.len() {
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == s {
            return false;
        }
        if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
        let rest = &b[i..];
        let unit_len =
            if rest.len() >= 2 && matches!(rest[0] | 0x20, b'm' | b'n' | b'u') && (rest[1] | 0x20) == b's' {
                2
            } else if rest.starts_with("µs".as_bytes()) {
                3
            } else if !rest.is_empty() && matches!(rest[0], b's' | b'S' | b'm' | b'h' | b'H' | b'd' | b'D') {
                1
            } else if !rest.is_empty() && rest[0] == b'M' && parts == 0 && rest.len() > 1 {
                // Upper-cased "4M12S" is still minutes and seconds.
                1
            } else {
                return false;
            };
        i += unit_len;
        parts += 1;
    }
    parts > 0
}

fn is_size_unit(u: &[u8]) -> bool {
    const UNITS: &[&[u8]] = &[
        b"b", b"kb", b"mb", b"gb", b"tb", b"pb", b"kib", b"mib", b"gib", b"tib", b"pib", b"ki", b"mi", b"gi",
        b"ti", b"pi", b"bytes", b"byte",
    ];
    u.len() <= 5 && UNITS.iter().any(|x| x.eq_ignore_ascii_case(u))
}

/// A unit word after a number ("45 seconds", "256 MB"): its placeholder and where it ends.
fn unit_after(b: &[u8], from: usize) -> Option<(&'static str, usize)> {
    let mut s = from;
    while s < b.len() && (b[s] == b' ' || b[s] == b'\t') {
        s += 1;
    }
    if s == from {
        return None;
    }
    let mut e = s;
    while e < b.len() && b[e].is_ascii_alphabetic() {
        e += 1;
    }
    if e == s || e - s > 12 || (e < b.len() && is_word_byte(b[e])) {
        return None;
    }
    let w = &b[s..e];
    const DURATIONS: &[&[u8]] = &[
        b"ns",
        b"us",
        b"ms",
        b"s",
        b"sec",
        b"secs",
        b"second",
        b"seconds",
        b"min",
        b"mins",
        b"minute",
        b"minutes",
        b"h",
        b"hr",
        b"hrs",
        b"hour",
        b"hours",
        b"day",
        b"days",
        b"millisecond",
        b"milliseconds",
        b"microseconds",
        b"nanoseconds",
    ];
    if DURATIONS.iter().any(|x| x.eq_ignore_ascii_case(w)) {
        return Some((DURATION, e));
    }
    if is_size_unit(w) {
        return Some((SIZE, e));
    }
    None
}

/// Kubernetes pod names: `<name>-<hash>-<suffix>` (Deployments) or `<name>-<suffix>` (Jobs,
/// DaemonSets), optionally followed by `_<namespace>` as the kubelet writes them. Generated
/// parts use the Kubernetes alphabet, which has no vowels and no 0, 1 or 3, so ordinary
/// hyphenated words do not match.
fn is_pod(b: &[u8]) -> bool {
    fn generated(s: &[u8]) -> bool {
        s.iter().all(|&c| {
            matches!(c.to_ascii_lowercase(), b'b'..=b'd' | b'f'..=b'h' | b'j'..=b'n' | b'p'..=b't' | b'v' | b'w' | b'x' | b'z' | b'2' | b'4'..=b'9')
        }) && !s.iter().all(u8::is_ascii_digit)
    }
    let name = match b.iter().position(|&c| c == b'_') {
        Some(u) => &b[..u],
        None => b,
    };
    if !name.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-') {
        return false;
    }
    // The generated suffix must follow a name.
    match name.iter().rposition(|&c| c == b'-') {
        Some(d) if d > 0 => name.len() - d - 1 == 5 && generated(&name[d + 1..]),
        _ => false,
    }
}

/// `DATABASE_URL`, `PORT`: upper-case letters, digits and underscores.
fn is_env_name(b: &[u8]) -> bool {
    b.len() >= 2
        && (b[0].is_ascii_uppercase() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
        && !is_hex_id(b)
}
