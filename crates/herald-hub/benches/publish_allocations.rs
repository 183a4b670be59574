//! Heap allocations per publish (issue #14: count them before and after
//! work on the publish path): what one update costs the allocator on the
//! way through the hub's router (form, JWT, id, history, fan-out) and
//! through `Hub::publish` alone, with no subscriber and with ten on its
//! topic. Counts, unlike times, do not depend on the machine's load.
//!
//! `cargo bench -p herald-hub --bench publish_allocations` prints the
//! table; under `cargo test` (no `--bench` flag) it publishes a few
//! updates each way and checks that they were counted.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use herald_hub::auth::{mint, Claims};
use herald_hub::{Hub, HubConfig, JwtKey, PublishForm, HUB_PATH};
use http_body_util::BodyExt;
use jsonwebtoken::Algorithm;
use tower::ServiceExt;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const KEY: &[u8] = b"allocation-benchmark-key-long-enough-for-hs256";
const TOPIC: &str = "https://example.com/books/1";

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let (warm_up, measured) = if benchmarking { (200, 2_000) } else { (2, 5) };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    println!("allocations per publish (blocks / bytes), over {measured} publishes");
    for subscribers in [0, 10] {
        let http = runtime.block_on(per_publish(Path::Http, subscribers, warm_up, measured));
        let direct = runtime.block_on(per_publish(Path::Direct, subscribers, warm_up, measured));
        println!("  {subscribers:>2} subscribers: HTTP POST {http}; Hub::publish {direct}");
    }
}

#[derive(Clone, Copy)]
enum Path {
    /// A form POST through the hub's router, with a publisher JWT.
    Http,
    /// `Hub::publish`, as an embedding application calls it.
    Direct,
}

/// Allocations per publish, averaged over `measured` publishes after
/// `warm_up` (caches, history's first blocks, the runtime's own).
async fn per_publish(
    path: Path,
    subscribers: usize,
    warm_up: usize,
    measured: usize,
) -> PerPublish {
    let hub = Hub::new(HubConfig {
        publisher_key: Some(JwtKey {
            algorithm: Algorithm::HS256,
            key: KEY.to_vec(),
        }),
        anonymous: true,
        ui: false,
        history_size: warm_up + measured + 10,
        ..HubConfig::default()
    })
    .expect("a hub");
    let router = hub.router();
    // Subscribers whose streams are open and never read: each publish
    // queues the update for each of them (the queue holds every one).
    let mut streams = Vec::new();
    for _ in 0..subscribers {
        let request = Request::get(format!("{HUB_PATH}?topic={}", encode(TOPIC)))
            .body(Body::empty())
            .expect("a request");
        let response = router.clone().oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        streams.push(response.into_body());
    }
    let token = mint(
        Algorithm::HS256,
        KEY,
        &Claims {
            publish: Some(vec!["*".into()]),
            ..Claims::default()
        },
    )
    .expect("a token");
    let publish = |n: usize| {
        let (router, hub, token) = (router.clone(), hub.clone(), token.clone());
        async move {
            match path {
                Path::Http => {
                    let request = Request::post(HUB_PATH)
                        .header(header::AUTHORIZATION, format!("Bearer {token}"))
                        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(Body::from(format!(
                            "topic={}&data=update-{n}",
                            encode(TOPIC)
                        )))
                        .expect("a request");
                    let response = router.oneshot(request).await.expect("infallible");
                    assert_eq!(response.status(), StatusCode::OK);
                    let _id = response.into_body().collect().await.expect("a body");
                }
                Path::Direct => {
                    hub.publish(PublishForm {
                        topics: vec![TOPIC.into()],
                        data: format!("update-{n}"),
                        ..PublishForm::default()
                    })
                    .await
                    .expect("published");
                }
            }
        }
    };
    for n in 0..warm_up {
        publish(n).await;
    }
    let profiler = dhat::Profiler::builder().testing().build();
    for n in warm_up..warm_up + measured {
        publish(n).await;
    }
    let stats = dhat::HeapStats::get();
    drop(profiler);
    drop(streams);
    assert!(stats.total_blocks > 0, "nothing counted");
    PerPublish {
        blocks: stats.total_blocks as f64 / measured as f64,
        bytes: stats.total_bytes as f64 / measured as f64,
    }
}

struct PerPublish {
    blocks: f64,
    bytes: f64,
}

impl std::fmt::Display for PerPublish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1} / {:.0} B", self.blocks, self.bytes)
    }
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
