//! The server module end to end: HTTPS with ALPN `h2` and `http/1.1` on one
//! listener, many event streams on one HTTP/2 connection, no hop-by-hop
//! headers, per-stream heartbeats and flow control, the stream limit,
//! graceful shutdown, and plain HTTP still served.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use herald_hub::server::{Server, TlsConfig};
use herald_hub::PublishForm;
use herald_hub::{Hub, HubConfig, HUB_PATH};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper::{Request, Response, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use common::wait_subscribers;

const TOPIC: &str = "https://example.com/tls";
const WAIT: Duration = Duration::from_secs(10);

struct Running {
    addr: SocketAddr,
    hub: Hub,
    tls: TlsConfig,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.hub.shutdown();
        self.task.abort();
    }
}

fn config() -> HubConfig {
    HubConfig {
        anonymous: true,
        ..HubConfig::default()
    }
}

/// A hub behind [`Server`] on 127.0.0.1:0, over TLS unless `plain`.
async fn start(config: HubConfig, plain: bool, h2_max_streams: u32) -> Running {
    let hub = Hub::new(config).unwrap();
    let tls = TlsConfig::self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut server = Server::new(&hub).h2_max_concurrent_streams(h2_max_streams);
    if !plain {
        server = server.tls(&tls).unwrap();
    }
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        hub,
        tls,
        stop: Some(stop),
        task,
    }
}

/// A TLS connection to the server offering `alpn`, trusting its certificate.
async fn connect_tls(
    running: &Running,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in running.tls.certificates() {
        roots.add(cert.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(running.addr).await.unwrap();
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// An HTTP/2 connection over TLS (ALPN `h2`), with the given stream window.
async fn h2_client(running: &Running, stream_window: Option<u32>) -> SendRequest<Empty<Bytes>> {
    let tls = connect_tls(running, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let mut builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
    if let Some(window) = stream_window {
        builder
            .initial_stream_window_size(window)
            .initial_connection_window_size(4 << 20);
    }
    let (send, conn) = builder.handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    send
}

fn get(uri: &str) -> Request<Empty<Bytes>> {
    Request::get(uri).body(Empty::new()).unwrap()
}

/// A subscription over HTTP/1.1 (origin-form target, Host header).
fn http1_subscribe() -> Request<Empty<Bytes>> {
    Request::get(format!("{HUB_PATH}?topic={TOPIC}"))
        .header("host", "localhost")
        .body(Empty::new())
        .unwrap()
}

fn subscribe_uri(scheme: &str, addr: SocketAddr) -> String {
    format!(
        "{scheme}://localhost:{}{HUB_PATH}?topic={TOPIC}",
        addr.port()
    )
}

async fn publish(hub: &Hub, id: &str, data: &str) {
    hub.publish(PublishForm {
        topics: vec![TOPIC.into()],
        data: data.into(),
        id: Some(id.into()),
        ..PublishForm::default()
    })
    .await
    .unwrap();
}

/// Reads an event stream until `want` holds for the text received so far.
async fn read_until(response: &mut Response<Incoming>, want: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    timeout(WAIT, async {
        while !want(&text) {
            match response.body_mut().frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        text.push_str(std::str::from_utf8(&data).unwrap());
                    }
                }
                other => panic!("the stream ended early: {other:?} after {text:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out; received {text:?}"));
    text
}

fn ids(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .collect()
}

const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "proxy-connection",
    "upgrade",
    "te",
];

#[tokio::test]
async fn h2_is_negotiated_via_alpn_and_serves_the_hub() {
    let running = start(config(), false, 256).await;
    let mut send = h2_client(&running, None).await;
    let port = running.addr.port();
    let response = send
        .send_request(get(&format!("https://localhost:{port}/healthz")))
        .await
        .unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok\n");
}

#[tokio::test]
async fn http1_is_served_over_tls_when_the_client_offers_only_http1() {
    let running = start(config(), false, 256).await;
    let tls = connect_tls(&running, &[b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let response = send
        .send_request(
            Request::get("/healthz")
                .header("host", "localhost")
                .body(Empty::<Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.version(), Version::HTTP_11);
    assert_eq!(response.status(), 200);
}

/// HTTP/1.1 subscriptions over TLS take the hub's own HTTP/1.1 path, over
/// the server's own TLS stream: events arrive whole and in order, and a
/// client that hangs up is let go at once.
#[tokio::test]
async fn an_http1_subscription_over_tls_receives_every_event_and_its_end_is_seen() {
    let running = start(config(), false, 256).await;
    let tls = connect_tls(&running, &[b"http/1.1"]).await;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let mut response = send.send_request(http1_subscribe()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), Version::HTTP_11);
    assert_eq!(response.headers()["transfer-encoding"], "chunked");
    wait_subscribers(&running.hub, |n| n == 1, "the subscriber connects").await;
    // Larger than one TLS record, to cross record boundaries.
    let big = "x".repeat(40_000);
    let sent = ["ev-1", "ev-2", "ev-3"];
    for id in sent {
        publish(&running.hub, id, &big).await;
    }
    let text = read_until(&mut response, |t| ids(t).len() >= 3 && t.ends_with("\n\n")).await;
    assert_eq!(ids(&text), sent);
    assert_eq!(text.matches(big.as_str()).count(), 3);

    drop(response);
    drop(send);
    conn.abort();
    wait_subscribers(&running.hub, |n| n == 0, "the hung-up subscriber is let go").await;
}

#[tokio::test]
async fn twenty_four_streams_on_one_h2_connection_all_receive_every_event() {
    const STREAMS: usize = 24;
    let running = start(config(), false, 256).await;
    let send = h2_client(&running, None).await;
    let uri = subscribe_uri("https", running.addr);
    let mut responses = Vec::new();
    for _ in 0..STREAMS {
        let mut send = send.clone();
        let uri = uri.clone();
        responses.push(tokio::spawn(
            async move { send.send_request(get(&uri)).await },
        ));
    }
    let mut streams = Vec::new();
    for r in responses {
        let response = r.await.unwrap().unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), Version::HTTP_2);
        streams.push(response);
    }
    wait_subscribers(&running.hub, |n| n >= STREAMS as u64, "subscribers connect").await;
    let sent: Vec<String> = (1..=5).map(|i| format!("ev-{i}")).collect();
    for id in &sent {
        publish(&running.hub, id, "hello").await;
    }
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let text = read_until(&mut stream, |t| ids(t).len() >= 5).await;
                ids(&text).into_iter().map(String::from).collect::<Vec<_>>()
            })
        })
        .collect();
    for reader in readers {
        assert_eq!(reader.await.unwrap(), sent);
    }
}

#[tokio::test]
async fn h2_responses_carry_no_hop_by_hop_headers() {
    let running = start(config(), false, 256).await;
    let mut send = h2_client(&running, None).await;
    let port = running.addr.port();
    for uri in [
        subscribe_uri("https", running.addr),
        format!("https://localhost:{port}/"),
        format!("https://localhost:{port}/.well-known/herald/stats"),
        format!("https://localhost:{port}/metrics"),
    ] {
        let response = send.send_request(get(&uri)).await.unwrap();
        assert_eq!(response.status(), 200, "{uri}");
        assert_eq!(response.version(), Version::HTTP_2);
        for name in HOP_BY_HOP {
            assert!(
                !response.headers().contains_key(name),
                "{uri} sent the hop-by-hop header {name}: {:?}",
                response.headers()
            );
        }
    }
}

#[tokio::test]
async fn heartbeats_flow_on_every_h2_stream() {
    let running = start(
        HubConfig {
            heartbeat: Duration::from_millis(100),
            ..config()
        },
        false,
        256,
    )
    .await;
    let send = h2_client(&running, None).await;
    let uri = subscribe_uri("https", running.addr);
    let mut readers = Vec::new();
    for _ in 0..3 {
        let mut send = send.clone();
        let uri = uri.clone();
        readers.push(tokio::spawn(async move {
            let mut response = send.send_request(get(&uri)).await.unwrap();
            // The opening comment, then at least two heartbeats.
            read_until(&mut response, |t| t.matches(":\n\n").count() >= 3).await
        }));
    }
    for reader in readers {
        let text = reader.await.unwrap();
        assert!(text.starts_with(":\n\n"), "{text:?}");
    }
}

#[tokio::test]
async fn a_stream_that_is_not_read_does_not_stall_the_others() {
    let running = start(config(), false, 256).await;
    // A 16 KiB stream window: the unread stream fills it after ~16 events.
    let mut send = h2_client(&running, Some(16 * 1024)).await;
    let uri = subscribe_uri("https", running.addr);
    let _stalled = send.send_request(get(&uri)).await.unwrap();
    let mut reading = send.send_request(get(&uri)).await.unwrap();
    wait_subscribers(&running.hub, |n| n >= 2, "subscribers connect").await;
    let payload = "x".repeat(1024);
    let reader = tokio::spawn(async move {
        let text = read_until(&mut reading, |t| ids(t).len() >= 200).await;
        ids(&text).len()
    });
    for i in 0..200 {
        publish(&running.hub, &format!("big-{i}"), &payload).await;
    }
    assert_eq!(reader.await.unwrap(), 200);
}

#[tokio::test]
async fn the_h2_stream_limit_holds_back_the_stream_over_it() {
    let running = start(config(), false, 4).await;
    let send = h2_client(&running, None).await;
    let uri = subscribe_uri("https", running.addr);
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(send.clone().send_request(get(&uri)).await.unwrap());
    }
    wait_subscribers(&running.hub, |n| n >= 4, "subscribers connect").await;
    let mut fifth = {
        let mut send = send.clone();
        let uri = uri.clone();
        tokio::spawn(async move { send.send_request(get(&uri)).await })
    };
    assert!(
        timeout(Duration::from_millis(500), &mut fifth)
            .await
            .is_err(),
        "a fifth stream opened past a limit of 4"
    );
    drop(open.pop());
    let response = timeout(WAIT, fifth).await.unwrap().unwrap().unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn plain_http_still_works_for_http1_and_prior_knowledge_h2() {
    let running = start(config(), true, 256).await;
    let addr = running.addr;

    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = Request::get(format!("{HUB_PATH}?topic={TOPIC}"))
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let mut stream = send.send_request(request).await.unwrap();
    assert_eq!(stream.version(), Version::HTTP_11);
    assert_eq!(stream.status(), 200);
    wait_subscribers(&running.hub, |n| n >= 1, "subscribers connect").await;
    publish(&running.hub, "plain-1", "over http/1.1").await;
    let text = read_until(&mut stream, |t| t.contains("\n\n") && !ids(t).is_empty()).await;
    assert_eq!(ids(&text), ["plain-1"]);

    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let response = send
        .send_request(get(&format!("http://localhost:{}/healthz", addr.port())))
        .await
        .unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn shutdown_ends_every_stream_and_the_server_returns() {
    let mut running = start(config(), false, 256).await;
    let send = h2_client(&running, None).await;
    let uri = subscribe_uri("https", running.addr);
    let mut streams = Vec::new();
    for _ in 0..3 {
        streams.push(send.clone().send_request(get(&uri)).await.unwrap());
    }
    wait_subscribers(&running.hub, |n| n >= 3, "subscribers connect").await;
    running.stop.take().unwrap().send(()).unwrap();
    for mut stream in streams {
        let ended = timeout(WAIT, async {
            while let Some(frame) = stream.body_mut().frame().await {
                if frame.is_err() {
                    break;
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "a stream outlived the shutdown");
    }
    let served = timeout(WAIT, &mut running.task).await;
    assert!(matches!(served, Ok(Ok(Ok(())))), "{served:?}");
    assert!(running.hub.is_shutting_down());
}

#[tokio::test]
async fn a_client_that_never_finishes_the_handshake_does_not_block_others() {
    let running = start(config(), false, 256).await;
    let _silent = TcpStream::connect(running.addr).await.unwrap();
    let mut send = h2_client(&running, None).await;
    let response = send
        .send_request(get(&format!(
            "https://localhost:{}/healthz",
            running.addr.port()
        )))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

// The limit of streams per client holds over TLS: streams on one HTTP/2
// connection count one each, an HTTP/1.1 connection from the same address
// counts with them, and a stream that ends gives its place back.
#[tokio::test]
async fn streams_per_client_are_counted_over_tls_on_every_protocol() {
    let running = start(
        HubConfig {
            max_streams_per_client: Some(3),
            ..config()
        },
        false,
        256,
    )
    .await;
    let send = h2_client(&running, None).await;
    let uri = subscribe_uri("https", running.addr);
    let mut open = Vec::new();
    for _ in 0..3 {
        let response = send.clone().send_request(get(&uri)).await.unwrap();
        assert_eq!(response.status(), 200);
        open.push(response);
    }
    let refused = send.clone().send_request(get(&uri)).await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "10");

    let tls = connect_tls(&running, &[b"http/1.1"]).await;
    let (mut http1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let refused = http1.send_request(http1_subscribe()).await.unwrap();
    assert_eq!(refused.version(), Version::HTTP_11);
    assert_eq!(refused.status(), 429);
    assert_eq!(running.hub.metrics().client_limit_refused_total, 2);

    drop(open.pop());
    wait_subscribers(&running.hub, |n| n <= 2, "a stream ends").await;
    let response = send.clone().send_request(get(&uri)).await.unwrap();
    assert_eq!(response.status(), 200);
}
