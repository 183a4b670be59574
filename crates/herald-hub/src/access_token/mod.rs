//! Draft-08 access tokens: RFC 9068 JWTs (`typ: at+jwt`) from trusted
//! issuers, carrying Mercure authorization details.
//!
//! An operator lists the issuers the hub trusts, each with its keys
//! ([`IssuerConfig`]): PEM public keys, a shared secret, a JWKS file, or the
//! URL of the issuer's JWKS. A token is verified only with the keys of the
//! issuer its `iss` names, never a pool spanning issuers, with an algorithm
//! from an explicit allowlist (EdDSA, ES256 and RS256 by default) that
//! suits the key, and never with key material the token brings itself
//! (`jwk`, `jku`, `x5u`, `x5c` headers are refused). `exp` is required,
//! `nbf` enforced, `aud` must name the hub's resource identifier.
//!
//! Keys from a JWKS URL are fetched at start ([`AccessTokenVerifier::start`]
//! also refreshes them periodically), and again when a token names a `kid`
//! the hub does not know, at most once per
//! [`JwksPolicy::min_refetch`] per issuer: an issuer rotates its keys and
//! the hub follows without a restart, while a flood of tokens with made-up
//! `kid`s cannot make it hammer the issuer.
//!
//! What the token grants is its Mercure authorization details
//! ([`MercureDetail`]); one invalid Mercure entry rejects the token.

mod details;
mod keys;

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

pub use details::{MercureDetail, TopicGrant, MERCURE_DETAIL_TYPE};
use keys::IssuerKeys;

/// How the hub verifies access tokens.
#[derive(Debug, Clone)]
pub struct AccessTokenConfig {
    /// The hub's resource identifier, which `aud` must contain (by
    /// default the hub URL).
    pub resource: String,
    /// The trusted issuers.
    pub issuers: Vec<IssuerConfig>,
    /// Accepted signature algorithms.
    pub algorithms: Vec<Algorithm>,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    pub leeway: u64,
    /// How keys from JWKS URLs are fetched.
    pub jwks: JwksPolicy,
}

/// The algorithms accepted when none are configured (draft-08 §Token
/// Validation: at least these).
pub const DEFAULT_ALGORITHMS: [Algorithm; 3] =
    [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256];

impl AccessTokenConfig {
    /// A configuration for `resource` trusting `issuers`, with the default
    /// algorithms, no leeway and the default JWKS policy.
    pub fn new(resource: impl Into<String>, issuers: Vec<IssuerConfig>) -> AccessTokenConfig {
        AccessTokenConfig {
            resource: resource.into(),
            issuers,
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            leeway: 0,
            jwks: JwksPolicy::default(),
        }
    }
}

/// One trusted issuer and its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerConfig {
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// Where its keys are.
    pub keys: Vec<KeySource>,
}

/// Where an issuer's keys are.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A PEM public key or certificate (Ed25519, EC, RSA).
    Pem(String),
    /// A file holding one.
    PemFile(PathBuf),
    /// A shared secret for HS256/384/512 (only if the allowlist has them).
    Secret(Vec<u8>),
    /// A JWKS document in a file, read at start.
    JwksFile(PathBuf),
    /// The URL of the issuer's JWKS, fetched and refreshed.
    JwksUrl(String),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Pem(_) => f.write_str("Pem(..)"),
            KeySource::PemFile(p) => f.debug_tuple("PemFile").field(p).finish(),
            // Never print a secret.
            KeySource::Secret(_) => f.write_str("Secret(..)"),
            KeySource::JwksFile(p) => f.debug_tuple("JwksFile").field(p).finish(),
            KeySource::JwksUrl(u) => f.debug_tuple("JwksUrl").field(u).finish(),
        }
    }
}

/// How keys are fetched from JWKS URLs.
#[derive(Debug, Clone)]
pub struct JwksPolicy {
    /// Least time between two fetches of one issuer's keys on unknown
    /// `kid`s.
    pub min_refetch: Duration,
    /// How often the keys are fetched again regardless.
    pub refresh: Duration,
    /// Longest a fetch may take.
    pub fetch_timeout: Duration,
    /// Largest JWKS document read.
    pub max_document_bytes: usize,
    /// The accepted algorithms (copied from the configuration), to keep
    /// only keys that can be used.
    pub(crate) algorithms: Vec<Algorithm>,
}

impl Default for JwksPolicy {
    fn default() -> Self {
        JwksPolicy {
            min_refetch: Duration::from_secs(30),
            refresh: Duration::from_secs(300),
            fetch_timeout: Duration::from_secs(5),
            max_document_bytes: 1 << 20,
            algorithms: Vec::new(),
        }
    }
}

/// A configuration that cannot work; says which issuer and source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "access tokens: {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Why a token was refused: every case is `invalid_token` (draft-08
/// §Error Responses); the message is for the developer reading the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenError(String);

impl fmt::Display for AccessTokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AccessTokenError {}

fn refused(why: impl Into<String>) -> AccessTokenError {
    AccessTokenError(why.into())
}

/// A verified access token.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessToken {
    /// `iss`.
    pub issuer: String,
    /// `sub`, when present.
    pub subject: Option<String>,
    /// `exp`, seconds since the Unix epoch.
    pub expires: u64,
    /// The Mercure authorization details, in order.
    pub details: Vec<MercureDetail>,
    /// Every claim, as signed.
    pub claims: Map<String, Value>,
}

/// Verifies access tokens. Cheap to clone.
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
/// `at+jwt`, or `application/at+jwt`, case-insensitively).
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
    /// Loads every fixed key (files are read now); keys at URLs are
    /// fetched by [`AccessTokenVerifier::start`] or
    /// [`AccessTokenVerifier::refresh_keys`].
    pub fn new(config: AccessTokenConfig) -> Result<AccessTokenVerifier, ConfigError> {
        let config_error = |message: String| ConfigError { message };
        if config.issuers.is_empty() {
            return Err(config_error("no trusted issuer".into()));
        }
        if config.algorithms.is_empty() {
            return Err(config_error("no accepted algorithm".into()));
        }
        let mut policy = config.jwks;
        policy.algorithms = config.algorithms.clone();
        let issuers = config
            .issuers
            .iter()
            .map(|i| IssuerKeys::load(&i.issuer, &i.keys, &config.algorithms))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AccessTokenVerifier {
            inner: Arc::new(Inner {
                resource: config.resource,
                algorithms: config.algorithms,
                leeway: config.leeway,
                policy,
                issuers,
            }),
        })
    }

    /// Fetches the keys at URLs now, then again every
    /// [`JwksPolicy::refresh`] for as long as the verifier lives.
    pub async fn start(&self) {
        self.refresh_keys().await;
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let every = self.inner.policy.refresh.max(keys::MIN_REFRESH);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                AccessTokenVerifier { inner }.refresh_keys().await;
            }
        });
    }

    /// Fetches every issuer's keys at URLs now.
    pub async fn refresh_keys(&self) {
        for issuer in &self.inner.issuers {
            issuer.refresh(&self.inner.policy, true).await;
        }
    }

    /// Verifies `token` now.
    pub async fn verify(&self, token: &str) -> Result<AccessToken, AccessTokenError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.verify_at(token, now).await
    }

    /// Verifies `token` as if the time were `now` (seconds since the Unix
    /// epoch).
    pub async fn verify_at(&self, token: &str, now: u64) -> Result<AccessToken, AccessTokenError> {
        let inner = &self.inner;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| refused(format!("malformed access token: {e}")))?;
        if !header.typ.as_deref().is_some_and(is_at_jwt) {
            return Err(refused(
                "not an access token: its \"typ\" must be \"at+jwt\"",
            ));
        }
        if header.jwk.is_some()
            || header.jku.is_some()
            || header.x5u.is_some()
            || header.x5c.is_some()
        {
            return Err(refused(
                "the token brings its own key (jwk, jku, x5u or x5c header): the hub only uses keys it trusts",
            ));
        }
        let alg = header.alg;
        if !inner.algorithms.contains(&alg) {
            return Err(refused(format!(
                "the algorithm {alg:?} is not accepted by this hub"
            )));
        }
        let unverified: Map<String, Value> = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|e| refused(format!("malformed access token claims: {e}")))?;
        let Some(Value::String(iss)) = unverified.get("iss") else {
            return Err(refused("the token has no \"iss\" string"));
        };
        let issuer = inner
            .issuers
            .iter()
            .find(|i| i.issuer == *iss)
            .ok_or_else(|| refused(format!("the issuer {iss:?} is not trusted by this hub")))?;

        let kid = header.kid.as_deref();
        if kid.is_some_and(|kid| !issuer.knows(kid)) && issuer.has_urls() {
            // A key the hub does not know yet: the issuer may have rotated.
            issuer.refresh(&inner.policy, false).await;
        }
        let candidates = candidates(issuer, kid, alg);
        if candidates.is_empty() {
            return Err(refused(match header.kid {
                Some(kid) => format!("the issuer {iss:?} has no {alg:?} key with kid {kid:?}"),
                None => format!("the issuer {iss:?} has no {alg:?} key"),
            }));
        }
        let mut validation = Validation::new(alg);
        validation.set_audience(&[&inner.resource]);
        validation.set_issuer(&[iss]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let mut last = refused("the signature does not verify with the issuer's keys");
        for key in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation) {
                Ok(data) => return self.accept(data.claims, now),
                Err(e) => {
                    if !matches!(e.kind(), jsonwebtoken::errors::ErrorKind::InvalidSignature) {
                        last = refused(claims_error(&e, &inner.resource));
                    }
                }
            }
        }
        Err(last)
    }

    /// Checks the times and reads the details of verified claims.
    fn accept(
        &self,
        claims: Map<String, Value>,
        now: u64,
    ) -> Result<AccessToken, AccessTokenError> {
        let leeway = self.inner.leeway;
        let expires =
            numeric(&claims, "exp")?.ok_or_else(|| refused("the token has no \"exp\""))?;
        if now >= expires.saturating_add(leeway) {
            return Err(refused("the token has expired"));
        }
        if numeric(&claims, "nbf")?.is_some_and(|nbf| now.saturating_add(leeway) < nbf) {
            return Err(refused(
                "the token is not valid yet (its \"nbf\" is in the future)",
            ));
        }
        let details = details::parse(claims.get("authorization_details"))
            .map_err(|why| refused(format!("invalid authorization_details: {why}")))?;
        Ok(AccessToken {
            issuer: claims
                .get("iss")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            subject: claims.get("sub").and_then(Value::as_str).map(str::to_owned),
            expires,
            details,
            claims,
        })
    }
}

/// The issuer's keys that may verify a token with `kid` and `alg`: the
/// suitable keys with that `kid`, or, when none has it, the suitable keys
/// that have no `kid` (a PEM key, a secret); every suitable key when the
/// token names none.
fn candidates(issuer: &IssuerKeys, kid: Option<&str>, alg: Algorithm) -> Vec<keys::Key> {
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
fn numeric(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, AccessTokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(s), _) => Ok(Some(s)),
            (None, Some(f)) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => {
                Ok(Some(f.ceil() as u64))
            }
            _ => Err(refused(format!("\"{name}\" is not a valid time"))),
        },
        Some(_) => Err(refused(format!("\"{name}\" is not a number"))),
    }
}

fn claims_error(e: &jsonwebtoken::errors::Error, resource: &str) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::InvalidAudience => {
            format!("the token's \"aud\" does not name this hub ({resource:?})")
        }
        ErrorKind::InvalidIssuer => "the token's \"iss\" changed between reads".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no \"{claim}\""),
        _ => format!("invalid access token: {e}"),
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
