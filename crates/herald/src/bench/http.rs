//! The little HTTP/1.1 the load generator speaks, over raw TCP or TLS.
//!
//! A general client (hyper's) costs more per connection and per byte than
//! a benchmark can afford when it shares the machine with the hub it
//! measures; a subscriber here is one socket, one small read buffer, a
//! chunked-body decoder and a `herald_sse::Parser`. Only `http://` and
//! `https://` URLs on an IP address or `localhost` are supported: load runs
//! target loopback.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{bail, Context};

/// An `http://` or `https://` URL split into what a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    pub(crate) addr: SocketAddr,
    /// The `Host` header value (HTTP/2's `:authority`).
    pub(crate) host: String,
    /// Path and query.
    pub(crate) target: String,
    /// `https://`: the connection starts with a TLS handshake.
    pub(crate) tls: bool,
}

impl Url {
    /// Parses `http[s]://HOST[:PORT][/PATH][?QUERY]`.
    pub(crate) fn parse(url: &str) -> anyhow::Result<Url> {
        let (rest, tls) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(rest), _) => (rest, false),
            (None, Some(rest)) => (rest, true),
            (None, None) => {
                bail!("{url:?}: only http:// and https:// URLs are supported by herald bench")
            }
        };
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_owned()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_owned()),
        };
        let (host, port) = match split_port(authority) {
            (h, Some(p)) => {
                let port: u16 = p
                    .parse()
                    .with_context(|| format!("{url:?}: invalid port {p:?}"))?;
                (h, port)
            }
            (h, None) => (h, if tls { 443 } else { 80 }),
        };
        let ip: IpAddr = match host.trim_start_matches('[').trim_end_matches(']') {
            "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
            h => h
                .parse()
                .with_context(|| format!("{url:?}: the host must be an IP address or localhost"))?,
        };
        if !ip.is_loopback() {
            bail!("{url:?}: herald bench only sends load to loopback addresses (127.0.0.0/8, ::1)");
        }
        Ok(Url {
            addr: SocketAddr::new(ip, port),
            host: authority.to_owned(),
            target,
            tls,
        })
    }

    /// The name TLS verifies the certificate against: the host without its
    /// port or brackets (`localhost`, or the IP address).
    pub(crate) fn server_name(&self) -> &str {
        let (host, _) = split_port(&self.host);
        host.trim_start_matches('[').trim_end_matches(']')
    }

    /// The absolute URL, as HTTP/2's `:scheme`, `:authority` and `:path`
    /// carry it.
    pub(crate) fn absolute(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{}", self.host, self.target)
    }
}

/// An authority's host and port, if it has one: the colon of a port comes
/// after a bracketed IPv6 address (`[::1]:9`), never inside one (`[::1]`,
/// `::1`).
fn split_port(authority: &str) -> (&str, Option<&str>) {
    match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') && (h.starts_with('[') || !h.contains(':')) => {
            (h, Some(p))
        }
        _ => (authority, None),
    }
}

/// Substitutes `{topic}` (percent-encoded when `encode`) and `{data}` in a
/// template.
pub(crate) fn fill(template: &str, topic: &str, data: &str, encode: bool) -> String {
    let topic = if encode {
        percent_encoding::utf8_percent_encode(topic, percent_encoding::NON_ALPHANUMERIC).to_string()
    } else {
        topic.to_owned()
    };
    template.replace("{topic}", &topic).replace("{data}", data)
}

/// The head of a response: status and how its body is framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResponseHead {
    pub(crate) status: u16,
    pub(crate) framing: Framing,
    /// The server said `Connection: close`.
    pub(crate) close: bool,
    /// The `Content-Type` header, if any.
    pub(crate) content_type: Option<String>,
    /// Length of the head in bytes, CRLFCRLF included.
    pub(crate) len: usize,
}

/// How a response body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Chunked,
    Length(u64),
    /// Until the connection closes.
    Close,
}

/// Parses a response head from the start of `buf`; `Ok(None)` when more
/// bytes are needed.
pub(crate) fn parse_head(buf: &[u8]) -> anyhow::Result<Option<ResponseHead>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf).context("invalid HTTP response head")? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => {
            if buf.len() > 64 * 1024 {
                bail!("HTTP response head larger than 64 KiB");
            }
            return Ok(None);
        }
    };
    let status = response.code.unwrap_or(0);
    let mut framing = Framing::Close;
    let mut close = false;
    let mut content_type = None;
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if h.value.eq_ignore_ascii_case(b"chunked") {
                framing = Framing::Chunked;
            }
        } else if h.name.eq_ignore_ascii_case("content-length") && framing != Framing::Chunked {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .context("invalid Content-Length")?;
            framing = Framing::Length(n);
        } else if h.name.eq_ignore_ascii_case("connection") {
            close = h.value.eq_ignore_ascii_case(b"close");
        } else if h.name.eq_ignore_ascii_case("content-type") {
            content_type = Some(String::from_utf8_lossy(h.value).trim().to_owned());
        }
    }
    if status == 204 || status == 304 {
        framing = Framing::Length(0);
    }
    Ok(Some(ResponseHead {
        status,
        framing,
        close,
        content_type,
        len,
    }))
}

/// Whether a `Content-Type` is `text/event-stream`, parameters (e.g. a
/// charset) allowed; over HTTP/1.1 and HTTP/2 alike.
pub(crate) fn is_event_stream(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|t| {
        t.split(';')
            .next()
            .is_some_and(|media| media.trim().eq_ignore_ascii_case("text/event-stream"))
    })
}

/// An incremental decoder of `Transfer-Encoding: chunked` bodies.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chunked {
    state: ChunkState,
    size: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum ChunkState {
    /// Reading hex digits of a chunk size.
    #[default]
    Size,
    /// Skipping a chunk extension up to LF.
    Extension,
    /// Inside chunk data; `size` bytes left.
    Data,
    /// Expecting the CR (or LF) that ends a chunk's data.
    DataEnd,
    /// Expecting the LF that ends a chunk's data.
    DataLf,
    /// The zero chunk was read: trailers, then the end.
    Trailer,
    /// The body ended.
    Done,
}

impl Chunked {
    /// Decodes `input`, passing each piece of body data to `out`. Returns
    /// the number of bytes consumed: all of them, or fewer when the body
    /// ended inside `input`.
    pub(crate) fn decode(
        &mut self,
        input: &[u8],
        mut out: impl FnMut(&[u8]),
    ) -> anyhow::Result<usize> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                ChunkState::Size => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                            let digit = (b as char).to_digit(16).unwrap_or(0) as u64;
                            self.size = self
                                .size
                                .checked_mul(16)
                                .and_then(|s| s.checked_add(digit))
                                .context("chunk size overflow")?;
                        }
                        b'\r' | b' ' | b'\t' => {}
                        b';' => self.state = ChunkState::Extension,
                        b'\n' => self.end_size(),
                        _ => bail!("invalid chunk size byte {b:#04x}"),
                    }
                }
                ChunkState::Extension => {
                    if input[i] == b'\n' {
                        self.end_size();
                    }
                    i += 1;
                }
                ChunkState::Data => {
                    let take =
                        (input.len() - i).min(usize::try_from(self.size).unwrap_or(usize::MAX));
                    out(&input[i..i + take]);
                    i += take;
                    self.size -= take as u64;
                    if self.size == 0 {
                        self.state = ChunkState::DataEnd;
                    }
                }
                ChunkState::DataEnd => {
                    match input[i] {
                        b'\r' => self.state = ChunkState::DataLf,
                        b'\n' => self.state = ChunkState::Size,
                        b => bail!("expected CRLF after chunk data, got {b:#04x}"),
                    }
                    i += 1;
                }
                ChunkState::DataLf => {
                    if input[i] != b'\n' {
                        bail!("expected LF after chunk data");
                    }
                    self.state = ChunkState::Size;
                    i += 1;
                }
                ChunkState::Trailer => {
                    // Trailers are rare; the body ends at the first empty
                    // line. Track it with `size` as "bytes on this line".
                    let b = input[i];
                    i += 1;
                    if b == b'\n' {
                        if self.size == 0 {
                            self.state = ChunkState::Done;
                            return Ok(i);
                        }
                        self.size = 0;
                    } else if b != b'\r' {
                        self.size += 1;
                    }
                }
                ChunkState::Done => return Ok(i),
            }
        }
        Ok(i)
    }

    fn end_size(&mut self) {
        if self.size == 0 {
            self.state = ChunkState::Trailer;
        } else {
            self.state = ChunkState::Data;
        }
    }

    /// Whether the terminating chunk and trailers were read.
    pub(crate) fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8], split: usize) -> (Vec<u8>, bool) {
        let mut d = Chunked::default();
        let mut out = Vec::new();
        for piece in input.chunks(split.max(1)) {
            let used = d.decode(piece, |b| out.extend_from_slice(b)).unwrap();
            if d.is_done() {
                assert!(used <= piece.len());
                break;
            }
            assert_eq!(used, piece.len());
        }
        (out, d.is_done())
    }

    #[test]
    fn chunked_body_decodes_whatever_the_split() {
        let body = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
        for split in 1..body.len() {
            assert_eq!(decode_all(body, split), (b"hello, world".to_vec(), true));
        }
    }

    #[test]
    fn chunked_body_with_trailer_and_endless_stream() {
        let body = b"3\r\nabc\r\n0\r\nX-T: 1\r\n\r\nGARBAGE";
        let mut d = Chunked::default();
        let mut out = Vec::new();
        let used = d.decode(body, |b| out.extend_from_slice(b)).unwrap();
        assert!(d.is_done());
        assert_eq!(&body[used..], b"GARBAGE");
        assert_eq!(out, b"abc");
        // An event stream never sends the zero chunk.
        let (out, done) = decode_all(b"a\r\n: comment\n\r\n", 3);
        assert_eq!((out.as_slice(), done), (&b": comment\n"[..], false));
        assert!(Chunked::default().decode(b"zz\r\n", |_| {}).is_err());
    }

    #[test]
    fn response_heads_parse_framing() {
        let head = parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nrest")
            .unwrap()
            .unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.framing, Framing::Chunked);
        assert_eq!(head.len, 47);
        let head =
            parse_head(b"HTTP/1.1 201 Created\r\nContent-Length: 12\r\nConnection: close\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!(
            (head.status, head.framing, head.close),
            (201, Framing::Length(12), true)
        );
        assert!(!is_event_stream(head.content_type.as_deref()));
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-").unwrap(), None);
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn event_streams_are_told_by_their_content_type() {
        let head = |content_type: &str| {
            let text = format!("HTTP/1.1 200 OK\r\n{content_type}\r\n\r\n");
            parse_head(text.as_bytes()).unwrap().unwrap()
        };
        for yes in [
            "Content-Type: text/event-stream",
            "content-type: Text/Event-Stream; charset=utf-8",
        ] {
            assert!(is_event_stream(head(yes).content_type.as_deref()), "{yes}");
        }
        let html = head("Content-Type: text/html; charset=utf-8");
        assert!(!is_event_stream(html.content_type.as_deref()));
        assert_eq!(
            html.content_type.as_deref(),
            Some("text/html; charset=utf-8")
        );
        let none = head("Content-Length: 0");
        assert!(!is_event_stream(none.content_type.as_deref()));
        assert_eq!(none.content_type, None);
    }

    #[test]
    fn urls_parse_and_only_loopback_is_allowed() {
        let u = Url::parse("http://127.0.0.1:8080/.well-known/mercure?topic=a").unwrap();
        assert_eq!(u.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(u.host, "127.0.0.1:8080");
        assert_eq!(u.target, "/.well-known/mercure?topic=a");
        let u = Url::parse("http://localhost?x").unwrap();
        assert_eq!((u.addr.port(), u.target.as_str()), (80, "/?x"));
        let u = Url::parse("http://[::1]:9/s").unwrap();
        assert_eq!(u.addr, "[::1]:9".parse().unwrap());
        assert!(Url::parse("http://10.0.0.1/").is_err());
        assert!(Url::parse("ftp://127.0.0.1/").is_err());
        assert!(Url::parse("http://example.com/").is_err());
        assert!(!u.tls);
        // HTTPS: port 443 unless given; the name TLS checks has no port.
        let u = Url::parse("https://127.0.0.1/.well-known/mercure").unwrap();
        assert_eq!(
            (u.addr.port(), u.tls, u.server_name()),
            (443, true, "127.0.0.1")
        );
        assert_eq!(u.absolute(), "https://127.0.0.1/.well-known/mercure");
        let u = Url::parse("https://localhost:8443?topic=a").unwrap();
        assert_eq!((u.addr.port(), u.server_name()), (8443, "localhost"));
        assert_eq!(u.absolute(), "https://localhost:8443/?topic=a");
        let u = Url::parse("https://[::1]:9/s").unwrap();
        assert_eq!(u.server_name(), "::1");
        let u = Url::parse("http://[::1]/").unwrap();
        assert_eq!(
            (u.addr, u.server_name()),
            ("[::1]:80".parse().unwrap(), "::1")
        );
    }

    #[test]
    fn templates_fill_topic_and_data() {
        assert_eq!(fill("/sub/{topic}", "t1", "", false), "/sub/t1");
        assert_eq!(
            fill("topic={topic}&data={data}", "a/b", "1_2_3", true),
            "topic=a%2Fb&data=1_2_3"
        );
    }
}
