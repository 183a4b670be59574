//! `herald pub`, the real binary, against a scripted hub that records the
//! form it receives.

#[path = "../../herald-client/tests/fixture/mod.rs"]
mod fixture;

mod support;

use std::process::Output;
use std::time::Duration;

use fixture::{write, Fixture, Step};
use support::{
    herald_async, run_async, start_hub_with_issuer as hub_with_issuer, ACCESS_SECRET, ISSUER,
};

/// Runs `herald ARGS` with `stdin` as its standard input.
async fn herald(args: &[&str], stdin: &str) -> Output {
    run_async(herald_async().args(args), stdin).await
}

/// A hub that answers every publish with `status` and `body`.
async fn hub(status: &'static str, body: &'static str) -> Fixture {
    Fixture::start(move |_, _| {
        vec![write(&format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ))]
    })
    .await
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn pub_posts_the_form_and_prints_the_id() {
    let server = hub("200 OK", "urn:uuid:abc").await;
    let base = format!("http://{}", server.addr);
    let out = herald(
        &[
            "pub",
            "--hub",
            &base,
            "--topic",
            "a",
            "--topic",
            "b c",
            "--data",
            "x&y=z é",
            "--id",
            "7",
            "--type",
            "t",
            "--retry",
            "1500",
            "--private",
            "--token",
            "TOK",
        ],
        "",
    )
    .await;
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "urn:uuid:abc\n");
    let req = &server.requests()[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/.well-known/mercure");
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(req.header("authorization"), Some("Bearer TOK"));
    assert_eq!(
        String::from_utf8_lossy(&req.body),
        "topic=a&topic=b%20c&data=x%26y%3Dz%20%C3%A9&id=7&type=t&retry=1500&private=on"
    );
}

#[tokio::test]
async fn pub_reads_the_data_from_stdin() {
    for data_flag in [None, Some("-")] {
        let server = hub("200 OK", "id-1").await;
        let endpoint = server.url("/.well-known/mercure");
        let mut args = vec!["pub", "--hub", &endpoint, "--topic", "t"];
        if let Some(flag) = data_flag {
            args.extend(["--data", flag]);
        }
        let out = herald(&args, "line1\nline2\n").await;
        assert!(out.status.success(), "stderr: {}", stderr(&out));
        assert_eq!(
            String::from_utf8_lossy(&server.requests()[0].body),
            "topic=t&data=line1%0Aline2"
        );
        assert_eq!(server.requests()[0].header("authorization"), None);
    }
}

#[tokio::test]
async fn pub_reports_the_hubs_status_and_message() {
    let server = hub("403 Forbidden", "topic not allowed by the token").await;
    let out = herald(
        &[
            "pub",
            "--hub",
            &server.url("/.well-known/mercure"),
            "--topic",
            "t",
            "--data",
            "d",
            "--token",
            "x",
        ],
        "",
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("403 Forbidden: topic not allowed by the token"),
        "{err}"
    );
    assert!(err.contains("mercure.publish"), "{err}");
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn pub_to_an_unreachable_hub_says_so() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let out = herald(
        &[
            "pub",
            "--hub",
            &format!("http://{addr}"),
            "--topic",
            "t",
            "--data",
            "d",
        ],
        "",
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot reach the hub"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn pub_requires_a_topic() {
    let out = herald(&["pub", "--hub", "http://127.0.0.1:1", "--data", "d"], "").await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--topic"), "{}", stderr(&out));
}

#[tokio::test]
async fn pub_with_a_key_signs_a_publisher_token_for_its_topics() {
    let server = Fixture::start(|_, _| {
        vec![
            write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"),
            Step::Sleep(Duration::ZERO),
        ]
    })
    .await;
    let out = herald(
        &[
            "pub",
            "--hub",
            &format!("http://{}", server.addr),
            "--topic",
            "a",
            "--topic",
            "b",
            "--data",
            "d",
            "--key",
            "s3cret",
        ],
        "",
    )
    .await;
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let auth = server.requests()[0]
        .header("authorization")
        .map(str::to_owned);
    let token = auth
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .expect("a bearer token");
    let verifier =
        herald_hub::auth::JwtVerifier::new(jsonwebtoken::Algorithm::HS256, b"s3cret").unwrap();
    let claims = verifier
        .verify(token)
        .expect("the token verifies with the hub's key");
    assert_eq!(claims.publish, Some(vec!["a".to_owned(), "b".to_owned()]));
}

/// The `host:port` of a hub endpoint URL.
fn addr_of(url: &str) -> &str {
    let rest = url.strip_prefix("http://").expect("an http:// hub");
    rest.split('/').next().unwrap_or(rest)
}

// `herald pub --draft 08` signs a draft-08 access token itself (audience:
// the endpoint it publishes to), which a real hub accepts on either kind
// of hub that speaks draft-08; the update reaches a subscriber.
#[tokio::test]
async fn pub_with_draft_08_signs_an_access_token_a_real_hub_accepts() {
    for protocol in ["both", "08"] {
        let hub = hub_with_issuer(protocol).await;
        let mut stream = support::http::open_stream(addr_of(&hub.url), "match=news");
        let out = herald(
            &[
                "pub",
                "--hub",
                &hub.url,
                "--topic",
                "news",
                "--data",
                "via-access-token",
                "--draft",
                "08",
                "--issuer",
                ISSUER,
                "--key",
                ACCESS_SECRET,
            ],
            "",
        )
        .await;
        assert!(out.status.success(), "{protocol}: {}", stderr(&out));
        let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(id.starts_with("urn:uuid:"), "{protocol}: {id:?}");
        let (found, seen) = support::http::read_until(&mut stream, "data: via-access-token");
        assert!(found, "{protocol}: {seen}");
        assert!(seen.contains(&format!("id: {id}")), "{protocol}: {seen}");
    }
}

// On a hub speaking only draft-08, a draft-07 publisher token is refused:
// `herald pub` fails and says why (the hub's 401 and its message).
#[tokio::test]
async fn pub_with_a_draft_07_token_on_a_draft_08_hub_fails_clearly() {
    let hub = hub_with_issuer("08").await;
    let out = herald(
        &[
            "pub",
            "--hub",
            &hub.url,
            "--topic",
            "news",
            "--data",
            "x",
            "--key",
            "draft07-key",
        ],
        "",
    )
    .await;
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("401") && err.contains("access token"), "{err}");
}

// The access-token options without `--draft 08` are refused before
// anything is sent.
#[tokio::test]
async fn pub_refuses_access_token_options_without_draft_08() {
    let out = herald(
        &[
            "pub",
            "--hub",
            "http://127.0.0.1:9",
            "--topic",
            "t",
            "--data",
            "x",
            "--issuer",
            ISSUER,
            "--key",
            "k",
        ],
        "",
    )
    .await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("add --draft 08"), "{}", stderr(&out));
}
