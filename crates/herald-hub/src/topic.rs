//! Topic selectors and matching: which topics a selector stands for.
//!
//! Selectors are used at two points of the data path. On publish, the
//! `mercure.publish` selectors of the publisher's token must match every
//! topic of the update (see [`crate::auth`]). In fan-out, each subscriber's
//! selectors (and, for private updates, its `mercure.subscribe` selectors)
//! are matched against the topics of every update. A selector matches a
//! topic when it is `*`, when it is the identical string, or when it is an
//! [RFC 6570] URI template that the topic is a possible expansion of.
//!
//! Templates are compiled once into an anchored [`regex::Regex`], whose
//! matching time is linear in the topic's length whatever the template, and
//! kept in a bounded cache owned by a [`TopicMatcher`]. `*` and exact
//! selectors never touch the cache or its lock.
//!
//! # What a template matches
//!
//! Each expression `{…}` matches what RFC 6570 expansion could produce for
//! it, with every variable either undefined (it contributes nothing), a
//! string, or a list:
//!
//! | expression | matches, for example                         |
//! |------------|----------------------------------------------|
//! | `{id}`     | `1`, `a%2Fb`, `x,y`, the empty string         |
//! | `{+path}`  | `a/b?c=d`: reserved characters too            |
//! | `{#frag}`  | `#a/b`, or nothing                           |
//! | `{.ext}`   | `.json`, or nothing                          |
//! | `{/seg*}`  | `/a/b/c`, or nothing                         |
//! | `{;p}`     | `;p=1`, `;p`, or nothing                     |
//! | `{?q,l}`   | `?q=a&l=b`, `?l=b`, `?q=`, or nothing        |
//! | `{&q}`     | `&q=a`, or nothing                           |
//!
//! * Simple expressions (`{id}`, `{.x}`, `{/x}`, `{;x}`, `{?x}`, `{&x}`)
//!   match unreserved characters (`A-Z a-z 0-9 - . _ ~`) and pct-encoded
//!   triplets (`%2F`), so never a raw `/`; `{+x}` and `{#x}` also match
//!   reserved characters. Characters outside ASCII must be pct-encoded, as
//!   expansion would have produced them (this is also what the reference
//!   hub accepts).
//! * Variables of one expression appear in order, each optionally.
//! * The explode modifier (`{/x*}`, `{?x*}`) matches lists and `key=value`
//!   pairs (for named operators, any key); a prefix (`{x:3}`) bounds the
//!   length of each value, counting a pct-encoded triplet as one character.
//!   Prefixes above [`MAX_EXACT_PREFIX`] are matched as unbounded.
//! * Literal text between expressions matches itself exactly: `.` or `?`
//!   in `https://x/a.b?{q}` are plain characters, not regex syntax.
//!
//! # Invalid templates
//!
//! A selector containing `{` that is not a valid template (unbalanced
//! braces, an empty expression, a reserved operator such as `{=x}`, a bad
//! variable name or modifier, more than [`MAX_VARIABLES_PER_EXPRESSION`]
//! variables in one expression, or a template whose compiled form would
//! exceed the size limit) never panics and never errors: it is treated as
//! an exact-string selector, and so matches only the identical topic. Such
//! results are cached like valid templates. Literal text is accepted
//! leniently: any character other than `{` and `}`.
//!
//! [RFC 6570]: https://www.rfc-editor.org/rfc/rfc6570

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::{Arc, PoisonError, RwLock};

use regex::{Regex, RegexBuilder};

/// Compiled templates a [`TopicMatcher::default`] keeps.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// The largest prefix modifier (`{x:N}`) matched exactly; larger prefixes
/// are matched as if there were none, which keeps compiled templates small.
pub const MAX_EXACT_PREFIX: u16 = 64;

/// The most variables one expression may list (`{a,b,…}`); a template with
/// more is invalid and treated as an exact selector.
pub const MAX_VARIABLES_PER_EXPRESSION: usize = 16;

/// Upper bound on the compiled program of one template, in bytes; bigger
/// templates are invalid. It bounds the cache's memory with its capacity.
const COMPILED_SIZE_LIMIT: usize = 256 * 1024;

/// Upper bound on the lazy DFA cache of one template, in bytes. The regex
/// engine falls back to other (still linear) engines when it is exceeded.
const DFA_SIZE_LIMIT: usize = 256 * 1024;

/// Matches topic selectors against topics, caching compiled templates.
///
/// One matcher is shared by the whole hub (`&self` methods, `Send + Sync`).
/// Compiled templates live in a cache of at most [`TopicMatcher::capacity`]
/// entries; when it is full, a random entry is evicted. With capacity 0
/// nothing is cached and each template is compiled on every call.
pub struct TopicMatcher {
    /// Maximum number of compiled templates kept.
    capacity: usize,
    /// Template source → compiled template. A read lock on hits; the write
    /// lock only to insert, and never while compiling.
    cache: RwLock<TemplateCache>,
}

impl TopicMatcher {
    /// A matcher whose cache holds at most `capacity` compiled templates.
    pub fn new(capacity: usize) -> TopicMatcher {
        TopicMatcher {
            capacity,
            cache: RwLock::new(TemplateCache::new()),
        }
    }

    /// Whether `selector` matches `topic`: `selector` is `*`, or is `topic`
    /// itself, or is a URI template `topic` is an expansion of.
    ///
    /// Never fails: an invalid template matches only the identical topic.
    pub fn matches(&self, selector: &str, topic: &str) -> bool {
        if selector == "*" || selector == topic {
            return true;
        }
        if !is_template(selector) {
            return false;
        }
        self.compiled(selector).matches(topic)
    }

    /// The most compiled templates this matcher keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many compiled templates (valid or not) the cache holds now;
    /// never more than [`TopicMatcher::capacity`].
    pub fn cached_templates(&self) -> usize {
        self.cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// The compiled template of a selector that is a valid URI template,
    /// from the cache or freshly compiled; `None` for `*`, exact selectors
    /// and invalid templates (all of which match by string equality).
    ///
    /// The `Arc` lives as long as its holder does, whatever the cache
    /// evicts: a subscription compiles its templates once.
    pub(crate) fn template(&self, selector: &str) -> Option<Arc<Compiled>> {
        if !is_template(selector) {
            return None;
        }
        let compiled = self.compiled(selector);
        matches!(*compiled, Compiled::Template(_)).then_some(compiled)
    }

    /// The compiled form of a template selector, from the cache or freshly
    /// compiled (then cached).
    fn compiled(&self, selector: &str) -> Arc<Compiled> {
        if self.capacity == 0 {
            return Arc::new(Compiled::new(selector));
        }
        if let Some(hit) = self
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(selector)
        {
            return hit;
        }
        // Compile without holding any lock: other threads keep matching.
        let fresh = Arc::new(Compiled::new(selector));
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(raced) = cache.get(selector) {
            return raced;
        }
        cache.insert(selector, Arc::clone(&fresh), self.capacity);
        fresh
    }
}

impl Default for TopicMatcher {
    /// A matcher caching up to [`DEFAULT_CACHE_CAPACITY`] templates.
    fn default() -> TopicMatcher {
        TopicMatcher::new(DEFAULT_CACHE_CAPACITY)
    }
}

impl fmt::Debug for TopicMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicMatcher")
            .field("capacity", &self.capacity)
            .field("cached_templates", &self.cached_templates())
            .finish()
    }
}

/// Whether a selector is a URI template (and so needs the matcher), as
/// opposed to `*` or an exact topic.
///
/// This is a cheap syntactic test (the selector contains `{`). It is
/// conservative: when it returns `false`, the selector matches exactly the
/// identical topic (or every topic, for `*`). Some selectors it calls
/// templates are invalid ones, which [`TopicMatcher::matches`] then treats
/// as exact; see [`is_valid_template`].
pub fn is_template(selector: &str) -> bool {
    selector != "*" && selector.contains('{')
}

/// Whether `selector` is a URI template this module can compile, i.e. one
/// that may match topics other than itself. Compiles it (uncached).
pub fn is_valid_template(selector: &str) -> bool {
    is_template(selector) && matches!(Compiled::new(selector), Compiled::Template(_))
}

/// A compiled template selector.
#[derive(Debug)]
pub(crate) enum Compiled {
    /// A valid template, as an anchored regex.
    Template(Regex),
    /// Not a valid template: matches only the identical string, which
    /// [`TopicMatcher::matches`] checks before asking.
    Invalid,
}

impl Compiled {
    fn new(selector: &str) -> Compiled {
        let Ok(parts) = parse(selector) else {
            return Compiled::Invalid;
        };
        let pattern = to_regex(&parts);
        match RegexBuilder::new(&pattern)
            .size_limit(COMPILED_SIZE_LIMIT)
            .dfa_size_limit(DFA_SIZE_LIMIT)
            .build()
        {
            Ok(regex) => Compiled::Template(regex),
            Err(_) => Compiled::Invalid,
        }
    }

    /// Whether `topic` is an expansion of the template.
    pub(crate) fn matches(&self, topic: &str) -> bool {
        match self {
            Compiled::Template(regex) => regex.is_match(topic),
            Compiled::Invalid => false,
        }
    }
}

/// A bounded map with O(1) random eviction: `keys` lists the keys densely
/// so a random slot can be picked, and each entry knows its slot.
struct TemplateCache {
    entries: HashMap<Arc<str>, CacheEntry>,
    keys: Vec<Arc<str>>,
    /// xorshift64 state for picking victims.
    rng: u64,
}

struct CacheEntry {
    slot: usize,
    compiled: Arc<Compiled>,
}

impl TemplateCache {
    fn new() -> TemplateCache {
        // Seeded per process so evictions are not predictable from outside.
        let seed = RandomState::new().hash_one(0x5eed_u64) | 1;
        TemplateCache {
            entries: HashMap::new(),
            keys: Vec::new(),
            rng: seed,
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn get(&self, selector: &str) -> Option<Arc<Compiled>> {
        self.entries.get(selector).map(|e| Arc::clone(&e.compiled))
    }

    fn insert(&mut self, selector: &str, compiled: Arc<Compiled>, capacity: usize) {
        while self.entries.len() >= capacity && !self.keys.is_empty() {
            self.evict_one();
        }
        let key: Arc<str> = Arc::from(selector);
        self.entries.insert(
            Arc::clone(&key),
            CacheEntry {
                slot: self.keys.len(),
                compiled,
            },
        );
        self.keys.push(key);
    }

    fn evict_one(&mut self) {
        let victim = (self.next_random() % self.keys.len() as u64) as usize;
        let key = self.keys.swap_remove(victim);
        self.entries.remove(&key);
        if let Some(moved) = self.keys.get(victim) {
            if let Some(entry) = self.entries.get_mut(moved) {
                entry.slot = victim;
            }
        }
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

/// Why a selector is not a valid template (kept for tests and debugging).
type ParseError = &'static str;

/// One piece of a parsed template.
#[derive(Debug, PartialEq)]
enum Part<'a> {
    Literal(&'a str),
    Expression(Operator, Vec<VarSpec<'a>>),
}

/// The RFC 6570 operators (section 2.2).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Operator {
    Simple,
    Reserved,
    Fragment,
    Label,
    Path,
    PathParameter,
    Query,
    QueryContinuation,
}

/// How an operator expands (RFC 6570 appendix A).
struct Behaviour {
    first: &'static str,
    sep: &'static str,
    named: bool,
    /// Whether an empty named value still gets `=` (`?x=` rather than `;x`).
    empty_gets_equals: bool,
    allow_reserved: bool,
}

impl Operator {
    fn behaviour(self) -> Behaviour {
        let (first, sep, named, empty_gets_equals, allow_reserved) = match self {
            Operator::Simple => ("", ",", false, false, false),
            Operator::Reserved => ("", ",", false, false, true),
            Operator::Fragment => ("#", ",", false, false, true),
            Operator::Label => (".", ".", false, false, false),
            Operator::Path => ("/", "/", false, false, false),
            Operator::PathParameter => (";", ";", true, false, false),
            Operator::Query => ("?", "&", true, true, false),
            Operator::QueryContinuation => ("&", "&", true, true, false),
        };
        Behaviour {
            first,
            sep,
            named,
            empty_gets_equals,
            allow_reserved,
        }
    }
}

/// A variable of an expression, with its modifier.
#[derive(Debug, PartialEq)]
struct VarSpec<'a> {
    name: &'a str,
    modifier: Modifier,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Modifier {
    None,
    Prefix(u16),
    Explode,
}

/// Splits a template into literals and expressions, validating the
/// expression syntax of RFC 6570 section 2.
fn parse(template: &str) -> Result<Vec<Part<'_>>, ParseError> {
    let mut parts = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        let Some(open) = rest.find(['{', '}']) else {
            parts.push(Part::Literal(rest));
            break;
        };
        if rest.as_bytes()[open] == b'}' {
            return Err("`}` without a matching `{`");
        }
        if open > 0 {
            parts.push(Part::Literal(&rest[..open]));
        }
        let after = &rest[open + 1..];
        let close = match after.find(['{', '}']) {
            Some(close) if after.as_bytes()[close] == b'}' => close,
            Some(_) => return Err("`{` inside an expression"),
            None => return Err("`{` without a matching `}`"),
        };
        let (operator, vars) = parse_expression(&after[..close])?;
        parts.push(Part::Expression(operator, vars));
        rest = &after[close + 1..];
    }
    Ok(parts)
}

fn parse_expression(body: &str) -> Result<(Operator, Vec<VarSpec<'_>>), ParseError> {
    let (operator, list) = match body.as_bytes().first() {
        None => return Err("empty expression"),
        Some(b'+') => (Operator::Reserved, &body[1..]),
        Some(b'#') => (Operator::Fragment, &body[1..]),
        Some(b'.') => (Operator::Label, &body[1..]),
        Some(b'/') => (Operator::Path, &body[1..]),
        Some(b';') => (Operator::PathParameter, &body[1..]),
        Some(b'?') => (Operator::Query, &body[1..]),
        Some(b'&') => (Operator::QueryContinuation, &body[1..]),
        Some(b'=' | b',' | b'!' | b'@' | b'|') => return Err("reserved operator"),
        Some(_) => (Operator::Simple, body),
    };
    let mut vars = Vec::new();
    for spec in list.split(',') {
        if vars.len() == MAX_VARIABLES_PER_EXPRESSION {
            return Err("too many variables in one expression");
        }
        vars.push(parse_varspec(spec)?);
    }
    Ok((operator, vars))
}

fn parse_varspec(spec: &str) -> Result<VarSpec<'_>, ParseError> {
    let (name, modifier) = if let Some(name) = spec.strip_suffix('*') {
        (name, Modifier::Explode)
    } else if let Some((name, digits)) = spec.split_once(':') {
        (name, Modifier::Prefix(parse_max_length(digits)?))
    } else {
        (spec, Modifier::None)
    };
    if !is_varname(name) {
        return Err("invalid variable name");
    }
    Ok(VarSpec { name, modifier })
}

/// `max-length = %x31-39 0*3DIGIT`: 1 to 9999.
fn parse_max_length(digits: &str) -> Result<u16, ParseError> {
    let bytes = digits.as_bytes();
    let well_formed =
        (1..=4).contains(&bytes.len()) && bytes[0] != b'0' && bytes.iter().all(u8::is_ascii_digit);
    if !well_formed {
        return Err("invalid prefix length");
    }
    digits.parse().map_err(|_| "invalid prefix length")
}

/// `varname = varchar *( ["."] varchar )`, `varchar = ALPHA / DIGIT / "_" /
/// pct-encoded`.
fn is_varname(name: &str) -> bool {
    let bytes = name.as_bytes();
    let mut i = 0;
    let mut previous_was_dot = true; // no leading dot
    while i < bytes.len() {
        match bytes[i] {
            b'.' if !previous_was_dot => {
                previous_was_dot = true;
                i += 1;
                continue;
            }
            b'%' if bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit) =>
            {
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || b == b'_' => i += 1,
            _ => return false,
        }
        previous_was_dot = false;
    }
    !bytes.is_empty() && !previous_was_dot
}

/// RFC 3986 `unreserved`, as regex class items.
const UNRESERVED: &str = r"A-Za-z0-9\x2D\x2E\x5F\x7E";
/// RFC 3986 `reserved` (`gen-delims` and `sub-delims`), as regex class
/// items, hex-escaped so that none is read as class syntax.
const RESERVED: &str = r"\x3A\x2F\x3F\x23\x5B\x5D\x40\x21\x24\x26\x27\x28\x29\x2A\x2B\x2C\x3B\x3D";
/// A pct-encoded triplet.
const PCT_ENCODED: &str = "%[0-9A-Fa-f]{2}";

/// The anchored regex for a parsed template.
fn to_regex(parts: &[Part<'_>]) -> String {
    let mut re = String::from(r"\A");
    for part in parts {
        match part {
            Part::Literal(text) => re.push_str(&regex::escape(text)),
            Part::Expression(operator, vars) => push_expression(&mut re, *operator, vars),
        }
    }
    re.push_str(r"\z");
    re
}

/// An expression expands to nothing (no variable defined), or to `first`
/// followed by the defined variables, in order, separated by `sep`. For
/// variables `v1..vn` that is `first (r1 (sep r2)? … (sep rn)? | r2 … | rn)`,
/// quadratic in `n`, which [`MAX_VARIABLES_PER_EXPRESSION`] bounds. When
/// all `ri` are the same regex (unnamed variables with the same modifier,
/// the common case) it is the linear `first r1 (sep r1){0,n-1}`.
fn push_expression(re: &mut String, operator: Operator, vars: &[VarSpec<'_>]) {
    let behaviour = operator.behaviour();
    let sep = regex::escape(behaviour.sep);
    let rendered: Vec<String> = vars.iter().map(|v| variable(&behaviour, v)).collect();
    re.push_str("(?:");
    re.push_str(&regex::escape(behaviour.first));
    re.push_str("(?:");
    if let Some(only) = rendered.first() {
        if rendered.iter().all(|r| r == only) {
            re.push_str(only);
            if rendered.len() > 1 {
                re.push_str(&format!("(?:{sep}{only}){{0,{}}}", rendered.len() - 1));
            }
            re.push_str("))?");
            return;
        }
    }
    for start in 0..rendered.len() {
        if start > 0 {
            re.push('|');
        }
        re.push_str(&rendered[start]);
        for later in &rendered[start + 1..] {
            re.push_str("(?:");
            re.push_str(&sep);
            re.push_str(later);
            re.push_str(")?");
        }
    }
    re.push_str("))?");
}

/// The regex for one defined variable of an expression.
fn variable(behaviour: &Behaviour, var: &VarSpec<'_>) -> String {
    let explode = var.modifier == Modifier::Explode;
    let sep = regex::escape(behaviour.sep);
    // An exploded associative array expands to `key=value` items, so `=`
    // may appear in items even where it is otherwise reserved.
    let item = item_pattern(behaviour.allow_reserved, explode, var.modifier);
    let list = format!("{item}(?:,{item})*");
    match (behaviour.named, explode) {
        (false, false) => format!("(?:{list})?"),
        (false, true) => format!("(?:{item}(?:{sep}{item})*)?"),
        (true, false) => {
            let name = regex::escape(var.name);
            if behaviour.empty_gets_equals {
                format!("{name}=(?:{list})?")
            } else {
                format!("{name}(?:={list})?")
            }
        }
        (true, true) => {
            // `name=v1&name=v2` for lists, `k1=v1&k2=v2` for associative
            // arrays: any key.
            let key = format!("(?:[{UNRESERVED}]|{PCT_ENCODED})+");
            let value = item_pattern(behaviour.allow_reserved, false, var.modifier);
            let pair = if behaviour.empty_gets_equals {
                format!("{key}=(?:{value})?")
            } else {
                format!("{key}(?:={value})?")
            };
            format!("{pair}(?:{sep}{pair})*")
        }
    }
}

/// One non-empty value: allowed characters or pct-encoded triplets.
fn item_pattern(allow_reserved: bool, allow_equals: bool, modifier: Modifier) -> String {
    let mut class = String::from(UNRESERVED);
    if allow_reserved {
        class.push_str(RESERVED);
    } else if allow_equals {
        class.push_str(r"\x3D");
    }
    let atom = format!("(?:[{class}]|{PCT_ENCODED})");
    match modifier {
        Modifier::Prefix(max) if max <= MAX_EXACT_PREFIX => format!("{atom}{{1,{max}}}"),
        _ => format!("{atom}+"),
    }
}

#[cfg(test)]
mod tests {
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
}
