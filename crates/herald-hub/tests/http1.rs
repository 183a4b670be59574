//! The server's own HTTP/1.1 path for subscriptions, on the wire: framing,
//! keep-alive and pipelining across it and hyper, hang-ups, shutdown, and
//! HTTP/2 with prior knowledge still reaching hyper.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use herald_hub::auth::{mint, Claims};
use herald_hub::server::Server;
use herald_hub::{Hub, HUB_PATH};
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use jsonwebtoken::Algorithm;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads from `tcp` until what was read (from the start of this call)
/// contains `needle`; returns it all.
async fn read_until(tcp: &mut TcpStream, needle: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(LONG, async {
        while !String::from_utf8_lossy(&seen).contains(needle) {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "connection closed before {needle:?}; got {:?}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "no {needle:?} within {LONG:?}; got {:?}",
            String::from_utf8_lossy(&seen)
        )
    });
    String::from_utf8(seen).unwrap()
}

/// A connection that has sent `GET /.well-known/mercure?{query}`.
async fn subscribe_raw(addr: std::net::SocketAddr, query: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("GET {HUB_PATH}?{query} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    tcp
}

/// A subscriber token that expires `secs` from now.
fn expiring_token(secs: u64) -> String {
    let claims = Claims {
        subscribe: Some(vec!["*".into()]),
        exp: Some(now() + secs),
        ..Claims::default()
    };
    mint(Algorithm::HS256, KEY.as_bytes(), &claims).unwrap()
}

#[tokio::test]
async fn a_subscription_is_a_chunked_event_stream_with_the_usual_headers() {
    let hub = start(config()).await;
    let mut tcp = subscribe_raw(hub.addr, "topic=a").await;
    let head = read_until(&mut tcp, "\r\n\r\n").await;
    let lower = head.to_ascii_lowercase();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    for field in [
        "content-type: text/event-stream",
        "transfer-encoding: chunked",
        "cache-control: private, no-cache, no-store",
        "x-accel-buffering: no",
        "date: ",
    ] {
        assert!(lower.contains(field), "no {field:?} in {head}");
    }
    assert!(!lower.contains("content-length"), "{head}");
    // The opening comment arrives as a chunk of its own size.
    if !head.contains(":\n") {
        read_until(&mut tcp, ":\n").await;
    }

    publish(hub.addr, &[("topic", "a"), ("data", "hello"), ("id", "e1")]).await;
    let frame = "id: e1\ndata: hello\n\n";
    let chunk = read_until(&mut tcp, frame).await;
    assert!(
        chunk.contains(&format!("{:x}\r\n{frame}\r\n", frame.len())),
        "{chunk:?}"
    );
}

/// Paused time: the subscription ends when its token expires, which the
/// test brings about by advancing the clock past `exp`.
#[test]
fn after_a_stream_ends_a_pipelined_request_is_answered_on_the_same_connection() {
    paused(|| async {
        let hub = start(config()).await;
        let mut tcp = TcpStream::connect(hub.addr).await.unwrap();
        // The request sent right behind the subscription waits for it to
        // end, then goes to hyper with the bytes already read.
        let token = expiring_token(60);
        let requests = format!(
            "GET {HUB_PATH}?topic=a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n\
             GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        );
        tcp.write_all(requests.as_bytes()).await.unwrap();
        let stream = read_until(&mut tcp, "\r\n:\n\n").await;
        assert!(stream.starts_with("HTTP/1.1 200 OK"), "{stream}");
        assert!(stream.contains("text/event-stream"), "{stream}");
        tokio::time::advance(Duration::from_secs(61)).await;
        let rest = read_until(&mut tcp, "\r\n\r\nok\n").await;
        let (end, next) = rest
            .split_once("0\r\n\r\n")
            .unwrap_or_else(|| panic!("the stream has no last chunk: {rest}"));
        assert!(!end.contains("HTTP/1.1"), "{end}");
        assert!(next.starts_with("HTTP/1.1 200 OK\r\n"), "{next}");
    });
}

#[tokio::test]
async fn a_refused_subscription_has_a_length_and_keeps_the_connection() {
    let hub = start(config()).await;
    // No topic: refused.
    let mut tcp = subscribe_raw(hub.addr, "").await;
    let refusal = read_until(&mut tcp, "\r\n\r\n").await;
    assert!(refusal.starts_with("HTTP/1.1 400 Bad Request"), "{refusal}");
    assert!(
        refusal.to_ascii_lowercase().contains("content-length: "),
        "{refusal}"
    );

    // The same connection then carries a subscription that works.
    tcp.write_all(format!("GET {HUB_PATH}?topic=b HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    read_until(&mut tcp, "text/event-stream").await;
    publish(hub.addr, &[("topic", "b"), ("data", "after")]).await;
    read_until(&mut tcp, "data: after\n\n").await;
}

#[tokio::test]
async fn connection_close_is_honoured() {
    let hub = start(config()).await;
    let mut tcp = TcpStream::connect(hub.addr).await.unwrap();
    tcp.write_all(
        format!("GET {HUB_PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let all = read_until_closed(&mut tcp).await;
    assert!(all.starts_with("HTTP/1.1 400"), "{all}");
    assert!(
        all.to_ascii_lowercase().contains("connection: close"),
        "{all}"
    );
}

#[tokio::test]
async fn a_subscriber_that_hangs_up_is_unregistered_at_once() {
    let hub = start(config()).await;
    let mut tcp = subscribe_raw(hub.addr, "topic=a").await;
    read_until(&mut tcp, "text/event-stream").await;
    assert_eq!(hub.hub.metrics().subscribers, 1);
    drop(tcp);
    // No write is needed to notice: the stream watches its socket.
    wait_subscribers(
        &hub.hub,
        |n| n == 0,
        "a subscriber that hung up is unregistered",
    )
    .await;
}

#[tokio::test]
async fn http2_with_prior_knowledge_is_served_by_hyper() {
    let hub = start(config()).await;
    let tcp = TcpStream::connect(hub.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let request = Request::get(format!("http://{}{HUB_PATH}?topic=a", hub.addr))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    let mut body = response.into_body();
    // The opening comment.
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b":\n\n");
    publish(hub.addr, &[("topic", "a"), ("data", "over h2")]).await;
    let next = tokio::time::timeout(LONG, body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&next).contains("data: over h2"),
        "{next:?}"
    );
}

/// Paused time: the clock stands still, so a server that waited out its
/// ten-second grace period for the open connections would never stop (and
/// the test would fail on its watchdog).
#[test]
fn shutdown_closes_idle_and_streaming_connections_at_once() {
    paused(|| async {
        let hub = Hub::new(config()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(Server::new(&hub).serve(listener, async {
            let _ = stopped.await;
        }));
        // Idle: a keep-alive connection between requests, which the
        // answer to its first proves the server holds.
        let mut idle = TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        read_until(&mut idle, "\r\n\r\nok\n").await;
        let mut streaming = subscribe_raw(addr, "topic=a").await;
        read_until(&mut streaming, "text/event-stream").await;

        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
        let mut rest = Vec::new();
        idle.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "{rest:?}");
        // The stream ends with its last chunk.
        read_until(&mut streaming, "0\r\n\r\n").await;
    });
}

#[tokio::test]
async fn a_client_that_floods_its_open_stream_is_disconnected() {
    let hub = start(config()).await;
    let mut tcp = subscribe_raw(hub.addr, "topic=a").await;
    read_until(&mut tcp, "text/event-stream").await;
    // More than the 64 KiB a pipelined next request may take.
    let junk = vec![b'x'; 80 * 1024];
    let _ = tcp.write_all(&junk).await; // the server may close mid-way
    wait_subscribers(&hub.hub, |n| n == 0, "the flooding client is disconnected").await;
    // Everyone else is still served.
    let mut other = subscribe_raw(hub.addr, "topic=a").await;
    read_until(&mut other, "text/event-stream").await;
    publish(hub.addr, &[("topic", "a"), ("data", "still here")]).await;
    read_until(&mut other, "data: still here\n\n").await;
}

#[tokio::test]
async fn a_head_sent_a_byte_at_a_time_is_served() {
    let hub = start(config()).await;
    let mut tcp = TcpStream::connect(hub.addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let head =
        format!("GET {HUB_PATH}?topic=a HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
    for byte in head.as_bytes() {
        tcp.write_all(&[*byte]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    read_until(&mut tcp, "text/event-stream").await;
    publish(hub.addr, &[("topic", "a"), ("data", "slowly")]).await;
    read_until(&mut tcp, "data: slowly\n\n").await;
}

#[tokio::test]
async fn a_token_that_expires_in_the_far_future_keeps_its_stream() {
    let hub = start(config()).await;
    let claims = Claims {
        subscribe: Some(vec!["*".into()]),
        exp: Some(u64::MAX / 2),
        ..Claims::default()
    };
    let token = mint(Algorithm::HS256, KEY.as_bytes(), &claims).unwrap();
    let mut tcp = subscribe_raw(hub.addr, &format!("topic=a&authorization={token}")).await;
    read_until(&mut tcp, "text/event-stream").await;
    publish(hub.addr, &[("topic", "a"), ("data", "still open")]).await;
    read_until(&mut tcp, "data: still open\n\n").await;
}
