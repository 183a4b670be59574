//! Limits an operator sets (issue #13): the maximum stream lifetime, with
//! its jitter and metric.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use herald_hub::HubConfig;

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
