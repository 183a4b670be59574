//! `herald token`, the real binary: what it prints verifies with the hub's
//! own verifier (`herald_hub::auth`), and its errors say what to do.

use std::process::Output;
use std::time::{SystemTime, UNIX_EPOCH};

use herald_hub::auth::JwtVerifier;
use jsonwebtoken::Algorithm;

mod support;
use support::{herald_command, output, TempDir};

/// A throwaway P-256 key pair, made for this test with `openssl genpkey`.
const EC_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgqqv22PTFc7/hQ/nJ
1E/9lratHma1Iz5pXOUDSU90mjehRANCAAQrhZsw1jnzf9sDgI7AL+vcvRLzoOMI
1zUNVti2f2uAwyY+TNI8gDDjPbcwrTTawYsP77r15hv9UwsXEeekYjfq
-----END PRIVATE KEY-----
";
const EC_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEK4WbMNY583/bA4COwC/r3L0S86Dj
CNc1DVbYtn9rgMMmPkzSPIAw4z23MK002sGLD++69eYb/VMLFxHnpGI36g==
-----END PUBLIC KEY-----
";

fn herald(args: &[&str], env_key: Option<&str>) -> Output {
    let mut cmd = herald_command();
    cmd.args(args);
    if let Some(key) = env_key {
        cmd.env("HERALD_JWT_KEY", key);
    }
    output(&mut cmd)
}

fn token_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        text.ends_with('\n') && text.lines().count() == 1,
        "{text:?}"
    );
    text.trim_end().to_owned()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn hs256_token_verifies_with_the_hub_and_carries_the_claims() {
    let out = herald(
        &[
            "token",
            "--key",
            "s3cret",
            "--publish",
            "*",
            "--subscribe",
            "https://example.com/books/{id}",
            "news",
            "--exp",
            "1h",
            "--payload",
            r#"{"user":42}"#,
            "--subject",
            "user-42",
        ],
        None,
    );
    let token = token_of(&out);
    let claims = JwtVerifier::new(Algorithm::HS256, b"s3cret")
        .unwrap()
        .verify(&token)
        .expect("verifies");
    assert_eq!(claims.publish, Some(vec!["*".to_owned()]));
    assert_eq!(
        claims.subscribe,
        Some(vec![
            "https://example.com/books/{id}".to_owned(),
            "news".to_owned()
        ])
    );
    assert_eq!(claims.payload, Some(serde_json::json!({"user": 42})));
    assert_eq!(claims.sub.as_deref(), Some("user-42"));
    let exp = claims.exp.expect("an exp claim");
    assert!(exp >= now() + 3590 && exp <= now() + 3610, "exp {exp}");
    assert!(
        JwtVerifier::new(Algorithm::HS256, b"other")
            .unwrap()
            .verify(&token)
            .is_err(),
        "verifies with a wrong key"
    );
}

#[test]
fn key_comes_from_the_environment() {
    let token = token_of(&herald(&["token", "--publish", "a"], Some("envkey")));
    let claims = JwtVerifier::new(Algorithm::HS256, b"envkey")
        .unwrap()
        .verify(&token)
        .expect("verifies");
    assert_eq!(claims.publish, Some(vec!["a".to_owned()]));
    assert_eq!(claims.subscribe, None);
    assert_eq!(claims.sub, None, "no subject unless asked for");
}

#[test]
fn es256_token_is_signed_with_a_pem_key_file() {
    let dir = TempDir::new("cli-token");
    let path = dir.join("ec.pem");
    std::fs::write(&path, EC_PRIVATE).unwrap();
    let out = herald(
        &[
            "token",
            "--alg",
            "ES256",
            "--key-file",
            path.to_str().unwrap(),
            "--subscribe",
            "*",
            "--exp",
            "none",
        ],
        None,
    );
    let token = token_of(&out);
    let claims = JwtVerifier::new(Algorithm::ES256, EC_PUBLIC.as_bytes())
        .unwrap()
        .verify(&token)
        .expect("verifies with the public key");
    assert_eq!(claims.subscribe, Some(vec!["*".to_owned()]));
    assert_eq!(claims.exp, None);
}

#[test]
fn errors_say_what_to_do() {
    let cases: [(&[&str], &str); 4] = [
        (&["token", "--publish", "*"], "pass --key"),
        (
            &["token", "--key", "k", "--exp", "soon"],
            "use e.g. 30m, 1h",
        ),
        (&["token", "--key", "k", "--alg", "XX999"], "use HS256"),
        (
            &["token", "--key", "k", "--payload", "{nope"],
            "--payload is not valid JSON",
        ),
    ];
    for (args, want) in cases {
        let out = herald(args, None);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn help_has_examples() {
    let out = herald(&["token", "--help"], None);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Examples:") && help.contains("--key-file"),
        "{help}"
    );
}

// `herald token --draft 08`: an RFC 9068 access token (`typ: at+jwt`) that
// the hub's own access-token verifier accepts for the issuer's key, with
// `iss`, `aud`, `exp` and one authorization detail per action, its
// matchers of the type asked for and the payload on the subscribe detail.
#[tokio::test]
async fn a_draft_08_token_is_an_access_token_the_hub_accepts() {
    use herald_hub::access_token::{
        AccessTokenConfig, AccessTokenVerifier, IssuerConfig, KeySource,
    };

    const ISSUER: &str = "https://app.example";
    const AUDIENCE: &str = "https://hub.example/.well-known/mercure";
    const SECRET: &str = "access-token-secret-of-the-issuer";
    let out = herald(
        &[
            "token",
            "--draft",
            "08",
            "--key",
            SECRET,
            "--issuer",
            ISSUER,
            "--audience",
            AUDIENCE,
            "--publish",
            "https://example.com/books/:id",
            "--subscribe",
            "*",
            "--match-type",
            "urlpattern",
            "--payload",
            "{\"user\":7}",
            "--exp",
            "10m",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, Algorithm::HS256);

    let mut config = AccessTokenConfig::new(
        AUDIENCE,
        vec![IssuerConfig {
            issuer: ISSUER.into(),
            keys: vec![KeySource::Secret(SECRET.as_bytes().to_vec())],
        }],
    );
    config.algorithms = vec![Algorithm::HS256];
    let verified = AccessTokenVerifier::new(config)
        .unwrap()
        .verify(&token)
        .await
        .expect("the hub's verifier accepts it");
    assert_eq!(verified.issuer, ISSUER);
    assert_eq!(verified.claims["aud"], AUDIENCE);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        (now + 590..=now + 610).contains(&verified.expires),
        "{}",
        verified.expires
    );
    let [publish, subscribe] = &verified.details[..] else {
        panic!("{:?}", verified.details);
    };
    assert!(publish.publish && !publish.subscribe);
    assert_eq!(publish.topics[0].pattern, "https://example.com/books/:id");
    assert_eq!(publish.topics[0].match_type.name(), "urlpattern");
    assert!(subscribe.subscribe && !subscribe.publish);
    assert_eq!(subscribe.topics[0].pattern, "*");
    assert_eq!(
        subscribe.payload.as_ref().map(|p| p["user"].clone()),
        Some(serde_json::json!(7))
    );
}

/// A throwaway Ed25519 key pair, made for this test with `openssl genpkey
/// -algorithm ed25519`.
const ED_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIFtdiPTvUk8tun/tdtuwxKDSPkDOuoaUoij8JkXj36uO
-----END PRIVATE KEY-----
";
const ED_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAYp8iWMzzVnOd/HeKOcnAAxzDRurLAQzoEM+L/btA9Qo=
-----END PUBLIC KEY-----
";

/// The header and the claims of an HS256 JWT signed with `secret`: the
/// header as it is on the wire, the claims once the signature verifies.
fn decoded(token: &str, secret: &str) -> (serde_json::Value, serde_json::Value) {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .expect("the token verifies with its secret")
    .claims;
    (serde_json::to_value(header).unwrap(), claims)
}

// What `herald token --draft 08` prints, decoded as it is on the wire:
// an RFC 9068 header (`typ: at+jwt`, the algorithm, the `kid` asked for)
// and claims (`iss`, `aud`, `sub`, `client_id`, `iat`, `exp`, a `jti`),
// and `authorization_details` in RFC 9396's shape: one Mercure detail
// (type https://mercure.rocks/authorization-detail) per action, each
// topic a `match` with its `match_type`, the payload on the subscribe
// detail only.
#[test]
fn a_draft_08_token_has_rfc_9068_claims_and_mercure_authorization_details() {
    let out = herald(
        &[
            "token",
            "--draft",
            "08",
            "--key",
            "s3cret",
            "--kid",
            "key-2026",
            "--issuer",
            "https://app.example",
            "--audience",
            "https://hub.example/.well-known/mercure",
            "--subject",
            "user-7",
            "--publish",
            "https://example.com/books/:id",
            "--subscribe",
            "https://example.com/books/:id",
            "https://example.com/users/7",
            "--match-type",
            "urlpattern",
            "--payload",
            "{\"user\":7}",
            "--exp",
            "30m",
        ],
        None,
    );
    let token = token_of(&out);
    let (header, claims) = decoded(&token, "s3cret");
    assert_eq!(
        header,
        serde_json::json!({"typ": "at+jwt", "alg": "HS256", "kid": "key-2026"})
    );
    assert_eq!(claims["iss"], "https://app.example");
    assert_eq!(claims["aud"], "https://hub.example/.well-known/mercure");
    assert_eq!(claims["sub"], "user-7");
    assert_eq!(claims["client_id"], "herald-cli");
    let iat = claims["iat"].as_u64().expect("a numeric iat");
    let exp = claims["exp"].as_u64().expect("a numeric exp");
    assert!(iat.abs_diff(now()) <= 5, "iat {iat}");
    assert!((1795..=1805).contains(&(exp - iat)), "exp {exp}, iat {iat}");
    assert!(
        claims["jti"]
            .as_str()
            .is_some_and(|j| j.starts_with("urn:uuid:")),
        "{claims}"
    );
    assert_eq!(
        claims["authorization_details"],
        serde_json::json!([
            {
                "type": "https://mercure.rocks/authorization-detail",
                "actions": ["publish"],
                "topics": [{"match": "https://example.com/books/:id", "match_type": "urlpattern"}],
            },
            {
                "type": "https://mercure.rocks/authorization-detail",
                "actions": ["subscribe"],
                "topics": [
                    {"match": "https://example.com/books/:id", "match_type": "urlpattern"},
                    {"match": "https://example.com/users/7", "match_type": "urlpattern"},
                ],
                "payload": {"user": 7},
            },
        ])
    );
    // The subject defaults to herald-cli (RFC 9068 requires one).
    let out = herald(
        &[
            "token",
            "--draft",
            "08",
            "--key",
            "s",
            "--issuer",
            "i",
            "--audience",
            "a",
            "--publish",
            "*",
        ],
        None,
    );
    let (header, claims) = decoded(&token_of(&out), "s");
    assert_eq!(header, serde_json::json!({"typ": "at+jwt", "alg": "HS256"}));
    assert_eq!(claims["sub"], "herald-cli");
    assert_eq!(
        claims["authorization_details"],
        serde_json::json!([{
            "type": "https://mercure.rocks/authorization-detail",
            "actions": ["publish"],
            "topics": [{"match": "*", "match_type": "exact"}],
        }])
    );
}

// Access tokens signed with an issuer's private key, ES256 and EdDSA, are
// accepted by a real `herald serve` that trusts the issuer's public key
// (a PEM file) with its default algorithms (EdDSA, ES256, RS256): a
// publish with each gets the update's id.
#[tokio::test]
async fn draft_08_tokens_signed_with_es256_and_eddsa_keys_are_accepted_by_a_real_hub() {
    let dir = TempDir::new("cli-token-issuer-keys");
    for (alg, private, public) in [
        ("ES256", EC_PRIVATE, EC_PUBLIC),
        ("EdDSA", ED_PRIVATE, ED_PUBLIC),
    ] {
        let private_file = dir.join(&format!("{alg}-private.pem"));
        let public_file = dir.join(&format!("{alg}-public.pem"));
        std::fs::write(&private_file, private).unwrap();
        std::fs::write(&public_file, public).unwrap();
        let hub = support::start_hub_async(
            "draft07-key",
            &[
                "--issuer",
                &format!("https://app.example={}", public_file.display()),
                "--protocol",
                "08",
            ],
        )
        .await;
        let out = herald(
            &[
                "token",
                "--draft",
                "08",
                "--alg",
                alg,
                "--key-file",
                &private_file.to_string_lossy(),
                "--issuer",
                "https://app.example",
                "--audience",
                &hub.url,
                "--publish",
                "news",
            ],
            None,
        );
        let token = token_of(&out);
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, alg.parse().unwrap(), "{alg}");
        assert_eq!(header.typ.as_deref(), Some("at+jwt"), "{alg}");
        let out = herald(
            &[
                "pub", "--hub", &hub.url, "--topic", "news", "--data", "x", "--token", &token,
            ],
            None,
        );
        assert!(
            out.status.success(),
            "{alg}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("urn:uuid:"),
            "{alg}"
        );
    }
}

// Options that make no sense for the token asked for are refused, saying
// what to do, and nothing is printed on stdout.
#[test]
fn draft_08_errors_say_what_to_do() {
    let draft08 = ["token", "--draft", "08", "--key", "k"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut args = draft08.to_vec();
        args.extend_from_slice(extra);
        args
    };
    let cases: Vec<(Vec<&str>, &str)> =
        vec![
        (with(&["--audience", "a"]), "--draft 08 needs --issuer"),
        (with(&["--issuer", "i"]), "--draft 08 needs --audience"),
        (
            with(&["--issuer", "i", "--audience", "a", "--exp", "none"]),
            "an access token must expire",
        ),
        (
            with(&["--issuer", "i", "--audience", "a", "--match-type", "regex"]),
            "use exact or urlpattern",
        ),
        (
            with(&["--issuer", "i", "--audience", "a", "--subscribe", "*", "--payload", "[1]"]),
            "--payload must be a JSON object",
        ),
        (
            with(&["--issuer", "i", "--audience", "a", "--publish", "*", "--payload", "{}"]),
            "--payload goes in the subscribe authorization detail with --draft 08: add --subscribe",
        ),
        (
            vec!["token", "--key", "k", "--kid", "1", "--match-type", "urlpattern"],
            "--kid and --match-type are for draft-08 access tokens: add --draft 08",
        ),
        (
            vec!["token", "--key", "k", "--issuer", "i"],
            "--issuer is for draft-08 access tokens: add --draft 08",
        ),
        (
            vec!["token", "--key", "k", "--alg", "EdDSA"],
            "EdDSA signs draft-08 access tokens only: add --draft 08",
        ),
    ];
    for (args, want) in cases {
        let out = herald(&args, None);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
