//! `herald serve --tls-cert/--tls-key` with what operators bring: a key in
//! a legacy encoding (PKCS#1 for RSA, SEC1 for EC, as `openssl genrsa` and
//! `openssl ecparam` write them) and a certificate chain from a CA (the
//! leaf, then an intermediate). The whole chain must be served, so a
//! client that trusts only the CA verifies the leaf.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::CertificateDer;
use support::tls::{connect, h2_client, h2_get, served_chain, trusting};
use support::{serve_command, start, TempDir};

/// The fixture keys (see `fixtures/README.md`): each in the encoding the
/// server reads, and the same key as PKCS#8 for rcgen.
const RSA_PKCS1: &str = include_str!("fixtures/rsa-pkcs1.pem");
const RSA_PKCS8: &str = include_str!("fixtures/rsa-pkcs8.pem");
const EC_SEC1: &str = include_str!("fixtures/ec-sec1.pem");
const EC_PKCS8: &str = include_str!("fixtures/ec-pkcs8.pem");

/// A test CA, an intermediate it signed, and a leaf for `localhost` that
/// the intermediate signed, made fresh for each test.
struct Chain {
    ca: CertificateDer<'static>,
    intermediate: CertificateDer<'static>,
    leaf: CertificateDer<'static>,
    /// The chain file an operator installs: the leaf, then the
    /// intermediate.
    pem: String,
}

impl Chain {
    /// The leaf certifies the public half of `leaf_key_pkcs8`.
    fn new(leaf_key_pkcs8: &str) -> Chain {
        let ca = CertifiedIssuer::self_signed(
            ca_params("Herald test CA", BasicConstraints::Unconstrained),
            KeyPair::generate().unwrap(),
        )
        .unwrap();
        let intermediate = CertifiedIssuer::signed_by(
            ca_params("Herald test intermediate", BasicConstraints::Constrained(0)),
            KeyPair::generate().unwrap(),
            &ca,
        )
        .unwrap();
        let leaf_key = KeyPair::from_pem(leaf_key_pkcs8).unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &intermediate)
            .unwrap();
        Chain {
            pem: leaf.pem() + &intermediate.pem(),
            ca: ca.der().clone(),
            intermediate: intermediate.der().clone(),
            leaf: leaf.der().clone(),
        }
    }
}

fn ca_params(name: &str, constraints: BasicConstraints) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(constraints);
    params
}

/// Serves `chain` with `key_pem` through the binary and checks, with a
/// client that trusts only the CA, that the handshake verifies, the whole
/// chain is served, and HTTP/2 answers.
async fn serves_the_chain(chain: &Chain, key_pem: &str, dir_name: &str) {
    let dir = TempDir::new(dir_name);
    let (cert, key) = (dir.join("chain.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &chain.pem).unwrap();
    std::fs::write(&key, key_pem).unwrap();
    let served = start(serve_command(&[
        "--listen",
        "127.0.0.1:0",
        "--history",
        "memory",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]));
    let addr = &served.addr;
    let only_the_ca = trusting(std::slice::from_ref(&chain.ca), &[b"h2"]);
    let tls = connect(addr, only_the_ca, "localhost").await;
    assert!(
        served_chain(&tls) == [chain.leaf.clone(), chain.intermediate.clone()],
        "the served chain is not the leaf and the intermediate"
    );
    let mut h2 = h2_client(tls).await;
    let health = h2_get(&mut h2, addr, "/healthz").await;
    assert_eq!(health.version(), http::Version::HTTP_2);
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn a_pkcs1_rsa_key_with_a_ca_chain_serves_the_whole_chain() {
    assert!(RSA_PKCS1.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
    serves_the_chain(&Chain::new(RSA_PKCS8), RSA_PKCS1, "tls-pkcs1").await;
}

#[tokio::test]
async fn a_sec1_ec_key_with_a_ca_chain_serves_the_whole_chain() {
    assert!(EC_SEC1.starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
    serves_the_chain(&Chain::new(EC_PKCS8), EC_SEC1, "tls-sec1").await;
}
