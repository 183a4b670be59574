//! Why an access token was refused, one variant per cause, so that the
//! HTTP layer can answer with the right status and challenge and the
//! developer reading the body learns what to fix.

use std::fmt;

use jsonwebtoken::Algorithm;

/// Why a token was refused.
///
/// Every variant but [`AccessTokenError::KeysUnavailable`] is a defect of
/// the presented token: the answer is a 401 with `error="invalid_token"`
/// (draft-08 §Error Responses), whatever the cause, so that a client
/// learns nothing from the code; the message (`Display`) is for the
/// developer and never holds key material. `KeysUnavailable` is the
/// hub's own trouble (the issuer's JWKS could not be fetched) and is
/// better answered with a 503: the token may be perfectly valid.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccessTokenError {
    /// Not a JWS in compact serialization, or a header or claims set that
    /// is not the JSON it should be; says which.
    Malformed(String),
    /// The header's `typ` is not `at+jwt` (an ID token, a draft-07
    /// token…).
    NotAnAccessToken,
    /// The header lists critical extensions (`crit`); the hub supports
    /// none.
    CriticalHeader,
    /// The header carries key material (`jwk`, `jku`, `x5u`, `x5c`); the
    /// hub only uses keys it was configured with.
    EmbeddedKey,
    /// The `alg` is not on the hub's allowlist.
    AlgorithmNotAccepted(Algorithm),
    /// A claim the hub requires (`iss`, `exp`, `aud`) is absent.
    MissingClaim(&'static str),
    /// A claim has the wrong type, e.g. `exp` is not a number.
    InvalidClaim {
        /// The claim.
        claim: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// `iss` names no trusted issuer (the value, shortened).
    UntrustedIssuer(String),
    /// The issuer has no key for the token's algorithm (and `kid`).
    UnknownKey {
        /// The token's `iss`.
        issuer: String,
        /// The token's `alg`.
        algorithm: Algorithm,
        /// The token's `kid`, shortened.
        kid: Option<String>,
    },
    /// The signature does not verify with the issuer's keys.
    BadSignature,
    /// `aud` does not contain the hub's resource identifier.
    WrongAudience {
        /// The hub's resource identifier.
        resource: String,
    },
    /// `exp` has passed.
    Expired,
    /// `nbf` is in the future.
    NotYetValid,
    /// `iat` is in the future.
    IssuedInTheFuture,
    /// The Mercure authorization details do not follow draft-08
    /// §Authorization Details; says what is wrong.
    AuthorizationDetails(String),
    /// The token could not be verified because its issuer's keys could
    /// not be fetched (its JWKS URL answers an error or nothing): not the
    /// token's fault.
    KeysUnavailable {
        /// The token's `iss`.
        issuer: String,
    },
}

impl AccessTokenError {
    /// Whether the token itself is at fault: a 401 with
    /// `error="invalid_token"`. False only for
    /// [`AccessTokenError::KeysUnavailable`].
    pub fn is_invalid_token(&self) -> bool {
        !matches!(self, AccessTokenError::KeysUnavailable { .. })
    }
}

impl fmt::Display for AccessTokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use AccessTokenError as E;
        match self {
            E::Malformed(why) => write!(f, "malformed access token: {why}"),
            E::NotAnAccessToken => {
                f.write_str("not an access token: its header's \"typ\" must be \"at+jwt\"")
            }
            E::CriticalHeader => f.write_str(
                "the token's header lists critical extensions (\"crit\"), which this hub does not support",
            ),
            E::EmbeddedKey => f.write_str(
                "the token brings its own key (a jwk, jku, x5u or x5c header): the hub only uses the keys it trusts",
            ),
            E::AlgorithmNotAccepted(alg) => {
                write!(f, "the algorithm {alg:?} is not accepted by this hub")
            }
            E::MissingClaim(claim) => write!(f, "the token has no \"{claim}\" claim"),
            E::InvalidClaim { claim, expected } => {
                write!(f, "the token's \"{claim}\" claim must be {expected}")
            }
            E::UntrustedIssuer(iss) => write!(f, "the issuer {iss:?} is not trusted by this hub"),
            E::UnknownKey {
                issuer,
                algorithm,
                kid: Some(kid),
            } => write!(
                f,
                "the issuer {issuer:?} has no {algorithm:?} key with kid {kid:?}"
            ),
            E::UnknownKey {
                issuer,
                algorithm,
                kid: None,
            } => write!(f, "the issuer {issuer:?} has no {algorithm:?} key"),
            E::BadSignature => f.write_str("the signature does not verify with the issuer's keys"),
            E::WrongAudience { resource } => {
                write!(f, "the token's \"aud\" does not name this hub ({resource:?})")
            }
            E::Expired => f.write_str("the token has expired"),
            E::NotYetValid => f.write_str("the token is not valid yet (its \"nbf\" is in the future)"),
            E::IssuedInTheFuture => {
                f.write_str("the token was issued in the future (its \"iat\"): check the clocks")
            }
            E::AuthorizationDetails(why) => write!(f, "invalid authorization_details: {why}"),
            E::KeysUnavailable { issuer } => write!(
                f,
                "the keys of the issuer {issuer:?} cannot be fetched right now: try again later"
            ),
        }
    }
}

impl std::error::Error for AccessTokenError {}

/// Most characters of a token's value (an `iss`, a `kid`) repeated in an
/// error message: enough to recognise it, not a way to make the hub echo
/// kilobytes.
const SHOWN_CHARS: usize = 80;

/// `value` as repeated in an error message.
pub(super) fn shown(value: &str) -> String {
    if value.chars().count() <= SHOWN_CHARS {
        value.to_owned()
    } else {
        let mut short: String = value.chars().take(SHOWN_CHARS).collect();
        short.push('…');
        short
    }
}
