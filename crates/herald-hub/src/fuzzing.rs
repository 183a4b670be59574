//! Entry points for the fuzz targets in `crates/herald-hub/fuzz/`.
//!
//! **Not an API.** The fuzz crate is another crate, so it can only call
//! what herald-hub exports; these are thin wrappers over the crate-private
//! parts of the HTTP surface (the update rules and encoding, matcher
//! compilation, token extraction, the lean HTTP/1.1 head parser). The
//! module exists only with the non-default `fuzzing` feature (and in the
//! crate's own tests, which keep it compiling and linted in CI), is hidden
//! from the docs, and may change or vanish in any release. The parsers and
//! the template matcher are re-exported here as they are; the token
//! verifiers (`auth::JwtVerifier`, `access_token::AccessTokenVerifier`)
//! are public anyway.

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request};

use crate::history::NewEntry;
use crate::matcher::{HubUrl, MatchType, Matcher, Topic};
use crate::protocol::{Protocol, PublishForm, Revision};
use crate::server::http1;
use crate::Update;

pub use crate::protocol::{parse_publish, parse_subscribe, ProtocolError, RequestedMatcher};
pub use crate::topic::TopicMatcher;

/// Checks `form` against the rules every update follows and encodes it,
/// as [`Hub::update`](crate::Hub::update) does: what history would store.
pub fn update(
    form: PublishForm,
    hub_url: &HubUrl,
    strict: bool,
) -> Result<NewEntry, ProtocolError> {
    Update::new(form, hub_url, strict).map(Update::into_entry)
}

/// A compiled topic matcher, as a subscription or a grant holds it.
pub struct CompiledMatcher(Matcher);

impl CompiledMatcher {
    /// A draft-07 selector: `*`, a URI template, or an exact topic.
    pub fn selector(selector: &str, templates: &TopicMatcher) -> CompiledMatcher {
        CompiledMatcher(Matcher::selector(selector, templates))
    }

    /// A draft-08 matcher; fails on a URL pattern that does not compile.
    pub fn typed(
        match_type: MatchType,
        value: &str,
        base: &HubUrl,
    ) -> Result<CompiledMatcher, String> {
        Matcher::typed(match_type, value, base).map(CompiledMatcher)
    }

    /// `any`, `exact`, `template` or `urlpattern`.
    pub fn kind(&self) -> &'static str {
        match self.0 {
            Matcher::Any => "any",
            Matcher::Exact(_) => "exact",
            Matcher::Template { .. } => "template",
            Matcher::UrlPattern(_) => "urlpattern",
        }
    }

    /// Whether the matcher selects `topic`.
    pub fn matches(&self, topic: &str, base: &HubUrl) -> bool {
        self.0.matches(&Topic::new(topic, base))
    }
}

/// Whether each of `matchers` selects `topic`, sharing one [`Topic`] (and
/// so its URL components, worked out once) as fan-out does.
pub fn matches_each(matchers: &[CompiledMatcher], topic: &str, base: &HubUrl) -> Vec<bool> {
    let topic = Topic::new(topic, base);
    matchers.iter().map(|m| m.0.matches(&topic)).collect()
}

/// Where [`presented_token`] found a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// `Authorization: Bearer`.
    Header,
    /// The draft-07 `authorization` query parameter.
    Query,
    /// The cookie of this revision.
    Cookie(Revision),
}

/// The token a request with `headers` and the raw `query` presents to a
/// hub speaking `protocol`, and where it was found; the error is the
/// message the client would get.
pub fn presented_token(
    headers: &HeaderMap,
    query: Option<&str>,
    protocol: Protocol,
) -> Result<Option<(String, TokenSource)>, String> {
    use crate::http::token::{self, TokenSource as Source};
    match token::presented_token(headers, query, protocol) {
        Ok(found) => Ok(found.map(|p| {
            let source = match p.source {
                Source::Header => TokenSource::Header,
                Source::Query => TokenSource::Query,
                Source::Cookie(revision) => TokenSource::Cookie(revision),
            };
            (p.token.into_owned(), source)
        })),
        Err(e) => Err(e.to_string()),
    }
}

/// Most header fields the lean HTTP/1.1 path reads in one head.
pub const MAX_HEADERS: usize = http1::MAX_HEADERS;

/// What the lean HTTP/1.1 path makes of the start of a connection.
pub enum Head {
    /// Not a whole head yet: read more.
    Partial,
    /// Left to hyper.
    ForHyper,
    /// A subscription served by the lean path.
    Subscription {
        /// The request handed to the router.
        request: Box<Request<Body>>,
        /// Whether the connection stays open after the stream.
        keep_alive: bool,
        /// How many bytes of the buffer the head took.
        head_len: usize,
    },
    /// A publish served by the lean path (its body follows the head).
    Publish {
        /// The request as the router would get it, once its body is read
        /// (`None` when `http` refuses a field, which hyper then answers).
        request: Option<Box<Request<Body>>>,
        /// Whether the connection stays open after the answer.
        keep_alive: bool,
        /// How many bytes of the buffer the head took.
        head_len: usize,
        /// The body's length.
        body_len: u64,
    },
}

/// Parses the start of a connection as the lean HTTP/1.1 path does.
pub fn parse_head(buf: &[u8]) -> Head {
    let mut fields = Vec::new();
    match http1::parse(buf, crate::HUB_PATH, &mut fields) {
        http1::Parsed::Partial => Head::Partial,
        http1::Parsed::ForHyper => Head::ForHyper,
        http1::Parsed::Subscription {
            request,
            keep_alive,
            head_len,
        } => Head::Subscription {
            request,
            keep_alive,
            head_len,
        },
        http1::Parsed::Publish(head) => {
            let raw = http1::RawHead {
                buf,
                fields: &fields,
            };
            Head::Publish {
                request: raw.request(Method::POST, head.target).map(Box::new),
                keep_alive: head.keep_alive,
                head_len: head.head_len,
                body_len: head.body_len,
            }
        }
    }
}

// The wrappers on a few of the fuzz corpora's seeds: they compile, are
// linted with the rest, and say what the targets rely on.
#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::protocol::{parse_publish, ProtocolLimits};

    #[test]
    fn an_update_is_encoded_once() {
        let form = parse_publish(
            b"topic=a&data=x%0Ay&id=1&type=t",
            &ProtocolLimits::default(),
        )
        .unwrap();
        let entry = update(form, &HubUrl::default(), true).unwrap();
        assert_eq!(entry.id, "1");
        assert_eq!(&entry.frame[..], b"event: t\nid: 1\ndata: x\ndata: y\n\n");
    }

    #[test]
    fn matchers_say_their_kind() {
        let base = HubUrl::default();
        let templates = TopicMatcher::new(4);
        let m = CompiledMatcher::selector("/books/{id}", &templates);
        assert_eq!(m.kind(), "template");
        assert!(m.matches("/books/1", &base));
        let m = CompiledMatcher::typed(MatchType::UrlPattern, "/books/:id", &base).unwrap();
        assert_eq!(m.kind(), "urlpattern");
        assert_eq!(
            matches_each(&[m], "http://localhost/books/1", &base),
            [true]
        );
    }

    #[test]
    fn tokens_and_heads() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer abc"));
        assert_eq!(
            presented_token(&headers, None, Protocol::Both),
            Ok(Some(("abc".into(), TokenSource::Header)))
        );
        let head = b"GET /.well-known/mercure?match=a HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(matches!(
            parse_head(head),
            Head::Subscription { head_len, .. } if head_len == head.len()
        ));
    }
}
