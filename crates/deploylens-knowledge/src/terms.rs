//! Turning error text into search terms: words of the normalized template (placeholders and
//! filler words dropped, light stemming), plus concept terms for the vocabulary that the same
//! failure is written in many ways (`ENOTFOUND`, `no such host`, `Name or service not known`
//! are all a failed DNS lookup). The concepts are general deployment vocabulary: errno names,
//! HTTP statuses and the phrases tools print for them.

/// Words too common in error messages to tell failures apart.
const STOP: &[&str] = &[
    "a", "an", "the", "to", "of", "for", "in", "on", "at", "by", "with", "and", "or", "is", "was", "be",
    "been", "are", "from", "while", "after", "before", "this", "that", "it", "its", "as", "has", "have",
    "had", "error", "err", "failed", "failure", "fatal", "unable", "cannot", "can", "could", "did", "does",
    "when", "into", "than", "then", "there",
];

/// (concept, phrases that mean it), matched in the lowercased raw text.
const CONCEPTS: &[(&str, &[&str])] = &[
    (
        "~dns",
        &[
            "enotfound",
            "getaddrinfo",
            "nxdomain",
            "no such host",
            "name or service not known",
            "could not resolve",
            "name resolution",
            "could not translate host name",
            "servfail",
            "dns",
        ],
    ),
    (
        "~refused",
        &[
            "econnrefused",
            "connection refused",
            "error 111",
            "actively refused",
        ],
    ),
    (
        "~timeout",
        &[
            "etimedout",
            "timed out",
            "timeout",
            "deadline exceeded",
            "deadline",
            "took too long",
            "gave up after",
        ],
    ),
    (
        "~reset",
        &["econnreset", "connection reset", "broken pipe", "epipe"],
    ),
    (
        "~disk",
        &[
            "enospc",
            "no space left",
            "disk full",
            "disk quota",
            "out of disk",
            "diskpressure",
        ],
    ),
    ("~inodes", &["inode", "ifree", "iuse%", "df -i"]),
    (
        "~oom",
        &[
            "oomkilled",
            "out of memory",
            "exit code 137",
            "oom",
            "memory limit",
            "heap space",
            "cannot allocate memory",
        ],
    ),
    (
        "~auth",
        &[
            "401",
            "unauthorized",
            "authentication failed",
            "authentication required",
            "invalid username or password",
            "bad credentials",
            "access denied",
            "permission denied (publickey)",
        ],
    ),
    ("~forbidden", &["403", "forbidden"]),
    (
        "~ratelimit",
        &[
            "429",
            "too many requests",
            "toomanyrequests",
            "rate limit",
            "rate exceeded",
            "throttl",
        ],
    ),
    (
        "~notfound",
        &[
            "404",
            "not found",
            "enoent",
            "no such file",
            "does not exist",
            "manifest unknown",
        ],
    ),
    ("~tls", &["x509", "certificate", "ssl", "tls"]),
    (
        "~crashloop",
        &["crashloopbackoff", "back-off restarting", "backoff restarting"],
    ),
    (
        "~permission",
        &[
            "eacces",
            "permission denied",
            "operation not permitted",
            "eperm",
            "read-only file system",
        ],
    ),
    (
        "~port",
        &[
            "eaddrinuse",
            "address already in use",
            "port is already allocated",
            "already in use",
            "bind:",
        ],
    ),
    ("~lock", &["lock", "locked"]),
    (
        "~migration",
        &[
            "migration",
            "migrate",
            "schema_migrations",
            "alembic",
            "flyway",
            "liquibase",
        ],
    ),
    (
        "~pull",
        &["pull", "imagepullbackoff", "errimagepull", "registry", "manifest"],
    ),
    ("~secret", &["secret", "credential"]),
    (
        "~env",
        &[
            "environment variable",
            "env var",
            "not set",
            "keyerror",
            "missing required configuration",
            "must be defined",
            "undefined variable",
        ],
    ),
    (
        "~schedule",
        &[
            "failedscheduling",
            "insufficient",
            "unschedulable",
            "0/",
            "nodes are available",
        ],
    ),
    ("~platform", &["exec format error", "platform", "arm64", "amd64"]),
    (
        "~rollout",
        &[
            "rollout",
            "progressdeadlineexceeded",
            "progress deadline",
            "updated replicas",
        ],
    ),
    (
        "~postgres",
        &["postgres", "psql", "psycopg", "5432", "pg_", "sqlstate", "libpq"],
    ),
    ("~mysql", &["mysql", "mariadb", "3306"]),
    ("~redis", &["redis", "6379"]),
    ("~mongo", &["mongo", "27017"]),
    (
        "~git",
        &["git ", "git:", ".git", "github", "gitlab", "bitbucket", "remote:"],
    ),
    (
        "~evicted",
        &[
            "evicted",
            "eviction",
            "memorypressure",
            "diskpressure",
            "node had",
        ],
    ),
    (
        "~healthcheck",
        &[
            "health check",
            "healthcheck",
            "healthz",
            "liveness",
            "readiness",
            "probe",
        ],
    ),
    ("~helm", &["helm", "release", "upgrade failed", "atomic"]),
    ("~df", &["df ", "df:"]),
    (
        "~certname",
        &[
            "is valid for",
            "not valid for",
            "wanted to match",
            "doesn't match",
            "does not match any",
            "hostname mismatch",
            "subject alternative name",
            "ip sans",
        ],
    ),
];

/// Weights of the kinds of terms: an identifier such as `JWT_SECRET` names the failure more
/// than a common word does, a concept bridges wordings, a pair of words keeps some order.
const WORD: f64 = 1.0;
const IDENTIFIER: f64 = 2.5;
const CONCEPT: f64 = 2.0;
const PAIR: f64 = 0.5;
/// Words of the raw text, including those the template masked (paths, hosts, image names):
/// weak evidence, but the same data directory or registry often means the same failure.
const RAW: f64 = 0.3;

fn stem(word: &str) -> &str {
    if word.len() > 5 {
        for suffix in ["ing", "ed", "es"] {
            if let Some(s) = word.strip_suffix(suffix) {
                return s;
            }
        }
    }
    if word.len() > 4
        && let Some(s) = word.strip_suffix('s')
    {
        return s;
    }
    word
}

/// Weighted search terms of a template (already normalized) and its raw text.
pub fn terms(template: &str, raw: &str) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    let mut previous: Option<String> = None;
    for word in template.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '<' || c == '>')) {
        if word.is_empty()
            || word.starts_with('<')
            || STOP.contains(&word)
            || word.chars().all(|c| c.is_ascii_digit())
        {
            continue;
        }
        let stemmed = stem(word).to_string();
        let weight = if word.contains('_') { IDENTIFIER } else { WORD };
        if let Some(p) = previous.take() {
            out.push((format!("{p}+{stemmed}"), PAIR));
        }
        previous = Some(stemmed.clone());
        out.push((stemmed, weight));
    }
    let lower = raw.to_lowercase();
    for word in lower.split(|c: char| !c.is_alphanumeric()) {
        if word.len() >= 3 && !STOP.contains(&word) && !word.chars().all(|c| c.is_ascii_digit()) {
            out.push((stem(word).to_string(), RAW));
        }
    }
    for (concept, phrases) in CONCEPTS {
        if phrases.iter().any(|p| lower.contains(p)) {
            out.push(((*concept).to_string(), CONCEPT));
        }
    }
    out
}

/// Terms of free text such as a recorded fix (no template).
pub fn text_terms(text: &str) -> Vec<(String, f64)> {
    terms(&text.to_lowercase(), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concepts_bridge_wordings() {
        let a = terms(
            "getaddrinfo enotfound <host>",
            "getaddrinfo ENOTFOUND db.internal",
        );
        let b = terms(
            "dial tcp lookup <host> no such host",
            "dial tcp: lookup db: no such host",
        );
        let has = |v: &[(String, f64)], t: &str| v.iter().any(|(x, _)| x == t);
        assert!(has(&a, "~dns") && has(&b, "~dns"));
        assert!(!a.iter().any(|(t, _)| t.starts_with('<')));
        assert!(
            !terms("the error failed", "")
                .iter()
                .any(|(t, _)| t == "the" || t == "error")
        );
        let ident = terms("keyerror jwt_secret", "KeyError: 'JWT_SECRET'");
        assert!(ident.iter().any(|(t, w)| t == "jwt_secret" && *w > 1.0));
    }
}
