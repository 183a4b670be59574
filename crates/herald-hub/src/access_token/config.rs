//! What the operator configures: the hub's resource identifier, the
//! trusted issuers and their keys, the algorithm allowlist and how keys
//! at JWKS URLs are fetched.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::Algorithm;

/// How the hub verifies access tokens.
#[derive(Debug, Clone)]
pub struct AccessTokenConfig {
    /// The hub's resource identifier, which `aud` must contain (by
    /// default the hub URL, e.g. `https://hub.example.com/.well-known/mercure`).
    pub resource: String,
    /// The trusted issuers; a token is verified only with the keys of the
    /// one its `iss` names.
    pub issuers: Vec<IssuerConfig>,
    /// Accepted signature algorithms: the explicit allowlist draft-08
    /// requires. `none` cannot be expressed; HS* only make sense with a
    /// [`KeySource::Secret`].
    pub algorithms: Vec<Algorithm>,
    /// Seconds of clock skew allowed on `exp`, `nbf` and `iat`.
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
    /// The exact `iss` of its tokens (an authorization server's issuer
    /// identifier, or the stable identifier of a self-issuing publisher).
    pub issuer: String,
    /// Where its keys are; at least one source.
    pub keys: Vec<KeySource>,
}

/// Where an issuer's keys are.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A PEM public key or certificate (Ed25519, EC P-256/P-384, RSA).
    Pem(String),
    /// A file holding one, read by [`AccessTokenVerifier::new`](super::AccessTokenVerifier::new).
    PemFile(PathBuf),
    /// A shared secret for HS256/384/512 (usable only if the allowlist
    /// has them).
    Secret(Vec<u8>),
    /// A JWKS document in a file, read by
    /// [`AccessTokenVerifier::new`](super::AccessTokenVerifier::new).
    JwksFile(PathBuf),
    /// The `http` or `https` URL of the issuer's JWKS, fetched by
    /// [`AccessTokenVerifier::start`](super::AccessTokenVerifier::start)
    /// and again as [`JwksPolicy`] says.
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksPolicy {
    /// Least time between two fetches of one issuer's keys caused by
    /// tokens naming a `kid` the hub does not know: an issuer's rotation is
    /// picked up, a flood of made-up `kid`s does not hammer the issuer.
    pub min_refetch: Duration,
    /// How often [`AccessTokenVerifier::start`](super::AccessTokenVerifier::start)
    /// fetches the keys again regardless (at least once a second).
    pub refresh: Duration,
    /// Longest a fetch may take, connection included.
    pub fetch_timeout: Duration,
    /// Largest JWKS document read, in bytes.
    pub max_document_bytes: usize,
}

impl Default for JwksPolicy {
    fn default() -> Self {
        JwksPolicy {
            min_refetch: Duration::from_secs(30),
            refresh: Duration::from_secs(300),
            fetch_timeout: Duration::from_secs(5),
            max_document_bytes: 1 << 20,
        }
    }
}

/// A configuration that cannot work; says which issuer and source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub(super) message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "access tokens: {}", self.message)
    }
}

impl std::error::Error for ConfigError {}
