//! Normalization rules, fingerprint stability, and grouping quality on the labeled set of
//! deployment failures in `testdata/errors/labeled.jsonl`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use deploylens_fingerprint::{analyze, fingerprint, template, tokens};

fn t(message: &str) -> String {
    template(message)
}

// ---------------------------------------------------------------------------------------------
// Placeholders, one family at a time.

#[test]
fn urls() {
    assert_eq!(
        t("GET https://api.example.com/v1/health?x=1&y=2 failed"),
        "get <url> failed"
    );
    assert_eq!(t("fetching (http://10.0.0.5:8080/ready)."), "fetching <url>");
    assert_eq!(t("daemon at unix:///var/run/docker.sock."), "daemon at <url>");
    assert_eq!(t("upload to s3://bucket/key.tar.gz done"), "upload to <url> done");
}

#[test]
fn emails_and_user_at_host() {
    assert_eq!(t("notify ops@example.com failed"), "notify <email> failed");
    assert_eq!(
        t("git@github.com: Permission denied"),
        "<email> permission denied"
    );
    assert_eq!(
        t("deploy@10.0.5.12: Permission denied"),
        "<email> permission denied"
    );
}

#[test]
fn uuids() {
    assert_eq!(
        t("request 3F2A1B4C-5D6E-4F80-9A1B-2C3D4E5F6A7B failed"),
        "request <uuid> failed"
    );
    assert_eq!(
        t("pod uid (8e7d6c5b-4a39-4281-b7c6-d5e4f3a2b1c0)"),
        "pod uid <uuid>"
    );
}

#[test]
fn timestamps_dates_and_times() {
    assert_eq!(t("expired at 2024-10-31T23:59:59Z"), "expired at <timestamp>");
    assert_eq!(
        t("expired at 2024-10-31T23:59:59.123+02:00"),
        "expired at <timestamp>"
    );
    assert_eq!(
        t("created 2024-11-02 14:30:00.123456789 +0000 UTC by ci"),
        "created <timestamp> by ci"
    );
    assert_eq!(t("since 2024/11/02 at 14:30"), "since <timestamp> at <timestamp>");
    assert_eq!(t("started 09:05:00 stopped"), "started <timestamp> stopped");
}

#[test]
fn ips_and_ports() {
    assert_eq!(
        t("dial tcp 10.0.2.15:5432: connect"),
        "dial tcp <ip> <port> connect"
    );
    assert_eq!(t("from 192.168.1.1 to 10.0.0.0/16"), "from <ip> to <ip>");
    assert_eq!(t("listen tcp [::]:8443: bind"), "listen tcp <ip> <port> bind");
    assert_eq!(
        t("connect to [2001:db8::1]:5432 failed"),
        "connect to <ip> <port> failed"
    );
    assert_eq!(t("resolver fe80::1ff:fe23:4567:890a down"), "resolver <ip> down");
    assert_eq!(
        t("connection refused (port 5432)"),
        "connection refused port <port>"
    );
    assert_eq!(t("redis-master:6379 refused"), "redis-master <port> refused");
    assert_eq!(t("db.internal.example.com:5432 refused"), "<host> <port> refused");
}

#[test]
fn hex_ids_shas_and_containers() {
    assert_eq!(t("commit 3f2a1b4 broke it"), "commit <hex> broke it");
    assert_eq!(
        t("commit 3f2a1b4c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a broke it"),
        "commit <sha> broke it"
    );
    assert_eq!(t("image sha256:9c1e2f7a0b3d pulled"), "image <sha> pulled");
    assert_eq!(t("nginx@sha256:9c1e2f7a0b3d pulled"), "nginx <sha> pulled");
    assert_eq!(t("addr=0x7ffd5e8 fault"), "addr <hex> fault");
    assert_eq!(t("container 3f4e5a6b7c8d exited"), "container <container> exited");
    // Hex-looking words without digits stay words.
    assert_eq!(t("deadbeef facade accede"), "deadbeef facade accede");
    assert_eq!(
        t("instance i-0abc123def4567890 stopped"),
        "instance i-<hex> stopped"
    );
}

#[test]
fn paths() {
    assert_eq!(
        t("open /var/lib/app/data.db: permission denied"),
        "open <path> permission denied"
    );
    assert_eq!(t("run ./scripts/deploy.sh now"), "run <path> now");
    assert_eq!(t("run ../deploy.sh now"), "run <path> now");
    assert_eq!(t("read ~/.kube/config failed"), "read <path> failed");
    assert_eq!(t(r"read C:\Users\runner\app.yml failed"), "read <path> failed");
    assert_eq!(t("secret prod/db-credentials missing"), "secret <path> missing");
    assert_eq!(t("File \"/app/main.py\", line 12"), "file <str> line <num>");
    // Short slash-joined words are vocabulary, not paths.
    assert_eq!(t("read udp: i/o timeout"), "read udp i/o timeout");
    assert_eq!(t("accepting TCP/IP connections"), "accepting tcp/ip connections");
}

#[test]
fn versions_and_image_tags() {
    assert_eq!(t("upgrade to v1.2.3 failed"), "upgrade to <version> failed");
    assert_eq!(t("upgrade to 1.2.3-rc.1 failed"), "upgrade to <version> failed");
    assert_eq!(
        t("upgrade to 2.0.0+build.5 failed"),
        "upgrade to <version> failed"
    );
    assert_eq!(t("pull nginx:1.25 failed"), "pull nginx <version> failed");
    assert_eq!(t("pull python:3.12-slim failed"), "pull python <version> failed");
    assert_eq!(
        t("pull ghcr.io/acme/api:sha-3f2a1b4 failed"),
        "pull <path> <version> failed"
    );
    assert_eq!(t("pull nginx:latest failed"), "pull nginx latest failed");
    assert_eq!(
        t("typescript@5.3.3 does not satisfy"),
        "typescript <version> does not satisfy"
    );
    // A bare decimal is a number.
    assert_eq!(t("limit 24.0 reached"), "limit <num> reached");
}

#[test]
fn durations() {
    for d in [
        "45s",
        "30ms",
        "1m30s",
        "2h",
        "10m0s",
        "1.5h",
        "45 seconds",
        "2.5 minutes",
        "1 hour",
        "250 ms",
    ] {
        assert_eq!(
            t(&format!("timeout after {d}.")),
            "timeout after <duration>",
            "{d}"
        );
    }
}

#[test]
fn sizes() {
    for s in [
        "512Mi",
        "1.5GB",
        "256 MB",
        "1024 bytes",
        "2Gi",
        "10512344Ki",
        "512M",
        "64 KiB",
    ] {
        assert_eq!(t(&format!("limit {s} exceeded")), "limit <size> exceeded", "{s}");
    }
}

#[test]
fn hostnames() {
    assert_eq!(
        t("lookup db.internal.example.com: no such host"),
        "lookup <host> no such host"
    );
    assert_eq!(
        t("lookup redis.cache.svc.cluster.local failed"),
        "lookup <host> failed"
    );
    assert_eq!(
        t("node ip-10-0-1-23.ec2.internal not ready"),
        "node <host> not ready"
    );
    assert_eq!(
        t("valid for *.example.com, not api.example.org"),
        "valid for <host> not <host>"
    );
    // Dotted names that are not hosts stay words.
    assert_eq!(
        t("java.lang.OutOfMemoryError in values.yaml"),
        "java.lang.outofmemoryerror in values.yaml"
    );
    assert_eq!(t("localhost refused"), "localhost refused");
}

#[test]
fn pod_names() {
    assert_eq!(t("pod api-7d9f8b6c5-x2x4z crashed"), "pod <pod> crashed");
    assert_eq!(
        t("pod payments-worker-84b6d5c7f9-zz9kq crashed"),
        "pod <pod> crashed"
    );
    assert_eq!(t("pod migrate-db-qwxzt crashed"), "pod <pod> crashed");
    assert_eq!(
        t("pod api-5d8f7c9b4-qwxzt_prod(uid) crashed"),
        "pod <pod> uid crashed"
    );
    // Hyphenated words and StatefulSet ordinals are not generated names.
    assert_eq!(t("health-check failed"), "health-check failed");
    assert_eq!(t("pod postgres-0 crashed"), "pod postgres-<num> crashed");
    assert_eq!(t("build for linux-amd64 failed"), "build for linux-amd64 failed");
}

#[test]
fn generated_ids() {
    assert_eq!(t("ref x2x4zq9mklc7t not found"), "ref <id> not found");
    // Vocabulary with digits stays.
    assert_eq!(
        t("x509 psycopg2 utf8mb4 s3 ec2 k8s"),
        "x509 psycopg2 utf8mb4 s3 ec2 k8s"
    );
}

#[test]
fn quoted_values() {
    assert_eq!(t("secret \"db-credentials\" not found"), "secret <str> not found");
    assert_eq!(t("secret 'app secrets' not found"), "secret <str> not found");
    assert_eq!(t("column `email` exists"), "column <str> exists");
    // Apostrophes inside words do not open quotes.
    assert_eq!(t("can't find it, don't retry"), "can't find it don't retry");
    // Stray quotes are dropped.
    assert_eq!(t("unterminated \"quote here"), "unterminated quote here");
}

#[test]
fn environment_variable_names_are_kept() {
    assert_eq!(
        t("environment variable DATABASE_URL is not set"),
        "environment variable database_url is not set"
    );
    assert_eq!(
        t("environment variable \"DATABASE_URL\" is not set"),
        "environment variable database_url is not set"
    );
    assert_eq!(t("KeyError: 'REDIS_URL'"), "keyerror redis_url");
    assert_ne!(
        fingerprint("environment variable DATABASE_URL is not set"),
        fingerprint("environment variable REDIS_URL is not set")
    );
}

#[test]
fn key_value_pairs() {
    assert_eq!(
        t("connect failed host=10.0.0.5 port=5432 user=app db=orders_v2"),
        "connect failed host <ip> port <port> user <str> db <str>"
    );
    // Enum-like values stay: they name the failure.
    assert_eq!(
        t("terminated reason=OOMKilled exitCode=137"),
        "terminated reason oomkilled exitcode 137"
    );
    assert_eq!(t("phase=Pending timeout=30s"), "phase pending timeout <duration>");
}

#[test]
fn numbers_and_codes() {
    assert_eq!(
        t("retried 5 times, 3 of 10 ready (95%)"),
        "retried <num> times <num> of <num> ready <num>"
    );
    assert_eq!(t("0/3 nodes are available"), "<num> nodes are available");
    assert_eq!(t("postgres-0 and web_1"), "postgres-<num> and web_<num>");
    // Numbers that name a code are kept, so exit 137 and exit 1 stay apart.
    assert_eq!(
        t("container exited with code 137"),
        "container exited with code 137"
    );
    assert_eq!(t("exit status 1"), "exit status 1");
    assert_eq!(t("killed by signal 9"), "killed by signal 9");
    assert_eq!(
        t("probe failed with statuscode: 503"),
        "probe failed with statuscode 503"
    );
    assert_eq!(
        t("ERROR 1060 (42S21): Duplicate column"),
        "error 1060 42s21 duplicate column"
    );
    assert_ne!(
        fingerprint("exited with code 137"),
        fingerprint("exited with code 143")
    );
}

// ---------------------------------------------------------------------------------------------
// Prefixes, case and punctuation.

#[test]
fn prefixes_are_stripped() {
    let want = "health check timeout after <duration>";
    for m in [
        "health check timeout after 5s",
        "2024-11-02T14:30:00Z health check timeout after 5s",
        "2024-11-02T14:30:00.512+01:00 ERROR health check timeout after 5s",
        "2024-11-02 14:30:00,118 WARNING [worker] health check timeout after 5s",
        "2024/11/02 14:30:00 health check timeout after 5s",
        "Nov 02 14:30:00 ip-10-0-1-5 app[812]: health check timeout after 5s",
        "Nov  2 14:30:00 health check timeout after 5s",
        "E1102 14:30:00.123456    1 prober.go:107] health check timeout after 5s",
        "E1102 health check timeout after 5s",
        "ERROR: health check timeout after 5s",
        "[error] health check timeout after 5s",
        "[ERROR] [api] health check timeout after 5s",
        "level=error health check timeout after 5s",
        "time=\"2024-11-02T14:30:00Z\" level=error msg=\"health check timeout after 5s\"",
        "FATAL health check timeout after 5s",
        "WARN - health check timeout after 5s",
        "panic: health check timeout after 5s",
        "<3> health check timeout after 5s",
        "web_1  | health check timeout after 5s",
        "heroku[web.1]: health check timeout after 5s",
        "2024-11-02 14:30:00.118 ERROR 1 --- [main] health check timeout after 5s",
        "#12 4.211 health check timeout after 5s",
        "│ Error: health check timeout after 5s",
        "2024/11/02 14:30:00 [error] 1234#0: *5 health check timeout after 5s",
    ] {
        assert_eq!(t(m), want, "{m}");
    }
}

#[test]
fn json_log_lines_use_message_and_error() {
    assert_eq!(
        t(
            r#"{"ts":1730558400.1,"level":"error","msg":"connect failed","error":"dial tcp 10.0.0.5:5432: connection refused","stack":{"a":[1,{"b":"c"}]}}"#
        ),
        "connect failed dial tcp <ip> <port> connection refused"
    );
    assert_eq!(
        t(r#"{"message":"secret \"db\" not found"}"#),
        "secret <str> not found"
    );
    // Not a JSON log line: read as text.
    assert_eq!(t("{not json"), "not json");
}

#[test]
fn case_and_punctuation_do_not_matter() {
    let a = fingerprint("Error: connection refused (port 5432)");
    assert_eq!(a, fingerprint("error - connection refused, port 6432"));
    assert_eq!(a, fingerprint("ERROR: CONNECTION REFUSED; PORT 5433."));
    assert_eq!(a, fingerprint("  connection   refused\t(port: 5432)!  "));
}

#[test]
fn different_failures_stay_apart() {
    let pairs = [
        (
            "connection refused to postgres at 10.0.0.5:5432",
            "connection timed out to postgres at 10.0.0.5:5432",
        ),
        (
            "The node was low on resource: ephemeral-storage.",
            "The node was low on resource: inodes.",
        ),
        (
            "java.lang.OutOfMemoryError: Java heap space",
            "java.lang.OutOfMemoryError: Metaspace",
        ),
        (
            "exec /app/start.sh: permission denied",
            "open /app/start.sh: permission denied",
        ),
        (
            "0/3 nodes are available: 3 Insufficient cpu.",
            "0/3 nodes are available: 3 Insufficient memory.",
        ),
    ];
    for (a, b) in pairs {
        assert_ne!(fingerprint(a), fingerprint(b), "{a} / {b}");
    }
}

#[test]
fn edge_inputs() {
    assert_eq!(t(""), "");
    assert_eq!(t("   \n\t "), "");
    assert_eq!(
        t("Ошибка: соединение отклонено 10.0.0.1:5432"),
        "ошибка соединение отклонено <ip> <port>"
    );
    // Only the head of a very long message is read, at a character boundary.
    let long = format!("{}é{}", "x ".repeat(2047), "y ".repeat(5000));
    assert!(t(&long).split(' ').count() <= 2048);
    let multi = "Traceback (most recent call last):\n  File \"/app/x.py\", line 3\nKeyError: 'JWT_SECRET'";
    assert_eq!(
        t(multi),
        "traceback most recent call last file <str> line <num> keyerror jwt_secret"
    );
}

#[test]
fn tokens_and_analyze() {
    let a = analyze("2024-11-02T14:30:00Z health check timeout after 45s");
    assert_eq!(a.template, "health check timeout after <duration>");
    assert_eq!(a.fingerprint, fingerprint("health check timeout after 45s"));
    assert_eq!(
        tokens(&a.template),
        ["health", "check", "timeout", "after", "<duration>"]
    );
    assert!(tokens("").is_empty());
}

// ---------------------------------------------------------------------------------------------
// Stability: these values were computed once. If one changes, templates changed, and stored
// fingerprints no longer match new ones; that is a breaking change and must be deliberate.

#[test]
fn fingerprints_are_stable() {
    let pinned = [
        ("health check timeout after 45s", "0281d4996c6722ea"),
        (
            "Back-off restarting failed container api in pod api-7d9f8b6c5-x2x4z",
            "bbfa7154f2e9bbf9",
        ),
        (
            "Error: environment variable DATABASE_URL is not set",
            "075cb214d7055ce4",
        ),
        (
            "dial tcp 10.0.2.15:5432: connect: connection refused",
            "5aaf42134067c883",
        ),
        // xxh3-64 of the empty string, a published test vector.
        ("", "2d06800538d394c2"),
    ];
    for (message, want) in pinned {
        let got = fingerprint(message);
        assert_eq!(got.len(), 16, "{got}");
        assert!(
            got.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
            "{got}"
        );
        assert_eq!(
            got,
            want,
            "fingerprint of {message:?} changed (template {:?})",
            template(message)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The labeled set.

#[derive(Debug)]
struct Labeled {
    group: String,
    split: String,
    message: String,
    fix: String,
}

fn labeled() -> Vec<Labeled> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/errors/labeled.jsonl");
    let text = std::fs::read_to_string(path).expect("read labeled.jsonl");
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, line)| {
            let mut fields =
                parse_flat_object(line).unwrap_or_else(|| panic!("line {}: not a flat JSON object", n + 1));
            let mut take = |k: &str| {
                fields
                    .remove(k)
                    .unwrap_or_else(|| panic!("line {}: no {k}", n + 1))
            };
            let row = Labeled {
                group: take("group"),
                split: take("split"),
                message: take("message"),
                fix: take("fix"),
            };
            assert!(!take("repository").is_empty(), "line {}: empty repository", n + 1);
            row
        })
        .collect()
}

/// A JSON object whose values are all strings (the shape of labeled.jsonl), without a JSON
/// dependency.
fn parse_flat_object(line: &str) -> Option<HashMap<String, String>> {
    let mut chars = line.trim().chars().peekable();
    let mut out = HashMap::new();
    let skip_ws = |c: &mut std::iter::Peekable<std::str::Chars>| {
        while c.peek().is_some_and(|c| c.is_whitespace()) {
            c.next();
        }
    };
    let string = |c: &mut std::iter::Peekable<std::str::Chars>| -> Option<String> {
        if c.next()? != '"' {
            return None;
        }
        let mut s = String::new();
        loop {
            match c.next()? {
                '"' => return Some(s),
                '\\' => match c.next()? {
                    'n' => s.push('\n'),
                    't' => s.push('\t'),
                    'r' => s.push('\r'),
                    'b' => s.push('\u{8}'),
                    'f' => s.push('\u{c}'),
                    'u' => {
                        let hex: String = (0..4).map(|_| c.next()).collect::<Option<_>>()?;
                        s.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    other => s.push(other),
                },
                ch => s.push(ch),
            }
        }
    };
    if chars.next()? != '{' {
        return None;
    }
    loop {
        skip_ws(&mut chars);
        if chars.peek() == Some(&'}') {
            return Some(out);
        }
        let key = string(&mut chars)?;
        skip_ws(&mut chars);
        if chars.next()? != ':' {
            return None;
        }
        skip_ws(&mut chars);
        let value = string(&mut chars)?;
        out.insert(key, value);
        skip_ws(&mut chars);
        match chars.next()? {
            ',' => {}
            '}' => return Some(out),
            _ => return None,
        }
    }
}

#[test]
fn labeled_set_is_well_formed() {
    let rows = labeled();
    let mut groups: BTreeMap<&str, Vec<&Labeled>> = BTreeMap::new();
    for r in &rows {
        assert!(r.split == "train" || r.split == "heldout", "{r:?}");
        groups.entry(&r.group).or_default().push(r);
    }
    assert!(groups.len() >= 40, "{} groups", groups.len());
    for (g, rs) in &groups {
        assert!((4..=8).contains(&rs.len()), "{g}: {} messages", rs.len());
        let heldout = rs.iter().filter(|r| r.split == "heldout").count();
        assert!((1..=2).contains(&heldout), "{g}: {heldout} heldout");
        let fixes: BTreeSet<&str> = rs.iter().map(|r| r.fix.as_str()).collect();
        assert_eq!(fixes.len(), 1, "{g}: one fix per group");
    }
    let messages: BTreeSet<&str> = rows.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(messages.len(), rows.len(), "duplicate messages");
}

/// Pairwise precision and recall of grouping by fingerprint against the labeled groups.
fn pairwise(rows: &[&Labeled]) -> (f64, f64) {
    let fps: Vec<String> = rows.iter().map(|r| fingerprint(&r.message)).collect();
    let (mut same_both, mut same_fp, mut same_group) = (0u64, 0u64, 0u64);
    for i in 0..rows.len() {
        for j in i + 1..rows.len() {
            let g = rows[i].group == rows[j].group;
            let f = fps[i] == fps[j];
            same_both += u64::from(g && f);
            same_fp += u64::from(f);
            same_group += u64::from(g);
        }
    }
    let ratio = |a: u64, b: u64| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    (ratio(same_both, same_fp), ratio(same_both, same_group))
}

#[test]
fn grouping_quality() {
    let rows = labeled();
    let train: Vec<&Labeled> = rows.iter().filter(|r| r.split == "train").collect();
    let all: Vec<&Labeled> = rows.iter().collect();
    let groups = rows.iter().map(|r| &r.group).collect::<BTreeSet<_>>().len();
    let (p, r) = pairwise(&train);
    let (pa, ra) = pairwise(&all);
    eprintln!(
        "labeled set: {groups} groups, {} messages ({} train)",
        rows.len(),
        train.len()
    );
    eprintln!("train:          precision {p:.4} recall {r:.4}");
    eprintln!("train+heldout:  precision {pa:.4} recall {ra:.4}");
    // Groups whose train messages split over several templates, to see what the rules miss.
    let mut by_group: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for row in &train {
        by_group
            .entry(&row.group)
            .or_default()
            .insert(template(&row.message));
    }
    for (g, ts) in by_group.iter().filter(|(_, ts)| ts.len() > 1) {
        eprintln!("split group {g}:");
        for t in ts {
            eprintln!("    {t}");
        }
    }
    assert!(p >= 0.95, "train precision {p}");
    assert!(r >= 0.95, "train recall {r}");
}

#[test]
fn arbitrary_text_does_not_panic() {
    // Deterministic xorshift so that a failure reproduces; no extra dependency needed.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet: Vec<char> = "aZ09:/.-_@=\"'`()[]{}<>|!?*#%&+~\\$^,; \t\nxXvV0123456789abcdefé€😀│:"
        .chars()
        .collect();
    let seeds = [
        "2024-11-02T14:30:00Z ",
        "ERROR ",
        "[x] ",
        "{\"msg\":\"",
        "10.0.0.1:",
        "::",
        "sha256:",
        "v1.",
        "api-7d9f8b6c5-",
    ];
    for _ in 0..20_000 {
        let mut s = String::from(seeds[(next() % seeds.len() as u64) as usize]);
        let len = next() % 60;
        for _ in 0..len {
            s.push(alphabet[(next() % alphabet.len() as u64) as usize]);
        }
        let a = analyze(&s);
        assert_eq!(a.template, template(&s));
        assert_eq!(a.template.trim(), a.template, "{s:?}");
        assert!(!a.template.contains("  "), "{s:?} -> {:?}", a.template);
    }
}
