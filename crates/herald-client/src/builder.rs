//! Configuring an [`EventSource`]: the request, the reconnection policy and
//! the limits, checked once in [`Builder::build`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use herald_sse::Limits;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use http::{HeaderMap, Method, Uri};

use crate::error::Error;
use crate::event_source::EventSource;
use crate::policy::ReconnectPolicy;

/// Everything a connection needs, fixed when the source is built.
#[derive(Debug)]
pub(crate) struct Config {
    /// The URL given by the user: every reconnection goes here, whatever
    /// redirects the previous connection followed.
    pub(crate) url: Uri,
    pub(crate) method: Method,
    /// The builder's headers. The driver sends its own copy, which
    /// `EventSource::set_headers` and `restart_with_headers` change.
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) last_event_id: String,
    pub(crate) policy: ReconnectPolicy,
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) max_redirects: u32,
    pub(crate) comments: bool,
    pub(crate) limits: Limits,
    /// A connection that stays open this long counts as healthy even if it
    /// delivered no event, and resets the backoff.
    pub(crate) healthy_after: Duration,
    /// TLS settings replacing the default (Mozilla roots, ring provider).
    pub(crate) tls: Option<rustls::ClientConfig>,
}

/// Builds an [`EventSource`] with custom headers, method, body, initial last
/// event id, reconnection policy, timeouts and limits.
///
/// ```
/// use std::time::Duration;
/// use herald_client::{EventSource, ReconnectPolicy};
///
/// let source = EventSource::builder("https://hub.example.com/.well-known/mercure?topic=news")
///     .bearer_token("eyJhbGciOi...")
///     .header("X-Client", "docs")
///     .last_event_id("urn:uuid:1234")
///     .read_timeout(Duration::from_secs(90))
///     .reconnect(ReconnectPolicy::default().max_attempts(Some(20)))
///     .build()?;
/// # drop(source);
/// # Ok::<(), herald_client::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until .build()"]
pub struct Builder {
    url: String,
    method: Method,
    headers: HeaderMap,
    /// The first invalid header given, reported by `build`.
    bad_header: Option<String>,
    body: Bytes,
    last_event_id: String,
    policy: ReconnectPolicy,
    read_timeout: Option<Duration>,
    max_redirects: u32,
    comments: bool,
    limits: Limits,
    healthy_after: Duration,
    tls: Option<rustls::ClientConfig>,
}

impl Builder {
    pub(crate) fn new(url: &str) -> Builder {
        Builder {
            url: url.to_owned(),
            method: Method::GET,
            headers: HeaderMap::new(),
            bad_header: None,
            body: Bytes::new(),
            last_event_id: String::new(),
            policy: ReconnectPolicy::default(),
            read_timeout: None,
            max_redirects: 10,
            comments: false,
            limits: Limits::default(),
            healthy_after: Duration::from_secs(30),
            tls: None,
        }
    }

    /// Adds a request header (sent on every connection). An invalid name or
    /// value makes [`Builder::build`] fail with [`Error::InvalidHeader`].
    ///
    /// `Accept`, `Cache-Control` and `Last-Event-ID` are always set by the
    /// client and override values given here.
    pub fn header(mut self, name: &str, value: &str) -> Builder {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => {
                self.headers.append(name, value);
            }
            _ => {
                self.bad_header.get_or_insert_with(|| name.to_owned());
            }
        }
        self
    }

    /// Adds all these headers, every value of each (as [`Builder::header`]
    /// does, they add to the headers already given rather than replace them).
    pub fn headers(mut self, headers: HeaderMap) -> Builder {
        for (name, value) in &headers {
            self.headers.append(name, value.clone());
        }
        self
    }

    /// Sends `Authorization: Bearer <token>`. The header is dropped when a
    /// redirect leads to another origin.
    pub fn bearer_token(mut self, token: &str) -> Builder {
        match HeaderValue::from_str(&format!("Bearer {token}")) {
            Ok(mut value) => {
                value.set_sensitive(true);
                self.headers.insert(AUTHORIZATION, value);
            }
            Err(_) => {
                self.bad_header
                    .get_or_insert_with(|| "Authorization".to_owned());
            }
        }
        self
    }

    /// The request method (default `GET`). Some SSE APIs stream the answer
    /// to a `POST`.
    pub fn method(mut self, method: Method) -> Builder {
        self.method = method;
        self
    }

    /// The request body, sent on every connection (default empty). Set the
    /// `Content-Type` with [`Builder::header`].
    pub fn body(mut self, body: impl Into<Bytes>) -> Builder {
        self.body = body.into();
        self
    }

    /// The last event id to start from, e.g. one saved before a restart: the
    /// first request then carries `Last-Event-ID`. Empty (the default) means
    /// none.
    pub fn last_event_id(mut self, id: &str) -> Builder {
        self.last_event_id = id.to_owned();
        self
    }

    /// The reconnection policy (default [`ReconnectPolicy::default`]).
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Builder {
        self.policy = policy;
        self
    }

    /// Reconnects when no byte arrives for this long, heartbeat comments
    /// included; it also bounds the wait for the response headers. Off by
    /// default; set it above the server's heartbeat interval (Mercure hubs
    /// send one every 40 s by default).
    pub fn read_timeout(mut self, timeout: Duration) -> Builder {
        self.read_timeout = Some(timeout);
        self
    }

    /// How many redirects (301, 302, 303, 307, 308) one connection may
    /// follow (default 10). Reconnections always start again from the
    /// original URL.
    pub fn max_redirects(mut self, limit: u32) -> Builder {
        self.max_redirects = limit;
        self
    }

    /// Also yield comment lines (heartbeats) as [`Item::Comment`](crate::Item).
    pub fn comments(mut self, yes: bool) -> Builder {
        self.comments = yes;
        self
    }

    /// Bounds on what the parser buffers (default 16 MiB per line and per
    /// event). Input past them is skipped and reported as
    /// [`Item::Dropped`](crate::Item).
    pub fn limits(mut self, limits: Limits) -> Builder {
        self.limits = limits;
        self
    }

    /// How long a connection must stay open, when it delivers no event, to
    /// count as healthy and reset the backoff (default 30 s). A connection
    /// that delivers an event is healthy at once.
    pub fn healthy_after(mut self, duration: Duration) -> Builder {
        self.healthy_after = duration;
        self
    }

    /// Uses this TLS configuration instead of the default one (the Mozilla
    /// root certificates with rustls' `ring` provider): e.g. to trust a
    /// private certificate authority, or to present a client certificate.
    /// The ALPN protocols are set by the client (`h2`, then `http/1.1`).
    pub fn tls_config(mut self, config: rustls::ClientConfig) -> Builder {
        self.tls = Some(config);
        self
    }

    /// Checks the configuration and creates the source. Nothing connects
    /// until the stream is first polled.
    pub fn build(self) -> Result<EventSource, Error> {
        if let Some(name) = self.bad_header {
            return Err(Error::InvalidHeader { name });
        }
        let url = parse_url(&self.url)?;
        let config = Config {
            url,
            method: self.method,
            headers: self.headers,
            body: self.body,
            last_event_id: self.last_event_id,
            policy: self.policy,
            read_timeout: self.read_timeout,
            max_redirects: self.max_redirects,
            comments: self.comments,
            limits: self.limits,
            healthy_after: self.healthy_after,
            tls: self.tls,
        };
        EventSource::from_config(Arc::new(config))
    }
}

/// Parses an absolute `http` or `https` URL.
pub(crate) fn parse_url(url: &str) -> Result<Uri, Error> {
    let invalid = |reason: &str| Error::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        Some(other) => return Err(invalid(&format!("scheme {other:?} is not http or https"))),
        None => {
            return Err(invalid(
                "not an absolute URL (expected http://... or https://...)",
            ))
        }
    }
    if uri.authority().is_none() {
        return Err(invalid("no host"));
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_appends_every_value() {
        let mut map = HeaderMap::new();
        map.append("x-a", HeaderValue::from_static("1"));
        map.append("x-a", HeaderValue::from_static("2"));
        map.append("x-b", HeaderValue::from_static("3"));
        let builder = Builder::new("http://a.test/")
            .header("x-a", "0")
            .headers(map);
        let values = |name: &str| -> Vec<&str> {
            builder
                .headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect()
        };
        assert_eq!(values("x-a"), ["0", "1", "2"]);
        assert_eq!(values("x-b"), ["3"]);
    }
}
