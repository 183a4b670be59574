use super::*;

fn hub() -> HubUrl {
    HubUrl::parse("https://hub.example.com/.well-known/mercure").unwrap()
}

fn url_pattern(pattern: &str) -> Matcher {
    Matcher::typed(MatchType::UrlPattern, pattern, &hub()).unwrap()
}

fn matches(m: &Matcher, topic: &str) -> bool {
    let hub = hub();
    m.matches(&Topic::new(topic, &hub))
}

#[test]
fn names_round_trip_and_are_case_sensitive() {
    for t in MatchType::ALL {
        assert_eq!(MatchType::from_name(t.name()), Some(t));
    }
    assert_eq!(MatchType::from_name("URLPattern"), None);
    assert_eq!(MatchType::from_name("Exact"), None);
    assert_eq!(MatchType::from_name("template"), None);
}

// draft-08 §Exact Matching: case-sensitive, byte for byte, no resolution
// against the hub's URL, no normalization.
#[test]
fn exact_matchers_compare_bytes() {
    let m = Matcher::typed(MatchType::Exact, "https://example.com/a", &hub()).unwrap();
    assert!(matches(&m, "https://example.com/a"));
    assert!(!matches(&m, "https://EXAMPLE.com/a"));
    assert!(!matches(&m, "https://example.com/a/"));
    assert!(!matches(&m, "https://example.com/%61"));
    let relative = Matcher::typed(MatchType::Exact, "/a", &hub()).unwrap();
    assert!(!matches(&relative, "https://hub.example.com/a"));
    // NFC and NFD spellings of "é" are different bytes.
    let nfc = Matcher::typed(MatchType::Exact, "caf\u{e9}", &hub()).unwrap();
    assert!(!matches(&nfc, "cafe\u{301}"));
}

// draft-08 §Matcher Types: `*` matches every topic whatever the type.
#[test]
fn star_is_the_wildcard_of_every_type() {
    for t in MatchType::ALL {
        let m = Matcher::typed(t, "*", &hub()).unwrap();
        assert!(matches!(m, Matcher::Any));
        assert!(matches(&m, "anything at all"));
    }
    assert!(matches!(
        Matcher::selector("*", &TopicMatcher::new(4)),
        Matcher::Any
    ));
}

// draft-08 §URL Pattern: absolute patterns.
#[test]
fn absolute_url_patterns() {
    let m = url_pattern("https://example.com/books/:id");
    assert!(matches(&m, "https://example.com/books/1"));
    assert!(matches(&m, "https://example.com/books/abc"));
    assert!(!matches(&m, "https://example.com/books/1/chapters"));
    assert!(!matches(&m, "https://example.com/books/"));
    assert!(!matches(&m, "https://example.org/books/1"));
    assert!(!matches(&m, "http://example.com/books/1"));
}

// draft-08 §URL Pattern: relative patterns and topics resolve against the
// hub's URL.
#[test]
fn relative_patterns_and_topics_resolve_against_the_hub_url() {
    let m = url_pattern("/books/:id");
    assert!(matches(&m, "/books/1"));
    assert!(matches(&m, "https://hub.example.com/books/1"));
    assert!(!matches(&m, "https://other.example.com/books/1"));
    let events = url_pattern("/.well-known/mercure/subscriptions/exact/:topic/:subscriber");
    assert!(matches(
        &events,
        "/.well-known/mercure/subscriptions/exact/https%3A%2F%2Fexample.com%2Fa/urn%3Auuid%3A1"
    ));
}

// draft-08 §URL Pattern: hosts are case-insensitive (URL
// canonicalization), every other component is case-sensitive.
#[test]
fn only_hosts_are_case_insensitive() {
    let m = url_pattern("https://example.com/Books/:id");
    assert!(matches(&m, "https://EXAMPLE.com/Books/1"));
    assert!(!matches(&m, "https://example.com/books/1"));
}

// draft-08 §URL Pattern: a topic that is no URL reference never matches.
#[test]
fn topics_that_are_no_urls_never_match_a_pattern() {
    let m = url_pattern("*://*/*");
    assert!(matches(&m, "https://example.com/x"));
    assert!(!matches(&m, "https://[::1"));
    assert!(!matches(&m, "http://exa mple.com/"));
}

#[test]
fn invalid_url_patterns_are_errors() {
    for bad in ["https://example.com/(", "https://example.com/:", "/books/{"] {
        assert!(
            Matcher::typed(MatchType::UrlPattern, bad, &hub()).is_err(),
            "{bad:?} should not compile"
        );
    }
}

// Found by the `subscribe` fuzz target: urlpattern 0.6 counts the IPv6
// brackets of a hostname in a `usize`, so a `]` closing no `[` underflows
// it, which panics wherever overflow checks are on (debug builds, tests).
// Whatever the build, the pattern must come back as a value, never as a
// panic in the request's task.
#[test]
fn a_stray_bracket_in_the_hostname_is_no_panic() {
    for pattern in [
        "https://example.co]/x",
        "https://example.co]:8080/x",
        "//a]]",
        "https://[::1]]/x",
        "http://{[}]",
    ] {
        match Matcher::typed(MatchType::UrlPattern, pattern, &hub()) {
            Ok(m) => assert!(!matches(&m, "https://example.co/x"), "{pattern:?}"),
            Err(e) => assert!(e.starts_with("not a URL pattern"), "{pattern:?}: {e}"),
        }
    }
}

// draft-08 §URL Pattern: linear-time evaluation. The classic catastrophic
// pattern answers (the regex crate has no backtracking) and an enormous
// one is refused rather than compiled.
#[test]
fn hostile_patterns_are_linear_or_refused() {
    let m = url_pattern("/x/(a+)+b");
    let topic = format!("/x/{}", "a".repeat(50_000));
    assert!(!matches(&m, &topic));
    let huge = format!("/x/({})", "(a|b|c|d){1,1000}".repeat(20));
    assert!(Matcher::typed(MatchType::UrlPattern, &huge, &hub()).is_err());
}

// Draft-07 selectors: `*`, templates, and everything else exact; an
// invalid template matches only itself.
#[test]
fn draft_07_selectors() {
    let templates = TopicMatcher::new(4);
    let t = Matcher::selector("https://example.com/books/{id}", &templates);
    assert!(matches!(t, Matcher::Template { .. }));
    assert!(matches(&t, "https://example.com/books/1"));
    assert!(matches(&t, "https://example.com/books/{id}"));
    assert!(!matches(&t, "https://example.com/books/1/2"));
    let invalid = Matcher::selector("https://example.com/{", &templates);
    assert!(matches!(invalid, Matcher::Exact(_)));
    assert!(matches(&invalid, "https://example.com/{"));
    assert!(matches!(
        Matcher::selector("https://example.com/a", &templates),
        Matcher::Exact(_)
    ));
}

// A compiled template outlives the cache entry it came from.
#[test]
fn templates_survive_cache_eviction() {
    let templates = TopicMatcher::new(1);
    let first = Matcher::selector("/a/{x}", &templates);
    for i in 0..10 {
        Matcher::selector(&format!("/b{i}/{{x}}"), &templates);
    }
    assert!(templates.cached_templates() <= 1);
    assert!(matches(&first, "/a/1"));
}

#[test]
fn keys_group_equal_matchers_and_share_exact_space() {
    let templates = TopicMatcher::new(4);
    assert_eq!(
        Matcher::selector("/a", &templates).key(),
        Matcher::typed(MatchType::Exact, "/a", &hub())
            .unwrap()
            .key()
    );
    assert_ne!(
        Matcher::selector("/a/{x}", &templates).key(),
        url_pattern("/a/{x}").key()
    );
}

// draft-08 §Publication: the reserved namespace is tested on the resolved,
// normalized path, whatever the scheme or authority.
#[test]
fn reserved_namespace() {
    let hub = hub();
    for reserved in [
        "/.well-known/mercure",
        "/.well-known/mercure/",
        "/.well-known/mercure/subscriptions/exact/a/b",
        "https://hub.example.com/.well-known/mercure/subscriptions",
        "https://elsewhere.example/.well-known/mercure/x",
        "/.well-known/%6Dercure/x",
        "/.well-known/%6dercure",
        "/.well-known/mercure/../mercure/x",
        "/.well-known/x/../mercure/y",
        "/.well-known/mercure/%2e%2e/mercure",
        "mercure/x",
    ] {
        assert!(hub.is_reserved(reserved), "{reserved:?} is reserved");
    }
    for free in [
        "/.well-known/mercurex",
        "/.well-known/mercure-x/y",
        "/.well-known/mercure/../x",
        "urn:uuid:1",
        "https://example.com/books/1",
        "/books/.well-known/mercure",
        "http://[::1",
    ] {
        assert!(!hub.is_reserved(free), "{free:?} is not reserved");
    }
    let nested = HubUrl::parse("https://example.com/hub/").unwrap();
    assert!(nested.is_reserved("/hub/subscriptions"));
    assert!(!nested.is_reserved("/hubx"));
}

/// Topics that keep the base's path, or spell the hub's last segment some
/// other way than as it is: the shortcut must leave each to the join.
const RESERVED_IN_DISGUISE: &[&str] = &[
    "?x",
    "#x",
    " ?x",
    "\u{1}#x",
    "https:",
    "https:?x",
    "HTTPS:#x",
    "mer\tcure/x",
    "mer\ncure",
    "/.well-known/%6Dercure",
    "./mercure",
    "x/../mercure/y",
    "https:mercure",
    "/.well-known/mercure",
];

#[test]
fn the_shortcut_leaves_every_topic_that_may_be_reserved_to_the_join() {
    let hubs = [
        hub(),
        HubUrl::parse("http://localhost/.well-known/mercure").unwrap(),
        HubUrl::parse("https://example.com/hub/").unwrap(),
        HubUrl::parse("https://example.com/").unwrap(),
        HubUrl::parse("https://example.com/a%20b").unwrap(),
        HubUrl::parse("foo://example.com/x/hub").unwrap(),
    ];
    for hub in &hubs {
        for topic in RESERVED_IN_DISGUISE {
            if hub.resolves_under_path(topic) {
                assert!(hub.may_be_reserved(topic), "{topic:?} under {hub}");
                assert!(hub.is_reserved(topic), "{topic:?} under {hub}");
            }
        }
    }
    let hub = hub();
    for topic in ["?x", "https:?x", "HTTPS:#x", " ?x", "mer\tcure/x", "https:"] {
        assert!(hub.is_reserved(topic), "{topic:?} is reserved");
    }
    // What it is for: a topic that cannot spell the segment is decided
    // without a join.
    assert!(!hub.may_be_reserved("https://example.com/books/1"));
    assert!(!hub.may_be_reserved("urn:uuid:1"));
    assert!(!hub.may_be_reserved("/books/1?page=2#top"));
    // Hubs whose last segment could come from elsewhere never shortcut.
    assert!(HubUrl::parse("https://example.com/hub/")
        .unwrap()
        .may_be_reserved("x"));
    assert!(HubUrl::parse("https://example.com/a%20b")
        .unwrap()
        .may_be_reserved("x"));
    assert!(HubUrl::parse("https://example.com/")
        .unwrap()
        .may_be_reserved("x"));
}

proptest::proptest! {
    /// The shortcut only ever answers what the join would: a topic it
    /// calls free is free.
    #[test]
    fn the_shortcut_agrees_with_the_join(
        topic in "[ \t\n#?%./:A-Za-z0-9_~-]{0,12}(mercure|ercure|/|%6D|%6d|https:|HTTPS:)?[ \t#?%./a-z-]{0,6}",
    ) {
        for hub in [hub(), HubUrl::parse("https://example.com/hub/").unwrap()] {
            if !hub.may_be_reserved(&topic) {
                proptest::prop_assert!(!hub.resolves_under_path(&topic), "{:?} under {}", topic, hub);
            }
        }
    }
}

// draft-08 §Subscription: matcher values are UTF-8 without control or
// format characters.
#[test]
fn value_constraints() {
    assert!(check_value("https://example.com/\u{1F600}").is_ok());
    assert!(check_value("caf\u{e9}").is_ok());
    for bad in [
        "",
        "a\u{0}b",
        "a\tb",
        "a\u{7f}",
        "a\u{85}",
        "a\u{9f}",
        "a\u{200b}",
        "a\u{202e}",
        "\u{feff}a",
        "a\u{ad}",
    ] {
        assert!(check_value(bad).is_err(), "{bad:?} must be refused");
    }
}

#[test]
fn hub_urls_must_be_absolute() {
    assert!(HubUrl::parse("/.well-known/mercure").is_err());
    assert!(HubUrl::parse("mailto:a@b").is_err());
    assert_eq!(HubUrl::default().as_url().as_str(), DEFAULT_HUB_URL);
}
