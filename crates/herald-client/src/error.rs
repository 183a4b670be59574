//! What can go wrong: one typed error for the whole client.
//!
//! Every error is either *retryable* (the connection broke; the client waits
//! and reconnects, and reports it as [`Item::Reconnecting`](crate::Item)) or
//! *fatal* (the server said "stop", or the request can never succeed; the
//! stream yields it as `Err` and ends). [`Error::is_retryable`] tells which.

use std::time::Duration;

use http::StatusCode;

/// The boxed cause of a transport error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a connection failed or the stream ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The URL could not be parsed, or uses a scheme other than `http` or
    /// `https`. Fatal.
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A header name or value given to the builder is not valid HTTP. Fatal.
    InvalidHeader {
        /// The header name as given.
        name: String,
    },
    /// The server answered with a status other than 200 (including 204,
    /// which is how a server says "stop"). Fatal.
    Status {
        /// The status the server sent.
        status: StatusCode,
        /// The start of the response body (at most 1 KiB, lossy UTF-8), when
        /// the server sent one quickly: usually its explanation.
        body: String,
    },
    /// The server answered 200 but not with `text/event-stream`. Fatal.
    ContentType {
        /// The `Content-Type` header as sent, or `None` when it was missing.
        content_type: Option<String>,
    },
    /// More redirects in a row than the configured limit. Fatal.
    TooManyRedirects {
        /// The configured limit.
        limit: u32,
    },
    /// A redirect without a usable `Location` header. Fatal.
    BadRedirect {
        /// The redirect's status.
        status: StatusCode,
        /// What is wrong with its `Location`.
        reason: String,
    },
    /// Connecting or sending the request failed (DNS, TCP, TLS, the server
    /// closed before answering). Retryable.
    Connect(BoxError),
    /// Reading the response body failed mid-stream. Retryable.
    Body(BoxError),
    /// The server ended the response body normally. Retryable: an event
    /// stream is meant to go on, so the client reconnects.
    StreamEnded,
    /// No bytes arrived (not even a heartbeat comment) for the configured
    /// read timeout. Retryable.
    ReadTimeout(Duration),
    /// The reconnection policy's maximum number of attempts was reached
    /// without a healthy connection. Fatal; carries the last failure.
    AttemptsExhausted {
        /// How many reconnection attempts were made.
        attempts: u32,
        /// The failure of the last attempt.
        last: Box<Error>,
    },
}

impl Error {
    /// Whether the client reconnects after this error (`true`) or the
    /// stream ends with it (`false`).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Connect(_) | Error::Body(_) | Error::StreamEnded | Error::ReadTimeout(_)
        )
    }

    /// The HTTP status, for [`Error::Status`] (also when wrapped in
    /// [`Error::AttemptsExhausted`]).
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Status { status, .. } => Some(*status),
            Error::AttemptsExhausted { last, .. } => last.status(),
            _ => None,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::InvalidUrl { url, reason } => write!(f, "invalid URL {url:?}: {reason}"),
            Error::InvalidHeader { name } => write!(f, "invalid header {name:?}"),
            Error::Status { status, body } => {
                write!(f, "server answered {status}")?;
                let body = body.trim();
                if !body.is_empty() {
                    write!(f, ": {body}")?;
                }
                Ok(())
            }
            Error::ContentType {
                content_type: Some(ct),
            } => {
                write!(
                    f,
                    "server answered with Content-Type {ct:?}, not text/event-stream"
                )
            }
            Error::ContentType { content_type: None } => {
                f.write_str("server answered without a Content-Type, not text/event-stream")
            }
            Error::TooManyRedirects { limit } => write!(f, "more than {limit} redirects"),
            Error::BadRedirect { status, reason } => write!(f, "redirect {status}: {reason}"),
            Error::Connect(e) => {
                f.write_str("connection failed: ")?;
                write_with_cause(f, e.as_ref())
            }
            Error::Body(e) => {
                f.write_str("connection lost: ")?;
                write_with_cause(f, e.as_ref())
            }
            Error::StreamEnded => f.write_str("server ended the stream"),
            Error::ReadTimeout(d) => write!(f, "no data for {} ms", d.as_millis()),
            Error::AttemptsExhausted { attempts, last } => {
                write!(f, "gave up after {attempts} reconnection attempts: {last}")
            }
        }
    }
}

/// Writes `error` and, when its message does not already say it, its
/// innermost cause: hyper-util's errors read only `client error (Connect)`,
/// and the reason (`Connection refused`, a DNS or certificate failure) is at
/// the bottom of the `source` chain.
fn write_with_cause(
    f: &mut std::fmt::Formatter<'_>,
    error: &(dyn std::error::Error + 'static),
) -> std::fmt::Result {
    let text = error.to_string();
    f.write_str(&text)?;
    let mut innermost = None;
    let mut source = error.source();
    while let Some(cause) = source {
        innermost = Some(cause);
        source = cause.source();
    }
    if let Some(cause) = innermost {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            write!(f, ": {cause}")?;
        }
    }
    Ok(())
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Connect(e) | Error::Body(e) => Some(e.as_ref()),
            Error::AttemptsExhausted { last, .. } => Some(last.as_ref()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    /// An error that says only what failed, with the reason as its source.
    #[derive(Debug)]
    struct Wrapper(
        &'static str,
        Option<Box<dyn std::error::Error + Send + Sync>>,
    );

    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    fn chain(outer: &'static str, middle: &'static str, inner: &'static str) -> BoxError {
        let inner = Box::new(Wrapper(inner, None));
        Box::new(Wrapper(outer, Some(Box::new(Wrapper(middle, Some(inner))))))
    }

    #[test]
    fn connect_and_body_errors_show_the_innermost_cause() {
        let error = Error::Connect(chain(
            "client error (Connect)",
            "tcp connect error",
            "Connection refused (os error 111)",
        ));
        assert_eq!(
            error.to_string(),
            "connection failed: client error (Connect): Connection refused (os error 111)"
        );
        assert_eq!(
            error.source().map(|e| e.to_string()).as_deref(),
            Some("client error (Connect)")
        );
        let error = Error::Body(chain("error reading a body", "io", "connection reset"));
        assert_eq!(
            error.to_string(),
            "connection lost: error reading a body: connection reset"
        );
        let exhausted = Error::AttemptsExhausted {
            attempts: 3,
            last: Box::new(error),
        };
        assert_eq!(
            exhausted.to_string(),
            "gave up after 3 reconnection attempts: connection lost: error reading a body: connection reset"
        );
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let error = Error::Connect(chain("dns error: no such host", "x", "no such host"));
        assert_eq!(
            error.to_string(),
            "connection failed: dns error: no such host"
        );
        let error = Error::Connect(Box::new(Wrapper("alone", None)));
        assert_eq!(error.to_string(), "connection failed: alone");
    }
}
