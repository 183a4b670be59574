//! Topic matchers: what a subscription or a grant selects, for both
//! protocol revisions.
//!
//! Draft-08 names a matcher's type explicitly (`match` or `match_exact`,
//! `match_urlpattern`; `match_type` in authorization details); draft-07's
//! `topic` selectors are exact strings or URI templates (see
//! [`crate::topic`]). `*` matches every topic in both.

use std::fmt;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for t in MatchType::ALL {
            assert_eq!(MatchType::from_name(t.name()), Some(t));
        }
        assert_eq!(MatchType::from_name("URLPattern"), None);
        assert_eq!(MatchType::from_name("Exact"), None);
        assert_eq!(MatchType::from_name("template"), None);
    }
}
