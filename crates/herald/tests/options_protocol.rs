//! `--protocol` and `--hub-url` through the binary, from a flag, the
//! environment and the config file, and their refusals.

mod support;
mod support_options;
use support::TempDir;
use support_options::{
    assert_refused, get, publish_as, publish_ok, run_to_exit, send, serve_keyed, start, subscribe,
    token,
};

/// The relative pattern `/books/:id` selects topics under the hub URL's
/// origin, whatever spelling the publisher used.
#[tokio::test]
async fn hub_url_is_the_base_of_relative_patterns() {
    let hub = start(serve_keyed(&[
        "--hub-url",
        "https://hub.example.com/.well-known/mercure",
    ]))
    .await;
    let mut sub = subscribe(&hub, "match_urlpattern=%2Fbooks%2F%3Aid", &[]).await;
    publish_ok(
        &hub,
        "topic=https%3A%2F%2Fother.example%2Fbooks%2F1&id=other",
    )
    .await;
    publish_ok(
        &hub,
        "topic=https%3A%2F%2Fhub.example.com%2Fbooks%2F2&id=absolute",
    )
    .await;
    publish_ok(&hub, "topic=%2Fbooks%2F3&id=relative").await;
    assert_eq!(sub.ids_until("relative").await, ["absolute", "relative"]);
    // The reserved namespace follows the hub URL's path.
    let reply = publish_as(&hub, &token(), "topic=%2F.well-known%2Fmercure%2Fx").await;
    assert_eq!(reply.status, 400, "{}", reply.body);
}

/// `--protocol 08` refuses draft-07 subscriptions; `HERALD_PROTOCOL=07`
/// refuses draft-08 ones; `protocol = "both"` in the file takes either.
#[tokio::test]
async fn protocol_from_flag_environment_and_file() {
    let query = |hub: &support::AsyncHub, q: &str| get(&format!("{}?{q}", hub.url));

    let hub = start(serve_keyed(&["--protocol", "08"])).await;
    let reply = send(query(&hub, "topic=a")).await;
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("--protocol 08"), "{}", reply.body);

    let mut cmd = serve_keyed(&[]);
    cmd.env("HERALD_PROTOCOL", "07");
    let hub = start(cmd).await;
    let reply = send(query(&hub, "match=a")).await;
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("--protocol 07"), "{}", reply.body);

    let dir = TempDir::new("protocol-file");
    let file = dir.0.join("herald.toml");
    std::fs::write(&file, "protocol = \"both\"\n").unwrap();
    let hub = start(serve_keyed(&["--config", file.to_str().unwrap()])).await;
    for q in ["topic=a", "match=a"] {
        let sub = subscribe(&hub, q, &[]).await;
        assert_eq!(sub.status, 200, "{q}");
    }
}

#[tokio::test]
async fn bad_values_are_refused_at_start() {
    let out = run_to_exit(serve_keyed(&["--protocol", "09"])).await;
    assert_refused(&out, "--protocol");
    let out = run_to_exit(serve_keyed(&["--hub-url", "/.well-known/mercure"])).await;
    assert_refused(&out, "invalid --hub-url");
}

/// `--subscriptions on` turns on active subscriptions: the metadata says
/// so, the API answers a token that may read it, and it lists a live
/// subscriber; without it there is no API.
#[tokio::test]
async fn subscriptions_switch_turns_on_events_and_the_api() {
    let off = start(serve_keyed(&[])).await;
    let api = |hub: &support::AsyncHub| {
        let base = hub.url.trim_end_matches("/.well-known/mercure");
        http::Request::get(format!("{base}/.well-known/mercure/subscriptions"))
            .header("authorization", format!("Bearer {}", token()))
            .body(http_body_util::Full::default())
            .unwrap()
    };
    assert_eq!(send(api(&off)).await.status, 404);

    let hub = start(serve_keyed(&["--subscriptions", "on"])).await;
    let _reader = subscribe(&hub, "match=https%3A%2F%2Fexample.com%2Fa", &[]).await;
    let reply = send(api(&hub)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let list: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(list["subscriptions"][0]["match"], "https://example.com/a");
}

/// Without `--hub-url` the hub URL is the address actually bound: a hub
/// started on port 0 names its real port in its metadata.
#[tokio::test]
async fn the_default_hub_url_has_the_port_bound() {
    let hub = start(serve_keyed(&[])).await;
    let base = hub.url.trim_end_matches("/.well-known/mercure");
    let reply = send(get(&format!(
        "{base}/.well-known/oauth-protected-resource/.well-known/mercure"
    )))
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let metadata: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(metadata["resource"], hub.url.as_str());
    assert!(!hub.url.contains(":0/"), "{}", hub.url);
}

/// `herald token --draft 08` mints an access token that a hub started with
/// `--issuer` accepts for publishing; the hub refuses one for another
/// audience (draft-08 §Token Validation: `aud`).
#[tokio::test]
async fn issuer_flags_and_draft08_tokens_from_herald_token() {
    let hub = start(serve_keyed(&[
        "--issuer",
        "https://app.example=secret:access-secret",
        "--access-token-alg",
        "HS256",
    ]))
    .await;
    let mint = |audience: &str| {
        let out = support::output(support::herald_command().args([
            "token",
            "--draft",
            "08",
            "--key",
            "access-secret",
            "--issuer",
            "https://app.example",
            "--audience",
            audience,
            "--publish",
            "https://example.com/books/:id",
            "--match-type",
            "urlpattern",
        ]));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let token = mint(&hub.url);
    let reply = publish_as(&hub, &token, "topic=https%3A%2F%2Fexample.com%2Fbooks%2F1").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = publish_as(
        &hub,
        &token,
        "topic=https%3A%2F%2Fexample.com%2Fauthors%2F1",
    )
    .await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    let elsewhere = mint("https://other-hub.example/.well-known/mercure");
    let reply = publish_as(
        &hub,
        &elsewhere,
        "topic=https%3A%2F%2Fexample.com%2Fbooks%2F1",
    )
    .await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert!(reply.body.contains("aud"), "{}", reply.body);
}

/// A malformed `--issuer` is refused at start, saying what is wrong.
#[tokio::test]
async fn a_malformed_issuer_is_refused() {
    let out = run_to_exit(serve_keyed(&["--issuer", "https://app.example"])).await;
    assert_refused(&out, "ISSUER=KEYS");
    let out = run_to_exit(serve_keyed(&[
        "--issuer",
        "https://app.example=/no/such/file",
    ]))
    .await;
    assert_refused(&out, "cannot read");
    let out = run_to_exit(serve_keyed(&["--resource", "https://hub.example"])).await;
    assert_refused(&out, "--issuer");
}
