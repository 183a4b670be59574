//! Publish latency with many distinct URI templates held by subscribers
//! (issue #13: many templates must not stall every publish): 0, 1,000 and
//! 20,000 distinct templates, none of which selects the published topic,
//! in three shapes: each under its own literal prefix (what applications
//! usually hold: `https://example.com/users/42/{x}`); all under one
//! prefix that the topic does not begin with; and all under a prefix the
//! topic begins with (`https://example.com/{a}/42`: the prefix index cannot
//! help, every template is tested, which is what `max_patterns` bounds).
//!
//! `cargo bench -p herald-hub --bench templates`. Under `cargo test` (no
//! `--bench` flag) it subscribes 100 templates and publishes once.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use herald_hub::server::Server;
use herald_hub::PublishForm;
use herald_hub::{Hub, HubConfig, HUB_PATH};

/// The most selectors one subscription request may carry (the hub's
/// default limit).
const PER_CONNECTION: usize = 100;

fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

#[derive(Clone, Copy)]
/// Where the templates' literal prefixes stand.
enum Prefix {
    /// One each.
    Own,
    /// One for all, not the topic's beginning.
    Other,
    /// One for all, the topic's beginning.
    Topics,
}

impl Prefix {
    fn name(self) -> &'static str {
        match self {
            Prefix::Own => "own_prefix",
            Prefix::Other => "other_prefix",
            Prefix::Topics => "topic_prefix",
        }
    }

    /// Template `i` of this shape.
    fn template(self, i: usize) -> String {
        match self {
            Prefix::Own => format!("https://example.com/users/{i}/{{x}}"),
            Prefix::Other => format!("https://example.com/t/{{a}}/{i}"),
            Prefix::Topics => format!("https://example.com/{{a}}/{i}x"),
        }
    }
}

/// Opens subscriptions holding `count` distinct templates; returns the
/// connections (kept open for the hub to hold the templates).
fn subscribe(addr: SocketAddr, count: usize, shape: Prefix) -> Vec<TcpStream> {
    (0..count.div_ceil(PER_CONNECTION))
        .map(|c| {
            let query: Vec<String> = (c * PER_CONNECTION..count.min((c + 1) * PER_CONNECTION))
                .map(|i| format!("topic={}", encode(&shape.template(i))))
                .collect();
            let mut tcp = TcpStream::connect(addr).expect("connect");
            write!(
                tcp,
                "GET {HUB_PATH}?{} HTTP/1.1\r\nhost: {addr}\r\n\r\n",
                query.join("&")
            )
            .expect("write");
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                assert_eq!(tcp.read(&mut byte).expect("read"), 1, "closed early");
                head.push(byte[0]);
            }
            assert!(head.starts_with(b"HTTP/1.1 200"), "subscription refused");
            tcp
        })
        .collect()
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn publish_latency(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let sizes: &[usize] = if benchmarking() {
        &[0, 1_000, 20_000]
    } else {
        &[100]
    };
    let mut group = c.benchmark_group("publish_with_templates");
    group.measurement_time(Duration::from_secs(5));
    for shape in [Prefix::Own, Prefix::Other, Prefix::Topics] {
        for &count in sizes {
            let hub = runtime.block_on(async {
                Hub::new(HubConfig {
                    anonymous: true,
                    max_patterns: 20_000,
                    ..HubConfig::default()
                })
                .expect("hub")
            });
            let listener = runtime
                .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            let server = Server::new(&hub);
            runtime.spawn(server.serve(listener, std::future::pending()));
            let _held = subscribe(addr, count, shape);
            group.bench_function(BenchmarkId::new(shape.name(), count), |b| {
                b.to_async(&runtime).iter(|| async {
                    let form = PublishForm {
                        topics: vec!["https://example.com/other/1".into()],
                        data: "x".into(),
                        ..PublishForm::default()
                    };
                    hub.publish(form).await.expect("publish")
                })
            });
            if !benchmarking() {
                break;
            }
        }
    }
    group.finish();
}

criterion_group!(benches, publish_latency);
criterion_main!(benches);
