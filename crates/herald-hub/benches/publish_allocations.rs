//! Heap allocations per publish (issue #14: count them before and after
//! work on the publish path): what one update costs the allocator on the
//! way in from a socket (the server's HTTP/1.1 path, as a publisher's
//! keep-alive connection sends it), through the hub's router (form, JWT,
//! id, history, fan-out) and through `Hub::publish` alone, with no
//! subscriber and with ten on its topic. Counts, unlike times, do not
//! depend on the machine's load.
//!
//! `cargo bench -p herald-hub --bench publish_allocations` prints the
//! table; under `cargo test` (no `--bench` flag) it publishes a few
//! updates each way and checks that they were counted.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use herald_hub::auth::{mint, Claims};
use herald_hub::server::Server;
use herald_hub::{Hub, HubConfig, JwtKey, PublishForm, HUB_PATH};
use http_body_util::BodyExt;
use jsonwebtoken::Algorithm;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

mod counting;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const KEY: &[u8] = b"allocation-benchmark-key-long-enough-for-hs256";
const TOPIC: &str = "https://example.com/books/1";

fn main() {
    let (warm_up, measured) = counting::warm_up_and_measured();
    let runtime = counting::runtime();
    println!("allocations per publish (blocks / bytes), over {measured} publishes");
    for subscribers in [0, 10] {
        let socket = runtime.block_on(per_publish(Path::Socket, subscribers, warm_up, measured));
        let http = runtime.block_on(per_publish(Path::Http, subscribers, warm_up, measured));
        let direct = runtime.block_on(per_publish(Path::Direct, subscribers, warm_up, measured));
        println!(
            "  {subscribers:>2} subscribers: socket {socket}; router {http}; Hub::publish {direct}"
        );
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Path {
    /// A form POST on a keep-alive connection to the hub's server, the
    /// request bytes made beforehand and the answer read into a buffer on
    /// the stack: what is counted is the server's.
    Socket,
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
    let (socket, requests) = if path == Path::Socket {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr = listener.local_addr().expect("an address");
        let server = Server::new(&hub);
        tokio::spawn(server.serve(listener, std::future::pending()));
        let socket = TcpStream::connect(addr).await.expect("connected");
        socket.set_nodelay(true).expect("nodelay");
        let requests: Vec<Vec<u8>> = (0..warm_up + measured)
            .map(|n| {
                let body = format!("topic={}&data=update-{n}", encode(TOPIC));
                format!(
                    "POST {HUB_PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {token}\r\n\
                     content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes()
            })
            .collect();
        (Some(tokio::sync::Mutex::new(socket)), requests)
    } else {
        (None, Vec::new())
    };
    let socket = &socket;
    let requests = &requests;
    // Only clones that allocate nothing (the router and the hub are
    // `Arc`s); the token is borrowed, or the socket column would count a
    // copy of it that the server never makes.
    let token = &token;
    let publish = |n: usize| {
        let (router, hub) = (router.clone(), hub.clone());
        async move {
            match path {
                Path::Socket => {
                    let mut socket = socket.as_ref().expect("a socket").lock().await;
                    socket.write_all(&requests[n]).await.expect("sent");
                    read_answer(&mut socket).await;
                }
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

/// Reads one `200` answer with a `content-length` body, into a buffer on
/// the stack.
async fn read_answer(socket: &mut TcpStream) {
    let mut answer = [0u8; 1024];
    let mut len = 0;
    loop {
        let n = socket.read(&mut answer[len..]).await.expect("an answer");
        assert!(n > 0, "the server closed the connection");
        len += n;
        let text = std::str::from_utf8(&answer[..len]).expect("a text answer");
        let Some(head_end) = text.find("\r\n\r\n") else {
            continue;
        };
        assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
        let body_len: usize = text[..head_end]
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|v| v.trim().parse().ok())
            .expect("a content-length");
        if len >= head_end + 4 + body_len {
            assert_eq!(len, head_end + 4 + body_len, "more than one answer");
            return;
        }
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
