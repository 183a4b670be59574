//! Who may publish and who may see what.
//!
//! Authorization has three steps, each in its own place. Finding the token
//! a request presents is an HTTP concern (`http/token.rs`). Verifying it
//! depends on the revision it was issued for: a draft-07 token is checked
//! with the one key configured for its role ([`JwtVerifier`], in
//! `jwt`), which also mints tokens for `herald token` and tests. What a
//! verified token allows is then carried the same way whatever its
//! revision (`Grants`): the topics it may publish to, the topics whose
//! private updates it may read, as matchers
//! shared with routing, its payload and its expiry.

mod cache;
mod grants;
mod jwt;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::access_token::AccessTokenError;
use crate::hub::Shared;
use crate::protocol::Revision;

pub(crate) use cache::TokenCache;
pub(crate) use grants::Grants;
pub(crate) use jwt::sign;
pub use jwt::{mint, AuthError, Claims, JwtVerifier};

/// Whose token is verified: the draft-07 keys differ by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Publisher,
    Subscriber,
}

/// Why a token could not be turned into grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The token is at fault (`invalid_token`); says why.
    Invalid(String),
    /// The hub could not check it: its issuer's keys could not be fetched.
    /// The token may be valid, so the answer is a 503 to retry, not a 401
    /// that would send the client for a new token.
    KeysUnavailable(String),
}

impl From<String> for Refused {
    fn from(reason: String) -> Self {
        Refused::Invalid(reason)
    }
}

impl From<&str> for Refused {
    fn from(reason: &str) -> Self {
        Refused::Invalid(reason.to_string())
    }
}

/// Verifies `token` as the revision it was issued for and returns its
/// grants, or why it is refused.
///
/// A token whose `typ` is `at+jwt` is a draft-08 access token, verified
/// with the trusted issuers' keys; any other is a draft-07 token, verified
/// with the role's key. A hub refuses the tokens of a revision it does not
/// speak.
pub(crate) async fn verify(shared: &Shared, token: &str, role: Role) -> Result<Grants, Refused> {
    let config = &shared.config;
    if crate::access_token::is_access_token(token) {
        if !config.protocol.speaks(Revision::Draft08) {
            return Err("this hub speaks draft-07 only (--protocol 07): send a token with the \"mercure\" claim, not an access token".into());
        }
        let verifier = shared.access_tokens.as_ref().ok_or(
            "this hub trusts no access-token issuer: configure one (--issuer) to accept at+jwt tokens",
        )?;
        let token = verifier.verify(token).await.map_err(|e| match e {
            AccessTokenError::KeysUnavailable { .. } => Refused::KeysUnavailable(e.to_string()),
            e => Refused::Invalid(e.to_string()),
        })?;
        return Ok(Grants::from_access_token(token, &config.hub_url)?);
    }
    if !config.protocol.speaks(Revision::Draft07) {
        return Err("this hub speaks draft-08 only (--protocol 08): send an access token (typ at+jwt) with authorization_details".into());
    }
    let verifier = match role {
        Role::Publisher => shared.publisher_jwt.as_ref(),
        Role::Subscriber => shared.subscriber_jwt.as_ref(),
    };
    let verifier = verifier.ok_or(match role {
        Role::Publisher => "this hub has no publisher key configured",
        Role::Subscriber => "this hub has no subscriber key configured",
    })?;
    let claims = verifier.verify(token).map_err(|e| e.to_string())?;
    Ok(Grants::from_claims(claims, &shared.matcher))
}

/// [`verify`] for a publisher, through the hub's cache of verified
/// draft-07 publisher tokens (`cache.rs`): a token seen before and still
/// within its `exp` and `nbf` is not verified again.
pub(crate) async fn verify_publisher(shared: &Shared, token: &str) -> Result<Arc<Grants>, Refused> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if let Some(grants) = shared.publisher_tokens.get(token, now) {
        return Ok(grants);
    }
    let draft07 = !crate::access_token::is_access_token(token)
        && shared.config.protocol.speaks(Revision::Draft07);
    match shared.publisher_jwt.as_ref().filter(|_| draft07) {
        Some(verifier) => {
            let (claims, not_before) = verifier
                .verify_with_nbf(token, now)
                .map_err(|e| e.to_string())?;
            let grants = Arc::new(Grants::from_claims(claims, &shared.matcher));
            shared
                .publisher_tokens
                .insert(token, Arc::clone(&grants), not_before, now);
            Ok(grants)
        }
        // Access tokens, and the refusals: as without the cache. Boxed:
        // this path's future (an access token's verification may refresh
        // the key set) is larger than the rest of a publish's, and would
        // size every connection's request loop (`server::plain`)
        // otherwise.
        None => Box::pin(verify(shared, token, Role::Publisher))
            .await
            .map(Arc::new),
    }
}
