//! Durable history as an operator meets it: a real `herald serve` under a
//! publish storm is killed with SIGKILL, restarted, and must still hold
//! every event it acknowledged, in order; replay across restarts has no gap
//! and no duplicate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{address_in, lines_until, serve_command, sigterm, Killed, TempDir, BIN};

const KEY: &str = "durability-test-secret-durability-test";

struct Hub {
    child: Killed,
    addr: String,
}

fn start(data_dir: &Path) -> Hub {
    let mut child = serve_command(&[
        "--listen",
        "127.0.0.1:0",
        "--anonymous",
        "--history-size",
        "1000000",
    ])
    .arg("--data-dir")
    .arg(data_dir)
    .env("HERALD_JWT_KEY", KEY)
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines = lines_until(stderr, |l| l.contains("http://127.0.0.1:"));
    let addr = lines.last().and_then(|l| address_in(l)).unwrap();
    Hub {
        child: Killed(child),
        addr,
    }
}

fn token() -> String {
    let output = Command::new(BIN)
        .args(["token", "--key", KEY, "--publish", "*"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// Publishes one event; `Some(id)` only on a 200.
fn publish(addr: &str, token: &str, data: &str) -> Option<String> {
    let mut tcp = TcpStream::connect(addr).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let body = format!("topic=storm&data={data}");
    write!(
        tcp,
        "POST /.well-known/mercure HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).ok()?;
    if !answer.starts_with("HTTP/1.1 200") {
        return None;
    }
    Some(answer.rsplit("\r\n\r\n").next()?.trim().to_string())
}

/// Replays the topic from `last_event_id` until an event whose data is
/// `until`; returns (data, id) pairs and the `Last-Event-ID` answered.
fn replay(addr: &str, last_event_id: &str, until: &str) -> (Vec<(String, String)>, String) {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // HTTP/1.0: the body is the raw stream, no chunked framing.
    write!(
        tcp,
        "GET /.well-known/mercure?topic=storm HTTP/1.0\r\nhost: {addr}\r\nlast-event-id: {last_event_id}\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let header_end = loop {
        let n = tcp.read(&mut buf).unwrap();
        assert!(n > 0, "closed before headers");
        raw.extend_from_slice(&buf[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&raw[..header_end]).to_string();
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    let answered = head
        .lines()
        .find_map(|l| l.strip_prefix("last-event-id: "))
        .unwrap_or("")
        .to_string();
    let mut parser = herald_sse::Parser::new();
    parser.feed(&raw[header_end..]);
    let mut events = Vec::new();
    loop {
        while let Some(event) = parser.next_event() {
            let event = event.unwrap();
            if event.data() == until {
                return (events, answered);
            }
            events.push((event.data().to_string(), event.last_event_id().to_string()));
        }
        let n = tcp.read(&mut buf).expect("the replay stalled");
        assert!(n > 0, "the stream ended before {until:?}");
        parser.feed(&buf[..n]);
    }
}

#[test]
fn sigkill_during_a_publish_storm_loses_no_acknowledged_event() {
    const PUBLISHERS: usize = 4;
    const KILLS: usize = 4;
    let dir = TempDir::new("crash");
    let token = token();
    // Per publisher, the sequence numbers that got a 200, with their ids.
    let acked: Arc<Mutex<Vec<(usize, u64, String)>>> = Arc::default();
    let mut next_seq = [0u64; PUBLISHERS];

    for round in 0..KILLS {
        let hub = start(&dir.0);
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..PUBLISHERS)
            .map(|p| {
                let (addr, token, acked, stop) = (
                    hub.addr.clone(),
                    token.clone(),
                    Arc::clone(&acked),
                    Arc::clone(&stop),
                );
                let mut seq = next_seq[p];
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match publish(&addr, &token, &format!("{p}-{seq}")) {
                            Some(id) => acked.lock().unwrap().push((p, seq, id)),
                            None => break, // the hub is gone
                        }
                        seq += 1;
                    }
                    seq
                })
            })
            .collect();
        // Kill at a different moment each round.
        std::thread::sleep(Duration::from_millis(300 + 170 * round as u64));
        let mut hub = hub;
        hub.child.0.kill().unwrap(); // SIGKILL
        hub.child.0.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for (p, worker) in workers.into_iter().enumerate() {
            next_seq[p] = worker.join().unwrap() + 1;
        }

        // Restart: the store opens cleanly and holds every acknowledged id.
        let hub = start(&dir.0);
        let end = format!("end-{round}");
        assert!(publish(&hub.addr, &token, &end).is_some());
        let (events, answered) = replay(&hub.addr, "earliest", &end);
        assert_eq!(answered, "earliest");
        let held: HashSet<&str> = events.iter().map(|(_, id)| id.as_str()).collect();
        assert_eq!(held.len(), events.len(), "no duplicates");
        let acked = acked.lock().unwrap();
        assert!(
            acked.len() > 20 * (round + 1),
            "too few publishes to mean anything: {}",
            acked.len()
        );
        for (p, seq, id) in acked.iter() {
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
        drop(hub);
    }
}

#[test]
fn replay_across_a_restart_has_no_gap_and_no_duplicate_while_publishes_continue() {
    let dir = TempDir::new("restart");
    let token = token();
    let hub = start(&dir.0);
    for i in 0..50 {
        publish(&hub.addr, &token, &format!("n{i}")).unwrap();
    }
    publish(&hub.addr, &token, "mark-1").unwrap();
    let (first, _) = replay(&hub.addr, "earliest", "mark-1");
    assert_eq!(first.len(), 50);
    // The client got up to n29, then the hub restarts (cleanly this time).
    let resume_from = first[29].1.clone();
    let mut hub = hub;
    sigterm(hub.child.0.id());
    assert!(hub.child.0.wait().unwrap().success());
    drop(hub);

    let hub = start(&dir.0);
    let addr = hub.addr.clone();
    let publisher = {
        let token = token.clone();
        std::thread::spawn(move || {
            for i in 50..150 {
                publish(&addr, &token, &format!("n{i}")).unwrap();
            }
            publish(&addr, &token, "mark-2").unwrap();
        })
    };
    let (resumed, answered) = replay(&hub.addr, &resume_from, "mark-2");
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
