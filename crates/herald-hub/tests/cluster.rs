//! Hubs on one Redis log, in one process, each behind its own server:
//! what the 200 of a publish means, the hand-over from replay to live on
//! another node, and what nodes do when Redis loses the log or part of it.
//! (Three `herald serve` processes, reach, order and resume:
//! crates/herald/tests/cluster.rs; killed nodes, a restarted or stalled
//! Redis: crates/herald/tests/cluster_faults.rs.)
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::redis_server::RedisServer;
use common::*;
use herald_hub::history::{History, RedisHistory, RedisOptions};
use herald_hub::Hub;

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
    // And live delivery goes on on every node. b may still be behind the
    // log by the marker (its reader notices the failover on its own), and
    // a new subscriber gets what its node dispatches from then on.
    let mut fresh = ready(b.addr, &topics(&["t"]), &[]).await;
    publish(a.addr, &[("topic", "t"), ("data", "e6")]).await;
    let before = data(&fresh.events_until("e6").await);
    assert!(before.is_empty() || before == ["marker"], "{before:?}");
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
