//! Access-token keys from a JWKS URL or file (draft-08 §Token Validation):
//! rotation without a restart, a bounded refetch rate, and an unreachable
//! key set told apart from an invalid token, against a real HTTP server on
//! loopback. Nothing here waits for time to pass: every count is exact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use herald_hub::access_token::{
    mint, AccessTokenConfig, AccessTokenError, AccessTokenVerifier, IssuerConfig, KeySource,
    MERCURE_DETAIL_TYPE,
};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{json, Map, Value};

const ED_PRIVATE: &[u8] = include_bytes!("fixtures/ed25519_private.pem");
const ED_PUBLIC: &[u8] = include_bytes!("fixtures/ed25519_public.pem");
const EC_PRIVATE: &[u8] = include_bytes!("fixtures/ec256_private.pem");
const EC_PUBLIC: &[u8] = include_bytes!("fixtures/ec256_public.pem");
const RSA_PRIVATE: &[u8] = include_bytes!("fixtures/rsa_private.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("fixtures/rsa_public.pem");
const ISSUER: &str = "https://issuer.example";
const RESOURCE: &str = "https://hub.example/.well-known/mercure";

/// A JWKS document of PEM public keys, each with its kid.
fn jwks(keys: &[(&str, &[u8], Algorithm)]) -> String {
    let keys: Vec<Value> = keys
        .iter()
        .map(|(kid, pem, alg)| {
            let key = match alg {
                Algorithm::EdDSA => DecodingKey::from_ed_pem(pem).unwrap(),
                Algorithm::ES256 => DecodingKey::from_ec_pem(pem).unwrap(),
                _ => DecodingKey::from_rsa_pem(pem).unwrap(),
            };
            let mut jwk =
                serde_json::to_value(Jwk::from_decoding_key(&key, Some(*alg)).unwrap()).unwrap();
            jwk["kid"] = json!(kid);
            jwk["use"] = json!("sig");
            jwk
        })
        .collect();
    json!({ "keys": keys }).to_string()
}

/// The issuer's JWKS endpoint: serves what the test puts there (or a 503
/// while `down`) and counts the requests.
#[derive(Clone, Default)]
struct Issuer {
    document: Arc<Mutex<String>>,
    down: Arc<AtomicBool>,
    fetches: Arc<AtomicUsize>,
}

impl Issuer {
    fn publish(&self, keys: &[(&str, &[u8], Algorithm)]) {
        *self.document.lock().unwrap() = jwks(keys);
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Serves the key set on loopback; returns its URL.
    async fn serve(&self) -> String {
        async fn jwks(State(issuer): State<Issuer>) -> (StatusCode, String) {
            issuer.fetches.fetch_add(1, Ordering::SeqCst);
            if issuer.down.load(Ordering::SeqCst) {
                return (StatusCode::SERVICE_UNAVAILABLE, String::new());
            }
            (StatusCode::OK, issuer.document.lock().unwrap().clone())
        }
        // Answers nothing, ever: for the fetch timeout.
        async fn silent() -> String {
            std::future::pending().await
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/jwks.json", get(jwks))
            .route("/silent", get(silent))
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/jwks.json")
    }
}

fn claims() -> Map<String, Value> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    json!({
        "iss": ISSUER, "aud": RESOURCE, "sub": "s", "client_id": "c", "iat": now, "jti": "j",
        "exp": now + 600,
        "authorization_details": [{"type": MERCURE_DETAIL_TYPE, "actions": ["subscribe"], "topics": [{"match": "*"}]}],
    })
    .as_object()
    .cloned()
    .unwrap()
}

fn ed_token(kid: &str) -> String {
    mint(Algorithm::EdDSA, ED_PRIVATE, Some(kid), &claims()).unwrap()
}

fn config(keys: Vec<KeySource>, min_refetch: Duration) -> AccessTokenConfig {
    let mut config = AccessTokenConfig::new(
        RESOURCE,
        vec![IssuerConfig {
            issuer: ISSUER.into(),
            keys,
        }],
    );
    config.jwks.min_refetch = min_refetch;
    config
}

/// A verifier of the issuer at `url`, its keys fetched once.
async fn verifier(url: String, min_refetch: Duration) -> AccessTokenVerifier {
    let verifier =
        AccessTokenVerifier::new(config(vec![KeySource::JwksUrl(url)], min_refetch)).unwrap();
    verifier.refresh_keys().await;
    verifier
}

// A key rotation at the issuer: a token signed with the new key is accepted
// (its unknown kid makes the hub fetch the keys again), one signed with the
// retired key is refused once the new set replaced the old.
#[tokio::test]
async fn keys_rotate_without_a_restart() {
    let issuer = Issuer::default();
    issuer.publish(&[("old", ED_PUBLIC, Algorithm::EdDSA)]);
    let verifier = verifier(issuer.serve().await, Duration::ZERO).await;
    assert_eq!(issuer.fetches(), 1);
    let old = ed_token("old");
    verifier.verify(&old).await.unwrap();
    assert_eq!(issuer.fetches(), 1, "a known kid needs no fetch");

    issuer.publish(&[("new", RSA_PUBLIC, Algorithm::RS256)]);
    let new = mint(Algorithm::RS256, RSA_PRIVATE, Some("new"), &claims()).unwrap();
    let token = verifier.verify(&new).await.unwrap();
    assert_eq!(token.issuer, ISSUER);
    assert_eq!(
        issuer.fetches(),
        2,
        "the unknown kid fetched the keys again"
    );

    // The retired key: its kid is unknown now, a fetch confirms it is gone.
    let err = verifier.verify(&old).await.unwrap_err();
    assert!(
        matches!(err, AccessTokenError::UnknownKey { .. }),
        "{err:?}"
    );
    assert!(err.is_invalid_token());
    assert!(err.to_string().contains("old"), "{err}");
    assert_eq!(issuer.fetches(), 3);
}

type Verdict = (
    String,
    Result<herald_hub::access_token::AccessToken, AccessTokenError>,
);

/// Verifies 16 tokens at once on the runtime's threads: half with the
/// known kid `k1`, half with kids the issuer never had.
fn burst(verifier: &AccessTokenVerifier, prefix: &str) -> Vec<tokio::task::JoinHandle<Verdict>> {
    (0..16)
        .map(|i| {
            let verifier = verifier.clone();
            let kid = if i % 2 == 0 {
                "k1".to_owned()
            } else {
                format!("{prefix}-{i}")
            };
            tokio::spawn(async move {
                let result = verifier.verify(&ed_token(&kid)).await;
                (kid, result)
            })
        })
        .collect()
}

// Tokens arriving together with kids the hub does not know share one
// fetch, and within the refetch interval no made-up kid fetches again: a
// flood of them cannot make the hub hammer the issuer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kids_share_one_fetch_per_interval() {
    let issuer = Issuer::default();
    issuer.publish(&[("k1", ED_PUBLIC, Algorithm::EdDSA)]);
    let url = issuer.serve().await;
    // Not fetched yet: the first tokens find no key at all.
    let verifier = AccessTokenVerifier::new(config(
        vec![KeySource::JwksUrl(url)],
        Duration::from_secs(3600),
    ))
    .unwrap();
    for task in futures_util::future::join_all(burst(&verifier, "made-up")).await {
        let (kid, result) = task.unwrap();
        match result {
            Ok(_) => assert_eq!(kid, "k1"),
            Err(e) => {
                assert_ne!(kid, "k1", "{e}");
                assert!(matches!(e, AccessTokenError::UnknownKey { .. }), "{e:?}");
            }
        }
    }
    assert_eq!(issuer.fetches(), 1, "one fetch for the whole burst");

    for task in futures_util::future::join_all(burst(&verifier, "invented")).await {
        let (kid, result) = task.unwrap();
        assert_eq!(result.is_ok(), kid == "k1", "{kid}: {result:?}");
    }
    assert_eq!(issuer.fetches(), 1, "no fetch within the interval");
}

// An issuer whose key set cannot be fetched: its tokens are not refused
// as invalid (the hub cannot tell), but as keys unavailable; once the
// issuer answers, they verify.
#[tokio::test]
async fn an_unreachable_key_set_is_not_the_tokens_fault() {
    let issuer = Issuer::default();
    issuer.publish(&[("k1", ED_PUBLIC, Algorithm::EdDSA)]);
    issuer.down.store(true, Ordering::SeqCst);
    let verifier = verifier(issuer.serve().await, Duration::ZERO).await;
    assert_eq!(issuer.fetches(), 1);

    let err = verifier.verify(&ed_token("k1")).await.unwrap_err();
    assert_eq!(
        err,
        AccessTokenError::KeysUnavailable {
            issuer: ISSUER.into()
        }
    );
    assert!(!err.is_invalid_token());
    assert_eq!(issuer.fetches(), 2, "the token asked for the keys again");

    issuer.down.store(false, Ordering::SeqCst);
    verifier.verify(&ed_token("k1")).await.unwrap();
    assert_eq!(issuer.fetches(), 3);
}

// A key set that cannot be fetched any more keeps the keys fetched before:
// an issuer outage locks no holder of a known key out. A kid the hub does
// not know cannot be judged meanwhile.
#[tokio::test]
async fn a_failing_refresh_keeps_the_keys_it_had() {
    let issuer = Issuer::default();
    issuer.publish(&[("k1", ED_PUBLIC, Algorithm::EdDSA)]);
    let verifier = verifier(issuer.serve().await, Duration::ZERO).await;

    // An empty answer, then an error status.
    issuer.document.lock().unwrap().clear();
    verifier.refresh_keys().await;
    issuer.down.store(true, Ordering::SeqCst);
    verifier.refresh_keys().await;
    assert_eq!(issuer.fetches(), 3);
    verifier.verify(&ed_token("k1")).await.unwrap();
    assert_eq!(issuer.fetches(), 3, "a known kid needs no fetch");
    let err = verifier.verify(&ed_token("k2")).await.unwrap_err();
    assert!(
        matches!(err, AccessTokenError::KeysUnavailable { .. }),
        "{err:?}"
    );
}

// The document size and the fetch time are bounded.
#[tokio::test]
async fn oversized_or_silent_key_sets_are_not_used() {
    let issuer = Issuer::default();
    issuer.publish(&[("k1", ED_PUBLIC, Algorithm::EdDSA)]);
    let url = issuer.serve().await;

    let mut small = config(vec![KeySource::JwksUrl(url.clone())], Duration::ZERO);
    small.jwks.max_document_bytes = 64;
    let small = AccessTokenVerifier::new(small).unwrap();
    small.refresh_keys().await;
    assert!(matches!(
        small.verify(&ed_token("k1")).await,
        Err(AccessTokenError::KeysUnavailable { .. })
    ));

    let silent_url = url.replace("/jwks.json", "/silent");
    let mut hasty = config(vec![KeySource::JwksUrl(silent_url)], Duration::ZERO);
    hasty.jwks.fetch_timeout = Duration::from_millis(200);
    let hasty = AccessTokenVerifier::new(hasty).unwrap();
    hasty.refresh_keys().await;
    assert!(matches!(
        hasty.verify(&ed_token("k1")).await,
        Err(AccessTokenError::KeysUnavailable { .. })
    ));
}

// Keys from a JWKS file, selected by kid; a kid the file does not have is
// refused as invalid, with no fetch to try.
#[tokio::test]
async fn keys_from_a_jwks_file() {
    let dir = std::env::temp_dir().join(format!("herald-access-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("jwks.json");
    std::fs::write(
        &file,
        jwks(&[
            ("ed", ED_PUBLIC, Algorithm::EdDSA),
            ("ec", EC_PUBLIC, Algorithm::ES256),
        ]),
    )
    .unwrap();
    let verifier =
        AccessTokenVerifier::new(config(vec![KeySource::JwksFile(file)], Duration::ZERO)).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    verifier.verify(&ed_token("ed")).await.unwrap();
    let ec = mint(Algorithm::ES256, EC_PRIVATE, Some("ec"), &claims()).unwrap();
    let token = verifier.verify(&ec).await.unwrap();
    assert!(token.details[0].subscribe);
    let err = verifier.verify(&ed_token("rotated")).await.unwrap_err();
    assert!(
        matches!(err, AccessTokenError::UnknownKey { .. }),
        "{err:?}"
    );
}

// A JWKS file rotated in place: a token naming a key the hub does not know
// makes it read the file again, so the new key verifies without a restart
// and the retired one stops verifying (no second read within
// `min_refetch`). A file that cannot be read keeps the keys it had.
#[tokio::test]
async fn a_jwks_file_rotates_without_a_restart() {
    let dir = std::env::temp_dir().join(format!("herald-jwks-rotate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("jwks.json");
    std::fs::write(&file, jwks(&[("old", ED_PUBLIC, Algorithm::EdDSA)])).unwrap();
    let verifier = AccessTokenVerifier::new(config(
        vec![KeySource::JwksFile(file.clone())],
        Duration::from_secs(3600),
    ))
    .unwrap();
    verifier.verify(&ed_token("old")).await.unwrap();

    std::fs::write(&file, jwks(&[("new", ED_PUBLIC, Algorithm::EdDSA)])).unwrap();
    verifier.verify(&ed_token("new")).await.unwrap();
    let err = verifier.verify(&ed_token("old")).await.unwrap_err();
    assert!(
        matches!(err, AccessTokenError::UnknownKey { .. }),
        "{err:?}"
    );

    std::fs::write(&file, "{ not json").unwrap();
    verifier.refresh_keys().await;
    verifier.verify(&ed_token("new")).await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

// Over HTTP, a token whose issuer's keys cannot be fetched is answered with
// a 503 and no `invalid_token` challenge: the client should retry, not go
// for a new token. Once the issuer answers, the same token subscribes.
#[tokio::test]
async fn over_http_unreachable_keys_are_a_503_not_a_401() {
    use axum::http::header::WWW_AUTHENTICATE;
    use herald_hub::HubConfig;
    use herald_hub::HubUrl;

    let issuer = Issuer::default();
    issuer.publish(&[("k1", ED_PUBLIC, Algorithm::EdDSA)]);
    issuer.down.store(true, Ordering::SeqCst);
    let keys = vec![KeySource::JwksUrl(issuer.serve().await)];
    let hub = common::start(HubConfig {
        hub_url: HubUrl::parse(RESOURCE).unwrap(),
        access_tokens: Some(config(keys, Duration::ZERO)),
        ..common::config()
    })
    .await;
    let bearer = format!("Bearer {}", ed_token("k1"));
    let headers = [("authorization", bearer.as_str())];

    let refused = common::subscribe(hub.addr, "match=*", &headers).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers.get(WWW_AUTHENTICATE).is_none());

    issuer.down.store(false, Ordering::SeqCst);
    let admitted = common::subscribe(hub.addr, "match=*", &headers).await;
    assert_eq!(admitted.status, StatusCode::OK);
}

// draft-08 §Protected Resource Metadata: the trusted issuers are listed as
// `authorization_servers` (omitted when tokens are self-issued), and the
// matcher types are said explicitly.
#[tokio::test]
async fn metadata_names_the_trusted_issuers_as_authorization_servers() {
    use herald_hub::HubConfig;
    use herald_hub::HubUrl;

    let metadata = |hub: &common::TestHub| {
        let url = format!(
            "http://{}/.well-known/oauth-protected-resource/.well-known/mercure",
            hub.addr
        );
        async move {
            let req = hyper::Request::get(url)
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap();
            let reply = common::request(req).await;
            assert_eq!(reply.status, StatusCode::OK);
            serde_json::from_str::<Value>(&reply.body).unwrap()
        }
    };
    let keys = vec![KeySource::Pem(
        String::from_utf8(ED_PUBLIC.to_vec()).unwrap(),
    )];
    let trusting = common::start(HubConfig {
        hub_url: HubUrl::parse(RESOURCE).unwrap(),
        access_tokens: Some(config(keys, Duration::ZERO)),
        ..common::config()
    })
    .await;
    let document = metadata(&trusting).await;
    assert_eq!(document["authorization_servers"], json!([ISSUER]));
    assert_eq!(
        document["mercure_matcher_types_supported"],
        json!(["exact", "urlpattern"])
    );

    let self_issued = common::start(common::config()).await;
    let document = metadata(&self_issued).await;
    assert!(
        document.get("authorization_servers").is_none(),
        "{document}"
    );
}
