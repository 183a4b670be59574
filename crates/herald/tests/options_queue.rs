//! `--queue-size` and `--queue-bytes` through the binary: a subscriber
//! that stops reading is closed once its queue fills (in events, or in
//! bytes long before that), counted in
//! `herald_slow_subscriber_disconnects_total` (and by reason), and resumes
//! from history.
//!
//! A test binary of its own: it pushes megabytes at a stalled client, so
//! it must not share the machine with timing-sensitive tests.

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod support;
mod support_options;
use support::{AsyncHub, TempDir};
use support_options::{
    assert_refused, base, id_of, metric, publish_ok, run_to_exit, serve_keyed, start, subscribe,
    DEADLINE,
};

/// Bytes of data in each event: a few of them fill whatever the kernel
/// and the server buffer for a client that reads nothing.
const EVENT_DATA: usize = 256 * 1024;

/// The most events published before the subscriber must have been closed
/// (25 MiB): far more than the buffers between hub and client hold.
const MOST_EVENTS: usize = 100;

/// A subscriber on raw TCP with a small receive buffer, so that it stalls
/// the hub quickly once it stops reading.
struct StalledSubscriber {
    socket: tokio::net::TcpStream,
    /// What was read so far: the response head, then the chunked body.
    raw: Vec<u8>,
}

impl StalledSubscriber {
    /// Subscribes to topic `t` and reads the response head, then stops.
    async fn connect(hub: &AsyncHub) -> StalledSubscriber {
        let addr: std::net::SocketAddr = base(hub).trim_start_matches("http://").parse().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut socket = socket.connect(addr).await.unwrap();
        let request = format!(
            "GET {}?topic=t HTTP/1.1\r\nHost: {addr}\r\n\r\n",
            herald_hub::HUB_PATH
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut subscriber = StalledSubscriber {
            socket,
            raw: Vec::new(),
        };
        while !subscriber.raw.windows(4).any(|w| w == b"\r\n\r\n") {
            subscriber.read_some().await;
        }
        let head = String::from_utf8_lossy(&subscriber.raw).into_owned();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
        subscriber
    }

    /// Reads what has arrived; panics at the end of the connection.
    async fn read_some(&mut self) {
        let mut buf = vec![0; 64 * 1024];
        let n = tokio::time::timeout(DEADLINE, self.socket.read(&mut buf))
            .await
            .expect("nothing arrived in time")
            .unwrap();
        assert!(n > 0, "the connection closed without ending the body");
        self.raw.extend_from_slice(&buf[..n]);
    }

    /// Reads on until the chunked body ends; returns the body.
    async fn read_to_end_of_body(mut self) -> String {
        loop {
            if let Some(body) = dechunk(&self.raw) {
                return body;
            }
            self.read_some().await;
        }
    }
}

/// The body of a chunked HTTP/1.1 response, `None` while its last chunk
/// has not arrived.
fn dechunk(raw: &[u8]) -> Option<String> {
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let mut rest = &raw[head_end..];
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16)
            .expect("a chunk size");
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(String::from_utf8(body).unwrap());
        }
        if rest.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_is_closed_when_its_queue_fills() {
    let hub = start(serve_keyed(&[
        "--queue-size",
        "2",
        "--history-max-bytes",
        "64MiB",
    ]))
    .await;
    let stalled = StalledSubscriber::connect(&hub).await;
    assert_eq!(metric(&hub, "herald_subscribers").await, 1);

    // Publish until the hub gives up on the subscriber: the buffers
    // between them fill, then the queue of two, and the next event closes
    // it. Waiting on the counter, not on time, makes this deterministic.
    let data = "x".repeat(EVENT_DATA);
    let mut published = Vec::new();
    let started = Instant::now();
    while metric(&hub, "herald_slow_subscriber_disconnects_total").await == 0 {
        assert!(
            published.len() < MOST_EVENTS && started.elapsed() < DEADLINE * 2,
            "still connected after {} events of {EVENT_DATA} bytes",
            published.len()
        );
        let id = format!("e{}", published.len() + 1);
        publish_ok(&hub, &format!("topic=t&id={id}&data={data}")).await;
        published.push(id);
    }
    assert_eq!(
        metric(&hub, "herald_slow_subscriber_disconnects_total").await,
        1
    );

    // Reading again, it gets what was buffered, then the end of its
    // stream; what it missed, history still has.
    let body = stalled.read_to_end_of_body().await;
    let received: Vec<&str> = body.split("\n\n").filter_map(id_of).collect();
    assert!(
        received.len() < published.len(),
        "received everything: {}",
        received.len()
    );
    assert_eq!(received, published[..received.len()], "in order, no gap");
    let last = received.last().copied().unwrap_or("earliest");
    let mut resumed = subscribe(&hub, "topic=t", &[("last-event-id", last)]).await;
    let newest = published.last().unwrap();
    let replayed = resumed.ids_until(newest).await;
    assert_eq!(replayed, published[received.len()..]);

    let closed = Instant::now();
    while metric(&hub, "herald_subscribers").await != 1 {
        assert!(
            closed.elapsed() < DEADLINE,
            "the slow subscriber is still counted"
        );
    }
    assert_eq!(
        metric(&hub, "herald_slow_subscriber_disconnects_total").await,
        1,
        "the resumed subscriber was not closed"
    );
}

/// Publishes `EVENT_DATA`-byte events to `t` until the hub closes a slow
/// subscriber; returns their ids.
async fn publish_until_slow(hub: &AsyncHub) -> Vec<String> {
    let data = "x".repeat(EVENT_DATA);
    let mut published = Vec::new();
    let started = Instant::now();
    while metric(hub, "herald_slow_subscriber_disconnects_total").await == 0 {
        assert!(
            published.len() < MOST_EVENTS && started.elapsed() < DEADLINE * 2,
            "still connected after {} events of {EVENT_DATA} bytes",
            published.len()
        );
        let id = format!("e{}", published.len() + 1);
        publish_ok(hub, &format!("topic=t&id={id}&data={data}")).await;
        published.push(id);
    }
    published
}

#[tokio::test]
async fn queue_bytes_closes_a_subscriber_that_stops_reading_long_before_queue_size() {
    // 1 MiB, four events; the event bound stays at its default, 1,024, and
    // at most 100 events are published.
    let hub = start(serve_keyed(&[
        "--queue-bytes",
        "1MiB",
        "--history-max-bytes",
        "64MiB",
    ]))
    .await;
    let stalled = StalledSubscriber::connect(&hub).await;
    let published = publish_until_slow(&hub).await;
    let by_reason = "herald_slow_subscriber_disconnects_by_reason_total";
    assert_eq!(
        metric(&hub, &format!("{by_reason}{{reason=\"queue_bytes\"}}")).await,
        1
    );
    assert_eq!(
        metric(&hub, &format!("{by_reason}{{reason=\"queue_events\"}}")).await,
        0
    );

    let body = stalled.read_to_end_of_body().await;
    let received: Vec<&str> = body.split("\n\n").filter_map(id_of).collect();
    assert_eq!(received, published[..received.len()], "in order, no gap");
    let last = received.last().copied().unwrap_or("earliest");
    let mut resumed = subscribe(&hub, "topic=t", &[("last-event-id", last)]).await;
    let replayed = resumed.ids_until(published.last().unwrap()).await;
    assert_eq!(replayed, published[received.len()..]);
}

#[tokio::test]
async fn queue_bytes_is_read_from_the_environment_and_the_file_and_checked() {
    let mut cmd = serve_keyed(&[]);
    cmd.env("HERALD_QUEUE_BYTES", "lots");
    assert_refused(&run_to_exit(cmd).await, "invalid --queue-bytes \"lots\"");

    let dir = TempDir::new("queue-bytes");
    let file = dir.join("herald.toml");
    std::fs::write(&file, "queue-bytes = \"12 parsecs\"\n").unwrap();
    let cmd = serve_keyed(&["--config", file.to_str().unwrap()]);
    assert_refused(&run_to_exit(cmd).await, "invalid --queue-bytes");

    // A plain number in the file is a size in bytes, as with the flag.
    std::fs::write(&file, "queue-bytes = 1048576\n").unwrap();
    let hub = start(serve_keyed(&["--config", file.to_str().unwrap()])).await;
    let stalled = StalledSubscriber::connect(&hub).await;
    publish_until_slow(&hub).await;
    let by_reason = "herald_slow_subscriber_disconnects_by_reason_total{reason=\"queue_bytes\"}";
    assert_eq!(metric(&hub, by_reason).await, 1);
    drop(stalled);
}
