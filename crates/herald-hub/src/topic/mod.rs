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

mod cache;
mod template;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use regex::{Regex, RegexBuilder};

use cache::TemplateCache;
use template::{parse, to_regex};

/// Compiled templates a [`TopicMatcher::default`] keeps.
pub(crate) const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// The largest prefix modifier (`{x:N}`) matched exactly; larger prefixes
/// are matched as if there were none, which keeps compiled templates small.
pub(crate) const MAX_EXACT_PREFIX: u16 = 64;

/// The most variables one expression may list (`{a,b,…}`); a template with
/// more is invalid and treated as an exact selector.
pub(crate) const MAX_VARIABLES_PER_EXPRESSION: usize = 16;

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
#[allow(unreachable_pub)] // `pub` for the re-export in `crate::fuzzing`
pub struct TopicMatcher {
    /// Maximum number of compiled templates kept.
    capacity: usize,
    /// Template source → compiled template. A read lock on hits; the write
    /// lock only to insert, and never while compiling.
    cache: RwLock<TemplateCache>,
}

impl TopicMatcher {
    /// A matcher whose cache holds at most `capacity` compiled templates.
    #[allow(unreachable_pub)] // `pub` for the re-export in `crate::fuzzing`
    pub fn new(capacity: usize) -> TopicMatcher {
        TopicMatcher {
            capacity,
            cache: RwLock::new(TemplateCache::new()),
        }
    }

    // Fan-out and grants hold compiled matchers; this is for the tests and
    // the fuzz targets.
    #[cfg(any(test, feature = "fuzzing"))]
    /// Whether `selector` matches `topic`: `selector` is `*`, or is `topic`
    /// itself, or is a URI template `topic` is an expansion of.
    ///
    /// Never fails: an invalid template matches only the identical topic.
    #[allow(unreachable_pub)] // `pub` for the re-export in `crate::fuzzing`
    pub fn matches(&self, selector: &str, topic: &str) -> bool {
        if selector == "*" || selector == topic {
            return true;
        }
        if !is_template(selector) {
            return false;
        }
        self.compiled(selector).matches(topic)
    }

    #[cfg(test)]
    /// The most compiled templates this matcher keeps.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many compiled templates (valid or not) the cache holds now;
    /// never more than [`TopicMatcher::capacity`].
    pub(crate) fn cached_templates(&self) -> usize {
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
pub(crate) fn is_template(selector: &str) -> bool {
    selector != "*" && selector.contains('{')
}

#[cfg(test)]
/// Whether `selector` is a URI template this module can compile, i.e. one
/// that may match topics other than itself. Compiles it (uncached).
pub(crate) fn is_valid_template(selector: &str) -> bool {
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
