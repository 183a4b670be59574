//! Subscribers that stop reading: closed once their queue passes its bound
//! in bytes (long before its bound in events) or once their connection
//! makes no progress for the write stall limit, on every path the server
//! serves (its own HTTP/1.1, hyper's HTTP/1, TLS, HTTP/2 over TLS and with
//! prior knowledge); each counted once as slow, the others unaffected, and
//! nothing lost for the one that resumes. A subscriber that reads is not
//! closed, however large each update.
//!
//! A binary of its own: it pushes megabytes at clients that do not read,
//! so it must not share the machine with timing-sensitive tests. Clients
//! that "do not read" have a tiny receive buffer and are never read from,
//! and every test publishes far more than the kernel's and the server's
//! buffers hold, so the server's writes block whatever the machine's load;
//! every wait is on a condition, with a deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use herald_hub::server::{Server, TlsConfig};
use herald_hub::PublishForm;
use herald_hub::{Hub, HubConfig, HUB_PATH};
use http_body_util::{Empty, Full};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};

/// The write stall limit of the servers whose stall is tested.
const STALL: Duration = Duration::from_millis(500);

/// What the stall tests publish: 400 events of 64 KiB, 25 MiB, far more
/// than the socket buffers (4 MiB at most for the server's send buffer
/// here, a few KiB for the client's) and the server's own hold.
const STALL_EVENTS: usize = 400;
const STALL_EVENT_DATA: usize = 64 * 1024;

/// A TCP connection to `addr` whose receive buffer is a few KiB, so that
/// the server's writes block soon once it is no longer read.
async fn small_window(addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Publishes `data` to topic `a` with id `id`, through the library.
async fn publish_id(hub: &Hub, id: &str, data: &str) {
    hub.publish(PublishForm {
        topics: vec!["a".into()],
        data: data.into(),
        id: Some(id.into()),
        ..PublishForm::default()
    })
    .await
    .unwrap();
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

/// The ids of the events in an event stream's text, in order.
fn ids(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .map(str::to_owned)
        .collect()
}

/// The value of one line of the Prometheus text at `/metrics`.
async fn metric_line(addr: SocketAddr, name: &str) -> String {
    let reply = request(
        Request::get(format!("http://{addr}/metrics"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    reply
        .body
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in {}", reply.body))
        .to_owned()
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_is_closed_at_the_byte_bound_and_loses_nothing() {
    // 256 KiB events and a 1 MiB bound; the event bound stays at 1,024.
    const DATA: usize = 256 * 1024;
    const MOST_EVENTS: usize = 100;
    let cfg = HubConfig {
        queue_bytes: 1 << 20,
        ..config()
    };
    assert_eq!(cfg.queue_capacity, 1024);
    let hub = start(cfg).await;
    let mut reader = subscribe(hub.addr, "topic=a", &[]).await;
    reader.ready().await;
    let mut stalled = small_window(hub.addr).await;
    stalled
        .write_all(format!("GET {HUB_PATH}?topic=a HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    wait_subscribers(&hub.hub, |n| n == 2, "both subscribe").await;

    // Publish until the hub gives up on the subscriber that does not read:
    // the buffers between them fill, then its queue passes 1 MiB. The one
    // that reads gets every event meanwhile.
    let data = "x".repeat(DATA);
    let mut published = Vec::new();
    while hub.hub.metrics().slow_disconnects_total == 0 {
        assert!(
            published.len() < MOST_EVENTS,
            "still subscribed after {} events of {DATA} bytes",
            published.len()
        );
        let id = format!("e{}", published.len() + 1);
        publish_id(&hub.hub, &id, &data).await;
        let event = reader
            .next_event_within(LONG)
            .await
            .expect("the reader's event");
        assert_eq!(
            (event.last_event_id(), event.data().len()),
            (id.as_str(), DATA)
        );
        published.push(id);
    }
    let metrics = hub.hub.metrics();
    assert_eq!(metrics.slow_disconnects_total, 1);
    assert_eq!(metrics.slow_disconnects.queue_bytes, 1);
    assert_eq!(
        metric_line(
            hub.addr,
            "herald_slow_subscriber_disconnects_by_reason_total{reason=\"queue_bytes\"}"
        )
        .await,
        "1"
    );
    assert_eq!(
        metric_line(hub.addr, "herald_slow_subscriber_disconnects_total").await,
        "1"
    );
    // The reader keeps receiving.
    publish_id(&hub.hub, "after", "after").await;
    published.push("after".into());
    assert_eq!(
        reader.next_event_within(LONG).await.unwrap().data(),
        "after"
    );

    // Reading again, the closed subscriber gets what was queued, then the
    // end of its stream; resuming from its last id, it gets the rest.
    let mut raw = Vec::new();
    let body = loop {
        if let Some(body) = dechunk(&raw) {
            break body;
        }
        let mut buf = vec![0; 256 * 1024];
        let n = tokio::time::timeout(LONG, stalled.read(&mut buf))
            .await
            .expect("the rest of the stream in time")
            .unwrap();
        assert!(n > 0, "the connection closed before the body ended");
        raw.extend_from_slice(&buf[..n]);
    };
    let received = ids(&body);
    assert!(received.len() < published.len() - 1, "{received:?}");
    assert_eq!(received, published[..received.len()], "in order, no gap");
    let last = received.last().map_or("earliest", String::as_str);
    let mut resumed = subscribe(hub.addr, "topic=a", &[("last-event-id", last)]).await;
    let rest = resumed.take(published.len() - received.len(), LONG).await;
    let rest: Vec<&str> = rest.iter().map(|e| e.last_event_id()).collect();
    assert_eq!(rest, published[received.len()..]);
    assert_eq!(hub.hub.metrics().slow_disconnects_total, 1);
}

#[tokio::test]
async fn a_subscriber_that_reads_updates_larger_than_the_bound_is_not_closed() {
    const DATA: usize = 256 * 1024;
    let cfg = HubConfig {
        queue_bytes: 64 * 1024,
        ..config()
    };
    let hub = start(cfg).await;
    let mut reader = subscribe(hub.addr, "topic=a", &[]).await;
    reader.ready().await;
    let data = "y".repeat(DATA);
    for i in 0..20 {
        let id = format!("big{i}");
        publish_id(&hub.hub, &id, &data).await;
        let event = reader.next_event_within(LONG).await.expect("every update");
        assert_eq!(
            (event.last_event_id(), event.data().len()),
            (id.as_str(), DATA)
        );
    }
    assert_eq!(hub.hub.metrics().slow_disconnects_total, 0);
    assert_eq!(hub.hub.metrics().subscribers, 1);
}

/// A hub whose queues never fill in these tests (so that only the write
/// stall can close a subscriber), served with a short write stall limit,
/// over TLS when `tls` is given.
async fn stall_hub(tls: Option<&TlsConfig>) -> (Hub, SocketAddr) {
    let hub = Hub::new(HubConfig {
        queue_bytes: 1 << 30,
        ..config()
    })
    .unwrap();
    assert!(hub_config_fits_stall_events(&HubConfig::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut server = Server::new(&hub).write_stall_limit(STALL);
    if let Some(tls) = tls {
        server = server.tls(tls).unwrap();
    }
    tokio::spawn(server.serve(listener, std::future::pending()));
    (hub, addr)
}

fn hub_config_fits_stall_events(config: &HubConfig) -> bool {
    config.queue_capacity > STALL_EVENTS
}

/// With one subscriber connected that reads nothing: publishes far more
/// than can be buffered, then checks that the server lets the subscriber
/// go for its stall and counts it once, as a write stall.
async fn the_stalled_subscriber_is_let_go_and_counted(hub: &Hub, what: &str) {
    wait_subscribers(hub, |n| n == 1, what).await;
    let data = "z".repeat(STALL_EVENT_DATA);
    for i in 0..STALL_EVENTS {
        publish_id(hub, &format!("s{i}"), &data).await;
    }
    wait_subscribers(hub, |n| n == 0, what).await;
    let metrics = hub.metrics();
    assert_eq!(metrics.slow_disconnects.write_stall, 1, "{what}");
    assert_eq!(metrics.slow_disconnects_total, 1, "{what}");
}

#[tokio::test]
async fn a_write_stall_on_the_servers_own_http1_is_counted() {
    let (hub, addr) = stall_hub(None).await;
    let mut tcp = small_window(addr).await;
    tcp.write_all(format!("GET {HUB_PATH}?topic=a HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    the_stalled_subscriber_is_let_go_and_counted(&hub, "own HTTP/1.1").await;
    drop(tcp);
}

#[tokio::test]
async fn a_write_stall_on_hypers_http1_is_counted() {
    let (hub, addr) = stall_hub(None).await;
    let mut tcp = small_window(addr).await;
    // HTTP/1.0 is left to hyper.
    tcp.write_all(format!("GET {HUB_PATH}?topic=a HTTP/1.0\r\n\r\n").as_bytes())
        .await
        .unwrap();
    the_stalled_subscriber_is_let_go_and_counted(&hub, "hyper's HTTP/1").await;
    drop(tcp);
}

/// A TLS client connection offering `alpn`, over a small receive window.
async fn tls_connect(
    addr: SocketAddr,
    tls: &TlsConfig,
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in tls.certificates() {
        roots.add(cert.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let stream = connector
        .connect(
            ServerName::try_from("localhost").unwrap(),
            small_window(addr).await,
        )
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(alpn));
    stream
}

fn self_signed() -> TlsConfig {
    TlsConfig::self_signed(&["localhost".into()]).unwrap()
}

#[tokio::test]
async fn a_write_stall_over_tls_http1_is_counted() {
    let tls = self_signed();
    let (hub, addr) = stall_hub(Some(&tls)).await;
    let mut stream = tls_connect(addr, &tls, b"http/1.1").await;
    stream
        .write_all(format!("GET {HUB_PATH}?topic=a HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    stream.flush().await.unwrap();
    the_stalled_subscriber_is_let_go_and_counted(&hub, "TLS HTTP/1.1").await;
    drop(stream);
}

/// A connection that stops reading once `paused` is set (and never wakes
/// for reading again): an HTTP/2 client whose application went away.
struct Pausable<T> {
    inner: T,
    paused: Arc<AtomicBool>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Pausable<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.paused.load(Ordering::Acquire) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Pausable<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Subscribes over HTTP/2 on `io` with windows so large that flow control
/// never holds the server back, waits for the response, then stops
/// reading the connection and checks the server lets it go for it.
async fn h2_stall<T>(hub: &Hub, io: T, scheme: &str, addr: SocketAddr, what: &str)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let paused = Arc::new(AtomicBool::new(false));
    let io = Pausable {
        inner: io,
        paused: Arc::clone(&paused),
    };
    let (mut send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(1 << 30)
        .initial_connection_window_size(1 << 30)
        .handshake(TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    let uri = format!("{scheme}://localhost:{}{HUB_PATH}?topic=a", addr.port());
    let response = tokio::time::timeout(
        LONG,
        send.send_request(Request::get(uri).body(Empty::<Bytes>::new()).unwrap()),
    )
    .await
    .expect("the response head in time")
    .unwrap();
    assert_eq!(response.status(), 200);
    paused.store(true, Ordering::Release);
    the_stalled_subscriber_is_let_go_and_counted(hub, what).await;
    drop(response);
}

#[tokio::test]
async fn a_write_stall_over_tls_http2_is_counted() {
    let tls = self_signed();
    let (hub, addr) = stall_hub(Some(&tls)).await;
    let stream = tls_connect(addr, &tls, b"h2").await;
    h2_stall(&hub, stream, "https", addr, "TLS HTTP/2").await;
}

#[tokio::test]
async fn a_write_stall_over_http2_with_prior_knowledge_is_counted() {
    let (hub, addr) = stall_hub(None).await;
    let tcp = small_window(addr).await;
    h2_stall(&hub, tcp, "http", addr, "HTTP/2 with prior knowledge").await;
}
