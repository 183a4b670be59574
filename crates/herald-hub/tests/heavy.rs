//! The heavy tests, in a binary of their own so that cargo runs them
//! alone, never beside the timing-sensitive ones: the replay-to-live
//! hand-over under 1,500 HTTP publishes, a redb file under 30,000 appends,
//! and megabytes written to a subscriber that stopped reading (the write
//! stall limit and the byte bound are in `slow_subscribers.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::redb::*;
use common::*;
use herald_hub::history::redb::{Retention, FILE_NAME};
use herald_hub::history::{History, RedbHistory};
use http_body_util::Full;
use hyper::{Request, StatusCode};

#[tokio::test]
async fn replay_then_live_with_no_gap_and_no_duplicate_under_load() {
    const TOTAL: usize = 1500;
    let hub = start(config()).await;
    let addr = hub.addr;
    let done = Arc::new(AtomicBool::new(false));
    let publisher = {
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            for i in 0..TOTAL {
                publish(addr, &[("topic", "load"), ("data", &i.to_string())]).await;
                if i % 50 == 0 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    let mut received: Vec<usize> = Vec::new();
    let mut last_id: Option<String> = None;
    let mut reconnects = 0;
    let mut round = 0usize;
    loop {
        let headers: Vec<(&str, &str)> = match &last_id {
            Some(id) => vec![("last-event-id", id.as_str())],
            None => vec![("last-event-id", "earliest")],
        };
        let mut sub = subscribe(addr, "topic=load", &headers).await;
        assert_eq!(sub.status, StatusCode::OK);
        if last_id.is_some() {
            assert_ne!(
                sub.headers["last-event-id"], "earliest",
                "a held id must resolve"
            );
        }
        // Read a varying number of events, then drop the connection.
        let want = 1 + (round * 37) % 60;
        round += 1;
        for _ in 0..want {
            match sub.next_event_within(Duration::from_secs(5)).await {
                Some(event) => {
                    received.push(event.data().parse().unwrap());
                    last_id = Some(event.last_event_id().to_owned());
                }
                None => break,
            }
        }
        reconnects += 1;
        drop(sub);
        if received.len() >= TOTAL {
            break;
        }
        assert!(reconnects < 10_000, "no progress");
    }
    publisher.await.unwrap();
    assert!(done.load(Ordering::SeqCst));
    assert!(reconnects >= 24, "only {reconnects} reconnects");
    let expected: Vec<usize> = (0..TOTAL).collect();
    assert_eq!(received, expected, "every event exactly once, in order");
}

fn file_size(dir: &Path) -> u64 {
    std::fs::metadata(dir.join(FILE_NAME)).unwrap().len()
}

#[tokio::test]
async fn the_file_stays_bounded_under_endless_publishing() {
    let dir = TempDir::new("bounded");
    let h = RedbHistory::open(
        &dir.0,
        options(Retention {
            max_events: Some(1000),
            ..Retention::default()
        }),
    )
    .unwrap();
    // 1000 events of ~1 KiB is ~1 MiB of live data.
    append_n(&h, 0..5_000, 1024).await;
    let after_warmup = file_size(&dir.0);
    append_n(&h, 5_000..30_000, 1024).await;
    let after_more = file_size(&dir.0);
    assert_eq!(h.stats().events, 1000);
    // 25 MiB more was written; freed pages must have been reused.
    assert!(
        after_more <= after_warmup.max(4 << 20) * 2,
        "grew from {after_warmup} to {after_more} bytes"
    );
    assert!(
        after_more < 16 << 20,
        "{after_more} bytes for ~1 MiB of events"
    );
}

#[tokio::test]
async fn a_slow_subscriber_is_closed_counted_and_others_are_unaffected() {
    let mut cfg = config();
    cfg.queue_capacity = 4;
    let hub = start(cfg).await;
    let mut slow = subscribe(hub.addr, "topic=a", &[]).await;
    slow.ready().await;
    let mut fast = subscribe(hub.addr, "topic=a", &[]).await;
    fast.ready().await;

    // 64 KiB events fill the socket buffers of the subscriber that does not
    // read, then its queue.
    let payload = "y".repeat(64 * 1024);
    let mut published = 0;
    while hub.hub.metrics().slow_disconnects_total == 0 {
        publish(hub.addr, &[("topic", "a"), ("data", &payload)]).await;
        published += 1;
        assert_eq!(
            fast.next_event_within(LONG).await.unwrap().data().len(),
            payload.len()
        );
        assert!(published < 2000, "the slow subscriber was never closed");
    }
    assert_eq!(hub.hub.metrics().slow_disconnects_total, 1);
    // The slow stream ends after what was queued: the client will resume.
    assert!(slow.ends_within(LONG).await);
    let metrics = request(
        Request::get(format!("http://{}/metrics", hub.addr))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert!(
        metrics
            .body
            .contains("herald_slow_subscriber_disconnects_total 1"),
        "{}",
        metrics.body
    );
    publish(hub.addr, &[("topic", "a"), ("data", "after")]).await;
    assert_eq!(fast.next_event_within(LONG).await.unwrap().data(), "after");
}
