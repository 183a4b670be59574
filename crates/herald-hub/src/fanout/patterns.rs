//! The URI templates and URL patterns subscribers hold, indexed so that a
//! publish tests only those that can select its topic.
//!
//! A URI template's literal text matches itself exactly, so a template
//! can only select topics that start with the text before its first
//! expression and end with the text after its last. Templates are grouped
//! by that prefix; a topic looks up each of its own prefixes whose length
//! some template prefix has (a handful of hash lookups), and tests the
//! suffix before running a template's regex. So the work of a publish grows
//! with the templates that share the topic's beginning, not with every
//! template held. URL patterns match URL components after parsing (the
//! host is case-insensitive, for one), so their text says nothing certain
//! about the topic's: they sit under the empty prefix and are always
//! tested. The number of distinct patterns held is bounded
//! ([`Patterns::room_for`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::{Subscriber, Subscribers};
use crate::matcher::{Matcher, MatcherKey, Topic};

/// Subscribers sharing one pattern, and the pattern compiled once for all.
#[derive(Debug)]
struct Shared {
    matcher: Matcher,
    /// What every topic it selects ends with.
    suffix: Box<str>,
    subscribers: Subscribers,
}

/// The patterns held, by literal prefix.
#[derive(Debug, Default)]
pub(super) struct Patterns {
    by_prefix: HashMap<Box<str>, HashMap<MatcherKey, Shared>>,
    /// The distinct prefix lengths, each with how many prefixes have it:
    /// the only lengths a topic's prefixes are looked up at.
    lengths: BTreeMap<usize, usize>,
    /// Distinct patterns held.
    count: usize,
}

/// The literal text before the first expression and after the last, for
/// a template; nothing certain for a URL pattern.
fn literals(matcher: &Matcher) -> (&str, &str) {
    match matcher {
        Matcher::Template { source, .. } => {
            let prefix = source.find('{').map_or(&**source, |i| &source[..i]);
            let suffix = source.rfind('}').map_or("", |i| &source[i + 1..]);
            (prefix, suffix)
        }
        _ => ("", ""),
    }
}

impl Patterns {
    /// Distinct patterns held.
    pub(super) fn len(&self) -> usize {
        self.count
    }

    /// Whether `matchers` fit within `limit` distinct patterns, counting
    /// only those not held yet.
    pub(super) fn room_for(&self, matchers: &[Matcher], limit: usize) -> bool {
        let mut new: Vec<MatcherKey> = Vec::new();
        for matcher in matchers {
            let key = matcher.key();
            if matches!(key, MatcherKey::Any | MatcherKey::Exact(_)) || new.contains(&key) {
                continue;
            }
            let (prefix, _) = literals(matcher);
            let held = self
                .by_prefix
                .get(prefix)
                .is_some_and(|group| group.contains_key(&key));
            if !held {
                new.push(key);
            }
        }
        self.count + new.len() <= limit
    }

    /// Adds `sub` as a holder of `matcher` (a template or URL pattern),
    /// compiled already.
    pub(super) fn insert(&mut self, key: MatcherKey, matcher: &Matcher, sub: &Arc<Subscriber>) {
        let (prefix, suffix) = literals(matcher);
        let group = self.by_prefix.entry(prefix.into()).or_insert_with(|| {
            *self.lengths.entry(prefix.len()).or_default() += 1;
            HashMap::new()
        });
        let shared = group.entry(key).or_insert_with(|| {
            self.count += 1;
            Shared {
                matcher: matcher.clone(),
                suffix: suffix.into(),
                subscribers: Subscribers::new(),
            }
        });
        shared.subscribers.insert(sub.id, Arc::clone(sub));
    }

    /// Removes subscriber `id` as a holder of `matcher`; the last holder
    /// gone, the compiled pattern goes too.
    pub(super) fn remove(&mut self, key: &MatcherKey, matcher: &Matcher, id: u64) {
        let (prefix, _) = literals(matcher);
        let Some(group) = self.by_prefix.get_mut(prefix) else {
            return;
        };
        if let Some(shared) = group.get_mut(key) {
            shared.subscribers.remove(&id);
            if shared.subscribers.is_empty() {
                group.remove(key);
                self.count -= 1;
            }
        }
        if group.is_empty() {
            self.by_prefix.remove(prefix);
            if let Some(n) = self.lengths.get_mut(&prefix.len()) {
                *n -= 1;
                if *n == 0 {
                    self.lengths.remove(&prefix.len());
                }
            }
        }
    }

    /// Adds the subscribers of every pattern that selects `topic` to
    /// `targets`; returns how many patterns did.
    pub(super) fn select<'a>(
        &'a self,
        topic: &Topic<'_>,
        targets: &mut Vec<&'a Arc<Subscriber>>,
    ) -> usize {
        let raw = topic.as_str();
        let mut routes = 0;
        for &length in self.lengths.keys() {
            let Some(prefix) = raw.get(..length) else {
                // Longer than the topic (the lengths are ascending), or
                // not at a character boundary.
                if length > raw.len() {
                    break;
                }
                continue;
            };
            let Some(group) = self.by_prefix.get(prefix) else {
                continue;
            };
            for shared in group.values() {
                if raw.ends_with(&*shared.suffix) && shared.matcher.matches(topic) {
                    targets.extend(shared.subscribers.values());
                    routes += 1;
                }
            }
        }
        routes
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Interest, Mailbox};
    use super::*;
    use crate::matcher::{HubUrl, MatchType};
    use crate::topic::TopicMatcher;

    fn subscriber(id: u64, matcher: &Matcher) -> Arc<Subscriber> {
        Arc::new(Subscriber {
            id,
            interest: Arc::new(Interest {
                matchers: vec![matcher.clone()],
                grants: None,
            }),
            mailbox: Arc::new(Mailbox::default()),
        })
    }

    // The index selects exactly what testing every pattern would: the
    // prefix and suffix only ever skip patterns that cannot match.
    #[test]
    fn the_index_selects_what_every_pattern_would() {
        let templates = TopicMatcher::new(64);
        let base = HubUrl::default();
        let mut matchers: Vec<Matcher> = [
            "https://example.com/books/{id}",
            "https://example.com/books/{id}.json",
            "https://example.com/{+path}",
            "{+any}",
            "/relative/{x}",
            "https://é.example/{x}/é",
            "https://example.com/books/{id}{?q}",
            "a{x}a",
        ]
        .iter()
        .map(|t| Matcher::selector(t, &templates))
        .collect();
        for pattern in ["https://example.com/books/:id", "/relative/*"] {
            matchers.push(Matcher::typed(MatchType::UrlPattern, pattern, &base).unwrap());
        }
        let mut patterns = Patterns::default();
        let subs: Vec<_> = matchers
            .iter()
            .enumerate()
            .map(|(i, m)| subscriber(i as u64, m))
            .collect();
        for (m, s) in matchers.iter().zip(&subs) {
            patterns.insert(m.key(), m, s);
        }
        assert_eq!(patterns.len(), matchers.len());
        for topic in [
            "https://example.com/books/1",
            "https://example.com/books/1.json",
            "https://example.com/books/1?q=2",
            "https://example.com/",
            "https://é.example/1/é",
            "https://é.example/1/e",
            "/relative/1",
            "https://example.com/books/{id}",
            "a",
            "aa",
            "aba",
            "",
            "é",
        ] {
            let topic = Topic::new(topic, &base);
            let mut targets = Vec::new();
            patterns.select(&topic, &mut targets);
            let mut selected: Vec<u64> = targets.iter().map(|s| s.id).collect();
            selected.sort_unstable();
            let expected: Vec<u64> = matchers
                .iter()
                .enumerate()
                .filter(|(_, m)| m.matches(&topic))
                .map(|(i, _)| i as u64)
                .collect();
            assert_eq!(selected, expected, "{:?}", topic.as_str());
        }
        for (m, s) in matchers.iter().zip(&subs) {
            patterns.remove(&m.key(), m, s.id);
        }
        assert_eq!(patterns.len(), 0);
        assert!(patterns.by_prefix.is_empty() && patterns.lengths.is_empty());
    }

    // The bound counts distinct patterns not held yet, once each.
    #[test]
    fn room_counts_only_new_distinct_patterns() {
        let templates = TopicMatcher::new(8);
        let a = Matcher::selector("/a/{x}", &templates);
        let b = Matcher::selector("/b/{x}", &templates);
        let exact = Matcher::selector("/c", &templates);
        let mut patterns = Patterns::default();
        patterns.insert(a.key(), &a, &subscriber(1, &a));
        assert!(patterns.room_for(&[a.clone(), exact.clone(), Matcher::Any], 1));
        assert!(!patterns.room_for(std::slice::from_ref(&b), 1));
        assert!(patterns.room_for(&[b.clone(), b.clone()], 2));
        assert!(!patterns.room_for(&[a, b, exact], 1));
    }
}
