//! JWT verification and minting: who may publish and who may see what.
//!
//! This module sits at the authorization step of both paths. On publish,
//! the hub finds the publisher's token ([`extract_token`]), verifies it
//! with the publisher key ([`JwtVerifier::verify`]) and checks that the
//! `mercure.publish` selectors of its [`Claims`] match every topic of the
//! update ([`selectors_match`]). On subscribe, the same steps with the
//! subscriber key yield the `mercure.subscribe` selectors that unlock
//! private updates in fan-out, the `mercure.payload` attached to the
//! subscription, and the `exp` at which the stream ends. [`mint`] signs
//! tokens with the same code, for `herald token` and tests.
//!
//! Tokens are JWS in compact form, signed with the one algorithm the
//! verifier is configured for: HS256/384/512 with a shared secret,
//! RS256/384/512 and PS256/384/512 with an RSA key, ES256/ES384 with a
//! P-256/P-384 key, EdDSA with an Ed25519 key. A token signed with any
//! other algorithm, `none` included, is refused. `exp` and `nbf` are
//! optional (many Mercure tokens have neither) but enforced with zero
//! leeway when present.

use std::borrow::Cow;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderValue};
use jsonwebtoken::errors::{Error as JwtError, ErrorKind};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey, Header, Validation};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use crate::topic::TopicMatcher;

/// Name of the cookie a browser may carry its token in.
pub const COOKIE_NAME: &str = "mercureAuthorization";

/// Name of the query parameter a client may pass its token in.
pub const QUERY_PARAMETER: &str = "authorization";

/// The Mercure claims a verified token carries.
///
/// In the token they are `{"mercure": {"publish": […], "subscribe": […],
/// "payload": …}, "exp": …}`; every one is optional.
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
    /// The `Authorization` header is present but is not one
    /// `Bearer <token>`.
    NotBearer,
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
            AuthError::NotBearer => {
                f.write_str("the Authorization header must be a single \"Bearer <token>\"")
            }
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
        Ok(claims)
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
/// when set. A `Some(Value::Null)` payload reads back as `None`.
pub fn mint(alg: Algorithm, key: &[u8], claims: &Claims) -> Result<String, AuthError> {
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
    jsonwebtoken::encode(&Header::new(alg), &Value::Object(root), &key).map_err(|e| {
        match e.kind() {
            ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidKeyFormat
            | ErrorKind::RsaFailedSigning => private_key_error(alg, &e),
            _ => AuthError::Signing(e.to_string()),
        }
    })
}

/// Finds the request's token: the `Authorization: Bearer` header, then the
/// `authorization` query parameter (`query` is the raw query string,
/// without `?`; the value is percent-decoded), then the
/// `mercureAuthorization` cookie (from any `Cookie` header). Returns
/// `Ok(None)` when none is present (an empty parameter or cookie counts as
/// absent).
///
/// An `Authorization` header that is not one `Bearer <token>` is an error
/// ([`AuthError::NotBearer`]) rather than a reason to look further.
pub fn extract_token(
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<(String, TokenSource)>, AuthError> {
    let mut authorization = headers.get_all(AUTHORIZATION).iter();
    if let Some(value) = authorization.next() {
        if authorization.next().is_some() {
            return Err(AuthError::NotBearer);
        }
        return bearer_token(value).map(|token| Some((token, TokenSource::Header)));
    }
    if let Some(token) = query.map(query_token).transpose()?.flatten() {
        return Ok(Some((token, TokenSource::Query)));
    }
    Ok(cookie_token(headers)?.map(|token| (token, TokenSource::Cookie)))
}

/// Whether any of `selectors` matches `topic`: the publish check (for each
/// topic of an update) and the private-update check share it.
pub fn selectors_match(matcher: &TopicMatcher, selectors: &[String], topic: &str) -> bool {
    selectors
        .iter()
        .any(|selector| matcher.matches(selector, topic))
}

/// `Bearer <token>`: the scheme is case-insensitive, the token one word.
fn bearer_token(value: &HeaderValue) -> Result<String, AuthError> {
    let value = value.to_str().map_err(|_| AuthError::NotBearer)?.trim();
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::NotBearer)?;
    let token = token.trim_start_matches(' ');
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains([' ', '\t']) {
        return Err(AuthError::NotBearer);
    }
    Ok(token.to_owned())
}

/// The first `authorization` parameter of a raw query string, decoded as
/// `application/x-www-form-urlencoded` (`+` is a space).
fn query_token(query: &str) -> Result<Option<String>, AuthError> {
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if form_decode(name).ok().as_deref() != Some(QUERY_PARAMETER) {
            continue;
        }
        let value = form_decode(value).map_err(|_| {
            AuthError::Malformed(
                "the authorization query parameter is not UTF-8 once percent-decoded".into(),
            )
        })?;
        return Ok((!value.is_empty()).then(|| value.into_owned()));
    }
    Ok(None)
}

fn form_decode(s: &str) -> Result<Cow<'_, str>, std::str::Utf8Error> {
    if s.contains('+') {
        let spaced = s.replace('+', " ");
        let decoded = percent_decode_str(&spaced).decode_utf8()?.into_owned();
        Ok(Cow::Owned(decoded))
    } else {
        percent_decode_str(s).decode_utf8()
    }
}

/// The first non-empty `mercureAuthorization` cookie of all `Cookie`
/// headers (`name=value` pairs separated by `;`, RFC 6265 section 4.2; a
/// value may be wrapped in double quotes).
fn cookie_token(headers: &HeaderMap) -> Result<Option<String>, AuthError> {
    for header in headers.get_all(COOKIE) {
        for pair in header.as_bytes().split(|&b| b == b';') {
            let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                continue;
            };
            let (name, value) = (pair[..eq].trim_ascii(), pair[eq + 1..].trim_ascii());
            if name != COOKIE_NAME.as_bytes() {
                continue;
            }
            let value = match value {
                [b'"', inner @ .., b'"'] => inner,
                _ => value,
            };
            if value.is_empty() {
                continue;
            }
            let token = std::str::from_utf8(value).map_err(|_| {
                AuthError::Malformed("the mercureAuthorization cookie is not UTF-8".into())
            })?;
            return Ok(Some(token.to_owned()));
        }
    }
    Ok(None)
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
    let claims = Claims {
        publish,
        subscribe,
        payload,
        exp,
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
mod tests {
    use super::*;
    use http::header::HeaderName;
    use serde_json::json;

    const SECRET: &[u8] = b"!ChangeThisMercureHubJWTSecretKey!";
    const RSA_PRIVATE: &[u8] = include_bytes!("../tests/fixtures/rsa_private.pem");
    const RSA_PUBLIC: &[u8] = include_bytes!("../tests/fixtures/rsa_public.pem");
    const RSA_CERT: &[u8] = include_bytes!("../tests/fixtures/rsa_cert.pem");
    const RSA_OTHER_PUBLIC: &[u8] = include_bytes!("../tests/fixtures/rsa_other_public.pem");
    const EC256_PRIVATE: &[u8] = include_bytes!("../tests/fixtures/ec256_private.pem");
    const EC256_PUBLIC: &[u8] = include_bytes!("../tests/fixtures/ec256_public.pem");
    const EC256_CERT: &[u8] = include_bytes!("../tests/fixtures/ec256_cert.pem");
    const EC384_PRIVATE: &[u8] = include_bytes!("../tests/fixtures/ec384_private.pem");
    const EC384_PUBLIC: &[u8] = include_bytes!("../tests/fixtures/ec384_public.pem");
    const ED_PRIVATE: &[u8] = include_bytes!("../tests/fixtures/ed25519_private.pem");
    const ED_PUBLIC: &[u8] = include_bytes!("../tests/fixtures/ed25519_public.pem");

    fn full_claims() -> Claims {
        Claims {
            publish: Some(vec!["https://example.com/books/{id}".into()]),
            subscribe: Some(vec!["*".into(), "https://example.com/users/42".into()]),
            payload: Some(json!({"user": "https://example.com/users/42", "n": [1, 2]})),
            exp: Some(4_102_444_800), // 2100-01-01
        }
    }

    /// Encodes `bytes` as the unpadded base64url JWS uses.
    fn b64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
                << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            }
        }
        out
    }

    /// `message` with a valid HS256 signature appended.
    fn hs256_signed(message: &str) -> String {
        let signature = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &EncodingKey::from_secret(SECRET),
            Algorithm::HS256,
        )
        .unwrap();
        format!("{message}.{signature}")
    }

    /// An HS256 token with any header and payload bytes.
    fn hs256_raw(header: &Value, payload: &[u8]) -> String {
        hs256_signed(&format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(payload)
        ))
    }

    fn hs256_with(payload: &Value) -> String {
        hs256_raw(
            &json!({"alg": "HS256", "typ": "JWT"}),
            payload.to_string().as_bytes(),
        )
    }

    fn hs256() -> JwtVerifier {
        JwtVerifier::new(Algorithm::HS256, SECRET).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn base64url_helpers_agree() {
        for input in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"fooba",
            b"foobar",
            &[0xff, 0xfe, 0x00],
        ] {
            assert_eq!(base64url_decode(&b64(input)).as_deref(), Some(input));
        }
        assert_eq!(base64url_decode("Zm9v"), Some(b"foo".to_vec()));
        assert_eq!(
            base64url_decode("Zm9v="),
            None,
            "padding is not base64url in JWS"
        );
        assert_eq!(
            base64url_decode("Zm+v"),
            None,
            "`+` is not in the URL alphabet"
        );
        assert_eq!(base64url_decode("Z"), None);
    }

    #[test]
    fn hs256_mint_round_trips_through_verify() {
        let claims = full_claims();
        let token = mint(Algorithm::HS256, SECRET, &claims).unwrap();
        assert_eq!(hs256().verify(&token), Ok(claims));
    }

    #[test]
    fn hs384_and_hs512_round_trip() {
        for alg in [Algorithm::HS384, Algorithm::HS512] {
            let token = mint(alg, SECRET, &full_claims()).unwrap();
            let verifier = JwtVerifier::new(alg, SECRET).unwrap();
            assert_eq!(verifier.verify(&token), Ok(full_claims()), "{alg:?}");
            assert_eq!(verifier.algorithm(), alg);
        }
    }

    #[test]
    fn token_without_exp_or_mercure_claims_is_valid_with_nothing_granted() {
        let token = hs256_with(&json!({"sub": "someone"}));
        assert_eq!(hs256().verify(&token), Ok(Claims::default()));
        let token = mint(Algorithm::HS256, SECRET, &Claims::default()).unwrap();
        assert_eq!(hs256().verify(&token), Ok(Claims::default()));
        let token = hs256_with(&json!({"mercure": {}}));
        assert_eq!(hs256().verify(&token), Ok(Claims::default()));
        let token =
            hs256_with(&json!({"mercure": {"publish": null, "payload": null}, "exp": null}));
        assert_eq!(hs256().verify(&token), Ok(Claims::default()));
    }

    #[test]
    fn empty_selector_lists_are_kept_as_empty() {
        let token = hs256_with(&json!({"mercure": {"publish": [], "subscribe": []}}));
        let claims = hs256().verify(&token).unwrap();
        assert_eq!(claims.publish, Some(vec![]));
        assert_eq!(claims.subscribe, Some(vec![]));
    }

    #[test]
    fn tokens_minted_for_the_reference_hub_verify() {
        // `{"alg":"HS256"}.{"mercure":{"publish":["*"]}}`, as found in the
        // reference hub's tests and docs, signed with their demo secrets.
        let cases = [
            (
                &b"!ChangeMe!"[..],
                "eyJhbGciOiJIUzI1NiJ9.eyJtZXJjdXJlIjp7InB1Ymxpc2giOlsiKiJdfX0.vhMwOaN5K68BTIhWokMLOeOJO4EPfT64brd8euJOA4M",
            ),
            (
                SECRET,
                "eyJhbGciOiJIUzI1NiJ9.eyJtZXJjdXJlIjp7InB1Ymxpc2giOlsiKiJdfX0.PXwpfIGng6KObfZlcOXvcnWCJOWTFLtswGI5DZuWSK4",
            ),
        ];
        for (secret, token) in cases {
            let claims = JwtVerifier::new(Algorithm::HS256, secret)
                .unwrap()
                .verify(token)
                .unwrap();
            assert_eq!(claims.publish, Some(vec!["*".to_owned()]));
            assert_eq!(claims.exp, None);
        }
        assert_eq!(hs256().verify(cases[0].1), Err(AuthError::BadSignature));
    }

    #[test]
    fn rs256_verifies_with_public_key_and_certificate() {
        let token = mint(Algorithm::RS256, RSA_PRIVATE, &full_claims()).unwrap();
        let with_key = JwtVerifier::new(Algorithm::RS256, RSA_PUBLIC).unwrap();
        assert_eq!(with_key.verify(&token), Ok(full_claims()));
        let with_cert = JwtVerifier::new(Algorithm::RS256, RSA_CERT).unwrap();
        assert_eq!(with_cert.verify(&token), Ok(full_claims()));
        let other = JwtVerifier::new(Algorithm::RS256, RSA_OTHER_PUBLIC).unwrap();
        assert_eq!(other.verify(&token), Err(AuthError::BadSignature));
        // Same key, other RSA algorithm: refused on the header.
        let ps256 = JwtVerifier::new(Algorithm::PS256, RSA_PUBLIC).unwrap();
        assert!(matches!(
            ps256.verify(&token),
            Err(AuthError::WrongAlgorithm { .. })
        ));
    }

    #[test]
    fn ps256_round_trips() {
        let token = mint(Algorithm::PS256, RSA_PRIVATE, &full_claims()).unwrap();
        let verifier = JwtVerifier::new(Algorithm::PS256, RSA_PUBLIC).unwrap();
        assert_eq!(verifier.verify(&token), Ok(full_claims()));
    }

    #[test]
    fn es256_verifies_with_public_key_and_certificate() {
        let token = mint(Algorithm::ES256, EC256_PRIVATE, &full_claims()).unwrap();
        let with_key = JwtVerifier::new(Algorithm::ES256, EC256_PUBLIC).unwrap();
        assert_eq!(with_key.verify(&token), Ok(full_claims()));
        let with_cert = JwtVerifier::new(Algorithm::ES256, EC256_CERT).unwrap();
        assert_eq!(with_cert.verify(&token), Ok(full_claims()));
        // A valid token from another key: bad signature.
        let other = mint(Algorithm::ES256, EC256_PRIVATE, &Claims::default()).unwrap();
        let forged = format!(
            "{}.{}",
            token.rsplit_once('.').unwrap().0,
            other.rsplit_once('.').unwrap().1
        );
        assert_eq!(with_key.verify(&forged), Err(AuthError::BadSignature));
    }

    #[test]
    fn es384_and_eddsa_round_trip() {
        let token = mint(Algorithm::ES384, EC384_PRIVATE, &full_claims()).unwrap();
        let verifier = JwtVerifier::new(Algorithm::ES384, EC384_PUBLIC).unwrap();
        assert_eq!(verifier.verify(&token), Ok(full_claims()));
        let token = mint(Algorithm::EdDSA, ED_PRIVATE, &full_claims()).unwrap();
        let verifier = JwtVerifier::new(Algorithm::EdDSA, ED_PUBLIC).unwrap();
        assert_eq!(verifier.verify(&token), Ok(full_claims()));
    }

    #[test]
    fn expired_tokens_are_refused_with_zero_leeway() {
        let verifier = hs256();
        let token = hs256_with(&json!({"exp": 1000}));
        assert_eq!(
            verifier.verify_at(&token, 999).map(|c| c.exp),
            Ok(Some(1000))
        );
        assert_eq!(verifier.verify_at(&token, 1000), Err(AuthError::Expired));
        assert_eq!(verifier.verify_at(&token, 1001), Err(AuthError::Expired));
        // Against the real clock too.
        let past = mint(
            Algorithm::HS256,
            SECRET,
            &Claims {
                exp: Some(1),
                ..Claims::default()
            },
        )
        .unwrap();
        assert_eq!(verifier.verify(&past), Err(AuthError::Expired));
        // A fractional exp is valid until its end.
        let token = hs256_with(&json!({"exp": 1000.5}));
        assert_eq!(
            verifier.verify_at(&token, 1000).map(|c| c.exp),
            Ok(Some(1001))
        );
        assert_eq!(verifier.verify_at(&token, 1001), Err(AuthError::Expired));
    }

    #[test]
    fn tokens_before_nbf_are_refused() {
        let verifier = hs256();
        let token = hs256_with(&json!({"nbf": 1000, "exp": 2000}));
        assert_eq!(verifier.verify_at(&token, 999), Err(AuthError::NotYetValid));
        assert!(verifier.verify_at(&token, 1000).is_ok());
        let future = hs256_with(&json!({"nbf": 4_102_444_800_u64}));
        assert_eq!(verifier.verify(&future), Err(AuthError::NotYetValid));
    }

    #[test]
    fn wrong_secret_is_a_bad_signature() {
        let token = mint(Algorithm::HS256, b"another secret", &full_claims()).unwrap();
        assert_eq!(hs256().verify(&token), Err(AuthError::BadSignature));
        // A tampered payload, too.
        let good = mint(Algorithm::HS256, SECRET, &Claims::default()).unwrap();
        let mut parts: Vec<&str> = good.split('.').collect();
        let forged_payload = b64(br#"{"mercure":{"publish":["*"]}}"#);
        parts[1] = &forged_payload;
        assert_eq!(
            hs256().verify(&parts.join(".")),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn other_algorithms_are_refused() {
        let hs384 = mint(Algorithm::HS384, SECRET, &full_claims()).unwrap();
        assert_eq!(
            hs256().verify(&hs384),
            Err(AuthError::WrongAlgorithm {
                expected: Algorithm::HS256,
                found: "HS384".into()
            })
        );
        // Algorithm confusion: an HS256 token keyed with the RSA public key
        // must not pass an RS256 verifier.
        let confused = mint(Algorithm::HS256, RSA_PUBLIC, &full_claims()).unwrap();
        let rs256 = JwtVerifier::new(Algorithm::RS256, RSA_PUBLIC).unwrap();
        assert_eq!(
            rs256.verify(&confused),
            Err(AuthError::WrongAlgorithm {
                expected: Algorithm::RS256,
                found: "HS256".into()
            })
        );
    }

    #[test]
    fn unsigned_tokens_are_refused() {
        let payload = b64(br#"{"mercure":{"publish":["*"]}}"#);
        for alg in ["none", "None", "NONE"] {
            let header = b64(json!({"alg": alg, "typ": "JWT"}).to_string().as_bytes());
            for token in [
                format!("{header}.{payload}."),
                format!("{header}.{payload}.c2ln"),
            ] {
                assert_eq!(
                    hs256().verify(&token),
                    Err(AuthError::WrongAlgorithm {
                        expected: Algorithm::HS256,
                        found: alg.into()
                    })
                );
            }
        }
    }

    #[test]
    fn claims_of_the_wrong_type_are_malformed_and_named() {
        let cases = [
            (json!({"mercure": "publish"}), "\"mercure\""),
            (json!({"mercure": {"publish": "*"}}), "\"mercure.publish\""),
            (
                json!({"mercure": {"publish": ["*", 1]}}),
                "\"mercure.publish\"",
            ),
            (
                json!({"mercure": {"subscribe": {"a": 1}}}),
                "\"mercure.subscribe\"",
            ),
            (json!({"exp": "tomorrow"}), "\"exp\""),
            (json!({"exp": -5}), "\"exp\""),
            (json!({"nbf": true}), "\"nbf\""),
        ];
        for (payload, named) in cases {
            match hs256().verify(&hs256_with(&payload)) {
                Err(AuthError::Malformed(message)) => {
                    assert!(message.contains(named), "{message} should name {named}")
                }
                other => panic!("{payload}: expected Malformed, got {other:?}"),
            }
        }
        // Any JSON is a valid payload.
        let token = hs256_with(&json!({"mercure": {"payload": "just a string"}}));
        assert_eq!(
            hs256().verify(&token).unwrap().payload,
            Some(json!("just a string"))
        );
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let valid = mint(Algorithm::HS256, SECRET, &Claims::default()).unwrap();
        let (header, rest) = valid.split_once('.').unwrap();
        let malformed = [
            String::new(),
            "garbage".into(),
            "a.b".into(),
            format!("{valid}.extra"),
            format!("!!!.{rest}"),
            format!("{}.{rest}", b64(b"not json")),
            format!("{}.{rest}", b64(br#"{"typ":"JWT"}"#)),
            format!("{}.{rest}", b64(br#"{"alg":256}"#)),
            hs256_signed(&format!("{header}.!!!")),
            format!("{}.!!!", valid.rsplit_once('.').unwrap().0),
            hs256_raw(&json!({"alg": "HS256"}), b"not json"),
            hs256_raw(&json!({"alg": "HS256"}), b"[1, 2]"),
            hs256_raw(&json!({"alg": "HS256"}), b"\"claims\""),
            hs256_raw(&json!({"alg": "HS256", "crit": ["exp"], "exp": 1}), b"{}"),
        ];
        for token in malformed {
            assert!(
                matches!(hs256().verify(&token), Err(AuthError::Malformed(_))),
                "{token:?} gave {:?}",
                hs256().verify(&token)
            );
        }
    }

    #[test]
    fn unusable_keys_are_refused() {
        let cases: [(Algorithm, &[u8]); 10] = [
            (Algorithm::HS256, b""),
            (Algorithm::RS256, b"not a pem"),
            (Algorithm::RS256, EC256_PUBLIC),
            (Algorithm::RS256, RSA_PRIVATE),
            (Algorithm::ES256, RSA_PUBLIC),
            (Algorithm::ES256, EC384_PUBLIC),
            (Algorithm::ES384, EC256_PUBLIC),
            (Algorithm::ES256, EC256_PRIVATE),
            (Algorithm::EdDSA, EC256_PUBLIC),
            (
                Algorithm::EdDSA,
                b"-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n",
            ),
        ];
        for (alg, key) in cases {
            assert!(
                matches!(JwtVerifier::new(alg, key), Err(AuthError::InvalidKey(_))),
                "{alg:?} with {}",
                String::from_utf8_lossy(key)
            );
        }
        let mint_cases: [(Algorithm, &[u8]); 6] = [
            (Algorithm::HS512, b""),
            (Algorithm::RS256, RSA_PUBLIC),
            (Algorithm::RS256, b"garbage"),
            (Algorithm::ES256, EC384_PRIVATE),
            (Algorithm::ES384, EC256_PRIVATE),
            (Algorithm::EdDSA, ED_PUBLIC),
        ];
        for (alg, key) in mint_cases {
            assert!(
                matches!(
                    mint(alg, key, &Claims::default()),
                    Err(AuthError::InvalidKey(_))
                ),
                "mint {alg:?} with {}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn error_messages_say_what_is_wrong() {
        let messages = [
            (
                AuthError::Malformed("the header is not base64url".into()),
                "header is not base64url",
            ),
            (AuthError::BadSignature, "signature"),
            (AuthError::Expired, "expired"),
            (AuthError::NotYetValid, "not valid yet"),
            (
                AuthError::WrongAlgorithm {
                    expected: Algorithm::RS256,
                    found: "none".into(),
                },
                "\"none\", but only RS256",
            ),
            (AuthError::NotBearer, "Bearer <token>"),
            (AuthError::InvalidKey("x".into()), "invalid JWT key: x"),
            (AuthError::Signing("y".into()), "could not sign the JWT: y"),
        ];
        for (error, expected) in messages {
            assert!(error.to_string().contains(expected), "{error}");
        }
        match JwtVerifier::new(Algorithm::ES256, RSA_PUBLIC) {
            Err(e) => assert!(e.to_string().contains("P-256"), "{e}"),
            Ok(_) => panic!("an RSA key is no ES256 key"),
        }
    }

    #[test]
    fn verifier_debug_does_not_print_the_key() {
        let debug = format!("{:?}", hs256());
        assert!(debug.contains("HS256"));
        assert!(!debug.contains("ChangeThis"));
    }

    #[test]
    fn token_from_authorization_header() {
        let found = extract_token(&headers(&[("authorization", "Bearer abc.def.ghi")]), None);
        assert_eq!(found, Ok(Some(("abc.def.ghi".into(), TokenSource::Header))));
        let found = extract_token(&headers(&[("authorization", "bearer   abc ")]), None);
        assert_eq!(found, Ok(Some(("abc".into(), TokenSource::Header))));
    }

    #[test]
    fn authorization_header_must_be_bearer() {
        for value in [
            "Basic dXNlcjpwYXNz",
            "Bearer",
            "Bearer ",
            "abc.def.ghi",
            "Bearer a b",
            "Bearerabc",
        ] {
            assert_eq!(
                extract_token(&headers(&[("authorization", value)]), None),
                Err(AuthError::NotBearer),
                "{value:?}"
            );
        }
        let two = headers(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]);
        assert_eq!(extract_token(&two, None), Err(AuthError::NotBearer));
        // A bad header is an error even when a query token is present.
        let basic = headers(&[("authorization", "Basic x")]);
        assert_eq!(
            extract_token(&basic, Some("authorization=t")),
            Err(AuthError::NotBearer)
        );
    }

    #[test]
    fn token_from_query_parameter_is_percent_decoded() {
        let none = HeaderMap::new();
        assert_eq!(
            extract_token(
                &none,
                Some("topic=x&authorization=a%2Eb.c&authorization=second")
            ),
            Ok(Some(("a.b.c".into(), TokenSource::Query)))
        );
        assert_eq!(
            extract_token(&none, Some("authorization=a+b")),
            Ok(Some(("a b".into(), TokenSource::Query))),
            "form encoding: `+` is a space"
        );
        assert_eq!(
            extract_token(&none, Some("%61uthorization=t")),
            Ok(Some(("t".into(), TokenSource::Query)))
        );
        assert_eq!(
            extract_token(&none, Some("Authorization=t")),
            Ok(None),
            "names are case-sensitive"
        );
        assert_eq!(extract_token(&none, Some("authorization=")), Ok(None));
        assert_eq!(extract_token(&none, Some("authorization")), Ok(None));
        assert_eq!(extract_token(&none, Some("")), Ok(None));
        assert!(matches!(
            extract_token(&none, Some("authorization=%FF")),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn token_from_cookie_among_several() {
        let found = extract_token(
            &headers(&[("cookie", "theme=dark; mercureAuthorization=a.b.c; other=1")]),
            None,
        );
        assert_eq!(found, Ok(Some(("a.b.c".into(), TokenSource::Cookie))));
        let spread = headers(&[
            ("cookie", "a=1;b=2"),
            ("cookie", " mercureAuthorization = \"x.y.z\" ;c=3"),
        ]);
        assert_eq!(
            extract_token(&spread, None),
            Ok(Some(("x.y.z".into(), TokenSource::Cookie)))
        );
        let lookalikes = headers(&[(
            "cookie",
            "xmercureAuthorization=no; mercureAuthorizationx=no; mercureauthorization=no",
        )]);
        assert_eq!(extract_token(&lookalikes, None), Ok(None));
        let empty_first = headers(&[("cookie", "mercureAuthorization=; mercureAuthorization=t")]);
        assert_eq!(
            extract_token(&empty_first, None),
            Ok(Some(("t".into(), TokenSource::Cookie)))
        );
        let junk = headers(&[("cookie", ";;novalue; =x; mercureAuthorization")]);
        assert_eq!(extract_token(&junk, None), Ok(None));
    }

    #[test]
    fn sources_are_tried_header_then_query_then_cookie() {
        let cookie = ("cookie", "mercureAuthorization=from-cookie");
        let header = ("authorization", "Bearer from-header");
        let query = Some("authorization=from-query");
        assert_eq!(
            extract_token(&headers(&[cookie, header]), query),
            Ok(Some(("from-header".into(), TokenSource::Header)))
        );
        assert_eq!(
            extract_token(&headers(&[cookie]), query),
            Ok(Some(("from-query".into(), TokenSource::Query)))
        );
        assert_eq!(
            extract_token(&headers(&[cookie]), Some("authorization=")),
            Ok(Some(("from-cookie".into(), TokenSource::Cookie)))
        );
        assert_eq!(extract_token(&HeaderMap::new(), None), Ok(None));
        assert_eq!(
            extract_token(&headers(&[("x-other", "Bearer t")]), Some("topic=a")),
            Ok(None)
        );
    }

    #[test]
    fn extracted_tokens_verify() {
        let token = mint(Algorithm::HS256, SECRET, &full_claims()).unwrap();
        let cookie = format!("{COOKIE_NAME}={token}");
        let (found, source) = extract_token(&headers(&[("cookie", &cookie)]), None)
            .unwrap()
            .unwrap();
        assert_eq!(source, TokenSource::Cookie);
        assert_eq!(hs256().verify(&found), Ok(full_claims()));
    }

    #[test]
    fn selectors_match_when_any_selector_matches() {
        let matcher = TopicMatcher::new(8);
        let selectors = vec![
            "https://example.com/users/1".to_owned(),
            "https://example.com/books/{id}".to_owned(),
        ];
        assert!(selectors_match(
            &matcher,
            &selectors,
            "https://example.com/books/7"
        ));
        assert!(selectors_match(
            &matcher,
            &selectors,
            "https://example.com/users/1"
        ));
        assert!(!selectors_match(
            &matcher,
            &selectors,
            "https://example.com/users/2"
        ));
        assert!(!selectors_match(
            &matcher,
            &[],
            "https://example.com/users/1"
        ));
        assert!(selectors_match(&matcher, &["*".to_owned()], "anything"));
    }
}
