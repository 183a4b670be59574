//! One connection attempt: build the request, follow redirects, check the
//! response, and hand back the body to be parsed.
//!
//! This is the part of the EventSource algorithm that decides between
//! "open", "reconnect later" and "fail for good": only a `200` with a
//! `text/event-stream` content type opens the stream; a transport error is
//! retryable; every other answer is fatal.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    HeaderValue, ACCEPT, AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, COOKIE,
    LOCATION,
};
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::builder::Config;
use crate::error::Error;
use crate::event_source::Opened;

/// The HTTP client every connection of one source goes through.
pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An HTTP/1.1 and HTTP/2 client, TLS by rustls: `tls` when given, else
/// the `ring` provider and the Mozilla root certificates.
pub(crate) fn http_client(tls: Option<rustls::ClientConfig>) -> Result<HttpClient, Error> {
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match tls {
        Some(config) => builder.with_tls_config(config),
        None => {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            builder
                .with_provider_and_webpki_roots(provider)
                .map_err(|e| Error::Connect(Box::new(e)))?
        }
    };
    let connector = builder
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// The last `Last-Event-ID` header value to send, if any.
fn last_event_id_header(id: &str) -> Option<HeaderValue> {
    if id.is_empty() {
        return None;
    }
    // Ids are UTF-8 without CR, LF or NUL; other control characters cannot
    // travel in a header, and such an id is then not sent.
    HeaderValue::from_bytes(id.as_bytes()).ok()
}

/// Connects to the configured URL with these headers (the builder's, with
/// any later changes), following redirects, and returns the body of a valid
/// event stream with what the server said when it opened.
pub(crate) async fn open(
    client: &HttpClient,
    config: &Config,
    headers: &HeaderMap,
    last_event_id: &str,
) -> Result<(Incoming, Opened), Error> {
    let mut url = config.url.clone();
    let mut method = config.method.clone();
    let mut body = config.body.clone();
    let mut headers = headers.clone();
    headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.remove("last-event-id");
    // What `Opened` reports as sent: the id only when it went out as a header.
    let sent_last_event_id = match last_event_id_header(last_event_id) {
        Some(value) => {
            headers.insert("last-event-id", value);
            last_event_id.to_owned()
        }
        None => String::new(),
    };
    let mut redirects = 0;
    loop {
        let mut request = Request::new(Full::new(body.clone()));
        *request.method_mut() = method.clone();
        *request.uri_mut() = url.clone();
        *request.headers_mut() = headers.clone();
        let response = with_timeout(config.read_timeout, client.request(request))
            .await?
            .map_err(|e| Error::Connect(Box::new(e)))?;

        let status = response.status();
        if is_redirect(status) {
            if redirects >= config.max_redirects {
                return Err(Error::TooManyRedirects {
                    limit: config.max_redirects,
                });
            }
            redirects += 1;
            let location = response
                .headers()
                .get(LOCATION)
                .ok_or_else(|| bad_redirect(status, "no Location header"))?
                .to_str()
                .map_err(|_| bad_redirect(status, "Location is not ASCII"))?;
            let next = resolve(&url, location).map_err(|reason| bad_redirect(status, &reason))?;
            let becomes_get = status == StatusCode::SEE_OTHER
                || (method == Method::POST
                    && (status == StatusCode::MOVED_PERMANENTLY || status == StatusCode::FOUND));
            if becomes_get && method != Method::HEAD {
                method = Method::GET;
                body = Bytes::new();
                headers.remove(CONTENT_TYPE);
                headers.remove(CONTENT_LENGTH);
            }
            if !same_origin(&url, &next) {
                headers.remove(AUTHORIZATION);
                headers.remove(COOKIE);
            }
            url = next;
            continue;
        }
        if status != StatusCode::OK {
            let body = snippet(response.into_body()).await;
            return Err(Error::Status { status, body });
        }
        let content_type = response.headers().get(CONTENT_TYPE);
        if !content_type.is_some_and(is_event_stream) {
            return Err(Error::ContentType {
                content_type: content_type
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            });
        }
        let (parts, body) = response.into_parts();
        let opened = Opened {
            url,
            headers: parts.headers,
            sent_last_event_id,
        };
        return Ok((body, opened));
    }
}

/// Runs `future`, failing with [`Error::ReadTimeout`] when it takes longer
/// than `limit` (no limit when `None`).
pub(crate) async fn with_timeout<F: Future>(
    limit: Option<Duration>,
    future: F,
) -> Result<F::Output, Error> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, future)
            .await
            .map_err(|_| Error::ReadTimeout(limit)),
        None => Ok(future.await),
    }
}

fn bad_redirect(status: StatusCode, reason: &str) -> Error {
    Error::BadRedirect {
        status,
        reason: reason.to_owned(),
    }
}

/// The statuses a browser follows as redirects.
fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Whether the MIME type's essence is `text/event-stream`; parameters (and a
/// bare trailing `;`) are ignored, and so is case.
pub(crate) fn is_event_stream(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    let essence = bytes.split(|b| *b == b';').next().unwrap_or(bytes);
    essence
        .trim_ascii()
        .eq_ignore_ascii_case(b"text/event-stream")
}

/// Reads up to 1 KiB of an error response, waiting at most a second: the
/// server's explanation, for the error message.
async fn snippet(mut body: Incoming) -> String {
    const LIMIT: usize = 1024;
    let mut out = Vec::new();
    let read = async {
        while out.len() < LIMIT {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        out.extend_from_slice(&data);
                    }
                }
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), read).await;
    out.truncate(LIMIT);
    String::from_utf8_lossy(&out).into_owned()
}

fn same_origin(a: &Uri, b: &Uri) -> bool {
    a.scheme() == b.scheme() && a.authority() == b.authority()
}

/// Resolves a `Location` value against the URL that answered with it, as
/// RFC 3986 §5.2.2 says (the fragment is dropped; an empty `Location` is an
/// error rather than the base URL).
pub(crate) fn resolve(base: &Uri, location: &str) -> Result<Uri, String> {
    let location = location.trim();
    let location = location.split('#').next().unwrap_or(location);
    if location.is_empty() {
        return Err("empty Location".to_owned());
    }
    let (path, query) = match location.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (location, None),
    };
    let base_scheme = base.scheme_str().unwrap_or("http");
    let base_authority = base.authority().map_or("", |a| a.as_str());
    let absolute = if let Some((scheme, rest)) = split_scheme(path) {
        // An absolute URL: only its path needs normalising.
        let (authority, path) = split_authority(rest);
        format!("{scheme}:{authority}{}", remove_dot_segments(path))
    } else if path.starts_with("//") {
        let (authority, path) = split_authority(path);
        format!("{base_scheme}:{authority}{}", remove_dot_segments(path))
    } else if path.is_empty() {
        // Only a query: the base path with the new query.
        format!("{base_scheme}://{base_authority}{}", base.path())
    } else if path.starts_with('/') {
        format!(
            "{base_scheme}://{base_authority}{}",
            remove_dot_segments(path)
        )
    } else {
        let base_path = base.path();
        let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
        let dir = if dir.is_empty() { "/" } else { dir };
        format!(
            "{base_scheme}://{base_authority}{}",
            remove_dot_segments(&format!("{dir}{path}"))
        )
    };
    let absolute = match query {
        Some(query) => format!("{absolute}?{query}"),
        None => absolute,
    };
    let uri: Uri = absolute
        .parse()
        .map_err(|e: http::uri::InvalidUri| format!("Location {location:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") if uri.authority().is_some() => Ok(uri),
        _ => Err(format!("Location {location:?} is not an http(s) URL")),
    }
}

/// Splits `scheme:rest` when `reference` starts with a URI scheme
/// (`ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`) and a `:`; `None` for a
/// relative reference, even one with `://` further on (`/a?next=http://b`).
fn split_scheme(reference: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = reference.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some((scheme, rest))
}

/// Splits `//authority/path` into `//authority` and `/path`; a string not
/// starting with `//` has no authority and is all path.
fn split_authority(s: &str) -> (&str, &str) {
    match s.strip_prefix("//") {
        Some(rest) => s.split_at(2 + rest.find('/').unwrap_or(rest.len())),
        None => ("", s),
    }
}

/// RFC 3986 §5.2.4: removes the `.` and `..` segments of a path.
fn remove_dot_segments(path: &str) -> String {
    let mut input = path;
    let mut output = String::with_capacity(path.len());
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../") {
            input = rest;
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest;
        } else if input.starts_with("/./") {
            input = &input[2..];
        } else if input == "/." {
            input = "/";
        } else if input.starts_with("/../") {
            input = &input[3..];
            pop_segment(&mut output);
        } else if input == "/.." {
            input = "/";
            pop_segment(&mut output);
        } else if input == "." || input == ".." {
            input = "";
        } else {
            // Move the first segment, with its leading `/` if any.
            let end = input.bytes().skip(1).position(|b| b == b'/');
            let end = end.map_or(input.len(), |i| i + 1);
            output.push_str(&input[..end]);
            input = &input[end..];
        }
    }
    output
}

/// Removes the last segment of `output`, and the `/` before it.
fn pop_segment(output: &mut String) {
    let cut = output.rfind('/').unwrap_or(0);
    output.truncate(cut);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_essence_ignores_parameters_and_case() {
        for ok in [
            "text/event-stream",
            "text/event-stream;",
            "text/event-stream; charset=utf-8",
            "Text/Event-Stream ;x=y",
            " text/event-stream ",
        ] {
            assert!(is_event_stream(&HeaderValue::from_static(ok)), "{ok}");
        }
        for bad in [
            "text/plain",
            "text/event-streamx",
            "text/event",
            "",
            "text/html;text/event-stream",
        ] {
            assert!(!is_event_stream(&HeaderValue::from_static(bad)), "{bad}");
        }
    }

    #[test]
    fn locations_resolve_against_the_current_url() {
        let base: Uri = "http://a.test:8080/dir/sse?x=1".parse().unwrap();
        let cases = [
            ("/other", "http://a.test:8080/other"),
            ("next", "http://a.test:8080/dir/next"),
            ("?y=2", "http://a.test:8080/dir/sse?y=2"),
            ("//b.test/p", "http://b.test/p"),
            ("https://c.test/q#frag", "https://c.test/q"),
        ];
        for (location, want) in cases {
            assert_eq!(
                resolve(&base, location).unwrap().to_string(),
                want,
                "{location}"
            );
        }
        assert!(resolve(&base, "ftp://x/y").is_err());
        assert!(resolve(&base, "").is_err());
    }

    #[test]
    fn a_url_inside_a_relative_location_does_not_make_it_absolute() {
        let base: Uri = "http://a.test:8080/dir/sse?x=1".parse().unwrap();
        let cases = [
            (
                "/login?next=https://b/c",
                "http://a.test:8080/login?next=https://b/c",
            ),
            (
                "next?url=http://b.test/x",
                "http://a.test:8080/dir/next?url=http://b.test/x",
            ),
            ("?r=https://b/c", "http://a.test:8080/dir/sse?r=https://b/c"),
            ("p/q:r", "http://a.test:8080/dir/p/q:r"),
            ("HTTPS://c.test/q", "https://c.test/q"),
            (
                "https://c.test?next=http://b",
                "https://c.test/?next=http://b",
            ),
        ];
        for (location, want) in cases {
            assert_eq!(
                resolve(&base, location).unwrap().to_string(),
                want,
                "{location}"
            );
        }
        // A scheme is `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` and a `:`.
        for other in [
            "mailto:a@b.test",
            "web+x.y-z://a.test/",
            "http:no-authority",
        ] {
            assert!(resolve(&base, other).is_err(), "{other}");
        }
    }

    #[test]
    fn dot_segments_are_removed() {
        let base: Uri = "http://a.test/a/b/c?x=1".parse().unwrap();
        let cases = [
            ("../d", "http://a.test/a/d"),
            ("./d", "http://a.test/a/b/d"),
            ("..", "http://a.test/a/"),
            (".", "http://a.test/a/b/"),
            ("../../../../d", "http://a.test/d"),
            ("/x/./y/../z", "http://a.test/x/z"),
            ("d/..?q=../x", "http://a.test/a/b/?q=../x"),
            ("//b.test/p/../q", "http://b.test/q"),
            ("https://c.test/p/./q/../../r", "https://c.test/r"),
        ];
        for (location, want) in cases {
            assert_eq!(
                resolve(&base, location).unwrap().to_string(),
                want,
                "{location}"
            );
        }
        // The RFC 3986 §5.4 examples that this resolver supports.
        for (input, want) in [
            ("/a/b/c/./../../g", "/a/g"),
            ("mid/content=5/../6", "mid/6"),
            ("/../g", "/g"),
            ("/a/..", "/"),
            ("/a/g.", "/a/g."),
            ("/a/..g", "/a/..g"),
        ] {
            assert_eq!(remove_dot_segments(input), want, "{input}");
        }
    }
}
