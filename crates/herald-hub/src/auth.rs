//! STUB (to be replaced by the real module): JWT verification and minting.

use http::HeaderMap;

/// The Mercure claims a verified token carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claims {
    /// `mercure.publish`: selectors the holder may publish to (`None` when absent).
    pub publish: Option<Vec<String>>,
    /// `mercure.subscribe`: selectors unlocking private updates (`None` when absent).
    pub subscribe: Option<Vec<String>>,
    /// `mercure.payload`, attached to the subscription as is.
    pub payload: Option<serde_json::Value>,
    /// `exp`, seconds since the Unix epoch.
    pub exp: Option<u64>,
}

/// Where a request's token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// `Authorization: Bearer` header.
    Header,
    /// `authorization` query parameter.
    Query,
    /// `mercureAuthorization` cookie.
    Cookie,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Anything wrong with the token.
    Invalid(String),
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for AuthError {}

/// Verifies tokens for one role with one key.
#[derive(Clone)]
pub struct JwtVerifier {}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtVerifier")
    }
}

impl JwtVerifier {
    /// A verifier for `alg` with `key`: the secret for HS*, a PEM public key otherwise.
    pub fn new(_alg: jsonwebtoken::Algorithm, _key: &[u8]) -> Result<JwtVerifier, AuthError> {
        Ok(JwtVerifier {})
    }

    /// Checks signature, algorithm and `exp`, and returns the claims.
    pub fn verify(&self, _token: &str) -> Result<Claims, AuthError> {
        Err(AuthError::Invalid("stub".into()))
    }
}

/// Finds the request's token: header, then query, then cookie.
pub fn extract_token(
    _headers: &HeaderMap,
    _query: Option<&str>,
) -> Result<Option<(String, TokenSource)>, AuthError> {
    Ok(None)
}

/// Signs a token carrying `claims` with `alg` and `key` (secret for HS*,
/// PEM private key otherwise).
pub fn mint(_alg: jsonwebtoken::Algorithm, _key: &[u8], _claims: &Claims) -> Result<String, AuthError> {
    Ok(String::new())
}
