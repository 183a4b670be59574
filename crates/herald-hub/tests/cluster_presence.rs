//! Presence across hub nodes sharing one Redis log (draft-08 §Active
//! Subscriptions on a cluster): a node that starts late lists the
//! subscriptions the others hold, and the subscriptions of a node that
//! stops renewing its lease are ended by another node, through the log.
//! (Real processes killed with SIGKILL: crates/herald/tests/cluster_faults.rs.)
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::redis_server::RedisServer;
use common::*;
use herald_hub::history::{History, Lease, RedisHistory, RedisOptions};
use herald_hub::{Hub, HubConfig};
use http_body_util::Full;
use hyper::{Request, StatusCode};
use serde_json::Value;

const COLLECTION: &str = "/.well-known/mercure/subscriptions";
const LEASE: Duration = Duration::from_secs(1);

fn options(server: &RedisServer) -> RedisOptions {
    RedisOptions {
        node_lease: LEASE,
        ..RedisOptions::new(server.url())
    }
}

/// A node with active subscriptions on the log at `server`.
async fn node(server: &RedisServer) -> TestHub {
    let history = RedisHistory::connect(options(server)).await.unwrap();
    let config = HubConfig {
        subscriptions: true,
        // Short heartbeats make the hub notice a closed connection soon.
        heartbeat: Duration::from_millis(100),
        ..config()
    };
    start_hub(Hub::with_history(config, Arc::new(history)).unwrap()).await
}

fn bearer() -> String {
    format!("Bearer {}", token(&[], &["*"]))
}

/// The subscription API's collection, and the cursor of its `Link`.
async fn list(hub: &TestHub) -> (Vec<Value>, String) {
    let req = Request::get(format!("http://{}{COLLECTION}", hub.addr))
        .header("Authorization", bearer())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let reply = request(req).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let link = reply.headers["link"].to_str().unwrap();
    let cursor = link
        .split("last-event-id=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let doc: Value = serde_json::from_str(&reply.body).unwrap();
    (doc["subscriptions"].as_array().unwrap().clone(), cursor)
}

/// The matchers listed, but the watchers' own.
fn matchers(list: &[Value]) -> Vec<&str> {
    list.iter()
        .map(|d| d["match"].as_str().unwrap())
        .filter(|m| !m.starts_with(COLLECTION))
        .collect()
}

/// Every subscription event from `cursor` on.
async fn watch(hub: &TestHub, cursor: &str) -> Stream {
    let query = form(&[
        ("match_urlpattern", &format!("{COLLECTION}/*")),
        ("last_event_id", cursor),
    ]);
    let mut watcher = subscribe(hub.addr, &query, &[("Authorization", &bearer())]).await;
    assert_eq!(watcher.status, StatusCode::OK);
    watcher.ready().await;
    watcher
}

/// The next document the watcher gets about `pattern`.
async fn next_about(watcher: &mut Stream, pattern: &str) -> Value {
    loop {
        let event = watcher
            .next_event_within(LONG)
            .await
            .expect("a subscription event in time");
        let doc: Value = serde_json::from_str(event.data()).unwrap();
        if doc["match"] == pattern {
            return doc;
        }
    }
}

// A node that starts after a subscription did lists it (from the roster),
// and the cursor it gives leads to the event of its end.
#[tokio::test]
async fn a_node_that_starts_late_lists_what_the_others_hold() {
    let server = RedisServer::start("presence-late");
    let a = node(&server).await;
    let (_, cursor) = list(&a).await;
    let mut on_a = watch(&a, &cursor).await;
    let mut reader = subscribe(a.addr, &form(&[("match", "books")]), &[]).await;
    reader.ready().await;
    let started = next_about(&mut on_a, "books").await;
    assert_eq!(started["active"], true);

    let b = node(&server).await;
    let (held, cursor) = list(&b).await;
    assert_eq!(matchers(&held), ["books"]);
    assert!(held.iter().any(|d| d["id"] == started["id"]));
    let mut on_b = watch(&b, &cursor).await;
    drop(reader);
    let ended = next_about(&mut on_b, "books").await;
    assert_eq!(
        (ended["active"].clone(), &ended["id"]),
        (false.into(), &started["id"])
    );
    let (held, _) = list(&b).await;
    assert!(matchers(&held).is_empty(), "{held:?}");
}

// A node that stops renewing its lease (it died without ending its
// streams) has its subscriptions ended by a live node, through the log:
// every node sees `active: false`. Until then, a starting node lists them.
#[tokio::test]
async fn the_subscriptions_of_a_node_that_died_are_ended_by_another() {
    let server = RedisServer::start("presence-dead");
    let live = node(&server).await;
    let (_, cursor) = list(&live).await;
    let mut watcher = watch(&live, &cursor).await;

    // What a node leaves in the roster when it is killed: its lease and
    // the record of a subscription whose end it never announced.
    let dying = RedisHistory::connect(RedisOptions {
        node_lease: Duration::from_secs(3),
        ..RedisOptions::new(server.url())
    })
    .await
    .unwrap();
    let roster = dying.roster().unwrap();
    roster.renew().await.unwrap();
    let subscriber = "urn:uuid:6f1c2a4e-0000-4000-8000-000000000001";
    let topic =
        format!("{COLLECTION}/exact/orphan/urn%3Auuid%3A6f1c2a4e-0000-4000-8000-000000000001");
    let record = serde_json::json!({"match_type": "exact", "match": "orphan", "subscriber": subscriber, "payload": null});
    roster
        .enter(&[(topic.clone(), record.to_string())])
        .await
        .unwrap();
    let late = node(&server).await;
    let (held, cursor) = list(&late).await;
    assert_eq!(matchers(&held), ["orphan"]);
    assert!(held.iter().any(|d| d["id"] == topic.as_str()));
    let mut on_late = watch(&late, &cursor).await;

    let ended = next_about(&mut watcher, "orphan").await;
    assert_eq!(ended["active"], false);
    assert_eq!(ended["id"], topic.as_str());
    assert_eq!(ended["subscriber"], subscriber);
    drop(dying);
    // Each node folds the end when it follows the log that far: `late`
    // lists the end once it has delivered it.
    let ended_on_late = next_about(&mut on_late, "orphan").await;
    assert_eq!(ended_on_late["active"], false);
    let (held, _) = list(&late).await;
    assert!(matchers(&held).is_empty(), "{held:?}");
}

// The lease tells a node that stalled past it to announce its
// subscriptions again; a node renewing in time holds it. (Time has to
// pass here: a lease is a duration on Redis's clock.)
#[tokio::test]
async fn a_lapsed_lease_is_reported_to_its_node() {
    let server = RedisServer::start("presence-lease");
    let lease = Duration::from_secs(3);
    let history = RedisHistory::connect(RedisOptions {
        node_lease: lease,
        ..RedisOptions::new(server.url())
    })
    .await
    .unwrap();
    let roster = history.roster().unwrap();
    assert_eq!(roster.renew().await.unwrap(), Lease::Lapsed, "a new node");
    assert_eq!(roster.renew().await.unwrap(), Lease::Held);
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    assert_eq!(roster.renew().await.unwrap(), Lease::Lapsed);
}
