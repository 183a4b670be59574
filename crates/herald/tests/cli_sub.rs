//! `herald sub`, the real binary, against a scripted SSE server.

#[path = "../../herald-client/tests/fixture/mod.rs"]
mod fixture;
mod support;

use std::process::Output;

use fixture::{write, Fixture, Step, SSE_HEAD};
use support::{
    herald_async, run_async, start_hub_with_issuer as hub_with_issuer, ACCESS_SECRET, ISSUER,
};

/// Runs `herald ARGS` to completion, with no input and no colours.
async fn herald(args: &[&str]) -> Output {
    run_async(herald_async().args(args), "").await
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn sub_prints_json_lines_and_resumes_with_the_last_event_id() {
    let server = Fixture::start(|n, _| match n {
        0 => vec![write(SSE_HEAD), write("retry: 20\nid: 1\ndata: a\n\n")],
        _ => vec![
            write(SSE_HEAD),
            write("event: note\ndata: b\n\n"),
            Step::Hang,
        ],
    })
    .await;
    let url = server.url("/events");
    let out = herald(&["sub", &url, "--json", "--count", "2"]).await;
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            serde_json::json!({"id": "1", "type": "message", "data": "a"}),
            serde_json::json!({"id": "1", "type": "note", "data": "b"}),
        ]
    );
    let requests = server.requests();
    assert_eq!(requests[0].header("last-event-id"), None);
    assert_eq!(requests[1].header("last-event-id"), Some("1"));
    let err = stderr(&out);
    assert!(err.contains("connected to"), "{err}");
    assert!(
        err.contains("reconnecting in 20ms, resuming after id 1"),
        "{err}"
    );
}

#[tokio::test]
async fn sub_prints_readable_text_without_colour_when_piped() {
    let server = Fixture::start(|_, _| {
        vec![
            write(SSE_HEAD),
            write("id: 7\nevent: price\ndata: hello\ndata: world\n\n"),
            Step::Hang,
        ]
    })
    .await;
    let out = run_async(
        herald_async()
            .args(["sub", &server.url("/"), "--count", "1"])
            .env_remove("NO_COLOR"),
        "",
    )
    .await;
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "event: price  id: 7\nhello\nworld\n\n");
}

#[tokio::test]
async fn sub_builds_the_mercure_url_from_a_hub_base_url_and_topics() {
    let server =
        Fixture::start(|_, _| vec![write(SSE_HEAD), write("data: x\n\n"), Step::Hang]).await;
    let hub = format!("http://{}", server.addr);
    let out = herald(&[
        "sub",
        "--hub",
        &hub,
        "--topic",
        "https://example.com/books/{id}",
        "--topic",
        "news",
        "--count",
        "1",
    ])
    .await;
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(
        server.requests()[0].path,
        "/.well-known/mercure?topic=https%3A%2F%2Fexample.com%2Fbooks%2F%7Bid%7D&topic=news"
    );
}

#[tokio::test]
async fn sub_accepts_the_full_hub_endpoint() {
    let server =
        Fixture::start(|_, _| vec![write(SSE_HEAD), write("data: x\n\n"), Step::Hang]).await;
    let hub = server.url("/.well-known/mercure");
    let out = herald(&["sub", "--hub", &hub, "--topic", "a", "--count", "1"]).await;
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(server.requests()[0].path, "/.well-known/mercure?topic=a");
}

// HERALD_HUB, which `herald pub` reads too, names the hub when --hub is
// not given.
#[tokio::test]
async fn sub_takes_the_hub_from_herald_hub() {
    let server =
        Fixture::start(|_, _| vec![write(SSE_HEAD), write("data: x\n\n"), Step::Hang]).await;
    let hub = format!("http://{}", server.addr);
    let out = run_async(
        herald_async()
            .env("HERALD_HUB", &hub)
            .args(["sub", "--topic", "news", "--count", "1"]),
        "",
    )
    .await;
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(server.requests()[0].path, "/.well-known/mercure?topic=news");
}

// A stream URL on the command line is followed even with HERALD_HUB set;
// beside an explicit --hub it is refused, not silently preferred.
#[tokio::test]
async fn sub_a_url_wins_over_herald_hub_but_not_over_the_hub_flag() {
    let server =
        Fixture::start(|_, _| vec![write(SSE_HEAD), write("data: x\n\n"), Step::Hang]).await;
    let out = run_async(
        herald_async()
            .env("HERALD_HUB", "http://127.0.0.1:9/")
            .args(["sub", &server.url("/events"), "--count", "1"]),
        "",
    )
    .await;
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(server.requests()[0].path, "/events");

    let out = herald(&[
        "sub",
        &server.url("/events"),
        "--hub",
        "http://127.0.0.1:9/",
        "--count",
        "1",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    assert!(
        stderr(&out).contains("give the stream's URL or --hub, not both"),
        "{}",
        stderr(&out)
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn sub_sends_token_headers_and_last_event_id() {
    let server =
        Fixture::start(|_, _| vec![write(SSE_HEAD), write("data: x\n\n"), Step::Hang]).await;
    let out = herald(&[
        "sub",
        &server.url("/"),
        "--token",
        "jwt.for.me",
        "--header",
        "X-Trace: abc",
        "-H",
        "X-Other:2",
        "--last-event-id",
        "urn:uuid:42",
        "--count",
        "1",
    ])
    .await;
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let req = &server.requests()[0];
    assert_eq!(req.header("authorization"), Some("Bearer jwt.for.me"));
    assert_eq!(req.header("x-trace"), Some("abc"));
    assert_eq!(req.header("x-other"), Some("2"));
    assert_eq!(req.header("last-event-id"), Some("urn:uuid:42"));
    assert_eq!(req.header("accept"), Some("text/event-stream"));
}

#[tokio::test]
async fn sub_exits_non_zero_with_a_hint_on_401() {
    let server = Fixture::start(|_, _| {
        vec![write("HTTP/1.1 401 Unauthorized\r\nContent-Length: 13\r\nConnection: close\r\n\r\nmissing token")]
    })
    .await;
    let out = herald(&["sub", &server.url("/")]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("401 Unauthorized: missing token"), "{err}");
    assert!(err.contains("--token"), "{err}");
    assert_eq!(server.requests().len(), 1, "no reconnection after a 401");
}

#[tokio::test]
async fn sub_exits_non_zero_on_a_wrong_content_type() {
    let server = Fixture::start(|_, _| {
        vec![write(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n<html>",
        )]
    })
    .await;
    let out = herald(&["sub", &server.url("/")]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("text/html"), "{err}");
    assert!(err.contains("does not serve an event stream"), "{err}");
}

#[tokio::test]
async fn sub_gives_up_after_max_attempts() {
    let server = Fixture::start(|_, _| fixture::hang_up()).await;
    // The server hangs up without answering: a retryable failure, and with
    // --max-attempts 0 the first one is final.
    let out = herald(&["sub", &server.url("/"), "--max-attempts", "0"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("gave up after 0 reconnection attempts"),
        "{err}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn sub_without_url_or_hub_explains_usage() {
    let out = herald(&["sub"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("<URL>"), "{}", stderr(&out));
}

#[tokio::test]
async fn sub_help_has_examples() {
    let out = herald(&["sub", "--help"]).await;
    assert!(out.status.success());
    assert!(stdout(&out).contains("Examples:"));
    assert!(stdout(&out).contains("--hub http://localhost:8080"));
}

#[tokio::test]
async fn sub_warns_when_the_hub_cannot_resume_from_the_id() {
    let server = Fixture::start(|_, _| {
        vec![
            write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nLast-Event-ID: earliest\r\nConnection: close\r\n\r\n"),
            write("id: 1\ndata: oldest kept\n\n"),
            Step::Hang,
        ]
    })
    .await;
    let out = herald(&[
        "sub",
        &server.url("/"),
        "--last-event-id",
        "evicted-7",
        "--count",
        "1",
    ])
    .await;
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("no longer knows id evicted-7"), "{err}");
}

// `--lost-events` asks the hub for its in-band signal; the signal (type
// `mercure`, no id) is printed with the events, before the replay.
#[tokio::test]
async fn sub_lost_events_asks_for_the_signal_and_prints_it() {
    let server = Fixture::start(|_, _| {
        vec![
            write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nMercure-Last-Event-ID: earliest\r\nConnection: close\r\n\r\n"),
            write("event: mercure\ndata: {\"type\":\"events_lost\",\"requested\":\"evicted-7\",\"earliest\":\"9\"}\n\n"),
            write("id: 9\ndata: oldest kept\n\n"),
            Step::Hang,
        ]
    })
    .await;
    let hub = format!("http://{}", server.addr);
    let out = herald(&[
        "sub",
        "--json",
        "--hub",
        &hub,
        "--match",
        "news",
        "--last-event-id",
        "evicted-7",
        "--lost-events",
        "--count",
        "2",
    ])
    .await;
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert_eq!(
        server.requests()[0].path,
        "/.well-known/mercure?match=news&lost_events=1"
    );
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "mercure");
    let signal: serde_json::Value =
        serde_json::from_str(lines[0]["data"].as_str().unwrap()).unwrap();
    assert_eq!(
        signal,
        serde_json::json!({"type": "events_lost", "requested": "evicted-7", "earliest": "9"})
    );
    assert_eq!(lines[1]["id"], "9");
    // The header says it too (a draft-08 hub's own header).
    assert!(
        stderr(&out).contains("no longer knows id evicted-7"),
        "{}",
        stderr(&out)
    );
}

/// `herald token --draft 08 ARGS` for [`ISSUER`] and `hub`.
async fn access_token(hub: &support::AsyncHub, args: &[&str]) -> String {
    let mut all = vec![
        "token",
        "--draft",
        "08",
        "--key",
        ACCESS_SECRET,
        "--issuer",
        ISSUER,
        "--audience",
        &hub.url,
    ];
    all.extend_from_slice(args);
    let out = herald(&all).await;
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_owned()
}

/// Which token `herald pub` signs in [`publish`].
#[derive(Clone, Copy, Debug)]
enum Signed {
    /// A draft-07 token, with the hub's draft-07 key.
    Draft07,
    /// A draft-08 access token, with [`ISSUER`]'s secret.
    Draft08,
}

/// `herald pub` of `data` to `topic`, `private` or not, with a token it
/// signs as `signed` says; returns the id the hub gave the update.
async fn publish(
    hub: &support::AsyncHub,
    signed: Signed,
    topic: &str,
    data: &str,
    private: bool,
) -> String {
    let mut args = vec!["pub", "--hub", &hub.url, "--topic", topic, "--data", data];
    match signed {
        Signed::Draft07 => args.extend(["--key", "draft07-key"]),
        Signed::Draft08 => {
            args.extend(["--draft", "08", "--issuer", ISSUER, "--key", ACCESS_SECRET])
        }
    }
    if private {
        args.push("--private");
    }
    let out = herald(&args).await;
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_owned()
}

/// The `(id, data)` of each JSON line `herald sub --json` printed.
fn events(out: &Output) -> Vec<(String, String)> {
    stdout(out)
        .lines()
        .map(|l| {
            let event: serde_json::Value = serde_json::from_str(l).unwrap();
            let field = |name: &str| event[name].as_str().unwrap_or_default().to_owned();
            (field("id"), field("data"))
        })
        .collect()
}

/// The data of each event `herald sub --json` printed.
fn data_of(out: &Output) -> Vec<String> {
    events(out).into_iter().map(|(_, data)| data).collect()
}

// `herald sub` with draft-08 matchers (`--match`, `--match-urlpattern`)
// and an access token (sent in the Authorization header: never in the
// URL) against a real hub speaking both revisions and one speaking only
// draft-08: it replays from history what its matchers select, the
// private updates its token's subscribe detail allows included, and
// nothing else (not a private update its matchers select but its token
// does not allow, not a topic its matchers do not select). The events
// are published before it subscribes and replayed from `earliest`, so
// nothing depends on timing.
#[tokio::test]
async fn sub_with_draft_08_matchers_and_an_access_token_against_a_real_hub() {
    const BOOK_1: &str = "https://example.com/books/1";
    const BOOK_2: &str = "https://example.com/books/2";
    for protocol in ["both", "08"] {
        for matchers in [
            &["--match", BOOK_1, "--match", BOOK_2][..],
            &["--match-urlpattern", "https://example.com/books/:id"][..],
        ] {
            let case = format!("{protocol} {matchers:?}");
            let hub = hub_with_issuer(protocol).await;
            let token = access_token(&hub, &["--subscribe", BOOK_1]).await;
            publish(&hub, Signed::Draft08, BOOK_1, "private-book-1", true).await;
            publish(&hub, Signed::Draft08, BOOK_2, "private-book-2", true).await;
            publish(
                &hub,
                Signed::Draft08,
                "https://example.com/authors/1",
                "author",
                false,
            )
            .await;
            publish(&hub, Signed::Draft08, BOOK_2, "public-book-2", false).await;
            let mut args = vec!["sub", "--hub", &hub.url];
            args.extend_from_slice(matchers);
            args.extend([
                "--token",
                &token,
                "--last-event-id",
                "earliest",
                "--json",
                "--count",
                "2",
            ]);
            let out = herald(&args).await;
            assert!(out.status.success(), "{case}: {}", stderr(&out));
            assert_eq!(data_of(&out), ["private-book-1", "public-book-2"], "{case}");
        }
    }
}

// `herald sub --topic` with a draft-07 token against a real hub speaking
// both revisions (the default): a URI template selects the books, the
// token's `mercure.subscribe` allows the private update of one book and
// not another's.
#[tokio::test]
async fn sub_with_topic_and_a_draft_07_token_against_a_real_hub() {
    const BOOK_1: &str = "https://example.com/books/1";
    const BOOK_2: &str = "https://example.com/books/2";
    let hub = hub_with_issuer("both").await;
    let token = herald(&["token", "--key", "draft07-key", "--subscribe", BOOK_1]).await;
    assert!(token.status.success(), "{}", stderr(&token));
    let token = stdout(&token).trim().to_owned();
    publish(&hub, Signed::Draft07, BOOK_1, "private-book-1", true).await;
    publish(&hub, Signed::Draft07, BOOK_2, "private-book-2", true).await;
    publish(
        &hub,
        Signed::Draft07,
        "https://example.com/authors/1",
        "author",
        false,
    )
    .await;
    publish(&hub, Signed::Draft07, BOOK_2, "public-book-2", false).await;
    let out = herald(&[
        "sub",
        "--hub",
        &hub.url,
        "--topic",
        "https://example.com/books/{id}",
        "--token",
        &token,
        "--last-event-id",
        "earliest",
        "--json",
        "--count",
        "2",
    ])
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(data_of(&out), ["private-book-1", "public-book-2"]);
}

// `herald sub --last-event-id ID` against a real hub resumes after that
// id: in draft-07's vocabulary (`--topic`) on a hub speaking both, and in
// draft-08's (`--match`) on a hub speaking only draft-08. It prints the
// events after it, with the ids `herald pub` printed, and not the one
// resumed from.
#[tokio::test]
async fn sub_resumes_after_a_given_last_event_id_on_a_real_hub() {
    for (protocol, matcher, signed) in [
        ("both", "--topic", Signed::Draft07),
        ("08", "--match", Signed::Draft08),
    ] {
        let hub = hub_with_issuer(protocol).await;
        let first = publish(&hub, signed, "news", "first", false).await;
        let second = publish(&hub, signed, "news", "second", false).await;
        let third = publish(&hub, signed, "news", "third", false).await;
        let out = herald(&[
            "sub",
            "--hub",
            &hub.url,
            matcher,
            "news",
            "--last-event-id",
            &first,
            "--json",
            "--count",
            "2",
        ])
        .await;
        assert!(out.status.success(), "{protocol}: {}", stderr(&out));
        assert_eq!(
            events(&out),
            [(second, "second".to_owned()), (third, "third".to_owned())],
            "{protocol}"
        );
    }
}

// A live update: `herald sub` connects (the hub registers a subscription
// before it answers, so "connected" means it is listening), then
// `herald pub` publishes, and `herald sub` prints it. With `--topic` and
// a draft-07 token on a hub speaking both revisions, and with
// `--match-urlpattern` and an access token on one speaking only draft-08;
// the update is private, so the token is what lets it through.
#[tokio::test]
async fn sub_prints_a_live_update_published_after_it_connected() {
    use tokio::io::AsyncBufReadExt;

    for (protocol, matcher, selector, signed) in [
        (
            "both",
            "--topic",
            "https://example.com/books/{id}",
            Signed::Draft07,
        ),
        (
            "08",
            "--match-urlpattern",
            "https://example.com/books/:id",
            Signed::Draft08,
        ),
    ] {
        let hub = hub_with_issuer(protocol).await;
        let token = match signed {
            Signed::Draft07 => {
                let out = herald(&["token", "--key", "draft07-key", "--subscribe", "*"]).await;
                assert!(out.status.success(), "{}", stderr(&out));
                stdout(&out).trim().to_owned()
            }
            Signed::Draft08 => access_token(&hub, &["--subscribe", "*"]).await,
        };
        let mut child = herald_async()
            .args([
                "sub", "--hub", &hub.url, matcher, selector, "--token", &token, "--json",
                "--count", "1",
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("cannot run herald sub");
        let mut lines =
            tokio::io::BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let connected = tokio::time::timeout(support::DEADLINE, async {
            let mut seen = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("herald: connected to") {
                    return (true, seen);
                }
                seen.push(line);
            }
            (false, seen)
        })
        .await
        .expect("herald sub did not connect within the deadline");
        assert!(connected.0, "{protocol}: {:?}", connected.1);
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let id = publish(&hub, signed, "https://example.com/books/7", "live", true).await;
        let out = tokio::time::timeout(support::DEADLINE, child.wait_with_output())
            .await
            .expect("herald sub did not exit after its one event")
            .expect("cannot wait for herald sub");
        assert!(out.status.success(), "{protocol}");
        assert_eq!(events(&out), [(id, "live".to_owned())], "{protocol}");
    }
}

// Speaking the wrong revision to a hub that speaks only draft-08 fails
// at once with the hub's reason and a hint in `herald sub`'s terms:
// `--topic` (400: use --match), a draft-07 token (401: mint an access
// token with `herald token --draft 08`).
#[tokio::test]
async fn sub_on_a_draft_08_hub_says_what_to_use_instead() {
    let hub = hub_with_issuer("08").await;
    let out = herald(&["sub", "--hub", &hub.url, "--topic", "news"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("400 Bad Request"), "{err}");
    assert!(
        err.contains(
            "hint: this hub speaks draft-08 only: subscribe with --match or --match-urlpattern"
        ),
        "{err}"
    );

    let token = herald(&["token", "--key", "draft07-key", "--subscribe", "*"]).await;
    let token = stdout(&token).trim().to_owned();
    let out = herald(&[
        "sub", "--hub", &hub.url, "--match", "news", "--token", &token,
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("401 Unauthorized"), "{err}");
    assert!(
        err.contains("hint: this hub takes draft-08 access tokens only: mint one with `herald token --draft 08"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

// And on a hub speaking only draft-07: `--match` (400: use --topic), an
// access token (401: mint a draft-07 token).
#[tokio::test]
async fn sub_on_a_draft_07_hub_says_what_to_use_instead() {
    let hub = support::start_hub_async("draft07-key", &["--protocol", "07"]).await;
    let out = herald(&["sub", "--hub", &hub.url, "--match", "news"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("400 Bad Request"), "{err}");
    assert!(
        err.contains("hint: this hub speaks draft-07 only: subscribe with --topic"),
        "{err}"
    );

    let token = access_token(&hub, &["--subscribe", "*"]).await;
    let out = herald(&[
        "sub", "--hub", &hub.url, "--topic", "news", "--token", &token,
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("401 Unauthorized"), "{err}");
    assert!(
        err.contains(
            "hint: this hub takes draft-07 tokens only: mint one with `herald token --subscribe"
        ),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}
