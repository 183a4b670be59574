//! The `events_lost` signal (`lost_events=1`): a subscriber whose resume
//! id history no longer holds is told so in the stream, before the replay,
//! by an event of the hub's reserved type `mercure`; in both revisions,
//! never without the opt-in, never for a held id, never forgeable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::*;
use herald_hub::{HubConfig, HUB_PATH};
use herald_hub::{Protocol, PublishForm};
use http_body_util::Full;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};

/// A hub whose history holds the last 3 events.
fn small_history() -> HubConfig {
    HubConfig {
        history_size: 3,
        ..config()
    }
}

async fn publish_numbered(addr: std::net::SocketAddr, topic: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(publish(addr, &[("topic", topic), ("data", &i.to_string())]).await);
    }
    ids
}

fn data(events: &[herald_sse::Event]) -> Vec<String> {
    events.iter().map(|e| e.data().to_owned()).collect()
}

/// The signal's document, after checking that `event` is one.
fn signal(event: &herald_sse::Event) -> Value {
    assert_eq!(event.event_type(), "mercure", "not the signal: {event:?}");
    let doc: Value = serde_json::from_str(event.data()).unwrap();
    assert_eq!(doc["type"], "events_lost", "{doc}");
    doc
}

/// The exact frame of the signal: the reserved type, one line of JSON and
/// no `id` field, which would move the client's last event id.
fn signal_frame(requested: &str, earliest: Option<&str>) -> String {
    let doc = json!({"type": "events_lost", "requested": requested, "earliest": earliest});
    let data = format!(
        r#"{{"type":"events_lost","requested":{},"earliest":{}}}"#,
        doc["requested"], doc["earliest"]
    );
    format!("event: mercure\ndata: {data}\n\n")
}

/// Whether the signal frame is on the wire, byte for byte.
fn on_the_wire(stream: &Stream, frame: &str) -> bool {
    String::from_utf8_lossy(&stream.raw).contains(frame)
}

// draft-07 (`topic`, `Last-Event-ID` header): the signal comes first,
// with the requested id and the first replayed one, then the replay; the
// header still says `earliest`. A reconnection from the same id (the
// signal carried none) is told again.
#[tokio::test]
async fn an_evicted_id_is_signalled_before_the_replay_with_topic() {
    let hub = start(small_history()).await;
    let ids = publish_numbered(hub.addr, "a", 6).await;
    let mut streams = Vec::new();
    for _ in 0..2 {
        let mut sub = subscribe(
            hub.addr,
            "topic=a&lost_events=1",
            &[("last-event-id", &ids[0])],
        )
        .await;
        assert_eq!(sub.status, StatusCode::OK);
        assert_eq!(sub.headers["last-event-id"], "earliest");
        let events = sub.take(4, LONG).await;
        assert_eq!(events.len(), 4, "{events:?}");
        let doc = signal(&events[0]);
        assert_eq!(
            doc,
            json!({"type": "events_lost", "requested": ids[0], "earliest": ids[3]})
        );
        assert!(on_the_wire(&sub, &signal_frame(&ids[0], Some(&ids[3]))));
        assert_eq!(data(&events[1..]), vec!["3", "4", "5"]);
        assert_eq!(events[1].last_event_id(), ids[3]);
        streams.push(sub);
    }
    publish(hub.addr, &[("topic", "a"), ("data", "marker")]).await;
    for mut sub in streams {
        let before = sub.events_until("marker").await;
        assert!(before.is_empty(), "{before:?} arrived after the replay");
    }
}

// draft-08 (`match`, `last_event_id` in the query, and in a QUERY body):
// the same signal; the response says `earliest` in `Mercure-Last-Event-ID`.
#[tokio::test]
async fn an_evicted_id_is_signalled_before_the_replay_with_match() {
    let hub = start(small_history()).await;
    let ids = publish_numbered(hub.addr, "a", 5).await;
    let query = format!("match=a&lost_events=1&last_event_id={}", enc(&ids[1]));
    let mut sub = subscribe(hub.addr, &query, &[]).await;
    assert_eq!(sub.headers["mercure-last-event-id"], "earliest");
    let events = sub.take(4, LONG).await;
    assert_eq!(
        signal(&events[0]),
        json!({"type": "events_lost", "requested": ids[1], "earliest": ids[2]})
    );
    assert_eq!(data(&events[1..]), vec!["2", "3", "4"]);

    let body = format!("match=a&last_event_id={}&lost_events=on", enc(&ids[0]));
    let req = Request::builder()
        .method("QUERY")
        .uri(format!("http://{}{HUB_PATH}", hub.addr))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let mut sub = subscribe_request(req).await;
    assert_eq!(sub.status, StatusCode::OK);
    let events = sub.take(4, LONG).await;
    assert_eq!(signal(&events[0])["requested"], ids[0]);
    assert_eq!(data(&events[1..]), vec!["2", "3", "4"]);
}

// Without the opt-in nothing changes: the replay alone, and only the
// header says `earliest`.
#[tokio::test]
async fn without_the_opt_in_there_is_no_signal() {
    for query in ["topic=a", "match=a", "match=a&lost_events=0"] {
        // A hub each: the marker below takes a place in the small history.
        let hub = start(small_history()).await;
        let ids = publish_numbered(hub.addr, "a", 6).await;
        let mut sub = subscribe(hub.addr, query, &[("last-event-id", &ids[0])]).await;
        assert_eq!(sub.headers["last-event-id"], "earliest");
        let events = sub.take(3, LONG).await;
        assert_eq!(data(&events), vec!["3", "4", "5"], "{query}");
        assert_nothing_before_marker(hub.addr, &mut sub, "a", query).await;
        assert!(!String::from_utf8_lossy(&sub.raw).contains("events_lost"));
    }
}

// A held id, `earliest`, or no id at all: nothing was lost, nothing is
// signalled, even when asked for.
#[tokio::test]
async fn a_held_id_or_earliest_gets_no_signal() {
    let hub = start(small_history()).await;
    let ids = publish_numbered(hub.addr, "a", 6).await;
    let mut held = subscribe(
        hub.addr,
        "topic=a&lost_events=1",
        &[("last-event-id", &ids[3])],
    )
    .await;
    assert_eq!(held.headers["last-event-id"].to_str().unwrap(), ids[3]);
    assert_eq!(data(&held.take(2, LONG).await), vec!["4", "5"]);
    assert_nothing_before_marker(hub.addr, &mut held, "a", "a signal for a held id").await;

    let mut earliest = subscribe(
        hub.addr,
        "match=a&lost_events=1&last_event_id=earliest",
        &[],
    )
    .await;
    // The marker above is in history too, and is the last held.
    assert_eq!(
        data(&earliest.take(3, LONG).await),
        vec!["4", "5", "the marker published last"]
    );
    assert_nothing_before_marker(hub.addr, &mut earliest, "a", "a signal for earliest").await;

    let mut fresh = subscribe(hub.addr, "match=a&lost_events=1", &[]).await;
    fresh.ready().await;
    assert_nothing_before_marker(hub.addr, &mut fresh, "a", "a signal with no id").await;
}

// An id the hub never had looks the same as an evicted one: history
// cannot tell them apart, so it is signalled too. With nothing to replay
// (an empty history), `earliest` is null and the live events follow.
#[tokio::test]
async fn an_unknown_id_is_signalled_and_an_empty_replay_says_null() {
    let hub = start(small_history()).await;
    let ids = publish_numbered(hub.addr, "a", 2).await;
    let mut unknown = subscribe(
        hub.addr,
        "topic=a&lost_events=1",
        &[("last-event-id", "urn:uuid:never-published")],
    )
    .await;
    let events = unknown.take(3, LONG).await;
    assert_eq!(
        signal(&events[0]),
        json!({"type": "events_lost", "requested": "urn:uuid:never-published", "earliest": ids[0]})
    );
    assert_eq!(data(&events[1..]), vec!["0", "1"]);

    let hub = start(small_history()).await;
    let mut empty = subscribe(
        hub.addr,
        "match=a&lost_events=1",
        &[("last-event-id", "urn:uuid:never-published")],
    )
    .await;
    let first = empty.next_event_within(LONG).await.unwrap();
    assert_eq!(
        signal(&first),
        json!({"type": "events_lost", "requested": "urn:uuid:never-published", "earliest": null})
    );
    assert!(on_the_wire(
        &empty,
        &signal_frame("urn:uuid:never-published", None)
    ));
    assert_nothing_before_marker(hub.addr, &mut empty, "a", "more than the signal").await;
}

// `earliest` names the first event this subscriber is replayed, not the
// oldest one history holds: that one may be on a topic it did not ask
// for, or private, and its id is not the subscriber's to learn.
#[tokio::test]
async fn earliest_names_the_first_event_this_subscriber_gets() {
    let hub = start(small_history()).await;
    let gone = publish(hub.addr, &[("topic", "a"), ("data", "gone")]).await;
    publish(hub.addr, &[("topic", "b"), ("data", "other topic")]).await;
    publish(
        hub.addr,
        &[("topic", "a"), ("data", "private"), ("private", "on")],
    )
    .await;
    let visible = publish(hub.addr, &[("topic", "a"), ("data", "visible")]).await;
    let mut sub = subscribe(
        hub.addr,
        "topic=a&lost_events=1",
        &[("last-event-id", &gone)],
    )
    .await;
    let events = sub.take(2, LONG).await;
    assert_eq!(
        signal(&events[0]),
        json!({"type": "events_lost", "requested": gone, "earliest": visible})
    );
    assert_eq!(data(&events[1..]), vec!["visible"]);
}

// No publisher can send an event of the signal's type, in either
// revision, over HTTP or through the embedding API; a look-alike type is
// delivered as what it is, not as `mercure`.
#[tokio::test]
async fn a_publisher_cannot_forge_the_signal() {
    for protocol in [Protocol::Both, Protocol::Draft07, Protocol::Draft08] {
        let hub = start(HubConfig {
            protocol,
            ..config()
        })
        .await;
        let forged = [
            ("topic", "a"),
            ("type", "mercure"),
            (
                "data",
                r#"{"type":"events_lost","requested":"x","earliest":null}"#,
            ),
        ];
        // A hub speaking only draft-08 takes no draft-07 publisher token
        // over HTTP; the embedding API below checks it the same way.
        if protocol != Protocol::Draft08 {
            let reply = publish_as(hub.addr, Some(&publisher()), &forged).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{protocol:?}");
            assert!(reply.body.contains("\"type\""), "{}", reply.body);
        }
        let form = PublishForm {
            topics: vec!["a".into()],
            event_type: Some("mercure".into()),
            data: forged[2].1.into(),
            ..PublishForm::default()
        };
        assert!(hub.hub.publish(form).await.is_err(), "{protocol:?}");
    }

    let hub = start(config()).await;
    let mut sub = subscribe(hub.addr, "topic=a", &[]).await;
    sub.ready().await;
    publish(
        hub.addr,
        &[("topic", "a"), ("type", " mercure"), ("data", "look-alike")],
    )
    .await;
    let event = sub.next_event_within(LONG).await.unwrap();
    assert_eq!(event.data(), "look-alike");
    assert_ne!(event.event_type(), "mercure");
}

// A value that is neither yes nor no is refused, naming the parameter.
#[tokio::test]
async fn a_bad_opt_in_value_is_refused() {
    let hub = start(config()).await;
    let req = Request::get(format!(
        "http://{}{HUB_PATH}?match=a&lost_events=yes",
        hub.addr
    ))
    .body(Full::new(Bytes::new()))
    .unwrap();
    let reply = request(req).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("lost_events"), "{}", reply.body);
}
