//! Acknowledged publishes per second, durable (redb, fsync before the 200)
//! against the in-memory ceiling, with 1, 16 and 256 concurrent publishers;
//! and replay throughput from a large history.
//!
//! `cargo bench -p herald-hub --bench history`. Under `cargo test` (no
//! `--bench` flag) the sizes shrink so the run stays quick.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use herald_hub::auth::{mint, Claims};
use herald_hub::history::redb::{RedbOptions, Retention};
use herald_hub::history::{History, MemoryHistory, NewEntry, RedbHistory};
use herald_hub::PublishForm;
use herald_hub::{Hub, HubConfig, JwtKey, HUB_PATH};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const KEY: &str = "bench-secret-bench-secret-bench-secret";

fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("herald-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn config() -> HubConfig {
    let key = JwtKey {
        algorithm: jsonwebtoken::Algorithm::HS256,
        key: KEY.as_bytes().to_vec(),
    };
    HubConfig {
        publisher_key: Some(key.clone()),
        subscriber_key: Some(key),
        anonymous: true,
        ..HubConfig::default()
    }
}

enum Backend {
    Memory,
    Redb,
}

fn history(backend: &Backend, dir: &std::path::Path) -> Arc<dyn History> {
    match backend {
        Backend::Memory => Arc::new(MemoryHistory::new(100_000)),
        Backend::Redb => Arc::new(
            RedbHistory::open(
                dir,
                RedbOptions {
                    retention: Retention {
                        max_events: Some(100_000),
                        ..Retention::default()
                    },
                    ..RedbOptions::default()
                },
            )
            .expect("open redb"),
        ),
    }
}

/// `publishers` tasks publish `total` events between them through `publish`;
/// returns the time until the last acknowledgement.
async fn storm<F, Fut>(publishers: usize, total: u64, publish: F) -> Duration
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let per = total.div_ceil(publishers as u64);
    let tasks: Vec<_> = (0..publishers)
        .map(|p| {
            let publish = publish.clone();
            tokio::spawn(async move {
                for i in 0..per {
                    publish(p as u64 * per + i).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("publisher task");
    }
    start.elapsed()
}

fn form(i: u64) -> PublishForm {
    PublishForm {
        topics: vec![format!("https://example.com/items/{}", i % 100)],
        data: format!("{{\"n\":{i},\"price\":\"12.50\",\"status\":\"shipped\"}}"),
        ..PublishForm::default()
    }
}

/// Through the library: history, group commit and fan-out, no HTTP.
fn publish_via_hub(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("publish_via_hub");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for (name, backend) in [("memory", Backend::Memory), ("redb_fsync", Backend::Redb)] {
        for publishers in [1usize, 16, 256] {
            let dir = scratch(&format!("hub-{name}-{publishers}"));
            let hub = rt.block_on(async {
                Hub::with_history(config(), history(&backend, &dir)).expect("hub")
            });
            group.throughput(Throughput::Elements(1));
            group.bench_with_input(
                BenchmarkId::new(name, publishers),
                &publishers,
                |b, &publishers| {
                    b.to_async(&rt).iter_custom(|iters| {
                        let hub = hub.clone();
                        async move {
                            storm(publishers, iters, move |i| {
                                let hub = hub.clone();
                                async move {
                                    hub.publish(form(i)).await.expect("publish");
                                }
                            })
                            .await
                        }
                    });
                },
            );
            drop(hub);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    group.finish();
}

/// Over HTTP, as a backend publishes: each publish is a POST answered 200.
fn publish_via_http(c: &mut Criterion) {
    let rt = runtime();
    let token = mint(
        jsonwebtoken::Algorithm::HS256,
        KEY.as_bytes(),
        &Claims {
            publish: Some(vec!["*".into()]),
            ..Claims::default()
        },
    )
    .expect("token");
    let mut group = c.benchmark_group("publish_via_http");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for (name, backend) in [("memory", Backend::Memory), ("redb_fsync", Backend::Redb)] {
        for publishers in [1usize, 16, 256] {
            let dir = scratch(&format!("http-{name}-{publishers}"));
            let (addr, server) = rt.block_on(async {
                let hub = Hub::with_history(config(), history(&backend, &dir)).expect("hub");
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let addr: SocketAddr = listener.local_addr().expect("addr");
                let server = tokio::spawn(async move {
                    // The server `herald serve` runs, not a bare router.
                    let server = herald_hub::server::Server::new(&hub);
                    let _ = server.serve(listener, std::future::pending()).await;
                });
                (addr, server)
            });
            let client = Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(publishers)
                .build_http::<Full<Bytes>>();
            let url: hyper::Uri = format!("http://{addr}{HUB_PATH}").parse().expect("uri");
            group.throughput(Throughput::Elements(1));
            group.bench_with_input(BenchmarkId::new(name, publishers), &publishers, |b, &publishers| {
                b.to_async(&rt).iter_custom(|iters| {
                    let (client, url, token) = (client.clone(), url.clone(), token.clone());
                    async move {
                        storm(publishers, iters, move |i| {
                            let (client, url, token) = (client.clone(), url.clone(), token.clone());
                            async move {
                                let body = format!("topic=https%3A%2F%2Fexample.com%2Fitems%2F{}&data=%7B%22n%22%3A{i}%7D", i % 100);
                                let req = hyper::Request::post(url)
                                    .header("authorization", format!("Bearer {token}"))
                                    .header("content-type", "application/x-www-form-urlencoded")
                                    .body(Full::new(Bytes::from(body)))
                                    .expect("request");
                                let res = client.request(req).await.expect("response");
                                assert_eq!(res.status(), 200);
                                let _ = http_body_util::BodyExt::collect(res.into_body()).await;
                            }
                        })
                        .await
                    }
                });
            });
            server.abort();
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    group.finish();
}

/// Reading a whole history in replay pages, from the redb file (cache off)
/// and from memory.
fn replay(c: &mut Criterion) {
    let rt = runtime();
    let events: u64 = if benchmarking() { 1_000_000 } else { 2_000 };
    let frame = herald_sse::Frame::new()
        .id("urn:uuid:0190b4d0-0000-7000-8000-000000000000")
        .data("{\"id\":42,\"price\":\"12.50\",\"status\":\"shipped\",\"updated\":\"2026-11-21T18:00:00Z\"}")
        .encode()
        .expect("frame");
    let batch = |start: u64, n: u64| -> Vec<NewEntry> {
        (start..start + n)
            .map(|i| NewEntry {
                id: format!("urn:uuid:{i:032x}"),
                topics: vec![format!("https://example.com/items/{}", i % 1000)],
                private: false,
                frame: frame.clone(),
            })
            .collect()
    };
    let dir = scratch("replay");
    let backends: Vec<(&str, Arc<dyn History>)> = rt.block_on(async {
        let options = RedbOptions {
            cache_events: 0,
            ..RedbOptions::default()
        };
        let redb: Arc<dyn History> = Arc::new(RedbHistory::open(&dir, options).expect("open"));
        let memory: Arc<dyn History> = Arc::new(MemoryHistory::new(events as usize));
        for h in [&redb, &memory] {
            let mut start = 0;
            while start < events {
                let n = 10_000.min(events - start);
                h.append(batch(start, n)).await.expect("fill");
                start += n;
            }
        }
        vec![("redb", redb), ("memory", memory)]
    });
    let mut group = c.benchmark_group("replay");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(events));
    for (name, history) in backends {
        group.bench_function(BenchmarkId::new(name, events), |b| {
            b.to_async(&rt).iter(|| {
                let history = Arc::clone(&history);
                async move {
                    let mut after = 0;
                    let mut read = 0u64;
                    loop {
                        let page = history.read_after(after, 512).await.expect("read");
                        let Some(last) = page.last() else { break };
                        after = last.seq;
                        read += page.len() as u64;
                    }
                    assert_eq!(read, events);
                }
            });
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, publish_via_hub, publish_via_http, replay);
criterion_main!(benches);
