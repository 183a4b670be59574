//! The Redis Streams history against a real redis-server: one log shared
//! by several nodes (dense sequence numbers, ids that resolve on every
//! node, following), retention, and what a user sees when Redis is
//! missing, stalled or restarted.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::redb::entry;
use common::redis_server::RedisServer;
use futures_util::StreamExt as _;
use herald_hub::history::{Entry, Followed, History, RedisHistory, RedisOptions};

async fn node(server: &RedisServer, configure: impl FnOnce(&mut RedisOptions)) -> RedisHistory {
    let mut options = RedisOptions::new(server.url());
    configure(&mut options);
    RedisHistory::connect(options).await.unwrap()
}

fn ids(entries: &[Arc<Entry>]) -> Vec<String> {
    entries.iter().map(|e| e.id.clone()).collect()
}

fn seqs(entries: &[Arc<Entry>]) -> Vec<u64> {
    entries.iter().map(|e| e.seq).collect()
}

#[tokio::test]
async fn nodes_share_dense_sequence_numbers_and_resolve_each_others_ids() {
    let server = RedisServer::start("dense");
    let a = node(&server, |_| {}).await;
    let b = node(&server, |_| {}).await;
    let first = a
        .append(vec![entry("a1", 3), entry("a2-p", 3)])
        .await
        .unwrap();
    let second = b.append(vec![entry("b1", 3)]).await.unwrap();
    let third = a.append(vec![entry("a3", 3)]).await.unwrap();
    assert_eq!(seqs(&first), vec![1, 2]);
    assert_eq!(seqs(&second), vec![3]);
    assert_eq!(seqs(&third), vec![4]);

    for history in [&a, &b] {
        assert_eq!(history.seq_of("b1").await.unwrap(), Some(3));
        assert_eq!(history.seq_of("a2-p").await.unwrap(), Some(2));
        assert_eq!(history.seq_of("never").await.unwrap(), None);
        let all = history.read_after(0, 10).await.unwrap();
        assert_eq!(ids(&all), vec!["a1", "a2-p", "b1", "a3"]);
        assert_eq!(seqs(&history.read_after(2, 1).await.unwrap()), vec![3]);
        assert!(history.read_after(4, 10).await.unwrap().is_empty());
    }
    // What is read back is what was stored, field for field.
    let read = b.read_after(1, 1).await.unwrap();
    let stored = &first[1];
    assert_eq!(read[0].frame, stored.frame);
    assert_eq!(read[0].topics, stored.topics);
    assert!(read[0].private);
    assert_eq!(read[0].stored_at_ms, stored.stored_at_ms);
    // Statistics are this node's view: current after its own append (other
    // nodes' appends show within a second, at its next upkeep).
    assert_eq!(a.stats().last_seq, 4);
    assert_eq!(a.stats().events, 4);
}

#[tokio::test]
async fn a_duplicate_id_resolves_to_its_earliest_entry_on_every_node() {
    let server = RedisServer::start("dup");
    let a = node(&server, |_| {}).await;
    let b = node(&server, |_| {}).await;
    a.append(vec![entry("x", 1)]).await.unwrap();
    b.append(vec![entry("x", 1)]).await.unwrap();
    assert_eq!(a.seq_of("x").await.unwrap(), Some(1));
    assert_eq!(b.seq_of("x").await.unwrap(), Some(1));
}

#[tokio::test]
async fn following_yields_every_nodes_appends_in_log_order() {
    let server = RedisServer::start("follow");
    let a = node(&server, |_| {}).await;
    let b = node(&server, |_| {}).await;
    a.append(vec![entry("before", 1)]).await.unwrap();
    let mut follow = a.follow(1).expect("a shared log is followed");

    let writers: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .enumerate()
        .map(|(n, history)| {
            tokio::spawn(async move {
                for i in 0..50 {
                    history
                        .append(vec![entry(&format!("{n}-{i}"), 8)])
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    let mut followed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while followed.len() < 100 {
        assert!(
            Instant::now() < deadline,
            "followed only {} of 100",
            followed.len()
        );
        let batch = tokio::time::timeout(Duration::from_secs(30), follow.next())
            .await
            .expect("the follow stream answers")
            .expect("the follow stream goes on")
            .expect("reads succeed");
        let Followed::Entries(batch) = batch else {
            panic!("the log did not start over: {batch:?}");
        };
        followed.extend(batch);
    }
    for writer in writers {
        writer.await.unwrap();
    }
    assert_eq!(seqs(&followed), (2..=101).collect::<Vec<_>>());
    // The same order as the log, and each writer's own order kept.
    assert_eq!(ids(&followed), ids(&b.read_after(1, 1000).await.unwrap()));
    for n in 0..2 {
        let mine: Vec<_> = ids(&followed)
            .into_iter()
            .filter(|id| id.starts_with(&format!("{n}-")))
            .collect();
        let expected: Vec<_> = (0..50).map(|i| format!("{n}-{i}")).collect();
        assert_eq!(mine, expected);
    }
}

#[tokio::test]
async fn retention_by_events_and_bytes_applies_to_every_node() {
    let server = RedisServer::start("retention");
    let a = node(&server, |o| o.max_events = 3).await;
    a.append((1..=5).map(|i| entry(&format!("e{i}"), 10)).collect())
        .await
        .unwrap();
    assert_eq!(a.stats().events, 3);
    assert_eq!(
        a.seq_of("e1").await.unwrap(),
        None,
        "evicted ids are forgotten"
    );
    assert_eq!(a.seq_of("e3").await.unwrap(), Some(3));
    assert_eq!(
        ids(&a.read_after(0, 10).await.unwrap()),
        vec!["e3", "e4", "e5"]
    );
    assert_eq!(server.cli(&["XLEN", "{herald}:log"]).trim(), "3");
    assert_eq!(server.cli(&["HLEN", "{herald}:ids"]).trim(), "3");

    // A node with a byte limit trims the same log on its next append.
    let one = herald_hub::history::Entry::new(0, 0, entry("e6", 10)).size() as u64;
    let b = node(&server, |o| o.max_bytes = one * 2).await;
    b.append(vec![entry("e6", 10)]).await.unwrap();
    assert_eq!(b.stats().events, 2);
    assert!(b.stats().bytes <= one * 2, "{} bytes held", b.stats().bytes);
    assert_eq!(ids(&a.read_after(0, 10).await.unwrap()), vec!["e5", "e6"]);
    assert_eq!(a.seq_of("e4").await.unwrap(), None);
}

#[tokio::test]
async fn entries_past_the_age_limit_are_never_read_and_are_trimmed() {
    let server = RedisServer::start("age");
    let a = node(&server, |o| o.max_age = Some(Duration::from_millis(300))).await;
    a.append(vec![entry("old", 1)]).await.unwrap();
    // The age is the point of the test: wait until Redis's clock has moved
    // past it, with a deadline instead of a guess.
    let deadline = Instant::now() + Duration::from_secs(30);
    while a
        .read_after(0, 10)
        .await
        .unwrap()
        .iter()
        .any(|e| e.id == "old")
    {
        assert!(
            Instant::now() < deadline,
            "\"old\" is still read after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.append(vec![entry("fresh", 1)]).await.unwrap();
    assert_eq!(a.seq_of("old").await.unwrap(), None);
    assert_eq!(ids(&a.read_after(0, 10).await.unwrap()), vec!["fresh"]);
    assert_eq!(a.stats().last_seq, 2, "sequence numbers go on");
    assert_eq!(server.cli(&["XLEN", "{herald}:log"]).trim(), "1");
}

#[tokio::test]
async fn a_lost_counter_never_reuses_a_sequence_number() {
    let server = RedisServer::start("counter");
    let a = node(&server, |_| {}).await;
    a.append(vec![entry("one", 1), entry("two", 1)])
        .await
        .unwrap();
    // An operator's mistake, or an eviction policy that ignored the advice
    // in docs/cluster.md.
    server.cli(&["DEL", "{herald}:seq"]);
    let stored = a.append(vec![entry("three", 1)]).await.unwrap();
    assert_eq!(seqs(&stored), vec![3]);
    assert_eq!(
        ids(&a.read_after(0, 10).await.unwrap()),
        vec!["one", "two", "three"]
    );
}

#[tokio::test]
async fn logs_under_different_keys_are_separate() {
    let server = RedisServer::start("keys");
    let a = node(&server, |o| o.key_prefix = "app-a".into()).await;
    let b = node(&server, |o| o.key_prefix = "app-b".into()).await;
    a.append(vec![entry("for-a", 1)]).await.unwrap();
    assert!(b.read_after(0, 10).await.unwrap().is_empty());
    assert_eq!(b.seq_of("for-a").await.unwrap(), None);
    assert_eq!(server.cli(&["XLEN", "{app-a}:log"]).trim(), "1");
}

#[tokio::test]
async fn connecting_refuses_what_cannot_work_and_says_why() {
    let server = RedisServer::start("refuse");
    let refusal = |options| async move {
        RedisHistory::connect(options)
            .await
            .unwrap_err()
            .to_string()
    };

    let mut none_kept = RedisOptions::new(server.url());
    none_kept.max_events = 0;
    assert!(refusal(none_kept).await.contains("at least 1"));

    let sentinel = RedisOptions::new("redis+sentinel://127.0.0.1:26379/mymaster");
    assert!(refusal(sentinel).await.contains("Sentinel"));

    let garbage = RedisOptions::new("http://127.0.0.1/");
    assert!(refusal(garbage).await.contains("not a usable URL"));

    // A port nobody listens on: refused quickly, naming the address, and
    // never echoing a password.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut unreachable = RedisOptions::new(format!("redis://user:hunter2@127.0.0.1:{port}/0"));
    unreachable.timeout = Duration::from_secs(2);
    let started = Instant::now();
    let message = refusal(unreachable).await;
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

// A Redis slow to answer at start (here: stopped for five command
// timeouts) delays a node's start instead of failing it: the timeout
// bounds a publish's wait, not a start. The sleep is the fault's length,
// not a wait for something to happen: however late the timers fire, no
// outcome but a started node passes.
#[tokio::test]
async fn a_redis_slow_to_answer_at_start_delays_the_start_and_does_not_fail_it() {
    let server = RedisServer::start("slow-start");
    server.signal("STOP");
    let mut options = RedisOptions::new(server.url());
    options.timeout = Duration::from_millis(200);
    let connecting = tokio::spawn(RedisHistory::connect(options));
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.signal("CONT");
    let history = connecting
        .await
        .unwrap()
        .expect("the node starts once Redis answers");
    let stored = history.append(vec![entry("after", 1)]).await.unwrap();
    assert_eq!(ids(&stored), ["after"]);
}

#[tokio::test]
async fn a_stalled_redis_fails_an_append_in_bounded_time_and_the_log_goes_on_after() {
    let server = RedisServer::start("stall");
    let a = node(&server, |o| o.timeout = Duration::from_millis(500)).await;
    a.append(vec![entry("before", 1)]).await.unwrap();
    let mut follow = a.follow(1).unwrap();

    server.signal("STOP");
    let started = Instant::now();
    let error = a.append(vec![entry("during", 1)]).await.unwrap_err();
    assert!(error.to_string().contains("no answer within"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let read = tokio::time::timeout(Duration::from_secs(30), follow.next())
        .await
        .expect("the follow stream reports the stall")
        .unwrap();
    assert!(read.is_err(), "a stalled read is an error, not silence");
    server.signal("CONT");

    // The append that timed out may still have been applied when Redis
    // woke up: the log is the judge, and it stays dense and in order.
    a.append(vec![entry("after", 1)]).await.unwrap();
    let all = a.read_after(0, 10).await.unwrap();
    let names = ids(&all);
    assert!(
        names == ["before", "after"] || names == ["before", "during", "after"],
        "{names:?}"
    );
    assert_eq!(seqs(&all), (1..=all.len() as u64).collect::<Vec<_>>());
    let mut followed = Vec::new();
    while followed.len() < all.len() - 1 {
        if let Ok(Followed::Entries(batch)) =
            tokio::time::timeout(Duration::from_secs(30), follow.next())
                .await
                .expect("the follow stream recovers")
                .unwrap()
        {
            followed.extend(batch);
        }
    }
    assert_eq!(ids(&followed), names[1..]);
}

#[tokio::test]
async fn acknowledged_appends_survive_a_redis_restart_with_appendfsync_always() {
    let mut server = RedisServer::start("restart");
    let a = node(&server, |o| o.timeout = Duration::from_secs(2)).await;
    a.append(vec![entry("one", 1), entry("two", 1)])
        .await
        .unwrap();
    server.restart();
    // The connection reconnects by itself; the first command after the
    // restart may still see the old, broken one.
    let stored = append_when_back(&a, "three").await;
    assert_eq!(seqs(&stored), vec![3]);
    assert_eq!(
        ids(&a.read_after(0, 10).await.unwrap()),
        vec!["one", "two", "three"]
    );
    assert_eq!(a.seq_of("two").await.unwrap(), Some(2));
}

#[tokio::test]
async fn a_user_a_password_and_a_database_in_the_url_are_used() {
    let server = RedisServer::start_with(
        "auth",
        false,
        &[
            "--requirepass",
            "s3cret",
            "--user",
            "herald",
            "on",
            ">hpass",
            "~*",
            "&*",
            "+@all",
        ],
    );
    let port = server.port;
    let wrong = RedisOptions::new(format!("redis://:wrong@127.0.0.1:{port}/0"));
    let message = RedisHistory::connect(wrong).await.unwrap_err().to_string();
    assert!(message.contains("cannot connect"), "{message}");
    assert!(
        !message.contains("wrong"),
        "the password is never shown: {message}"
    );

    let url = format!("redis://herald:hpass@127.0.0.1:{port}/3");
    let history = RedisHistory::connect(RedisOptions::new(url)).await.unwrap();
    history.append(vec![entry("in-db-3", 1)]).await.unwrap();
    let cli = |db: &str| {
        server.cli(&[
            "-a",
            "s3cret",
            "--no-auth-warning",
            "-n",
            db,
            "XLEN",
            "{herald}:log",
        ])
    };
    assert_eq!(cli("3").trim(), "1");
    assert_eq!(cli("0").trim(), "0");
}

#[tokio::test]
async fn rediss_with_a_private_ca_connects_only_when_that_ca_is_trusted() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

    let certs = std::env::temp_dir().join(format!("herald-redis-certs-{}", std::process::id()));
    std::fs::create_dir_all(&certs).unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let file = |name: &str, pem: String| {
        let path = certs.join(name);
        std::fs::write(&path, pem).unwrap();
        path.display().to_string()
    };
    let (ca_file, cert_file, key_file) = (
        file("ca.pem", ca.pem()),
        file("cert.pem", server_cert.pem()),
        file("key.pem", server_key.serialize_pem()),
    );
    let server = RedisServer::start_with(
        "tls",
        true,
        &[
            "--tls-cert-file",
            &cert_file,
            "--tls-key-file",
            &key_file,
            "--tls-ca-cert-file",
            &ca_file,
            "--tls-auth-clients",
            "no",
        ],
    );

    let mut untrusted = RedisOptions::new(server.url());
    untrusted.timeout = Duration::from_secs(5);
    let message = RedisHistory::connect(untrusted)
        .await
        .unwrap_err()
        .to_string();
    assert!(message.contains("cannot connect"), "{message}");

    let mut trusted = RedisOptions::new(server.url());
    trusted.tls_ca = Some(std::fs::read(&ca_file).unwrap());
    let history = RedisHistory::connect(trusted).await.unwrap();
    history.append(vec![entry("over-tls", 1)]).await.unwrap();
    assert_eq!(
        ids(&history.read_after(0, 10).await.unwrap()),
        vec!["over-tls"]
    );
    let _ = std::fs::remove_dir_all(&certs);
}

#[tokio::test]
async fn a_redis_cluster_is_refused_with_a_clear_message() {
    let server = RedisServer::start_with(
        "cluster",
        false,
        &[
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
        ],
    );
    let message = RedisHistory::connect(RedisOptions::new(server.url()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("Redis Cluster is not supported"),
        "{message}"
    );
}

/// Appends `id` until one succeeds (the test fails after 30 s).
async fn append_when_back(history: &RedisHistory, id: &str) -> Vec<Arc<Entry>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match history.append(vec![entry(id, 1)]).await {
            Ok(stored) => return stored,
            Err(e) => assert!(Instant::now() < deadline, "still failing after 30 s: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_redis_down_longer_than_the_reconnection_retries_is_used_again_when_back() {
    let mut server = RedisServer::start("down");
    let a = node(&server, |o| o.timeout = Duration::from_millis(500)).await;
    a.append(vec![entry("before", 1)]).await.unwrap();
    let mut follow = a.follow(1).unwrap();
    server.kill();
    // Well past the connection's own retries (two, at most 500 ms apart):
    // a command fails each time, and quickly.
    for _ in 0..10 {
        let started = Instant::now();
        assert!(a.append(vec![entry("while-down", 1)]).await.is_err());
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(tokio::time::timeout(Duration::from_secs(30), follow.next())
            .await
            .expect("the follow stream reports the outage")
            .unwrap()
            .is_err());
    }
    // Back, with a stall while the nodes reconnect, the worst moment.
    server.restart();
    server.signal("STOP");
    assert!(a.append(vec![entry("stalled", 1)]).await.is_err());
    server.signal("CONT");
    let stored = append_when_back(&a, "after").await;
    let all = a.read_after(0, 10).await.unwrap();
    assert_eq!(ids(&all).last().map(String::as_str), Some("after"));
    assert_eq!(all.last().unwrap().seq, stored[0].seq);
    // The follower reads again too, from where it was.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut followed: Vec<Arc<Entry>> = Vec::new();
    while !followed.iter().any(|e| e.id == "after") {
        assert!(Instant::now() < deadline, "the follower never read again");
        if let Some(Ok(Followed::Entries(batch))) =
            tokio::time::timeout(Duration::from_secs(30), follow.next())
                .await
                .unwrap()
        {
            followed.extend(batch);
        }
    }
    assert_eq!(
        followed[0].seq, 2,
        "following resumed right after \"before\""
    );
}

/// Follows `history` until it has read up to `seq`.
async fn follow_to(follow: &mut herald_hub::history::Follow, seq: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = 0;
    while last < seq {
        assert!(
            Instant::now() < deadline,
            "followed only to {last} of {seq}"
        );
        if let Some(Ok(Followed::Entries(batch))) =
            tokio::time::timeout(Duration::from_secs(30), follow.next())
                .await
                .unwrap()
        {
            last = batch.last().map_or(last, |e| e.seq);
        }
    }
}

#[tokio::test]
async fn a_replay_of_what_a_node_followed_needs_no_round_trip_to_redis() {
    let server = RedisServer::start("cache");
    let a = node(&server, |o| o.timeout = Duration::from_millis(500)).await;
    let b = node(&server, |_| {}).await;
    let mut follow = a.follow(0).unwrap();
    b.append((1..=5).map(|i| entry(&format!("e{i}"), 4)).collect())
        .await
        .unwrap();
    follow_to(&mut follow, 5).await;

    // With Redis stalled, what a followed: a reconnect storm replays from
    // memory, not from Redis.
    server.signal("STOP");
    let replay = a.read_after(2, 10).await;
    let older = a.read_after(0, 10).await;
    server.signal("CONT");
    assert_eq!(ids(&replay.unwrap()), ["e3", "e4", "e5"]);
    assert_eq!(ids(&older.unwrap()), ["e1", "e2", "e3", "e4", "e5"]);
    // What a has not followed yet comes from Redis.
    b.append(vec![entry("e6", 4)]).await.unwrap();
    let all = a.read_after(4, 10).await.unwrap();
    assert_eq!(ids(&all)[0], "e5");
    assert!(all.len() <= 2, "{:?}", ids(&all));
}

#[tokio::test]
async fn a_replay_from_memory_keeps_to_the_retention_limits() {
    let server = RedisServer::start("cache-retention");
    let a = node(&server, |o| {
        o.max_events = 3;
        o.max_age = Some(Duration::from_millis(300));
    })
    .await;
    let mut follow = a.follow(0).unwrap();
    a.append((1..=5).map(|i| entry(&format!("e{i}"), 4)).collect())
        .await
        .unwrap();
    follow_to(&mut follow, 5).await;
    assert_eq!(ids(&a.read_after(0, 10).await.unwrap()), ["e3", "e4", "e5"]);
    // Past the age limit, nothing is replayed, trimmed or not yet.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !a.read_after(0, 10).await.unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "old entries still replayed after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
