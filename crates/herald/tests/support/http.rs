//! Raw HTTP/1.1 to a running hub: publishing, subscribing and replaying
//! with exact bytes on a `TcpStream`, so a test sees what the hub sent and
//! nothing a client library made of it.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::DEADLINE;

/// How long a socket read may block before the test fails: the hub answers
/// in milliseconds, a loaded machine in seconds, a hang never.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A token that may publish to every topic, signed (HS256) with `key`.
pub fn publisher_token(key: &str) -> String {
    let claims = herald_hub::auth::Claims {
        publish: Some(vec!["*".into()]),
        ..Default::default()
    };
    herald_hub::auth::mint(jsonwebtoken::Algorithm::HS256, key.as_bytes(), &claims).unwrap()
}

/// A connection to `addr` whose reads fail after [`READ_TIMEOUT`].
pub fn connect(addr: &str) -> std::io::Result<TcpStream> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(READ_TIMEOUT))?;
    Ok(tcp)
}

/// Sends a raw HTTP/1.1 request and returns the whole answer (the request
/// says `connection: close`, so the server closes after it).
pub fn exchange(addr: &str, request: &str) -> String {
    let mut tcp = connect(addr).unwrap();
    tcp.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = tcp.read_to_string(&mut out);
    out
}

/// The head of a form-encoded publish of `body_len` bytes.
pub fn publish_head(addr: &str, token: &str, body_len: usize) -> String {
    format!(
        "POST /.well-known/mercure HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {body_len}\r\nconnection: close\r\n\r\n"
    )
}

/// A whole publish request of the form-encoded `body`.
pub fn publish_request(addr: &str, token: &str, body: &str) -> String {
    format!("{}{body}", publish_head(addr, token, body.len()))
}

/// Publishes the form-encoded `body`; the id on a 200, `None` on any other
/// answer or when the hub cannot be reached (it was killed, say).
pub fn try_publish(addr: &str, token: &str, body: &str) -> Option<String> {
    let mut tcp = connect(addr).ok()?;
    tcp.write_all(publish_request(addr, token, body).as_bytes())
        .ok()?;
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).ok()?;
    id_in(&answer)
}

/// Publishes the form-encoded `body` and returns the id; the test fails on
/// anything but a 200.
pub fn publish(addr: &str, token: &str, body: &str) -> String {
    let answer = exchange(addr, &publish_request(addr, token, body));
    id_in(&answer).unwrap_or_else(|| panic!("the publish failed: {answer}"))
}

/// The id a publish answered with, if it was a 200.
pub fn id_in(answer: &str) -> Option<String> {
    if !answer.starts_with("HTTP/1.1 200") {
        return None;
    }
    Some(answer.rsplit("\r\n\r\n").next()?.trim().to_string())
}

/// Opens a subscription and returns the socket once the headers arrived.
/// The head is read a byte at a time, so no event that follows it in the
/// same packet (a replay, say) is consumed with it.
pub fn open_stream(addr: &str, query: &str) -> TcpStream {
    open_stream_with_headers(addr, query, "")
}

/// [`open_stream`] with `token` in the `Authorization` header (where both
/// revisions take a subscriber's token).
pub fn open_stream_with_token(addr: &str, query: &str, token: &str) -> TcpStream {
    open_stream_with_headers(addr, query, &format!("authorization: Bearer {token}\r\n"))
}

/// [`open_stream`] with `headers` (each line ending in CRLF) added.
fn open_stream_with_headers(addr: &str, query: &str, headers: &str) -> TcpStream {
    let mut tcp = connect(addr).unwrap();
    write!(
        tcp,
        "GET /.well-known/mercure?{query} HTTP/1.1\r\nhost: {addr}\r\n{headers}\r\n"
    )
    .unwrap();
    let head = read_head(&mut tcp);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    tcp
}

/// Reads a response head, a byte at a time (nothing after it is consumed).
pub fn read_head(tcp: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(b"\r\n\r\n") {
        let n = tcp.read(&mut byte).expect("no response head");
        assert!(
            n > 0,
            "closed before the head ended: {:?}",
            String::from_utf8_lossy(&seen)
        );
        seen.push(byte[0]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// How [`read_stream`] stopped reading.
#[derive(Debug, PartialEq, Eq)]
pub enum Until {
    /// The needle arrived.
    Found,
    /// The peer closed the connection (a read returned 0 bytes).
    Eof,
    /// A read failed: the socket's read timeout (`WouldBlock` or
    /// `TimedOut`), a reset, ...
    Failed(ErrorKind),
}

/// Reads from a stream until `needle` appears, it ends, or a read fails
/// (e.g. times out), and returns which along with everything read.
pub fn read_stream(tcp: &mut TcpStream, needle: &str) -> (Until, String) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let until = loop {
        if String::from_utf8_lossy(&seen).contains(needle) {
            break Until::Found;
        }
        match tcp.read(&mut buf) {
            Ok(0) => break Until::Eof,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => break Until::Failed(e.kind()),
        }
    };
    (until, String::from_utf8_lossy(&seen).into_owned())
}

/// Reads from a stream until `needle` appears (true) or it ends or a read
/// fails (false).
pub fn read_until(tcp: &mut TcpStream, needle: &str) -> (bool, String) {
    let (until, seen) = read_stream(tcp, needle);
    (until == Until::Found, seen)
}

/// Replays `topic` from `last_event_id` until an event whose data is
/// `until`; returns the (data, id) pairs before it and the `Last-Event-ID`
/// the hub answered.
pub fn replay(
    addr: &str,
    topic: &str,
    last_event_id: &str,
    until: &str,
) -> (Vec<(String, String)>, String) {
    let mut tcp = connect(addr).unwrap();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    // HTTP/1.0: the body is the raw stream, no chunked framing.
    write!(
        tcp,
        "GET /.well-known/mercure?topic={topic} HTTP/1.0\r\nhost: {addr}\r\nlast-event-id: {last_event_id}\r\n\r\n"
    )
    .unwrap();
    let head = read_head(&mut tcp);
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    let answered = head
        .lines()
        .find_map(|l| l.strip_prefix("last-event-id: "))
        .unwrap_or("")
        .to_string();
    let mut parser = herald_sse::Parser::new();
    let mut events = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        while let Some(event) = parser.next_event() {
            let event = event.unwrap();
            if event.data() == until {
                return (events, answered);
            }
            events.push((event.data().to_string(), event.last_event_id().to_string()));
        }
        let n = tcp.read(&mut buf).expect("the replay stalled");
        assert!(n > 0, "the stream ended before {until:?}");
        parser.feed(&buf[..n]);
    }
}
