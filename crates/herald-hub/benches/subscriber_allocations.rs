//! Heap per subscriber: what an idle event stream holds once it is open
//! (live bytes and blocks), and what opening it allocated on the way,
//! freed or not. The second figure catches what RSS shows but a live
//! count does not: a connection's request loop is boxed while it reads
//! its head, and a box that outgrows its allocator size class raises the
//! hub's RSS per subscriber though nothing more stays allocated (see
//! bench/RESULTS.md, issue 14's no-regression measurement). Counts, unlike
//! RSS, do not depend on the machine's load.
//!
//! Subscriptions are real ones, over loopback to the hub's own `Server`
//! (the lean HTTP/1.1 path), with the request a browser's `EventSource`
//! makes, trimmed. Both ends of each socket are in this process, so the
//! client's socket is counted too: compare figures with each other, not
//! with the bench scenarios' RSS.
//!
//! `cargo bench -p herald-hub --bench subscriber_allocations` prints the
//! figures; under `cargo test` (no `--bench` flag) it opens a few streams
//! and checks that they were counted.

use herald_hub::server::Server;
use herald_hub::{Hub, HubConfig, HUB_PATH};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

mod counting;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const REQUEST: &str = "?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1 HTTP/1.1\r\n\
    host: 127.0.0.1\r\naccept: text/event-stream\r\ncache-control: no-cache\r\n\
    user-agent: herald-bench\r\n\r\n";

fn main() {
    let (warm_up, measured) = counting::warm_up_and_measured();
    let runtime = counting::runtime();
    let figures = runtime.block_on(per_subscriber(warm_up, measured));
    println!("heap per subscriber, over {measured} subscriptions (both ends of the socket)");
    println!(
        "  live once open: {:.1} blocks / {:.0} B; allocated while opening: {:.1} blocks / {:.0} B",
        figures.live_blocks, figures.live_bytes, figures.opening_blocks, figures.opening_bytes
    );
}

struct PerSubscriber {
    live_blocks: f64,
    live_bytes: f64,
    opening_blocks: f64,
    opening_bytes: f64,
}

/// Opens `warm_up` streams (the runtime's, the registry's and the
/// allocator's first blocks), then `measured` more, and divides what the
/// latter changed.
async fn per_subscriber(warm_up: usize, measured: usize) -> PerSubscriber {
    let hub = Hub::new(HubConfig {
        anonymous: true,
        ui: false,
        ..HubConfig::default()
    })
    .expect("a hub");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(Server::new(&hub).serve(listener, std::future::pending()));
    let request = format!("GET {HUB_PATH}{REQUEST}");
    let mut streams = Vec::with_capacity(warm_up + measured);
    let profiler = dhat::Profiler::builder().testing().build();
    let mut before = None;
    for n in 0..warm_up + measured {
        if n == warm_up {
            before = Some(dhat::HeapStats::get());
        }
        let mut stream = TcpStream::connect(addr).await.expect("connected");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("request sent");
        // The head is written once the subscription is registered, so the
        // stream is open when it arrives.
        let mut head = [0u8; 512];
        let read = stream.read(&mut head).await.expect("an answer");
        assert!(
            head[..read].starts_with(b"HTTP/1.1 200 "),
            "{}",
            String::from_utf8_lossy(&head[..read])
        );
        streams.push(stream);
    }
    // The last streams' connection tasks may not have parked yet (their
    // request loop is dropped once the head is out): let them, so the
    // live figure is the open streams'. Only a figure depends on it.
    for _ in 0..16 {
        tokio::task::yield_now().await;
    }
    let after = dhat::HeapStats::get();
    let before = before.expect("measured after the warm-up");
    drop(profiler);
    assert!(after.total_blocks > before.total_blocks, "nothing counted");
    assert!(
        after.curr_blocks > before.curr_blocks,
        "open streams hold nothing"
    );
    let per = |after: u64, before: u64| (after - before) as f64 / measured as f64;
    PerSubscriber {
        live_blocks: per(after.curr_blocks as u64, before.curr_blocks as u64),
        live_bytes: per(after.curr_bytes as u64, before.curr_bytes as u64),
        opening_blocks: per(after.total_blocks, before.total_blocks),
        opening_bytes: per(after.total_bytes, before.total_bytes),
    }
}
