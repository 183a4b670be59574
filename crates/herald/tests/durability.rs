//! Durable history as an operator meets it: a real `herald serve` under a
//! publish storm is killed with SIGKILL, restarted, and must still hold
//! every event it acknowledged, in order; replay across restarts has no gap
//! and no duplicate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use support::http::{publish, publisher_token, replay, try_publish};
use support::storm::Acks;
use support::{serve_command, sigterm, start, Serving, TempDir};

const KEY: &str = "durability-test-secret-durability-test";

fn start_hub(data_dir: &Path) -> Serving {
    let mut cmd = serve_command(&[
        "--listen",
        "127.0.0.1:0",
        "--anonymous",
        "--history-size",
        "1000000",
    ]);
    cmd.arg("--data-dir")
        .arg(data_dir)
        .env("HERALD_JWT_KEY", KEY);
    start(cmd)
}

#[test]
fn sigkill_during_a_publish_storm_loses_no_acknowledged_event() {
    const PUBLISHERS: usize = 4;
    const KILLS: usize = 4;
    let dir = TempDir::new("crash");
    let token = publisher_token(KEY);
    let acks = Arc::new(Acks::default());
    let mut next_seq = [0u64; PUBLISHERS];

    for round in 0..KILLS {
        let hub = start_hub(&dir.0);
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..PUBLISHERS)
            .map(|p| {
                let (addr, token, acks, stop) = (
                    hub.addr.clone(),
                    token.clone(),
                    Arc::clone(&acks),
                    Arc::clone(&stop),
                );
                let mut seq = next_seq[p];
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let body = format!("topic=storm&data={p}-{seq}");
                        match try_publish(&addr, &token, &body) {
                            Some(id) => acks.push((p, seq, id)),
                            None => break, // the hub is gone
                        }
                        seq += 1;
                    }
                    seq
                })
            })
            .collect();
        // The kill comes once this round has seen a given number of
        // acknowledgements, a different number each round, while the four
        // publishers have requests in every stage of being handled: it
        // depends on events, not on how fast the disk is.
        let before = acks.list.lock().unwrap().len();
        acks.wait_for(before + 10 + 15 * round);
        hub.child.kill(); // SIGKILL, and reaped
        stop.store(true, Ordering::Relaxed);
        for (p, worker) in workers.into_iter().enumerate() {
            // The publish that failed may or may not be stored: its
            // sequence number is not reused.
            next_seq[p] = worker.join().unwrap() + 1;
        }

        // Restart: the store opens cleanly and holds every acknowledged id.
        let hub = start_hub(&dir.0);
        let end = format!("end-{round}");
        publish(&hub.addr, &token, &format!("topic=storm&data={end}"));
        let (events, answered) = replay(&hub.addr, "storm", "earliest", &end);
        assert_eq!(answered, "earliest");
        let held: HashSet<&str> = events.iter().map(|(_, id)| id.as_str()).collect();
        assert_eq!(held.len(), events.len(), "no duplicates");
        for (p, seq, id) in acks.list.lock().unwrap().iter() {
            assert!(
                held.contains(id.as_str()),
                "round {round}: acknowledged {p}-{seq} ({id}) is missing"
            );
        }
        // Each publisher's events replay in the order it published them.
        let mut last: HashMap<String, u64> = HashMap::new();
        for (data, _) in &events {
            if let Some((p, seq)) = data
                .split_once('-')
                .and_then(|(p, s)| Some((p.to_string(), s.parse::<u64>().ok()?)))
            {
                if let Some(prev) = last.insert(p.clone(), seq) {
                    assert!(seq > prev, "publisher {p}: {seq} after {prev}");
                }
            }
        }
    }
}

#[test]
fn replay_across_a_restart_has_no_gap_and_no_duplicate_while_publishes_continue() {
    let dir = TempDir::new("restart");
    let token = publisher_token(KEY);
    let hub = start_hub(&dir.0);
    for i in 0..50 {
        publish(&hub.addr, &token, &format!("topic=storm&data=n{i}"));
    }
    publish(&hub.addr, &token, "topic=storm&data=mark-1");
    let (first, _) = replay(&hub.addr, "storm", "earliest", "mark-1");
    assert_eq!(first.len(), 50);
    // The client got up to n29, then the hub restarts (cleanly this time).
    let resume_from = first[29].1.clone();
    sigterm(hub.child.id());
    assert!(hub.wait().success());

    let hub = start_hub(&dir.0);
    let addr = hub.addr.clone();
    let publisher = {
        let token = token.clone();
        std::thread::spawn(move || {
            for i in 50..150 {
                publish(&addr, &token, &format!("topic=storm&data=n{i}"));
            }
            publish(&addr, &token, "topic=storm&data=mark-2");
        })
    };
    let (resumed, answered) = replay(&hub.addr, "storm", &resume_from, "mark-2");
    publisher.join().unwrap();
    assert_eq!(
        answered, resume_from,
        "the id is still known after the restart"
    );
    let data: Vec<String> = resumed
        .iter()
        .map(|(d, _)| d.clone())
        .filter(|d| d != "mark-1")
        .collect();
    let expected: Vec<String> = (30..150).map(|i| format!("n{i}")).collect();
    assert_eq!(data, expected);
}
