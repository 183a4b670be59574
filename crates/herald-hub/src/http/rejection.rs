//! Every way a request can be refused, each with one status and a message
//! that tells the client what to fix.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// A refused request.
#[derive(Debug)]
pub(crate) enum Rejection {
    /// 400: malformed or invalid input.
    BadRequest(String),
    /// 401: no usable token where one is required.
    Unauthorized(String),
    /// 403: a valid token that does not allow this.
    Forbidden(String),
    /// 413: body over the limit.
    TooLarge(usize),
    /// 413: a field or the number of topics over its limit.
    LimitExceeded(String),
    /// 415: not a form.
    UnsupportedMediaType,
    /// 503: shutting down, or history unavailable.
    Unavailable(String),
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Rejection::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            Rejection::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m),
            Rejection::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            Rejection::TooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than the limit of {limit} bytes"),
            ),
            Rejection::LimitExceeded(m) => (StatusCode::PAYLOAD_TOO_LARGE, m),
            Rejection::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "publish with Content-Type: application/x-www-form-urlencoded".to_string(),
            ),
            Rejection::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
        };
        tracing::debug!(%status, %message, "request refused");
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            message + "\n",
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
