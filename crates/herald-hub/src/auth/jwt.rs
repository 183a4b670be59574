//! Draft-07 tokens: verification with one configured key and algorithm,
//! and minting with the same code (for `herald token` and tests).
//!
//! Tokens are JWS in compact form, signed with the one algorithm the
//! verifier is configured for: HS256/384/512 with a shared secret,
//! RS256/384/512 and PS256/384/512 with an RSA key, ES256/ES384 with a
//! P-256/P-384 key, EdDSA with an Ed25519 key. A token signed with any
//! other algorithm, `none` included, is refused. `exp` and `nbf` are
//! optional (many Mercure tokens have neither) but enforced with zero
//! leeway when present.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::{Error as JwtError, ErrorKind};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};

/// The Mercure claims a verified token carries.
///
/// In the token they are `{"mercure": {"publish": […], "subscribe": […],
/// "payload": …}, "exp": …, "sub": …}`; every one is optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claims {
    /// `mercure.publish`: selectors the holder may publish to (`None` when absent).
    pub publish: Option<Vec<String>>,
    /// `mercure.subscribe`: selectors unlocking private updates (`None` when absent).
    pub subscribe: Option<Vec<String>>,
    /// `mercure.payload`, attached to the subscription as is (`None` when
    /// absent or `null`).
    pub payload: Option<serde_json::Value>,
    /// `exp`, seconds since the Unix epoch (a fractional `exp` is rounded
    /// up, which keeps "valid while now < exp" exact).
    pub exp: Option<u64>,
    /// `sub`: whom the token was issued to (`None` when absent). The hub
    /// counts a subscriber's streams by it (`HubConfig::max_streams_per_client`).
    /// A numeric `sub`, which some applications send, is read as its text.
    pub sub: Option<String>,
}

/// Why a token (or a key) was refused. Each variant displays as one
/// sentence a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// The token is not a well-formed JWS, or a claim has the wrong JSON
    /// type; the string says which part.
    Malformed(String),
    /// The signature does not verify with the configured key.
    BadSignature,
    /// The token's `exp` is not in the future.
    Expired,
    /// The token's `nbf` is in the future.
    NotYetValid,
    /// The token is signed with another algorithm than the one configured
    /// (an unsigned `alg: none` token included).
    WrongAlgorithm {
        /// The algorithm the verifier accepts.
        expected: Algorithm,
        /// The `alg` of the token's header (at most 32 characters of it).
        found: String,
    },
    /// The configured key cannot be used with the algorithm; says why.
    InvalidKey(String),
    /// Signing a token failed for another reason than the key.
    Signing(String),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Malformed(what) => write!(f, "malformed JWT: {what}"),
            AuthError::BadSignature => {
                f.write_str("the JWT's signature does not verify with the hub's key")
            }
            AuthError::Expired => f.write_str("the JWT has expired (its \"exp\" is past)"),
            AuthError::NotYetValid => {
                f.write_str("the JWT is not valid yet (its \"nbf\" is in the future)")
            }
            AuthError::WrongAlgorithm { expected, found } => write!(
                f,
                "the JWT is signed with algorithm \"{found}\", but only {expected:?} is accepted"
            ),
            AuthError::InvalidKey(why) => write!(f, "invalid JWT key: {why}"),
            AuthError::Signing(why) => write!(f, "could not sign the JWT: {why}"),
        }
    }
}

impl std::error::Error for AuthError {}

/// Verifies tokens for one role (publisher or subscriber) with one key and
/// one algorithm.
#[derive(Clone)]
pub struct JwtVerifier {
    algorithm: Algorithm,
    key: DecodingKey,
    /// jsonwebtoken's checks reduced to the algorithm: the time claims are
    /// checked here, with zero leeway, and only when present.
    validation: Validation,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("JwtVerifier")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// A verifier for `alg` with `key`: the raw secret for HS256/384/512; a
    /// PEM public key (`PUBLIC KEY`, or `RSA PUBLIC KEY`) or a PEM X.509
    /// certificate for RS*/PS*, ES256/ES384 and EdDSA.
    ///
    /// Fails with [`AuthError::InvalidKey`] when the key does not suit the
    /// algorithm: an empty secret, a private key, a key of another type or
    /// curve, or unparsable PEM.
    pub fn new(alg: Algorithm, key: &[u8]) -> Result<JwtVerifier, AuthError> {
        let key = match alg.family() {
            AlgorithmFamily::Hmac => {
                if key.is_empty() {
                    return Err(AuthError::InvalidKey("the HMAC secret is empty".into()));
                }
                Ok(DecodingKey::from_secret(key))
            }
            AlgorithmFamily::Rsa => DecodingKey::from_rsa_pem(key),
            AlgorithmFamily::Ec => DecodingKey::from_ec_pem(key),
            AlgorithmFamily::Ed => DecodingKey::from_ed_pem(key),
        }
        .map_err(|e| public_key_error(alg, &e))?;
        // Parse the key now rather than on the first token: this checks an
        // RSA key's DER and the length of an EC or Ed25519 point …
        Jwk::from_decoding_key(&key, Some(alg)).map_err(|e| public_key_error(alg, &e))?;
        // … and building a verifier checks the EC point is on the curve.
        jsonwebtoken::crypto::verify("", b"", &key, alg).map_err(|e| public_key_error(alg, &e))?;

        let mut validation = Validation::new(alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        Ok(JwtVerifier {
            algorithm: alg,
            key,
            validation,
        })
    }

    /// The one algorithm this verifier accepts.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Checks the token's algorithm, signature, `exp` and `nbf` (when
    /// present) against the current time, and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.verify_at(token, now)
    }

    /// [`JwtVerifier::verify`] as if the time were `now` (seconds since the
    /// Unix epoch): valid when `now < exp` and `nbf <= now`.
    pub fn verify_at(&self, token: &str, now: u64) -> Result<Claims, AuthError> {
        self.verify_with_nbf(token, now).map(|(claims, _)| claims)
    }

    /// [`JwtVerifier::verify_at`], also returning the token's `nbf`: the
    /// cache of verified tokens checks it again at each use.
    pub(crate) fn verify_with_nbf(
        &self,
        token: &str,
        now: u64,
    ) -> Result<(Claims, Option<u64>), AuthError> {
        self.check_header(token)?;
        let payload = jsonwebtoken::decode::<Value>(token, &self.key, &self.validation)
            .map_err(|e| token_error(&e))?
            .claims;
        let (claims, not_before) = parse_claims(payload)?;
        if claims.exp.is_some_and(|exp| now >= exp) {
            return Err(AuthError::Expired);
        }
        if not_before.is_some_and(|nbf| now < nbf) {
            return Err(AuthError::NotYetValid);
        }
        Ok((claims, not_before))
    }

    /// Reads the header before anything else, so that a token with another
    /// `alg` (or `none`, which jsonwebtoken cannot even parse) gets
    /// [`AuthError::WrongAlgorithm`], and critical extensions are refused.
    fn check_header(&self, token: &str) -> Result<(), AuthError> {
        let mut parts = token.split('.');
        let (Some(header), Some(_), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed(
                "a JWT is three base64url parts separated by dots".into(),
            ));
        };
        let header = base64url_decode(header)
            .ok_or_else(|| AuthError::Malformed("the header is not base64url".into()))?;
        let header: Map<String, Value> = serde_json::from_slice(&header)
            .map_err(|_| AuthError::Malformed("the header is not a JSON object".into()))?;
        let Some(Value::String(alg)) = header.get("alg") else {
            return Err(AuthError::Malformed(
                "the header has no \"alg\" string".into(),
            ));
        };
        if alg.parse::<Algorithm>().ok() != Some(self.algorithm) {
            return Err(AuthError::WrongAlgorithm {
                expected: self.algorithm,
                found: alg.chars().take(32).collect(),
            });
        }
        if header.contains_key("crit") {
            return Err(AuthError::Malformed(
                "the header lists critical extensions (\"crit\"), which are not supported".into(),
            ));
        }
        Ok(())
    }
}

/// Signs a token carrying `claims` with `alg` and `key`: the secret for
/// HS*, a PEM private key otherwise (PKCS#8 `PRIVATE KEY`; PKCS#1
/// `RSA PRIVATE KEY` also works for RSA).
///
/// The token holds `mercure` only when one of its claims is set, and `exp`
/// and `sub` when set. A `Some(Value::Null)` payload reads back as `None`.
pub fn mint(alg: Algorithm, key: &[u8], claims: &Claims) -> Result<String, AuthError> {
    let mut mercure = Map::new();
    if let Some(publish) = &claims.publish {
        mercure.insert("publish".into(), Value::from(publish.clone()));
    }
    if let Some(subscribe) = &claims.subscribe {
        mercure.insert("subscribe".into(), Value::from(subscribe.clone()));
    }
    if let Some(payload) = &claims.payload {
        mercure.insert("payload".into(), payload.clone());
    }
    let mut root = Map::new();
    if !mercure.is_empty() {
        root.insert("mercure".into(), Value::Object(mercure));
    }
    if let Some(exp) = claims.exp {
        root.insert("exp".into(), Value::from(exp));
    }
    if let Some(sub) = &claims.sub {
        root.insert("sub".into(), Value::from(sub.clone()));
    }
    sign(&Header::new(alg), key, &root)
}

/// Signs `claims` under `header` (whose `alg` it uses) with `key`: the
/// secret for HS*, a PEM private key otherwise (PKCS#8 `PRIVATE KEY`;
/// PKCS#1 `RSA PRIVATE KEY` also works for RSA). Shared by both
/// revisions' minting.
pub(crate) fn sign(
    header: &Header,
    key: &[u8],
    claims: &Map<String, Value>,
) -> Result<String, AuthError> {
    let alg = header.alg;
    let key = match alg.family() {
        AlgorithmFamily::Hmac => {
            if key.is_empty() {
                return Err(AuthError::InvalidKey("the HMAC secret is empty".into()));
            }
            Ok(EncodingKey::from_secret(key))
        }
        AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(key),
        AlgorithmFamily::Ec => EncodingKey::from_ec_pem(key),
        AlgorithmFamily::Ed => EncodingKey::from_ed_pem(key),
    }
    .map_err(|e| private_key_error(alg, &e))?;
    // Parses the private key (and checks an EC key's curve) up front, so
    // that a bad key is reported as such rather than as a signing failure.
    Jwk::from_encoding_key(&key, alg).map_err(|e| private_key_error(alg, &e))?;
    jsonwebtoken::encode(header, claims, &key).map_err(|e| match e.kind() {
        ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::RsaFailedSigning => private_key_error(alg, &e),
        _ => AuthError::Signing(e.to_string()),
    })
}

/// Splits a verified payload into [`Claims`] and `nbf`, checking types.
fn parse_claims(payload: Value) -> Result<(Claims, Option<u64>), AuthError> {
    let Value::Object(mut root) = payload else {
        return Err(AuthError::Malformed(
            "the claims are not a JSON object".into(),
        ));
    };
    let exp = numeric_date(&root, "exp")?;
    let not_before = numeric_date(&root, "nbf")?;
    let (publish, subscribe, payload) = match root.remove("mercure") {
        None | Some(Value::Null) => (None, None, None),
        Some(Value::Object(mut mercure)) => (
            string_list(&mercure, "publish")?,
            string_list(&mercure, "subscribe")?,
            mercure.remove("payload").filter(|p| !p.is_null()),
        ),
        Some(_) => {
            return Err(AuthError::Malformed(
                "the claim \"mercure\" must be an object".into(),
            ))
        }
    };
    // Draft-07 says nothing of `sub`, and jsonwebtoken has already refused
    // an array or an object there: a number is taken as its text.
    let sub = match root.get("sub") {
        Some(Value::String(sub)) => Some(sub.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let claims = Claims {
        publish,
        subscribe,
        payload,
        exp,
        sub,
    };
    Ok((claims, not_before))
}

/// `mercure.<name>`: absent or `null` is `None`, else an array of strings.
fn string_list(mercure: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, AuthError> {
    let wrong = || {
        AuthError::Malformed(format!(
            "the claim \"mercure.{name}\" must be an array of strings"
        ))
    };
    match mercure.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or_else(wrong))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(wrong()),
    }
}

/// A NumericDate claim (RFC 7519): a non-negative number of seconds,
/// rounded up when fractional.
fn numeric_date(root: &Map<String, Value>, name: &str) -> Result<Option<u64>, AuthError> {
    let wrong = || {
        AuthError::Malformed(format!(
            "the claim \"{name}\" must be a non-negative number of seconds since the Unix epoch"
        ))
    };
    match root.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(seconds), _) => Ok(Some(seconds)),
            (None, Some(f)) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => {
                Ok(Some(f.ceil() as u64))
            }
            _ => Err(wrong()),
        },
        Some(_) => Err(wrong()),
    }
}

/// Decodes unpadded base64url (RFC 4648 section 5), as JWS uses.
fn base64url_decode(input: &str) -> Option<Vec<u8>> {
    if input.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 2);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &c in input.as_bytes() {
        let sextet = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(sextet);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn public_key_error(alg: Algorithm, e: &JwtError) -> AuthError {
    AuthError::InvalidKey(format!("{}{}", expected_key(alg, false), key_detail(e)))
}

fn private_key_error(alg: Algorithm, e: &JwtError) -> AuthError {
    AuthError::InvalidKey(format!("{}{}", expected_key(alg, true), key_detail(e)))
}

/// What key an algorithm needs, in words.
fn expected_key(alg: Algorithm, private: bool) -> String {
    let kind = match alg.family() {
        AlgorithmFamily::Hmac => return format!("{alg:?} needs a non-empty secret"),
        AlgorithmFamily::Rsa => "an RSA",
        AlgorithmFamily::Ec if alg == Algorithm::ES384 => "a P-384 EC",
        AlgorithmFamily::Ec => "a P-256 EC",
        AlgorithmFamily::Ed => "an Ed25519",
    };
    if private {
        format!("{alg:?} needs {kind} private key in PEM (PKCS#8)")
    } else {
        format!("{alg:?} needs {kind} public key or certificate in PEM")
    }
}

fn key_detail(e: &JwtError) -> String {
    match e.kind() {
        ErrorKind::InvalidRsaKey(detail) | ErrorKind::Signing(detail) => format!(" ({detail})"),
        _ => String::new(),
    }
}

/// Maps jsonwebtoken's verdict on a token whose header already passed
/// [`JwtVerifier::check_header`].
fn token_error(e: &JwtError) -> AuthError {
    match e.kind() {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidToken => {
            AuthError::Malformed("a JWT is three base64url parts separated by dots".into())
        }
        ErrorKind::Base64(_) => {
            AuthError::Malformed("the claims or the signature are not base64url".into())
        }
        ErrorKind::Utf8(_) => AuthError::Malformed("the claims are not UTF-8".into()),
        ErrorKind::Json(e) => AuthError::Malformed(format!("the claims are not valid JSON ({e})")),
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        _ => AuthError::Malformed(e.to_string()),
    }
}

#[cfg(test)]
mod tests;
