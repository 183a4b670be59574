//! What the token targets share: the fixed keys and verifiers, and a way
//! to run the access-token verifier's future without a runtime.

use std::future::Future;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use herald_hub::access_token::{AccessTokenConfig, AccessTokenVerifier, IssuerConfig, KeySource};
use herald_hub::auth::JwtVerifier;
use jsonwebtoken::Algorithm;

/// The HS256 secret of both verifiers (and of the seeds' tokens).
pub const SECRET: &[u8] = b"!ChangeThisMercureHubJWTSecretKey!";
/// The one trusted access-token issuer.
pub const ISSUER: &str = "https://issuer.example";
/// The hub's resource identifier, which `aud` must hold.
pub const RESOURCE: &str = "https://hub.example/.well-known/mercure";
/// The time every verification is made at (2027-01-15), so that runs are
/// reproducible.
pub const NOW: u64 = 1_800_000_000;
/// Seconds of leeway of the access-token verifier.
pub const LEEWAY: u64 = 5;

/// The public half of the Ed25519 key pair of the hub's test fixtures.
const ED_PUBLIC: &str = include_str!("../../../tests/fixtures/ed25519_public.pem");

/// The draft-07 verifier: HS256 with [`SECRET`].
pub fn jwt_verifier() -> &'static JwtVerifier {
    static VERIFIER: OnceLock<JwtVerifier> = OnceLock::new();
    VERIFIER.get_or_init(|| JwtVerifier::new(Algorithm::HS256, SECRET).expect("a valid secret"))
}

/// The draft-08 verifier: [`ISSUER`] with [`SECRET`] (HS256 allowed) and
/// the Ed25519 public key, fixed keys only (it never fetches anything).
pub fn access_verifier() -> &'static AccessTokenVerifier {
    static VERIFIER: OnceLock<AccessTokenVerifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let mut config = AccessTokenConfig::new(
            RESOURCE,
            vec![IssuerConfig {
                issuer: ISSUER.into(),
                keys: vec![
                    KeySource::Secret(SECRET.to_vec()),
                    KeySource::Pem(ED_PUBLIC.into()),
                ],
            }],
        );
        config.algorithms.push(Algorithm::HS256);
        config.leeway = LEEWAY;
        AccessTokenVerifier::new(config).expect("a valid configuration")
    })
}

/// Runs a future that must not wait: the access-token verifier with fixed
/// keys never does (only fetching keys from a URL would).
pub fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("verifying with fixed keys waited for something"),
    }
}
