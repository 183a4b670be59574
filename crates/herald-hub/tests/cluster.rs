//! Three hubs on one Redis log, in one process, each behind its own
//! server: an update published on any node reaches the matching
//! subscribers of every node, every node delivers one order, and a client
//! resumes on another node with nothing lost and nothing repeated.
//! (Killed nodes, a restarted or stalled Redis: crates/herald/tests/cluster_faults.rs.)
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::redis_server::RedisServer;
use common::*;
use herald_hub::history::{History, RedisHistory, RedisOptions};
use herald_hub::Hub;

const BOOK: &str = "https://ex.com/books/1";
const BOOKS: &str = "https://ex.com/books/{id}";

/// `n` hubs sharing the log on `server`.
async fn nodes(server: &RedisServer, n: usize) -> Vec<TestHub> {
    let mut hubs = Vec::new();
    for _ in 0..n {
        let history = RedisHistory::connect(RedisOptions::new(server.url()))
            .await
            .unwrap();
        hubs.push(start_hub(Hub::with_history(config(), Arc::new(history)).unwrap()).await);
    }
    hubs
}

async fn ready(addr: std::net::SocketAddr, query: &str, headers: &[(&str, &str)]) -> Stream {
    let mut stream = subscribe(addr, query, headers).await;
    assert_eq!(stream.status, 200);
    stream.ready().await;
    stream
}

fn data(events: &[herald_sse::Event]) -> Vec<String> {
    events.iter().map(|e| e.data().to_string()).collect()
}

#[tokio::test]
async fn an_update_published_on_one_node_reaches_the_matching_subscribers_of_every_node() {
    let server = RedisServer::start("reach");
    let hubs = nodes(&server, 3).await;
    let (a, b, c) = (&hubs[0], &hubs[1], &hubs[2]);
    let reader = token(&[], &[BOOKS]);
    let auth = format!("Bearer {reader}");
    let mut subscribers = Vec::new();
    for hub in [a, c] {
        for (query, private) in [
            (topics(&[BOOK]), false),
            (topics(&[BOOKS]), false),
            (topics(&["*"]), false),
            (topics(&[BOOKS]), true),
        ] {
            let headers: &[(&str, &str)] = if private {
                &[("authorization", &auth)]
            } else {
                &[]
            };
            subscribers.push((ready(hub.addr, &query, headers).await, private));
        }
    }

    publish(b.addr, &[("topic", BOOK), ("data", "public")]).await;
    publish(
        b.addr,
        &[("topic", BOOK), ("data", "private"), ("private", "on")],
    )
    .await;
    publish(
        b.addr,
        &[("topic", "https://ex.com/other"), ("data", "elsewhere")],
    )
    .await;
    publish(b.addr, &[("topic", BOOK), ("data", "marker")]).await;

    for (n, (stream, private)) in subscribers.iter_mut().enumerate() {
        let got = data(&stream.events_until("marker").await);
        let wildcard = n % 4 == 2;
        let expected: Vec<&str> = match (private, wildcard) {
            (true, _) => vec!["public", "private"],
            (false, true) => vec!["public", "elsewhere"],
            (false, false) => vec!["public"],
        };
        assert_eq!(got, expected, "subscriber {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_on_every_node_are_delivered_in_one_order_everywhere() {
    const PER_NODE: usize = 100;
    let server = RedisServer::start("order");
    let hubs = nodes(&server, 3).await;
    let mut streams = Vec::new();
    for hub in &hubs {
        streams.push(ready(hub.addr, &topics(&["*"]), &[]).await);
    }
    let publishers: Vec<_> = hubs
        .iter()
        .enumerate()
        .map(|(n, hub)| {
            let addr = hub.addr;
            tokio::spawn(async move {
                for i in 0..PER_NODE {
                    publish(addr, &[("topic", "t"), ("data", &format!("{n}-{i}"))]).await;
                }
            })
        })
        .collect();
    for publisher in publishers {
        publisher.await.unwrap();
    }
    publish(hubs[0].addr, &[("topic", "t"), ("data", "marker")]).await;

    let history = RedisHistory::connect(RedisOptions::new(server.url()))
        .await
        .unwrap();
    let log: Vec<String> = history
        .read_after(0, 1000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id.clone())
        .collect();
    assert_eq!(log.len(), 3 * PER_NODE + 1);
    for (n, stream) in streams.iter_mut().enumerate() {
        let events = stream.events_until("marker").await;
        let order: Vec<String> = events
            .iter()
            .map(|e| e.last_event_id().to_string())
            .collect();
        assert_eq!(
            order,
            log[..log.len() - 1],
            "node {n} delivered another order"
        );
    }
}

#[tokio::test]
async fn a_client_resumes_on_another_node_with_no_gap_and_no_duplicate() {
    let server = RedisServer::start("resume");
    let hubs = nodes(&server, 3).await;
    let (a, b, c) = (&hubs[0], &hubs[1], &hubs[2]);

    // Hub-minted ids and client-given ids, published on a node that is
    // neither the one the client leaves nor the one it lands on.
    let mut first = ready(a.addr, &topics(&["t"]), &[]).await;
    let mut published = Vec::new();
    for i in 0..10 {
        let mut form = vec![("topic", "t".to_string()), ("data", format!("e{i}"))];
        if i % 2 == 1 {
            form.push(("id", format!("client-{i}")));
        }
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        published.push(publish(b.addr, &pairs).await);
    }
    let seen = first.take(4, LONG).await;
    assert_eq!(data(&seen), ["e0", "e1", "e2", "e3"]);
    drop(first);

    for resume_from in [3usize, 4] {
        // e3 has the client-given id "client-3"; e4 a hub-minted one.
        let id = &published[resume_from];
        assert_eq!(id.starts_with("client-"), resume_from % 2 == 1);
        publish(
            b.addr,
            &[("topic", "t"), ("data", &format!("marker-{resume_from}"))],
        )
        .await;
        let mut resumed = ready(c.addr, &topics(&["t"]), &[("last-event-id", id)]).await;
        assert_eq!(resumed.headers["last-event-id"], id.as_str());
        let rest = data(&resumed.events_until(&format!("marker-{resume_from}")).await);
        let expected: Vec<String> = (resume_from + 1..10).map(|i| format!("e{i}")).collect();
        // Markers of earlier rounds are in the log too.
        let rest: Vec<String> = rest
            .into_iter()
            .filter(|d| !d.starts_with("marker"))
            .collect();
        assert_eq!(rest, expected, "resuming on another node from {id}");
    }
}

#[tokio::test]
async fn live_delivery_after_resume_on_another_node_continues_without_repeats() {
    let server = RedisServer::start("handover");
    let hubs = nodes(&server, 2).await;
    let (a, b) = (&hubs[0], &hubs[1]);
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(publish(a.addr, &[("topic", "t"), ("data", &format!("e{i}"))]).await);
    }
    // Resume on b from e1 while a keeps publishing: replay hands over to
    // live on b with each event once.
    let mut resumed = ready(b.addr, &topics(&["t"]), &[("last-event-id", &ids[1])]).await;
    for i in 5..20 {
        publish(a.addr, &[("topic", "t"), ("data", &format!("e{i}"))]).await;
    }
    publish(a.addr, &[("topic", "t"), ("data", "marker")]).await;
    let expected: Vec<String> = (2..20).map(|i| format!("e{i}")).collect();
    assert_eq!(data(&resumed.events_until("marker").await), expected);
}

#[tokio::test]
async fn when_redis_loses_the_log_streams_end_and_clients_resume_from_the_new_log() {
    let server = RedisServer::start("lost");
    let hubs = nodes(&server, 2).await;
    let (a, b) = (&hubs[0], &hubs[1]);
    let mut stream = ready(a.addr, &topics(&["t"]), &[]).await;
    publish(b.addr, &[("topic", "t"), ("data", "e1")]).await;
    let last_seen = publish(b.addr, &[("topic", "t"), ("data", "e2")]).await;
    assert_eq!(data(&stream.take(2, LONG).await), ["e1", "e2"]);

    // A Redis without persistence restarted, or an operator's FLUSHALL:
    // the log starts over, and its positions with it.
    server.cli(&["FLUSHALL"]);
    publish(b.addr, &[("topic", "t"), ("data", "e3")]).await;
    assert!(stream.ends_within(LONG).await, "the stream ends");
    assert!(
        stream.next_event().await.is_none(),
        "nothing after the reset on the old stream"
    );

    let mut resumed = ready(a.addr, &topics(&["t"]), &[("last-event-id", &last_seen)]).await;
    assert_eq!(
        resumed.headers["last-event-id"], "earliest",
        "the id is gone with the old log"
    );
    publish(b.addr, &[("topic", "t"), ("data", "marker")]).await;
    assert_eq!(data(&resumed.events_until("marker").await), ["e3"]);
}

#[tokio::test]
async fn when_a_failover_loses_the_newest_entries_streams_end_and_clients_resume() {
    let server = RedisServer::start("failover");
    let hubs = nodes(&server, 2).await;
    let (a, b) = (&hubs[0], &hubs[1]);
    let mut stream = ready(a.addr, &topics(&["t"]), &[]).await;
    let mut ids = Vec::new();
    for i in 1..=4 {
        ids.push(publish(b.addr, &[("topic", "t"), ("data", &format!("e{i}"))]).await);
    }
    assert_eq!(data(&stream.take(4, LONG).await), ["e1", "e2", "e3", "e4"]);

    // What a replica that had not received the last two writes holds once
    // it is promoted: the log ends at e2.
    server.cli(&["XDEL", "{herald}:log", "3-0", "4-0"]);
    server.cli(&["XSETID", "{herald}:log", "2-0"]);
    server.cli(&["HDEL", "{herald}:ids", &ids[2], &ids[3]]);
    server.cli(&["SET", "{herald}:seq", "2"]);
    publish(b.addr, &[("topic", "t"), ("data", "e5")]).await;
    assert!(stream.ends_within(LONG).await, "the stream ends");

    // A client that had seen e4 resumes from what the log holds now.
    let mut resumed = ready(a.addr, &topics(&["t"]), &[("last-event-id", &ids[3])]).await;
    assert_eq!(resumed.headers["last-event-id"], "earliest");
    publish(b.addr, &[("topic", "t"), ("data", "marker")]).await;
    assert_eq!(
        data(&resumed.events_until("marker").await),
        ["e1", "e2", "e5"]
    );
    // And live delivery goes on on every node.
    let mut fresh = ready(b.addr, &topics(&["t"]), &[]).await;
    publish(a.addr, &[("topic", "t"), ("data", "e6")]).await;
    assert_eq!(data(&fresh.take(1, LONG).await), ["e6"]);
}

#[tokio::test]
async fn the_200_of_a_publish_means_the_update_is_in_the_shared_log() {
    let server = RedisServer::start("stored");
    let hubs = nodes(&server, 1).await;
    let outside = RedisHistory::connect(RedisOptions::new(server.url()))
        .await
        .unwrap();
    for i in 0..20 {
        let id = publish(hubs[0].addr, &[("topic", "t"), ("data", &format!("e{i}"))]).await;
        // Read at once, through another connection: no wait for anything.
        let seq = outside.seq_of(&id).await.unwrap();
        assert_eq!(seq, Some(i + 1), "{id} is in the log when its 200 arrives");
    }
}
