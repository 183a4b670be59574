//! Each test names the part of draft-08 §Token Validation (or §Authorization
//! Details) it checks.

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::DecodingKey;
use serde_json::json;

use super::*;

const ED_PRIVATE: &[u8] = include_bytes!("../../tests/fixtures/ed25519_private.pem");
const ED_PUBLIC: &str = include_str!("../../tests/fixtures/ed25519_public.pem");
const EC_PRIVATE: &[u8] = include_bytes!("../../tests/fixtures/ec256_private.pem");
const EC_PUBLIC: &str = include_str!("../../tests/fixtures/ec256_public.pem");
const EC384_PUBLIC: &str = include_str!("../../tests/fixtures/ec384_public.pem");
const RSA_PRIVATE: &[u8] = include_bytes!("../../tests/fixtures/rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("../../tests/fixtures/rsa_public.pem");

const ISSUER: &str = "https://issuer.example";
const RESOURCE: &str = "https://hub.example/.well-known/mercure";
const NOW: u64 = 1_800_000_000;

fn claims() -> Map<String, Value> {
    json!({
        "iss": ISSUER,
        "aud": RESOURCE,
        "sub": "user-1",
        "client_id": "app",
        "iat": NOW - 10,
        "exp": NOW + 60,
        "jti": "j1",
        "authorization_details": [{
            "type": MERCURE_DETAIL_TYPE,
            "actions": ["subscribe"],
            "topics": [{"match": "https://example.com/books/:id", "match_type": "urlpattern"}],
            "payload": {"name": "Ada"},
        }],
    })
    .as_object()
    .cloned()
    .unwrap()
}

fn with(changes: Value) -> Map<String, Value> {
    let mut c = claims();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.remove(k);
        } else {
            c.insert(k.clone(), v.clone());
        }
    }
    c
}

fn config(keys: Vec<KeySource>) -> AccessTokenConfig {
    let mut config = AccessTokenConfig::new(
        RESOURCE,
        vec![IssuerConfig {
            issuer: ISSUER.into(),
            keys,
        }],
    );
    config.algorithms.push(Algorithm::HS256);
    config
}

fn verifier(keys: Vec<KeySource>) -> AccessTokenVerifier {
    AccessTokenVerifier::new(config(keys)).unwrap()
}

fn ed() -> AccessTokenVerifier {
    verifier(vec![KeySource::Pem(ED_PUBLIC.into())])
}

fn ed_token(claims: &Map<String, Value>) -> String {
    mint(Algorithm::EdDSA, ED_PRIVATE, None, claims).unwrap()
}

async fn check(v: &AccessTokenVerifier, token: &str) -> Result<AccessToken, AccessTokenError> {
    v.verify_at(token, NOW).await
}

#[tokio::test]
async fn eddsa_es256_and_rs256_tokens_verify_with_their_issuers_keys() {
    let token = check(&ed(), &ed_token(&claims())).await.unwrap();
    assert_eq!(token.issuer, ISSUER);
    assert_eq!(token.subject.as_deref(), Some("user-1"));
    assert_eq!(token.expires, NOW + 60);
    assert_eq!(token.details.len(), 1);
    assert!(token.details[0].subscribe && !token.details[0].publish);
    assert_eq!(
        token.details[0].payload,
        json!({"name": "Ada"}).as_object().cloned()
    );

    let es = verifier(vec![KeySource::Pem(EC_PUBLIC.into())]);
    let t = mint(Algorithm::ES256, EC_PRIVATE, None, &claims()).unwrap();
    check(&es, &t).await.unwrap();
    let rs = verifier(vec![KeySource::Pem(RSA_PUBLIC.into())]);
    let t = mint(Algorithm::RS256, RSA_PRIVATE, None, &claims()).unwrap();
    check(&rs, &t).await.unwrap();
}

// §Token Validation: `typ` must be at+jwt (or application/at+jwt).
#[tokio::test]
async fn the_type_must_be_at_jwt() {
    let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
    for (typ, ok) in [
        (None, false),
        (Some("JWT"), false),
        (Some("application/AT+JWT"), true),
        (Some("at+jwt"), true),
    ] {
        header.typ = typ.map(str::to_owned);
        let token = crate::auth::sign(&header, ED_PRIVATE, &claims()).unwrap();
        assert_eq!(check(&ed(), &token).await.is_ok(), ok, "{typ:?}");
        assert_eq!(is_access_token(&token), ok, "{typ:?}");
    }
}

// §Token Validation: an explicit allowlist, `alg` suited to the key, never
// key material from the token.
#[tokio::test]
async fn algorithms_outside_the_allowlist_or_unsuited_to_the_key_are_refused() {
    let only_ed = AccessTokenVerifier::new(AccessTokenConfig::new(
        RESOURCE,
        vec![IssuerConfig {
            issuer: ISSUER.into(),
            keys: vec![KeySource::Secret(b"shared".to_vec())],
        }],
    ))
    .unwrap();
    let hs = mint(Algorithm::HS256, b"shared", None, &claims()).unwrap();
    let err = check(&only_ed, &hs).await.unwrap_err();
    assert_eq!(
        err,
        AccessTokenError::AlgorithmNotAccepted(Algorithm::HS256)
    );
    assert!(err.to_string().contains("not accepted"), "{err}");
    // HS256 allowed, but the issuer's key is an Ed25519 public key: an HMAC
    // over its bytes must not pass (algorithm confusion).
    let confused = mint(Algorithm::HS256, ED_PUBLIC.as_bytes(), None, &claims()).unwrap();
    assert!(matches!(
        check(&ed(), &confused).await,
        Err(AccessTokenError::UnknownKey {
            algorithm: Algorithm::HS256,
            ..
        })
    ));
    // An allowlisted algorithm of another family than the issuer's key.
    let t = mint(Algorithm::RS256, RSA_PRIVATE, None, &claims()).unwrap();
    assert!(matches!(
        check(&ed(), &t).await,
        Err(AccessTokenError::UnknownKey { .. })
    ));
    // ES256 with a P-384 key.
    let es = verifier(vec![KeySource::Pem(EC384_PUBLIC.into())]);
    let t = mint(Algorithm::ES256, EC_PRIVATE, None, &claims()).unwrap();
    assert!(check(&es, &t).await.unwrap_err().is_invalid_token());
}

// §Token Validation: a shared secret verifies HS256 tokens when the
// allowlist has HS256, and only the algorithms allowlisted.
#[tokio::test]
async fn a_shared_secret_verifies_allowlisted_hmac_tokens() {
    let v = verifier(vec![KeySource::Secret(b"shared".to_vec())]);
    let t = mint(Algorithm::HS256, b"shared", None, &claims()).unwrap();
    check(&v, &t).await.unwrap();
    let t = mint(Algorithm::HS256, b"guessed", None, &claims()).unwrap();
    assert_eq!(check(&v, &t).await, Err(AccessTokenError::BadSignature));
    let t = mint(Algorithm::HS384, b"shared", None, &claims()).unwrap();
    assert_eq!(
        check(&v, &t).await,
        Err(AccessTokenError::AlgorithmNotAccepted(Algorithm::HS384))
    );
}

// §Token Validation: the verification key comes from the configuration,
// never from the token (`jwk`, `jku`, `x5u`, `x5c`).
#[tokio::test]
async fn a_token_bringing_its_own_key_is_refused() {
    let public = DecodingKey::from_ed_pem(ED_PUBLIC.as_bytes()).unwrap();
    let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.jwk = Some(Jwk::from_decoding_key(&public, Some(Algorithm::EdDSA)).unwrap());
    let token = crate::auth::sign(&header, ED_PRIVATE, &claims()).unwrap();
    let err = check(&ed(), &token).await.unwrap_err();
    assert_eq!(err, AccessTokenError::EmbeddedKey);
    assert!(err.to_string().contains("own key"), "{err}");
    let embeddings: [fn(&mut jsonwebtoken::Header); 3] = [
        |h| h.jku = Some("https://evil.example/jwks".into()),
        |h| h.x5u = Some("https://evil.example/cert.pem".into()),
        |h| h.x5c = Some(vec!["MIIB".into()]),
    ];
    for embed in embeddings {
        let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
        header.typ = Some("at+jwt".into());
        embed(&mut header);
        let token = crate::auth::sign(&header, ED_PRIVATE, &claims()).unwrap();
        assert_eq!(
            check(&ed(), &token).await,
            Err(AccessTokenError::EmbeddedKey)
        );
    }
}

// RFC 7515 §4.1.11: critical extensions the hub does not understand make
// the token invalid.
#[tokio::test]
async fn a_critical_header_is_refused() {
    let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.crit = Some(vec!["exp".into()]);
    let token = crate::auth::sign(&header, ED_PRIVATE, &claims()).unwrap();
    assert_eq!(
        check(&ed(), &token).await,
        Err(AccessTokenError::CriticalHeader)
    );
}

// §Token Validation: `alg=none` is never accepted; nor is anything that is
// no JWS in compact serialization.
#[tokio::test]
async fn unsigned_tokens_are_refused() {
    let b64 = |v: &Value| {
        use base64_url_free::encode;
        encode(v.to_string().as_bytes())
    };
    let token = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "at+jwt"})),
        b64(&Value::Object(claims()))
    );
    let err = check(&ed(), &token).await.unwrap_err();
    assert!(matches!(err, AccessTokenError::Malformed(_)), "{err}");
    assert!(!is_access_token(&token));
    for junk in ["", "a.b", "a.b.c", "...", "eyJ.eyJ.x"] {
        let err = check(&ed(), junk).await.unwrap_err();
        assert!(
            matches!(err, AccessTokenError::Malformed(_)),
            "{junk}: {err}"
        );
    }
}

/// Unpadded base64url, for hand-made tokens.
mod base64_url_free {
    pub(super) fn encode(bytes: &[u8]) -> String {
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
}

// §Token Validation: `iss` must be a trusted issuer and only its keys
// verify its tokens.
#[tokio::test]
async fn keys_are_bound_to_their_issuer() {
    let config = AccessTokenConfig::new(
        RESOURCE,
        vec![
            IssuerConfig {
                issuer: ISSUER.into(),
                keys: vec![KeySource::Pem(RSA_PUBLIC.into())],
            },
            IssuerConfig {
                issuer: "https://other.example".into(),
                keys: vec![KeySource::Pem(ED_PUBLIC.into())],
            },
        ],
    );
    let v = AccessTokenVerifier::new(config).unwrap();
    // Signed with the other issuer's key, claiming ISSUER.
    let err = check(&v, &ed_token(&claims())).await.unwrap_err();
    assert!(matches!(err, AccessTokenError::UnknownKey { .. }), "{err}");
    assert!(err.to_string().contains("no EdDSA key"), "{err}");
    let t = ed_token(&with(json!({"iss": "https://other.example"})));
    check(&v, &t).await.unwrap();
    let err = check(
        &ed(),
        &ed_token(&with(json!({"iss": "https://stranger.example"}))),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("not trusted"), "{err}");
    assert_eq!(
        check(&ed(), &ed_token(&with(json!({"iss": null})))).await,
        Err(AccessTokenError::MissingClaim("iss"))
    );
    assert!(matches!(
        check(&ed(), &ed_token(&with(json!({"iss": 7})))).await,
        Err(AccessTokenError::InvalidClaim { claim: "iss", .. })
    ));
    // The issuer is compared exactly.
    assert!(matches!(
        check(
            &ed(),
            &ed_token(&with(json!({"iss": "https://issuer.example/"})))
        )
        .await,
        Err(AccessTokenError::UntrustedIssuer(_))
    ));
    // What the hub repeats of a token stays short.
    let long = "x".repeat(10_000);
    let err = check(&ed(), &ed_token(&with(json!({"iss": long}))))
        .await
        .unwrap_err();
    assert!(err.to_string().len() < 200, "{err}");
}

// §Token Validation: `aud` must name the hub; `exp` required and enforced;
// `nbf` enforced.
#[tokio::test]
async fn audience_expiry_and_not_before_are_enforced() {
    let v = ed();
    check(
        &v,
        &ed_token(&with(json!({"aud": ["https://x.example", RESOURCE]}))),
    )
    .await
    .unwrap();
    let err = check(&v, &ed_token(&with(json!({"aud": "https://x.example"}))))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AccessTokenError::WrongAudience { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("aud"), "{err}");
    assert!(matches!(
        check(&v, &ed_token(&with(json!({"aud": ["https://x.example"]})))).await,
        Err(AccessTokenError::WrongAudience { .. })
    ));
    assert_eq!(
        check(&v, &ed_token(&with(json!({"aud": null})))).await,
        Err(AccessTokenError::MissingClaim("aud"))
    );
    let err = check(&v, &ed_token(&with(json!({"aud": 7}))))
        .await
        .unwrap_err();
    assert!(
        err.is_invalid_token() && err.to_string().contains("aud"),
        "{err}"
    );
    let err = check(&v, &ed_token(&with(json!({"exp": null}))))
        .await
        .unwrap_err();
    assert_eq!(err, AccessTokenError::MissingClaim("exp"));
    assert!(err.to_string().contains("exp"), "{err}");
    assert!(matches!(
        check(&v, &ed_token(&with(json!({"exp": "soon"})))).await,
        Err(AccessTokenError::InvalidClaim { claim: "exp", .. })
    ));
    assert_eq!(
        check(&v, &ed_token(&with(json!({"exp": NOW})))).await,
        Err(AccessTokenError::Expired)
    );
    assert_eq!(
        check(&v, &ed_token(&with(json!({"nbf": NOW + 5})))).await,
        Err(AccessTokenError::NotYetValid)
    );
    check(&v, &ed_token(&with(json!({"nbf": NOW}))))
        .await
        .unwrap();
}

// `iat` in the future is refused like `nbf`; `sub` is optional but a
// string; the leeway applies to every time.
#[tokio::test]
async fn issued_at_subject_and_leeway() {
    let v = ed();
    assert_eq!(
        check(&v, &ed_token(&with(json!({"iat": NOW + 5})))).await,
        Err(AccessTokenError::IssuedInTheFuture)
    );
    assert!(matches!(
        check(&v, &ed_token(&with(json!({"iat": "now"})))).await,
        Err(AccessTokenError::InvalidClaim { claim: "iat", .. })
    ));
    let token = check(&v, &ed_token(&with(json!({"sub": null}))))
        .await
        .unwrap();
    assert_eq!(token.subject, None);
    assert!(matches!(
        check(&v, &ed_token(&with(json!({"sub": 42})))).await,
        Err(AccessTokenError::InvalidClaim { claim: "sub", .. })
    ));

    let mut lenient = config(vec![KeySource::Pem(ED_PUBLIC.into())]);
    lenient.leeway = 10;
    let lenient = AccessTokenVerifier::new(lenient).unwrap();
    for (changes, ok) in [
        (json!({"exp": NOW - 9}), true),
        (json!({"exp": NOW - 10}), false),
        (json!({"nbf": NOW + 10}), true),
        (json!({"nbf": NOW + 11}), false),
        (json!({"iat": NOW + 10}), true),
        (json!({"iat": NOW + 11}), false),
    ] {
        let token = ed_token(&with(changes.clone()));
        assert_eq!(check(&lenient, &token).await.is_ok(), ok, "{changes}");
    }
}

// §Authorization Details: one invalid Mercure entry rejects the token.
#[tokio::test]
async fn an_invalid_detail_rejects_the_token() {
    let bad = with(json!({"authorization_details": [{
        "type": MERCURE_DETAIL_TYPE, "actions": ["subscribe"], "topics": [{"match": "a", "match_type": "regex"}]
    }]}));
    let err = check(&ed(), &ed_token(&bad)).await.unwrap_err();
    assert!(
        matches!(err, AccessTokenError::AuthorizationDetails(_)),
        "{err}"
    );
    assert!(err.to_string().contains("authorization_details"), "{err}");
    // Entries of other types are ignored, a Mercure one beside them read.
    let mixed = with(json!({"authorization_details": [
        {"type": "payment_initiation", "instructedAmount": {"currency": "EUR", "amount": "1"}},
        {"type": MERCURE_DETAIL_TYPE, "actions": ["publish"], "topics": [{"match": "*"}]},
    ]}));
    let token = check(&ed(), &ed_token(&mixed)).await.unwrap();
    assert_eq!(token.details.len(), 1);
    assert!(token.details[0].publish && !token.details[0].subscribe);
    // No details: a valid token that grants nothing.
    let none = with(json!({"authorization_details": null}));
    assert!(check(&ed(), &ed_token(&none))
        .await
        .unwrap()
        .details
        .is_empty());
}

// §Token Validation: a `kid` selects among the issuer's keys (a JWKS file
// here); a token naming a kid the issuer does not have is refused.
#[tokio::test]
async fn kid_selects_a_key_of_a_jwks_file() {
    let dir = std::env::temp_dir().join(format!("herald-jwks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("jwks.json");
    std::fs::write(
        &file,
        jwks(&[
            ("ed", ED_PUBLIC, Algorithm::EdDSA),
            ("rsa", RSA_PUBLIC, Algorithm::RS256),
        ]),
    )
    .unwrap();
    let v = verifier(vec![KeySource::JwksFile(file)]);
    check(
        &v,
        &mint(Algorithm::EdDSA, ED_PRIVATE, Some("ed"), &claims()).unwrap(),
    )
    .await
    .unwrap();
    check(
        &v,
        &mint(Algorithm::RS256, RSA_PRIVATE, Some("rsa"), &claims()).unwrap(),
    )
    .await
    .unwrap();
    let err = check(
        &v,
        &mint(Algorithm::EdDSA, ED_PRIVATE, Some("gone"), &claims()).unwrap(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, AccessTokenError::UnknownKey { .. }), "{err}");
    assert!(err.to_string().contains("gone"), "{err}");
    // A token naming a kid of the right family but signed by another key.
    let t = mint(Algorithm::RS256, RSA_PRIVATE, Some("ed"), &claims()).unwrap();
    assert!(matches!(
        check(&v, &t).await,
        Err(AccessTokenError::UnknownKey { .. })
    ));
    std::fs::remove_dir_all(&dir).ok();
}

// §Token Validation and RFC 7517: only signing keys for an accepted
// algorithm are taken from a JWKS; the rest are skipped, not fatal.
#[test]
fn a_jwks_keeps_only_usable_signing_keys() {
    let good: Value = serde_json::from_str(&jwks(&[
        ("ed", ED_PUBLIC, Algorithm::EdDSA),
        ("es", EC_PUBLIC, Algorithm::ES256),
        ("es384", EC384_PUBLIC, Algorithm::ES384),
    ]))
    .unwrap();
    let mut entries = good["keys"].as_array().unwrap().clone();
    let mut encryption = entries[0].clone();
    encryption["kid"] = json!("enc");
    encryption["use"] = json!("enc");
    entries.extend([
        encryption,
        json!({"kty": "oct", "kid": "secret", "k": "c2VjcmV0"}),
        json!({"kty": "OKP", "crv": "X25519", "kid": "x", "x": "AAAA"}),
        json!({"kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA"}),
        json!({"kty": "RSA", "kid": "rsa-oaep", "alg": "RSA-OAEP", "n": "AQAB", "e": "AQAB"}),
        json!({"kty": "weird", "kid": "w"}),
    ]);
    let document = json!({ "keys": entries }).to_string();
    let kids = |algorithms: &[Algorithm]| -> Vec<String> {
        keys::jwks(document.as_bytes(), algorithms)
            .unwrap()
            .into_iter()
            .map(|k| k.kid.unwrap())
            .collect()
    };
    assert_eq!(kids(&DEFAULT_ALGORITHMS), ["ed", "es"]);
    assert_eq!(kids(&[Algorithm::ES384]), ["es384"]);
    assert!(keys::jwks(b"[]", &DEFAULT_ALGORITHMS).is_err());
    assert!(keys::jwks(b"{\"keys\": 1}", &DEFAULT_ALGORITHMS).is_err());
}

/// A JWKS document of PEM public keys.
pub(crate) fn jwks(keys: &[(&str, &str, Algorithm)]) -> String {
    let keys: Vec<Value> = keys
        .iter()
        .map(|(kid, pem, alg)| {
            let key = match alg {
                Algorithm::EdDSA => DecodingKey::from_ed_pem(pem.as_bytes()),
                Algorithm::RS256 => DecodingKey::from_rsa_pem(pem.as_bytes()),
                _ => DecodingKey::from_ec_pem(pem.as_bytes()),
            }
            .unwrap();
            let mut jwk =
                serde_json::to_value(Jwk::from_decoding_key(&key, Some(*alg)).unwrap()).unwrap();
            jwk["kid"] = json!(kid);
            jwk
        })
        .collect();
    json!({"keys": keys}).to_string()
}

#[test]
fn a_configuration_without_issuers_or_keys_is_refused() {
    assert!(AccessTokenVerifier::new(AccessTokenConfig::new(RESOURCE, vec![])).is_err());
    let no_keys = AccessTokenConfig::new(
        RESOURCE,
        vec![IssuerConfig {
            issuer: ISSUER.into(),
            keys: vec![],
        }],
    );
    assert!(AccessTokenVerifier::new(no_keys).is_err());
    let bad_pem = AccessTokenConfig::new(
        RESOURCE,
        vec![IssuerConfig {
            issuer: ISSUER.into(),
            keys: vec![KeySource::Pem("nope".into())],
        }],
    );
    let err = AccessTokenVerifier::new(bad_pem).unwrap_err();
    assert!(err.to_string().contains(ISSUER), "{err}");
    assert!(!format!("{:?}", KeySource::Secret(b"s3cret".to_vec())).contains("s3cret"));

    let missing = config(vec![KeySource::JwksFile("/nonexistent/jwks.json".into())]);
    let err = AccessTokenVerifier::new(missing).unwrap_err().to_string();
    assert!(
        err.contains("/nonexistent/jwks.json") && err.contains(ISSUER),
        "{err}"
    );
    let ftp = config(vec![KeySource::JwksUrl("ftp://issuer.example/jwks".into())]);
    let err = AccessTokenVerifier::new(ftp).unwrap_err().to_string();
    assert!(err.contains("http"), "{err}");
    let mut twice = config(vec![KeySource::Pem(ED_PUBLIC.into())]);
    twice.issuers.push(twice.issuers[0].clone());
    let err = AccessTokenVerifier::new(twice).unwrap_err().to_string();
    assert!(err.contains("twice"), "{err}");
    let mut no_algorithms = config(vec![KeySource::Pem(ED_PUBLIC.into())]);
    no_algorithms.algorithms.clear();
    assert!(AccessTokenVerifier::new(no_algorithms).is_err());
}

#[test]
fn only_unavailable_keys_are_not_the_tokens_fault() {
    assert!(!AccessTokenError::KeysUnavailable {
        issuer: ISSUER.into()
    }
    .is_invalid_token());
    for err in [
        AccessTokenError::Expired,
        AccessTokenError::BadSignature,
        AccessTokenError::NotAnAccessToken,
        AccessTokenError::AuthorizationDetails("x".into()),
    ] {
        assert!(err.is_invalid_token(), "{err}");
    }
}
