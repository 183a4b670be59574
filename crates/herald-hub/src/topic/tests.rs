use super::template::*;
use super::*;

fn m(selector: &str, topic: &str) -> bool {
    TopicMatcher::new(16).matches(selector, topic)
}

#[test]
fn star_matches_everything() {
    assert!(m("*", "https://example.com/books/1"));
    assert!(m("*", ""));
    assert!(m("*", "{weird}"));
    assert!(!is_template("*"));
}

#[test]
fn exact_selectors_match_only_the_identical_topic() {
    assert!(m(
        "https://example.com/books/1",
        "https://example.com/books/1"
    ));
    assert!(!m(
        "https://example.com/books/1",
        "https://example.com/books/10"
    ));
    assert!(!m(
        "https://example.com/books/1",
        "https://example.com/books/"
    ));
    assert!(!m(
        "https://example.com/books/1",
        "HTTPS://example.com/books/1"
    ));
    assert!(m("", ""));
    assert!(!m("", "a"));
}

#[test]
fn exact_and_star_selectors_do_not_touch_the_cache() {
    let matcher = TopicMatcher::new(4);
    assert!(matcher.matches("*", "a"));
    assert!(matcher.matches("a", "a"));
    assert!(!matcher.matches("a", "b"));
    assert_eq!(matcher.cached_templates(), 0);
    // A template identical to the topic is decided before the cache too.
    assert!(matcher.matches("x/{id}", "x/{id}"));
    assert_eq!(matcher.cached_templates(), 0);
    assert!(matcher.matches("x/{id}", "x/1"));
    assert_eq!(matcher.cached_templates(), 1);
}

#[test]
fn simple_expression_matches_unreserved_and_pct_encoded_but_not_slash() {
    let t = "https://example.com/books/{id}";
    assert!(m(t, "https://example.com/books/1"));
    assert!(m(t, "https://example.com/books/a-b.c_d~e"));
    assert!(m(t, "https://example.com/books/caf%C3%A9"));
    assert!(m(t, "https://example.com/books/a%2Fb"));
    assert!(m(t, "https://example.com/books/a%2fb"));
    assert!(m(t, "https://example.com/books/1,2"), "a list value");
    assert!(m(t, "https://example.com/books/"), "an undefined variable");
    assert!(!m(t, "https://example.com/books/1/2"));
    assert!(!m(t, "https://example.com/books/a?b"));
    assert!(!m(t, "https://example.com/books/café"));
    assert!(!m(t, "https://example.com/books/a%2"));
    assert!(!m(t, "https://example.com/books/a%zz"));
    assert!(!m(t, "https://example.com/book/1"));
    assert!(
        !m(t, "prefix https://example.com/books/1"),
        "anchored at start"
    );
    assert!(!m("{id}/x", "1/x/y"), "anchored at end");
}

#[test]
fn reserved_expression_matches_reserved_characters() {
    let t = "https://example.com/{+path}";
    assert!(m(t, "https://example.com/a/b/c"));
    assert!(m(t, "https://example.com/a/b?c=d&e=f#g"));
    assert!(m(t, "https://example.com/%20x"));
    assert!(!m(t, "https://example.com/a b"));
    assert!(!m(t, "https://example.com/a\"b"));
    assert!(!m(t, "https://example.com/a{b"));
}

#[test]
fn fragment_expression_adds_hash() {
    let t = "https://example.com/page{#section}";
    assert!(m(t, "https://example.com/page#intro"));
    assert!(m(t, "https://example.com/page#a/b,c"));
    assert!(m(t, "https://example.com/page"));
    assert!(!m(t, "https://example.com/pageintro"));
}

#[test]
fn label_expression_adds_dots() {
    let t = "https://example.com/file{.ext}";
    assert!(m(t, "https://example.com/file.json"));
    assert!(m(t, "https://example.com/file"));
    assert!(!m(t, "https://example.com/filejson"));
    assert!(!m(t, "https://example.com/file./x"));
    assert!(m("https://x/f{.parts*}", "https://x/f.tar.gz"));
}

#[test]
fn path_expression_adds_slashes() {
    let t = "https://example.com/books{/id}";
    assert!(m(t, "https://example.com/books/1"));
    assert!(m(t, "https://example.com/books"));
    assert!(!m(t, "https://example.com/books/1/2"));
    assert!(!m(t, "https://example.com/books1"));
    let exploded = "https://example.com{/segments*}";
    assert!(m(exploded, "https://example.com/a/b/c"));
    assert!(m(exploded, "https://example.com/a"));
    assert!(!m(exploded, "https://example.com/a?b"));
    let two = "https://example.com{/a,b}";
    assert!(m(two, "https://example.com/1/2"));
    assert!(m(two, "https://example.com/1"));
    assert!(!m(two, "https://example.com/1/2/3"));
}

#[test]
fn path_parameter_expression_is_named() {
    let t = "https://example.com/map{;x,y}";
    assert!(m(t, "https://example.com/map;x=1;y=2"));
    assert!(m(t, "https://example.com/map;y=2"));
    assert!(m(t, "https://example.com/map;x"), "an empty value: no `=`");
    assert!(m(t, "https://example.com/map"));
    assert!(!m(t, "https://example.com/map;z=1"));
    assert!(!m(t, "https://example.com/map;y=2;x=1"), "order is kept");
}

#[test]
fn query_expressions_are_named() {
    let t = "https://example.com/search{?q,lang}";
    assert!(m(t, "https://example.com/search?q=rust&lang=en"));
    assert!(m(t, "https://example.com/search?lang=en"));
    assert!(m(t, "https://example.com/search?q="));
    assert!(m(t, "https://example.com/search?q=a%20b,c"));
    assert!(m(t, "https://example.com/search"));
    assert!(
        !m(t, "https://example.com/search?q"),
        "an empty value keeps `=`"
    );
    assert!(!m(t, "https://example.com/search?other=1"));
    assert!(!m(t, "https://example.com/search?q=a&q=b"));
    assert!(!m(t, "https://example.com/search?q=a/b"));

    let continuation = "https://example.com/search?fixed=1{&page}";
    assert!(m(continuation, "https://example.com/search?fixed=1&page=2"));
    assert!(m(continuation, "https://example.com/search?fixed=1"));
    assert!(!m(
        continuation,
        "https://example.com/search?fixed=1&pages=2"
    ));
}

#[test]
fn explode_matches_lists_and_pairs() {
    let list = "https://x/s{?tag*}";
    assert!(m(list, "https://x/s?tag=a&tag=b"));
    assert!(m(list, "https://x/s?tag=a"));
    let pairs = "https://x/s{?params*}";
    assert!(m(pairs, "https://x/s?semi=%3B&dot=.&comma=%2C"));
    assert!(!m(pairs, "https://x/s?a=b/c"));
    assert!(m("https://x/{keys*}", "https://x/semi=%3B,dot=."));
    assert!(m("https://x/{+keys*}", "https://x/semi=;,dot=.,comma=,"));
    assert!(m("https://x/{list*}", "https://x/red,green,blue"));
}

#[test]
fn prefix_bounds_value_length() {
    let t = "https://x/{id:3}";
    assert!(m(t, "https://x/abc"));
    assert!(m(t, "https://x/a"));
    assert!(m(t, "https://x/%41bc"), "a triplet counts as one character");
    assert!(!m(t, "https://x/abcd"));
    assert!(m("https://x/{term:1}/{term}", "https://x/c/cat"));
    // Beyond MAX_EXACT_PREFIX the bound is dropped, not the template.
    assert!(m(
        "https://x/{id:9999}",
        &format!("https://x/{}", "a".repeat(10_000))
    ));
}

#[test]
fn several_expressions_and_variables() {
    let t = "https://example.com/users/{user}/books/{book}{?format}";
    assert!(m(t, "https://example.com/users/alice/books/42"));
    assert!(m(t, "https://example.com/users/alice/books/42?format=json"));
    assert!(!m(t, "https://example.com/users/alice/books/42/x"));
    assert!(m("https://x/{a,b}", "https://x/1,2"));
    assert!(m("https://x/{a,b}", "https://x/1"));
}

#[test]
fn literal_parts_are_not_regex_syntax() {
    let t = "https://x/a.b?{q}";
    assert!(m(t, "https://x/a.b?1"));
    assert!(!m(t, "https://x/aXb?1"), "`.` is a literal dot");
    assert!(!m(t, "https://x/a.1"), "`?` is a literal question mark");
    assert!(!m(t, "https://x/a.bb?1"));
    let meta = "https://x/(a)+[b]*|$^\\d/{id}";
    assert!(m(meta, "https://x/(a)+[b]*|$^\\d/1"));
    assert!(!m(meta, "https://x/aa[b]|$^\\d/1"));
    assert!(m("https://x/é/{id}", "https://x/é/1"), "non-ASCII literals");
}

#[test]
fn invalid_templates_are_exact_selectors() {
    let invalid = [
        "https://x/{id",
        "https://x/{a}id}",
        "https://x/{id}}",
        "https://x/{{id}}",
        "https://x/{}",
        "https://x/{=id}",
        "https://x/{!id}",
        "https://x/{a b}",
        "https://x/{a-b}",
        "https://x/{.}",
        "https://x/{a..b}",
        "https://x/{a,}",
        "https://x/{id:0}",
        "https://x/{id:10000}",
        "https://x/{id:3*}",
        "https://x/{id*:3}",
        "https://x/{%zz}",
    ];
    let matcher = TopicMatcher::new(64);
    for t in invalid {
        assert!(is_template(t), "{t}");
        assert!(!is_valid_template(t), "{t} should be invalid");
        assert!(matcher.matches(t, t), "{t} matches itself");
        assert!(
            !matcher.matches(t, "https://x/1"),
            "{t} matches only itself"
        );
    }
    // Without `{` a selector is no template at all, even with `}`.
    assert!(!is_template("https://x/id}"));
    assert!(!matcher.matches("https://x/id}", "https://x/id"));
    let too_many: Vec<String> = (0..=MAX_VARIABLES_PER_EXPRESSION)
        .map(|i| format!("v{i}"))
        .collect();
    assert!(!is_valid_template(&format!(
        "https://x/{{{}}}",
        too_many.join(",")
    )));
}

#[test]
fn valid_template_syntax_is_accepted() {
    for t in [
        "{a}",
        "{a.b}",
        "{a%20b}",
        "{_1}",
        "{a:9999}",
        "{a*}",
        "{+a,b*,c:2}",
        "x{#a}{.b}{/c}{;d}{?e}{&f}",
    ] {
        assert!(is_valid_template(t), "{t}");
    }
    let most: Vec<String> = (0..MAX_VARIABLES_PER_EXPRESSION)
        .map(|i| format!("v{i}"))
        .collect();
    for operator in ["", "+", "#", ".", "/", ";", "?", "&"] {
        let t = format!("https://x/{{{operator}{}}}", most.join(","));
        assert!(is_valid_template(&t), "{t} fits the size limit");
    }
    assert_eq!(
        parse("a{/x*,y:2}b"),
        Ok(vec![
            Part::Literal("a"),
            Part::Expression(
                Operator::Path,
                vec![
                    VarSpec {
                        name: "x",
                        modifier: Modifier::Explode
                    },
                    VarSpec {
                        name: "y",
                        modifier: Modifier::Prefix(2)
                    },
                ]
            ),
            Part::Literal("b"),
        ])
    );
}

/// A backtracking matcher would take exponential time on these (each
/// almost matches, then fails at the very end); the regex engine is
/// linear. Run on a thread with a deadline, so a regression fails
/// instead of hanging the suite.
#[test]
fn long_hostile_topic_against_many_templates_is_answered_correctly() {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        hostile_topics_against_many_templates();
        let _ = done.send(());
    });
    match finished.recv_timeout(std::time::Duration::from_secs(20)) {
        Ok(()) => {}
        // The thread panicked: its assertion message is on stderr.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            panic!("a hostile topic was answered wrongly")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("200 hostile topics took over 20 s: matching backtracks")
        }
    }
}

fn hostile_topics_against_many_templates() {
    let matcher = TopicMatcher::new(1_000);
    let templates: Vec<String> = (0..200)
        .map(|i| match i % 5 {
            0 => format!("https://example.com/{i}/{{a}}{{b}}{{c}}/x"),
            1 => format!("https://example.com/{i}{{/a*}}{{?b*}}"),
            2 => format!("https://example.com/{i}/{{+a}}/{{+b}}/{{+c}}/end"),
            3 => format!("https://example.com/{i}/{{a,b,c,d,e,f,g,h}}!"),
            _ => format!("https://example.com/{i}/{{a:64}}{{b:64}}{{c:64}}y"),
        })
        .collect();
    // Almost matches everything, then fails at the very end. Long
    // enough that backtracking over it would never finish.
    let body = "a%2F".repeat(1_000);
    for (i, t) in templates.iter().enumerate() {
        let hostile = format!("https://example.com/{i}/{body}/{body}/{body}!?");
        assert!(!matcher.matches(t, &hostile), "{t}");
    }
    // And the matching variants still match.
    let ok = format!("https://example.com/2/{body}/{body}/{body}/end");
    assert!(matcher.matches(&templates[2], &ok));
    let ok = format!("https://example.com/0/{body}/x");
    assert!(matcher.matches(&templates[0], &ok));
    let ok = format!("https://example.com/1/{}", "ab/".repeat(2_000) + "c");
    assert!(matcher.matches(&templates[1], &ok));
}

#[test]
fn cache_stays_bounded() {
    let matcher = TopicMatcher::new(8);
    for i in 0..100 {
        let t = format!("https://x/{i}/{{id}}");
        assert!(matcher.matches(&t, &format!("https://x/{i}/7")));
        assert!(matcher.cached_templates() <= 8);
    }
    assert_eq!(matcher.cached_templates(), 8);
    // Invalid templates are cached (and bounded) too.
    for i in 0..20 {
        assert!(!matcher.matches(&format!("https://x/{i}/{{"), "https://x/"));
    }
    assert_eq!(matcher.cached_templates(), 8);
    assert_eq!(matcher.capacity(), 8);
}

#[test]
fn cache_hits_do_not_grow_the_cache() {
    let matcher = TopicMatcher::new(8);
    for _ in 0..10 {
        assert!(matcher.matches("https://x/{id}", "https://x/1"));
        assert!(!matcher.matches("https://x/{id}", "https://y/1"));
    }
    assert_eq!(matcher.cached_templates(), 1);
}

#[test]
fn zero_capacity_caches_nothing_and_still_matches() {
    let matcher = TopicMatcher::new(0);
    assert!(matcher.matches("https://x/{id}", "https://x/1"));
    assert!(!matcher.matches("https://x/{id}", "https://x/1/2"));
    assert_eq!(matcher.cached_templates(), 0);
}

#[test]
fn default_matcher_has_default_capacity_and_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<TopicMatcher>();
    let matcher = TopicMatcher::default();
    assert_eq!(matcher.capacity(), DEFAULT_CACHE_CAPACITY);
    let shared = Arc::new(matcher);
    let handles: Vec<_> = (0..4)
        .map(|n| {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                (0..50).all(|i| {
                    let t = format!("https://x/{}/{{id}}", i % 10);
                    shared.matches(&t, &format!("https://x/{}/{n}", i % 10))
                })
            })
        })
        .collect();
    for handle in handles {
        assert!(handle.join().unwrap_or(false));
    }
    assert_eq!(shared.cached_templates(), 10);
    assert!(format!("{shared:?}").contains("cached_templates: 10"));
}
