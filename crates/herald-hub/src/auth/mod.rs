//! Who may publish and who may see what.
//!
//! Authorization has three steps, each in its own place. Finding the token
//! a request presents is an HTTP concern (`http/token.rs`). Verifying it
//! depends on the revision it was issued for: a draft-07 token is checked
//! with the one key configured for its role ([`JwtVerifier`], in
//! [`jwt`]), which also mints tokens for `herald token` and tests. What a
//! verified token allows is then carried the same way whatever its
//! revision ([`Grants`]): the topics it may publish to, the topics whose
//! private updates it may read, as [`Matcher`](crate::matcher::Matcher)s
//! shared with routing, its payload and its expiry.

mod grants;
mod jwt;

pub(crate) use grants::Grants;
pub(crate) use jwt::sign;
pub use jwt::{mint, AuthError, Claims, JwtVerifier};
