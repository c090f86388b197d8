//! The token-by-token rewrite of a message into its template.

use crate::lexical::*;

/// A quote whose closing quote is further away than this is taken as stray punctuation.
pub(crate) const MAX_QUOTED: usize = 512;

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
const ID: &str = "<id>";
const NUM: &str = "<num>";

/// Rewrites a message whose prefixes are already stripped into its template, in `out`
/// (cleared first), so that a caller can reuse one buffer for many messages.
pub(crate) fn normalize_into(body: &str, out: &mut String) {
    out.clear();
    let mut n = Normalizer {
        src: body,
        b: body.as_bytes(),
        i: 0,
        out: std::mem::take(out),
        last: Last::Start,
    };
    n.run();
    *out = n.out;
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

#[derive(Clone, Copy)]
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
            let mut colon = false;
            while end < n && !is_boundary(b[end]) {
                colon |= b[end] == b':';
                end += 1;
            }
            // URLs contain characters that end other tokens, so they are cut at whitespace.
            if colon && let Some((url_start, url_end)) = find_url(b, start, end) {
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
        if !left.is_empty() && is_version(right.as_bytes()) && ipv4(right.as_bytes()).is_none() {
            // package@1.2.3
            self.classify(
                left,
                Ctx {
                    standalone: false,
                    ..ctx
                },
            );
            self.ph(VERSION);
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
                        // A number after a file name is a line number, after anything else a
                        // port, unless it is too long for one (account ids in ARNs).
                        let file_like = self.last == Last::Ph(PATH)
                            || (prev_part.contains('.')
                                && !matches!(self.last, Last::Ph(HOST) | Last::Ph(IP)));
                        self.ph(if file_like || pb.len() > 5 { NUM } else { PORT });
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
            if ctx.standalone
                && let Some((p, end)) = unit_after(self.b, self.i)
            {
                self.ph(p);
                self.i = end;
                return true;
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
                } else if is_random_id(seg) {
                    self.out.push_str(ID);
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
        let mark = out.len();
        out.push_str(s);
        out[mark..].make_ascii_lowercase();
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

const F_DIGIT: u8 = 1;
const F_UPPER: u8 = 2;
const F_DASH: u8 = 4;
const F_AT: u8 = 8;
const F_BACKSLASH: u8 = 16;
const F_DOT: u8 = 32;
const F_COLON: u8 = 64;
const F_SLASH: u8 = 128;

/// The class bit of each byte: one lookup and one OR per byte of a token.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = b'0';
    while c <= b'9' {
        t[c as usize] = F_DIGIT;
        c += 1;
    }
    let mut c = b'A';
    while c <= b'Z' {
        t[c as usize] = F_UPPER;
        c += 1;
    }
    t[b'-' as usize] = F_DASH;
    t[b'@' as usize] = F_AT;
    t[b'\\' as usize] = F_BACKSLASH;
    t[b'.' as usize] = F_DOT;
    t[b':' as usize] = F_COLON;
    t[b'/' as usize] = F_SLASH;
    t
};

impl Features {
    fn of(b: &[u8]) -> Features {
        let flags = b.iter().fold(0u8, |f, &c| f | CLASS[c as usize]);
        // Counts only where some are: most tokens have no dot, colon or slash.
        let count = |bit: u8, byte: u8| {
            if flags & bit == 0 {
                0
            } else {
                b.iter().filter(|&&c| c == byte).count()
            }
        };
        Features {
            digit: flags & F_DIGIT != 0,
            upper: flags & F_UPPER != 0,
            dash: flags & F_DASH != 0,
            at: flags & F_AT != 0,
            backslash: flags & F_BACKSLASH != 0,
            dot: count(F_DOT, b'.'),
            colon: count(F_COLON, b':'),
            slash: count(F_SLASH, b'/'),
        }
    }
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
    const DURATIONS: &str = "ns us ms s sec secs second seconds min mins minute minutes h hr hrs hour hours \
                             day days millisecond milliseconds microseconds nanoseconds";
    if DURATIONS
        .split_ascii_whitespace()
        .any(|x| x.as_bytes().eq_ignore_ascii_case(w))
    {
        return Some((DURATION, e));
    }
    if is_size_unit(w) {
        return Some((SIZE, e));
    }
    None
}
