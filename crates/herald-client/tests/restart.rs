//! `EventSource::restart` and its kin against the scripted server: the
//! connection is dropped and a new one made at once, with `Last-Event-ID`
//! and the headers as changed.
//!
//! As in `client.rs`, the client and the fixture share one current-thread
//! runtime with the tokio clock paused: time moves only when every task
//! waits on a timer. The sources here wait an hour before reconnecting, and
//! every wait for an item gives up after 10 s: a restart that waited for
//! the backoff would fail the test instead of passing slowly, and a request
//! that arrives at the very instant of the restart shows that nothing was
//! waited. No test sleeps: each waits for an item, a request or a close.

mod fixture;

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use fixture::{empty_response, hang_up, sse_head_then, write, Fixture, Request, Step, SSE_HEAD};
use futures_core::Stream;
use futures_util::StreamExt;
use herald_client::{
    Builder, Error, Event, EventSource, Item, Opened, ReadyState, ReconnectPolicy,
};
use http::header::{HeaderMap, HeaderValue};
use tokio::sync::mpsc;
use tokio::time::Instant;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A builder whose reconnections wait an hour: longer than any guard here.
fn slow(url: &str) -> Builder {
    EventSource::builder(url).reconnect(
        ReconnectPolicy::default()
            .initial_delay(Duration::from_secs(3600))
            .jitter(0.0),
    )
}

/// The next item; panics if the stream ends or nothing comes for 10 s.
async fn next(source: &mut EventSource) -> Result<Item, Error> {
    tokio::time::timeout(Duration::from_secs(10), source.next())
        .await
        .expect("no item within 10 s")
        .expect("stream ended")
}

async fn expect_event(source: &mut EventSource) -> Event {
    match next(source).await {
        Ok(Item::Event(event)) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

async fn expect_open(source: &mut EventSource) -> Opened {
    match next(source).await {
        Ok(Item::Open(opened)) => opened,
        other => panic!("expected Open, got {other:?}"),
    }
}

async fn expect_reconnecting(source: &mut EventSource) -> (Error, Duration) {
    match next(source).await {
        Ok(Item::Reconnecting { error, delay }) => (error, delay),
        other => panic!("expected Reconnecting, got {other:?}"),
    }
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_static(value));
    }
    map
}

/// Every value of a header in a recorded request.
fn all<'a>(request: &'a Request, name: &str) -> Vec<&'a str> {
    request
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Waits until the server sees the client close a connection.
async fn expect_closed_by_client(closed: &mut mpsc::UnboundedReceiver<()>) {
    let seen = tokio::time::timeout(Duration::from_secs(10), closed.recv()).await;
    assert!(
        matches!(seen, Ok(Some(()))),
        "the old connection was left open"
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

/// Polls the source by hand until it waits (for the network or a timer),
/// then restarts it from another thread, and asserts that the restart
/// woke the waiting poll: without that, a restart from another task would
/// wait for the next byte or timer.
fn restart_from_another_thread_while_pending(source: &mut EventSource) {
    let woken = Arc::new(WakeFlag::default());
    let waker = Waker::from(woken.clone());
    let mut cx = Context::from_waker(&waker);
    let poll = Pin::new(&mut *source).poll_next(&mut cx);
    assert!(
        poll.is_pending(),
        "expected the source to wait, got {poll:?}"
    );
    assert!(!woken.0.load(Ordering::SeqCst), "woken with nothing sent");
    let handle = source.restart_handle();
    std::thread::spawn(move || handle.restart()).join().unwrap();
    assert!(
        woken.0.load(Ordering::SeqCst),
        "restart did not wake the pending poll"
    );
}

#[tokio::test(start_paused = true)]
async fn restart_mid_stream_resumes_at_once_from_the_last_event_id() {
    let (tx, mut closed) = mpsc::unbounded_channel();
    let server = Fixture::start(move |n, _| match n {
        0 => vec![
            write(SSE_HEAD),
            write("id: 1\ndata: a\n\nid: 2\ndata: b\n\n"),
            Step::AwaitClientClose(tx.clone()),
        ],
        _ => sse_head_then("data: after\n\n"),
    })
    .await;
    let mut source = slow(&server.url("/")).build().unwrap();
    expect_open(&mut source).await;
    // "b" came in the same write: read, not yielded yet.
    assert_eq!(expect_event(&mut source).await.data(), "a");
    assert_eq!(source.ready_state(), ReadyState::Open);

    source.restart();
    let restarted = Instant::now();
    assert_eq!(source.ready_state(), ReadyState::Connecting);
    let opened = expect_open(&mut source).await;
    assert_eq!(opened.sent_last_event_id, "1");
    assert_eq!(source.ready_state(), ReadyState::Open);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].header("last-event-id"), Some("1"));
    assert_eq!(requests[1].at.duration_since(restarted), Duration::ZERO);
    expect_closed_by_client(&mut closed).await;
    // Nothing of the old connection after the restart: the server replays
    // "b" from id 1 if it keeps history.
    let after = expect_event(&mut source).await;
    assert_eq!((after.data(), after.last_event_id()), ("after", "1"));
}

/// The restart comes from another thread while the source waits for the
/// next bytes of an open connection.
#[tokio::test(start_paused = true)]
async fn restart_from_a_handle_wakes_a_source_waiting_on_the_connection() {
    let (tx, mut closed) = mpsc::unbounded_channel();
    let server = Fixture::start(move |n, _| match n {
        0 => vec![
            write(SSE_HEAD),
            write("id: 1\ndata: a\n\n"),
            Step::AwaitClientClose(tx.clone()),
        ],
        _ => sse_head_then("data: b\n\n"),
    })
    .await;
    let mut source = slow(&server.url("/")).build().unwrap();
    expect_open(&mut source).await;
    assert_eq!(expect_event(&mut source).await.data(), "a");
    restart_from_another_thread_while_pending(&mut source);
    let restarted = Instant::now();
    assert_eq!(expect_open(&mut source).await.sent_last_event_id, "1");
    let requests = server.requests();
    assert_eq!(requests[1].at.duration_since(restarted), Duration::ZERO);
    expect_closed_by_client(&mut closed).await;
    assert_eq!(expect_event(&mut source).await.data(), "b");
}

/// The comment after the unfinished block shows that the client has parsed
/// its `id` and `data` lines before the restart.
#[tokio::test(start_paused = true)]
async fn a_partial_event_cut_by_a_restart_is_not_dispatched() {
    let server = Fixture::start(|n, _| match n {
        0 => vec![
            write(SSE_HEAD),
            write("id: 1\ndata: whole\n\n"),
            write("id: 9\ndata: part\n: parsed so far\ndata: more"),
            Step::Hang,
        ],
        _ => sse_head_then("data: next\n\n"),
    })
    .await;
    let mut source = slow(&server.url("/")).comments(true).build().unwrap();
    expect_open(&mut source).await;
    assert_eq!(expect_event(&mut source).await.data(), "whole");
    match next(&mut source).await {
        Ok(Item::Comment(text)) => assert_eq!(text, " parsed so far"),
        other => panic!("expected the comment, got {other:?}"),
    }
    source.restart();
    // The `id: 9` of the unfinished block was never committed.
    assert_eq!(source.last_event_id(), "1");
    assert_eq!(expect_open(&mut source).await.sent_last_event_id, "1");
    // The next item is the new connection's event: "part" never comes.
    let next_event = expect_event(&mut source).await;
    assert_eq!(
        (next_event.data(), next_event.last_event_id()),
        ("next", "1")
    );
    assert_eq!(server.requests()[1].header("last-event-id"), Some("1"));
}

#[tokio::test(start_paused = true)]
async fn new_headers_are_sent_by_the_restart_and_every_later_reconnection() {
    let server = Fixture::start(|n, _| match n {
        0 => sse_head_then("id: 1\ndata: a\n\n"),
        // Ends after its event: the server-initiated reconnection.
        1 => vec![write(SSE_HEAD), write("id: 2\ndata: b\n\n")],
        _ => sse_head_then("data: c\n\n"),
    })
    .await;
    let mut source = EventSource::builder(&server.url("/"))
        .reconnect(ReconnectPolicy::default().initial_delay(ms(20)).jitter(0.0))
        .bearer_token("old")
        .header("X-Client", "kept")
        .build()
        .unwrap();
    expect_open(&mut source).await;
    assert_eq!(expect_event(&mut source).await.data(), "a");
    source.restart_with_headers(headers(&[
        ("authorization", "Bearer new"),
        ("x-added", "yes"),
    ]));
    expect_open(&mut source).await;
    assert_eq!(expect_event(&mut source).await.data(), "b");
    let (error, delay) = expect_reconnecting(&mut source).await;
    assert!(matches!(error, Error::StreamEnded), "{error:?}");
    assert_eq!(delay, ms(20), "an ordinary reconnection");
    expect_open(&mut source).await;
    assert_eq!(expect_event(&mut source).await.data(), "c");

    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(all(&requests[0], "authorization"), ["Bearer old"]);
    assert_eq!(all(&requests[0], "x-added"), Vec::<&str>::new());
    for (request, last_id) in requests[1..].iter().zip(["1", "2"]) {
        assert_eq!(all(request, "authorization"), ["Bearer new"]);
        assert_eq!(all(request, "x-added"), ["yes"]);
        assert_eq!(all(request, "x-client"), ["kept"]);
        assert_eq!(request.header("last-event-id"), Some(last_id));
    }
}

/// `set_headers` changes the next connection, before the first one too,
/// and leaves the open one alone.
#[tokio::test(start_paused = true)]
async fn set_headers_apply_from_the_next_connection_without_restarting() {
    let server = Fixture::start(|n, _| match n {
        0 => vec![write(SSE_HEAD), write("data: a\n\n"), write("data: b\n\n")],
        _ => sse_head_then("data: c\n\n"),
    })
    .await;
    let mut source = EventSource::builder(&server.url("/"))
        .reconnect(ReconnectPolicy::default().initial_delay(ms(20)).jitter(0.0))
        .header("X-Token", "built")
        .build()
        .unwrap();
    source.set_headers(headers(&[("x-token", "first")]));
    expect_open(&mut source).await;
    assert_eq!(expect_event(&mut source).await.data(), "a");
    source.set_headers(headers(&[("x-token", "second")]));
    // Still the same connection: a restart would have dropped "b".
    assert_eq!(expect_event(&mut source).await.data(), "b");
    assert_eq!(server.requests().len(), 1);
    expect_reconnecting(&mut source).await;
    expect_open(&mut source).await;
    let requests = server.requests();
    assert_eq!(all(&requests[0], "x-token"), ["first"]);
    assert_eq!(all(&requests[1], "x-token"), ["second"]);
}

/// The first attempt fails, and the source waits an hour before the next;
/// a restart from another thread cuts the wait short.
#[tokio::test(start_paused = true)]
async fn restart_during_the_backoff_after_an_error_connects_at_once() {
    let server = Fixture::start(|n, _| match n {
        0 => hang_up(),
        _ => sse_head_then("data: b\n\n"),
    })
    .await;
    let mut source = slow(&server.url("/")).last_event_id("5").build().unwrap();
    let (error, delay) = expect_reconnecting(&mut source).await;
    assert!(matches!(error, Error::Connect(_)), "{error:?}");
    assert_eq!(delay, Duration::from_secs(3600));
    // The poll now waits on the hour's timer.
    restart_from_another_thread_while_pending(&mut source);
    let restarted = Instant::now();
    assert_eq!(expect_open(&mut source).await.sent_last_event_id, "5");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].at.duration_since(restarted), Duration::ZERO);
    assert_eq!(expect_event(&mut source).await.data(), "b");
}

/// After three failures in a row the next wait is 2 s and a fourth failure
/// would exhaust `max_attempts(3)`; after a restart, a failure waits the
/// base delay again and is not the last attempt.
#[tokio::test(start_paused = true)]
async fn a_restart_starts_the_backoff_and_the_attempts_over() {
    let server = Fixture::start(|n, _| {
        if n < 4 {
            hang_up()
        } else {
            sse_head_then("data: ok\n\n")
        }
    })
    .await;
    let policy = ReconnectPolicy::default()
        .initial_delay(ms(20))
        .backoff_factor(10.0)
        .jitter(0.0)
        .max_delay(Duration::from_secs(3600))
        .max_attempts(Some(3));
    let mut source = EventSource::builder(&server.url("/"))
        .reconnect(policy)
        .build()
        .unwrap();
    let mut delays = Vec::new();
    for _ in 0..3 {
        delays.push(expect_reconnecting(&mut source).await.1);
    }
    assert_eq!(delays, [ms(20), ms(200), ms(2000)]);
    source.restart();
    let restarted = Instant::now();
    let (error, delay) = expect_reconnecting(&mut source).await;
    assert!(matches!(error, Error::Connect(_)), "{error:?}");
    assert_eq!(delay, ms(20));
    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    assert_eq!(requests[3].at.duration_since(restarted), Duration::ZERO);
    expect_open(&mut source).await;
    assert_eq!(expect_event(&mut source).await.data(), "ok");
}

/// A server that accepted the request but has not answered: the restart
/// abandons that attempt, closing its connection, and sends another.
#[tokio::test(start_paused = true)]
async fn restart_while_connecting_abandons_the_attempt() {
    let (tx, mut closed) = mpsc::unbounded_channel();
    let server = Fixture::start(move |n, _| match n {
        0 => vec![Step::AwaitClientClose(tx.clone())],
        _ => sse_head_then("data: b\n\n"),
    })
    .await;
    let mut source = slow(&server.url("/"))
        .header("X-Token", "old")
        .build()
        .unwrap();
    // Poll the source until the server holds its first request.
    tokio::select! {
        item = source.next() => panic!("expected no answer, got {item:?}"),
        _ = server.wait_requests(1) => {}
    }
    source.restart_with_headers(headers(&[("x-token", "new")]));
    let restarted = Instant::now();
    expect_open(&mut source).await;
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].header("x-token"), Some("new"));
    assert_eq!(requests[1].at.duration_since(restarted), Duration::ZERO);
    expect_closed_by_client(&mut closed).await;
    assert_eq!(expect_event(&mut source).await.data(), "b");
}

/// Closed by the user, ended by a fatal error, or dropped: a restart does
/// not bring the source back, and the handle says it is closed.
#[tokio::test(start_paused = true)]
async fn a_restart_does_not_reopen_a_closed_source() {
    let server = Fixture::start(|n, _| match n {
        0 => sse_head_then("data: a\n\n"),
        1 => vec![write(&empty_response("204 No Content", None))],
        _ => sse_head_then("data: again\n\n"),
    })
    .await;

    let mut closed = slow(&server.url("/")).build().unwrap();
    let handle = closed.restart_handle();
    assert_eq!(expect_event_after_open(&mut closed).await.data(), "a");
    closed.close();
    handle.restart();
    assert_eq!(handle.ready_state(), ReadyState::Closed);
    assert!(closed.next().await.is_none());

    let mut ended = slow(&server.url("/")).build().unwrap();
    let handle = ended.restart_handle();
    match next(&mut ended).await {
        Err(Error::Status { status, .. }) => assert_eq!(status.as_u16(), 204),
        other => panic!("expected the 204, got {other:?}"),
    }
    ended.restart();
    assert_eq!(ended.ready_state(), ReadyState::Closed);
    assert!(ended.next().await.is_none());
    assert_eq!(handle.ready_state(), ReadyState::Closed);

    // Nothing runs in the background: with both sources at their end, no
    // request can have come after the two above.
    assert_eq!(server.requests().len(), 2);

    let dropped = slow(&server.url("/")).build().unwrap();
    let handle = dropped.restart_handle();
    drop(dropped);
    handle.restart();
    assert_eq!(handle.ready_state(), ReadyState::Closed);
}

async fn expect_event_after_open(source: &mut EventSource) -> Event {
    expect_open(source).await;
    expect_event(source).await
}
