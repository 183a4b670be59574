//! The client against a scripted server: each test reproduces one case of
//! the EventSource behaviour (spec §3) and asserts it.
//!
//! The client and the fixture server run in one current-thread runtime with
//! the tokio clock paused. The clock then moves only when every task waits
//! on a timer, straight to the earliest one; loopback I/O is seen before it
//! moves. So the fixture's scripted pauses, the client's backoff, read
//! timeout and `healthy_after` are exact, and so are the durations the tests
//! measure with `tokio::time::Instant`: no assertion depends on how fast the
//! machine is. A `tokio::time::sleep` in a test is an exact advance of that
//! clock (everything due by then has run), never a real-time wait; the 5 and
//! 10 s guards only turn a hang into a failure, and are longer than any
//! scripted wait, so the clock reaches them only when nothing else is left.

mod fixture;

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use fixture::{empty_response, hang_up, redirect, sleep_ms, write, Fixture, Step, SSE_HEAD};
use futures_core::Stream;
use futures_util::StreamExt;
use herald_client::{
    Builder, Error, Event, EventSource, Item, Limits, ParseError, ReadyState, ReconnectPolicy,
};
use tokio::time::Instant;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A builder that reconnects after 20 ms, without jitter.
fn fast(url: &str) -> Builder {
    EventSource::builder(url)
        .reconnect(ReconnectPolicy::default().initial_delay(ms(20)).jitter(0.0))
}

/// The next item; panics if the stream ends or nothing comes for 10 s.
async fn next(source: &mut EventSource) -> Result<Item, Error> {
    tokio::time::timeout(Duration::from_secs(10), source.next())
        .await
        .expect("no item within 10 s")
        .expect("stream ended")
}

/// The next event, skipping opens and reconnections.
async fn next_event(source: &mut EventSource) -> Event {
    loop {
        match next(source).await {
            Ok(Item::Event(e)) => return e,
            Ok(_) => continue,
            Err(e) => panic!("fatal error: {e}"),
        }
    }
}

/// Asserts the next item is a reconnection, and returns its error and delay.
async fn expect_reconnecting(source: &mut EventSource) -> (Error, Duration) {
    match next(source).await {
        Ok(Item::Reconnecting { error, delay }) => (error, delay),
        other => panic!("expected Reconnecting, got {other:?}"),
    }
}

async fn expect_open(source: &mut EventSource) {
    match next(source).await {
        Ok(Item::Open(_)) => {}
        other => panic!("expected Open, got {other:?}"),
    }
}

/// Asserts the stream ends now (after a fatal error).
async fn expect_end(source: &mut EventSource) {
    let end = tokio::time::timeout(Duration::from_secs(5), source.next()).await;
    assert!(
        matches!(end, Ok(None)),
        "expected the end of the stream, got {end:?}"
    );
}

fn sse(body: &str) -> Vec<Step> {
    vec![write(SSE_HEAD), write(body)]
}

#[tokio::test(start_paused = true)]
async fn first_request_sends_sse_headers_and_no_last_event_id() {
    let server = Fixture::start(|_, _| sse("data: hi\n\n")).await;
    let mut source = fast(&server.url("/events?x=1"))
        .header("X-Test", "yes")
        .bearer_token("tok123")
        .build()
        .unwrap();
    assert_eq!(next_event(&mut source).await.data(), "hi");
    let req = &server.requests()[0];
    assert_eq!(req.method, "GET");
    assert_eq!(req.path, "/events?x=1");
    assert_eq!(req.header("accept"), Some("text/event-stream"));
    assert_eq!(req.header("cache-control"), Some("no-cache"));
    assert_eq!(req.header("last-event-id"), None);
    assert_eq!(req.header("x-test"), Some("yes"));
    assert_eq!(req.header("authorization"), Some("Bearer tok123"));
}

#[tokio::test(start_paused = true)]
async fn post_sends_method_and_body_on_every_connection() {
    let server = Fixture::start(|_, _| sse("data: answer\n\n")).await;
    let mut source = fast(&server.url("/chat"))
        .method(http::Method::POST)
        .header("Content-Type", "application/json")
        .body(r#"{"q":1}"#)
        .build()
        .unwrap();
    next_event(&mut source).await;
    next_event(&mut source).await;
    for req in server.requests().iter().take(2) {
        assert_eq!(req.method, "POST");
        assert_eq!(req.body, br#"{"q":1}"#);
        assert_eq!(req.header("content-type"), Some("application/json"));
    }
}

#[tokio::test(start_paused = true)]
async fn initial_last_event_id_is_sent_on_the_first_request() {
    let server = Fixture::start(|_, _| sse("data: x\n\n")).await;
    let mut source = fast(&server.url("/"))
        .last_event_id("saved-42")
        .build()
        .unwrap();
    next_event(&mut source).await;
    assert_eq!(
        server.requests()[0].header("last-event-id"),
        Some("saved-42")
    );
}

#[tokio::test(start_paused = true)]
async fn every_wpt_request_status_error_ends_the_client() {
    for status in [
        "204 No Content",
        "205 Reset Content",
        "210 Custom",
        "299 Custom",
        "404 Not Found",
        "410 Gone",
        "503 Service Unavailable",
    ] {
        let code: u16 = status[..3].parse().unwrap();
        let server = Fixture::start(move |_, _| {
            let head = if code == 204 || code == 205 {
                empty_response(status, Some("text/event-stream"))
            } else {
                format!("HTTP/1.1 {status}\r\nContent-Type: text/event-stream\r\nContent-Length: 11\r\nConnection: close\r\n\r\ndata: no\n\n\n")
            };
            vec![write(&head)]
        })
        .await;
        let mut source = fast(&server.url("/")).build().unwrap();
        match next(&mut source).await {
            Err(Error::Status { status, .. }) => assert_eq!(status.as_u16(), code),
            other => panic!("{code}: expected a Status error, got {other:?}"),
        }
        expect_end(&mut source).await;
        assert_eq!(source.ready_state(), ReadyState::Closed);
        tokio::time::sleep(ms(100)).await;
        assert_eq!(server.requests().len(), 1, "{code}: the client reconnected");
    }
}

#[tokio::test(start_paused = true)]
async fn error_status_carries_the_servers_explanation() {
    let server = Fixture::start(|_, _| {
        vec![write("HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\nmissing token")]
    })
    .await;
    let mut source = fast(&server.url("/")).build().unwrap();
    let err = next(&mut source).await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(401));
    assert!(!err.is_retryable());
    assert_eq!(
        err.to_string(),
        "server answered 401 Unauthorized: missing token"
    );
}

#[tokio::test(start_paused = true)]
async fn wrong_or_missing_content_type_ends_the_client() {
    for ct in [
        Some("text/plain"),
        Some("text/html"),
        Some("application/json"),
        Some("text/event-streams"),
        None,
    ] {
        let server = Fixture::start(move |_, _| {
            let ct = ct
                .map(|c| format!("Content-Type: {c}\r\n"))
                .unwrap_or_default();
            vec![write(&format!(
                "HTTP/1.1 200 OK\r\n{ct}Connection: close\r\n\r\ndata: no\n\n"
            ))]
        })
        .await;
        let mut source = fast(&server.url("/")).build().unwrap();
        match next(&mut source).await {
            Err(Error::ContentType { content_type }) => assert_eq!(content_type.as_deref(), ct),
            other => panic!("{ct:?}: expected a ContentType error, got {other:?}"),
        }
        expect_end(&mut source).await;
        tokio::time::sleep(ms(100)).await;
        assert_eq!(server.requests().len(), 1, "{ct:?}: the client reconnected");
    }
}

#[tokio::test(start_paused = true)]
async fn parameterised_mime_types_open_the_stream() {
    for ct in [
        "text/event-stream; charset=utf-8",
        "text/event-stream;",
        "Text/Event-Stream",
        "text/event-stream ;foo=bar",
    ] {
        let server = Fixture::start(move |_, _| {
            vec![write(&format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nConnection: close\r\n\r\ndata: ok\n\n"
            ))]
        })
        .await;
        let mut source = fast(&server.url("/")).build().unwrap();
        expect_open(&mut source).await;
        assert_eq!(next_event(&mut source).await.data(), "ok", "{ct}");
    }
}

#[tokio::test(start_paused = true)]
async fn redirects_are_followed_and_reconnection_goes_to_the_original_url() {
    for status in [
        "301 Moved Permanently",
        "302 Found",
        "303 See Other",
        "307 Temporary Redirect",
        "308 Permanent Redirect",
    ] {
        let server = Fixture::start(move |_, req| {
            if req.path == "/start" {
                vec![write(&redirect(status, "/moved"))]
            } else {
                sse("id: 1\ndata: moved\n\n")
            }
        })
        .await;
        let mut source = fast(&server.url("/start")).build().unwrap();
        expect_open(&mut source).await;
        assert_eq!(next_event(&mut source).await.data(), "moved");
        expect_reconnecting(&mut source).await;
        expect_open(&mut source).await;
        let paths: Vec<_> = server
            .wait_requests(4)
            .await
            .into_iter()
            .map(|r| r.path)
            .collect();
        assert_eq!(
            paths[..4],
            ["/start", "/moved", "/start", "/moved"],
            "{status}"
        );
        assert_eq!(server.requests()[2].header("last-event-id"), Some("1"));
    }
}

#[tokio::test(start_paused = true)]
async fn redirect_303_turns_post_into_get_and_307_keeps_post() {
    for (status, method, body) in [
        ("303 See Other", "GET", ""),
        ("307 Temporary Redirect", "POST", "payload"),
    ] {
        let server = Fixture::start(move |_, req| {
            if req.path == "/start" {
                vec![write(&redirect(status, "/moved"))]
            } else {
                sse("data: x\n\n")
            }
        })
        .await;
        let mut source = fast(&server.url("/start"))
            .method(http::Method::POST)
            .body("payload")
            .build()
            .unwrap();
        next_event(&mut source).await;
        let moved = &server.requests()[1];
        assert_eq!(moved.method, method, "{status}");
        assert_eq!(moved.body, body.as_bytes(), "{status}");
    }
}

#[tokio::test(start_paused = true)]
async fn authorization_is_not_forwarded_to_another_origin() {
    let other = Fixture::start(|_, _| sse("data: there\n\n")).await;
    let target = other.url("/x");
    let server = Fixture::start(move |_, _| vec![write(&redirect("302 Found", &target))]).await;
    let mut source = fast(&server.url("/"))
        .bearer_token("secret")
        .build()
        .unwrap();
    assert_eq!(next_event(&mut source).await.data(), "there");
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some("Bearer secret")
    );
    assert_eq!(other.requests()[0].header("authorization"), None);
}

#[tokio::test(start_paused = true)]
async fn too_many_redirects_end_the_client() {
    let server = Fixture::start(|_, _| vec![write(&redirect("302 Found", "/again"))]).await;
    let mut source = fast(&server.url("/")).max_redirects(3).build().unwrap();
    match next(&mut source).await {
        Err(Error::TooManyRedirects { limit: 3 }) => {}
        other => panic!("expected TooManyRedirects, got {other:?}"),
    }
    expect_end(&mut source).await;
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn server_retry_is_honoured() {
    let server = Fixture::start(|_, _| sse("retry: 400\ndata: a\n\n")).await;
    // The policy's delay is 10 s: a reconnection after 400 ms can only come
    // from the server's retry.
    let mut source = EventSource::builder(&server.url("/"))
        .reconnect(ReconnectPolicy::default().initial_delay(Duration::from_secs(10)))
        .build()
        .unwrap();
    next_event(&mut source).await;
    let (error, delay) = expect_reconnecting(&mut source).await;
    assert!(matches!(error, Error::StreamEnded), "{error:?}");
    assert_eq!(delay, ms(400));
    let ended = Instant::now();
    expect_open(&mut source).await;
    let reqs = server.requests();
    assert_eq!(reqs[1].at.duration_since(ended), ms(400), "the wait");
}

#[tokio::test(start_paused = true)]
async fn bogus_retry_values_are_ignored() {
    for bogus in [
        "retry: 40x",
        "retry: -5",
        "retry: 1.5",
        "retry:  300",
        "retry: ",
        "retry",
        "Retry: 10",
    ] {
        let body = format!("{bogus}\ndata: a\n\n");
        let server = Fixture::start(move |_, _| sse(&body)).await;
        let mut source = EventSource::builder(&server.url("/"))
            .reconnect(ReconnectPolicy::default().initial_delay(ms(250)))
            .build()
            .unwrap();
        next_event(&mut source).await;
        let (_, delay) = expect_reconnecting(&mut source).await;
        assert_eq!(delay, ms(250), "{bogus:?} changed the delay");
    }
}

#[tokio::test(start_paused = true)]
async fn last_event_id_is_sent_persists_across_id_less_events_and_resets() {
    let server = Fixture::start(|n, _| match n {
        0 => sse("id: 1\ndata: a\n\ndata: b\n\n"),
        1 => sse("data: c\n\n"),
        2 => sse("id\ndata: d\n\n"),
        _ => sse("id: 2\ndata: e\n\n"),
    })
    .await;
    let mut source = fast(&server.url("/")).build().unwrap();
    let datas: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..5 {
            v.push(next_event(&mut source).await.data().to_owned());
        }
        v
    };
    assert_eq!(datas, ["a", "b", "c", "d", "e"]);
    assert_eq!(source.last_event_id(), "2");
    let reqs = server.requests();
    let sent: Vec<_> = reqs.iter().map(|r| r.header("last-event-id")).collect();
    assert_eq!(sent[..4], [None, Some("1"), Some("1"), None]);
}

#[tokio::test(start_paused = true)]
async fn partial_event_is_discarded_on_disconnect() {
    let server = Fixture::start(|n, _| match n {
        0 => sse("data: whole\n\nid: 9\ndata: part"),
        _ => sse("data: next\n\n"),
    })
    .await;
    let mut source = fast(&server.url("/")).build().unwrap();
    assert_eq!(next_event(&mut source).await.data(), "whole");
    assert_eq!(next_event(&mut source).await.data(), "next");
    // The id inside the cut block was never committed.
    assert_eq!(server.requests()[1].header("last-event-id"), None);
}

#[tokio::test(start_paused = true)]
async fn partial_event_is_discarded_when_a_chunked_body_breaks() {
    let server = Fixture::start(|n, _| match n {
        0 => vec![write(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n\
             e\r\ndata: whole\n\n\r\n\
             5\r\ndata:\r\n",
        )],
        _ => sse("data: next\n\n"),
    })
    .await;
    let mut source = fast(&server.url("/")).build().unwrap();
    assert_eq!(next_event(&mut source).await.data(), "whole");
    let (error, _) = expect_reconnecting(&mut source).await;
    assert!(matches!(error, Error::Body(_)), "{error:?}");
    assert_eq!(next_event(&mut source).await.data(), "next");
}

/// A large event is put together from many reads, up to the configured
/// limit exactly; one byte more is dropped with its typed error and the
/// stream goes on. A 64 KiB limit takes the same paths as the default
/// 16 MiB one, for a fraction of the bytes.
#[tokio::test(start_paused = true)]
async fn an_event_as_large_as_the_limit_arrives_whole_and_one_byte_more_is_dropped() {
    const LIMIT: usize = 64 << 10;
    // The limit counts each data line with its line feed.
    const LARGEST: usize = LIMIT - 1;
    let at_limit = format!("data: {}\n\n", "x".repeat(LARGEST));
    let over = format!("data: {}\n\n", "y".repeat(LARGEST + 1));
    let server = Fixture::start(move |_, _| {
        let mut steps = vec![write(SSE_HEAD)];
        // A pause between 4 KiB pieces: each piece is a read of its own.
        for piece in at_limit.as_bytes().chunks(4096) {
            steps.push(Step::Write(piece.to_vec()));
            steps.push(sleep_ms(1));
        }
        steps.push(write(&over));
        steps.push(write("data: after\n\n"));
        steps.push(Step::Hang);
        steps
    })
    .await;
    let mut source = fast(&server.url("/"))
        .limits(Limits::default().max_line(1 << 20).max_event(LIMIT))
        .build()
        .unwrap();
    expect_open(&mut source).await;
    match next(&mut source).await {
        Ok(Item::Event(event)) => {
            assert_eq!(event.data().len(), LARGEST);
            assert!(event.data().bytes().all(|b| b == b'x'));
        }
        other => panic!("expected the event at the limit, got {other:?}"),
    }
    match next(&mut source).await {
        Ok(Item::Dropped(ParseError::EventTooLarge { limit: LIMIT })) => {}
        other => panic!("expected EventTooLarge, got {other:?}"),
    }
    assert_eq!(next_event(&mut source).await.data(), "after");
}

#[tokio::test(start_paused = true)]
async fn one_byte_chunks_parse_the_same() {
    let body = "\u{feff}id: 1\r\nevent: greet\r\ndata: hé\r\ndata: llo\r\n\r\n: comment\rdata: two\r\rdata: three\n\n";
    let server = Fixture::start(move |_, _| {
        vec![
            write(SSE_HEAD),
            Step::Bytewise(body.as_bytes().to_vec()),
            Step::Hang,
        ]
    })
    .await;
    let mut source = fast(&server.url("/")).build().unwrap();
    let first = next_event(&mut source).await;
    assert_eq!(
        (first.event_type(), first.data(), first.last_event_id()),
        ("greet", "hé\nllo", "1")
    );
    assert_eq!(next_event(&mut source).await.data(), "two");
    let third = next_event(&mut source).await;
    assert_eq!(
        (third.event_type(), third.data(), third.last_event_id()),
        ("message", "three", "1")
    );
}

/// The read timeout also bounds the wait for the response head: a server
/// that accepts and never answers is left after exactly that long.
#[tokio::test(start_paused = true)]
async fn read_timeout_bounds_the_wait_for_the_response() {
    let server = Fixture::start(|n, _| match n {
        0 => vec![Step::Hang],
        _ => sse("data: b\n\n"),
    })
    .await;
    let mut source = fast(&server.url("/"))
        .read_timeout(ms(300))
        .build()
        .unwrap();
    let started = Instant::now();
    let (error, _) = expect_reconnecting(&mut source).await;
    assert!(
        matches!(error, Error::ReadTimeout(d) if d == ms(300)),
        "{error:?}"
    );
    assert_eq!(started.elapsed(), ms(300));
    assert_eq!(next_event(&mut source).await.data(), "b");
}

#[tokio::test(start_paused = true)]
async fn read_timeout_reconnects_when_nothing_arrives() {
    let server = Fixture::start(|n, _| match n {
        0 => vec![write(SSE_HEAD), write("id: 5\ndata: a\n\n"), Step::Hang],
        _ => vec![write(SSE_HEAD), write("data: b\n\n"), Step::Hang],
    })
    .await;
    let mut source = fast(&server.url("/"))
        .read_timeout(ms(300))
        .build()
        .unwrap();
    assert_eq!(next_event(&mut source).await.data(), "a");
    let silent_since = Instant::now();
    let (error, _) = expect_reconnecting(&mut source).await;
    assert!(
        matches!(error, Error::ReadTimeout(d) if d == ms(300)),
        "{error:?}"
    );
    assert_eq!(silent_since.elapsed(), ms(300), "timed out after");
    assert_eq!(next_event(&mut source).await.data(), "b");
    assert_eq!(server.requests()[1].header("last-event-id"), Some("5"));
}

/// Each heartbeat comes 1 ms before the read timeout would fire, and the
/// event after four of them comes at four times that: only heartbeats
/// resetting the timeout keep the connection open so long.
#[tokio::test(start_paused = true)]
async fn heartbeat_comments_keep_the_connection_alive() {
    const HEARTBEATS: u32 = 4;
    let server = Fixture::start(|_, _| {
        let mut steps = vec![write(SSE_HEAD)];
        for _ in 0..HEARTBEATS {
            steps.push(sleep_ms(399));
            steps.push(write(":\n"));
        }
        steps.push(write("data: late\n\n"));
        steps.push(Step::Hang);
        steps
    })
    .await;
    let mut source = fast(&server.url("/"))
        .read_timeout(ms(400))
        .build()
        .unwrap();
    expect_open(&mut source).await;
    let opened = Instant::now();
    match next(&mut source).await {
        Ok(Item::Event(e)) => assert_eq!(e.data(), "late"),
        other => panic!("expected the event after the heartbeats, got {other:?}"),
    }
    assert_eq!(opened.elapsed(), ms(399) * HEARTBEATS);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn comments_are_yielded_only_when_asked() {
    let server = Fixture::start(|_, _| sse(": hello\ndata: x\n\n")).await;
    let mut source = fast(&server.url("/")).comments(true).build().unwrap();
    expect_open(&mut source).await;
    assert!(matches!(next(&mut source).await, Ok(Item::Comment(c)) if c == " hello"));
    let mut plain = fast(&server.url("/")).build().unwrap();
    expect_open(&mut plain).await;
    assert!(matches!(next(&mut plain).await, Ok(Item::Event(_))));
}

#[tokio::test(start_paused = true)]
async fn max_attempts_is_honoured() {
    let server = Fixture::start(|_, _| hang_up()).await;
    let mut source = EventSource::builder(&server.url("/"))
        .reconnect(
            ReconnectPolicy::default()
                .initial_delay(ms(10))
                .max_attempts(Some(3)),
        )
        .build()
        .unwrap();
    for _ in 0..3 {
        let (error, _) = expect_reconnecting(&mut source).await;
        assert!(matches!(error, Error::Connect(_)), "{error:?}");
    }
    match next(&mut source).await {
        Err(Error::AttemptsExhausted { attempts: 3, last }) => {
            assert!(matches!(*last, Error::Connect(_)))
        }
        other => panic!("expected AttemptsExhausted, got {other:?}"),
    }
    expect_end(&mut source).await;
    tokio::time::sleep(ms(100)).await;
    assert_eq!(server.requests().len(), 4, "first connection + 3 attempts");
}

#[tokio::test(start_paused = true)]
async fn backoff_grows_on_failures_and_resets_after_a_healthy_connection() {
    let server = Fixture::start(|n, _| {
        if n < 4 {
            hang_up()
        } else {
            sse("data: ok\n\n")
        }
    })
    .await;
    let policy = ReconnectPolicy::default()
        .initial_delay(ms(20))
        .backoff_factor(2.0)
        .jitter(0.0)
        .max_delay(ms(80));
    let mut source = EventSource::builder(&server.url("/"))
        .reconnect(policy)
        .build()
        .unwrap();
    let mut delays = Vec::new();
    let mut failed_at = Vec::new();
    for _ in 0..4 {
        delays.push(expect_reconnecting(&mut source).await.1);
        failed_at.push(Instant::now());
    }
    assert_eq!(delays, [ms(20), ms(40), ms(80), ms(80)]);
    expect_open(&mut source).await;
    // The waits really taken, from each failure to the next request.
    let requests = server.requests();
    let waited: Vec<Duration> = failed_at
        .iter()
        .zip(&requests[1..])
        .map(|(failed, next)| next.at.duration_since(*failed))
        .collect();
    assert_eq!(waited, delays);
    next_event(&mut source).await;
    let (_, delay) = expect_reconnecting(&mut source).await;
    assert_eq!(delay, ms(20), "a healthy connection resets the backoff");
}

#[tokio::test(start_paused = true)]
async fn unreachable_server_is_a_retryable_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut source = EventSource::builder(&format!("http://{addr}/"))
        .reconnect(ReconnectPolicy::default().max_attempts(Some(0)))
        .build()
        .unwrap();
    match next(&mut source).await {
        Err(Error::AttemptsExhausted { attempts: 0, last }) => assert!(last.is_retryable()),
        other => panic!("expected AttemptsExhausted, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn nothing_is_delivered_after_close() {
    let (tx, mut closed) = tokio::sync::mpsc::unbounded_channel();
    // "b" comes with "a": when the source is closed, it has arrived.
    let server = Fixture::start(move |_, _| {
        vec![
            write(SSE_HEAD),
            write("data: a\n\ndata: b\n\n"),
            Step::AwaitClientClose(tx.clone()),
        ]
    })
    .await;
    let mut source = fast(&server.url("/")).build().unwrap();
    assert_eq!(next_event(&mut source).await.data(), "a");
    source.close();
    assert_eq!(source.ready_state(), ReadyState::Closed);
    assert!(source.next().await.is_none());
    let seen = tokio::time::timeout(Duration::from_secs(10), closed.recv()).await;
    assert!(
        matches!(seen, Ok(Some(()))),
        "close left the connection open"
    );
}

/// Records whether it was woken.
#[derive(Default)]
struct WakeFlag(AtomicBool);

impl Wake for WakeFlag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Closing from another thread wakes a poll that waits on the network inside
/// `close` itself, not when some byte or timer comes later: the poll is
/// driven by hand here, and nothing else runs between it and the check.
#[tokio::test(start_paused = true)]
async fn close_handle_wakes_a_pending_poll_and_ends_the_stream() {
    let server =
        Fixture::start(|_, _| vec![write(SSE_HEAD), write("data: a\n\n"), Step::Hang]).await;
    let mut source = fast(&server.url("/")).build().unwrap();
    assert_eq!(next_event(&mut source).await.data(), "a");
    let woken = Arc::new(WakeFlag::default());
    let waker = Waker::from(woken.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut source).poll_next(&mut cx).is_pending());
    assert!(!woken.0.load(Ordering::SeqCst), "woken with nothing sent");
    let handle = source.close_handle();
    std::thread::spawn(move || handle.close()).join().unwrap();
    assert!(
        woken.0.load(Ordering::SeqCst),
        "close did not wake the pending poll"
    );
    let after = Pin::new(&mut source).poll_next(&mut cx);
    assert!(
        matches!(after, Poll::Ready(None)),
        "delivered after close: {after:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn close_during_the_reconnection_wait_stops_reconnecting() {
    let server = Fixture::start(|_, _| sse("data: a\n\n")).await;
    let mut source = EventSource::builder(&server.url("/"))
        .reconnect(ReconnectPolicy::default().initial_delay(ms(200)))
        .build()
        .unwrap();
    next_event(&mut source).await;
    assert_eq!(expect_reconnecting(&mut source).await.1, ms(200));
    source.close();
    assert!(source.next().await.is_none());
    // Past the planned reconnection: had anything outlived close, it would
    // have connected by now.
    tokio::time::sleep(ms(400)).await;
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_source_closes_the_connection() {
    let (tx, mut closed) = tokio::sync::mpsc::unbounded_channel();
    let server = Fixture::start(move |_, _| {
        vec![
            write(SSE_HEAD),
            write("data: a\n\n"),
            Step::AwaitClientClose(tx.clone()),
        ]
    })
    .await;
    let mut source = fast(&server.url("/")).build().unwrap();
    next_event(&mut source).await;
    drop(source);
    let seen = tokio::time::timeout(Duration::from_secs(5), closed.recv()).await;
    assert!(
        matches!(seen, Ok(Some(()))),
        "the server never saw the connection close"
    );
}

#[tokio::test(start_paused = true)]
async fn events_adapter_yields_only_events() {
    let server = Fixture::start(|n, _| match n {
        0 => sse(": c\ndata: one\n\n"),
        _ => sse("data: two\n\n"),
    })
    .await;
    let mut events = fast(&server.url("/"))
        .comments(true)
        .build()
        .unwrap()
        .events();
    let one = events.next().await.unwrap().unwrap();
    let two = events.next().await.unwrap().unwrap();
    assert_eq!((one.data(), two.data()), ("one", "two"));
    events.close();
    assert!(events.next().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn invalid_urls_and_headers_are_refused_at_build() {
    for url in ["not a url", "ftp://host/x", "/relative"] {
        assert!(
            matches!(EventSource::new(url), Err(Error::InvalidUrl { .. })),
            "{url}"
        );
    }
    let err = EventSource::builder("http://127.0.0.1:1/")
        .header("Bad Name", "v")
        .build();
    assert!(matches!(err, Err(Error::InvalidHeader { .. })));
}

/// `healthy_after` is a boundary: a connection open exactly that long resets
/// the backoff without delivering an event; one open 1 ms less does not.
#[tokio::test(start_paused = true)]
async fn a_connection_open_long_enough_is_healthy_even_without_events() {
    const HEALTHY_AFTER: u64 = 200;
    let server = Fixture::start(|n, _| match n {
        0 | 3 => hang_up(),
        1 => vec![write(SSE_HEAD), sleep_ms(HEALTHY_AFTER - 1)],
        2 => vec![write(SSE_HEAD), sleep_ms(HEALTHY_AFTER)],
        _ => vec![write(SSE_HEAD), Step::Hang],
    })
    .await;
    let policy = ReconnectPolicy::default().initial_delay(ms(20)).jitter(0.0);
    let mut source = EventSource::builder(&server.url("/"))
        .reconnect(policy)
        .healthy_after(ms(HEALTHY_AFTER))
        .build()
        .unwrap();
    assert_eq!(expect_reconnecting(&mut source).await.1, ms(20));
    // Open, then ended by the server; returns how long it was open and the
    // delay chosen after it.
    async fn open_then_ended(source: &mut EventSource) -> (Duration, Duration) {
        expect_open(source).await;
        let opened = Instant::now();
        let (error, delay) = expect_reconnecting(source).await;
        assert!(matches!(error, Error::StreamEnded), "{error:?}");
        (opened.elapsed(), delay)
    }
    assert_eq!(
        open_then_ended(&mut source).await,
        (ms(HEALTHY_AFTER - 1), ms(40)),
        "open less than healthy_after: the backoff goes on"
    );
    assert_eq!(
        open_then_ended(&mut source).await,
        (ms(HEALTHY_AFTER), ms(20)),
        "open for healthy_after: the backoff starts over"
    );
    assert_eq!(expect_reconnecting(&mut source).await.1, ms(40));
    expect_open(&mut source).await;
}

#[tokio::test(start_paused = true)]
async fn an_id_only_block_moves_the_last_event_id() {
    let server = Fixture::start(|n, _| match n {
        0 => sse("data: a\n\nid: 5\n\n"),
        _ => vec![write(SSE_HEAD), Step::Hang],
    })
    .await;
    let mut source = fast(&server.url("/")).build().unwrap();
    next_event(&mut source).await;
    expect_reconnecting(&mut source).await;
    assert_eq!(source.last_event_id(), "5");
    expect_open(&mut source).await;
    assert_eq!(server.requests()[1].header("last-event-id"), Some("5"));
}

#[tokio::test(start_paused = true)]
async fn last_event_id_is_that_of_the_event_just_yielded() {
    // Three dispatches in one chunk: the source's last event id moves with
    // each as it is yielded, not ahead of it.
    let server = Fixture::start(|n, _| match n {
        0 => vec![
            write(SSE_HEAD),
            write("id: 1\ndata: a\n\nid: 2\ndata: b\n\nid: 3\n\n"),
            Step::Hang,
        ],
        _ => vec![write(SSE_HEAD), Step::Hang],
    })
    .await;
    let mut source = fast(&server.url("/"))
        .read_timeout(ms(300))
        .build()
        .unwrap();
    assert_eq!(next_event(&mut source).await.data(), "a");
    assert_eq!(source.last_event_id(), "1");
    assert_eq!(next_event(&mut source).await.data(), "b");
    assert_eq!(source.last_event_id(), "2");
    // The id-only block moves it when the parser reaches it.
    expect_reconnecting(&mut source).await;
    assert_eq!(source.last_event_id(), "3");
    expect_open(&mut source).await;
    assert_eq!(server.requests()[1].header("last-event-id"), Some("3"));
}

#[tokio::test(start_paused = true)]
async fn an_id_that_cannot_be_a_header_is_not_reported_as_sent() {
    // A control character other than CR, LF or NUL is valid in an id but
    // not in a header value: no `Last-Event-ID` goes out, and `Opened` says
    // none was sent, so a hub answering `earliest` is no lost resume.
    const HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nLast-Event-ID: earliest\r\nConnection: close\r\n\r\n";
    let server = Fixture::start(|n, _| match n {
        0 => vec![write(HEAD), write("id: x\u{1}y\ndata: a\n\n")],
        _ => vec![write(HEAD), Step::Hang],
    })
    .await;
    let mut source = fast(&server.url("/"))
        .last_event_id("bad\u{7}id")
        .build()
        .unwrap();
    async fn expect_open_without_id(source: &mut EventSource) {
        match next(source).await {
            Ok(Item::Open(opened)) => {
                assert_eq!(opened.sent_last_event_id, "");
                assert!(!opened.resume_lost());
            }
            other => panic!("expected Open, got {other:?}"),
        }
    }
    // The initial id, from the builder.
    expect_open_without_id(&mut source).await;
    // An id from the server, on reconnection.
    assert_eq!(next_event(&mut source).await.last_event_id(), "x\u{1}y");
    expect_reconnecting(&mut source).await;
    expect_open_without_id(&mut source).await;
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.header("last-event-id").is_none()));
}

#[tokio::test(start_paused = true)]
async fn connect_errors_show_their_innermost_cause() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut source = EventSource::builder(&format!("http://{addr}/"))
        .reconnect(ReconnectPolicy::default().max_attempts(Some(0)))
        .build()
        .unwrap();
    let last = match next(&mut source).await {
        Err(Error::AttemptsExhausted { last, .. }) => last,
        other => panic!("expected AttemptsExhausted, got {other:?}"),
    };
    assert!(matches!(*last, Error::Connect(_)), "{last:?}");
    let mut innermost: &dyn std::error::Error = &*last;
    while let Some(cause) = innermost.source() {
        innermost = cause;
    }
    let text = last.to_string();
    assert!(text.starts_with("connection failed: "), "{text}");
    assert!(text.contains(&innermost.to_string()), "{text}");
}

#[tokio::test(start_paused = true)]
async fn an_event_over_the_limits_is_dropped_and_the_stream_goes_on() {
    let body = format!("data: {}\n\ndata: small\n\n", "x".repeat(2048));
    let server = Fixture::start(move |_, _| vec![write(SSE_HEAD), write(&body), Step::Hang]).await;
    let mut source = fast(&server.url("/"))
        .limits(herald_client::Limits::default().max_event(1024))
        .build()
        .unwrap();
    expect_open(&mut source).await;
    match next(&mut source).await {
        Ok(Item::Dropped(_)) => {}
        other => panic!("expected Dropped, got {other:?}"),
    }
    assert_eq!(next_event(&mut source).await.data(), "small");
}

#[tokio::test(start_paused = true)]
async fn ready_state_follows_the_connection() {
    let server = Fixture::start(|n, _| match n {
        0 => sse("data: a\n\n"),
        _ => vec![write(&empty_response("204 No Content", None))],
    })
    .await;
    let mut source = fast(&server.url("/")).build().unwrap();
    assert_eq!(source.ready_state(), ReadyState::Connecting);
    expect_open(&mut source).await;
    assert_eq!(source.ready_state(), ReadyState::Open);
    next_event(&mut source).await;
    expect_reconnecting(&mut source).await;
    assert_eq!(source.ready_state(), ReadyState::Connecting);
    assert!(next(&mut source).await.is_err());
    assert_eq!(source.ready_state(), ReadyState::Closed);
}

#[tokio::test(start_paused = true)]
async fn open_reports_the_answering_url_headers_and_a_lost_resume() {
    let server = Fixture::start(|_, req| {
        if req.path == "/start" {
            return vec![write(&redirect("307 Temporary Redirect", "/hub"))];
        }
        let resumed = match req.header("last-event-id") {
            Some("known") => "known",
            _ => "earliest",
        };
        vec![
            write(&format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nLast-Event-ID: {resumed}\r\nConnection: close\r\n\r\n"
            )),
            Step::Hang,
        ]
    })
    .await;
    for (sent, lost) in [("gone", true), ("known", false), ("earliest", false)] {
        let mut source = fast(&server.url("/start"))
            .last_event_id(sent)
            .build()
            .unwrap();
        match next(&mut source).await {
            Ok(Item::Open(opened)) => {
                assert_eq!(opened.url.path(), "/hub");
                assert_eq!(opened.sent_last_event_id, sent);
                assert_eq!(opened.resume_lost(), lost, "sent {sent}");
            }
            other => panic!("expected Open, got {other:?}"),
        }
    }
}

// A hub speaking only draft-08 says `earliest` in `Mercure-Last-Event-ID`
// alone: that is a lost resume too.
#[tokio::test(start_paused = true)]
async fn a_draft_08_hub_reports_a_lost_resume_in_its_own_header() {
    let server = Fixture::start(|_, req| {
        let resumed = match req.header("last-event-id") {
            Some("known") => "known",
            _ => "earliest",
        };
        vec![
            write(&format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nMercure-Last-Event-ID: {resumed}\r\nConnection: close\r\n\r\n"
            )),
            Step::Hang,
        ]
    })
    .await;
    for (sent, lost) in [("gone", true), ("known", false), ("earliest", false)] {
        let mut source = fast(&server.url("/hub"))
            .last_event_id(sent)
            .build()
            .unwrap();
        match next(&mut source).await {
            Ok(Item::Open(opened)) => assert_eq!(opened.resume_lost(), lost, "sent {sent}"),
            other => panic!("expected Open, got {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn other_non_200_statuses_end_the_client_too() {
    for status in [
        "201 Created",
        "300 Multiple Choices",
        "304 Not Modified",
        "401 Unauthorized",
        "500 Internal Server Error",
    ] {
        let code: u16 = status[..3].parse().unwrap();
        let server = Fixture::start(move |_, _| {
            vec![write(&empty_response(status, Some("text/event-stream")))]
        })
        .await;
        let mut source = fast(&server.url("/")).build().unwrap();
        match next(&mut source).await {
            Err(e) => assert_eq!(e.status().map(|s| s.as_u16()), Some(code), "{e}"),
            other => panic!("{code}: expected a Status error, got {other:?}"),
        }
        expect_end(&mut source).await;
        tokio::time::sleep(ms(50)).await;
        assert_eq!(server.requests().len(), 1, "{code}: the client reconnected");
    }
}

/// A 30 s `retry` is waited in full and no longer, without the test taking
/// 30 s.
#[tokio::test(start_paused = true)]
async fn a_long_server_retry_is_waited_in_full() {
    let server = Fixture::start(|n, _| match n {
        0 => sse("retry: 30000\ndata: a\n\n"),
        _ => sse("data: b\n\n"),
    })
    .await;
    let mut source = EventSource::builder(&server.url("/")).build().unwrap();
    // `next`'s 10 s guard is shorter than the wait: this one is longer.
    async fn next_within_minutes(source: &mut EventSource) -> Item {
        tokio::time::timeout(Duration::from_secs(300), source.next())
            .await
            .expect("no item within 300 s")
            .expect("stream ended")
            .unwrap()
    }
    assert!(matches!(
        next_within_minutes(&mut source).await,
        Item::Open(_)
    ));
    assert!(matches!(next_within_minutes(&mut source).await, Item::Event(e) if e.data() == "a"));
    match next_within_minutes(&mut source).await {
        Item::Reconnecting { delay, .. } => assert_eq!(delay, Duration::from_secs(30)),
        other => panic!("expected Reconnecting, got {other:?}"),
    }
    let ended = Instant::now();
    assert!(matches!(
        next_within_minutes(&mut source).await,
        Item::Open(_)
    ));
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1].at.duration_since(ended),
        Duration::from_secs(30)
    );
    assert!(matches!(next_within_minutes(&mut source).await, Item::Event(e) if e.data() == "b"));
}
