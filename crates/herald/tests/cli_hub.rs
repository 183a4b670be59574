//! `herald pub`, `herald sub` and `herald token` against the real hub
//! (`herald serve`), all as child processes of the test.

use std::process::{Output, Stdio};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use herald_hub::server::TlsConfig;

mod support;
use support::{herald_async, run_async, start_hub_async, AsyncHub, TempDir, DEADLINE};

const KEY: &str = "cli-hub-test-secret";

/// A hub on a free loopback port (heartbeats every second); killed when
/// dropped.
async fn start_hub() -> AsyncHub {
    start_hub_with(&[]).await
}

/// A hub started with these extra `herald serve` options.
async fn start_hub_with(extra: &[&str]) -> AsyncHub {
    let options = [&["--heartbeat", "1s"], extra].concat();
    start_hub_async(KEY, &options).await
}

async fn run(cmd: &mut Command) -> Output {
    run_async(cmd, "").await
}

async fn publish(hub: &AsyncHub, topic: &str, data: &str, extra: &[&str]) -> String {
    let out = run(herald_async()
        .args([
            "pub", "--hub", &hub.url, "--topic", topic, "--data", data, "--key", KEY,
        ])
        .args(extra))
    .await;
    assert!(
        out.status.success(),
        "pub failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `herald sub --hub HUB --topic TOPIC --last-event-id FROM --json --count
/// COUNT EXTRA...`: asserts that it succeeded and returns the events it
/// printed (one JSON object a line) and its stderr.
async fn sub_json(
    hub: &AsyncHub,
    topic: &str,
    from: &str,
    count: usize,
    extra: &[&str],
) -> (Vec<serde_json::Value>, String) {
    let count = count.to_string();
    let out = run(herald_async()
        .args([
            "sub",
            "--hub",
            &hub.url,
            "--topic",
            topic,
            "--last-event-id",
            from,
            "--json",
            "--count",
            &count,
        ])
        .args(extra))
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "sub failed: {stderr}");
    (json_lines(&out), stderr)
}

#[tokio::test]
async fn published_updates_replay_to_a_subscriber_from_earliest() {
    let hub = start_hub().await;
    let first = publish(&hub, "books/1", "one", &["--id", "b1"]).await;
    let second = publish(&hub, "books/1", "two", &["--type", "update"]).await;
    assert_eq!(first, "b1");
    assert!(!second.is_empty());
    let (events, _) = sub_json(&hub, "books/{id}", "earliest", 2, &[]).await;
    assert_eq!(
        events,
        [
            serde_json::json!({"id": "b1", "type": "message", "data": "one"}),
            serde_json::json!({"id": second, "type": "update", "data": "two"}),
        ]
    );
}

#[tokio::test]
async fn a_live_subscriber_receives_what_is_published() {
    let hub = start_hub().await;
    let mut sub = herald_async()
        .args([
            "sub", "--hub", &hub.url, "--topic", "news", "--json", "--count", "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(sub.stderr.take().unwrap()).lines();
    tokio::time::timeout(DEADLINE, async {
        while let Ok(Some(line)) = err.next_line().await {
            if line.contains("connected to") {
                return;
            }
        }
        panic!("herald sub never connected");
    })
    .await
    .unwrap();
    let id = publish(&hub, "news", "breaking", &[]).await;
    let out = tokio::time::timeout(DEADLINE, sub.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        json_lines(&out),
        [serde_json::json!({"id": id, "type": "message", "data": "breaking"})]
    );
}

#[tokio::test]
async fn private_updates_need_a_subscriber_token_from_herald_token() {
    let hub = start_hub().await;
    publish(&hub, "secret", "public", &["--id", "p1"]).await;
    publish(&hub, "secret", "private", &["--id", "p2", "--private"]).await;
    publish(&hub, "secret", "end", &["--id", "p3"]).await;
    let token = run(herald_async().args(["token", "--key", KEY, "--subscribe", "secret"])).await;
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();

    let datas = |events: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
        events.into_iter().map(|v| v["data"].clone()).collect()
    };
    let (anonymous, _) = sub_json(&hub, "secret", "earliest", 2, &[]).await;
    assert_eq!(datas(anonymous), ["public", "end"]);
    let (authorised, _) = sub_json(&hub, "secret", "earliest", 3, &["--token", &token]).await;
    assert_eq!(datas(authorised), ["public", "private", "end"]);
}

#[tokio::test]
async fn publishing_without_a_token_is_refused_with_a_hint() {
    let hub = start_hub().await;
    let out =
        run(herald_async().args(["pub", "--hub", &hub.url, "--topic", "t", "--data", "d"])).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("401"), "{err}");
    assert!(err.contains("--token"), "{err}");
}

#[tokio::test]
async fn sub_warns_when_the_hub_does_not_know_its_last_event_id() {
    let hub = start_hub().await;
    publish(&hub, "t", "kept", &["--id", "k1"]).await;
    let (events, err) = sub_json(&hub, "t", "never-published", 1, &[]).await;
    assert!(err.contains("no longer knows id never-published"), "{err}");
    assert_eq!(
        events,
        [serde_json::json!({"id": "k1", "type": "message", "data": "kept"})]
    );
}

/// A fresh self-signed certificate for `localhost` and 127.0.0.1 (made
/// now, so always valid) and its key, written as PEM files to a scratch
/// directory: the directory and the two paths.
fn tls_files(name: &str) -> (TempDir, String, String) {
    let tls = TlsConfig::self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
    let dir = TempDir::new(&format!("cli-{name}"));
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, tls.certificate_pem()).unwrap();
    std::fs::write(&key, tls.private_key_pem()).unwrap();
    let (cert, key) = (
        cert.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    );
    (dir, cert, key)
}

#[tokio::test]
async fn pub_and_sub_over_https_with_cacert() {
    let (_dir, cert, key) = tls_files("cacert");
    let hub = start_hub_with(&["--tls-cert", &cert, "--tls-key", &key]).await;
    assert!(hub.url.starts_with("https://"), "{}", hub.url);
    let id = publish(&hub, "t", "secure", &["--cacert", &cert]).await;
    let (events, _) = sub_json(&hub, "t", "earliest", 1, &["--cacert", &cert]).await;
    assert_eq!(
        events,
        [serde_json::json!({"id": id, "type": "message", "data": "secure"})]
    );
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_with_a_hint_and_insecure_accepts_it() {
    let (dir, cert, key) = tls_files("insecure");
    let hub = start_hub_with(&["--tls-cert", &cert, "--tls-key", &key]).await;
    drop(dir); // the hub read them at start; it needs them no more
    let refused = run(herald_async().args([
        "pub", "--hub", &hub.url, "--topic", "t", "--data", "d", "--key", KEY,
    ]))
    .await;
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("certificate"), "{err}");
    assert!(
        err.contains("--cacert") && err.contains("--insecure"),
        "{err}"
    );

    let sub = run(herald_async().args([
        "sub",
        "--hub",
        &hub.url,
        "--topic",
        "t",
        "--max-attempts",
        "0",
    ]))
    .await;
    assert_eq!(sub.status.code(), Some(1));
    let err = String::from_utf8_lossy(&sub.stderr);
    assert!(
        err.contains("certificate") && err.contains("--insecure"),
        "{err}"
    );

    let id = publish(&hub, "t", "anyway", &["--insecure", "--id", "i1"]).await;
    assert_eq!(id, "i1");
    let (events, _) = sub_json(&hub, "t", "earliest", 1, &["-k"]).await;
    assert_eq!(
        events,
        [serde_json::json!({"id": "i1", "type": "message", "data": "anyway"})]
    );
}
