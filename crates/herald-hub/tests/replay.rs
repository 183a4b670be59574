//! History and replay: `Last-Event-ID` (header and query), `earliest`,
//! unknown ids, and the replay-to-live hand-over under load.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use hyper::StatusCode;

async fn publish_numbered(
    addr: std::net::SocketAddr,
    topic: &str,
    range: std::ops::Range<usize>,
) -> Vec<String> {
    let mut ids = Vec::new();
    for i in range {
        ids.push(publish(addr, &[("topic", topic), ("data", &i.to_string())]).await);
    }
    ids
}

fn data(events: &[herald_sse::Event]) -> Vec<String> {
    events.iter().map(|e| e.data().to_owned()).collect()
}

// draft-07 §Reconciliation: a `Last-Event-ID` header replays what
// followed, and the response's `Last-Event-ID` names the event before the
// first one sent.
#[tokio::test]
async fn last_event_id_header_replays_everything_after_it_and_is_echoed() {
    let hub = start(config()).await;
    let ids = publish_numbered(hub.addr, "a", 0..5).await;
    let mut sub = subscribe(hub.addr, "topic=a", &[("last-event-id", &ids[1])]).await;
    assert_eq!(sub.status, StatusCode::OK);
    assert_eq!(sub.headers["last-event-id"].to_str().unwrap(), ids[1]);
    let events = sub.take(3, LONG).await;
    assert_eq!(data(&events), vec!["2", "3", "4"]);
    assert_eq!(events[2].last_event_id(), ids[4]);
    assert_nothing_before_marker(hub.addr, &mut sub, "a", "more replay").await;
}

// draft-07 §Reconciliation: the hub also takes the id in the
// `lastEventID` query parameter, and answers `Last-Event-ID`.
#[tokio::test]
async fn last_event_id_query_parameter_replays() {
    let hub = start(config()).await;
    let ids = publish_numbered(hub.addr, "a", 0..4).await;
    let query = format!("topic=a&lastEventID={}", enc(&ids[2]));
    let mut sub = subscribe(hub.addr, &query, &[]).await;
    assert_eq!(sub.headers["last-event-id"].to_str().unwrap(), ids[2]);
    assert_eq!(data(&sub.take(1, LONG).await), vec!["3"]);
}

// draft-07 §Reconciliation: the header takes precedence over the query
// parameter.
#[tokio::test]
async fn the_header_wins_over_the_query_parameter() {
    let hub = start(config()).await;
    let ids = publish_numbered(hub.addr, "a", 0..4).await;
    let query = format!("topic=a&lastEventID={}", enc(&ids[0]));
    let mut sub = subscribe(hub.addr, &query, &[("last-event-id", &ids[2])]).await;
    assert_eq!(sub.headers["last-event-id"].to_str().unwrap(), ids[2]);
    assert_eq!(data(&sub.take(1, LONG).await), vec!["3"]);
    assert_nothing_before_marker(hub.addr, &mut sub, "a", "replay from the query's id").await;
}

// draft-07 §Reconciliation: `earliest` asks for everything; the response
// says `earliest`.
#[tokio::test]
async fn earliest_replays_all_history() {
    let hub = start(config()).await;
    publish_numbered(hub.addr, "a", 0..3).await;
    let mut sub = subscribe(hub.addr, "topic=a", &[("last-event-id", "earliest")]).await;
    assert_eq!(sub.headers["last-event-id"], "earliest");
    assert_eq!(data(&sub.take(3, LONG).await), vec!["0", "1", "2"]);
}

#[tokio::test]
async fn no_last_event_id_means_no_replay_and_no_header() {
    let hub = start(config()).await;
    publish_numbered(hub.addr, "a", 0..3).await;
    let mut sub = subscribe(hub.addr, "topic=a", &[]).await;
    assert!(!sub.headers.contains_key("last-event-id"));
    sub.ready().await;
    assert_nothing_before_marker(hub.addr, &mut sub, "a", "a replay").await;
}

// draft-07 §Reconciliation: an id no longer held has no preceding event
// the hub can name: `earliest`.
#[tokio::test]
async fn an_evicted_id_replays_from_the_oldest_held_and_says_earliest() {
    let mut cfg = config();
    cfg.history_size = 3;
    let hub = start(cfg).await;
    let ids = publish_numbered(hub.addr, "a", 0..6).await;
    let mut sub = subscribe(hub.addr, "topic=a", &[("last-event-id", &ids[0])]).await;
    assert_eq!(
        sub.headers["last-event-id"], "earliest",
        "the client must learn events may be lost"
    );
    assert_eq!(data(&sub.take(3, LONG).await), vec!["3", "4", "5"]);
}

// draft-07 §Reconciliation: an id that does not exist answers `earliest`.
#[tokio::test]
async fn a_never_seen_id_replays_from_the_oldest_held_and_says_earliest() {
    let hub = start(config()).await;
    publish_numbered(hub.addr, "a", 0..2).await;
    let mut sub = subscribe(
        hub.addr,
        "topic=a",
        &[("last-event-id", "urn:uuid:not-an-event")],
    )
    .await;
    assert_eq!(sub.headers["last-event-id"], "earliest");
    assert_eq!(data(&sub.take(2, LONG).await), vec!["0", "1"]);
}

// draft-07 §Reconciliation: with nothing in history, the response's
// `Last-Event-ID` is `earliest`.
#[tokio::test]
async fn an_empty_history_says_earliest() {
    let hub = start(config()).await;
    let mut sub = subscribe(hub.addr, "topic=a", &[("last-event-id", "urn:uuid:any")]).await;
    assert_eq!(sub.status, StatusCode::OK);
    assert_eq!(sub.headers["last-event-id"], "earliest");
    sub.ready().await;
    assert_nothing_before_marker(hub.addr, &mut sub, "a", "a replay").await;
}

// draft-07 §Subscribers (and draft-08 §Reconciliation): replayed private
// updates reach only subscribers whose token allows them.
#[tokio::test]
async fn replay_honours_selectors_and_private_updates() {
    let hub = start(config()).await;
    publish(hub.addr, &[("topic", "a"), ("data", "public-a")]).await;
    publish(hub.addr, &[("topic", "b"), ("data", "public-b")]).await;
    publish(
        hub.addr,
        &[("topic", "a"), ("data", "private-a"), ("private", "on")],
    )
    .await;
    let mut anonymous = subscribe(hub.addr, "topic=a", &[("last-event-id", "earliest")]).await;
    publish(hub.addr, &[("topic", "a"), ("data", "live")]).await;
    assert_eq!(
        data(&anonymous.events_until("live").await),
        vec!["public-a"]
    );
    let token = token(&[], &["a"]);
    let auth = format!("Bearer {token}");
    let mut authorized = subscribe(
        hub.addr,
        "topic=a",
        &[("last-event-id", "earliest"), ("authorization", &auth)],
    )
    .await;
    assert_eq!(
        data(&authorized.take(3, LONG).await),
        vec!["public-a", "private-a", "live"]
    );
}

#[tokio::test]
async fn an_empty_last_event_id_means_no_replay() {
    let hub = start(config()).await;
    publish_numbered(hub.addr, "a", 0..3).await;
    let mut sub = subscribe(hub.addr, "topic=a&lastEventID=", &[]).await;
    assert!(!sub.headers.contains_key("last-event-id"));
    sub.ready().await;
    publish(hub.addr, &[("topic", "a"), ("data", "live")]).await;
    let replayed = sub.events_until("live").await;
    assert!(replayed.is_empty(), "{replayed:?}");
}

#[tokio::test]
async fn with_durable_history_an_evicted_id_also_says_earliest() {
    use herald_hub::history::redb::{RedbOptions, Retention};
    use herald_hub::history::RedbHistory;
    let dir = std::env::temp_dir().join(format!("herald-replay-redb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = RedbOptions {
        retention: Retention {
            max_events: Some(3),
            ..Retention::default()
        },
        ..RedbOptions::default()
    };
    let history = std::sync::Arc::new(RedbHistory::open(&dir, options).unwrap());
    let hub = start_hub(herald_hub::Hub::with_history(config(), history).unwrap()).await;
    let ids = publish_numbered(hub.addr, "a", 0..6).await;
    let mut sub = subscribe(hub.addr, "topic=a", &[("last-event-id", &ids[1])]).await;
    assert_eq!(sub.headers["last-event-id"], "earliest");
    assert_eq!(data(&sub.take(3, LONG).await), vec!["3", "4", "5"]);
    let mut sub = subscribe(hub.addr, "topic=a", &[("last-event-id", &ids[3])]).await;
    assert_eq!(sub.headers["last-event-id"].to_str().unwrap(), ids[3]);
    assert_eq!(data(&sub.take(2, LONG).await), vec!["4", "5"]);
    drop(hub);
    let _ = std::fs::remove_dir_all(&dir);
}
