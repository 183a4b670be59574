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

/// `herald pub --draft 08` of `data` to `topic`, `private` or not.
async fn publish(hub: &support::AsyncHub, topic: &str, data: &str, private: bool) {
    let mut args = vec![
        "pub",
        "--hub",
        &hub.url,
        "--topic",
        topic,
        "--data",
        data,
        "--draft",
        "08",
        "--issuer",
        ISSUER,
        "--key",
        ACCESS_SECRET,
    ];
    if private {
        args.push("--private");
    }
    let out = herald(&args).await;
    assert!(out.status.success(), "{}", stderr(&out));
}

// `herald sub` with draft-08 matchers and an access token (sent in the
// Authorization header: never in the URL) against a real hub: it replays
// from history what its matchers select, private updates its token's
// details allow included, and nothing else. The events are published
// before it subscribes and replayed, so nothing depends on timing.
#[tokio::test]
async fn sub_with_draft_08_matchers_and_an_access_token_against_a_real_hub() {
    for (protocol, matcher, value, match_type) in [
        (
            "both",
            "--match-urlpattern",
            "https://example.com/books/:id",
            "urlpattern",
        ),
        ("08", "--match", "https://example.com/books/1", "exact"),
    ] {
        let hub = hub_with_issuer(protocol).await;
        let token = access_token(&hub, &["--subscribe", value, "--match-type", match_type]).await;
        publish(&hub, "https://example.com/books/1", "private-book", true).await;
        publish(&hub, "https://example.com/authors/1", "author", false).await;
        publish(&hub, "https://example.com/books/1", "public-book", false).await;
        let out = herald(&[
            "sub",
            "--hub",
            &hub.url,
            matcher,
            value,
            "--token",
            &token,
            "--last-event-id",
            "earliest",
            "--json",
            "--count",
            "2",
        ])
        .await;
        assert!(out.status.success(), "{protocol}: {}", stderr(&out));
        let data: Vec<String> = stdout(&out)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["data"].to_string())
            .collect();
        assert_eq!(data, ["\"private-book\"", "\"public-book\""], "{protocol}");
    }
}
