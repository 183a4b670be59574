//! Access-token keys from a JWKS URL: rotation without a restart, and a
//! bounded refetch rate (draft-08 §Token Validation), against a real HTTP
//! server on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use herald_hub::access_token::{
    mint, AccessTokenConfig, AccessTokenVerifier, IssuerConfig, KeySource, MERCURE_DETAIL_TYPE,
};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{json, Map, Value};

const ED_PRIVATE: &[u8] = include_bytes!("fixtures/ed25519_private.pem");
const ED_PUBLIC: &[u8] = include_bytes!("fixtures/ed25519_public.pem");
const RSA_PRIVATE: &[u8] = include_bytes!("fixtures/rsa_private.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("fixtures/rsa_public.pem");
const ISSUER: &str = "https://issuer.example";
const RESOURCE: &str = "https://hub.example/.well-known/mercure";

/// The issuer's JWKS endpoint: serves what the test puts there and counts
/// the requests.
#[derive(Clone, Default)]
struct Issuer {
    document: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
}

impl Issuer {
    fn publish(&self, keys: &[(&str, &[u8], Algorithm)]) {
        let keys: Vec<Value> = keys
            .iter()
            .map(|(kid, pem, alg)| {
                let key = match alg {
                    Algorithm::EdDSA => DecodingKey::from_ed_pem(pem).unwrap(),
                    _ => DecodingKey::from_rsa_pem(pem).unwrap(),
                };
                let mut jwk =
                    serde_json::to_value(Jwk::from_decoding_key(&key, Some(*alg)).unwrap())
                        .unwrap();
                jwk["kid"] = json!(kid);
                jwk["use"] = json!("sig");
                jwk
            })
            .collect();
        *self.document.lock().unwrap() = json!({"keys": keys}).to_string();
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    async fn serve(&self) -> String {
        async fn jwks(State(issuer): State<Issuer>) -> String {
            issuer.fetches.fetch_add(1, Ordering::SeqCst);
            issuer.document.lock().unwrap().clone()
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/jwks.json", get(jwks))
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

async fn verifier(url: String, min_refetch: Duration) -> AccessTokenVerifier {
    let mut config = AccessTokenConfig::new(
        RESOURCE,
        vec![IssuerConfig {
            issuer: ISSUER.into(),
            keys: vec![KeySource::JwksUrl(url)],
        }],
    );
    config.jwks.min_refetch = min_refetch;
    let verifier = AccessTokenVerifier::new(config).unwrap();
    verifier.refresh_keys().await;
    verifier
}

// A key rotation at the issuer: a token signed with the new key is accepted
// (its unknown kid makes the hub fetch the keys again), one signed with the
// retired key is refused.
#[tokio::test]
async fn keys_rotate_without_a_restart() {
    let issuer = Issuer::default();
    issuer.publish(&[("old", ED_PUBLIC, Algorithm::EdDSA)]);
    let verifier = verifier(issuer.serve().await, Duration::ZERO).await;
    assert_eq!(issuer.fetches(), 1);
    let old = mint(Algorithm::EdDSA, ED_PRIVATE, Some("old"), &claims()).unwrap();
    verifier.verify(&old).await.unwrap();
    assert_eq!(issuer.fetches(), 1, "a known kid needs no fetch");

    issuer.publish(&[("new", RSA_PUBLIC, Algorithm::RS256)]);
    let new = mint(Algorithm::RS256, RSA_PRIVATE, Some("new"), &claims()).unwrap();
    verifier.verify(&new).await.unwrap();
    assert_eq!(issuer.fetches(), 2);
    let err = verifier.verify(&old).await.unwrap_err();
    assert!(err.to_string().contains("old"), "{err}");
}

// A burst of tokens with made-up kids does not make the hub hammer the
// issuer: within the refetch interval, no fetch at all.
#[tokio::test]
async fn unknown_kids_refetch_at_a_bounded_rate() {
    let issuer = Issuer::default();
    issuer.publish(&[("k1", ED_PUBLIC, Algorithm::EdDSA)]);
    let verifier = verifier(issuer.serve().await, Duration::from_secs(3600)).await;
    let burst = (0..20).map(|i| {
        let verifier = verifier.clone();
        async move {
            let token = mint(
                Algorithm::EdDSA,
                ED_PRIVATE,
                Some(&format!("made-up-{i}")),
                &claims(),
            )
            .unwrap();
            verifier.verify(&token).await
        }
    });
    for result in futures_util::future::join_all(burst).await {
        assert!(result.is_err());
    }
    assert_eq!(issuer.fetches(), 1, "only the fetch at start");
    let k1 = mint(Algorithm::EdDSA, ED_PRIVATE, Some("k1"), &claims()).unwrap();
    verifier.verify(&k1).await.unwrap();
}

// A key set that cannot be read (an empty answer here) keeps the keys
// fetched before: an issuer outage locks no valid token out.
#[tokio::test]
async fn a_broken_key_set_keeps_the_keys_it_had() {
    let issuer = Issuer::default();
    issuer.publish(&[("k1", ED_PUBLIC, Algorithm::EdDSA)]);
    let verifier = verifier(issuer.serve().await, Duration::ZERO).await;
    issuer.document.lock().unwrap().clear();
    verifier.refresh_keys().await;
    assert_eq!(issuer.fetches(), 2);
    let k1 = mint(Algorithm::EdDSA, ED_PRIVATE, Some("k1"), &claims()).unwrap();
    verifier.verify(&k1).await.unwrap();
}
