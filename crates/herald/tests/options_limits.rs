//! The request limits of `herald serve` (`--max-body`, `--max-topics`,
//! `--max-selectors`, `--max-selector-length`, `--max-patterns`,
//! `--max-stream-lifetime`, `--max-subscribers`, `--publish-rate`,
//! `--max-streams-per-client` with `--trusted-proxy`), set as a user sets them
//! (flag, environment, file): each accepts a request at the limit and
//! refuses one just above it with the documented status and message. And
//! the order of precedence of the three sources, flag > environment >
//! file.

use std::process::Stdio;

use bytes::Bytes;
use herald_hub::HUB_PATH;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

mod support;
mod support_options;
use support::{AsyncHub, TempDir};
use support_options::{
    assert_refused, base, get, metric, publish, run_to_exit, send, serve_keyed, start, subscribe,
    token, Reply, DEADLINE,
};

/// A publish form of exactly `len` bytes: one topic and padding data.
fn form_of_len(len: usize) -> String {
    let head = "topic=t&data=";
    assert!(len >= head.len());
    format!("{head}{}", "x".repeat(len - head.len()))
}

/// A form publishing to topics `t0`…`t{n-1}`.
fn form_with_topics(n: usize) -> String {
    (0..n)
        .map(|i| format!("topic=t{i}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A subscribe query with selectors `s0`…`s{n-1}`.
fn query_with_selectors(n: usize) -> String {
    (0..n)
        .map(|i| format!("topic=s{i}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `GET HUB?QUERY` read whole: for subscriptions the hub refuses.
async fn subscribe_refused(hub: &AsyncHub, query: &str) -> Reply {
    send(get(&format!("{}?{query}", hub.url))).await
}

/// Asserts that a subscription with `query` is admitted (a 200 event
/// stream, its first frame the opening comment).
async fn assert_subscribes(hub: &AsyncHub, query: &str) {
    let mut stream = subscribe(hub, query, &[]).await;
    assert_eq!(stream.next_block().await.as_deref(), Some(":\n\n"));
}

#[tokio::test]
async fn max_body_flag_accepts_the_limit_and_answers_413_above_it() {
    let hub = start(serve_keyed(&["--max-body", "200"])).await;
    let at_limit = publish(&hub, &form_of_len(200)).await;
    assert_eq!(at_limit.status, 200, "{}", at_limit.body);

    let over = publish(&hub, &form_of_len(201)).await;
    assert_eq!(over.status, 413);
    assert_eq!(
        over.body,
        "request body larger than the limit of 200 bytes\n"
    );
}

/// The status line of the hub's answer to a publish of `form` sent with
/// `Transfer-Encoding: chunked`, in chunks of 64 bytes, over raw TCP.
async fn publish_chunked(hub: &AsyncHub, form: &str) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

    let addr = base(hub).trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut request = format!(
        "POST {HUB_PATH} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        token()
    );
    for chunk in form.as_bytes().chunks(64) {
        request.push_str(&format!("{:x}\r\n", chunk.len()));
        request.push_str(std::str::from_utf8(chunk).unwrap());
        request.push_str("\r\n");
    }
    request.push_str("0\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut status = String::new();
    let mut reader = tokio::io::BufReader::new(stream);
    tokio::time::timeout(DEADLINE, reader.read_line(&mut status))
        .await
        .expect("no answer in time")
        .unwrap();
    status.trim_end().to_owned()
}

#[tokio::test]
async fn max_body_applies_to_a_body_without_content_length() {
    // A chunked body declares no length: the hub must count what it reads.
    let hub = start(serve_keyed(&["--max-body", "200"])).await;
    assert_eq!(
        publish_chunked(&hub, &form_of_len(200)).await,
        "HTTP/1.1 200 OK"
    );
    assert_eq!(
        publish_chunked(&hub, &form_of_len(201)).await,
        "HTTP/1.1 413 Payload Too Large"
    );
}

/// The status line of one response read from `reader`, its body (by
/// `Content-Length`) read and dropped.
async fn status_of_response(reader: &mut (impl tokio::io::AsyncBufRead + Unpin)) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};

    let mut status = String::new();
    reader.read_line(&mut status).await.unwrap();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.unwrap();
    status.trim_end().to_owned()
}

/// Publishes `form` (its length declared) over raw TCP, with `token` if
/// any, writing the whole body as a reverse proxy does before it reads the
/// answer; then asks for `/healthz` on the same connection. The status
/// lines of both answers. Panics if the body could not be written whole.
async fn publish_whole_then_healthz(
    hub: &AsyncHub,
    form: &str,
    token: Option<&str>,
) -> (String, String) {
    use tokio::io::AsyncWriteExt;

    let addr = base(hub).trim_start_matches("http://").to_owned();
    let (read, mut write) = tokio::net::TcpStream::connect(&addr)
        .await
        .unwrap()
        .into_split();
    let authorization = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST {HUB_PATH} HTTP/1.1\r\nHost: {addr}\r\n{authorization}\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\r\n{form}",
        form.len()
    );
    let writer = tokio::spawn(async move {
        write.write_all(request.as_bytes()).await?;
        Ok::<_, std::io::Error>(write)
    });
    let mut reader = tokio::io::BufReader::new(read);
    tokio::time::timeout(DEADLINE, async {
        let publish = status_of_response(&mut reader).await;
        let mut write = writer
            .await
            .unwrap()
            .expect("the hub read the whole body before it answered");
        write
            .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        (publish, status_of_response(&mut reader).await)
    })
    .await
    .expect("no answers in time")
}

#[tokio::test]
async fn a_publish_refused_before_its_body_is_read_is_answered_on_a_connection_that_stays_open() {
    // Behind a reverse proxy, which sends the whole body before it reads
    // the answer, a connection closed on the rest of the body resets, and
    // nginx answers the publisher 502 instead of the hub's refusal
    // (e2e/tests/10-nginx.test.js). The hub reads the body first.
    let hub = start(serve_keyed(&["--max-body", "200"])).await;
    let large = form_of_len(4 * 1024 * 1024);
    let cases = [
        (
            "over --max-body",
            Some(token()),
            "HTTP/1.1 413 Payload Too Large",
        ),
        ("without a token", None, "HTTP/1.1 401 Unauthorized"),
    ];
    for (case, token, refused) in cases {
        let (publish, healthz) = publish_whole_then_healthz(&hub, &large, token.as_deref()).await;
        assert_eq!(publish, refused, "{case}");
        assert_eq!(
            healthz, "HTTP/1.1 200 OK",
            "{case}: the connection serves on"
        );
    }
}

#[tokio::test]
async fn max_topics_from_the_environment_accepts_the_limit_and_refuses_one_more() {
    let mut cmd = serve_keyed(&[]);
    cmd.env("HERALD_MAX_TOPICS", "3");
    let hub = start(cmd).await;
    let at_limit = publish(&hub, &form_with_topics(3)).await;
    assert_eq!(at_limit.status, 200, "{}", at_limit.body);

    // Draft-08 (§Publication): a request over a limit gets 413.
    let over = publish(&hub, &form_with_topics(4)).await;
    assert_eq!(over.status, 413);
    assert_eq!(
        over.body,
        "invalid \"topic\": at most 3 topics per update\n"
    );
}

#[tokio::test]
async fn max_selectors_from_the_config_file_accepts_the_limit_and_refuses_one_more() {
    let dir = TempDir::new("options-max-selectors");
    let file = dir.join("herald.toml");
    std::fs::write(&file, "max-selectors = 4\n").unwrap();
    let hub = start(serve_keyed(&["--config", file.to_str().unwrap()])).await;
    assert_subscribes(&hub, &query_with_selectors(4)).await;

    let over = subscribe_refused(&hub, &query_with_selectors(5)).await;
    assert_eq!(over.status, 400);
    assert_eq!(
        over.body,
        "invalid \"topic\": at most 4 selectors per subscription\n"
    );
}

// Distinct patterns are bounded hub-wide: what subscribers hold counts,
// each pattern once however many hold it, and exact topics not at all.
#[tokio::test]
async fn max_patterns_bounds_the_distinct_templates_held_and_answers_429() {
    let hub = start(serve_keyed(&["--max-patterns", "2"])).await;
    let mut holding = subscribe(&hub, "topic=%2Fa%2F%7Bx%7D&topic=%2Fb%2F%7Bx%7D", &[]).await;
    assert_eq!(holding.next_block().await.as_deref(), Some(":\n\n"));

    let over = subscribe_refused(&hub, "topic=%2Fc%2F%7Bx%7D").await;
    assert_eq!(over.status, 429);
    assert_eq!(over.headers["retry-after"], "10");
    assert!(over.body.contains("limit of 2 distinct"), "{}", over.body);
    // Patterns already held, and exact topics, still fit.
    assert_subscribes(&hub, "topic=%2Fa%2F%7Bx%7D&topic=exact-1&topic=exact-2").await;

    drop(holding);
    // Once the holder is gone, its patterns no longer count. Its stream
    // ends on the hub's side asynchronously: wait until the gauge says so.
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let metrics = send(get(&format!("{}/metrics", base(&hub)))).await.body;
        if metrics.contains("\nherald_patterns 0\n") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the patterns stayed held: {metrics}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_subscribes(&hub, "topic=%2Fc%2F%7Bx%7D&topic=%2Fd%2F%7Bx%7D").await;
}

#[tokio::test]
async fn max_stream_lifetime_ends_streams_and_refuses_a_bad_value() {
    let hub = start(serve_keyed(&["--max-stream-lifetime", "300ms"])).await;
    let mut stream = subscribe(&hub, "topic=a", &[]).await;
    assert_eq!(stream.next_block().await.as_deref(), Some(":\n\n"));
    // Heartbeats (40 s by default) cannot come first: the next thing is
    // the end.
    assert_eq!(stream.next_block().await, None);

    let out = run_to_exit(serve_keyed(&["--max-stream-lifetime", "soon"])).await;
    assert_refused(&out, "invalid --max-stream-lifetime \"soon\"");
}

#[tokio::test]
async fn max_subscribers_refuses_the_stream_past_it_with_503() {
    let hub = start(serve_keyed(&["--max-subscribers", "1"])).await;
    let mut first = subscribe(&hub, "topic=a", &[]).await;
    assert_eq!(first.next_block().await.as_deref(), Some(":\n\n"));
    let refused = subscribe_refused(&hub, "topic=a").await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.headers["retry-after"], "5");
    assert!(
        refused.body.contains("limit of 1 streams"),
        "{}",
        refused.body
    );
    // Publishing still gets in.
    assert_eq!(publish(&hub, "topic=a").await.status, 200);
}

/// `cmd` run with at most `files` open files, as `ulimit -n` (or
/// systemd's `LimitNOFILE`) sets them for an operator's hub.
fn with_open_files(files: u32, cmd: tokio::process::Command) -> tokio::process::Command {
    let cmd = cmd.as_std();
    let mut limited = tokio::process::Command::new("sh");
    limited
        .args(["-c", r#"ulimit -n "$0" && exec "$@""#, &files.to_string()])
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => limited.env(key, value),
            None => limited.env_remove(key),
        };
    }
    limited
}

// Without --max-subscribers the hub caps no number of streams, but keeps
// open files for what is not an HTTP/1.1 stream: with 300 files it admits
// 44 HTTP/1.1 streams (300 less the 256 kept aside), answers the next one
// 503 while a publish still gets in, and one HTTP/2 connection still
// carries more streams than that.
#[tokio::test]
async fn by_default_http1_streams_stop_short_of_the_file_limit_and_http2_ones_do_not() {
    let hub = start(with_open_files(300, serve_keyed(&[]))).await;
    let mut held = Vec::new();
    for _ in 0..44 {
        let mut stream = subscribe(&hub, "topic=a", &[]).await;
        assert_eq!(stream.next_block().await.as_deref(), Some(":\n\n"));
        held.push(stream);
    }
    let refused = subscribe_refused(&hub, "topic=a").await;
    assert_eq!(refused.status, 503);
    assert!(
        refused.body.contains("open connections are at 44"),
        "{}",
        refused.body
    );
    assert_eq!(publish(&hub, "topic=a").await.status, 200);

    let h2 = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let mut multiplexed = Vec::new();
    for _ in 0..60 {
        let request = http::Request::get(format!("{}?topic=a", hub.url))
            .body(Full::default())
            .unwrap();
        let response = tokio::time::timeout(DEADLINE, h2.request(request))
            .await
            .expect("no HTTP/2 response in time")
            .expect("the HTTP/2 request failed");
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), http::Version::HTTP_2);
        multiplexed.push(response);
    }
    assert_eq!(metric(&hub, "herald_subscribers").await, 44 + 60);
    assert_eq!(metric(&hub, "herald_subscribers_refused_total").await, 1);
}

#[tokio::test]
async fn max_streams_per_client_refuses_the_stream_past_it_with_429() {
    let hub = start(serve_keyed(&["--max-streams-per-client", "1"])).await;
    let mut first = subscribe(&hub, "topic=a", &[]).await;
    assert_eq!(first.next_block().await.as_deref(), Some(":\n\n"));
    let refused = subscribe_refused(&hub, "topic=a").await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.headers["retry-after"], "10");
    assert_eq!(
        refused.body,
        "the address 127.0.0.1 holds the hub's limit of 1 event streams per client; close one (another tab, another page) or retry later\n"
    );
    assert_eq!(metric(&hub, "herald_client_limit_refused_total").await, 1);
    assert_eq!(metric(&hub, "herald_client_limit_clients").await, 1);
    // Publishing is not a stream: it still gets in.
    assert_eq!(publish(&hub, "topic=a").await.status, 200);

    // 0 lifts the limit; a proxy address must be an address.
    let hub = start(serve_keyed(&["--max-streams-per-client", "0"])).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = subscribe(&hub, "topic=a", &[]).await;
        assert_eq!(stream.next_block().await.as_deref(), Some(":\n\n"));
        held.push(stream);
    }
    let out = run_to_exit(serve_keyed(&["--trusted-proxy", "proxy.internal"])).await;
    assert_refused(&out, "invalid --trusted-proxy");
}

// Behind a reverse proxy on the hub's machine every client arrives from
// 127.0.0.1: trusted (here from the environment, as a list), the proxy's
// X-Forwarded-For tells them apart; a client's own entries, left of what
// the proxy appended, count for nothing.
#[tokio::test]
async fn trusted_proxies_from_the_environment_count_forwarded_clients_apart() {
    let mut cmd = serve_keyed(&["--max-streams-per-client", "1"]);
    cmd.env("HERALD_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1");
    let hub = start(cmd).await;
    let mut held = Vec::new();
    for client in ["203.0.113.7", "203.0.113.8"] {
        let mut stream = subscribe(&hub, "topic=a", &[("x-forwarded-for", client)]).await;
        assert_eq!(stream.next_block().await.as_deref(), Some(":\n\n"));
        held.push(stream);
    }
    let request = http::Request::get(format!("{}?topic=a", hub.url))
        .header("x-forwarded-for", "198.51.100.1, 203.0.113.7")
        .body(Default::default())
        .unwrap();
    let refused = send(request).await;
    assert_eq!(refused.status, 429);
    assert!(
        refused.body.starts_with("the address 203.0.113.7 "),
        "{}",
        refused.body
    );
    assert_eq!(metric(&hub, "herald_client_limit_clients").await, 2);
}

#[tokio::test]
async fn publish_rate_from_the_environment_limits_each_token() {
    let mut cmd = serve_keyed(&[]);
    cmd.env("HERALD_PUBLISH_RATE", "1");
    let hub = start(cmd).await;
    // One a second, in bursts of one: twenty publishes in a row meet a
    // 429 unless they took twenty seconds.
    let mut refused = None;
    for _ in 0..20 {
        let reply = publish(&hub, "topic=t").await;
        if reply.status == 429 {
            refused = Some(reply);
            break;
        }
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let refused = refused.expect("no 429 in twenty publishes at one a second");
    assert_eq!(refused.headers["retry-after"], "1");

    let out = run_to_exit(serve_keyed(&["--publish-rate", "0"])).await;
    assert_refused(&out, "--publish-rate");
}

#[tokio::test]
async fn max_selector_length_counts_characters_for_topics_and_selectors() {
    let hub = start(serve_keyed(&["--max-selector-length", "8"])).await;
    // Eight characters, sixteen bytes: the limit is in characters.
    let at_limit = "é".repeat(8);
    let over = "é".repeat(9);
    let encoded = |s: &str| s.replace('é', "%C3%A9");

    let published = publish(&hub, &format!("topic={}", encoded(&at_limit))).await;
    assert_eq!(published.status, 200, "{}", published.body);
    assert_subscribes(&hub, &format!("topic={}", encoded(&at_limit))).await;

    let refused = publish(&hub, &format!("topic={}", encoded(&over))).await;
    assert_eq!(refused.status, 413);
    assert_eq!(
        refused.body,
        "invalid \"topic\": longer than 8 characters\n"
    );
    let refused = subscribe_refused(&hub, &format!("topic={}", encoded(&over))).await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.body,
        "invalid \"topic\": longer than 8 characters\n"
    );
}

/// The most topics the hub accepts in one publish, found by publishing
/// `1..=5` topics: every count up to the limit passes, every one above is
/// refused.
async fn topics_limit_of(hub: &AsyncHub) -> usize {
    let mut limit = 0;
    for n in 1..=5 {
        let reply = publish(hub, &form_with_topics(n)).await;
        match reply.status {
            200 => {
                assert_eq!(limit, n - 1, "{n} topics passed after a refusal");
                limit = n;
            }
            413 => assert!(reply.body.contains("topics per update"), "{}", reply.body),
            other => panic!("status {other}: {}", reply.body),
        }
    }
    limit
}

#[tokio::test]
async fn a_flag_wins_over_the_environment_which_wins_over_the_file() {
    let dir = TempDir::new("options-precedence");
    let file = dir.join("herald.toml");
    std::fs::write(&file, "max-topics = 1\n").unwrap();
    let config = file.to_str().unwrap();

    let hub = start(serve_keyed(&["--config", config])).await;
    assert_eq!(topics_limit_of(&hub).await, 1, "the file alone");

    let mut cmd = serve_keyed(&["--config", config]);
    cmd.env("HERALD_MAX_TOPICS", "2");
    let hub = start(cmd).await;
    assert_eq!(topics_limit_of(&hub).await, 2, "environment over file");

    let mut cmd = serve_keyed(&["--config", config, "--max-topics", "3"]);
    cmd.env("HERALD_MAX_TOPICS", "2");
    let hub = start(cmd).await;
    assert_eq!(topics_limit_of(&hub).await, 3, "flag over environment");
}
