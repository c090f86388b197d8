//! Byte-level predicates that recognize kinds of variable data in a token.

use crate::normalize::MAX_QUOTED;

pub(crate) fn is_quote(c: u8) -> bool {
    matches!(c, b'"' | b'\'' | b'`')
}

pub(crate) fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

pub(crate) fn is_segment_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c >= 0x80
}

/// Bytes that end a token: whitespace and punctuation that never belongs to a value.
/// Apostrophes are not among them so that "can't" stays a word.
pub(crate) fn is_boundary(c: u8) -> bool {
    BOUNDARY[c as usize]
}

static BOUNDARY: [bool; 256] = {
    let mut t = [false; 256];
    let set = b" \t\n\r\x0b\x0c,;()[]{}<>|!?*\"`=";
    let mut i = 0;
    while i < set.len() {
        t[set[i] as usize] = true;
        i += 1;
    }
    t
};

/// The closing quote: the same quote character, not followed by a word character
/// (so the apostrophe of "don't" does not close a quote), on the same line.
pub(crate) fn find_close(b: &[u8], from: usize, q: u8) -> Option<usize> {
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
pub(crate) fn find_url(b: &[u8], start: usize, end: usize) -> Option<(usize, usize)> {
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
pub(crate) fn trim_token(s: &str) -> &str {
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

pub(crate) fn starts_with_ci(b: &[u8], prefix: &[u8]) -> bool {
    b.len() >= prefix.len() && b[..prefix.len()].eq_ignore_ascii_case(prefix)
}

pub(crate) fn is_path(b: &[u8]) -> bool {
    match b {
        [b'/', ..] | [b'.', b'/', ..] | [b'.', b'.', b'/', ..] | [b'~', b'/', ..] | [b'\\', b'\\', ..] => {
            true
        }
        [d, b':', b'\\' | b'/', ..] => d.is_ascii_alphabetic(),
        _ => false,
    }
}

pub(crate) fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

pub(crate) fn digits(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_digit)
}

/// `2024-11-02…` or `2024/11/02…`; whatever follows the date belongs to it.
pub(crate) fn is_date(b: &[u8]) -> bool {
    b.len() >= 10
        && digits(&b[0..4])
        && (b[4] == b'-' || b[4] == b'/')
        && digits(&b[5..7])
        && b[7] == b[4]
        && digits(&b[8..10])
}

/// `14:30`, `14:30:00.123`, `9:05:00Z`, `14:30:00+02:00`.
pub(crate) fn is_time(b: &[u8]) -> bool {
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

pub(crate) fn is_ipv6(b: &[u8]) -> bool {
    let colons = b.iter().filter(|&&c| c == b':').count();
    let has_double = b.windows(2).any(|w| w == b"::");
    (colons >= 7 || (has_double && colons >= 2))
        && b.len() >= 3
        && b.iter()
            .all(|&c| c.is_ascii_hexdigit() || c == b':' || c == b'.' || c == b'%')
}

/// Dotted-quad IPv4 with an optional `/prefix` or `:port`; `Some(true)` when a port follows.
pub(crate) fn ipv4(b: &[u8]) -> Option<bool> {
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
#[rustfmt::skip]
const TLDS: &[&str] = &[
    "com", "net", "org", "io", "dev", "app", "cloud", "ai", "co", "internal", "local", "localdomain",
    "localhost", "svc", "cluster", "lan", "corp", "home", "intranet", "example", "test", "invalid",
    "us", "eu", "uk", "de", "fr", "nl", "se", "ch", "jp", "cn", "in", "br", "au", "ca", "info", "biz",
    "me", "tech", "xyz", "site", "online", "gov", "edu", "arpa",
];

pub(crate) fn is_hostname(b: &[u8]) -> bool {
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
pub(crate) fn is_version(b: &[u8]) -> bool {
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

/// An image tag after a colon: made of tag characters, and either starting like a version
/// (`1.25-alpine`, `v3.1.0`) or carrying a commit id (`sha-3f2a1b4`, `main-9c1e2f7`).
pub(crate) fn is_tag(b: &[u8]) -> bool {
    let versionish =
        b[0].is_ascii_digit() || (matches!(b[0], b'v' | b'V') && b.get(1).is_some_and(u8::is_ascii_digit));
    (versionish
        || b.split(|c| !c.is_ascii_alphanumeric())
            .any(|s| is_hex_id(s) || is_random_id(s)))
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'+'))
        && ipv4(b).is_none()
        && !is_hostname(b)
}

/// Generated alphanumeric ids (`x2x4zq9mklc7t`, request and build ids): long, with several
/// digits and letters. Vocabulary with digits (`x509`, `psycopg2`, `utf8mb4`) is shorter.
pub(crate) fn is_random_id(b: &[u8]) -> bool {
    b.len() >= 10
        && b.iter().all(u8::is_ascii_alphanumeric)
        && b.iter().filter(|c| c.is_ascii_digit()).count() >= 3
        && b.iter().filter(|c| c.is_ascii_alphabetic()).count() >= 2
}

/// Seven or more hex digits with at least one digit and one letter: commit SHAs, container
/// and image ids. Words such as "deadbeef" or "facade" have no digit and stay words.
pub(crate) fn is_hex_id(b: &[u8]) -> bool {
    b.len() >= 7
        && b.iter().all(u8::is_ascii_hexdigit)
        && b.iter().any(u8::is_ascii_digit)
        && b.iter().any(u8::is_ascii_alphabetic)
}

/// Go-style durations, also compound: `45s`, `1m30s`, `10m0s`, `1.5h`, `250ms`.
pub(crate) fn is_duration(b: &[u8]) -> bool {
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

/// `Mi`, `GB`, `KiB`, `bytes`, in any case. Single-letter `M`/`G`/`K` are handled by the caller,
/// because a lowercase `m` is minutes.
pub(crate) fn is_size_unit(u: &[u8]) -> bool {
    const UNITS: &[&[u8]] = &[
        b"b", b"kb", b"mb", b"gb", b"tb", b"pb", b"kib", b"mib", b"gib", b"tib", b"pib", b"ki", b"mi", b"gi",
        b"ti", b"pi", b"bytes", b"byte",
    ];
    u.len() <= 5 && UNITS.iter().any(|x| x.eq_ignore_ascii_case(u))
}

/// Kubernetes pod names: a name followed by a 5-character generated suffix, as in
/// `<deployment>-<hash>-x2x4z` or `<job>-x2x4z`, optionally followed by `_<namespace>` as the
/// kubelet writes them. Generated characters come from the Kubernetes alphabet, which has no
/// vowels and no 0, 1 or 3, so ordinary hyphenated words (`health-check`, `linux-amd64`) do not
/// match.
pub(crate) fn is_pod(b: &[u8]) -> bool {
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
pub(crate) fn is_env_name(b: &[u8]) -> bool {
    b.len() >= 2
        && (b[0].is_ascii_uppercase() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
        && !is_hex_id(b)
}
