//! Authorization over HTTP: publisher and subscriber tokens, where tokens
//! come from, private updates, token expiry, CSRF and CORS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use herald_hub::auth::{mint, Claims};
use herald_hub::HUB_PATH;
use http_body_util::Full;
use hyper::{Request, StatusCode};
use jsonwebtoken::Algorithm;

/// Where a hub on the default hub URL says its protected resource metadata is.
const METADATA: &str = "http://localhost/.well-known/oauth-protected-resource/.well-known/mercure";

fn signed(claims: &Claims, alg: Algorithm, key: &str) -> String {
    mint(alg, key.as_bytes(), claims).unwrap()
}

/// The bad tokens every role must refuse with 401, by name.
fn bad_tokens(publish: &[&str], subscribe: &[&str]) -> Vec<(&'static str, String)> {
    let base = claims(publish, subscribe);
    let expired = Claims {
        exp: Some(now() - 60),
        ..base.clone()
    };
    vec![
        ("expired", signed(&expired, Algorithm::HS256, KEY)),
        (
            "wrong key",
            signed(
                &base,
                Algorithm::HS256,
                "another-secret-another-secret-another",
            ),
        ),
        ("wrong algorithm", signed(&base, Algorithm::HS512, KEY)),
        ("malformed", "not.a.jwt".to_string()),
    ]
}

// draft-07 §Authorization: a publisher presents a valid JWS (a bad one is
// a 401); draft-07 §Publishers: a JWS without `mercure.publish` authorizes
// no update (403, nothing dispatched); draft-08 §Authorization: a
// publisher without a token is refused (401).
#[tokio::test]
async fn publisher_tokens_valid_expired_wrong_key_wrong_alg_missing_claim() {
    let hub = start(config()).await;
    let mut sub = subscribe(hub.addr, "topic=*", &[]).await;
    sub.ready().await;

    for (name, token) in bad_tokens(&["*"], &[]) {
        let reply = publish_as(hub.addr, Some(&token), &[("topic", "a"), ("data", name)]).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{name}: {}",
            reply.body
        );
        // draft-08 §Error Responses: a token that fails validation gets
        // `invalid_token`, with the metadata URL.
        assert_eq!(
            reply.headers["www-authenticate"],
            format!("Bearer error=\"invalid_token\", resource_metadata=\"{METADATA}\""),
            "{name}"
        );
    }
    // draft-08 §Error Responses: no token, no error code.
    let reply = publish_as(hub.addr, None, &[("topic", "a"), ("data", "anonymous")]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.headers["www-authenticate"],
        format!("Bearer resource_metadata=\"{METADATA}\"")
    );

    let no_claim = token(&[], &["*"]);
    let reply = publish_as(
        hub.addr,
        Some(&no_claim),
        &[("topic", "a"), ("data", "no claim")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert_eq!(
        reply.headers["www-authenticate"],
        format!("Bearer error=\"insufficient_scope\", resource_metadata=\"{METADATA}\"")
    );

    assert_eq!(
        hub.hub.metrics().history.events,
        0,
        "nothing refused was stored"
    );

    let reply = publish_as(
        hub.addr,
        Some(&publisher()),
        &[("topic", "a"), ("data", "valid")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    // The valid publish comes last: nothing refused before it arrived.
    let refused = sub.events_until("valid").await;
    assert!(
        refused.is_empty(),
        "dispatched although refused: {refused:?}"
    );
}

// draft-07 §Publishers: every topic of the update must match a selector of
// `mercure.publish`; otherwise 403 and nothing is dispatched, even though
// some topics are allowed.
#[tokio::test]
async fn publish_claim_must_match_every_topic() {
    let hub = start(config()).await;
    let mut sub = subscribe(hub.addr, "topic=*", &[]).await;
    sub.ready().await;
    let limited = token(&["https://ex.com/books/{id}"], &[]);
    let reply = publish_as(
        hub.addr,
        Some(&limited),
        &[
            ("topic", "https://ex.com/books/1"),
            ("topic", "https://ex.com/authors/1"),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.body.contains("authors"), "{}", reply.body);
    let reply = publish_as(
        hub.addr,
        Some(&limited),
        &[("topic", "https://ex.com/books/1"), ("data", "ok")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let refused = sub.events_until("ok").await;
    assert!(
        refused.is_empty(),
        "dispatched although refused: {refused:?}"
    );
}

// draft-07 §Publishers: a `mercure.publish` that is an empty array
// authorizes no update: 403, and nothing is dispatched.
#[tokio::test]
async fn an_empty_publish_claim_authorizes_nothing() {
    let hub = start(config()).await;
    let mut sub = subscribe(hub.addr, "topic=*", &[]).await;
    sub.ready().await;
    let empty = Claims {
        publish: Some(vec![]),
        ..claims(&[], &["*"])
    };
    let empty = signed(&empty, Algorithm::HS256, KEY);
    for private in [false, true] {
        let mut pairs = vec![("topic", "a"), ("data", "refused")];
        if private {
            pairs.push(("private", "on"));
        }
        let reply = publish_as(hub.addr, Some(&empty), &pairs).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    }
    assert_eq!(hub.hub.metrics().history.events, 0, "nothing stored");
    assert_nothing_before_marker(hub.addr, &mut sub, "a", "a refused publish").await;
}

// draft-07 §Subscribers: a private update reaches a subscriber whose
// `mercure.subscribe` matches one of its topics, canonical or alternate:
// the spec's own example, a template over every book in the query and a
// per-user template in the token, matched by an alternate topic.
#[tokio::test]
async fn an_alternate_topic_can_grant_a_private_update() {
    let hub = start(config()).await;
    let reader = token(&[], &["https://example.com/users/foo/{?topic}"]);
    let mut sub = subscribe(
        hub.addr,
        &topics(&["https://example.com/books/{id}"]),
        &[("authorization", &format!("Bearer {reader}"))],
    )
    .await;
    assert_eq!(sub.status, StatusCode::OK);
    sub.ready().await;
    publish(
        hub.addr,
        &[
            ("topic", "https://example.com/books/2"),
            ("data", "for someone else"),
            ("private", "on"),
        ],
    )
    .await;
    publish(
        hub.addr,
        &[
            ("topic", "https://example.com/books/1"),
            (
                "topic",
                "https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1",
            ),
            ("data", "for foo"),
            ("private", "on"),
        ],
    )
    .await;
    assert_eq!(sub.next_event_within(LONG).await.unwrap().data(), "for foo");
}

// draft-07 §Authorization and §Subscribers: a subscriber's valid JWS with
// `mercure.subscribe` unlocks the private updates it matches; an invalid
// one is refused.
#[tokio::test]
async fn subscriber_tokens_valid_expired_wrong_key_wrong_alg() {
    let hub = start(config()).await;
    for (name, token) in bad_tokens(&[], &["*"]) {
        let sub = subscribe(
            hub.addr,
            "topic=a",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
        assert_eq!(sub.status, StatusCode::UNAUTHORIZED, "{name}");
    }
    let valid = token(&[], &["a"]);
    let mut sub = subscribe(
        hub.addr,
        "topic=a",
        &[("authorization", &format!("Bearer {valid}"))],
    )
    .await;
    assert_eq!(sub.status, StatusCode::OK);
    sub.ready().await;
    publish(
        hub.addr,
        &[("topic", "a"), ("data", "secret"), ("private", "on")],
    )
    .await;
    assert_eq!(sub.next_event_within(LONG).await.unwrap().data(), "secret");
}

// draft-07 §Subscribers: without `mercure.subscribe`, no private update.
#[tokio::test]
async fn a_subscriber_token_without_subscribe_claim_gets_public_updates_only() {
    let hub = start(config()).await;
    let token = token(&["*"], &[]);
    let mut sub = subscribe(
        hub.addr,
        "topic=a",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(sub.status, StatusCode::OK);
    sub.ready().await;
    publish(
        hub.addr,
        &[("topic", "a"), ("data", "secret"), ("private", "on")],
    )
    .await;
    publish(hub.addr, &[("topic", "a"), ("data", "public")]).await;
    assert_eq!(sub.next_event_within(LONG).await.unwrap().data(), "public");
}

#[tokio::test]
async fn anonymous_subscribers_only_when_configured() {
    let mut cfg = config();
    cfg.anonymous = false;
    let hub = start(cfg).await;
    let sub = subscribe(hub.addr, "topic=a", &[]).await;
    assert_eq!(sub.status, StatusCode::UNAUTHORIZED);
    let token = token(&[], &["a"]);
    let sub = subscribe(
        hub.addr,
        "topic=a",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(sub.status, StatusCode::OK);
}

// draft-07 §Authorization: with an Authorization header its JWS is used,
// the query parameter and the cookie ignored; without one, the query
// parameter is used and the cookie ignored; else the cookie.
#[tokio::test]
async fn token_sources_header_then_query_then_cookie() {
    let mut cfg = config();
    cfg.anonymous = false;
    let hub = start(cfg).await;
    let good = token(&[], &["a"]);
    let bad = "not.a.jwt";

    let query_good = format!("topic=a&authorization={good}");
    let query_bad = format!("topic=a&authorization={bad}");
    let cookie_good = format!("theme=dark; mercureAuthorization={good}");
    let cookie_bad = format!("mercureAuthorization={bad}");
    let header_good = format!("Bearer {good}");
    let header_bad = format!("Bearer {bad}");

    /// A subscribe request and the status it must get.
    struct Case<'a> {
        name: &'a str,
        query: &'a str,
        header: Option<(&'a str, &'a str)>,
        expected: StatusCode,
    }
    let case = |name, query, header, expected| Case {
        name,
        query,
        header,
        expected,
    };
    let cases = [
        // Each source alone works.
        case(
            "header",
            "topic=a",
            Some(("authorization", &header_good)),
            StatusCode::OK,
        ),
        case("query", &query_good, None, StatusCode::OK),
        case(
            "cookie",
            "topic=a",
            Some(("cookie", &cookie_good)),
            StatusCode::OK,
        ),
        // The header wins over the query, which wins over the cookie.
        case(
            "good header, bad query",
            &query_bad,
            Some(("authorization", &header_good)),
            StatusCode::OK,
        ),
        case(
            "bad header, good query",
            &query_good,
            Some(("authorization", &header_bad)),
            StatusCode::UNAUTHORIZED,
        ),
        case(
            "good query, bad cookie",
            &query_good,
            Some(("cookie", &cookie_bad)),
            StatusCode::OK,
        ),
        case(
            "bad query, good cookie",
            &query_bad,
            Some(("cookie", &cookie_good)),
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for c in cases {
        let headers: Vec<(&str, &str)> = c.header.into_iter().collect();
        let status = subscribe(hub.addr, c.query, &headers).await.status;
        assert_eq!(status, c.expected, "{}", c.name);
    }
}

#[tokio::test]
async fn a_stale_cookie_does_not_lock_out_public_updates_when_anonymous_is_allowed() {
    let hub = start(config()).await;
    let mut sub = subscribe(
        hub.addr,
        "topic=a",
        &[("cookie", "mercureAuthorization=expired.or.garbage")],
    )
    .await;
    assert_eq!(sub.status, StatusCode::OK);
    sub.ready().await;
    publish(
        hub.addr,
        &[("topic", "a"), ("data", "secret"), ("private", "on")],
    )
    .await;
    publish(hub.addr, &[("topic", "a"), ("data", "public")]).await;
    assert_eq!(sub.next_event_within(LONG).await.unwrap().data(), "public");
}

// draft-07 §Subscribers: a JWS with `exp` ends the connection at that time
// (tests/draft08.rs: the same for an access token, draft-08 §Subscribers).
/// Paused time: the token is valid by the wall clock (JWT validation), and
/// the hub turns its `exp` into a tokio deadline, which the test reaches by
/// advancing the paused clock. The deadline is `exp` minus the wall time at
/// validation, which lies between the readings taken around the subscribe.
#[test]
fn a_token_exp_closes_the_stream_at_that_moment() {
    paused(|| async {
        let hub = start(config()).await;
        let exp = now() + 60;
        let expiring = Claims {
            exp: Some(exp),
            ..claims(&[], &["a"])
        };
        let token = signed(&expiring, Algorithm::HS256, KEY);
        let left_at = || Duration::from_secs(exp).saturating_sub(since_epoch());
        let most_left = left_at();
        let start = tokio::time::Instant::now();
        let mut sub = subscribe(
            hub.addr,
            "topic=a",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
        let least_left = left_at();
        assert_eq!(sub.status, StatusCode::OK);
        sub.ready().await;

        // Just before the earliest the deadline can be, the stream is open
        // and still delivers.
        tokio::time::advance(least_left - Duration::from_millis(1)).await;
        publish(hub.addr, &[("topic", "a"), ("data", "before exp")]).await;
        let events = sub.events_until("before exp").await;
        assert!(events.is_empty(), "{events:?}");
        assert!(!sub.ended, "open before exp");

        // At the latest the deadline can be (plus the timer's millisecond
        // resolution: tokio rounds a deadline up to the next millisecond),
        // it has ended.
        let elapsed = tokio::time::Instant::now() - start;
        tokio::time::advance(most_left - elapsed + Duration::from_millis(2)).await;
        assert!(sub.ends_within(LONG).await, "closed at exp");
        assert_eq!(sub.next_event().await, None);
    });
}

/// Which of the pool's topics a selector of the pool stands for, written
/// out by hand as the oracle of the randomized test below.
fn selects(selector: &str, topic: &str) -> bool {
    let one_segment = |s: &str| !s.is_empty() && !s.contains('/');
    match selector {
        "*" => true,
        "https://ex.com/a/{id}" => topic
            .strip_prefix("https://ex.com/a/")
            .is_some_and(one_segment),
        "https://ex.com/{k}/1" => topic
            .strip_prefix("https://ex.com/")
            .and_then(|rest| rest.strip_suffix("/1"))
            .is_some_and(one_segment),
        exact => exact == topic,
    }
}

// draft-07 §Subscription and §Subscribers: a private update reaches only
// the subscribers whose `mercure.subscribe` matches one of its topics;
// anonymous subscribers get none.
#[tokio::test]
async fn private_updates_reach_only_matching_subscribers_over_many_random_pairs() {
    use rand::{Rng, SeedableRng};
    let hub = start(config()).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let topics_pool = [
        "https://ex.com/a/1",
        "https://ex.com/a/2",
        "https://ex.com/b/1",
        "urn:x",
    ];
    let selectors_pool = [
        "*",
        "https://ex.com/a/1",
        "https://ex.com/a/{id}",
        "https://ex.com/{k}/1",
        "urn:x",
        "urn:y",
    ];
    for round in 0..40 {
        let topic = topics_pool[rng.random_range(0..topics_pool.len())];
        let selector = selectors_pool[rng.random_range(0..selectors_pool.len())];
        let granted = selectors_pool[rng.random_range(0..selectors_pool.len())];
        let anonymous = rng.random_bool(0.3);
        let auth = format!("Bearer {}", token(&[], &[granted]));
        let headers: Vec<(&str, &str)> = if anonymous {
            vec![]
        } else {
            vec![("authorization", &auth)]
        };
        // A public sentinel on a topic only the sentinel selector matches
        // tells when the private update would have arrived.
        let mut sub = subscribe(hub.addr, &topics(&[selector, "urn:sentinel"]), &headers).await;
        sub.ready().await;
        let marker = format!("private-{round}");
        publish(
            hub.addr,
            &[("topic", topic), ("data", &marker), ("private", "on")],
        )
        .await;
        publish(hub.addr, &[("topic", "urn:sentinel"), ("data", "end")]).await;
        let expected = selects(selector, topic) && !anonymous && selects(granted, topic);
        let first = sub
            .next_event_within(LONG)
            .await
            .expect("the sentinel at least");
        assert_eq!(
            first.data() == marker,
            expected,
            "round {round}: topic {topic}, selector {selector}, granted {granted}, anonymous {anonymous}"
        );
        if expected {
            assert_eq!(sub.next_event_within(LONG).await.unwrap().data(), "end");
        } else {
            assert_eq!(first.data(), "end");
        }
    }
}

// draft-07 §Security Considerations: a hub that takes the cookie guards
// the publish endpoint against CSRF (the allowed publish origins).
#[tokio::test]
async fn cookie_publishes_must_come_from_an_allowed_origin() {
    let mut cfg = config();
    cfg.publish_origins = vec!["https://app.example.com".into()];
    let hub = start(cfg).await;
    let cookie = format!("mercureAuthorization={}", publisher());
    let send = |origin: Option<&'static str>| {
        let mut req = Request::post(format!("http://{}{HUB_PATH}", hub.addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookie.clone());
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        request(req.body(Full::new(Bytes::from("topic=a&data=x"))).unwrap())
    };
    assert_eq!(send(None).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        send(Some("https://evil.example")).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(Some("https://app.example.com")).await.status,
        StatusCode::OK
    );
    // A bearer header is not subject to the origin check.
    let reply = publish_as(hub.addr, Some(&publisher()), &[("topic", "a")]).await;
    assert_eq!(reply.status, StatusCode::OK);
}

// draft-08 §Subscription: CORS for credentialed subscribers, an allowlist
// echoed with `Access-Control-Allow-Credentials: true` (tests/cors.rs has
// the rest).
#[tokio::test]
async fn cors_allowlist_with_credentials_and_preflight_headers() {
    let mut cfg = config();
    cfg.cors_origins = vec!["https://app.example.com".into()];
    let hub = start(cfg).await;
    let preflight = |origin: &'static str| {
        let req = Request::builder()
            .method("OPTIONS")
            .uri(format!("http://{}{HUB_PATH}", hub.addr))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header(
                "access-control-request-headers",
                "authorization, cache-control, last-event-id",
            )
            .body(Full::new(Bytes::new()))
            .unwrap();
        request(req)
    };
    let allowed = preflight("https://app.example.com").await;
    assert!(allowed.status.is_success());
    assert_eq!(
        allowed.headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(allowed.headers["access-control-allow-credentials"], "true");
    let headers = allowed.headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for h in ["authorization", "cache-control", "last-event-id"] {
        assert!(headers.contains(h), "{h} missing from {headers}");
    }
    let refused = preflight("https://evil.example").await;
    assert!(!refused.headers.contains_key("access-control-allow-origin"));

    let sub = subscribe(
        hub.addr,
        "topic=a",
        &[("origin", "https://app.example.com")],
    )
    .await;
    assert_eq!(
        sub.headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(sub.headers["access-control-allow-credentials"], "true");
}
