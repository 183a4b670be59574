//! Fuzz target for the subscribe path: a query string through
//! `parse_subscribe`, then matcher compilation (URI templates, URL
//! patterns) and matching, as a subscription's interest does.
//!
//! The first byte chooses the protocol, the limits and the hub URL; the
//! rest, read as UTF-8 (lossily), is the query up to the first LF and then
//! one topic per line. Invariants checked:
//! 1. nothing panics, compiling or matching (but for urlpattern's known
//!    underflow, which herald-hub catches: see `known_panic`);
//! 2. an accepted query has at least one matcher and at most
//!    `max_selectors`, no duplicates, all of one revision the hub speaks,
//!    none empty or longer than `max_selector_len` characters, and no
//!    draft-08 matcher value holds a control character;
//! 3. a draft-07 selector compiles to `*`, a template or an exact topic,
//!    a draft-08 exact matcher to `*` or exact; only a URL pattern may fail
//!    to compile;
//! 4. `*` matches every topic, an exact matcher exactly its own value, a
//!    template at least its own source and what an uncached `TopicMatcher`
//!    says;
//! 5. matching one shared topic against all the matchers (as fan-out does,
//!    its URL components worked out once) agrees with matching each alone.
#![no_main]

mod known_panic;

use herald_hub::fuzzing::{self, CompiledMatcher};
use herald_hub::{HubUrl, MatchType};
use herald_hub::fuzzing::{parse_subscribe, RequestedMatcher};
use herald_hub::{Protocol, ProtocolLimits, Revision};
use herald_hub::fuzzing::TopicMatcher;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    known_panic::tolerate();
    let Some((&flags, rest)) = input.split_first() else {
        return;
    };
    let protocol = match flags % 3 {
        0 => Protocol::Both,
        1 => Protocol::Draft07,
        _ => Protocol::Draft08,
    };
    let limits = if flags & 0x10 != 0 {
        // Tiny limits, so that the fuzzer reaches them.
        ProtocolLimits {
            max_topics: 1000,
            max_selectors: usize::from(flags >> 6) + 1,
            max_selector_len: usize::from((flags >> 2) & 0x03) * 8,
        }
    } else {
        ProtocolLimits::default()
    };
    let base = if flags & 0x20 != 0 {
        HubUrl::parse("https://hub.example:8443/a/hub?x#y").expect("a constant URL")
    } else {
        HubUrl::default()
    };
    let text = String::from_utf8_lossy(rest);
    let mut lines = text.split('\n');
    let query = lines.next().unwrap_or_default();
    let mut topics: Vec<&str> = lines.collect();

    let Ok(request) = parse_subscribe(query, &limits, protocol) else {
        return;
    };
    assert!(!request.matchers.is_empty(), "no matcher");
    assert!(
        request.matchers.len() <= limits.max_selectors,
        "too many matchers"
    );
    assert!(
        protocol.speaks(request.revision),
        "a revision the hub does not speak"
    );
    let mut seen: Vec<&RequestedMatcher> = Vec::new();
    for requested in &request.matchers {
        let (revision, value) = match requested {
            RequestedMatcher::Selector(s) => (Revision::Draft07, s),
            RequestedMatcher::Match(_, v) => (Revision::Draft08, v),
        };
        assert_eq!(revision, request.revision, "revisions mixed");
        assert!(!value.is_empty(), "an empty matcher");
        assert!(
            value.chars().count() <= limits.max_selector_len,
            "matcher too long"
        );
        if revision == Revision::Draft08 {
            assert!(
                !value.chars().any(char::is_control),
                "control character in {value:?}"
            );
        }
        assert!(!seen.contains(&requested), "duplicate {requested:?}");
        seen.push(requested);
    }

    // Compile as the subscribe handler does: one template cache per hub.
    let templates = TopicMatcher::new(16);
    let uncached = TopicMatcher::new(0);
    let mut compiled: Vec<CompiledMatcher> = Vec::new();
    let mut values: Vec<&str> = Vec::new();
    for requested in &request.matchers {
        match requested {
            RequestedMatcher::Selector(s) => {
                let m = CompiledMatcher::selector(s, &templates);
                assert!(
                    matches!(m.kind(), "any" | "template" | "exact"),
                    "{s:?}: {}",
                    m.kind()
                );
                compiled.push(m);
                values.push(s);
            }
            RequestedMatcher::Match(t, v) => match CompiledMatcher::typed(*t, v, &base) {
                Ok(m) => {
                    let expected: &[&str] = match t {
                        MatchType::Exact => &["any", "exact"],
                        MatchType::UrlPattern => &["any", "urlpattern"],
                    };
                    assert!(expected.contains(&m.kind()), "{t} {v:?}: {}", m.kind());
                    compiled.push(m);
                    values.push(v);
                }
                Err(_) => assert_eq!(*t, MatchType::UrlPattern, "{v:?} does not compile"),
            },
        }
    }

    // Match every topic given, every matcher's own value and the resume id.
    topics.extend(&values);
    if let Some(id) = &request.last_event_id {
        topics.push(id);
    }
    for topic in topics {
        let each: Vec<bool> = compiled.iter().map(|m| m.matches(topic, &base)).collect();
        for ((m, value), &hit) in compiled.iter().zip(&values).zip(&each) {
            match m.kind() {
                "any" => assert!(hit, "* misses {topic:?}"),
                "exact" => assert_eq!(hit, topic == *value, "exact {value:?} vs {topic:?}"),
                "template" => {
                    assert!(hit || topic != *value, "template {value:?} misses itself");
                    assert_eq!(
                        hit,
                        uncached.matches(value, topic),
                        "cache vs uncached: {value:?}"
                    );
                }
                _ => {}
            }
        }
        let shared = fuzzing::matches_each(&compiled, topic, &base);
        assert_eq!(shared, each, "shared topic vs one by one: {topic:?}");
    }
});
