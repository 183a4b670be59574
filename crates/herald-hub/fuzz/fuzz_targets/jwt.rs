//! Fuzz target for token verification past the signature: the harness
//! signs whatever header and claims the fuzzer writes, so that both
//! verifiers get to read them (a fuzzer cannot forge a signature, and
//! random tokens never get past it).
//!
//! The first byte chooses the key (the trusted secret with HS256, the
//! trusted Ed25519 key, or an untrusted secret); the rest is the header's
//! JSON, LF, the claims' bytes. Invariants checked:
//! 1. nothing panics, verifying or compiling the granted matchers (but
//!    for urlpattern's known underflow, which herald-hub catches: see
//!    `known_panic`);
//! 2. a token signed with an untrusted key is accepted by neither verifier;
//! 3. claims the draft-07 verifier accepts have not expired, and minted
//!    again (`auth::mint`) verify to the same claims;
//! 4. an access token the verifier accepts is an `at+jwt` of the trusted
//!    issuer, not expired (leeway included), with at most 64 details whose
//!    matchers compile (only a URL pattern may fail), and minted again
//!    (`access_token::mint`) verifies to the same token.
#![no_main]

mod common;
mod known_panic;

use std::sync::OnceLock;

use herald_hub::access_token::{self, is_access_token, AccessTokenError};
use herald_hub::auth::{self, AuthError};
use herald_hub::fuzzing::CompiledMatcher;
use herald_hub::{HubUrl, MatchType};
use herald_hub::fuzzing::TopicMatcher;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;

/// Unpadded base64url, as JWS uses.
fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 3);
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

/// The private half of the Ed25519 key the access-token verifier trusts.
const ED_PRIVATE: &[u8] = include_bytes!("../../tests/fixtures/ed25519_private.pem");

fn ed_key() -> &'static EncodingKey {
    static KEY: OnceLock<EncodingKey> = OnceLock::new();
    KEY.get_or_init(|| EncodingKey::from_ed_pem(ED_PRIVATE).expect("the fixture key"))
}

fuzz_target!(|input: &[u8]| {
    known_panic::tolerate();
    let Some((&flags, rest)) = input.split_first() else {
        return;
    };
    let (header, claims) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b""[..]),
    };
    let message = format!("{}.{}", b64(header), b64(claims));
    let untrusted = EncodingKey::from_secret(b"not the hub's secret");
    let trusted = EncodingKey::from_secret(common::SECRET);
    let (key, alg, forged) = match flags % 3 {
        0 => (&trusted, Algorithm::HS256, false),
        1 => (ed_key(), Algorithm::EdDSA, false),
        _ => (&untrusted, Algorithm::HS256, true),
    };
    let Ok(signature) = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg) else {
        return;
    };
    let token = format!("{message}.{signature}");
    let base = HubUrl::default();

    match common::jwt_verifier().verify_at(&token, common::NOW) {
        Ok(claims) => {
            assert!(
                !forged,
                "a token signed with another key is accepted: {claims:?}"
            );
            assert!(
                claims.exp.is_none_or(|exp| common::NOW < exp),
                "expired: {claims:?}"
            );
            let templates = TopicMatcher::new(4);
            for selector in claims.publish.iter().chain(&claims.subscribe).flatten() {
                let _ = CompiledMatcher::selector(selector, &templates).matches(selector, &base);
            }
            let again = auth::mint(Algorithm::HS256, common::SECRET, &claims)
                .map(|t| common::jwt_verifier().verify_at(&t, common::NOW));
            assert_eq!(again, Ok(Ok(claims)), "claims → mint → verify");
        }
        Err(AuthError::InvalidKey(why) | AuthError::Signing(why)) => {
            panic!("a token is refused for the key's sake: {why}")
        }
        Err(_) => {}
    }

    match common::ready(common::access_verifier().verify_at(&token, common::NOW)) {
        Ok(access) => {
            assert!(
                !forged,
                "an access token signed with another key is accepted: {access:?}"
            );
            assert!(is_access_token(&token), "accepted without typ at+jwt");
            assert_eq!(access.issuer, common::ISSUER);
            assert!(
                common::NOW < access.expires + common::LEEWAY,
                "expired: {access:?}"
            );
            assert!(
                access.details.len() <= 64,
                "{} details",
                access.details.len()
            );
            for grant in access.details.iter().flat_map(|d| &d.topics) {
                match CompiledMatcher::typed(grant.match_type, &grant.pattern, &base) {
                    Ok(m) => {
                        let _ = m.matches(&grant.pattern, &base);
                    }
                    Err(_) => assert_eq!(grant.match_type, MatchType::UrlPattern, "{grant:?}"),
                }
            }
            let again = access_token::mint(Algorithm::HS256, common::SECRET, None, &access.claims)
                .map(|t| common::ready(common::access_verifier().verify_at(&t, common::NOW)));
            match again {
                Ok(Ok(same)) => assert_eq!(same, access, "token → mint → verify"),
                other => panic!("an accepted token's claims, minted again, are refused: {other:?}"),
            }
        }
        Err(AccessTokenError::KeysUnavailable { .. }) => panic!("fixed keys are unavailable"),
        Err(_) => {}
    }
});
