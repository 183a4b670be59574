//! Bad input, slow subscribers and operator endpoints: clear errors, no
//! panic, bounded memory, and the hub keeps serving everyone else.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::*;
use herald_hub::HUB_PATH;
use http_body_util::Full;
use hyper::{Request, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `bytes` and reads the answer's head (or all there is, if the
/// server closes first).
async fn raw_exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before taking a refused body whole.
    let _ = tcp.write_all(bytes).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(LONG, async {
        while !out.windows(4).any(|w| w == b"\r\n\r\n") {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within {LONG:?}: {out:?}");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_the_hub_keeps_serving() {
    let hub = start(config()).await;
    let mut bystander = subscribe(hub.addr, "topic=ok", &[]).await;
    bystander.ready().await;
    let token = publisher();

    // Malformed forms.
    for body in [
        &b"%%%"[..],
        b"=&=&&",
        b"topic",
        b"topic=",
        b"data=%ZZ&topic=a%",
    ] {
        let reply = publish_raw(hub.addr, Some(&token), body.to_vec()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{:?}: {}",
            String::from_utf8_lossy(body),
            reply.body
        );
    }
    // Invalid UTF-8, raw and percent-encoded (draft-08 §Publication: names
    // and values are UTF-8).
    let reply = publish_raw(hub.addr, Some(&token), b"topic=a&data=\xff\xfe".to_vec()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.body.contains("data") && reply.body.contains("UTF-8"),
        "{}",
        reply.body
    );
    let reply = publish_raw(hub.addr, Some(&token), b"topic=a%C3%28".to_vec()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("topic"), "{}", reply.body);

    // Huge bodies, declared and chunked (draft-08 §Publication: past a
    // limit, 413).
    let huge = format!("topic=a&data={}", "x".repeat(2 << 20));
    let reply = publish_raw(hub.addr, Some(&token), huge.clone().into_bytes()).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    let chunked = format!(
        "POST {HUB_PATH} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-type: application/x-www-form-urlencoded\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{huge}\r\n0\r\n\r\n",
        huge.len()
    );
    let answer = raw_exchange(hub.addr, chunked.as_bytes()).await;
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "{}",
        &answer[..answer.len().min(200)]
    );

    // Wrong content type (draft-07 and draft-08 §Publication: the request
    // is application/x-www-form-urlencoded).
    let req = Request::post(format!("http://{}{HUB_PATH}", hub.addr))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from("{\"topic\":\"a\"}")))
        .unwrap();
    assert_eq!(
        request(req).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );

    // 10k selectors.
    let names: Vec<String> = (0..10_000).map(|i| format!("t{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let query = topics(&refs);
    let answer = raw_exchange(
        hub.addr,
        format!("GET {HUB_PATH}?{query} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 4"),
        "{}",
        &answer[..answer.len().min(200)]
    );
    // Within the URI limit, the selector limit answers.
    let sub = subscribe(hub.addr, &topics(&refs[..2000]), &[]).await;
    assert_eq!(sub.status, StatusCode::BAD_REQUEST);

    // Garbage headers.
    let sub = subscribe(
        hub.addr,
        "topic=a",
        &[("authorization", "Basic dXNlcjpwYXNz")],
    )
    .await;
    assert_eq!(sub.status, StatusCode::UNAUTHORIZED);
    let answer = raw_exchange(
        hub.addr,
        &[
            format!("GET {HUB_PATH}?topic=a HTTP/1.1\r\nhost: x\r\nlast-event-id: ").as_bytes(),
            b"\xff\xfe\r\nconnection: close\r\n\r\n",
        ]
        .concat(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let answer = raw_exchange(hub.addr, b"\x00\x01 garbage \r\n\r\n").await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );

    // Nothing refused was stored, and everyone else is still served.
    assert_eq!(hub.hub.metrics().history.events, 0);
    publish(hub.addr, &[("topic", "ok"), ("data", "still here")]).await;
    assert_eq!(
        bystander.next_event_within(LONG).await.unwrap().data(),
        "still here"
    );
    assert!(hub.hub.metrics().publishes_rejected_total >= 10);
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let hub = start(config()).await;
    let get = |path: &'static str| {
        request(
            Request::get(format!("http://{}{path}", hub.addr))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
    };
    assert_eq!(get("/healthz").await.status, StatusCode::OK);
    assert_eq!(get("/readyz").await.status, StatusCode::OK);
    let mut sub = subscribe(hub.addr, "topic=a", &[]).await;
    sub.ready().await;
    publish(hub.addr, &[("topic", "a"), ("data", "x")]).await;
    sub.next_event_within(LONG).await.unwrap();
    let _ = publish_as(hub.addr, None, &[("topic", "a")]).await;
    let metrics = get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    for line in [
        "herald_subscribers 1",
        "herald_subscriptions_total 1",
        "herald_publishes_total 1",
        "herald_publishes_rejected_total 1",
        "herald_events_delivered_total 1",
        "herald_slow_subscriber_disconnects_total 0",
        "# TYPE herald_slow_subscriber_disconnects_by_reason_total counter",
        "herald_slow_subscriber_disconnects_by_reason_total{reason=\"queue_events\"} 0",
        "herald_slow_subscriber_disconnects_by_reason_total{reason=\"queue_bytes\"} 0",
        "herald_slow_subscriber_disconnects_by_reason_total{reason=\"write_stall\"} 0",
        "herald_history_events 1",
        "herald_history_available 1",
        "herald_history_reopens_total 0",
    ] {
        assert!(
            metrics.body.lines().any(|l| l == line),
            "missing {line:?} in\n{}",
            metrics.body
        );
    }
    drop(sub);
    hub.hub.shutdown();
    assert_eq!(get("/readyz").await.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn shutdown_ends_every_stream() {
    let hub = start(config()).await;
    let mut a = subscribe(hub.addr, "topic=a", &[]).await;
    let mut b = subscribe(hub.addr, "topic=*", &[("last-event-id", "earliest")]).await;
    a.ready().await;
    b.ready().await;
    hub.hub.shutdown();
    assert!(a.ends_within(LONG).await);
    assert!(b.ends_within(LONG).await);
    let refused = subscribe(hub.addr, "topic=a", &[]).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_client_that_goes_away_is_unregistered() {
    let hub = start(config()).await;
    let mut subs = Vec::new();
    for _ in 0..5 {
        let mut sub = subscribe(
            hub.addr,
            "topic=a&topic=https%3A%2F%2Fex.com%2F%7Bid%7D",
            &[],
        )
        .await;
        sub.ready().await;
        subs.push(sub);
    }
    assert_eq!(hub.hub.metrics().subscribers, 5);
    drop(subs);
    wait_subscribers(&hub.hub, |n| n == 0, "clients that left are unregistered").await;
    // Publishing to their topics still works and reaches nobody.
    publish(hub.addr, &[("topic", "a")]).await;
    assert_eq!(hub.hub.metrics().events_delivered_total, 0);
}
