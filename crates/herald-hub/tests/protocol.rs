//! The Mercure draft-07 checklist (shared/spec/mercure.md), one test per
//! MUST, against a real hub over TCP. Tests that check a MUST of a draft's
//! text name its section (docs/conformance.md has the table).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use herald_hub::HUB_PATH;
use http_body_util::Full;
use hyper::{Request, StatusCode};

// draft-07 §Discovery: the hub is at /.well-known/mercure; draft-07 and
// draft-08 §Subscription: GET subscribes and an event's `data` is the
// update's; §Publication: POST publishes.
#[tokio::test]
async fn hub_lives_at_well_known_mercure_get_subscribes_post_publishes() {
    let hub = start(config()).await;
    let mut sub = subscribe(hub.addr, "topic=a", &[]).await;
    assert_eq!(sub.status, StatusCode::OK);
    sub.ready().await;
    let id = publish(hub.addr, &[("topic", "a"), ("data", "hi")]).await;
    let event = sub.next_event_within(LONG).await.expect("event delivered");
    assert_eq!(event.data(), "hi");
    assert_eq!(event.last_event_id(), id);
}

#[tokio::test]
async fn other_methods_get_405() {
    let hub = start(config()).await;
    for method in ["PUT", "DELETE", "PATCH"] {
        let req = Request::builder()
            .method(method)
            .uri(format!("http://{}{HUB_PATH}", hub.addr))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let reply = request(req).await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        let allow = reply.headers["allow"].to_str().unwrap();
        assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    }
}

// draft-07 §Topic Selectors: `*`, the identical string, and a URI
// template the topic matches; nothing else.
#[tokio::test]
async fn selectors_star_exact_and_uri_template_match() {
    let hub = start(config()).await;
    let mut star = subscribe(hub.addr, &topics(&["*"]), &[]).await;
    let mut exact = subscribe(hub.addr, &topics(&["https://example.com/books/1"]), &[]).await;
    let mut template = subscribe(hub.addr, &topics(&["https://example.com/books/{id}"]), &[]).await;
    let mut other = subscribe(
        hub.addr,
        &topics(&["https://example.com/authors/{id}"]),
        &[],
    )
    .await;
    for s in [&mut star, &mut exact, &mut template, &mut other] {
        s.ready().await;
    }
    publish(
        hub.addr,
        &[("topic", "https://example.com/books/1"), ("data", "book")],
    )
    .await;
    for s in [&mut star, &mut exact, &mut template] {
        assert_eq!(s.next_event_within(LONG).await.unwrap().data(), "book");
    }
    assert_nothing_before_marker(
        hub.addr,
        &mut other,
        "https://example.com/authors/1",
        "a non-matching template",
    )
    .await;
}

// draft-08 §Publication: a request MUST contain a `topic` (and the
// draft-07 checklist: 400, nothing dispatched or stored).
#[tokio::test]
async fn publish_without_topic_is_400_naming_topic_and_nothing_is_dispatched() {
    let hub = start(config()).await;
    let mut sub = subscribe(hub.addr, "topic=*", &[]).await;
    sub.ready().await;
    let reply = publish_as(hub.addr, Some(&publisher()), &[("data", "orphan")]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("topic"), "{}", reply.body);
    assert_eq!(hub.hub.metrics().history.events, 0, "nothing stored");
    assert_nothing_before_marker(hub.addr, &mut sub, "a", "a refused publish").await;
}

// draft-07 and draft-08 §Publication: the update reaches subscribers of
// the canonical topic and of each alternate.
#[tokio::test]
async fn alternate_topics_reach_subscribers_of_any_of_them() {
    let hub = start(config()).await;
    let mut canonical = subscribe(hub.addr, "topic=c", &[]).await;
    let mut alternate = subscribe(hub.addr, "topic=alt", &[]).await;
    canonical.ready().await;
    alternate.ready().await;
    publish(hub.addr, &[("topic", "c"), ("topic", "alt"), ("data", "x")]).await;
    assert_eq!(canonical.next_event_within(LONG).await.unwrap().data(), "x");
    assert_eq!(alternate.next_event_within(LONG).await.unwrap().data(), "x");
}

// draft-07 §Publication: on success, a success status and the update's id
// as the body (draft-08 §Publication: exactly 200, text/plain).
#[tokio::test]
async fn publish_answers_200_with_the_id_as_text_plain() {
    let hub = start(config()).await;
    let reply = publish_as(
        hub.addr,
        Some(&publisher()),
        &[("topic", "a"), ("id", "my-id-1")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "my-id-1");
    assert!(reply.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
}

// draft-07 and draft-08 §Publication: without an `id`, the hub generates
// a valid IRI (a `urn:uuid:`).
#[tokio::test]
async fn hub_generates_a_time_ordered_urn_uuid_id_when_none_is_given() {
    let hub = start(config()).await;
    let first = publish(hub.addr, &[("topic", "a")]).await;
    let second = publish(hub.addr, &[("topic", "a")]).await;
    for id in [&first, &second] {
        let uuid = id.strip_prefix("urn:uuid:").expect("urn:uuid: prefix");
        let parsed = uuid::Uuid::parse_str(uuid).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 7, "UUIDv7");
    }
    assert_ne!(first, second);
    assert!(first < second, "time-ordered");
}

// draft-07 §Publication: an `id` MUST NOT start with `#`; the hub refuses
// one that does (draft-08 §Publication: with a 400).
#[tokio::test]
async fn id_starting_with_hash_is_400() {
    let hub = start(config()).await;
    let reply = publish_as(
        hub.addr,
        Some(&publisher()),
        &[("topic", "a"), ("id", "#frag")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("\"id\""), "{}", reply.body);
    assert_eq!(hub.hub.metrics().history.events, 0);
}

// draft-08 §Publication: `retry` is ASCII digits only, else 400.
#[tokio::test]
async fn non_digit_retry_is_400() {
    let hub = start(config()).await;
    for bad in ["soon", "-1", "1.5", ""] {
        let reply = publish_as(
            hub.addr,
            Some(&publisher()),
            &[("topic", "a"), ("retry", bad)],
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "retry={bad:?}");
        assert!(reply.body.contains("retry"), "{}", reply.body);
    }
}

// draft-07 and draft-08 §Reconciliation: every event carries its `id`;
// §Subscription: the other SSE fields (`event`, `retry`) are supported.
#[tokio::test]
async fn every_event_carries_its_id_and_type_and_retry_when_set() {
    let hub = start(config()).await;
    let mut sub = subscribe(hub.addr, "topic=a", &[]).await;
    sub.ready().await;
    let id = publish(
        hub.addr,
        &[
            ("topic", "a"),
            ("data", "d"),
            ("type", "update"),
            ("retry", "2500"),
        ],
    )
    .await;
    let event = sub.next_event_within(LONG).await.unwrap();
    assert_eq!(event.last_event_id(), id);
    assert_eq!(event.event_type(), "update");
    assert_eq!(sub.retry(), Some(Duration::from_millis(2500)));
    let id2 = publish(hub.addr, &[("topic", "a"), ("data", "plain")]).await;
    let event = sub.next_event_within(LONG).await.unwrap();
    assert_eq!(event.last_event_id(), id2, "ids are never left out");
    assert_eq!(event.event_type(), "message");
    // On the wire: the first frame carries `retry`, the second none.
    let wire = String::from_utf8(sub.raw.clone()).unwrap();
    let frames =
        format!("event: update\nid: {id}\nretry: 2500\ndata: d\n\nid: {id2}\ndata: plain\n\n");
    assert!(wire.ends_with(&frames), "{wire:?}");
}

// draft-07 and draft-08 §Subscription: the SSE `retry` field is supported.
#[tokio::test]
async fn retry_field_reaches_the_client() {
    let hub = start(config()).await;
    let mut sub = subscribe(hub.addr, "topic=a", &[]).await;
    sub.ready().await;
    let id = publish(
        hub.addr,
        &[("topic", "a"), ("data", "d"), ("retry", "2500")],
    )
    .await;
    sub.next_event_within(LONG).await.unwrap();
    assert_eq!(sub.retry(), Some(Duration::from_millis(2500)));
    let wire = String::from_utf8(sub.raw.clone()).unwrap();
    assert!(
        wire.ends_with(&format!("id: {id}\nretry: 2500\ndata: d\n\n")),
        "{wire:?}"
    );
}

// draft-08 §Publication: `data` is written as one `data:` field per line,
// split on LF, CRLF and CR alike, so no field can be injected.
#[tokio::test]
async fn data_is_one_data_line_per_line_so_no_field_can_be_injected() {
    let hub = start(config()).await;
    let mut sub = subscribe(hub.addr, "topic=a", &[]).await;
    sub.ready().await;
    let evil = "line1\nid: injected\nevent: evil\r\n\r\ndata: second\rretry: 1";
    let id = publish(hub.addr, &[("topic", "a"), ("data", evil)]).await;
    let event = sub.next_event_within(LONG).await.unwrap();
    assert_eq!(
        event.data(),
        "line1\nid: injected\nevent: evil\n\ndata: second\nretry: 1"
    );
    assert_eq!(sub.retry(), None, "no retry field was injected");
    assert_eq!(event.last_event_id(), id);
    assert_eq!(event.event_type(), "message");
    assert_nothing_before_marker(hub.addr, &mut sub, "a", "exactly one event").await;
}

#[tokio::test]
async fn an_update_is_sent_once_even_when_several_selectors_match() {
    let hub = start(config()).await;
    let query = topics(&[
        "*",
        "https://ex.com/a/1",
        "https://ex.com/a/{id}",
        "https://ex.com/{x}/1",
    ]);
    let mut sub = subscribe(hub.addr, &query, &[]).await;
    sub.ready().await;
    publish(
        hub.addr,
        &[
            ("topic", "https://ex.com/a/1"),
            ("topic", "https://ex.com/alt"),
            ("data", "once"),
        ],
    )
    .await;
    publish(
        hub.addr,
        &[("topic", "https://ex.com/a/1"), ("data", "twice")],
    )
    .await;
    publish(
        hub.addr,
        &[("topic", "https://ex.com/a/1"), ("data", "marker")],
    )
    .await;
    let events = sub.events_until("marker").await;
    let data: Vec<_> = events.iter().map(|e| e.data()).collect();
    assert_eq!(data, vec!["once", "twice"]);
}

// draft-07 and draft-08 §Subscription: updates are sent as a
// `text/event-stream`.
#[tokio::test]
async fn subscribe_response_is_an_event_stream_with_the_checklist_headers_and_an_initial_comment() {
    let hub = start(config()).await;
    let mut sub = subscribe(hub.addr, "topic=a", &[]).await;
    assert_eq!(sub.status, StatusCode::OK);
    assert_eq!(sub.headers["content-type"], "text/event-stream");
    assert_eq!(sub.headers["cache-control"], "private, no-cache, no-store");
    assert_eq!(sub.headers["x-accel-buffering"], "no");
    sub.ready().await; // panics unless a `:` comment arrives before any event
    assert_eq!(sub.comments, 1);
}

/// The hub with `heartbeat`, and a subscriber to topic `a` that has had its
/// initial comment. Under [`paused`] time.
async fn heartbeat_hub(heartbeat: Duration) -> (TestHub, Stream) {
    let mut cfg = config();
    cfg.heartbeat = heartbeat;
    let hub = start(cfg).await;
    let mut sub = subscribe(hub.addr, "topic=a", &[]).await;
    sub.ready().await;
    assert_eq!(sub.comments, 1);
    (hub, sub)
}

/// Publishes `marker` in-process and reads up to it; returns the comments
/// read before it, the initial one included.
async fn comments_before(hub: &TestHub, sub: &mut Stream, marker: &str) -> usize {
    // First let the tasks the last advance woke run: a stream polled with
    // the marker already queued serves it before a heartbeat that is due
    // (and the heartbeat is then no longer due), so a heartbeat due too
    // early would go unseen. On the current-thread runtime each yield runs
    // every task already scheduled.
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
    hub.hub
        .publish(herald_hub::PublishForm {
            topics: vec!["a".into()],
            data: marker.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let events = sub.events_until(marker).await;
    assert!(events.is_empty(), "{events:?}");
    sub.comments_before_last_event
}

#[test]
fn heartbeat_comments_arrive_at_the_configured_interval() {
    paused(|| async {
        const EVERY: Duration = Duration::from_secs(10);
        let (hub, mut sub) = heartbeat_hub(EVERY).await;
        // A comment is due EVERY after the last write; one after another,
        // each comes exactly when the paused clock reaches it.
        for due in 1..=3 {
            tokio::time::advance(EVERY).await;
            sub.wait_comments(1 + due).await;
        }
        // Not before: just short of the next one, a marker comes first.
        tokio::time::advance(EVERY - Duration::from_millis(1)).await;
        assert_eq!(comments_before(&hub, &mut sub, "m").await, 4);
    });
}

#[test]
fn heartbeats_fill_silences_only_an_event_restarts_the_wait() {
    paused(|| async {
        const EVERY: Duration = Duration::from_secs(10);
        let (hub, mut sub) = heartbeat_hub(EVERY).await;
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(comments_before(&hub, &mut sub, "at 6 s").await, 1);
        // 12 s is past the heartbeat the initial comment would have made
        // due, but only 6 s after the event.
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(comments_before(&hub, &mut sub, "at 12 s").await, 1);
        // 10 s after that last event, the silence gets its comment.
        tokio::time::advance(EVERY).await;
        sub.wait_comments(2).await;
    });
}

#[test]
fn a_zero_heartbeat_sends_no_comment_but_the_initial_one() {
    paused(|| async {
        let (hub, mut sub) = heartbeat_hub(Duration::ZERO).await;
        // Far past any interval, in steps (each would fire a due timer).
        for _ in 0..24 {
            tokio::time::advance(Duration::from_secs(3600)).await;
        }
        assert_eq!(comments_before(&hub, &mut sub, "a day later").await, 1);
        assert!(!sub.ended);
    });
}

// draft-08 §Publication: past a limit (topics per update), 413; draft-08
// §Subscription: past a limit (selectors, their length), 400 (tests/
// draft08.rs has the same for `match`).
#[tokio::test]
async fn limits_give_413_on_publish_and_400_on_subscribe() {
    let hub = start(config()).await;
    let many_topics: Vec<(&str, &str)> = std::iter::repeat_n(("topic", "t"), 1001).collect();
    let reply = publish_as(hub.addr, Some(&publisher()), &many_topics).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(reply.body.contains("1000"), "{}", reply.body);

    let names: Vec<String> = (0..101).map(|i| format!("t{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let sub = subscribe(hub.addr, &topics(&refs), &[]).await;
    assert_eq!(sub.status, StatusCode::BAD_REQUEST);

    let long = "x".repeat(4097);
    let sub = subscribe(hub.addr, &topics(&[&long]), &[]).await;
    assert_eq!(sub.status, StatusCode::BAD_REQUEST);
    let ok = "x".repeat(4096);
    let sub = subscribe(hub.addr, &topics(&[&ok]), &[]).await;
    assert_eq!(sub.status, StatusCode::OK);
}

#[tokio::test]
async fn subscribe_without_topic_is_400() {
    let hub = start(config()).await;
    let sub = subscribe(hub.addr, "", &[]).await;
    assert_eq!(sub.status, StatusCode::BAD_REQUEST);
}

// draft-08 §Publication: the rules hold for an update published
// in-process too (no topic, the id `earliest` or starting with `#`).
#[tokio::test]
async fn hub_publish_applies_the_rules_of_the_publish_form() {
    use herald_hub::PublishForm;
    let hub = start(config()).await;
    let form = |topics: &[&str], id: Option<&str>| PublishForm {
        topics: topics.iter().map(|t| t.to_string()).collect(),
        id: id.map(str::to_owned),
        ..PublishForm::default()
    };
    for (why, refused) in [
        ("no topic", form(&[], None)),
        ("an empty topic", form(&["a", ""], None)),
        ("the reserved id", form(&["a"], Some("earliest"))),
        ("an id starting with #", form(&["a"], Some("#x"))),
        ("a line break in the id", form(&["a"], Some("a\nb"))),
    ] {
        let error = hub.hub.publish(refused).await.expect_err(why);
        assert!(error.to_string().starts_with("invalid"), "{why}: {error}");
    }
    assert_eq!(hub.hub.metrics().history.events, 0, "nothing was stored");
    assert_eq!(
        hub.hub.publish(form(&["a"], Some("ok"))).await.unwrap(),
        "ok"
    );
}
