//! Publishes on the server's own HTTP/1.1 path, on the wire: the same
//! answers as hyper gives, keep-alive and pipelining, bodies split across
//! reads, and what is still left to hyper (chunked bodies, `Expect`,
//! bodies over the limit) answered as before. Also the cache of verified
//! publisher tokens, seen from outside: it never accepts what
//! verification would refuse.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::*;
use herald_hub::{HubConfig, JwtKey, HUB_PATH};
use jsonwebtoken::Algorithm;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One whole response read from `tcp` (its head must say
/// `content-length`, or `tcp` must close after it).
struct Answer {
    head: String,
    body: String,
}

impl Answer {
    /// The header field names, lowercased, without `date`.
    fn field_names(&self) -> BTreeSet<String> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(name, _)| name.to_ascii_lowercase())
            .filter(|name| name != "date")
            .collect()
    }

    fn field(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// Reads one response, keeping bytes past it in `extra` for the next.
async fn read_answer(tcp: &mut TcpStream, extra: &mut Vec<u8>) -> Answer {
    tokio::time::timeout(LONG, async {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = extra.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(extra[..end + 4].to_vec()).unwrap();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (n, v) = l.split_once(':')?;
                        n.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().unwrap())
                    })
                    .unwrap_or_else(|| panic!("no content-length: {head}"));
                if extra.len() >= end + 4 + len {
                    let body = String::from_utf8(extra[end + 4..end + 4 + len].to_vec()).unwrap();
                    extra.drain(..end + 4 + len);
                    return Answer { head, body };
                }
            }
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "closed mid-answer: {:?}",
                String::from_utf8_lossy(extra)
            );
            extra.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("an answer in time")
}

/// A publish request with a `Content-Length` (the lean path's).
fn post(token: &str, body: &str, extra_fields: &str) -> String {
    format!(
        "POST {HUB_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n{extra_fields}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn published(hub: &TestHub) -> u64 {
    hub.hub.metrics().publishes_total
}

#[tokio::test]
async fn publishes_on_one_keep_alive_connection_are_each_answered() {
    let hub = start(config()).await;
    let token = publisher();
    let mut tcp = TcpStream::connect(hub.addr).await.unwrap();
    let mut extra = Vec::new();
    for n in 0..3 {
        let body = format!("topic=a&data=n{n}&id=e{n}");
        tcp.write_all(post(&token, &body, "").as_bytes())
            .await
            .unwrap();
        let answer = read_answer(&mut tcp, &mut extra).await;
        assert!(
            answer.head.starts_with("HTTP/1.1 200 OK\r\n"),
            "{}",
            answer.head
        );
        assert_eq!(answer.body, format!("e{n}"));
        assert_eq!(
            answer.field("content-type").as_deref(),
            Some("text/plain; charset=utf-8")
        );
        assert!(answer.field("date").is_some(), "{}", answer.head);
        assert!(answer.field("connection").is_none(), "{}", answer.head);
    }
    // The connection is still the lean path's: a subscription on it works.
    tcp.write_all(
        format!("GET {HUB_PATH}?topic=a&lastEventID=e0 HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut stream = String::new();
    let mut buf = [0u8; 4096];
    while !stream.contains("id: e2\ndata: n2\n\n") {
        let n = tokio::time::timeout(LONG, tcp.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "{stream}");
        stream.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert_eq!(published(&hub), 3);
}

#[tokio::test]
async fn pipelined_publishes_are_answered_in_order() {
    let hub = start(config()).await;
    let token = publisher();
    let mut tcp = TcpStream::connect(hub.addr).await.unwrap();
    // Two publishes, one without a token, and a request for hyper, in one
    // write: the bytes read past each body are the next request.
    let requests = format!(
        "{}{}{}GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        post(&token, "topic=a&data=1&id=p1", ""),
        post(&token, "topic=a&data=2&id=p2", "")
            .replace(&format!("Authorization: Bearer {token}\r\n"), ""),
        post(&token, "topic=a&data=3&id=p3", ""),
    );
    tcp.write_all(requests.as_bytes()).await.unwrap();
    let mut extra = Vec::new();
    let first = read_answer(&mut tcp, &mut extra).await;
    assert_eq!(first.body, "p1");
    let refused = read_answer(&mut tcp, &mut extra).await;
    assert!(refused.head.starts_with("HTTP/1.1 401"), "{}", refused.head);
    assert!(
        refused.field("www-authenticate").is_some(),
        "{}",
        refused.head
    );
    let third = read_answer(&mut tcp, &mut extra).await;
    assert_eq!(third.body, "p3");
    let health = read_answer(&mut tcp, &mut extra).await;
    assert_eq!(health.body, "ok\n");
    assert_eq!(published(&hub), 2);
}

#[tokio::test]
async fn a_body_sent_in_pieces_is_read_whole() {
    let hub = start(config()).await;
    let request = post(&publisher(), "topic=a&data=pieces&id=split", "");
    let (head, body) = request.split_at(request.find("\r\n\r\n").unwrap() + 4);
    let mut tcp = TcpStream::connect(hub.addr).await.unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    for byte in body.as_bytes() {
        tcp.write_all(&[*byte]).await.unwrap();
        tcp.flush().await.unwrap();
    }
    let answer = read_answer(&mut tcp, &mut Vec::new()).await;
    assert_eq!(answer.body, "split", "{}", answer.head);
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_body_publishes_nothing() {
    let hub = start(config()).await;
    let request = post(&publisher(), "topic=a&data=never", "");
    let mut tcp = TcpStream::connect(hub.addr).await.unwrap();
    tcp.write_all(&request.as_bytes()[..request.len() - 3])
        .await
        .unwrap();
    tcp.shutdown().await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(LONG, tcp.read_to_end(&mut rest))
        .await
        .expect("the server closes the connection")
        .unwrap();
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    // A publish after it is the first one.
    publish(hub.addr, &[("topic", "a"), ("data", "after")]).await;
    assert_eq!(published(&hub), 1);
}

#[tokio::test]
async fn connection_close_is_honoured_after_a_publish() {
    let hub = start(config()).await;
    let mut tcp = TcpStream::connect(hub.addr).await.unwrap();
    tcp.write_all(post(&publisher(), "topic=a&data=x&id=c", "Connection: close\r\n").as_bytes())
        .await
        .unwrap();
    let all = read_until_closed(&mut tcp).await;
    assert!(all.starts_with("HTTP/1.1 200 OK\r\n"), "{all}");
    assert!(
        all.to_ascii_lowercase().contains("connection: close"),
        "{all}"
    );
    assert!(all.ends_with("\r\n\r\nc"), "{all}");
}

#[tokio::test]
async fn the_lean_answer_has_the_fields_hyper_gives() {
    let hub = start(config()).await;
    let token = publisher();
    // A chunked body is hyper's; the same publish with a length is the
    // lean path's.
    let chunked = format!(
        "POST {HUB_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n\
         7\r\ntopic=a\r\nc\r\n&data=x&id=h\r\n0\r\n\r\n"
    );
    let mut by_hyper = TcpStream::connect(hub.addr).await.unwrap();
    by_hyper.write_all(chunked.as_bytes()).await.unwrap();
    let hyper_answer = read_answer(&mut by_hyper, &mut Vec::new()).await;
    assert!(
        hyper_answer.head.starts_with("HTTP/1.1 200 OK\r\n"),
        "{}",
        hyper_answer.head
    );
    assert_eq!(hyper_answer.body, "h");

    let mut lean = TcpStream::connect(hub.addr).await.unwrap();
    lean.write_all(post(&token, "topic=a&data=x&id=l", "").as_bytes())
        .await
        .unwrap();
    let lean_answer = read_answer(&mut lean, &mut Vec::new()).await;
    assert_eq!(lean_answer.body, "l");
    assert_eq!(lean_answer.field_names(), hyper_answer.field_names());

    // And a refusal (a form that is not one) alike, on both paths.
    let bad = |framing: &str| {
        format!(
            "POST {HUB_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: text/plain\r\n{framing}"
        )
    };
    by_hyper
        .write_all(bad("Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n").as_bytes())
        .await
        .unwrap();
    lean.write_all(bad("Content-Length: 1\r\n\r\nx").as_bytes())
        .await
        .unwrap();
    let hyper_refusal = read_answer(&mut by_hyper, &mut Vec::new()).await;
    let lean_refusal = read_answer(&mut lean, &mut Vec::new()).await;
    assert!(
        lean_refusal.head.starts_with("HTTP/1.1 415"),
        "{}",
        lean_refusal.head
    );
    assert_eq!(
        lean_refusal.head.lines().next(),
        hyper_refusal.head.lines().next()
    );
    assert_eq!(lean_refusal.body, hyper_refusal.body);
    assert_eq!(lean_refusal.field_names(), hyper_refusal.field_names());
}

#[tokio::test]
async fn what_the_lean_path_leaves_to_hyper_is_answered_as_before() {
    let hub = start(HubConfig {
        max_body: 64,
        ..config()
    })
    .await;
    let token = publisher();
    let mut tcp = TcpStream::connect(hub.addr).await.unwrap();
    let mut extra = Vec::new();

    // Over the limit: 413, the body drained, the connection kept.
    let long = format!("topic=a&data={}", "x".repeat(100));
    tcp.write_all(post(&token, &long, "").as_bytes())
        .await
        .unwrap();
    let too_large = read_answer(&mut tcp, &mut extra).await;
    assert!(
        too_large.head.starts_with("HTTP/1.1 413"),
        "{}",
        too_large.head
    );

    // `Expect: 100-continue`: hyper says continue, then answers.
    tcp.write_all(
        post(
            &token,
            "topic=a&data=e&id=expect",
            "Expect: 100-continue\r\n",
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("\r\n\r\nexpect") {
        let n = tokio::time::timeout(LONG, tcp.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "{seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(
        seen.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK"),
        "{seen}"
    );

    // Two lengths: hyper refuses the request.
    let mut twice = TcpStream::connect(hub.addr).await.unwrap();
    twice
        .write_all(post(&token, "topic=a&data=t", "Content-Length: 99\r\n").as_bytes())
        .await
        .unwrap();
    let all = read_until_closed(&mut twice).await;
    assert!(all.starts_with("HTTP/1.1 400"), "{all:?}");
    assert_eq!(published(&hub), 1, "only the Expect publish");
}

#[tokio::test]
async fn an_expired_publisher_token_is_refused() {
    let hub = start(config()).await;
    let expired = mint_with_exp(now() - 1);
    let reply = publish_as(hub.addr, Some(&expired), &[("topic", "a"), ("data", "x")]).await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert!(reply.body.contains("expired"), "{}", reply.body);
    // A token used once (and so cached) and one never seen are both
    // checked against their exp at each use; the cache's own unit tests
    // move the clock past exp (auth/cache.rs).
    let valid = mint_with_exp(now() + 3600);
    for _ in 0..2 {
        let reply = publish_as(hub.addr, Some(&valid), &[("topic", "a"), ("data", "x")]).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
}

#[tokio::test]
async fn a_token_accepted_by_one_hub_is_refused_by_a_hub_with_another_key() {
    let first = start(config()).await;
    let token = publisher();
    publish(first.addr, &[("topic", "a"), ("data", "x")]).await;
    let rotated = start(HubConfig {
        publisher_key: Some(JwtKey {
            algorithm: Algorithm::HS256,
            key: b"another-secret-that-is-long-enough-for-hs256".to_vec(),
        }),
        ..config()
    })
    .await;
    let reply = publish_as(rotated.addr, Some(&token), &[("topic", "a"), ("data", "x")]).await;
    assert_eq!(reply.status, 401, "{}", reply.body);
}

fn mint_with_exp(exp: u64) -> String {
    let claims = herald_hub::auth::Claims {
        exp: Some(exp),
        ..claims(&["*"], &[])
    };
    herald_hub::auth::mint(Algorithm::HS256, KEY.as_bytes(), &claims).unwrap()
}

/// Paused time: a publisher's idle connection is closed once no request
/// has begun for 30 s (as hyper's header read timeout), counted from its
/// last request, not from its first.
#[test]
fn an_idle_publisher_connection_closes_thirty_seconds_after_its_last_request() {
    paused(|| async {
        let hub = start(config()).await;
        let token = publisher();
        let mut tcp = TcpStream::connect(hub.addr).await.unwrap();
        let mut extra = Vec::new();
        for n in 0..3 {
            let body = format!("topic=a&data=x&id=i{n}");
            tcp.write_all(post(&token, &body, "").as_bytes())
                .await
                .unwrap();
            assert_eq!(
                read_answer(&mut tcp, &mut extra).await.body,
                format!("i{n}")
            );
            // 87 s in all by the third request: still open, since each
            // request starts the 30 s again.
            tokio::time::advance(std::time::Duration::from_secs(29)).await;
        }
        tokio::time::advance(std::time::Duration::from_secs(2)).await;
        let mut rest = Vec::new();
        tcp.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    });
}

/// A publisher that pipelines publishes and never reads the answers is
/// let go once a write has waited for the stall limit, as on hyper's
/// connections.
#[tokio::test]
async fn a_publisher_that_never_reads_its_answers_is_let_go() {
    let hub = herald_hub::Hub::new(config()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = herald_hub::server::Server::new(&hub)
        .write_stall_limit(std::time::Duration::from_millis(200));
    let _server = tokio::spawn(server.serve(listener, std::future::pending()));
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(1024).unwrap();
    let mut tcp = socket.connect(addr).await.unwrap();
    // Refused publishes (no token): answers with a body, nothing stored.
    let request = post("x", "topic=a&data=x", "")
        .replace("Authorization: Bearer x\r\n", "")
        .repeat(64);
    let written = tokio::time::timeout(LONG, async {
        loop {
            if let Err(e) = tcp.write_all(request.as_bytes()).await {
                return e;
            }
        }
    })
    .await
    .expect("the server closed the connection");
    assert!(
        matches!(
            written.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        "{written:?}"
    );
}

/// The server answers a publish on its own HTTP/1.1 path without the
/// router when it serves the hub's own router; served an application's
/// router, it goes through it. Both answer every request byte for byte
/// alike (but the date), with or without a CORS policy, and count the
/// same refusals.
#[tokio::test]
async fn the_hub_s_endpoint_answers_as_its_router_does() {
    for cors in [vec![], vec!["https://app.example".to_owned()]] {
        let hub = herald_hub::Hub::new(HubConfig {
            cors_origins: cors.clone(),
            publish_origins: vec!["https://app.example".into()],
            ..config()
        })
        .unwrap();
        let direct = start_hub(hub.clone()).await;
        let router = hub.router();
        let routed = start_served(hub.clone(), |server| server.router(router)).await;
        let token = publisher();
        let narrow = common::token(&["https://example.com/only"], &[]);
        // (extra fields, body), each sent to both with its id made theirs.
        let cases = [
            ("", "topic=a&data=x&id=ID"),
            ("Connection: close\r\n", "topic=a&data=x&id=ID"),
            ("Origin: https://app.example\r\n", "topic=a&data=x&id=ID"),
            ("Origin: https://other.example\r\n", "topic=a&data=x&id=ID"),
            ("", "topic=a&data=x&retry=soon"),
            ("", "data=no-topic"),
            ("", "topic=https%3A%2F%2Fexample.com%2Fother&data=x"),
            ("Content-Type: text/plain\r\n", "topic=a&data=x"),
            ("Authorization: Basic eDp5\r\n", "topic=a&data=x"),
            ("Authorization: Bearer not-a-jwt\r\n", "topic=a&data=x"),
            (
                "Cookie: mercureAuthorization=TOKEN\r\n",
                "topic=a&data=x&id=ID",
            ),
            (
                "Cookie: mercureAuthorization=TOKEN\r\nOrigin: https://app.example\r\n",
                "topic=a&data=x&id=ID",
            ),
        ];
        for (n, (fields, body)) in cases.iter().enumerate() {
            let mut answers = Vec::new();
            for (served, tag) in [(&direct, "d"), (&routed, "r")] {
                let id = format!("{tag}{n}");
                let body = body.replace("ID", &id);
                let fields = fields.replace("TOKEN", &token);
                let default_auth = if fields.contains("Authorization") || fields.contains("Cookie")
                {
                    String::new()
                } else if body.contains("other") {
                    format!("Authorization: Bearer {narrow}\r\n")
                } else {
                    format!("Authorization: Bearer {token}\r\n")
                };
                let content_type = if fields.contains("Content-Type") {
                    ""
                } else {
                    "Content-Type: application/x-www-form-urlencoded\r\n"
                };
                let request = format!(
                    "POST {HUB_PATH} HTTP/1.1\r\nHost: x\r\n{default_auth}{content_type}{fields}\
                     Content-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let counts = || {
                    let metrics = hub.metrics();
                    (metrics.publishes_total, metrics.publishes_rejected_total)
                };
                let before = counts();
                let mut tcp = TcpStream::connect(served.addr).await.unwrap();
                tcp.write_all(request.as_bytes()).await.unwrap();
                let answer = read_answer(&mut tcp, &mut Vec::new()).await;
                let after = counts();
                let counted = (after.0 - before.0, after.1 - before.1);
                let head: Vec<String> = answer
                    .head
                    .lines()
                    .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
                    .map(str::to_owned)
                    .collect();
                answers.push((head, answer.body.replace(&id, "ID"), counted));
            }
            assert_eq!(answers[0], answers[1], "case {n} (CORS {cors:?})");
        }
        // Four accepted with a bearer token, one with a cookie from an
        // allowed origin; the rest refused; on each server.
        let metrics = hub.metrics();
        assert_eq!(metrics.publishes_total, 2 * 5, "CORS {cors:?}");
        assert_eq!(metrics.publishes_rejected_total, 2 * 7, "CORS {cors:?}");
    }
}
