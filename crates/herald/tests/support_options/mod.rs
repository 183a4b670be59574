//! What the `options_*` tests share, on top of `support`: starting `herald
//! serve` with options given as flags, environment variables or a file,
//! HTTP requests to it, its event streams frame by frame, its metrics and
//! tokens.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod keys;

use std::process::{Output, Stdio};
use std::time::Duration;

use bytes::Bytes;
use herald_hub::auth::{mint, Claims};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::Algorithm;

use crate::support::{herald_async, start_ready, AsyncHub};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The HS256 secret of the hubs these tests start unless they say otherwise.
pub const KEY: &str = "options-test-secret";

/// How long any single wait may take before it is a failure: generous, as
/// the tests share two cores with builds.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// `herald serve --listen 127.0.0.1:0 ARGS`, with no `HERALD_*` variable
/// of the test's own environment, stderr piped for [`start`]. Tests add
/// environment variables and more options before starting it.
pub fn serve(args: &[&str]) -> tokio::process::Command {
    let mut cmd = herald_async();
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// `herald serve` with [`KEY`] (as a flag), memory history and anonymous
/// subscribers, plus `extra`.
pub fn serve_keyed(extra: &[&str]) -> tokio::process::Command {
    let mut cmd = serve(&["--jwt-key", KEY, "--history", "memory", "--anonymous"]);
    cmd.args(extra);
    cmd
}

/// Starts `cmd` (made by [`serve`]) and waits for its readiness line,
/// `Herald hub listening on URL`; panics with its log if it exits first.
pub async fn start(cmd: tokio::process::Command) -> AsyncHub {
    start_ready(cmd).await
}

/// Runs `cmd` (made by [`serve`]) to its end, which must come within the
/// deadline: for options the hub must refuse at start.
pub async fn run_to_exit(mut cmd: tokio::process::Command) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    tokio::time::timeout(DEADLINE, cmd.output())
        .await
        .expect("herald serve did not exit in time")
        .expect("cannot run herald serve")
}

/// Asserts that `out` is a start-up refusal: a non-zero exit, no panic,
/// and `expected` in its stderr. Returns the stderr.
pub fn assert_refused(out: &Output, expected: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "exited 0; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "a panic: {stderr}");
    assert!(stderr.contains(expected), "{expected:?} not in: {stderr}");
    stderr
}

/// A token for [`KEY`] that may publish and subscribe to everything.
pub fn token() -> String {
    token_with(Algorithm::HS256, KEY.as_bytes())
}

/// A token signed with `alg` and `key` (a secret, or a PEM private key)
/// that may publish and subscribe to everything.
pub fn token_with(alg: Algorithm, key: &[u8]) -> String {
    let claims = Claims {
        publish: Some(vec!["*".into()]),
        subscribe: Some(vec!["*".into()]),
        ..Claims::default()
    };
    mint(alg, key, &claims).unwrap()
}

/// An HTTP response, its body read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Reply {
    /// The value of header `name`, `None` when absent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// `http://127.0.0.1:PORT` of a hub.
pub fn base(hub: &AsyncHub) -> &str {
    hub.url.trim_end_matches(herald_hub::HUB_PATH)
}

/// Sends `request` and reads the whole response.
pub async fn send(request: http::Request<Full<Bytes>>) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http();
    let response = tokio::time::timeout(DEADLINE, client.request(request))
        .await
        .expect("no response in time")
        .expect("the request failed");
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(DEADLINE, body.collect())
        .await
        .expect("no whole body in time")
        .expect("the body failed")
        .to_bytes();
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// A publish request to the hub, a form, with the `Authorization: Bearer
/// TOKEN` header when `token` is given; the caller adds the body.
pub fn publish_request(hub: &AsyncHub, token: Option<&str>) -> http::request::Builder {
    let mut builder =
        http::Request::post(&hub.url).header("content-type", "application/x-www-form-urlencoded");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder
}

/// Publishes `form` with [`token`] and returns the reply.
pub async fn publish(hub: &AsyncHub, form: &str) -> Reply {
    publish_as(hub, &token(), form).await
}

/// Publishes `form` with `token` and returns the reply.
pub async fn publish_as(hub: &AsyncHub, token: &str, form: &str) -> Reply {
    let request = publish_request(hub, Some(token))
        .body(Full::new(Bytes::from(form.to_owned())))
        .unwrap();
    send(request).await
}

/// Publishes `form`, which must be accepted; returns the event id.
pub async fn publish_ok(hub: &AsyncHub, form: &str) -> String {
    let reply = publish(hub, form).await;
    assert_eq!(reply.status, 200, "publish refused: {}", reply.body);
    reply.body
}

/// The value of metric `name` on the hub's `/metrics`.
pub async fn metric(hub: &AsyncHub, name: &str) -> u64 {
    let reply = send(get(&format!("{}/metrics", base(hub)))).await;
    assert_eq!(reply.status, 200);
    reply
        .body
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in {}", reply.body))
        .parse()
        .unwrap()
}

/// A plain `GET url`.
pub fn get(url: &str) -> http::Request<Full<Bytes>> {
    http::Request::get(url).body(Full::default()).unwrap()
}

/// An event stream being read, one block (an event or a comment, up to
/// its blank line) at a time.
pub struct Stream {
    pub status: u16,
    pub headers: http::HeaderMap,
    body: UnsyncBoxBody<Bytes, BoxError>,
    buffer: String,
}

/// Opens `GET HUB?QUERY` with `headers`, e.g. `("last-event-id",
/// "earliest")`; the response must be a 200 event stream.
pub async fn subscribe(hub: &AsyncHub, query: &str, headers: &[(&str, &str)]) -> Stream {
    let mut builder = http::Request::get(format!("{}?{query}", hub.url));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let client = Client::builder(TokioExecutor::new()).build_http();
    let response = tokio::time::timeout(
        DEADLINE,
        client.request(builder.body(Full::<Bytes>::default()).unwrap()),
    )
    .await
    .expect("no response in time")
    .expect("the request failed");
    let (parts, body) = response.into_parts();
    assert_eq!(parts.status, 200, "subscription refused");
    Stream {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: body.map_err(|e| Box::new(e) as BoxError).boxed_unsync(),
        buffer: String::new(),
    }
}

impl Stream {
    /// The next block, e.g. `":\n\n"` (a heartbeat) or `"id: x\ndata:
    /// y\n\n"`; `None` when the stream ended.
    pub async fn next_block(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block = self.buffer[..end + 2].to_owned();
                self.buffer.drain(..end + 2);
                return Some(block);
            }
            let frame = tokio::time::timeout(DEADLINE, self.body.frame())
                .await
                .expect("nothing arrived on the stream in time");
            match frame {
                None => return None,
                Some(frame) => {
                    if let Ok(data) = frame.expect("the stream failed").into_data() {
                        self.buffer.push_str(std::str::from_utf8(&data).unwrap());
                    }
                }
            }
        }
    }

    /// The ids of the events that arrive until (and including) the one
    /// with id `marker`; comments are skipped.
    pub async fn ids_until(&mut self, marker: &str) -> Vec<String> {
        let mut ids = Vec::new();
        while ids.last().map(String::as_str) != Some(marker) {
            let block = self.next_block().await.expect("the stream ended early");
            if let Some(id) = id_of(&block) {
                ids.push(id.to_owned());
            }
        }
        ids
    }
}

/// The `id` field of an event block, `None` for a comment.
pub fn id_of(block: &str) -> Option<&str> {
    block.lines().find_map(|line| line.strip_prefix("id: "))
}
