//! The trusted keys of each issuer: from PEM files, secrets, JWKS files
//! and JWKS URLs, the last two read again when a token names a key the
//! hub does not know (at a bounded rate) and periodically, so that an
//! issuer (or an operator editing the file) can rotate its keys without a
//! restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde_json::Value;
use tokio::time::Instant;

use super::{ConfigError, JwksPolicy, KeySource};

/// One trusted key.
#[derive(Clone)]
pub(crate) struct Key {
    pub(crate) kid: Option<String>,
    family: AlgorithmFamily,
    /// The curve of an EC key: ES256 needs P-256, ES384 P-384.
    curve: Option<Algorithm>,
    /// The algorithm the key is restricted to, when its JWK says.
    alg: Option<Algorithm>,
    pub(crate) key: DecodingKey,
}

impl Key {
    /// Whether a token signed with `alg` may be verified with this key
    /// (draft-08 §Token Validation: `alg` compatible with the key).
    pub(crate) fn suits(&self, alg: Algorithm) -> bool {
        alg.family() == self.family
            && self.alg.is_none_or(|a| a == alg)
            && self.curve.is_none_or(|c| c == alg)
    }
}

/// The keys of one issuer.
pub(crate) struct IssuerKeys {
    pub(crate) issuer: String,
    /// Keys from PEM and secrets: fixed for the verifier's life.
    fixed: Vec<Key>,
    /// JWKS files, read at load and again at each refresh.
    files: Vec<PathBuf>,
    urls: Vec<hyper::Uri>,
    /// The accepted algorithms: keys for no accepted algorithm are dropped.
    algorithms: Vec<Algorithm>,
    fetched: RwLock<Fetched>,
    /// When the URLs were last fetched. Held during a fetch, so that
    /// verifications waiting for new keys share one fetch.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

/// What the last reads of an issuer's JWKS files and URLs gave.
#[derive(Default)]
struct Fetched {
    /// The keys of the last complete read.
    keys: Vec<Key>,
    /// Whether the last fetch of the URLs succeeded: false before the
    /// first and after a failed one (whose keys are not those of the issuer
    /// now, maybe).
    current: bool,
}

impl IssuerKeys {
    /// Loads the fixed sources and the JWKS files now; URLs are fetched by
    /// [`IssuerKeys::refresh`].
    pub(crate) fn load(
        issuer: &str,
        sources: &[KeySource],
        algorithms: &[Algorithm],
    ) -> Result<IssuerKeys, ConfigError> {
        let mut fixed = Vec::new();
        let mut from_files = Vec::new();
        let mut files = Vec::new();
        let mut urls = Vec::new();
        let bad = |source: &dyn std::fmt::Display, why: String| ConfigError {
            message: format!("issuer {issuer:?}: {source}: {why}"),
        };
        if issuer.is_empty() {
            return Err(bad(&"issuer", "is empty".into()));
        }
        for source in sources {
            match source {
                KeySource::Pem(pem) => fixed.push(pem_key(pem).map_err(|e| bad(&"PEM key", e))?),
                KeySource::PemFile(path) => {
                    let pem = read(path).map_err(|e| bad(&path.display(), e))?;
                    fixed.push(pem_key(&pem).map_err(|e| bad(&path.display(), e))?);
                }
                KeySource::Secret(secret) => {
                    if secret.is_empty() {
                        return Err(bad(&"secret", "is empty".into()));
                    }
                    fixed.push(Key {
                        kid: None,
                        family: AlgorithmFamily::Hmac,
                        curve: None,
                        alg: None,
                        key: DecodingKey::from_secret(secret),
                    });
                }
                KeySource::JwksFile(path) => {
                    let text = read(path).map_err(|e| bad(&path.display(), e))?;
                    from_files.extend(
                        jwks(text.as_bytes(), algorithms).map_err(|e| bad(&path.display(), e))?,
                    );
                    files.push(path.clone());
                }
                KeySource::JwksUrl(url) => urls.push(
                    url.parse::<hyper::Uri>()
                        .ok()
                        .filter(|u| matches!(u.scheme_str(), Some("http" | "https")))
                        .ok_or_else(|| bad(url, "not an http or https URL".into()))?,
                ),
            }
        }
        if fixed.is_empty() && files.is_empty() && urls.is_empty() {
            return Err(bad(&"keys", "none given".into()));
        }
        Ok(IssuerKeys {
            issuer: issuer.to_owned(),
            fixed,
            files,
            urls,
            algorithms: algorithms.to_vec(),
            fetched: RwLock::new(Fetched {
                keys: from_files,
                current: false,
            }),
            last_fetch: tokio::sync::Mutex::new(None),
        })
    }

    /// Every key of the issuer now.
    pub(crate) fn keys(&self) -> Vec<Key> {
        let fetched = self.fetched.read().unwrap_or_else(|e| e.into_inner());
        self.fixed
            .iter()
            .chain(fetched.keys.iter())
            .cloned()
            .collect()
    }

    /// Whether the keys at the issuer's URLs are unknown now: never
    /// fetched, or the last fetch failed. A token no known key verifies
    /// may then be valid all the same.
    pub(crate) fn unavailable(&self) -> bool {
        self.has_urls()
            && !self
                .fetched
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .current
    }

    /// Whether one of its keys has this `kid`.
    pub(crate) fn knows(&self, kid: &str) -> bool {
        self.keys().iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// Whether some keys come from URLs.
    pub(crate) fn has_urls(&self) -> bool {
        !self.urls.is_empty()
    }

    /// Whether some keys are read again by [`IssuerKeys::refresh`]: from
    /// JWKS files or URLs.
    pub(crate) fn refetches(&self) -> bool {
        !self.files.is_empty() || !self.urls.is_empty()
    }

    /// Reads the JWKS files and fetches the URLs again, unless that was
    /// done less than `policy.min_refetch` ago; callers arriving during a
    /// fetch wait for it rather than starting another. Returns whether a
    /// fetch happened. `client` is needed when the issuer has URLs.
    pub(crate) async fn refresh(
        &self,
        client: Option<&JwksClient>,
        policy: &JwksPolicy,
        force: bool,
    ) -> bool {
        if !self.refetches() {
            return false;
        }
        let mut last = self.last_fetch.lock().await;
        if !force && last.is_some_and(|at| at.elapsed() < policy.min_refetch) {
            return false;
        }
        let mut keys = Vec::new();
        for path in &self.files {
            let read = tokio::fs::read(path)
                .await
                .map_err(|e| e.to_string())
                .and_then(|body| jwks(&body, &self.algorithms));
            match read {
                Ok(found) => keys.extend(found),
                Err(why) => {
                    // Keep the keys we had: a file caught mid-edit, or
                    // removed, must not lock anyone out. Unlike an
                    // unreachable URL it does not make the keys
                    // "unavailable": the operator owns the file.
                    tracing::warn!(issuer = %self.issuer, file = %path.display(), %why, "could not read the issuer's key file again; keeping its keys");
                    *last = Some(Instant::now());
                    return true;
                }
            }
        }
        let Some(client) = client.filter(|_| !self.urls.is_empty()) else {
            self.fetched.write().unwrap_or_else(|e| e.into_inner()).keys = keys;
            *last = Some(Instant::now());
            return true;
        };
        for url in &self.urls {
            match client
                .get(url, policy)
                .await
                .and_then(|body| jwks(&body, &self.algorithms))
            {
                Ok(found) => keys.extend(found),
                Err(why) => {
                    // Keep the keys we had: an unreachable JWKS must not
                    // lock out every holder of a token they verify.
                    tracing::warn!(issuer = %self.issuer, %url, %why, "could not fetch the issuer's keys");
                    self.fetched
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .current = false;
                    *last = Some(Instant::now());
                    return true;
                }
            }
        }
        *self.fetched.write().unwrap_or_else(|e| e.into_inner()) = Fetched {
            keys,
            current: true,
        };
        // Counted from the end of the fetch: a slow issuer does not eat
        // into the interval.
        *last = Some(Instant::now());
        true
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))
}

/// A PEM public key or certificate, of whichever type it is.
fn pem_key(pem: &str) -> Result<Key, String> {
    let pem = pem.as_bytes();
    let key = |family, key| Key {
        kid: None,
        family,
        curve: None,
        alg: None,
        key,
    };
    if let Ok(k) = DecodingKey::from_ed_pem(pem) {
        return Ok(key(AlgorithmFamily::Ed, k));
    }
    if let Ok(k) = DecodingKey::from_ec_pem(pem) {
        return Ok(key(AlgorithmFamily::Ec, k));
    }
    if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
        return Ok(key(AlgorithmFamily::Rsa, k));
    }
    Err("not a PEM public key or certificate (Ed25519, EC or RSA)".into())
}

/// The signing keys of a JWKS document whose algorithm is allowed; other
/// keys (encryption keys, unsupported types) are skipped with a warning.
pub(crate) fn jwks(document: &[u8], algorithms: &[Algorithm]) -> Result<Vec<Key>, String> {
    let document: Value =
        serde_json::from_slice(document).map_err(|e| format!("not a JSON JWKS document: {e}"))?;
    let Some(Value::Array(entries)) = document.get("keys") else {
        return Err("a JWKS document is an object with a \"keys\" array".into());
    };
    let mut keys = Vec::new();
    for entry in entries {
        let jwk: Jwk = match serde_json::from_value(entry.clone()) {
            Ok(jwk) => jwk,
            Err(e) => {
                tracing::warn!(error = %e, "skipping a JWK of an unsupported type");
                continue;
            }
        };
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            // Key sets commonly publish encryption keys beside signing
            // ones: not worth a warning at every refresh.
            tracing::debug!(kid = ?jwk.common.key_id, "skipping a JWK whose \"use\" is not \"sig\"");
            continue;
        }
        let (family, curve) = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => (AlgorithmFamily::Rsa, None),
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => (AlgorithmFamily::Ec, Some(Algorithm::ES256)),
                EllipticCurve::P384 => (AlgorithmFamily::Ec, Some(Algorithm::ES384)),
                _ => {
                    tracing::warn!(kid = ?jwk.common.key_id, curve = ?ec.curve, "skipping an EC JWK on an unsupported curve");
                    continue;
                }
            },
            AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
                (AlgorithmFamily::Ed, None)
            }
            // Shared secrets have no place in a published key set.
            AlgorithmParameters::OctetKey(_) => {
                tracing::warn!(kid = ?jwk.common.key_id, "skipping a symmetric JWK (kty \"oct\") in a published key set");
                continue;
            }
            _ => {
                tracing::warn!(kid = ?jwk.common.key_id, "skipping a JWK of an unsupported key type or curve");
                continue;
            }
        };
        let alg = match jwk.common.key_algorithm {
            Some(a) => match a.to_string().parse::<Algorithm>() {
                Ok(alg) => Some(alg),
                Err(_) => {
                    tracing::warn!(kid = ?jwk.common.key_id, alg = %a, "skipping a JWK for an algorithm that does not sign");
                    continue;
                }
            },
            None => None,
        };
        if !algorithms.iter().any(|a| {
            a.family() == family && alg.is_none_or(|k| k == *a) && curve.is_none_or(|c| c == *a)
        }) {
            tracing::debug!(kid = ?jwk.common.key_id, "skipping a JWK for no accepted algorithm");
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            tracing::warn!(kid = ?jwk.common.key_id, "skipping a JWK that does not parse");
            continue;
        };
        keys.push(Key {
            kid: jwk.common.key_id.clone(),
            family,
            curve,
            alg,
            key,
        });
    }
    Ok(keys)
}

/// The HTTP client fetching JWKS documents (https with the web PKI's
/// roots, or plain http), one per verifier.
#[derive(Clone)]
pub(crate) struct JwksClient {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl JwksClient {
    pub(crate) fn new() -> Result<JwksClient, String> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))
            .map_err(|e| format!("TLS setup for fetching JWKS: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        // A fetch every few minutes: no use keeping connections open.
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(https);
        Ok(JwksClient { client })
    }

    /// GETs a JWKS document within the policy's time and size limits.
    async fn get(&self, url: &hyper::Uri, policy: &JwksPolicy) -> Result<Vec<u8>, String> {
        let get = async {
            let response = self
                .client
                .get(url.clone())
                .await
                .map_err(|e| format!("request failed: {e}"))?;
            if !response.status().is_success() {
                return Err(format!("answered {}", response.status()));
            }
            Limited::new(response.into_body(), policy.max_document_bytes)
                .collect()
                .await
                .map(|body| body.to_bytes().to_vec())
                .map_err(|e| format!("reading the document: {e}"))
        };
        tokio::time::timeout(policy.fetch_timeout, get)
            .await
            .map_err(|_| format!("no answer within {:?}", policy.fetch_timeout))?
    }
}

/// The shortest wait between periodic refreshes (a guard against a zero).
pub(crate) const MIN_REFRESH: Duration = Duration::from_secs(1);
