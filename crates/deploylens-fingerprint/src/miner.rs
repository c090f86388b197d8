//! Templates learned from a corpus: messages whose masked templates differ only in a few free
//! words (a user, a host, a method name) join one group.
//!
//! [`crate::template`] masks what a single message shows to be variable (numbers, paths, ids).
//! A word without a digit that changes from one line of a template to the next cannot be told
//! from a constant by looking at one message; across messages it can. The [`Miner`] reads
//! masked templates one by one, in the manner of Drain (He et al., 2017): templates of the
//! same length are compared position by position, and a message joins the most similar group
//! when at least [`MinerOptions::similarity`] of its positions agree; the positions that
//! disagree become `<*>`.
//!
//! Reading a whole corpus at once, [`group_corpus`] then looks at each learned position
//! again: one whose few values (fewer than [`MinerOptions::few_values`]) each recur at least
//! [`MinerOptions::recurring`] times names different messages rather than a variable
//! (`connection refused` and `connection timed out`, each seen again and again), and the
//! group is split along it.
//!
//! A group keeps the id it was given when it was founded, the fingerprint of its first
//! message: later messages widen its template but never change its id, and a message that
//! founds a group has the fingerprint [`crate::fingerprint`] gives it alone. The outcome
//! depends only on the messages and their order.
//!
//! ```
//! use deploylens_fingerprint::miner::Miner;
//!
//! let mut miner = Miner::default();
//! let a = miner.add("Accepted publickey for alice from 10.0.0.1 port 52311 ssh2");
//! let b = miner.add("Accepted publickey for bob from 10.0.0.9 port 40112 ssh2");
//! assert_eq!(a, b);
//! assert_eq!(
//!     miner.group(a).template(),
//!     "accepted publickey for <*> from <ip> port <port> ssh2"
//! );
//! ```

use std::collections::HashMap;

/// Maps keyed by templates hash them with xxh3 (seedless: the outcome does not depend on a
/// random state), several times faster than SipHash on these short keys.
type Map<K, V> = HashMap<K, V, xxhash_rust::xxh3::Xxh3DefaultBuilder>;

/// The placeholder of a position that varied between the messages of a group.
pub const WILDCARD: &str = "<*>";

/// How alike two templates must be to share a group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinerOptions {
    /// Share of positions that must agree (a `<*>` agrees with anything), from 0 to 1.
    pub similarity: f64,
    /// Templates of fewer words than this join a group only when they are equal: in a
    /// three-word message one free word is a third of it.
    pub min_words: usize,
    /// In [`group_corpus`]: a position with fewer distinct values than this...
    pub few_values: usize,
    /// ...each seen at least this many times splits its group instead of being a variable.
    pub recurring: u64,
}

impl Default for MinerOptions {
    fn default() -> Self {
        MinerOptions {
            similarity: 0.6,
            min_words: 3,
            few_values: 4,
            recurring: 3,
        }
    }
}

/// The index of a group in its [`Miner`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupIndex(usize);

/// One learned group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The fingerprint of the group's first message: its id for good.
    pub id: String,
    /// The template words; `<*>` where members differed.
    pub words: Vec<String>,
    /// Messages added to it.
    pub size: u64,
    /// Of each `<*>` position, the first words seen there (at most [`MAX_VARIANTS`]).
    pub variants: Vec<(usize, Vec<String>)>,
}

/// Words kept per learned position, for explanations.
pub const MAX_VARIANTS: usize = 5;

impl Group {
    /// A group of one distinct template, `size` times.
    fn founded(template: &str, words: &[&str], size: u64) -> Group {
        Group {
            id: crate::fingerprint_of_template(template),
            words: words.iter().map(|w| w.to_string()).collect(),
            size,
            variants: vec![],
        }
    }

    /// Takes in `size` messages of `words` (as many words as the group): the positions that
    /// differ become `<*>`, and the first words seen there are kept.
    fn widen(&mut self, words: &[&str], size: u64) {
        for (i, w) in words.iter().enumerate() {
            if self.words[i] == *w {
                continue;
            }
            let slot = std::mem::replace(&mut self.words[i], WILDCARD.to_string());
            let seen = match self.variants.iter_mut().find(|(p, _)| *p == i) {
                Some((_, seen)) => seen,
                None => {
                    self.variants.push((i, vec![slot]));
                    &mut self.variants.last_mut().expect("just pushed").1
                }
            };
            if seen.len() < MAX_VARIANTS && !seen.iter().any(|s| s == w) {
                seen.push(w.to_string());
            }
        }
        self.size += size;
    }

    /// The template as one string of words.
    pub fn template(&self) -> String {
        self.words.join(" ")
    }

    /// The positions that became `<*>` because members differed there.
    pub fn learned_positions(&self) -> impl Iterator<Item = usize> + '_ {
        self.words
            .iter()
            .enumerate()
            .filter(|(_, w)| *w == WILDCARD)
            .map(|(i, _)| i)
    }
}

/// An online template miner over masked templates.
#[derive(Debug, Clone, Default)]
pub struct Miner {
    options: MinerOptions,
    groups: Vec<Group>,
    /// Groups by word count: the only ones a template is compared with.
    buckets: Map<usize, Vec<GroupIndex>>,
    /// Groups by exact masked template, so that a repeated template costs one lookup.
    exact: Map<String, GroupIndex>,
}

impl Miner {
    /// A miner with the given options.
    pub fn new(options: MinerOptions) -> Miner {
        Miner {
            options,
            ..Miner::default()
        }
    }

    /// Adds a raw message: masks it with [`crate::template`], then groups it.
    pub fn add(&mut self, message: &str) -> GroupIndex {
        self.add_template(&crate::template(message))
    }

    /// Adds a masked template (the output of [`crate::template`]).
    pub fn add_template(&mut self, template: &str) -> GroupIndex {
        if let Some(&g) = self.exact.get(template) {
            self.groups[g.0].size += 1;
            return g;
        }
        let words: Vec<&str> = template.split(' ').filter(|w| !w.is_empty()).collect();
        let key = words.len();
        let best = self.most_similar(key, &words);
        let g = match best {
            Some(g) => {
                self.groups[g.0].widen(&words, 1);
                g
            }
            None => {
                let g = GroupIndex(self.groups.len());
                self.groups.push(Group::founded(template, &words, 1));
                self.buckets.entry(key).or_default().push(g);
                g
            }
        };
        self.exact.insert(template.to_string(), g);
        g
    }

    /// The group most like `words` among those of its bucket, if alike enough.
    fn most_similar(&self, key: usize, words: &[&str]) -> Option<GroupIndex> {
        if words.len() < self.options.min_words {
            return None;
        }
        let mut best: Option<(f64, GroupIndex)> = None;
        for &g in self.buckets.get(&key)? {
            let sim = similarity(&self.groups[g.0].words, words);
            // Ties go to the older group: the outcome does not depend on hash order.
            if sim >= self.options.similarity && best.is_none_or(|(s, _)| sim > s) {
                best = Some((sim, g));
            }
        }
        best.map(|(_, g)| g)
    }

    /// A group by its index.
    pub fn group(&self, g: GroupIndex) -> &Group {
        &self.groups[g.0]
    }

    /// Every group, in the order they were founded.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }
}

/// The groups of a whole corpus, and the group of each of its templates.
#[derive(Debug, Clone, Default)]
pub struct Corpus {
    /// The groups: those of the [`Miner`] in the order it founded them, each split in parts.
    pub groups: Vec<Group>,
    /// For each input template, in order, the index of its group in `groups`.
    pub assignment: Vec<usize>,
}

/// Groups a whole corpus of masked templates: the [`Miner`] pass, then each group split along
/// the positions whose few values each recur (see the module documentation). Group ids are the
/// fingerprints of their first templates, as in the [`Miner`].
pub fn group_corpus(templates: &[String], options: MinerOptions) -> Corpus {
    // Each distinct template once, in order of first appearance, with its count: one lookup
    // per line, and the miner sees what it would see line by line (a repeat only adds to a
    // group's size).
    let mut distinct_of: Map<&str, usize> = Map::default();
    let mut distinct: Vec<(usize, u64)> = Vec::new();
    let ids: Vec<usize> = templates
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let next = distinct.len();
            let d = *distinct_of.entry(t.as_str()).or_insert(next);
            if d == next {
                distinct.push((i, 0));
            }
            distinct[d].1 += 1;
            d
        })
        .collect();
    let mut miner = Miner::new(options);
    // Distinct templates of each mined group, with their counts, in input order.
    let mut members: Vec<Vec<(usize, u64)>> = Vec::new();
    for &(i, n) in &distinct {
        let g = miner.add_template(&templates[i]).0;
        miner.groups[g].size += n - 1;
        if members.len() <= g {
            members.resize(g + 1, Vec::new());
        }
        members[g].push((i, n));
    }
    let mut corpus = Corpus::default();
    let mut group_of_distinct: Vec<usize> = vec![0; distinct.len()];
    for (g, distinct) in members.iter().enumerate() {
        let words = |i: usize| {
            templates[i]
                .split(' ')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
        };
        let rows: Vec<(Vec<&str>, u64, usize)> = distinct.iter().map(|&(i, n)| (words(i), n, i)).collect();
        let split_at = splitting_positions(&miner.groups[g].words, &rows, options);
        let mut parts: Vec<(Vec<&str>, Vec<usize>)> = vec![];
        for (r, (w, _, _)) in rows.iter().enumerate() {
            let key: Vec<&str> = split_at.iter().map(|&p| w[p]).collect();
            match parts.iter_mut().find(|(k, _)| *k == key) {
                Some((_, rs)) => rs.push(r),
                None => parts.push((key, vec![r])),
            }
        }
        for (_, part) in parts {
            let index = corpus.groups.len();
            corpus.groups.push(part_group(&rows, &part));
            for &r in &part {
                group_of_distinct[ids[rows[r].2]] = index;
            }
        }
    }
    corpus.assignment = ids.iter().map(|&d| group_of_distinct[d]).collect();
    corpus
}

/// Learned positions of a group whose values are few and each recur.
fn splitting_positions(
    learned: &[String],
    rows: &[(Vec<&str>, u64, usize)],
    options: MinerOptions,
) -> Vec<usize> {
    let mut out = vec![];
    for (p, w) in learned.iter().enumerate() {
        if w != WILDCARD {
            continue;
        }
        let mut counts: Vec<(&str, u64)> = vec![];
        for (words, n, _) in rows {
            let Some(v) = words.get(p) else { continue };
            match counts.iter_mut().find(|(x, _)| x == v) {
                Some(c) => c.1 += n,
                None => counts.push((v, *n)),
            }
        }
        let few = counts.len() > 1 && counts.len() < options.few_values;
        if few && counts.iter().all(|(_, n)| *n >= options.recurring) {
            out.push(p);
        }
    }
    out
}

/// The group of some distinct templates (`rows[r]` for `r` in `part`), founded by the first.
fn part_group(rows: &[(Vec<&str>, u64, usize)], part: &[usize]) -> Group {
    let (first, n, _) = &rows[part[0]];
    let mut group = Group::founded(&first.join(" "), first, *n);
    for &r in &part[1..] {
        group.widen(&rows[r].0, rows[r].1);
    }
    group
}

/// Why one word of a message was taken as a variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// Word position in the masked template.
    pub position: usize,
    /// The word of the message's masked template there (a placeholder when a rule masked it).
    pub word: String,
    /// What it became: a rule's placeholder such as `<ip>`, or `<*>`.
    pub placeholder: String,
    /// Why, in words.
    pub why: String,
}

/// Which words of `masked` (a message's masked template, in `group`) are variables, and why:
/// the rules of [`crate::template`] masked some; others varied between the group's messages.
pub fn explain(masked: &str, group: &Group) -> Vec<Explanation> {
    let mut out = Vec::new();
    for (position, word) in masked.split(' ').filter(|w| !w.is_empty()).enumerate() {
        let learned = group.words.get(position).is_some_and(|w| w == WILDCARD);
        let why = if learned {
            let seen = group
                .variants
                .iter()
                .find(|(p, _)| *p == position)
                .map(|(_, v)| v.join(", "))
                .unwrap_or_default();
            format!(
                "varied between the {} messages of this group (seen: {seen})",
                group.size
            )
        } else if let Some(rule) = rule_of(word) {
            rule.to_string()
        } else {
            continue;
        };
        let placeholder = if learned { WILDCARD } else { word };
        out.push(Explanation {
            position,
            word: word.to_string(),
            placeholder: placeholder.to_string(),
            why,
        });
    }
    out
}

/// What each masking rule stands for.
fn rule_of(placeholder: &str) -> Option<&'static str> {
    Some(match placeholder {
        "<url>" => "a URL",
        "<email>" => "an e-mail address",
        "<uuid>" => "a UUID",
        "<timestamp>" => "a date or time",
        "<ip>" => "an IPv4 or IPv6 address",
        "<port>" => "a port number (after a host, an address or the word port)",
        "<hex>" => "a hexadecimal number or id",
        "<sha>" => "a digest or commit hash",
        "<path>" => "a file path",
        "<version>" => "a version or image tag",
        "<duration>" => "a duration",
        "<size>" => "a size",
        "<host>" => "a dotted host name",
        "<container>" => "a container id",
        "<pod>" => "a generated pod or replica name",
        "<str>" => "a quoted value, or a lowercase value after key=",
        "<id>" => "a generated alphanumeric id",
        "<num>" => "a number",
        _ => return None,
    })
}

/// Share of positions where the group's word is `<*>` or equal to the template's.
/// Placeholders count only when equal.
fn similarity(group: &[String], words: &[&str]) -> f64 {
    let same = group
        .iter()
        .zip(words)
        .filter(|(g, w)| g.as_str() == WILDCARD || g == *w)
        .count();
    same as f64 / words.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_word_that_varies_becomes_a_wildcard_and_the_id_stays() {
        let mut m = Miner::default();
        let first = m.add("Failed password for root from 10.1.1.1 port 22 ssh2");
        let id = m.group(first).id.clone();
        assert_eq!(
            id,
            crate::fingerprint("Failed password for root from 10.1.1.1 port 22 ssh2")
        );
        let second = m.add("Failed password for admin from 10.1.1.2 port 2222 ssh2");
        assert_eq!(first, second);
        assert_eq!(m.group(first).id, id);
        assert_eq!(m.group(first).learned_positions().collect::<Vec<_>>(), vec![3]);
        let why = explain(
            "failed password for admin from <ip> port <port> ssh2",
            m.group(first),
        );
        assert_eq!(why[0].position, 3);
        assert!(why[0].why.contains("root, admin"), "{:?}", why[0]);
        assert_eq!(why[1].placeholder, "<ip>");
    }

    #[test]
    fn different_messages_of_the_same_length_stay_apart() {
        let mut m = Miner::default();
        let a = m.add("connection refused by upstream server db");
        let b = m.add("connection reset by peer while reading body");
        let c = m.add("permission denied while opening the socket file");
        assert_ne!(a, b);
        assert_ne!(b, c);
    }

    #[test]
    fn few_recurring_values_split_a_group_and_many_values_make_a_variable() {
        let mut lines = vec![];
        for i in 0..4 {
            lines.push(format!("dial tcp 10.0.0.{i}:5432: connect: connection refused"));
            lines.push(format!("dial tcp 10.0.0.{i}:5432: connect: connection reset"));
        }
        for user in ["alice", "bob", "carol", "dave", "erin"] {
            lines.push(format!("session opened for user {user} by sshd"));
        }
        let templates: Vec<String> = lines.iter().map(|l| crate::template(l)).collect();
        let c = group_corpus(&templates, MinerOptions::default());
        assert_eq!(c.groups.len(), 3, "{:?}", c.groups);
        assert_ne!(c.assignment[0], c.assignment[1]);
        assert_eq!(c.assignment[0], c.assignment[2]);
        let users = &c.groups[c.assignment[8]];
        assert_eq!(users.template(), "session opened for user <*> by sshd");
        assert_eq!(users.size, 5);
        assert_eq!(
            users.id,
            crate::fingerprint("session opened for user alice by sshd")
        );
    }

    #[test]
    fn short_templates_join_only_when_equal() {
        let mut m = Miner::default();
        let a = m.add("unit started");
        let b = m.add("unit stopped");
        assert_ne!(a, b);
        assert_eq!(m.add("unit started"), a);
    }

    #[test]
    fn the_outcome_depends_only_on_the_input() {
        let lines = [
            "user alice logged in from host-a",
            "user bob logged in from host-b",
            "user carol logged out from host-c",
            "disk sda1 is full on node-1",
        ];
        let run = || {
            let mut m = Miner::default();
            lines
                .iter()
                .map(|l| {
                    let g = m.add(l);
                    m.group(g).id.clone()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }
}
