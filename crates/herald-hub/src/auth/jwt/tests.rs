use super::*;
use serde_json::json;

const SECRET: &[u8] = b"!ChangeThisMercureHubJWTSecretKey!";
const RSA_PRIVATE: &[u8] = include_bytes!("../../../tests/fixtures/rsa_private.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("../../../tests/fixtures/rsa_public.pem");
const RSA_CERT: &[u8] = include_bytes!("../../../tests/fixtures/rsa_cert.pem");
const RSA_OTHER_PUBLIC: &[u8] = include_bytes!("../../../tests/fixtures/rsa_other_public.pem");
const EC256_PRIVATE: &[u8] = include_bytes!("../../../tests/fixtures/ec256_private.pem");
const EC256_PUBLIC: &[u8] = include_bytes!("../../../tests/fixtures/ec256_public.pem");
const EC256_CERT: &[u8] = include_bytes!("../../../tests/fixtures/ec256_cert.pem");
const EC384_PRIVATE: &[u8] = include_bytes!("../../../tests/fixtures/ec384_private.pem");
const EC384_PUBLIC: &[u8] = include_bytes!("../../../tests/fixtures/ec384_public.pem");
const ED_PRIVATE: &[u8] = include_bytes!("../../../tests/fixtures/ed25519_private.pem");
const ED_PUBLIC: &[u8] = include_bytes!("../../../tests/fixtures/ed25519_public.pem");

fn full_claims() -> Claims {
    Claims {
        publish: Some(vec!["https://example.com/books/{id}".into()]),
        subscribe: Some(vec!["*".into(), "https://example.com/users/42".into()]),
        payload: Some(json!({"user": "https://example.com/users/42", "n": [1, 2]})),
        exp: Some(4_102_444_800), // 2100-01-01
        sub: Some("https://example.com/users/42".into()),
    }
}

/// Encodes `bytes` as the unpadded base64url JWS uses.
fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
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
    assert_eq!(
        hs256().verify(&token),
        Ok(Claims {
            sub: Some("someone".into()),
            ..Claims::default()
        })
    );
    let token = mint(Algorithm::HS256, SECRET, &Claims::default()).unwrap();
    assert_eq!(hs256().verify(&token), Ok(Claims::default()));
    let token = hs256_with(&json!({"mercure": {}}));
    assert_eq!(hs256().verify(&token), Ok(Claims::default()));
    let token = hs256_with(&json!({"mercure": {"publish": null, "payload": null}, "exp": null}));
    assert_eq!(hs256().verify(&token), Ok(Claims::default()));
}

// The subject counts a subscriber's streams: a numeric one (outside
// RFC 7519, but sent) is read as its text, `null` names nobody, and an
// array or an object makes the token malformed (jsonwebtoken's own check).
#[test]
fn the_subject_is_text_or_a_number() {
    for (sub, want) in [
        (json!("user-1"), Some("user-1")),
        (json!(42), Some("42")),
        (json!(null), None),
    ] {
        let token = hs256_with(&json!({ "sub": sub }));
        assert_eq!(
            hs256().verify(&token).unwrap().sub.as_deref(),
            want,
            "{sub}"
        );
    }
    for sub in [json!(["a"]), json!({"id": 1})] {
        let token = hs256_with(&json!({ "sub": sub }));
        assert!(
            matches!(hs256().verify(&token), Err(AuthError::Malformed(_))),
            "{sub}"
        );
    }
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
