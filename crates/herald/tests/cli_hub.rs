//! `herald pub`, `herald sub` and `herald token` against the real hub
//! (`herald serve`), all as child processes of the test.

use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

mod support;
use support::{herald_async, start_hub_async, AsyncHub};

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
    tokio::time::timeout(Duration::from_secs(20), cmd.stdin(Stdio::null()).output())
        .await
        .expect("herald did not finish within 20 s")
        .expect("cannot run herald")
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

#[tokio::test]
async fn published_updates_replay_to_a_subscriber_from_earliest() {
    let hub = start_hub().await;
    let first = publish(&hub, "books/1", "one", &["--id", "b1"]).await;
    let second = publish(&hub, "books/1", "two", &["--type", "update"]).await;
    assert_eq!(first, "b1");
    assert!(!second.is_empty());
    let out = run(herald_async().args([
        "sub",
        "--hub",
        &hub.url,
        "--topic",
        "books/{id}",
        "--last-event-id",
        "earliest",
        "--json",
        "--count",
        "2",
    ]))
    .await;
    assert!(
        out.status.success(),
        "sub failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        json_lines(&out),
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
    tokio::time::timeout(Duration::from_secs(20), async {
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
    let out = tokio::time::timeout(Duration::from_secs(20), sub.wait_with_output())
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

    let sub = |token: Option<&str>, count: &str| {
        let mut cmd = herald_async();
        cmd.args([
            "sub",
            "--hub",
            &hub.url,
            "--topic",
            "secret",
            "--last-event-id",
            "earliest",
            "--json",
            "--count",
            count,
        ]);
        if let Some(token) = token {
            cmd.args(["--token", token]);
        }
        cmd
    };
    let anonymous = run(&mut sub(None, "2")).await;
    let datas: Vec<_> = json_lines(&anonymous)
        .iter()
        .map(|v| v["data"].clone())
        .collect();
    assert_eq!(datas, ["public", "end"]);
    let authorised = run(&mut sub(Some(&token), "3")).await;
    let datas: Vec<_> = json_lines(&authorised)
        .iter()
        .map(|v| v["data"].clone())
        .collect();
    assert_eq!(datas, ["public", "private", "end"]);
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
    let out = run(herald_async().args([
        "sub",
        "--hub",
        &hub.url,
        "--topic",
        "t",
        "--last-event-id",
        "never-published",
        "--json",
        "--count",
        "1",
    ]))
    .await;
    assert!(
        out.status.success(),
        "sub failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no longer knows id never-published"), "{err}");
    assert_eq!(
        json_lines(&out),
        [serde_json::json!({"id": "k1", "type": "message", "data": "kept"})]
    );
}

/// A certificate for `localhost` and 127.0.0.1, valid until 2126, made for
/// these tests with `openssl req -x509` (EC P-256, CA:FALSE, serverAuth).
const TLS_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBrjCCAVSgAwIBAgIUHkTohIz7L7kjUE+PSBTcLm4tGHswCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMTE4NTM0NloYDzIxMjYxMDI4
MTg1MzQ2WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQPrfOU8D25CXDApgzDHFhJSbrAmbz9x1sdsr3Q1bw5D2t6rNJnh6pH
rAgsiLZ6CsBMASJVq2gpsnAC4njy4OvIo4GBMH8wHQYDVR0OBBYEFNUxjLQnQ5Ne
hUc1p2kFI8r5mD99MB8GA1UdIwQYMBaAFNUxjLQnQ5NehUc1p2kFI8r5mD99MBoG
A1UdEQQTMBGCCWxvY2FsaG9zdIcEfwAAATAMBgNVHRMBAf8EAjAAMBMGA1UdJQQM
MAoGCCsGAQUFBwMBMAoGCCqGSM49BAMCA0gAMEUCIGxNzzrYbJiud1oA43k2aPf5
FaiTRe4ujbGIytzTlXK1AiEAmJ1ClHa19+I2wb7axtfDNLTZYP/oY9YmXdJJ1+6F
vUY=
-----END CERTIFICATE-----
";
const TLS_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg4xMTu3ZYO4SOUSnU
3addt+OJ2ZtEmcmrhYJA6MAze8ChRANCAAQPrfOU8D25CXDApgzDHFhJSbrAmbz9
x1sdsr3Q1bw5D2t6rNJnh6pHrAgsiLZ6CsBMASJVq2gpsnAC4njy4OvI
-----END PRIVATE KEY-----
";

/// Writes the test certificate and key to a fresh directory.
fn tls_files(name: &str) -> (std::path::PathBuf, String, String) {
    let dir = std::env::temp_dir().join(format!("herald-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, TLS_CERT).unwrap();
    std::fs::write(&key, TLS_KEY).unwrap();
    let (cert, key) = (
        cert.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    );
    (dir, cert, key)
}

#[tokio::test]
async fn pub_and_sub_over_https_with_cacert() {
    let (dir, cert, key) = tls_files("cacert");
    let hub = start_hub_with(&["--tls-cert", &cert, "--tls-key", &key]).await;
    assert!(hub.url.starts_with("https://"), "{}", hub.url);
    let id = publish(&hub, "t", "secure", &["--cacert", &cert]).await;
    let out = run(herald_async().args([
        "sub",
        "--hub",
        &hub.url,
        "--topic",
        "t",
        "--cacert",
        &cert,
        "--last-event-id",
        "earliest",
        "--json",
        "--count",
        "1",
    ]))
    .await;
    let _ = std::fs::remove_dir_all(dir);
    assert!(
        out.status.success(),
        "sub failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        json_lines(&out),
        [serde_json::json!({"id": id, "type": "message", "data": "secure"})]
    );
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_with_a_hint_and_insecure_accepts_it() {
    let (dir, cert, key) = tls_files("insecure");
    let hub = start_hub_with(&["--tls-cert", &cert, "--tls-key", &key]).await;
    let _ = std::fs::remove_dir_all(dir);
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
    let out = run(herald_async().args([
        "sub",
        "--hub",
        &hub.url,
        "--topic",
        "t",
        "-k",
        "--last-event-id",
        "earliest",
        "--json",
        "--count",
        "1",
    ]))
    .await;
    assert!(
        out.status.success(),
        "sub failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        json_lines(&out),
        [serde_json::json!({"id": "i1", "type": "message", "data": "anyway"})]
    );
}
