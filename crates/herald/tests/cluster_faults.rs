//! A cluster as an operator runs it: `herald serve --history redis` nodes
//! on one real redis-server, and the faults a user meets. A node killed
//! with SIGKILL, Redis restarted or stalled during a publish storm: every
//! acknowledged update still reaches every subscriber once, in the one
//! order of the log, and the hub says what is wrong while it is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::http::{
    exchange, open_stream, publish, publish_request, publisher_token, read_until, try_publish,
};
use support::redis_node::{redis_node, CLUSTER_KEY};
use support::redis_server::RedisServer;
use support::storm::{Acks, Followed, Follower};
use support::{Serving, DEADLINE};

const KEY: &str = CLUSTER_KEY;

/// Publishers, one per address, each numbering its updates; a publisher
/// whose node fails moves to the next address (as a load balancer would),
/// or, with `retry`, tries its own again.
struct Storm {
    acks: Arc<Acks>,
    /// Publishes that did not get a 200.
    failures: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl Storm {
    fn start(addrs: &[String], failover: bool) -> Storm {
        let acks = Arc::new(Acks::default());
        let failures = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let token = publisher_token(KEY);
        let workers = (0..addrs.len())
            .map(|p| {
                let addrs = addrs.to_vec();
                let token = token.clone();
                let (acks, failures, stop) =
                    (Arc::clone(&acks), Arc::clone(&failures), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let mut target = p;
                    // A failed publish may still be stored: its number is
                    // never reused.
                    for seq in 0u64.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let body = format!("topic=storm&data={p}-{seq}");
                        if let Some(id) = try_publish(&addrs[target], &token, &body) {
                            acks.push((p, seq, id));
                            continue;
                        }
                        failures.fetch_add(1, Ordering::Relaxed);
                        if failover {
                            target = (target + 1) % addrs.len();
                        } else {
                            // A pause between failed tries, not a wait for
                            // anything in particular.
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                })
            })
            .collect();
        Storm {
            acks,
            failures,
            stop,
            workers,
        }
    }

    /// Stops the publishers and returns every acknowledged id.
    fn stop(self) -> Vec<(usize, u64, String)> {
        self.stop.store(true, Ordering::Relaxed);
        for worker in self.workers {
            worker.join().unwrap();
        }
        Arc::try_unwrap(self.acks)
            .ok()
            .expect("the publishers are done")
            .list
            .into_inner()
            .unwrap()
    }
}

/// Publishes `marker` on `addr`, retrying while the cluster recovers.
fn publish_marker(addr: &str, marker: &str) {
    let token = publisher_token(KEY);
    let deadline = Instant::now() + DEADLINE;
    while try_publish(addr, &token, &format!("topic=storm&data={marker}")).is_none() {
        assert!(
            Instant::now() < deadline,
            "no publish succeeded within {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every follower saw the same events in the same order, each once, and
/// among them every acknowledged update, each publisher's in its order.
fn assert_all_delivered_once_in_one_order(followed: &[Followed], acks: &[(usize, u64, String)]) {
    let first = &followed[0].events;
    let ids: HashSet<&str> = first.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids.len(), first.len(), "an event was delivered twice");
    for (n, other) in followed.iter().enumerate().skip(1) {
        assert_eq!(
            other.events.len(),
            first.len(),
            "follower {n} (nodes {:?}) saw another number of events",
            other.nodes
        );
        assert!(
            other.events == *first,
            "follower {n} (nodes {:?}) saw another order",
            other.nodes
        );
    }
    for (p, seq, id) in acks {
        assert!(
            ids.contains(id.as_str()),
            "acknowledged {p}-{seq} ({id}) was never delivered"
        );
    }
    let mut last = std::collections::HashMap::new();
    for (data, _) in first {
        let (p, seq) = data.split_once('-').unwrap();
        let seq: u64 = seq.parse().unwrap();
        if let Some(prev) = last.insert(p.to_string(), seq) {
            assert!(seq > prev, "publisher {p}: {seq} delivered after {prev}");
        }
    }
}

#[test]
fn a_node_killed_during_a_storm_loses_nothing_its_subscribers_resume_on_another_node() {
    let redis = RedisServer::start("sigkill");
    let mut nodes: Vec<Serving> = (0..3).map(|_| redis_node(&redis, &[])).collect();
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    let (a, b, c) = (addrs[0].clone(), addrs[1].clone(), addrs[2].clone());
    let followers = [
        // On the node that dies, then on C.
        Follower::start(&[a.clone(), c.clone()], "storm", "end"),
        Follower::start(std::slice::from_ref(&b), "storm", "end"),
        Follower::start(std::slice::from_ref(&c), "storm", "end"),
    ];
    let storm = Storm::start(&addrs, true);
    storm.acks.wait_for(60);
    nodes.remove(0).child.kill(); // SIGKILL, and reaped
    let after_kill = storm.acks.len();
    storm.acks.wait_for(after_kill + 60);
    let acks = storm.stop();
    publish_marker(&b, "end");

    let followed: Vec<Followed> = followers.into_iter().map(Follower::join).collect();
    assert_eq!(
        followed[0].nodes,
        [a, c],
        "the first follower moved to C once"
    );
    assert_all_delivered_once_in_one_order(&followed, &acks);
}

/// Two nodes under a publish storm while `fault` happens to Redis; then
/// every acknowledged update must reach both nodes' subscribers once, in
/// one order, and their streams must have stayed open.
fn storm_through_a_redis_fault(name: &str, fault: impl FnOnce(&mut RedisServer, &Storm)) {
    let mut redis = RedisServer::start(name);
    let nodes: Vec<Serving> = (0..2)
        .map(|_| redis_node(&redis, &["--redis-timeout", "500ms"]))
        .collect();
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    let followers = [
        Follower::start(&addrs[..1], "storm", "end"),
        Follower::start(&addrs[1..], "storm", "end"),
    ];
    let storm = Storm::start(&addrs, false);
    storm.acks.wait_for(60);
    fault(&mut redis, &storm);
    let after_fault = storm.acks.len();
    storm.acks.wait_for(after_fault + 60);
    let acks = storm.stop();
    publish_marker(&addrs[0], "end");

    let followed: Vec<Followed> = followers.into_iter().map(Follower::join).collect();
    for f in &followed {
        assert_eq!(
            f.nodes.len(),
            1,
            "the streams stayed open through the fault"
        );
    }
    assert_all_delivered_once_in_one_order(&followed, &acks);
}

#[test]
fn a_redis_restart_during_a_storm_loses_no_acknowledged_update() {
    // SIGKILL: with appendfsync always, what Redis acknowledged is in its
    // append-only file.
    storm_through_a_redis_fault("restart", |redis, _| redis.restart());
}

#[test]
fn a_redis_stall_during_a_storm_gives_503s_and_loses_no_acknowledged_update() {
    storm_through_a_redis_fault("stall-storm", |redis, storm| {
        redis.signal("STOP");
        // Stalled until the publishers have seen it: their publishes fail
        // after --redis-timeout (a 503), never hang.
        let deadline = Instant::now() + DEADLINE;
        let before = storm.failures.load(Ordering::Relaxed);
        while storm.failures.load(Ordering::Relaxed) < before + 8 {
            assert!(
                Instant::now() < deadline,
                "no publish failed while Redis was stopped"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        redis.signal("CONT");
    });
}

/// `GET path` on `addr`: (status line, body).
fn get(addr: &str, path: &str) -> (String, String) {
    let answer = exchange(
        addr,
        &format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"),
    );
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

/// Polls `GET path` on `addr` until `done` holds for its answer.
fn until_answer(addr: &str, path: &str, what: &str, done: impl Fn(&str, &str) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, body) = get(addr, path);
        if done(&status, &body) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: still {status} {body:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_stalled_redis_makes_publishes_fail_fast_and_nodes_unready_then_everything_recovers() {
    let redis = RedisServer::start("stall");
    let extra = ["--redis-timeout", "500ms", "--heartbeat", "200ms"];
    let (a, b) = (redis_node(&redis, &extra), redis_node(&redis, &extra));
    let token = publisher_token(KEY);
    let mut subscriber = support::http::open_stream(&b.addr, "topic=storm");
    publish(&a.addr, &token, "topic=storm&data=before");
    assert!(read_until(&mut subscriber, "data: before").0);

    redis.signal("STOP");
    let started = Instant::now();
    let answer = exchange(
        &a.addr,
        &publish_request(&a.addr, &token, "topic=storm&data=during"),
    );
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains("Redis") || answer.contains("redis"),
        "{answer}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the publish took {:?}",
        started.elapsed()
    );
    // Both nodes say they are not ready: A from its failed publish, B from
    // its reader, which nobody prompted.
    for node in [&a, &b] {
        until_answer(
            &node.addr,
            "/readyz",
            "readiness during the stall",
            |status, body| status.contains(" 503") && body.contains("redis"),
        );
    }
    let (_, metrics) = get(&a.addr, "/metrics");
    assert!(metrics.contains("herald_history_available 0"), "{metrics}");
    assert!(
        !metrics.contains("herald_history_errors_total 0"),
        "{metrics}"
    );
    // The subscriber is still served: heartbeats keep coming (each read
    // stops at one; the stream is chunked, so they are not adjacent).
    for _ in 0..2 {
        let (found, seen) = read_until(&mut subscriber, ":\n\n");
        assert!(found, "no heartbeat during the stall: {seen:?}");
    }

    redis.signal("CONT");
    publish_marker(&a.addr, "after");
    for node in [&a, &b] {
        until_answer(
            &node.addr,
            "/readyz",
            "readiness after the stall",
            |status, _| status.contains(" 200"),
        );
    }
    let (found, seen) = read_until(&mut subscriber, "data: after");
    assert!(found, "the update after the stall never came: {seen:?}");
}

#[test]
fn retention_trims_the_shared_log_for_every_node() {
    let redis = RedisServer::start("retention");
    let (a, b) = (
        redis_node(&redis, &["--history-size", "3"]),
        redis_node(&redis, &["--history-size", "3"]),
    );
    // A node replays from the newest entries it has followed: wait until
    // each has followed the last one, or a lagging node may still hold
    // entries the log has trimmed (more history, never less).
    let mut followers = [&a, &b].map(|node| open_stream(&node.addr, "topic=storm"));
    let token = publisher_token(KEY);
    for i in 0..5 {
        publish(&a.addr, &token, &format!("topic=storm&data=e{i}"));
    }
    for follower in &mut followers {
        let (found, seen) = read_until(follower, "data: e4");
        assert!(found, "{seen}");
    }
    for node in [&a, &b] {
        let (events, answered) = support::http::replay(&node.addr, "storm", "earliest", "e4");
        assert_eq!(answered, "earliest");
        let data: Vec<&str> = events.iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(data, ["e2", "e3"], "node {}", node.addr);
    }
    assert_eq!(redis.cli(&["XLEN", "{herald}:log"]).trim(), "3");
}

// draft-08 §Active Subscriptions across nodes: a node killed with SIGKILL
// never announces the end of its subscriptions; another node does once
// the killed node's lease (--redis-node-lease) lapses, and no node lists
// them any more.
#[test]
fn the_subscriptions_of_a_killed_node_are_ended_by_another() {
    let redis = RedisServer::start("presence-kill");
    let extra = [
        "--subscriptions",
        "on",
        "--redis-node-lease",
        "1s",
        "--heartbeat",
        "200ms",
    ];
    let (a, b) = (redis_node(&redis, &extra), redis_node(&redis, &extra));
    let claims = herald_hub::auth::Claims {
        subscribe: Some(vec!["*".into()]),
        ..Default::default()
    };
    let token =
        herald_hub::auth::mint(jsonwebtoken::Algorithm::HS256, KEY.as_bytes(), &claims).unwrap();
    let collection = "/.well-known/mercure/subscriptions";
    let mut watcher = open_stream(
        &b.addr,
        &format!(
            "match_urlpattern=%2F.well-known%2Fmercure%2Fsubscriptions%2F*&authorization={token}"
        ),
    );
    let _reader = open_stream(&a.addr, "match=books");
    let about_books = format!("\"id\":\"{collection}/exact/books/");
    let (started, seen) = read_until(&mut watcher, &format!("\"active\":true,{about_books}"));
    assert!(started, "no start announced: {seen}");

    a.child.kill();
    let (ended, seen) = read_until(&mut watcher, &format!("\"active\":false,{about_books}"));
    assert!(
        ended,
        "no end announced for the killed node's subscription: {seen}"
    );
    let (status, body) = get(&b.addr, &format!("{collection}?authorization={token}"));
    assert!(status.contains("200"), "{status} {body}");
    assert!(!body.contains("\"match\":\"books\""), "{body}");
}
