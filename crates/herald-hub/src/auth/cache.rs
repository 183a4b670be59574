//! Verified publisher tokens, so that a publisher sending the same JWT with
//! every update is not verified again each time.
//!
//! On the publish path, verifying a draft-07 token (base64, two JSON
//! documents, the signature) and compiling its selectors cost more heap
//! blocks than anything else a publish does (bench/RESULTS.md, "Publish
//! path (issue 14)"). What verification decides depends on the token's
//! bytes, the key and the time alone. The key is fixed for the hub's life
//! (the verifier is built once, in `Hub::new`), so a cache owned by the
//! hub can never outlive it. The time is checked again at every use: an
//! entry whose `exp` has passed (or whose `nbf`, should the clock go
//! back, is not reached) is not used, and the token is verified afresh,
//! which refuses it with the usual message. Only tokens that verified are
//! kept, so invalid tokens cannot fill the cache.
//!
//! Draft-08 access tokens are not cached: their keys change while the hub
//! runs (JWKS files and URLs read again), and their verification depends
//! on more than the token and the time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Grants;

/// Most tokens kept. A publisher usually has one token, a few services a
/// few; past this many the cache starts over, which costs one
/// verification per token again.
const CAPACITY: usize = 256;

/// Longest token kept, so that the cache holds at most `CAPACITY` times
/// this many bytes of keys. A longer token is verified at every use.
const MAX_TOKEN_LEN: usize = 4096;

/// Verified draft-07 publisher tokens and their grants.
#[derive(Default)]
pub(crate) struct TokenCache {
    entries: Mutex<HashMap<Box<str>, Entry>>,
}

struct Entry {
    grants: Arc<Grants>,
    /// `nbf` when the token had one: checked at each use like `exp`.
    not_before: Option<u64>,
}

impl Entry {
    /// Whether the token is still valid at `now` (seconds since the Unix
    /// epoch), by the same rules as `JwtVerifier::verify_at`.
    fn valid_at(&self, now: u64) -> bool {
        self.grants.expires.is_none_or(|exp| now < exp)
            && self.not_before.is_none_or(|nbf| now >= nbf)
    }
}

impl TokenCache {
    /// The grants of `token`, if it verified before and is still valid at
    /// `now`; `None` means: verify it.
    pub(crate) fn get(&self, token: &str, now: u64) -> Option<Arc<Grants>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(token)?;
        if entry.valid_at(now) {
            return Some(Arc::clone(&entry.grants));
        }
        // Expired for good (or not valid yet): verification decides, and a
        // token that verifies again is inserted again.
        entries.remove(token);
        None
    }

    /// Keeps the grants of `token`, which verified at `now`.
    pub(crate) fn insert(
        &self,
        token: &str,
        grants: Arc<Grants>,
        not_before: Option<u64>,
        now: u64,
    ) {
        if token.len() > MAX_TOKEN_LEN {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY {
            entries.retain(|_, entry| entry.valid_at(now));
            if entries.len() >= CAPACITY {
                // Many publishers with long-lived tokens: start over rather
                // than track recency on every hit.
                entries.clear();
            }
        }
        entries.insert(token.into(), Entry { grants, not_before });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Claims;
    use crate::topic::TopicMatcher;

    fn grants(exp: Option<u64>) -> Arc<Grants> {
        let claims = Claims {
            publish: Some(vec!["*".into()]),
            exp,
            ..Claims::default()
        };
        Arc::new(Grants::from_claims(claims, &TopicMatcher::default()))
    }

    #[test]
    fn a_cached_token_is_used_until_its_exp_and_not_after() {
        let cache = TokenCache::default();
        cache.insert("t", grants(Some(100)), None, 10);
        assert!(cache.get("t", 99).is_some());
        // Valid while now < exp, as JwtVerifier::verify_at.
        assert!(cache.get("t", 100).is_none());
        assert_eq!(cache.len(), 0, "the expired entry is dropped");
        assert!(
            cache.get("t", 99).is_none(),
            "and verified afresh next time"
        );
    }

    #[test]
    fn nbf_is_checked_at_each_use() {
        let cache = TokenCache::default();
        cache.insert("t", grants(None), Some(50), 60);
        assert!(cache.get("t", 60).is_some());
        // The clock went back before nbf: verification decides.
        assert!(cache.get("t", 49).is_none());
    }

    #[test]
    fn only_the_exact_token_hits() {
        let cache = TokenCache::default();
        cache.insert("token", grants(None), None, 0);
        assert!(cache.get("token", 1).is_some());
        assert!(cache.get("token ", 1).is_none());
        assert!(cache.get("toke", 1).is_none());
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = TokenCache::default();
        for i in 0..CAPACITY * 3 {
            cache.insert(&format!("t{i}"), grants(None), None, 0);
            assert!(cache.len() <= CAPACITY);
        }
        let long = "x".repeat(MAX_TOKEN_LEN + 1);
        cache.insert(&long, grants(None), None, 0);
        assert!(
            cache.get(&long, 0).is_none(),
            "a very long token is not kept"
        );
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first() {
        let cache = TokenCache::default();
        for i in 0..CAPACITY - 1 {
            cache.insert(&format!("old{i}"), grants(Some(10)), None, 0);
        }
        cache.insert("kept", grants(None), None, 0);
        cache.insert("new", grants(None), None, 20);
        assert!(cache.get("kept", 20).is_some());
        assert!(cache.get("new", 20).is_some());
        assert_eq!(cache.len(), 2);
    }
}
