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

/// `herald token ARGS` (the real binary), its token.
async fn minted(args: &[&str]) -> String {
    let mut all = vec!["token"];
    all.extend_from_slice(args);
    let out = herald(&all, "").await;
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Publishes `data` to `news` on `hub` with `herald pub` and the token
/// options `auth`, while a subscriber to `query` listens; returns what
/// `herald pub` printed and what the subscriber read up to the update.
async fn publish_to_a_listener(
    hub: &support::AsyncHub,
    query: &str,
    data: &str,
    auth: &[&str],
) -> (String, String) {
    let mut stream = support::http::open_stream(addr_of(&hub.url), query);
    let mut args = vec!["pub", "--hub", &hub.url, "--topic", "news", "--data", data];
    args.extend_from_slice(auth);
    let out = herald(&args, "").await;
    assert!(out.status.success(), "{auth:?}: {}", stderr(&out));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let (found, seen) = support::http::read_until(&mut stream, &format!("data: {data}"));
    assert!(found, "{auth:?}: {seen}");
    (id, seen)
}

// A draft-07 publisher token, signed by `herald pub --key` or minted by
// `herald token` and passed with `--token`, is accepted by a real hub
// speaking both revisions (the default), and the update reaches a
// subscriber with the id `herald pub` printed.
#[tokio::test]
async fn pub_with_a_draft_07_token_reaches_a_subscriber_on_a_real_hub() {
    let hub = hub_with_issuer("both").await;
    let token = minted(&["--key", "draft07-key", "--publish", "news"]).await;
    for auth in [&["--key", "draft07-key"][..], &["--token", &token][..]] {
        let (id, seen) = publish_to_a_listener(&hub, "topic=news", "draft-07", auth).await;
        assert!(id.starts_with("urn:uuid:"), "{auth:?}: {id:?}");
        assert!(seen.contains(&format!("id: {id}")), "{auth:?}: {seen}");
    }
}

// A draft-08 access token minted by `herald token --draft 08` and passed
// with `--token` is accepted by a real hub that speaks draft-08 (both
// revisions, or draft-08 only); the update, private here, reaches a
// subscriber whose access token allows the topic.
#[tokio::test]
async fn pub_with_an_access_token_from_herald_token_on_a_real_hub() {
    for protocol in ["both", "08"] {
        let hub = hub_with_issuer(protocol).await;
        let access = |action: &'static str| {
            let url = hub.url.clone();
            async move {
                minted(&[
                    "--draft",
                    "08",
                    "--key",
                    ACCESS_SECRET,
                    "--issuer",
                    ISSUER,
                    "--audience",
                    &url,
                    action,
                    "news",
                ])
                .await
            }
        };
        let publisher = access("--publish").await;
        let subscriber = access("--subscribe").await;
        assert!(
            herald_hub::access_token::is_access_token(&publisher),
            "{publisher}"
        );
        let mut stream =
            support::http::open_stream_with_token(addr_of(&hub.url), "match=news", &subscriber);
        let out = herald(
            &[
                "pub",
                "--hub",
                &hub.url,
                "--topic",
                "news",
                "--data",
                "secret",
                "--private",
                "--token",
                &publisher,
            ],
            "",
        )
        .await;
        assert!(out.status.success(), "{protocol}: {}", stderr(&out));
        let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let (found, seen) = support::http::read_until(&mut stream, "data: secret");
        assert!(found, "{protocol}: {seen}");
        assert!(seen.contains(&format!("id: {id}")), "{protocol}: {seen}");
    }
}

// On a hub speaking only draft-08, a draft-07 token is refused however
// `herald pub` got it (signed with --key, or given with --token): it
// exits non-zero, prints the hub's 401 and its reason, says how to sign
// an access token instead, and prints no id.
#[tokio::test]
async fn pub_with_a_draft_07_token_on_a_draft_08_hub_says_to_use_draft_08() {
    let hub = hub_with_issuer("08").await;
    let token = minted(&["--key", "draft07-key", "--publish", "*"]).await;
    for auth in [&["--key", "draft07-key"][..], &["--token", &token][..]] {
        let mut args = vec!["pub", "--hub", &hub.url, "--topic", "news", "--data", "x"];
        args.extend_from_slice(auth);
        let out = herald(&args, "").await;
        assert_eq!(out.status.code(), Some(1), "{auth:?}");
        assert!(out.stdout.is_empty(), "{auth:?}");
        let err = stderr(&out);
        assert!(
            err.contains("401 Unauthorized: this hub speaks draft-08 only"),
            "{auth:?}: {err}"
        );
        assert!(
            err.contains(
                "hint: this hub takes draft-08 access tokens only: sign one with --draft 08"
            ),
            "{auth:?}: {err}"
        );
    }
}

// An access token whose publish detail does not cover the topic gets the
// hub's 403, and the hint names the authorization detail rather than
// draft-07's `mercure.publish`.
#[tokio::test]
async fn pub_with_an_access_token_for_another_topic_is_forbidden_with_a_hint() {
    let hub = hub_with_issuer("both").await;
    let out = herald(
        &[
            "pub",
            "--hub",
            &hub.url,
            "--topic",
            "sports",
            "--data",
            "x",
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
    assert!(out.status.success(), "{}", stderr(&out));
    let token = minted(&[
        "--draft",
        "08",
        "--key",
        ACCESS_SECRET,
        "--issuer",
        ISSUER,
        "--audience",
        &hub.url,
        "--publish",
        "news",
    ])
    .await;
    let out = herald(
        &[
            "pub", "--hub", &hub.url, "--topic", "sports", "--data", "x", "--token", &token,
        ],
        "",
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("403 Forbidden"), "{err}");
    assert!(err.contains("publish authorization detail"), "{err}");
    assert!(!err.contains("mercure.publish"), "{err}");
}

// Mixes that would leave an option without effect are refused before
// anything is sent (the hub address is unreachable: a refusal that got
// that far would say "cannot reach the hub").
#[tokio::test]
async fn pub_refuses_option_mixes_that_would_be_ignored() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["--token", "T", "--key", "k"],
            "give either --token (a token made elsewhere) or --key/--key-file",
        ),
        (
            &["--token", "T", "--draft", "08", "--issuer", ISSUER],
            "--draft 08 and --issuer are for the token herald pub signs with --key, and cannot change a --token",
        ),
        (
            &["--draft", "08", "--issuer", ISSUER],
            "--draft 08 and --issuer are for the token herald pub signs: give the issuer's key",
        ),
        (
            &["--key", "k", "--match-type", "urlpattern"],
            "--match-type is for draft-08 access tokens: add --draft 08",
        ),
        (
            &["--draft", "08", "--key", "k"],
            "--draft 08 needs --issuer",
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec![
            "pub",
            "--hub",
            "http://127.0.0.1:9",
            "--topic",
            "t",
            "--data",
            "x",
        ];
        args.extend_from_slice(extra);
        let out = herald(&args, "").await;
        assert_eq!(out.status.code(), Some(1), "{extra:?}");
        let err = stderr(&out);
        assert!(err.contains(want), "{extra:?}: {err}");
        assert!(!err.contains("cannot reach"), "{extra:?}: {err}");
    }
}

// HERALD_JWT_KEY in the environment gives way to --token: the token given
// is the one sent.
#[tokio::test]
async fn pub_token_wins_over_a_key_in_the_environment() {
    let server = hub("200 OK", "id-1").await;
    let out = run_async(
        herald_async()
            .env("HERALD_JWT_KEY", "from-the-environment")
            .args([
                "pub",
                "--hub",
                &server.url("/.well-known/mercure"),
                "--topic",
                "t",
                "--data",
                "x",
                "--token",
                "GIVEN",
            ]),
        "",
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some("Bearer GIVEN")
    );
}

// `herald pub --key --subject` puts the subject in the draft-07 token it
// signs (the hub counts a client's streams by it), as `herald token` does.
#[tokio::test]
async fn pub_with_a_key_and_a_subject_signs_it_into_the_token() {
    let server = hub("200 OK", "id-1").await;
    let out = herald(
        &[
            "pub",
            "--hub",
            &server.url("/.well-known/mercure"),
            "--topic",
            "t",
            "--data",
            "x",
            "--key",
            "s3cret",
            "--subject",
            "publisher-9",
        ],
        "",
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let auth = server.requests()[0]
        .header("authorization")
        .map(str::to_owned)
        .unwrap_or_default();
    let token = auth.strip_prefix("Bearer ").expect("a bearer token");
    let verifier =
        herald_hub::auth::JwtVerifier::new(jsonwebtoken::Algorithm::HS256, b"s3cret").unwrap();
    let claims = verifier.verify(token).expect("the hub's key verifies it");
    assert_eq!(claims.sub.as_deref(), Some("publisher-9"));
    assert_eq!(claims.publish, Some(vec!["t".to_owned()]));
}

// The other way round: on a hub speaking only draft-07, the access token
// `herald pub --draft 08` signs is refused, and the hint says to sign a
// draft-07 token with the hub's key; on a hub that trusts no issuer, it
// says to start the hub with --issuer or to sign a draft-07 token.
#[tokio::test]
async fn pub_with_an_access_token_on_a_hub_without_draft_08_says_what_to_do() {
    for (extra, reason, hint) in [
        (
            &["--protocol", "07"][..],
            "this hub speaks draft-07 only",
            "hint: this hub takes draft-07 tokens only: sign one with --key",
        ),
        (
            &[][..],
            "this hub trusts no access-token issuer",
            "hint: start the hub with --issuer ISSUER=KEYS",
        ),
    ] {
        let hub = support::start_hub_async("draft07-key", extra).await;
        let out = herald(
            &[
                "pub",
                "--hub",
                &hub.url,
                "--topic",
                "news",
                "--data",
                "x",
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
        assert_eq!(out.status.code(), Some(1), "{extra:?}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("401 Unauthorized: {reason}")),
            "{extra:?}: {err}"
        );
        assert!(err.contains(hint), "{extra:?}: {err}");
    }
}
