//! Draft-08 access tokens: RFC 9068 JWTs (`typ: at+jwt`) from trusted
//! issuers, carrying Mercure authorization details. This is the first step
//! of both paths once a request presents a token: publish → *verify the
//! token* → authorize each topic → history → fan-out, and subscribe →
//! *verify the token* → authorize the matchers → replay → live. The HTTP
//! layer turns the result into grants (compiling the matchers) or into a
//! `WWW-Authenticate` challenge.
//!
//! # From the operator's configuration to a verdict
//!
//! The operator lists the issuers the hub trusts ([`IssuerConfig`]), each
//! with its keys ([`KeySource`]): PEM public keys or files, a shared secret,
//! a JWKS file, or the URL of the issuer's JWKS. Then, for each token
//! ([`AccessTokenVerifier::verify`]):
//!
//! 1. The header: `typ` must be `at+jwt` (or `application/at+jwt`); no
//!    `crit`; no key material of its own (`jwk`, `jku`, `x5u`, `x5c`); an
//!    `alg` from [`AccessTokenConfig::algorithms`] (EdDSA, ES256 and RS256
//!    by default; `none` never).
//! 2. The issuer: `iss` must equal one configured issuer exactly, and only
//!    that issuer's keys are tried, never a pool spanning issuers.
//! 3. The key: among the issuer's keys suited to `alg` (family, curve, and
//!    the JWK's own `alg`), the one whose `kid` the token names, or those
//!    without a `kid` (a PEM key, a secret), or, when the token names none,
//!    each in turn. A `kid` the hub does not know makes it read the
//!    issuer's JWKS files and fetch its JWKS URLs again, at most once per
//!    [`JwksPolicy::min_refetch`]: an issuer rotates its keys and the hub
//!    follows without a restart, while a flood of made-up `kid`s cannot
//!    make it hammer the issuer. [`AccessTokenVerifier::start`] also
//!    refreshes them every [`JwksPolicy::refresh`].
//! 4. The claims: `aud` must contain [`AccessTokenConfig::resource`];
//!    `exp` is required and enforced, `nbf` and `iat` are enforced when
//!    present, all with [`AccessTokenConfig::leeway`]; `sub`, when present,
//!    is a string.
//! 5. The grants: the Mercure authorization details ([`MercureDetail`]),
//!    parsed strictly: one invalid Mercure entry rejects the whole token.
//!
//! A refusal is an [`AccessTokenError`]: `invalid_token` for every defect
//! of the token, and [`AccessTokenError::KeysUnavailable`] when the
//! issuer's keys could not be fetched and the token may well be valid.
//!
//! # Example
//!
//! ```no_run
//! use herald_hub::access_token::{AccessTokenConfig, AccessTokenVerifier, IssuerConfig, KeySource};
//!
//! # async fn run(token: &str) -> Result<(), Box<dyn std::error::Error>> {
//! let config = AccessTokenConfig::new(
//!     "https://hub.example.com/.well-known/mercure",
//!     vec![
//!         // An authorization server, whose keys are at its JWKS URL.
//!         IssuerConfig {
//!             issuer: "https://auth.example.com".into(),
//!             keys: vec![KeySource::JwksUrl("https://auth.example.com/jwks.json".into())],
//!         },
//!         // A publisher minting its own tokens with one Ed25519 key.
//!         IssuerConfig {
//!             issuer: "https://backend.example.com".into(),
//!             keys: vec![KeySource::PemFile("/etc/herald/backend.pub.pem".into())],
//!         },
//!     ],
//! );
//! let verifier = AccessTokenVerifier::new(config)?; // reads the PEM file
//! verifier.start().await; // fetches the JWKS, then refreshes it
//! match verifier.verify(token).await {
//!     Ok(token) => {
//!         for detail in &token.details {
//!             println!("publish: {}, topics: {:?}", detail.publish, detail.topics);
//!         }
//!     }
//!     Err(e) if e.is_invalid_token() => println!("401 invalid_token: {e}"),
//!     Err(e) => println!("503: {e}"),
//! }
//! # Ok(()) }
//! ```

mod config;
mod details;
mod error;
mod keys;

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde_json::{Map, Value};

pub use config::{
    AccessTokenConfig, ConfigError, IssuerConfig, JwksPolicy, KeySource, DEFAULT_ALGORITHMS,
};
pub use details::{MercureDetail, TopicGrant, MERCURE_DETAIL_TYPE};
use error::shown;
pub use error::AccessTokenError;
use keys::{IssuerKeys, JwksClient};

/// A verified access token.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessToken {
    /// `iss`: the trusted issuer whose key verified it.
    pub issuer: String,
    /// `sub`, when present: the subscriber's identity (draft-08 derives
    /// subscription identifiers from it).
    pub subject: Option<String>,
    /// `exp`, seconds since the Unix epoch: the grants end then.
    pub expires: u64,
    /// The Mercure authorization details, in the token's order (payload
    /// selection is order-dependent).
    pub details: Vec<MercureDetail>,
    /// Every claim, as signed.
    pub claims: Map<String, Value>,
}

/// Verifies access tokens. Cheap to clone: clones share the keys, so a
/// refresh through one is seen by all.
#[derive(Clone)]
pub struct AccessTokenVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    resource: String,
    algorithms: Vec<Algorithm>,
    leeway: u64,
    policy: JwksPolicy,
    issuers: Vec<IssuerKeys>,
    /// Fetches the JWKS URLs; `None` when no issuer has one.
    client: Option<JwksClient>,
}

impl fmt::Debug for AccessTokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let issuers: Vec<&str> = self
            .inner
            .issuers
            .iter()
            .map(|i| i.issuer.as_str())
            .collect();
        f.debug_struct("AccessTokenVerifier")
            .field("resource", &self.inner.resource)
            .field("issuers", &issuers)
            .finish_non_exhaustive()
    }
}

/// Whether a token's `typ` says it is an access token (RFC 9068 §4:
/// `at+jwt`, or `application/at+jwt`, case-insensitively): how the hub
/// tells a draft-08 token from a draft-07 one before verifying either.
pub fn is_access_token(token: &str) -> bool {
    jsonwebtoken::decode_header(token)
        .ok()
        .and_then(|h| h.typ)
        .is_some_and(|typ| is_at_jwt(&typ))
}

fn is_at_jwt(typ: &str) -> bool {
    let typ = typ.to_ascii_lowercase();
    typ.strip_prefix("application/").unwrap_or(&typ) == "at+jwt"
}

impl AccessTokenVerifier {
    /// Loads every fixed key now (PEM text, secrets, and the PEM and JWKS
    /// files, which are read here); keys at URLs are fetched by
    /// [`AccessTokenVerifier::start`] or
    /// [`AccessTokenVerifier::refresh_keys`], or by the first token that
    /// needs them. The error names the issuer and the source at fault.
    pub fn new(config: AccessTokenConfig) -> Result<AccessTokenVerifier, ConfigError> {
        let config_error = |message: String| ConfigError { message };
        if config.issuers.is_empty() {
            return Err(config_error("no trusted issuer".into()));
        }
        if config.algorithms.is_empty() {
            return Err(config_error("no accepted algorithm".into()));
        }
        for (i, issuer) in config.issuers.iter().enumerate() {
            if config.issuers[..i]
                .iter()
                .any(|o| o.issuer == issuer.issuer)
            {
                return Err(config_error(format!(
                    "the issuer {:?} is listed twice: list all its keys under one entry",
                    issuer.issuer
                )));
            }
        }
        let issuers = config
            .issuers
            .iter()
            .map(|i| IssuerKeys::load(&i.issuer, &i.keys, &config.algorithms))
            .collect::<Result<Vec<_>, _>>()?;
        let client = if issuers.iter().any(IssuerKeys::has_urls) {
            Some(JwksClient::new().map_err(config_error)?)
        } else {
            None
        };
        Ok(AccessTokenVerifier {
            inner: Arc::new(Inner {
                resource: config.resource,
                algorithms: config.algorithms,
                leeway: config.leeway,
                policy: config.jwks,
                issuers,
                client,
            }),
        })
    }

    /// Fetches the keys at URLs now, then spawns a task reading the JWKS
    /// files and fetching the URLs again every [`JwksPolicy::refresh`];
    /// the task ends when the last clone of the verifier is dropped. Call
    /// it once.
    pub async fn start(&self) {
        self.refresh_keys().await;
        if !self.inner.issuers.iter().any(IssuerKeys::refetches) {
            return;
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let every = self.inner.policy.refresh.max(keys::MIN_REFRESH);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                AccessTokenVerifier { inner }.refresh_keys().await;
            }
        });
    }

    /// Reads every issuer's JWKS files and fetches its keys at URLs now,
    /// whenever that was last done. A read that fails keeps the keys of
    /// the last one that succeeded (and is logged); one that succeeds
    /// replaces them, so a key the issuer retired stops verifying.
    pub async fn refresh_keys(&self) {
        for issuer in &self.inner.issuers {
            issuer
                .refresh(self.inner.client.as_ref(), &self.inner.policy, true)
                .await;
        }
    }

    /// Verifies `token` now. Async because a token naming a key the hub
    /// does not know may make it fetch the issuer's keys again (see
    /// [`JwksPolicy::min_refetch`]).
    pub async fn verify(&self, token: &str) -> Result<AccessToken, AccessTokenError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.verify_at(token, now).await
    }

    /// Verifies `token` as if the time were `now` (seconds since the Unix
    /// epoch), in draft-08 §Token Validation's order: the header (`typ`,
    /// no `crit`, no embedded key, `alg` allowlisted), the issuer, the
    /// signature with that issuer's keys only, then `aud`, `exp`, `nbf`,
    /// `iat`, `sub` and the authorization details.
    pub async fn verify_at(&self, token: &str, now: u64) -> Result<AccessToken, AccessTokenError> {
        let inner = &self.inner;
        let header = jsonwebtoken::decode_header(token).map_err(|e| malformed("header", &e))?;
        check_header(&header, &inner.algorithms)?;
        let alg = header.alg;
        let unverified: Map<String, Value> = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|e| malformed("claims", &e))?;
        let iss = match unverified.get("iss") {
            Some(Value::String(iss)) => iss,
            None => return Err(AccessTokenError::MissingClaim("iss")),
            Some(_) => {
                return Err(AccessTokenError::InvalidClaim {
                    claim: "iss",
                    expected: "a string",
                })
            }
        };
        let issuer = inner
            .issuers
            .iter()
            .find(|i| i.issuer == *iss)
            .ok_or_else(|| AccessTokenError::UntrustedIssuer(shown(iss)))?;

        let kid = header.kid.as_deref();
        let mut candidates = candidate_keys(issuer, kid, alg);
        if issuer.refetches()
            && (candidates.is_empty() || kid.is_some_and(|kid| !issuer.knows(kid)))
        {
            // A key the hub does not know (yet): the issuer may have
            // rotated its keys, or they were never fetched.
            issuer
                .refresh(inner.client.as_ref(), &inner.policy, false)
                .await;
            candidates = candidate_keys(issuer, kid, alg);
        }
        // Whether a failure may be the missing keys' rather than the
        // token's: the issuer's current keys are unknown and none of the
        // known ones is the one the token names.
        let keys_unavailable = || issuer.unavailable() && !kid.is_some_and(|kid| issuer.knows(kid));
        if candidates.is_empty() {
            return Err(if keys_unavailable() {
                AccessTokenError::KeysUnavailable {
                    issuer: issuer.issuer.clone(),
                }
            } else {
                AccessTokenError::UnknownKey {
                    issuer: issuer.issuer.clone(),
                    algorithm: alg,
                    kid: kid.map(shown),
                }
            });
        }

        let mut validation = Validation::new(alg);
        validation.set_audience(&[&inner.resource]);
        validation.set_issuer(&[&issuer.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        // Checked by `accept`, with the caller's `now`.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        for key in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation) {
                Ok(data) => return self.accept(data.claims, now),
                // The wrong key among several: try the next.
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => {}
                // The signature verified (or the token is broken): the
                // claims are at fault, whatever the other keys.
                Err(e) => return Err(claims_error(&e, &inner.resource, &unverified)),
            }
        }
        Err(if keys_unavailable() {
            AccessTokenError::KeysUnavailable {
                issuer: issuer.issuer.clone(),
            }
        } else {
            AccessTokenError::BadSignature
        })
    }

    /// Checks the times and reads the details of verified claims.
    fn accept(
        &self,
        claims: Map<String, Value>,
        now: u64,
    ) -> Result<AccessToken, AccessTokenError> {
        let leeway = self.inner.leeway;
        let expires = numeric(&claims, "exp")?.ok_or(AccessTokenError::MissingClaim("exp"))?;
        if now >= expires.saturating_add(leeway) {
            return Err(AccessTokenError::Expired);
        }
        if numeric(&claims, "nbf")?.is_some_and(|nbf| now.saturating_add(leeway) < nbf) {
            return Err(AccessTokenError::NotYetValid);
        }
        if numeric(&claims, "iat")?.is_some_and(|iat| now.saturating_add(leeway) < iat) {
            return Err(AccessTokenError::IssuedInTheFuture);
        }
        let subject = match claims.get("sub") {
            None => None,
            Some(Value::String(sub)) => Some(sub.clone()),
            Some(_) => {
                return Err(AccessTokenError::InvalidClaim {
                    claim: "sub",
                    expected: "a string",
                })
            }
        };
        let details = details::parse(claims.get("authorization_details"))
            .map_err(AccessTokenError::AuthorizationDetails)?;
        Ok(AccessToken {
            issuer: claims
                .get("iss")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            subject,
            expires,
            details,
            claims,
        })
    }
}

/// The header rules of draft-08 §Token Validation and RFC 7515, checked
/// before any key is looked for.
fn check_header(header: &Header, algorithms: &[Algorithm]) -> Result<(), AccessTokenError> {
    if !header.typ.as_deref().is_some_and(is_at_jwt) {
        return Err(AccessTokenError::NotAnAccessToken);
    }
    // RFC 7515 §4.1.11: a recipient that does not understand a critical
    // extension must reject the JWS; this hub understands none.
    if header.crit.is_some() {
        return Err(AccessTokenError::CriticalHeader);
    }
    if header.jwk.is_some() || header.jku.is_some() || header.x5u.is_some() || header.x5c.is_some()
    {
        return Err(AccessTokenError::EmbeddedKey);
    }
    if !algorithms.contains(&header.alg) {
        return Err(AccessTokenError::AlgorithmNotAccepted(header.alg));
    }
    Ok(())
}

/// The issuer's keys that may verify a token with `kid` and `alg`: the
/// suitable keys with that `kid`, or, when none has it, the suitable keys
/// that have no `kid` (a PEM key, a secret); every suitable key when the
/// token names none. The `kid` is a hint among the issuer's trusted keys,
/// never a way to reach another issuer's.
fn candidate_keys(issuer: &IssuerKeys, kid: Option<&str>, alg: Algorithm) -> Vec<keys::Key> {
    let suitable: Vec<keys::Key> = issuer.keys().into_iter().filter(|k| k.suits(alg)).collect();
    let Some(kid) = kid else {
        return suitable;
    };
    if suitable.iter().any(|k| k.kid.as_deref() == Some(kid)) {
        suitable
            .into_iter()
            .filter(|k| k.kid.as_deref() == Some(kid))
            .collect()
    } else {
        suitable.into_iter().filter(|k| k.kid.is_none()).collect()
    }
}

/// A NumericDate claim, rounded up when fractional.
fn numeric(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<u64>, AccessTokenError> {
    let invalid = AccessTokenError::InvalidClaim {
        claim: name,
        expected: "a non-negative number of seconds since the Unix epoch",
    };
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(s), _) => Ok(Some(s)),
            (None, Some(f)) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => {
                Ok(Some(f.ceil() as u64))
            }
            _ => Err(invalid),
        },
        Some(_) => Err(invalid),
    }
}

/// A header or claims set that jsonwebtoken cannot read.
fn malformed(part: &str, e: &jsonwebtoken::errors::Error) -> AccessTokenError {
    AccessTokenError::Malformed(match e.kind() {
        ErrorKind::InvalidToken => "a JWS is three base64url parts separated by dots".into(),
        ErrorKind::Base64(_) => format!("the {part} is not base64url"),
        ErrorKind::Utf8(_) => format!("the {part} is not UTF-8"),
        // An unknown `alg` (`none` among them) fails here too.
        ErrorKind::Json(e) => format!("the {part} is not what a JWS {part} should be ({e})"),
        _ => format!("the {part} cannot be read ({e})"),
    })
}

/// jsonwebtoken's verdict on a token whose header passed [`check_header`]
/// (`claims`: the same token's claims, read before).
fn claims_error(
    e: &jsonwebtoken::errors::Error,
    resource: &str,
    claims: &Map<String, Value>,
) -> AccessTokenError {
    match e.kind() {
        ErrorKind::InvalidAudience => AccessTokenError::WrongAudience {
            resource: resource.to_owned(),
        },
        // jsonwebtoken also calls a claim of the wrong type missing.
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" if claims.contains_key("exp") => AccessTokenError::InvalidClaim {
                claim: "exp",
                expected: "a non-negative number of seconds since the Unix epoch",
            },
            "exp" => AccessTokenError::MissingClaim("exp"),
            "aud" if claims.contains_key("aud") => AccessTokenError::InvalidClaim {
                claim: "aud",
                expected: "a string or an array of strings",
            },
            "aud" => AccessTokenError::MissingClaim("aud"),
            "iss" => AccessTokenError::MissingClaim("iss"),
            _ => AccessTokenError::Malformed(e.to_string()),
        },
        ErrorKind::InvalidIssuer => AccessTokenError::InvalidClaim {
            claim: "iss",
            expected: "the same in every read of the token",
        },
        _ => AccessTokenError::Malformed(e.to_string()),
    }
}

/// Signs an access token: `typ: at+jwt`, `alg` and `kid` in the header,
/// `claims` as given (they should hold what RFC 9068 requires of issuers:
/// `iss`, `exp`, `aud`, `sub`, `client_id`, `iat`, `jti`). `key` is the
/// secret for HS*, a PEM private key otherwise. For `herald token` and
/// tests; a real deployment's issuer is its authorization server.
pub fn mint(
    alg: Algorithm,
    key: &[u8],
    kid: Option<&str>,
    claims: &Map<String, Value>,
) -> Result<String, crate::auth::AuthError> {
    let mut header = jsonwebtoken::Header::new(alg);
    header.typ = Some("at+jwt".into());
    header.kid = kid.map(str::to_owned);
    crate::auth::sign(&header, key, claims)
}

#[cfg(test)]
mod tests;
