//! Every way a request can be refused: one variant per cause, each with
//! its status, a message that tells the client what to fix, and, for the
//! token failures, the RFC 6750 challenge built here and nowhere else.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::auth::Refused;
use crate::history::HistoryError;
use crate::protocol::{ProtocolError, Revision};
use crate::Hub;

/// A refused request.
#[derive(Debug)]
pub(crate) enum Rejection {
    /// 400: a subscription the protocol refuses (a parameter or header,
    /// named in the message), past a limit too (draft-08 §Subscription).
    BadSubscription(ProtocolError),
    /// 400, or 413 past a limit (draft-08 §Publication): an update the
    /// protocol refuses, the field named in the message.
    BadUpdate(ProtocolError),
    /// 400: the request body could not be read, or is not UTF-8.
    UnreadableBody(String),
    /// 400: a subscription API path that cannot name a subscription.
    BadPath(String),
    /// 400: the subscription API on a hub that does not track
    /// subscriptions.
    SubscriptionsOff,
    /// 400 with `error="invalid_request"`: the token is presented in a way
    /// the hub does not accept.
    InvalidRequest(String),
    /// 401 without an error code: the operation needs a token and none was
    /// presented (RFC 6750 §3.1).
    TokenMissing(String),
    /// 401 with `error="invalid_token"`: the token failed validation.
    InvalidToken(String),
    /// 403 with `error="insufficient_scope"`: a valid token that does not
    /// allow this.
    InsufficientScope(String),
    /// 403 without a challenge: refused whatever the token (a cookie
    /// publish from an origin that may not publish).
    Forbidden(String),
    /// 404: nothing there (an unknown subscription).
    NotFound(String),
    /// 413: body over the limit.
    TooLarge(usize),
    /// 415: not a form.
    UnsupportedMediaType,
    /// 429, with `Retry-After` (seconds): a limit of the hub's is reached
    /// for now.
    TooManyRequests {
        /// What limit, and what to do.
        message: String,
        /// Seconds to wait.
        retry_after: u64,
    },
    /// 503: the hub is shutting down.
    ShuttingDown,
    /// 503: history cannot be read, so a replay cannot be served.
    HistoryUnavailable(HistoryError),
    /// 503: history could not store an update; nothing was dispatched.
    NotStored(HistoryError),
    /// 503: the keys of the token's issuer cannot be fetched now (not the
    /// token's fault: no `invalid_token`).
    KeysUnavailable(String),
    /// 503: this node is still loading the cluster's subscriptions.
    SubscriptionsLoading,
    /// 503 with `Retry-After` (seconds): the hub serves as many streams as
    /// it may.
    AtCapacity {
        /// What limit, and what to do.
        message: String,
        /// Seconds to wait.
        retry_after: u64,
    },
}

impl From<Refused> for Rejection {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::Invalid(m) => Rejection::InvalidToken(m),
            Refused::KeysUnavailable(m) => Rejection::KeysUnavailable(m),
        }
    }
}

impl Rejection {
    /// The response, with the challenge pointing at `hub`'s protected
    /// resource metadata when the hub publishes it (draft-08 §Error
    /// Responses).
    pub(crate) fn respond(self, hub: &Hub) -> Response {
        let config = &hub.shared.config;
        let metadata = config
            .protocol
            .speaks(Revision::Draft08)
            .then(|| config.hub_url.metadata_url());
        let mut retry_after = None;
        let (status, error, message) = match self {
            Rejection::BadUpdate(e) if e.is_too_large() => {
                (StatusCode::PAYLOAD_TOO_LARGE, None, e.to_string())
            }
            Rejection::BadUpdate(e) | Rejection::BadSubscription(e) => {
                (StatusCode::BAD_REQUEST, None, e.to_string())
            }
            Rejection::UnreadableBody(m) | Rejection::BadPath(m) => {
                (StatusCode::BAD_REQUEST, None, m)
            }
            Rejection::SubscriptionsOff => (
                StatusCode::BAD_REQUEST,
                None,
                "this hub does not track subscriptions".to_string(),
            ),
            Rejection::InvalidRequest(m) => {
                (StatusCode::BAD_REQUEST, Some(Some("invalid_request")), m)
            }
            Rejection::TokenMissing(m) => (StatusCode::UNAUTHORIZED, Some(None), m),
            Rejection::InvalidToken(m) => {
                (StatusCode::UNAUTHORIZED, Some(Some("invalid_token")), m)
            }
            Rejection::InsufficientScope(m) => {
                (StatusCode::FORBIDDEN, Some(Some("insufficient_scope")), m)
            }
            Rejection::Forbidden(m) => (StatusCode::FORBIDDEN, None, m),
            Rejection::NotFound(m) => (StatusCode::NOT_FOUND, None, m),
            Rejection::TooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                None,
                format!("request body larger than the limit of {limit} bytes"),
            ),
            Rejection::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                None,
                "send the form with Content-Type: application/x-www-form-urlencoded".to_string(),
            ),
            Rejection::ShuttingDown => (
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                "the hub is shutting down; reconnect to another node".to_string(),
            ),
            Rejection::HistoryUnavailable(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                format!("history is unavailable: {e}"),
            ),
            Rejection::NotStored(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                format!("the update was not stored: {e}"),
            ),
            Rejection::KeysUnavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, None, m),
            Rejection::SubscriptionsLoading => (
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                "this node is still loading the cluster's subscriptions; retry shortly".to_string(),
            ),
            Rejection::AtCapacity {
                message,
                retry_after: seconds,
            } => {
                retry_after = Some(seconds);
                (StatusCode::SERVICE_UNAVAILABLE, None, message)
            }
            Rejection::TooManyRequests {
                message,
                retry_after: seconds,
            } => {
                retry_after = Some(seconds);
                (StatusCode::TOO_MANY_REQUESTS, None, message)
            }
        };
        tracing::debug!(%status, %message, "request refused");
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            message + "\n",
        )
            .into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(error) = error {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                challenge(error, metadata.as_deref()),
            );
        }
        response
    }
}

/// `Bearer`, with the error code and the metadata URL when there are any.
/// Neither holds a character a quoted-string cannot (the URL is
/// serialized by the `url` crate, which percent-encodes `"` and `\`).
fn challenge(error: Option<&str>, metadata: Option<&str>) -> HeaderValue {
    let params: Vec<String> = error
        .map(|e| format!("error=\"{e}\""))
        .into_iter()
        .chain(metadata.map(|m| format!("resource_metadata=\"{m}\"")))
        .collect();
    let value = if params.is_empty() {
        "Bearer".to_owned()
    } else {
        format!("Bearer {}", params.join(", "))
    };
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}
