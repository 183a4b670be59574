//! CORS: which pages on other origins a browser lets read the hub's answers.
//!
//! It wraps every route (subscribe, publish, the metadata, the UI) when
//! origins are configured, before the socket on both paths. It only adds
//! headers, and answers preflights itself; who may subscribe or publish is
//! still the tokens' and the CSRF guard's decision (`publish.rs`).
//!
//! A listed origin is echoed with `Access-Control-Allow-Credentials`, so its
//! pages may send the cookie. `*` admits every other origin anonymously: the
//! answer says `Access-Control-Allow-Origin: *` and never allows credentials,
//! so a browser refuses a credentialed read (a page could otherwise read
//! private updates with a visitor's cookie). An origin is never reflected
//! unless it is listed.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// What a cross-origin page may send: `GET` and `QUERY` subscribe, `POST`
/// publishes.
const ALLOW_METHODS: &str = "GET, POST, QUERY";

/// The request headers a page may set: a bearer token, the resume point,
/// a form body, and what `EventSource` polyfills send.
const ALLOW_HEADERS: &str = "authorization, cache-control, content-type, last-event-id";

/// Response headers a page may read: the resume point (`LAST_EVENT_ID`,
/// `MERCURE_LAST_EVENT_ID`) and `link`, the subscription API's cursor.
const EXPOSE_HEADERS: &str = "last-event-id, mercure-last-event-id, link";

/// How long, in seconds, a browser may reuse a preflight's answer.
const MAX_AGE: &str = "600";

/// The CORS policy of a hub, from `HubConfig::cors_origins`.
#[derive(Debug)]
pub(super) struct Cors {
    /// Origins whose pages may send credentials, compared ASCII
    /// case-insensitively with `Origin`.
    listed: Vec<String>,
    /// Whether `*` was configured: any other origin may read, without
    /// credentials.
    anonymous: bool,
}

/// What one request's origin is allowed.
enum Allowance {
    /// A listed origin: echoed, with credentials.
    Credentialed(HeaderValue),
    /// Any other origin under `*`: a literal `*`, never credentials.
    Anonymous,
}

impl Cors {
    /// The policy for `origins`, or `None` when there are none (no CORS
    /// headers at all). Warns once when `*` is among them.
    pub(super) fn new(origins: &[String]) -> Option<Arc<Cors>> {
        if origins.is_empty() {
            return None;
        }
        let anonymous = origins.iter().any(|o| o == "*");
        if anonymous {
            tracing::warn!(
                "CORS origin `*` allows anonymous cross-origin reads only, without cookies; \
                 list each origin whose pages need cookies (--cors-origin https://app.example)"
            );
        }
        let listed = origins
            .iter()
            .filter(|o| *o != "*")
            .map(|o| o.trim_end_matches('/').to_owned())
            .collect();
        Some(Arc::new(Cors { listed, anonymous }))
    }

    fn allowance(&self, origin: &HeaderValue) -> Option<Allowance> {
        let listed = origin
            .to_str()
            .is_ok_and(|o| self.listed.iter().any(|l| l.eq_ignore_ascii_case(o)));
        if listed {
            Some(Allowance::Credentialed(origin.clone()))
        } else if self.anonymous {
            Some(Allowance::Anonymous)
        } else {
            None
        }
    }
}

/// The middleware: answers preflights, and adds the origin's allowance to
/// every other response. Every response varies by `Origin`.
pub(super) async fn cors(State(cors): State<Arc<Cors>>, request: Request, next: Next) -> Response {
    let allowance = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|origin| cors.allowance(origin));
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    if let Some(allowance) = allowance {
        allow(headers, allowance);
        if preflight {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOW_METHODS),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOW_HEADERS),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(MAX_AGE),
            );
        } else {
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSE_HEADERS),
            );
        }
    }
    vary_by_origin(headers);
    response
}

/// Says that an answer varies by `Origin`, as every answer under a CORS
/// policy does (also those the publish endpoint gives without this
/// middleware, `publish::Endpoint`).
pub(super) fn vary_by_origin(headers: &mut HeaderMap) {
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

fn allow(headers: &mut HeaderMap, allowance: Allowance) {
    match allowance {
        Allowance::Credentialed(origin) => {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        Allowance::Anonymous => {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
            // A handler must not grant what `*` never does.
            headers.remove(header::ACCESS_CONTROL_ALLOW_CREDENTIALS);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposed_headers_name_the_resume_headers() {
        let exposed: Vec<&str> = EXPOSE_HEADERS.split(", ").collect();
        assert!(exposed.contains(&super::super::LAST_EVENT_ID.as_str()));
        assert!(exposed.contains(&super::super::MERCURE_LAST_EVENT_ID.as_str()));
        assert!(exposed.contains(&"link"));
    }

    #[test]
    fn only_a_listed_origin_is_echoed_and_case_does_not_matter() {
        let origins = ["https://App.example/".to_owned(), "*".to_owned()];
        let cors = Cors::new(&origins).unwrap();
        let origin = HeaderValue::from_static("https://app.EXAMPLE");
        assert!(matches!(
            cors.allowance(&origin),
            Some(Allowance::Credentialed(o)) if o == origin
        ));
        let other = HeaderValue::from_static("https://evil.example");
        assert!(matches!(cors.allowance(&other), Some(Allowance::Anonymous)));
        let without_star = Cors::new(&origins[..1]).unwrap();
        assert!(without_star.allowance(&other).is_none());
        assert!(Cors::new(&[]).is_none());
    }

    #[tokio::test]
    async fn vary_origin_is_appended_to_a_handler_s_vary() {
        use tower::ServiceExt;
        let policy = Cors::new(&["*".to_owned()]).unwrap();
        let router = axum::Router::new()
            .route(
                "/",
                axum::routing::get(|| async { ([(header::VARY, "accept-encoding")], "ok") }),
            )
            .layer(axum::middleware::from_fn_with_state(policy, cors));
        let request = axum::http::Request::get("/")
            .header(header::ORIGIN, "https://any.example")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = router.oneshot(request).await.unwrap();
        let vary: Vec<_> = response.headers().get_all(header::VARY).iter().collect();
        assert_eq!(vary, ["accept-encoding", "Origin"]);
    }
}
