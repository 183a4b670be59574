//! HTTP/1.1 on the wire, for the subscriptions and publishes
//! [`super::plain`] serves: request heads in, response heads and chunks
//! out.
//!
//! Only what an event stream and a publish need: a request head is parsed
//! with `httparse`. A plain `GET` of the stream path (the hub's path,
//! wherever the application mounted it) becomes an `http::Request` for the
//! router; a `POST` of it whose body has a `Content-Length` is a publish,
//! whose fields stay where they are in the buffer ([`RawHead`]) until it
//! is clear who answers it. Everything else is left to hyper.

use std::io::{self, Write as _};
use std::ops::Range;
use std::time::SystemTime;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};
use bytes::Bytes;
use http_body::Frame;

use crate::http::fields::Fields;

/// Most header fields in a head read here (hyper's default limit).
pub(crate) const MAX_HEADERS: usize = 100;

/// What a buffer holding the start of a request turned out to be.
pub(crate) enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// Something hyper should answer.
    ForHyper,
    /// A subscription, whose head is the first `head_len` bytes.
    Subscription {
        request: Box<Request<Body>>,
        keep_alive: bool,
        head_len: usize,
    },
    /// A publish (a `POST`), whose fields were recorded where
    /// [`parse`] was told to put them.
    Publish(PublishHead),
}

/// Where a publish's head is in its buffer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PublishHead {
    /// The request target (the stream path and maybe a query).
    pub(crate) target: Range<usize>,
    pub(crate) keep_alive: bool,
    /// The head is the first `head_len` bytes...
    pub(crate) head_len: usize,
    /// ... and the body the `body_len` bytes after it.
    pub(crate) body_len: u64,
}

impl PublishHead {
    /// Where the body is in the buffer: right after the head. (`body_len`
    /// is within the hub's body limit once the lean path serves it.)
    pub(crate) fn body(&self) -> Range<usize> {
        self.head_len..self.head_len + self.body_len as usize
    }
}

/// Where one header field's name and value are in a head's buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FieldAt {
    name: (u32, u32),
    value: (u32, u32),
}

/// A request head's fields, read in its buffer: what a publish answered
/// without the router reads (no map, no copies).
pub(crate) struct RawHead<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) fields: &'a [FieldAt],
}

impl RawHead<'_> {
    fn name_of(&self, field: &FieldAt) -> &[u8] {
        &self.buf[field.name.0 as usize..field.name.1 as usize]
    }

    fn value_of(&self, field: &FieldAt) -> &[u8] {
        &self.buf[field.value.0 as usize..field.value.1 as usize]
    }

    /// The request as the router takes it, or `None` when its target or
    /// a field is not what `http` accepts (hyper answers those).
    pub(crate) fn request(&self, method: Method, target: Range<usize>) -> Option<Request<Body>> {
        let fields = self
            .fields
            .iter()
            .map(|f| (self.name_of(f), self.value_of(f)));
        request(method, &self.buf[target], fields)
    }
}

/// A request for the router from a head's parts, or `None` when its
/// target or a field is not what `http` accepts.
fn request<'a>(
    method: Method,
    target: &[u8],
    fields: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>,
) -> Option<Request<Body>> {
    let uri = Uri::from_maybe_shared(Bytes::copy_from_slice(target)).ok()?;
    let mut headers = HeaderMap::with_capacity(fields.len());
    for (name, value) in fields {
        let name = HeaderName::from_bytes(name).ok()?;
        let value = HeaderValue::from_bytes(value).ok()?;
        headers.append(name, value);
    }
    let mut request = Request::new(Body::empty());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Some(request)
}

impl Fields for RawHead<'_> {
    fn all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a [u8]> {
        self.fields
            .iter()
            .filter(move |f| {
                self.name_of(f)
                    .eq_ignore_ascii_case(name.as_str().as_bytes())
            })
            .map(move |f| self.value_of(f))
    }
}

/// Parses a request head, recording a publish's fields in `fields`
/// (cleared first). A plain `GET` of `stream_path` over HTTP/1.1, without a body or
/// an upgrade, is a subscription served here; a `POST` of it with one
/// `Content-Length` (no `Transfer-Encoding`, `Expect` or upgrade) is a
/// publish served here.
pub(crate) fn parse(buf: &[u8], stream_path: &str, fields: &mut Vec<FieldAt>) -> Parsed {
    fields.clear();
    let mut parsed = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut parsed);
    let head_len = match head.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        // hyper gives the client the right error (400, 431, ...).
        Err(_) => return Parsed::ForHyper,
    };
    let method = match head.method {
        Some("GET") => Method::GET,
        Some("POST") => Method::POST,
        _ => return Parsed::ForHyper,
    };
    if head.version != Some(1) {
        return Parsed::ForHyper;
    }
    let Some(target) = head.path else {
        return Parsed::ForHyper;
    };
    if target.split('?').next() != Some(stream_path) {
        return Parsed::ForHyper;
    }
    // A subscription's request is built here from httparse's fields; a
    // publish's fields are recorded where they are in `buf`, for whoever
    // answers it.
    let publish = method == Method::POST;
    // A publish's query must be one `http` takes (a publish answered
    // without the router builds no `Uri`); the path is `stream_path`,
    // which it takes.
    if publish
        && target.len() > stream_path.len()
        && Uri::from_maybe_shared(Bytes::copy_from_slice(target.as_bytes())).is_err()
    {
        return Parsed::ForHyper;
    }
    let offset = |part: &[u8]| (part.as_ptr() as usize - buf.as_ptr() as usize) as u32;
    let span = |part: &[u8]| (offset(part), offset(part) + part.len() as u32);
    let mut keep_alive = true;
    // The `Content-Length` fields: how many, and the length when the
    // (last) one is plain digits; a `GET` may only say 0.
    let mut lengths = 0;
    let mut body_len = None;
    let mut no_body = true;
    for field in head.headers.iter() {
        let name = field.name.as_bytes();
        let is = |known: &HeaderName| name.eq_ignore_ascii_case(known.as_str().as_bytes());
        // Chunked bodies, upgrades and `100 Continue` are hyper's.
        if is(&header::TRANSFER_ENCODING) || is(&header::UPGRADE) || is(&header::EXPECT) {
            return Parsed::ForHyper;
        }
        if is(&header::CONTENT_LENGTH) {
            lengths += 1;
            body_len = digits(field.value);
            no_body &= field.value == b"0";
        }
        if is(&header::CONNECTION) && has_token(field.value, "close") {
            keep_alive = false;
        }
        if publish {
            fields.push(FieldAt {
                name: span(name),
                value: span(field.value),
            });
        }
    }
    if !publish {
        if !no_body {
            return Parsed::ForHyper;
        }
        let fields = head.headers.iter().map(|f| (f.name.as_bytes(), f.value));
        let Some(request) = request(Method::GET, target.as_bytes(), fields) else {
            return Parsed::ForHyper;
        };
        return Parsed::Subscription {
            request: Box::new(request),
            keep_alive,
            head_len,
        };
    }
    // A publish needs exactly one valid length: without one, or with
    // several, hyper reads (or refuses) the body its own way.
    let (start, end) = span(target.as_bytes());
    match body_len.filter(|_| lengths == 1) {
        Some(body_len) => Parsed::Publish(PublishHead {
            target: start as usize..end as usize,
            keep_alive,
            head_len,
            body_len,
        }),
        None => Parsed::ForHyper,
    }
}

/// The query of a request target, as `Uri::query` has it.
pub(super) fn query(target: &str) -> Option<&str> {
    let (_, query) = target.split_once('?')?;
    query.split('#').next()
}

/// A `Content-Length` value: ASCII digits only (no sign, no spaces, no
/// list), and not so many that they could overflow.
fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// Whether a comma-separated header value lists `token`.
fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// The status line and header fields of a response, without the blank
/// line that ends them: framing fields are left for the caller.
pub(super) fn response_head(parts: &axum::http::response::Parts, keep_alive: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\n",
        parts.status.as_str(),
        parts.status.canonical_reason().unwrap_or("")
    );
    for (name, value) in &parts.headers {
        // Framing is this module's to decide.
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || name == header::CONNECTION
        {
            continue;
        }
        field(&mut out, name.as_str(), value.as_bytes());
    }
    if !parts.headers.contains_key(header::DATE) {
        DATE.with_borrow_mut(|date| field(&mut out, "date", date.now()));
    }
    if !keep_alive {
        field(&mut out, "connection", b"close");
    }
    out
}

/// The answer to a publish the server's own endpoint accepted
/// (`http::PublishEndpoint`), whole, in `out`: byte for byte what the
/// router's publish handler answers, as [`response_head`] writes it, but
/// for the date.
pub(super) fn published(out: &mut Vec<u8>, id: &str, vary_origin: bool, keep_alive: bool) {
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    field(out, "content-type", b"text/plain; charset=utf-8");
    if vary_origin {
        field(out, "vary", b"Origin");
    }
    DATE.with_borrow_mut(|date| field(out, "date", date.now()));
    if !keep_alive {
        field(out, "connection", b"close");
    }
    let _ = write!(out, "content-length: {}\r\n\r\n", id.len());
    out.extend_from_slice(id.as_bytes());
}

thread_local! {
    /// This thread's `Date` value, formatted again once a second only (as
    /// hyper does): every publish's answer carries one.
    static DATE: std::cell::RefCell<CachedDate> = const {
        std::cell::RefCell::new(CachedDate {
            second: None,
            value: String::new(),
        })
    };
}

/// The `Date` field's value for the current second.
struct CachedDate {
    second: Option<u64>,
    value: String,
}

impl CachedDate {
    fn now(&mut self) -> &[u8] {
        let now = SystemTime::now();
        let second = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if self.second != Some(second) {
            self.value = httpdate::fmt_http_date(now);
            self.second = Some(second);
        }
        self.value.as_bytes()
    }
}

/// Appends one body frame as a chunk (or the last chunk when the body
/// ended); `Ok(true)` when the body ended.
pub(super) fn push_chunk(
    out: &mut Vec<u8>,
    frame: Option<Result<Frame<Bytes>, axum::Error>>,
) -> io::Result<bool> {
    match frame {
        None => {
            out.extend_from_slice(b"0\r\n\r\n");
            Ok(true)
        }
        Some(Ok(frame)) => {
            // Trailers are not sent (event streams have none).
            if let Ok(data) = frame.into_data() {
                if !data.is_empty() {
                    // Size line, data and CRLF in one allocation at most.
                    out.reserve(data.len() + 20);
                    let _ = write!(out, "{:x}\r\n", data.len());
                    out.extend_from_slice(&data);
                    out.extend_from_slice(b"\r\n");
                }
            }
            Ok(false)
        }
        // Leave the chunked body unterminated so the client sees the cut.
        Some(Err(e)) => Err(io::Error::other(e)),
    }
}

pub(super) fn field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HUB_PATH;

    fn parsed(head: &str) -> Parsed {
        parse(head.as_bytes(), HUB_PATH, &mut Vec::new())
    }

    #[test]
    fn a_plain_get_of_the_hub_path_is_a_subscription() {
        let head =
            "GET /.well-known/mercure?topic=a HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 7\r\n\r\nNEXT";
        let Parsed::Subscription {
            request,
            keep_alive,
            head_len,
        } = parsed(head)
        else {
            panic!("not a subscription");
        };
        assert!(keep_alive);
        assert_eq!(head_len, head.len() - "NEXT".len());
        assert_eq!(request.uri().query(), Some("topic=a"));
        assert_eq!(request.headers()["last-event-id"], "7");
    }

    #[test]
    fn the_stream_path_is_where_the_application_mounted_the_hub() {
        let nested = "/hub/.well-known/mercure";
        let head = |path: &str| format!("GET {path}?topic=a HTTP/1.1\r\nHost: x\r\n\r\n");
        match parse(head(nested).as_bytes(), nested, &mut Vec::new()) {
            Parsed::Subscription { request, .. } => assert_eq!(request.uri().path(), nested),
            _ => panic!("the nested stream path is not a subscription"),
        }
        // The unmounted path is the application's (or a 404), for hyper.
        assert!(matches!(
            parse(head(HUB_PATH).as_bytes(), nested, &mut Vec::new()),
            Parsed::ForHyper
        ));
    }

    #[test]
    fn a_post_of_the_hub_path_with_a_length_is_a_publish_whose_fields_stay_in_the_buffer() {
        let head = "POST /.well-known/mercure?authorization=t HTTP/1.1\r\nHost: x\r\n\
                    Content-Length: 12\r\nCookie: a=1\r\ncookie: b=2\r\n\r\n";
        let buf = format!("{head}topic=a&data");
        let mut fields = Vec::new();
        let Parsed::Publish(publish) = parse(buf.as_bytes(), HUB_PATH, &mut fields) else {
            panic!("not a publish");
        };
        let target = "/.well-known/mercure?authorization=t";
        assert_eq!(
            publish,
            PublishHead {
                target: 5..5 + target.len(),
                keep_alive: true,
                head_len: head.len(),
                body_len: 12,
            }
        );
        let raw = RawHead {
            buf: buf.as_bytes(),
            fields: &fields,
        };
        // Names match whatever their case; every value, in order.
        let cookies: Vec<&[u8]> = raw.all(&header::COOKIE).collect();
        assert_eq!(cookies, [&b"a=1"[..], b"b=2"]);
        assert_eq!(raw.text(&header::CONTENT_LENGTH), Some("12"));
        assert_eq!(raw.first(&header::AUTHORIZATION), None);
        // The same fields as the router gets them.
        let request = raw
            .request(Method::POST, publish.target)
            .expect("a request");
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.uri().query(), Some("authorization=t"));
        assert_eq!(request.headers().len(), 4);
        assert_eq!(request.headers()["content-length"], "12");
        let empty =
            "POST /.well-known/mercure HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        assert!(matches!(
            parsed(empty),
            Parsed::Publish(PublishHead {
                body_len: 0,
                keep_alive: false,
                ..
            })
        ));
    }

    #[test]
    fn the_query_is_uri_s() {
        for target in [
            "/.well-known/mercure",
            "/.well-known/mercure?",
            "/.well-known/mercure?a=b",
            "/.well-known/mercure?a=b?c#d",
            "/.well-known/mercure?a=%20&b",
        ] {
            let uri: Uri = target.parse().unwrap();
            assert_eq!(query(target), uri.query(), "{target}");
        }
    }

    #[test]
    fn a_query_http_refuses_is_hyper_s() {
        let head = "POST /.well-known/mercure?a<b HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
        if "/.well-known/mercure?a<b".parse::<Uri>().is_err() {
            assert!(matches!(parsed(head), Parsed::ForHyper));
        }
        let head = "POST /.well-known/mercure?a=b HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(parsed(head), Parsed::Publish(_)));
    }

    #[test]
    fn connection_close_is_honoured() {
        let head = "GET /.well-known/mercure HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n";
        assert!(matches!(
            parsed(head),
            Parsed::Subscription {
                keep_alive: false,
                ..
            }
        ));
    }

    #[test]
    fn an_incomplete_head_asks_for_more() {
        assert!(matches!(
            parsed("GET /.well-known/mercure HTTP/1.1\r\nHost:"),
            Parsed::Partial
        ));
    }

    #[test]
    fn everything_else_goes_to_hyper() {
        for head in [
            "PUT /.well-known/mercure HTTP/1.1\r\nContent-Length: 3\r\n\r\na=b",
            "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\na=b",
            "POST /.well-known/mercure HTTP/1.1\r\n\r\n",
            "POST /.well-known/mercure HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\na=b",
            "POST /.well-known/mercure HTTP/1.1\r\nContent-Length: +3\r\n\r\na=b",
            "POST /.well-known/mercure HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\na=b",
            "POST /.well-known/mercure HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "POST /.well-known/mercure HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\na=b\r\n0\r\n\r\n",
            "POST /.well-known/mercure HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n",
            "POST /.well-known/mercure HTTP/1.0\r\nContent-Length: 3\r\n\r\na=b",
            "GET / HTTP/1.1\r\n\r\n",
            "GET /.well-known/mercure/subscriptions HTTP/1.1\r\n\r\n",
            "GET /.well-known/mercure HTTP/1.0\r\n\r\n",
            "GET /.well-known/mercure HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
            "GET /.well-known/mercure HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /.well-known/mercure HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            "GET /.well-known/mercure HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "GET /.well-known/mercure HTTP/1.1\r\nBad Header: x\r\n\r\n",
        ] {
            assert!(matches!(parsed(head), Parsed::ForHyper), "{head:?}");
        }
    }

    #[test]
    fn the_date_is_the_current_second_in_http_format() {
        let mut date = CachedDate {
            second: None,
            value: String::new(),
        };
        let before = SystemTime::now();
        let value = String::from_utf8(date.now().to_vec()).unwrap();
        let parsed = httpdate::parse_http_date(&value).unwrap();
        let after = SystemTime::now();
        // Whole seconds: the date is the second `before` or `after` was in.
        let secs = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        assert!(
            (secs(before)..=secs(after)).contains(&secs(parsed)),
            "{value}"
        );
        // A value of another second is formatted again.
        date.second = Some(0);
        date.value = "stale".into();
        let again = String::from_utf8(date.now().to_vec()).unwrap();
        assert!(httpdate::parse_http_date(&again).is_ok(), "{again}");
    }

    #[test]
    fn chunks_are_hex_sized_and_the_end_is_the_last_chunk() {
        let mut out = Vec::new();
        let frame = Frame::data(Bytes::from(vec![b'x'; 26]));
        assert!(!push_chunk(&mut out, Some(Ok(frame))).unwrap());
        assert!(push_chunk(&mut out, None).unwrap());
        let mut expected = b"1a\r\n".to_vec();
        expected.extend_from_slice(&[b'x'; 26]);
        expected.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(out, expected);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_without_panicking(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = parse(&bytes, HUB_PATH, &mut Vec::new());
        }

        #[test]
        fn a_subscription_head_keeps_its_target_and_fields(
            query in "[a-zA-Z0-9%=&._~-]{0,64}",
            fields in proptest::collection::vec(("[a-z][a-z0-9-]{0,15}", "[ -~]{0,40}"), 0..8),
            rest in "[ -~]{0,32}",
        ) {
            let fields: Vec<(String, String)> = fields
                .into_iter()
                .filter(|(name, _)| {
                    !matches!(
                        name.as_str(),
                        "content-length" | "transfer-encoding" | "upgrade" | "expect" | "connection"
                    )
                })
                .map(|(name, value)| (name, value.trim().to_owned()))
                .collect();
            let mut head = format!("GET {HUB_PATH}?{query} HTTP/1.1\r\n");
            for (name, value) in &fields {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let bytes = format!("{head}{rest}");
            match parse(bytes.as_bytes(), HUB_PATH, &mut Vec::new()) {
                Parsed::Subscription { request, keep_alive, head_len } => {
                    proptest::prop_assert!(keep_alive);
                    proptest::prop_assert_eq!(head_len, head.len());
                    proptest::prop_assert_eq!(request.uri().path(), HUB_PATH);
                    proptest::prop_assert_eq!(request.uri().query().unwrap_or(""), query.as_str());
                    for (name, value) in &fields {
                        let got: Vec<&[u8]> = request.headers().get_all(name.as_str()).iter().map(|v| v.as_bytes()).collect();
                        proptest::prop_assert!(got.contains(&value.as_bytes()), "{name}: {value:?} not in {got:?}");
                    }
                }
                _ => proptest::prop_assert!(false, "not a subscription: {bytes:?}"),
            }
        }
    }
}
