//! Limits an operator sets (issue #13): the maximum stream lifetime, with
//! its jitter and metric; publishes per token; subscribers in all; and
//! streams per client, by token subject or address (`X-Forwarded-For`
//! from trusted proxies only), given back however a stream ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use herald_hub::{Hub, HubConfig, HUB_PATH};
use http_body_util::Full;
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

// A stream that reaches its lifetime ends by itself, counted; the client
// reconnects like after any other end.
#[tokio::test]
async fn a_stream_ends_at_its_maximum_lifetime_and_is_counted() {
    let hub = start(HubConfig {
        max_stream_lifetime: Some(Duration::from_millis(300)),
        ..config()
    })
    .await;
    let mut stream = subscribe(hub.addr, &topics(&["a"]), &[]).await;
    stream.ready().await;
    assert!(
        stream.ends_within(LONG).await,
        "the stream outlived its lifetime"
    );
    assert_eq!(hub.hub.metrics().lifetime_ends_total, 1);
}

// A token that expires before the lifetime ends the stream first, and is
// not counted as a lifetime end.
#[tokio::test]
async fn the_earlier_of_token_expiry_and_lifetime_ends_the_stream() {
    let hub = start(HubConfig {
        max_stream_lifetime: Some(Duration::from_secs(3600)),
        ..config()
    })
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = herald_hub::auth::Claims {
        exp: Some(now + 2),
        ..claims(&[], &["a"])
    };
    let token =
        herald_hub::auth::mint(jsonwebtoken::Algorithm::HS256, KEY.as_bytes(), &claims).unwrap();
    let bearer = format!("Bearer {token}");
    let mut stream = subscribe(hub.addr, &topics(&["a"]), &[("Authorization", &bearer)]).await;
    stream.ready().await;
    assert!(
        stream.ends_within(LONG).await,
        "the token's expiry did not end it"
    );
    assert_eq!(hub.hub.metrics().lifetime_ends_total, 0);
}

// Past its rate, a token's publishes get a 429 with Retry-After, counted,
// while another token publishes on; nothing refused is stored. (Counted
// against the time the attempts took, so a slow machine cannot fail it.)
#[tokio::test]
async fn a_token_past_its_publish_rate_gets_429_with_retry_after() {
    const RATE: u32 = 2;
    const ATTEMPTS: usize = 20;
    let hub = start(HubConfig {
        max_publish_rate: Some(RATE),
        ..config()
    })
    .await;
    let busy = token(&["*"], &[]);
    let other = token(&["t"], &[]);
    let started = std::time::Instant::now();
    let mut accepted = 0;
    let mut refused = None;
    for i in 0..ATTEMPTS {
        let reply = publish_as(
            hub.addr,
            Some(&busy),
            &[("topic", "t"), ("data", &i.to_string())],
        )
        .await;
        match reply.status.as_u16() {
            200 => accepted += 1,
            429 => refused = Some(reply),
            status => panic!("{status}: {}", reply.body),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // A burst of one second's worth, then the rate: never more.
    let most = f64::from(RATE) * (1.0 + elapsed);
    assert!(
        (RATE as usize..=most as usize).contains(&accepted),
        "{accepted} in {elapsed:.2}s"
    );
    let refused = refused.expect("no 429 for twenty publishes at a rate of two a second");
    assert_eq!(refused.headers["retry-after"], "1");
    assert!(
        refused.body.contains("2 times per second"),
        "{}",
        refused.body
    );

    let reply = publish_as(hub.addr, Some(&other), &[("topic", "t"), ("data", "other")]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let metrics = hub.hub.metrics();
    assert_eq!(
        metrics.publishes_rate_limited_total,
        (ATTEMPTS - accepted) as u64
    );
    assert_eq!(metrics.history.events, accepted as u64 + 1);
}

// Past its limit of subscribers the hub answers a subscription 503 with
// Retry-After, counted, and serves the ones it holds; publishing goes on.
#[tokio::test]
async fn past_the_subscriber_limit_a_subscription_gets_503_with_retry_after() {
    let hub = start(HubConfig {
        max_subscribers: 2,
        ..config()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = subscribe(hub.addr, &topics(&["a"]), &[]).await;
        stream.ready().await;
        held.push(stream);
    }
    let refused = subscribe(hub.addr, &topics(&["a"]), &[]).await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.headers["retry-after"], "5");
    assert_eq!(hub.hub.metrics().subscribers_refused_total, 1);
    publish(hub.addr, &[("topic", "a"), ("data", "still")]).await;
    for stream in &mut held {
        assert_eq!(
            stream.next_event_within(LONG).await.unwrap().data(),
            "still"
        );
    }
}

// Over HTTP/1.1 each stream holds a connection, and so an open file: past
// the server's budget of open connections a new HTTP/1.1 subscription gets
// a 503 (on the server's own path and on hyper's alike), while a publish
// still gets in and HTTP/2 streams, which share their connection, are
// admitted; connections that close give their places back.
#[tokio::test]
async fn past_the_connection_budget_an_http1_stream_gets_503_and_http2_streams_do_not() {
    let hub = Hub::new(config()).unwrap();
    let hub = start_served(hub, |server| server.http1_stream_connections(2)).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = subscribe(hub.addr, &topics(&["a"]), &[]).await;
        stream.ready().await;
        held.push(stream);
    }
    assert_eq!(hub.hub.metrics().connections, 2);

    let refused = subscribe(hub.addr, &topics(&["a"]), &[]).await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.headers["retry-after"], "5");
    let message = refused.text().await;
    assert!(
        message.contains("open connections are at 2, the most") && message.contains("HTTP/2"),
        "{message}"
    );
    assert_eq!(subscribe_request(query_for_a(&hub)).await.status, 503);
    assert_eq!(hub.hub.metrics().subscribers_refused_total, 2);

    let h2 = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let mut multiplexed = Vec::new();
    for _ in 0..3 {
        let request = Request::get(format!("http://{}{HUB_PATH}?topic=a", hub.addr))
            .body(Full::default())
            .unwrap();
        let mut stream = subscribe_with(&h2, request).await;
        assert_eq!(stream.status, StatusCode::OK);
        stream.ready().await;
        multiplexed.push(stream);
    }
    publish(hub.addr, &[("topic", "a"), ("data", "to all five")]).await;
    for stream in held.iter_mut().chain(&mut multiplexed) {
        let event = stream.next_event_within(LONG).await.unwrap();
        assert_eq!(event.data(), "to all five");
    }
    assert_eq!(hub.hub.metrics().subscribers_refused_total, 2);

    drop((held, multiplexed, h2));
    wait_metrics(&hub.hub, |m| m.connections == 0, "every connection closed").await;
    let mut again = subscribe(hub.addr, &topics(&["a"]), &[]).await;
    assert_eq!(again.status, StatusCode::OK);
    again.ready().await;
}

/// A draft-08 `QUERY` subscription to `a` (served by hyper, not the
/// server's own HTTP/1.1 path).
fn query_for_a(hub: &TestHub) -> Request<Full<Bytes>> {
    Request::builder()
        .method("QUERY")
        .uri(format!("http://{}{HUB_PATH}", hub.addr))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(b"match=a")))
        .unwrap()
}

/// A client at another loopback address than the hub's 127.0.0.1.
fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// A subscriber token for every topic naming `sub` as its subject.
fn token_of(sub: &str) -> String {
    let claims = herald_hub::auth::Claims {
        sub: Some(sub.into()),
        ..claims(&[], &["*"])
    };
    herald_hub::auth::mint(jsonwebtoken::Algorithm::HS256, KEY.as_bytes(), &claims).unwrap()
}

/// Opens a stream from `source` and waits for its opening comment.
async fn held(hub: &TestHub, source: IpAddr, headers: &[(&str, &str)]) -> Stream {
    let mut stream = subscribe_from(source, hub.addr, &topics(&["a"]), headers).await;
    assert_eq!(stream.status, StatusCode::OK, "{source} {headers:?}");
    stream.ready().await;
    stream
}

/// Asserts that a stream from `source` is refused for its client's limit,
/// with the message naming `who`.
async fn assert_refused_for(hub: &TestHub, source: IpAddr, headers: &[(&str, &str)], who: &str) {
    let reply = subscribe_from(source, hub.addr, &topics(&["a"]), headers).await;
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{source} {headers:?}"
    );
    assert_eq!(reply.headers["retry-after"], "10");
    assert_eq!(reply.headers["content-type"], "text/plain; charset=utf-8");
    let body = reply.text().await;
    assert!(body.contains(who), "{who:?} not in {body:?}");
}

/// Waits (up to [`LONG`]) until the hub's metrics satisfy `done`.
async fn wait_metrics(hub: &Hub, done: impl Fn(&herald_hub::MetricsSnapshot) -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + LONG;
    while !done(&hub.metrics()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {:?}",
            hub.metrics()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn per_client(max: usize) -> HubConfig {
    HubConfig {
        max_streams_per_client: Some(max),
        ..config()
    }
}

// draft-08 §Subscription: hubs SHOULD limit the concurrent connections of
// one client (per source address or per token subject) and MAY refuse
// further ones with a 429. Past its limit an address gets a 429 with
// Retry-After and a message that names it, counted; another address does
// not share its count.
#[tokio::test]
async fn past_its_limit_a_client_gets_429_with_retry_after_and_the_reason() {
    let hub = start(per_client(2)).await;
    let _first = held(&hub, loopback(1), &[]).await;
    let _second = held(&hub, loopback(1), &[]).await;
    assert_refused_for(
        &hub,
        loopback(1),
        &[],
        "the address 127.0.0.1 holds the hub's limit of 2 event streams per client",
    )
    .await;
    let _elsewhere = held(&hub, loopback(2), &[]).await;
    let metrics = hub.hub.metrics();
    assert_eq!(metrics.client_limit_refused_total, 1);
    assert_eq!(metrics.client_limit_clients, 2);
    assert_eq!(metrics.subscribers, 3);
}

// A token's subject is the client: two subjects from one address are
// counted apart, one subject from two addresses together, and a
// subscriber without a subject by its address.
#[tokio::test]
async fn streams_are_counted_by_token_subject_before_address() {
    let hub = start(per_client(1)).await;
    let alice = format!("Bearer {}", token_of("alice"));
    let bob = format!("Bearer {}", token_of("bob"));
    let _alice = held(&hub, loopback(1), &[("authorization", &alice)]).await;
    let _bob = held(&hub, loopback(1), &[("authorization", &bob)]).await;
    let _anonymous = held(&hub, loopback(1), &[]).await;
    assert_refused_for(
        &hub,
        loopback(2),
        &[("authorization", &alice)],
        "this token's subject (\"sub\") holds the hub's limit of 1 event streams per client",
    )
    .await;
    // A token without a subject counts by address.
    let nobody = format!("Bearer {}", token(&[], &["*"]));
    let _nobody = held(&hub, loopback(2), &[("authorization", &nobody)]).await;
    assert_refused_for(&hub, loopback(2), &[], "the address 127.0.0.2 ").await;
    assert_eq!(hub.hub.metrics().client_limit_refused_total, 2);
}

// A stream gives its place back however it ends: its client leaves, it
// reaches its lifetime, the hub shuts down (as when fan-out closes it as
// slow, its queue then closes: the same end). The last two end on the
// hub's side, and the place is free before the client sees the end: it
// may reconnect at once.
#[tokio::test]
async fn a_stream_gives_its_place_back_however_it_ends() {
    let hub = start(per_client(1)).await;
    // The client leaves: the hub notices asynchronously.
    let first = held(&hub, loopback(1), &[]).await;
    assert_refused_for(&hub, loopback(1), &[], "limit of 1").await;
    drop(first);
    wait_metrics(
        &hub.hub,
        |m| m.client_limit_clients == 0,
        "the place stayed taken",
    )
    .await;
    let _again = held(&hub, loopback(1), &[]).await;

    let hub = start(HubConfig {
        max_stream_lifetime: Some(Duration::from_millis(300)),
        ..per_client(1)
    })
    .await;
    let mut lived = held(&hub, loopback(1), &[]).await;
    assert!(
        lived.ends_within(LONG).await,
        "the stream outlived its lifetime"
    );
    let mut again = held(&hub, loopback(1), &[]).await;
    hub.hub.shutdown();
    assert!(
        again.ends_within(LONG).await,
        "shutdown did not end the stream"
    );
    let metrics = hub.hub.metrics();
    assert_eq!(metrics.client_limit_clients, 0);
    assert_eq!(metrics.client_limit_refused_total, 0);
}

// Behind a trusted proxy the client is the right-most address of
// X-Forwarded-For that is not a trusted proxy (what a client writes itself
// is left of what the proxy appends); from anyone else the header is
// ignored, or it would let a client pick its count.
#[tokio::test]
async fn x_forwarded_for_counts_only_from_a_trusted_proxy() {
    let hub = start(HubConfig {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..per_client(1)
    })
    .await;
    let proxy = loopback(1);
    let _seven = held(&hub, proxy, &[("x-forwarded-for", "203.0.113.7")]).await;
    let _eight = held(&hub, proxy, &[("x-forwarded-for", "203.0.113.8")]).await;
    assert_refused_for(
        &hub,
        proxy,
        &[("x-forwarded-for", "198.51.100.1, 203.0.113.7")],
        "the address 203.0.113.7 ",
    )
    .await;
    // Not a trusted proxy: its own address counts, whatever it forwards.
    let untrusted = loopback(2);
    let _nine = held(&hub, untrusted, &[("x-forwarded-for", "203.0.113.9")]).await;
    assert_refused_for(
        &hub,
        untrusted,
        &[("x-forwarded-for", "203.0.113.10")],
        "the address 127.0.0.2 ",
    )
    .await;
    assert_eq!(hub.hub.metrics().client_limit_clients, 3);
}

// Every path of the hub's server carries the client's address: its own
// HTTP/1.1 streams (GET) and hyper's (a draft-08 QUERY subscription, or
// HTTP/2 with prior knowledge, on the same plain listener).
#[tokio::test]
async fn the_hubs_own_http1_path_and_hypers_count_alike() {
    let hub = start(per_client(2)).await;
    let _get = held(&hub, loopback(1), &[]).await;
    let mut by_query = subscribe_request(query_for_a(&hub)).await;
    assert_eq!(by_query.status, StatusCode::OK);
    by_query.ready().await;
    let h2 = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let refused = h2
        .request(
            Request::get(format!("http://{}{HUB_PATH}?topic=a", hub.addr))
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(hub.hub.metrics().client_limit_refused_total, 1);
}

// An application serving the router itself gives the address with axum's
// ConnectInfo; served without it, only subscribers with a subject are
// limited (no address to count the others by).
#[tokio::test]
async fn served_by_axum_the_address_comes_from_connect_info() {
    async fn serve(hub: &Hub, connect_info: bool) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = hub.router();
        tokio::spawn(async move {
            if connect_info {
                let service = router.into_make_service_with_connect_info::<SocketAddr>();
                axum::serve(listener, service).await.unwrap();
            } else {
                axum::serve(listener, router).await.unwrap();
            }
        });
        addr
    }
    let hub = Hub::new(per_client(1)).unwrap();
    let with_info = serve(&hub, true).await;
    let mut first = subscribe(with_info, &topics(&["a"]), &[]).await;
    first.ready().await;
    let refused = subscribe(with_info, &topics(&["a"]), &[]).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);

    let without = serve(&hub, false).await;
    let mut anonymous = subscribe(without, &topics(&["a"]), &[]).await;
    anonymous.ready().await;
    let alice = format!("Bearer {}", token_of("alice"));
    let mut by_subject = subscribe(without, &topics(&["a"]), &[("authorization", &alice)]).await;
    by_subject.ready().await;
    let refused = subscribe(without, &topics(&["a"]), &[("authorization", &alice)]).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    hub.shutdown();
}
