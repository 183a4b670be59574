//! Three `herald serve --history redis` processes on one real
//! redis-server, as a cluster runs: an update published on one node
//! reaches the matching subscribers of the others (exact, template and `*`
//! selectors, public and private), concurrent publishers on every node are
//! delivered in one order everywhere, and a client that drops from one
//! node resumes on another with nothing lost or repeated.
//! (Faults: cluster_faults.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use herald_hub::auth::{mint, Claims};
use support::http::{publish, publisher_token, replay};
use support::redis_node::{redis_node, CLUSTER_KEY};
use support::redis_server::RedisServer;
use support::storm::{Followed, Follower, Subscribed};
use support::Serving;

const KEY: &str = CLUSTER_KEY;
const BOOK: &str = "https://ex.com/books/1";
const BOOKS: &str = "https://ex.com/books/{id}";

/// `n` hub processes on `redis`'s log.
fn nodes(redis: &RedisServer, n: usize) -> Vec<Serving> {
    (0..n).map(|_| redis_node(redis, &[])).collect()
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn data(followed: &Followed) -> Vec<&str> {
    followed.events.iter().map(|(d, _)| d.as_str()).collect()
}

#[test]
fn an_update_published_on_one_node_reaches_the_matching_subscribers_of_every_other() {
    let redis = RedisServer::start("reach");
    let hubs = nodes(&redis, 3);
    let (a, b, c) = (&hubs[0].addr, &hubs[1].addr, &hubs[2].addr);
    let reader = mint(
        jsonwebtoken::Algorithm::HS256,
        KEY.as_bytes(),
        &Claims {
            subscribe: Some(vec![BOOKS.into()]),
            ..Claims::default()
        },
    )
    .unwrap();
    let bearer = format!("Bearer {reader}");
    let mut subscribers = Vec::new();
    for addr in [a, c] {
        let on = std::slice::from_ref(addr);
        for (query, private) in [
            (format!("topic={}", enc(BOOK)), false),
            (format!("topic={}", enc(BOOKS)), false),
            ("topic=*".to_string(), false),
            (format!("topic={}", enc(BOOKS)), true),
        ] {
            let headers: &[(&str, &str)] = if private {
                &[("authorization", &bearer)]
            } else {
                &[]
            };
            subscribers.push((
                query.clone(),
                private,
                Follower::subscribe(on, &query, headers, "marker"),
            ));
        }
    }

    let token = publisher_token(KEY);
    let book = enc(BOOK);
    publish(b, &token, &format!("topic={book}&data=public"));
    publish(b, &token, &format!("topic={book}&data=private&private=on"));
    publish(
        b,
        &token,
        &format!("topic={}&data=elsewhere", enc("https://ex.com/other")),
    );
    publish(b, &token, &format!("topic={book}&data=marker"));

    for (query, private, follower) in subscribers {
        let followed = follower.join();
        let expected: &[&str] = match (private, query == "topic=*") {
            (true, _) => &["public", "private"],
            (false, true) => &["public", "elsewhere"],
            (false, false) => &["public"],
        };
        assert_eq!(data(&followed), expected, "{query} on {:?}", followed.nodes);
    }
}

#[test]
fn concurrent_publishers_on_every_node_are_delivered_in_one_order_on_every_node() {
    const PER_NODE: usize = 100;
    let redis = RedisServer::start("order");
    let hubs = nodes(&redis, 3);
    let followers: Vec<Follower> = hubs
        .iter()
        .map(|hub| Follower::start(std::slice::from_ref(&hub.addr), "t", "marker"))
        .collect();
    let token = publisher_token(KEY);
    let publishers: Vec<_> = hubs
        .iter()
        .enumerate()
        .map(|(n, hub)| {
            let (addr, token) = (hub.addr.clone(), token.clone());
            std::thread::spawn(move || {
                for i in 0..PER_NODE {
                    publish(&addr, &token, &format!("topic=t&data={n}-{i}"));
                }
            })
        })
        .collect();
    for publisher in publishers {
        publisher.join().unwrap();
    }
    publish(&hubs[0].addr, &token, "topic=t&data=marker");

    let followed: Vec<Followed> = followers.into_iter().map(Follower::join).collect();
    assert_eq!(followed[0].events.len(), 3 * PER_NODE);
    for other in &followed[1..] {
        assert!(
            other.events == followed[0].events,
            "another order on {:?}",
            other.nodes
        );
    }
    // The one order is the log's: each publisher's updates in its order.
    for n in 0..3 {
        let mine: Vec<&str> = data(&followed[0])
            .into_iter()
            .filter(|d| d.starts_with(&format!("{n}-")))
            .collect();
        let expected: Vec<String> = (0..PER_NODE).map(|i| format!("{n}-{i}")).collect();
        assert_eq!(mine, expected);
    }
}

#[test]
fn a_client_that_drops_from_one_node_resumes_on_another_with_no_gap_and_no_duplicate() {
    let redis = RedisServer::start("resume");
    let hubs = nodes(&redis, 3);
    let (a, b, c) = (&hubs[0].addr, &hubs[1].addr, &hubs[2].addr);
    let token = publisher_token(KEY);
    // Hub-minted ids and client-given ones, published on a third node
    // once the client is subscribed on the first.
    let mut client = Subscribed::open(a, "t");
    let publisher = {
        let (b, token) = (b.clone(), token.clone());
        std::thread::spawn(move || {
            for i in 0..10 {
                let id = if i % 2 == 1 {
                    format!("&id=client-{i}")
                } else {
                    String::new()
                };
                publish(&b, &token, &format!("topic=t&data=e{i}{id}"));
            }
        })
    };
    let seen = client.take(4);
    drop(client); // the connection breaks
    publisher.join().unwrap();
    let data_seen: Vec<&str> = seen.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(data_seen, ["e0", "e1", "e2", "e3"]);
    assert_eq!(seen[3].1, "client-3");

    for resume_from in [2usize, 3] {
        // e2's id the hub minted, e3's the publisher gave.
        let id = &seen[resume_from].1;
        let marker = format!("marker-{resume_from}");
        publish(b, &token, &format!("topic=t&data={marker}"));
        let (events, answered) = replay(c, "t", id, &marker);
        assert_eq!(&answered, id, "the id is known on the other node");
        let rest: Vec<&str> = events
            .iter()
            .map(|(d, _)| d.as_str())
            .filter(|d| !d.starts_with("marker"))
            .collect();
        let expected: Vec<String> = (resume_from + 1..10).map(|i| format!("e{i}")).collect();
        assert_eq!(rest, expected, "resuming on another node from {id}");
    }
}
