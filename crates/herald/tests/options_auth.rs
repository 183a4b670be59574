//! The key options through the binary: `--jwt-key-file` with RS256 and
//! ES256 public keys, separate publisher and subscriber keys (each
//! refusing the other's tokens), and precedence between the sources for
//! keys given inline or as files.

use bytes::Bytes;
use http_body_util::Full;
use jsonwebtoken::Algorithm;

mod support;
mod support_options;
use support::{AsyncHub, TempDir};
use support_options::keys::{
    EC_A_PRIVATE, EC_A_PUBLIC, EC_B_PRIVATE, EC_B_PUBLIC, RSA_PRIVATE, RSA_PUBLIC,
};
use support_options::{
    assert_refused, publish_as, run_to_exit, send, serve, start, subscribe, token_with, KEY,
};

/// Writes each `(name, contents)` into `dir` and returns the paths.
fn write_keys<const N: usize>(dir: &TempDir, keys: [(&str, &str); N]) -> [String; N] {
    keys.map(|(name, contents)| {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path.to_str().unwrap().to_owned()
    })
}

/// `herald serve` with memory history and no key option yet.
fn serve_bare(extra: &[&str]) -> tokio::process::Command {
    let mut cmd = serve(&["--history", "memory"]);
    cmd.args(extra);
    cmd
}

/// The status of a publish signed with `alg` and `key`.
async fn publish_status(hub: &AsyncHub, alg: Algorithm, key: &str) -> u16 {
    let reply = publish_as(hub, &token_with(alg, key.as_bytes()), "topic=t&data=x").await;
    if reply.status != 200 {
        let challenge = reply.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\""),
            "{challenge}"
        );
    }
    reply.status
}

/// The status of a subscription with a token signed with `alg` and `key`.
async fn subscribe_status(hub: &AsyncHub, alg: Algorithm, key: &str) -> u16 {
    let request = http::Request::get(format!("{}?topic=t", hub.url))
        .header(
            "authorization",
            format!("Bearer {}", token_with(alg, key.as_bytes())),
        )
        .body(Full::<Bytes>::default())
        .unwrap();
    // A refused subscription has a finite body; an admitted one is
    // checked with `assert_receives_private` instead.
    send(request).await.status
}

/// Asserts that a subscriber with a token signed by `(sub_alg, sub_key)`
/// receives a private update published with `(pub_alg, pub_key)`.
async fn assert_receives_private(
    hub: &AsyncHub,
    (pub_alg, pub_key): (Algorithm, &str),
    (sub_alg, sub_key): (Algorithm, &str),
) {
    let bearer = format!("Bearer {}", token_with(sub_alg, sub_key.as_bytes()));
    let mut stream = subscribe(hub, "topic=t", &[("authorization", &bearer)]).await;
    assert_eq!(stream.next_block().await.as_deref(), Some(":\n\n"));
    let published = publish_as(
        hub,
        &token_with(pub_alg, pub_key.as_bytes()),
        "topic=t&id=secret&private=on&data=for+subscribers",
    )
    .await;
    assert_eq!(published.status, 200, "{}", published.body);
    assert_eq!(
        stream.next_block().await.as_deref(),
        Some("id: secret\ndata: for subscribers\n\n")
    );
}

#[tokio::test]
async fn jwt_key_file_with_an_rsa_public_key_verifies_rs256_tokens() {
    let dir = TempDir::new("options-auth-rs256");
    let [public] = write_keys(&dir, [("rsa.pub", RSA_PUBLIC)]);
    let hub = start(serve_bare(&[
        "--jwt-key-file",
        &public,
        "--jwt-alg",
        "RS256",
    ]))
    .await;
    let rs = (Algorithm::RS256, RSA_PRIVATE);
    assert_receives_private(&hub, rs, rs).await;
    // A token signed with another key or algorithm is refused.
    assert_eq!(publish_status(&hub, Algorithm::HS256, KEY).await, 401);
    assert_eq!(
        publish_status(&hub, Algorithm::ES256, EC_A_PRIVATE).await,
        401
    );
    assert_eq!(subscribe_status(&hub, Algorithm::HS256, KEY).await, 401);
}

#[tokio::test]
async fn jwt_key_file_from_the_environment_verifies_es256_tokens() {
    let dir = TempDir::new("options-auth-es256");
    let [public] = write_keys(&dir, [("ec.pub", EC_A_PUBLIC)]);
    let mut cmd = serve_bare(&[]);
    cmd.env("HERALD_JWT_KEY_FILE", &public)
        .env("HERALD_JWT_ALG", "es256");
    let hub = start(cmd).await;
    let es = (Algorithm::ES256, EC_A_PRIVATE);
    assert_receives_private(&hub, es, es).await;
    assert_eq!(
        publish_status(&hub, Algorithm::ES256, EC_B_PRIVATE).await,
        401
    );
    assert_eq!(
        subscribe_status(&hub, Algorithm::ES256, EC_B_PRIVATE).await,
        401
    );
}

#[tokio::test]
async fn separate_publisher_and_subscriber_keys_each_refuse_the_others_tokens() {
    let dir = TempDir::new("options-auth-separate");
    let [publisher, subscriber] =
        write_keys(&dir, [("pub.pem", EC_A_PUBLIC), ("sub.pem", EC_B_PUBLIC)]);
    let hub = start(serve_bare(&[
        "--jwt-alg",
        "ES256",
        "--publisher-jwt-key-file",
        &publisher,
        "--subscriber-jwt-key-file",
        &subscriber,
    ]))
    .await;
    let (a, b) = (
        (Algorithm::ES256, EC_A_PRIVATE),
        (Algorithm::ES256, EC_B_PRIVATE),
    );
    assert_receives_private(&hub, a, b).await;
    assert_eq!(publish_status(&hub, b.0, b.1).await, 401, "subscriber key");
    assert_eq!(subscribe_status(&hub, a.0, a.1).await, 401, "publisher key");
}

#[tokio::test]
async fn publisher_and_subscriber_keys_from_the_file_may_use_different_algorithms() {
    let dir = TempDir::new("options-auth-file-roles");
    let [publisher, subscriber] =
        write_keys(&dir, [("rsa.pub", RSA_PUBLIC), ("ec.pub", EC_A_PUBLIC)]);
    let file = dir.join("herald.toml");
    std::fs::write(
        &file,
        format!(
            "publisher-jwt-key-file = {publisher:?}\npublisher-jwt-alg = \"RS256\"\n\
             subscriber-jwt-key-file = {subscriber:?}\nsubscriber-jwt-alg = \"ES256\"\n"
        ),
    )
    .unwrap();
    let hub = start(serve_bare(&["--config", file.to_str().unwrap()])).await;
    let (rs, es) = (
        (Algorithm::RS256, RSA_PRIVATE),
        (Algorithm::ES256, EC_A_PRIVATE),
    );
    assert_receives_private(&hub, rs, es).await;
    assert_eq!(publish_status(&hub, es.0, es.1).await, 401);
    assert_eq!(subscribe_status(&hub, rs.0, rs.1).await, 401);
}

#[tokio::test]
async fn a_key_file_from_the_environment_wins_over_the_files_key_file() {
    let dir = TempDir::new("options-auth-env-file");
    let [from_env, from_file] = write_keys(&dir, [("a.pub", EC_A_PUBLIC), ("b.pub", EC_B_PUBLIC)]);
    let file = dir.join("herald.toml");
    std::fs::write(
        &file,
        format!("jwt-key-file = {from_file:?}\njwt-alg = \"ES256\"\n"),
    )
    .unwrap();
    let config = file.to_str().unwrap();

    let hub = start(serve_bare(&["--config", config])).await;
    assert_eq!(
        publish_status(&hub, Algorithm::ES256, EC_B_PRIVATE).await,
        200
    );
    assert_eq!(
        publish_status(&hub, Algorithm::ES256, EC_A_PRIVATE).await,
        401
    );

    let mut cmd = serve_bare(&["--config", config]);
    cmd.env("HERALD_JWT_KEY_FILE", &from_env);
    let hub = start(cmd).await;
    assert_eq!(
        publish_status(&hub, Algorithm::ES256, EC_A_PRIVATE).await,
        200
    );
    assert_eq!(
        publish_status(&hub, Algorithm::ES256, EC_B_PRIVATE).await,
        401
    );
}

#[tokio::test]
async fn a_key_from_the_environment_wins_over_the_files_key_of_the_other_kind() {
    // An inline key and a key file are one option given two ways: the
    // source of higher precedence wins whichever way each gives it.
    let dir = TempDir::new("options-auth-kinds");
    let [public] = write_keys(&dir, [("ec.pub", EC_A_PUBLIC)]);

    let file = dir.join("inline.toml");
    std::fs::write(&file, format!("jwt-key = {KEY:?}\n")).unwrap();
    let mut cmd = serve_bare(&["--config", file.to_str().unwrap()]);
    cmd.env("HERALD_JWT_KEY_FILE", &public)
        .env("HERALD_JWT_ALG", "ES256");
    let hub = start(cmd).await;
    assert_eq!(
        publish_status(&hub, Algorithm::ES256, EC_A_PRIVATE).await,
        200
    );
    assert_eq!(publish_status(&hub, Algorithm::HS256, KEY).await, 401);

    let file = dir.join("key-file.toml");
    std::fs::write(
        &file,
        format!("jwt-key-file = {public:?}\njwt-alg = \"ES256\"\n"),
    )
    .unwrap();
    let mut cmd = serve_bare(&["--config", file.to_str().unwrap()]);
    cmd.env("HERALD_JWT_KEY", KEY)
        .env("HERALD_JWT_ALG", "HS256");
    let hub = start(cmd).await;
    assert_eq!(publish_status(&hub, Algorithm::HS256, KEY).await, 200);
    assert_eq!(
        publish_status(&hub, Algorithm::ES256, EC_A_PRIVATE).await,
        401
    );
}

#[tokio::test]
async fn unusable_key_files_are_refused_at_start_with_the_reason() {
    let dir = TempDir::new("options-auth-bad");
    let [public] = write_keys(&dir, [("ec.pub", EC_A_PUBLIC)]);
    let missing = dir.join("missing.pem");

    let out = run_to_exit(serve_bare(&["--jwt-key-file", missing.to_str().unwrap()])).await;
    assert_refused(&out, "cannot read the key file");

    // An EC key for an RSA algorithm.
    let out = run_to_exit(serve_bare(&[
        "--jwt-key-file",
        &public,
        "--jwt-alg",
        "RS256",
    ]))
    .await;
    assert_refused(&out, "cannot start the hub");

    let out = run_to_exit(serve_bare(&["--jwt-key-file", &public, "--jwt-key", KEY])).await;
    assert_refused(&out, "cannot be used with");
}
