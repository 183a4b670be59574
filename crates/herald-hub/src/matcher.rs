//! Topic matchers: what a subscription or a grant selects, for both
//! protocol revisions, compiled once.
//!
//! A [`Matcher`] is built when a subscription arrives (or a token is
//! verified) and lives as long as its holder: publishing never compiles
//! anything and never depends on a cache. Four kinds:
//!
//! | kind          | from                                               | matches                          |
//! |---------------|----------------------------------------------------|----------------------------------|
//! | any           | `*` in either revision                             | every topic                      |
//! | exact         | `match`, `match_exact`; a draft-07 plain selector  | the identical string, byte for byte |
//! | URI template  | a draft-07 selector with a valid `{…}` template    | its expansions ([`crate::topic`]) |
//! | URL pattern   | `match_urlpattern`                                 | URLs the WHATWG URL Pattern matches |
//!
//! URL patterns and the topics they are tested against are resolved
//! against the hub's URL ([`HubUrl`]), so `/books/:id` matches the topic
//! `/books/1` and `https://hub.example/books/1` alike. A topic that is no
//! URL reference matches no URL pattern. Patterns compile to the `regex`
//! crate's automata, whose matching time is linear in the topic's length
//! whatever the pattern (draft-08 §URL Pattern requires linear time or a
//! cost limit), and each compiled component is bounded in size.

use std::cell::OnceCell;
use std::fmt;
use std::sync::Arc;

use icu_properties::props::GeneralCategory;
use icu_properties::CodePointMapData;
use regex::{Regex, RegexBuilder};
use url::Url;
use urlpattern::quirks::MatchInput;
use urlpattern::regexp::RegExp;
use urlpattern::{UrlPattern, UrlPatternInit, UrlPatternMatchInput, UrlPatternOptions};

use crate::topic::{Compiled, TopicMatcher};

/// The matcher types of draft-08: the suffix of a `match_<type>` query
/// parameter and the `match_type` member of an authorization detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchType {
    /// Byte-for-byte comparison (the default: bare `match`).
    Exact,
    /// A WHATWG URL Pattern, relative ones resolved against the hub's URL.
    UrlPattern,
}

impl MatchType {
    /// Every type this hub supports, in the order it advertises them.
    pub const ALL: [MatchType; 2] = [MatchType::Exact, MatchType::UrlPattern];

    /// The canonical (case-sensitive) name.
    pub fn name(self) -> &'static str {
        match self {
            MatchType::Exact => "exact",
            MatchType::UrlPattern => "urlpattern",
        }
    }

    /// The type with this canonical name; names are case-sensitive, so
    /// `URLPattern` is no type.
    pub fn from_name(name: &str) -> Option<MatchType> {
        MatchType::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for MatchType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The hub's own URL: the base of relative URL patterns and topics, and
/// the root of the namespace reserved for what the hub publishes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubUrl {
    url: Url,
    /// The path, normalized as topics' paths are before comparison.
    path: String,
    /// The last segment of the path, when every topic that resolves under
    /// the path must spell it (see [`HubUrl::may_be_reserved`]).
    last_segment: Option<Box<str>>,
}

/// The URL a hub assumes when none is configured.
pub const DEFAULT_HUB_URL: &str = "http://localhost/.well-known/mercure";

impl HubUrl {
    /// Parses an absolute URL (`https://hub.example.com/.well-known/mercure`).
    pub fn parse(url: &str) -> Result<HubUrl, String> {
        let url = Url::parse(url).map_err(|e| format!("{url:?} is not an absolute URL: {e}"))?;
        if url.cannot_be_a_base() {
            return Err(format!("{url} cannot be the base of relative URLs"));
        }
        let path = normalize_path(url.path()).trim_end_matches('/').to_owned();
        let last_segment = spelled_segment(url.path());
        Ok(HubUrl {
            url,
            path,
            last_segment,
        })
    }

    /// The URL itself.
    pub fn as_url(&self) -> &Url {
        &self.url
    }

    /// The path of the hub's protected resource metadata (RFC 9728 §3.1:
    /// the well-known prefix inserted before the hub's path), e.g.
    /// `/.well-known/oauth-protected-resource/.well-known/mercure`.
    pub fn metadata_path(&self) -> String {
        let path = self.url.path().trim_end_matches('/');
        format!("/.well-known/oauth-protected-resource{path}")
    }

    /// The absolute URL of the hub's protected resource metadata.
    pub fn metadata_url(&self) -> String {
        let mut url = self.url.clone();
        url.set_path(&self.metadata_path());
        url.set_query(None);
        url.set_fragment(None);
        url.to_string()
    }

    /// Whether `topic`, resolved against the hub's URL, names a resource
    /// under the hub's own path (draft-08 §Publication: the reserved
    /// namespace). Dot segments are removed and percent-encoded unreserved
    /// characters decoded first, so `/.well-known/%6Dercure/x` is caught; a
    /// topic that is no URL reference names no hub path.
    pub fn is_reserved(&self, topic: &str) -> bool {
        self.may_be_reserved(topic) && self.resolves_under_path(topic)
    }

    /// Whether `topic` resolved against the hub's URL has a path under the
    /// hub's path.
    fn resolves_under_path(&self, topic: &str) -> bool {
        let Ok(resolved) = self.url.join(topic) else {
            return false;
        };
        let path = normalize_path(resolved.path());
        match path.strip_prefix(self.path.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }
}

impl HubUrl {
    /// Whether `topic` may resolve under the hub's path; `false` only when
    /// it surely does not, which spares most publishes a URL join.
    ///
    /// A topic resolves under the hub's path only if the resolved path has
    /// the hub path's last segment where the hub path has it. The base
    /// lends a relative topic its directory only, which ends before that
    /// segment (the hub's path does not end with `/`: see
    /// [`spelled_segment`]), and dot segments only remove: so the segment
    /// comes from the topic, spelled as it is, unless the topic has a `%`
    /// (percent-decoding), a tab or line break (which URL parsing drops),
    /// or leads with a space or control character (trimmed), or is a
    /// reference of a query or fragment alone, or nothing (after the base's
    /// own scheme, `http:?x`): those keep the base's whole path.
    fn may_be_reserved(&self, topic: &str) -> bool {
        let Some(segment) = &self.last_segment else {
            return true;
        };
        let scheme = self.url.scheme();
        let relative = match topic.get(..scheme.len()) {
            Some(prefix)
                if prefix.eq_ignore_ascii_case(scheme)
                    && topic.as_bytes().get(scheme.len()) == Some(&b':') =>
            {
                &topic[scheme.len() + 1..]
            }
            _ => topic,
        };
        let keeps_base_path = match relative.as_bytes().first() {
            None => true,
            Some(&first) => first <= b' ' || first == b'?' || first == b'#',
        };
        keeps_base_path
            || topic.as_bytes().first().is_some_and(|&b| b <= b' ')
            || topic.contains(&**segment)
            || topic
                .bytes()
                .any(|b| matches!(b, b'%' | b'\t' | b'\n' | b'\r'))
    }
}

/// The last segment of the hub's `path` when it can only be spelled one
/// way: not empty (a path ending with `/` lends it to every relative
/// topic), not a dot segment, and of unreserved characters alone (which
/// URL parsing neither encodes nor produces from anything else).
fn spelled_segment(path: &str) -> Option<Box<str>> {
    let (_, segment) = path.rsplit_once('/')?;
    let spelled = !segment.is_empty()
        && segment != "."
        && segment != ".."
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    spelled.then(|| segment.into())
}

impl Default for HubUrl {
    fn default() -> Self {
        // A constant that parses; a failure would be caught by every test.
        HubUrl::parse(DEFAULT_HUB_URL).unwrap_or_else(|_| unreachable!())
    }
}

impl fmt::Display for HubUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.url.fmt(f)
    }
}

/// Decodes percent-encoded unreserved characters (RFC 3986 §6.2.2.2);
/// everything else is kept as it is.
fn normalize_path(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = path
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex.filter(|b| b.is_ascii_alphanumeric() || b"-._~".contains(b)) {
                out.push(char::from(b));
                i += 3;
                continue;
            }
        }
        // Percent signs and ASCII are pushed one by one; multi-byte
        // characters never start with '%', so slicing by char is safe.
        let ch = path[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Why a matcher value is refused (draft-08 §Subscription, value
/// constraints), as a message for a 400.
pub(crate) fn check_value(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("must not be empty");
    }
    if let Some(c) = value.chars().find(|&c| is_forbidden_char(c)) {
        return Err(if c.is_control() {
            "must not contain control characters"
        } else {
            "must not contain Unicode format characters (such as zero-width or bidirectional controls)"
        });
    }
    Ok(())
}

/// C0, DEL, C1 and general category Cf: invisible characters that draft-08
/// forbids in topics, matchers, ids and event types.
pub(crate) fn is_forbidden_char(c: char) -> bool {
    c.is_control() || CodePointMapData::<GeneralCategory>::new().get(c) == GeneralCategory::Format
}

/// A compiled topic matcher.
#[derive(Clone)]
pub(crate) enum Matcher {
    /// `*`: every topic.
    Any,
    /// The identical topic.
    Exact(Box<str>),
    /// A draft-07 URI template.
    Template {
        source: Box<str>,
        compiled: Arc<Compiled>,
    },
    /// A draft-08 URL pattern.
    UrlPattern(Arc<Pattern>),
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::Any => f.write_str("*"),
            Matcher::Exact(s) => write!(f, "exact({s:?})"),
            Matcher::Template { source, .. } => write!(f, "template({source:?})"),
            Matcher::UrlPattern(p) => write!(f, "urlpattern({:?})", p.source),
        }
    }
}

impl Matcher {
    /// A draft-07 selector: `*`, a URI template, or else an exact topic
    /// (an invalid template is an exact topic too).
    pub(crate) fn selector(selector: &str, templates: &TopicMatcher) -> Matcher {
        if selector == "*" {
            return Matcher::Any;
        }
        match templates.template(selector) {
            Some(compiled) => Matcher::Template {
                source: selector.into(),
                compiled,
            },
            None => Matcher::Exact(selector.into()),
        }
    }

    /// A draft-08 matcher of the given type; `*` is the wildcard whatever
    /// the type. Fails on a URL pattern that does not parse or compile.
    pub(crate) fn typed(
        match_type: MatchType,
        value: &str,
        base: &HubUrl,
    ) -> Result<Matcher, String> {
        if value == "*" {
            return Ok(Matcher::Any);
        }
        Ok(match match_type {
            MatchType::Exact => Matcher::Exact(value.into()),
            MatchType::UrlPattern => Matcher::UrlPattern(Arc::new(Pattern::new(value, base)?)),
        })
    }

    /// The key subscribers sharing this matcher are grouped under:
    /// exact matchers of both revisions share one space (both compare
    /// bytes), patterns are told apart by kind.
    pub(crate) fn key(&self) -> MatcherKey {
        match self {
            Matcher::Any => MatcherKey::Any,
            Matcher::Exact(s) => MatcherKey::Exact(s.clone()),
            Matcher::Template { source, .. } => MatcherKey::Template(source.clone()),
            Matcher::UrlPattern(p) => MatcherKey::UrlPattern(p.source.clone()),
        }
    }

    /// Whether the matcher selects `topic`.
    pub(crate) fn matches(&self, topic: &Topic<'_>) -> bool {
        match self {
            Matcher::Any => true,
            Matcher::Exact(s) => **s == *topic.raw,
            Matcher::Template { source, compiled } => {
                **source == *topic.raw || compiled.matches(topic.raw)
            }
            Matcher::UrlPattern(p) => topic.components().is_some_and(|c| p.matches(c)),
        }
    }
}

/// What identifies a matcher in the fan-out registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum MatcherKey {
    Any,
    Exact(Box<str>),
    Template(Box<str>),
    UrlPattern(Box<str>),
}

/// A topic being matched, with its URL components worked out once (on
/// first need) however many URL patterns look at it.
pub(crate) struct Topic<'a> {
    raw: &'a str,
    base: &'a HubUrl,
    components: OnceCell<Option<MatchInput>>,
}

impl<'a> Topic<'a> {
    pub(crate) fn new(raw: &'a str, base: &'a HubUrl) -> Topic<'a> {
        Topic {
            raw,
            base,
            components: OnceCell::new(),
        }
    }

    /// The topic as published.
    pub(crate) fn as_str(&self) -> &'a str {
        self.raw
    }

    fn components(&self) -> Option<&MatchInput> {
        self.components
            .get_or_init(|| {
                let url = self.base.url.join(self.raw).ok()?;
                urlpattern::quirks::parse_match_input(UrlPatternMatchInput::Url(url))
            })
            .as_ref()
    }
}

/// A compiled URL pattern.
pub(crate) struct Pattern {
    source: Box<str>,
    compiled: UrlPattern<BoundedRegex>,
}

impl Pattern {
    fn new(source: &str, base: &HubUrl) -> Result<Pattern, String> {
        let parse = || -> Result<UrlPattern<BoundedRegex>, String> {
            let init = UrlPatternInit::parse_constructor_string::<BoundedRegex>(
                source,
                Some(base.url.clone()),
            )
            .map_err(|e| format!("not a URL pattern: {e}"))?;
            // draft-08 §URL Pattern: `ignoreCase` stays off.
            UrlPattern::parse(init, UrlPatternOptions::default())
                .map_err(|e| format!("not a URL pattern: {e}"))
        };
        // The pattern is a client's, and urlpattern 0.6 can panic on one: a
        // `]` closing no `[` in the hostname underflows its bracket depth (a
        // `usize`) wherever overflow checks are on. Without them the count
        // wraps, which is the spec's own arithmetic, so release builds
        // accept such a pattern (it matches no real host) and builds with
        // checks refuse it here; either way the request gets an answer
        // instead of its task dying. Nothing is shared with the closure, so
        // an unwind leaves no broken state behind.
        let compiled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse))
            .map_err(|_| "not a URL pattern: the URL pattern parser failed on it".to_owned())??;
        Ok(Pattern {
            source: source.into(),
            compiled,
        })
    }

    fn matches(&self, input: &MatchInput) -> bool {
        let p = &self.compiled;
        p.protocol.matcher.matches(&input.protocol).is_some()
            && p.username.matcher.matches(&input.username).is_some()
            && p.password.matcher.matches(&input.password).is_some()
            && p.hostname.matcher.matches(&input.hostname).is_some()
            && p.port.matcher.matches(&input.port).is_some()
            && p.pathname.matcher.matches(&input.pathname).is_some()
            && p.search.matcher.matches(&input.search).is_some()
            && p.hash.matcher.matches(&input.hash).is_some()
    }
}

/// Upper bound on one compiled URL pattern component, in bytes.
const PATTERN_SIZE_LIMIT: usize = 64 * 1024;

/// The `regex` engine for URL patterns, with the compiled size bounded so
/// that a hostile pattern cannot take much memory.
struct BoundedRegex(Regex);

impl RegExp for BoundedRegex {
    fn syntax() -> urlpattern::parser::RegexSyntax {
        urlpattern::parser::RegexSyntax::Rust
    }

    fn parse(pattern: &str, _flags: &str, _force_eval: bool) -> Result<Self, ()> {
        RegexBuilder::new(pattern)
            .size_limit(PATTERN_SIZE_LIMIT)
            .dfa_size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map(BoundedRegex)
            .map_err(|_| ())
    }

    fn matches<'a>(&self, text: &'a str) -> Option<Vec<Option<&'a str>>> {
        let captures = self.0.captures(text)?;
        Some(
            captures
                .iter()
                .skip(1)
                .map(|c| c.map(|m| m.as_str()))
                .collect(),
        )
    }

    fn pattern_string(&self) -> &str {
        self.0.as_str()
    }
}

#[cfg(test)]
mod tests;
