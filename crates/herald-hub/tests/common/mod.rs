//! Test harness: a real hub on 127.0.0.1:0, a raw HTTP client, and an SSE
//! reader built on herald-sse.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod redb;
pub mod redis_server;
#[cfg(target_os = "linux")]
pub mod tmpfs;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use herald_hub::auth::{mint, Claims};
use herald_hub::server::Server;
use herald_hub::{Hub, HubConfig, JwtKey, HUB_PATH};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::Algorithm;

/// The HS256 secret every test hub uses.
pub const KEY: &str = "test-secret-that-is-long-enough-for-hs256!";

pub struct TestHub {
    pub addr: SocketAddr,
    pub hub: Hub,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestHub {
    fn drop(&mut self) {
        self.hub.shutdown();
        self.server.abort();
    }
}

/// The default test configuration: HS256 keys for both roles, anonymous
/// subscribers allowed.
pub fn config() -> HubConfig {
    let key = JwtKey {
        algorithm: Algorithm::HS256,
        key: KEY.as_bytes().to_vec(),
    };
    HubConfig {
        publisher_key: Some(key.clone()),
        subscriber_key: Some(key),
        anonymous: true,
        ..HubConfig::default()
    }
}

pub async fn start(config: HubConfig) -> TestHub {
    let hub = Hub::new(config).expect("hub builds");
    start_hub(hub).await
}

/// Serves `hub` with [`Server`], as `herald serve` does: HTTP/1.1
/// subscriptions take the server's own path, everything else hyper's.
pub async fn start_hub(hub: Hub) -> TestHub {
    start_served(hub, |server| server).await
}

/// Serves `hub` with the [`Server`] that `set` makes of the default one.
pub async fn start_served(hub: Hub, set: impl FnOnce(Server) -> Server) -> TestHub {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = set(Server::new(&hub));
    let server = tokio::spawn(async move {
        server
            .serve(listener, std::future::pending())
            .await
            .unwrap();
    });
    TestHub { addr, hub, server }
}

pub fn claims(publish: &[&str], subscribe: &[&str]) -> Claims {
    let list = |s: &[&str]| (!s.is_empty()).then(|| s.iter().map(|x| x.to_string()).collect());
    Claims {
        publish: list(publish),
        subscribe: list(subscribe),
        ..Claims::default()
    }
}

/// An HS256 token signed with [`KEY`].
pub fn token(publish: &[&str], subscribe: &[&str]) -> String {
    mint(
        Algorithm::HS256,
        KEY.as_bytes(),
        &claims(publish, subscribe),
    )
    .unwrap()
}

/// A publisher token for every topic.
pub fn publisher() -> String {
    token(&["*"], &[])
}

pub fn client() -> Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

/// Sends a request and reads the whole answer.
pub async fn request(req: Request<Full<Bytes>>) -> Reply {
    let res = client()
        .request(req)
        .await
        .expect("request reaches the hub");
    let status = res.status();
    let headers = res.headers().clone();
    let body = res
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A form body from pairs, percent-encoded.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// POSTs a publish form with a bearer token.
pub async fn publish_as(addr: SocketAddr, token: Option<&str>, pairs: &[(&str, &str)]) -> Reply {
    publish_raw(addr, token, form(pairs).into_bytes()).await
}

pub async fn publish_raw(addr: SocketAddr, token: Option<&str>, body: Vec<u8>) -> Reply {
    let mut req = Request::post(format!("http://{addr}{HUB_PATH}"))
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    request(req.body(Full::new(Bytes::from(body))).unwrap()).await
}

/// Publishes with a full publisher token and expects 200; returns the id.
pub async fn publish(addr: SocketAddr, pairs: &[(&str, &str)]) -> String {
    let reply = publish_as(addr, Some(&publisher()), pairs).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "publish failed: {}",
        reply.body
    );
    reply.body
}

/// An open SSE response, parsed with herald-sse.
pub struct Stream {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: Incoming,
    parser: herald_sse::Parser,
    pub comments: usize,
    /// Comments read before the last event [`Stream::next_event`] returned.
    pub comments_before_last_event: usize,
    pub ended: bool,
    /// Every byte of the body read so far, for checks on the exact wire form.
    pub raw: Vec<u8>,
    /// Parsed events not yet returned, each with the comments read before it.
    pending: std::collections::VecDeque<(herald_sse::Event, usize)>,
}

/// Opens `GET /.well-known/mercure?{query}` with extra headers.
pub async fn subscribe(addr: SocketAddr, query: &str, headers: &[(&str, &str)]) -> Stream {
    let mut req = Request::get(format!("http://{addr}{HUB_PATH}?{query}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    subscribe_request(req.body(Full::new(Bytes::new())).unwrap()).await
}

/// Opens a subscription with any request (`QUERY` with a body, say).
pub async fn subscribe_request(req: Request<Full<Bytes>>) -> Stream {
    subscribe_with(&client(), req).await
}

/// Opens `GET /.well-known/mercure?{query}` with extra headers from the
/// local address `source` (any of 127.0.0.0/8 reaches a hub on
/// 127.0.0.1): a client at another address.
pub async fn subscribe_from(
    source: std::net::IpAddr,
    addr: SocketAddr,
    query: &str,
    headers: &[(&str, &str)],
) -> Stream {
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_local_address(Some(source));
    let client = Client::builder(TokioExecutor::new()).build(connector);
    let mut req = Request::get(format!("http://{addr}{HUB_PATH}?{query}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    subscribe_with(&client, req.body(Full::new(Bytes::new())).unwrap()).await
}

/// Opens a subscription with `req` through `client` (an HTTP/2 one, say).
pub async fn subscribe_with(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> Stream {
    let res = client
        .request(req)
        .await
        .expect("subscribe reaches the hub");
    let status = res.status();
    let headers = res.headers().clone();
    Stream {
        status,
        headers,
        body: res.into_body(),
        parser: herald_sse::Parser::new().with_comments(true),
        comments: 0,
        comments_before_last_event: 0,
        ended: false,
        raw: Vec::new(),
        pending: Default::default(),
    }
}

/// `topic=a&topic=b…` for the given selectors.
pub fn topics(selectors: &[&str]) -> String {
    selectors
        .iter()
        .map(|s| format!("topic={}", enc(s)))
        .collect::<Vec<_>>()
        .join("&")
}

impl Stream {
    /// The latest `retry` the stream carried.
    pub fn retry(&self) -> Option<Duration> {
        self.parser.retry()
    }

    /// The next event within `wait`, `None` on timeout or end of stream.
    pub async fn next_event_within(&mut self, wait: Duration) -> Option<herald_sse::Event> {
        tokio::time::timeout(wait, self.next_event())
            .await
            .ok()
            .flatten()
    }

    /// Moves parsed items out of the parser: events to `pending`, comments
    /// counted.
    fn drain_parser(&mut self) {
        while let Some(item) = self.parser.next_item() {
            match item.expect("hub output within parser limits") {
                herald_sse::Item::Event(e) => self.pending.push_back((e, self.comments)),
                herald_sse::Item::Comment(_) => self.comments += 1,
                _ => {}
            }
        }
    }

    /// Reads one more chunk of the body; false when the body ended.
    async fn pump(&mut self) -> bool {
        if self.ended {
            return false;
        }
        match self.body.frame().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    self.raw.extend_from_slice(data);
                    self.parser.feed(data);
                }
            }
            _ => {
                self.parser.finish();
                self.ended = true;
            }
        }
        self.drain_parser();
        true
    }

    /// The whole body as text (a refusal's message), read to its end
    /// within [`LONG`].
    pub async fn text(mut self) -> String {
        assert!(self.ends_within(LONG).await, "the body did not end");
        String::from_utf8(self.raw).unwrap()
    }

    /// The next event; `None` when the stream ends.
    pub async fn next_event(&mut self) -> Option<herald_sse::Event> {
        loop {
            if let Some((e, comments)) = self.pending.pop_front() {
                self.comments_before_last_event = comments;
                return Some(e);
            }
            if !self.pump().await {
                return None;
            }
        }
    }

    /// Reads until `n` events arrived (or `wait` passed).
    pub async fn take(&mut self, n: usize, wait: Duration) -> Vec<herald_sse::Event> {
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while events.len() < n {
            match tokio::time::timeout_at(deadline, self.next_event()).await {
                Ok(Some(e)) => events.push(e),
                _ => break,
            }
        }
        events
    }

    /// The events read before the first one whose data is `marker` (which
    /// is consumed). The marker is published after whatever must not
    /// arrive, so "nothing arrived" is a fact, not a guess from a wait.
    pub async fn events_until(&mut self, marker: &str) -> Vec<herald_sse::Event> {
        let mut before = Vec::new();
        loop {
            match tokio::time::timeout(LONG, self.next_event()).await {
                Ok(Some(e)) if e.data() == marker => return before,
                Ok(Some(e)) => before.push(e),
                Ok(None) => panic!("the stream ended before the marker {marker:?}; got {before:?}"),
                Err(_) => panic!("no marker {marker:?} within {LONG:?}; got {before:?}"),
            }
        }
    }

    /// Reads until `n` comments arrived in all (the initial one included).
    pub async fn wait_comments(&mut self, n: usize) {
        while self.comments < n {
            let more = tokio::time::timeout(LONG, self.pump()).await;
            assert!(
                matches!(more, Ok(true)) && !self.ended,
                "{} comments, not {n}, before the stream ended or {LONG:?} passed",
                self.comments
            );
        }
    }

    /// Whether the stream ends (the server closes it) within `wait`; events
    /// read meanwhile are kept for `next_event`.
    pub async fn ends_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if self.ended {
                return true;
            }
            if tokio::time::timeout_at(deadline, self.pump())
                .await
                .is_err()
            {
                return false;
            }
        }
    }

    /// Waits for the initial comment, i.e. until the subscription is
    /// registered with the hub.
    pub async fn ready(&mut self) {
        let deadline = tokio::time::Instant::now() + LONG;
        while self.comments == 0 {
            match tokio::time::timeout_at(deadline, self.pump()).await {
                Ok(true) => {}
                _ => panic!("no initial comment from the hub (status {})", self.status),
            }
        }
    }
}

pub const LONG: Duration = Duration::from_secs(10);

/// Everything the server writes on `tcp` until it closes the connection
/// (within [`LONG`]), as text.
pub async fn read_until_closed(tcp: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut all = Vec::new();
    tokio::time::timeout(LONG, tcp.read_to_end(&mut all))
        .await
        .expect("the server closes the connection")
        .unwrap();
    String::from_utf8_lossy(&all).into_owned()
}

/// Seconds since the Unix epoch, now.
pub fn now() -> u64 {
    since_epoch().as_secs()
}

/// The wall clock, as JWT validation reads it.
pub fn since_epoch() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
}

/// Publishes `marker` to `topic` and asserts it is the next event `stream`
/// receives: whatever was published or done before it did not arrive.
pub async fn assert_nothing_before_marker(
    addr: SocketAddr,
    stream: &mut Stream,
    topic: &str,
    what: &str,
) {
    const MARKER: &str = "the marker published last";
    publish(addr, &[("topic", topic), ("data", MARKER)]).await;
    let before = stream.events_until(MARKER).await;
    assert!(before.is_empty(), "{what}: {before:?} arrived");
}

/// Runs `test` on a current-thread runtime whose clock is paused and moves
/// only when the test calls [`tokio::time::advance`]: auto-advance is held
/// off, since it would jump to the next timer (a heartbeat, an expiry)
/// whenever the runtime waits for the loopback socket. Tokio timeouts then
/// never fire, so a real-time watchdog turns a hang into a failure.
pub fn paused<F>(test: impl FnOnce() -> F + Send + 'static)
where
    F: std::future::Future<Output = ()>,
{
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runtime.block_on(async {
                // A blocking task in flight holds off auto-advance until
                // `release` drops, at the end of the test or when it panics.
                let (release, held) = std::sync::mpsc::channel::<()>();
                let hold = tokio::task::spawn_blocking(move || {
                    let _ = held.recv();
                });
                test().await;
                drop(release);
                hold.await.unwrap();
            })
        }));
        let _ = done.send(outcome);
    });
    match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(())) => {}
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("the paused-time test hung for 60 s of real time"),
    }
}

/// Waits (up to [`LONG`]) until the hub's subscriber count satisfies
/// `done`; `what` names the wait in the failure message.
pub async fn wait_subscribers(hub: &Hub, done: impl Fn(u64) -> bool, what: &str) {
    wait_metrics(hub, |m| done(m.subscribers), what).await;
}

/// Waits (up to [`LONG`]) until the hub's metrics satisfy `done`; `what`
/// names the wait in the failure message.
pub async fn wait_metrics(
    hub: &Hub,
    done: impl Fn(&herald_hub::MetricsSnapshot) -> bool,
    what: &str,
) {
    let deadline = tokio::time::Instant::now() + LONG;
    while !done(&hub.metrics()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not after {LONG:?}: {:?}",
            hub.metrics()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
