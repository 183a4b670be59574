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
