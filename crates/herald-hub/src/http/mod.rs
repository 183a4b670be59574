//! HTTP: the routes of a hub and how failures become responses.
//!
//! `/.well-known/mercure` takes `POST` (publish, [`publish`]) and `GET`
//! (subscribe, [`subscribe`]), and, on a hub that speaks draft-08, `QUERY`
//! (subscribe with the parameters in the body); any other method gets `405`
//! with `Allow`.
//! A hub that speaks draft-08 also serves its protected resource metadata
//! (RFC 9728) at the path derived from its URL ([`resource_metadata`]).
//! `/healthz`, `/readyz` and `/metrics` are for operators; `/herald.js` is
//! the browser module pages import ([`browser_module`]); the web UI
//! ([`crate::ui`]) is merged in when enabled. CORS ([`cors`]) wraps it all
//! when origins are configured.

mod browser_module;
pub(crate) mod client_limit;
mod cors;
pub(crate) mod fields;
mod form;
mod lost_events;
pub(crate) mod peer;
mod publish;
pub(crate) mod publish_rate;
mod rejection;
mod subscribe;
mod subscription;
mod subscriptions;
// `pub(crate)` for the `fuzzing` module's token extraction target.
pub(crate) mod token;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::matcher::MatchType;
use crate::protocol::Revision;
use crate::Hub;

pub use browser_module::BROWSER_MODULE_PATH;
use form::read_form;
pub use peer::{IpRange, IpRangeError};
pub(crate) use publish::Endpoint as PublishEndpoint;
pub(crate) use rejection::Rejection;

/// The header a reconnecting client resumes with (and a draft-07 hub
/// echoes).
pub(crate) static LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// Where a draft-08 hub says which event precedes the first one it sends.
pub(crate) static MERCURE_LAST_EVENT_ID: HeaderName =
    HeaderName::from_static("mercure-last-event-id");

/// The path every Mercure client expects.
pub const HUB_PATH: &str = "/.well-known/mercure";

pub(crate) fn router(hub: Hub) -> Router {
    let cors = cors::Cors::new(&hub.shared.config.cors_origins);
    if hub.shared.config.publish_origins.iter().any(|o| o == "*") {
        tracing::warn!(
            "publish origin `*` lets any site's page publish with a visitor's token cookie \
             (the CSRF guard only refuses requests with neither Origin nor Referer); \
             list the origins of your own pages instead (--publish-origin https://app.example)"
        );
    }
    let mut router = Router::new()
        .route(
            HUB_PATH,
            get(subscribe::subscribe)
                .post(publish::publish)
                .fallback(other_method),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(BROWSER_MODULE_PATH, get(browser_module::module));
    if hub.shared.config.protocol.speaks(Revision::Draft08) {
        let path = hub.shared.config.hub_url.metadata_path();
        router = router.route(&path, get(resource_metadata));
    }
    if hub.shared.presence.is_some() {
        let collection =
            crate::presence::collection_path(hub.shared.config.hub_url.as_url().path());
        router = router
            .route(&collection, get(subscriptions::subscriptions))
            .route(
                &format!("{collection}/{{*rest}}"),
                get(subscriptions::subscriptions),
            );
    }
    #[cfg(feature = "ui")]
    if hub.shared.config.ui {
        router = router.merge(crate::ui::routes());
    }
    let router = router.with_state(hub);
    match cors {
        Some(policy) => router.layer(middleware::from_fn_with_state(policy, cors::cors)),
        None => router,
    }
}

/// `QUERY` where the hub speaks draft-08, else `405` with `Allow`.
async fn other_method(
    method: Method,
    State(hub): State<Hub>,
    RawQuery(query): RawQuery,
    connection: peer::Connection,
    headers: HeaderMap,
    body: axum::body::Body,
) -> axum::response::Response {
    let query_allowed = hub.shared.config.protocol.speaks(Revision::Draft08);
    if method.as_str() == "QUERY" && query_allowed {
        return subscribe::subscribe_with_body(hub, query.as_deref(), &headers, connection, body)
            .await;
    }
    let allow = if query_allowed {
        "GET, HEAD, POST, QUERY"
    } else {
        "GET, HEAD, POST"
    };
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, allow)],
        format!("{method} is not allowed here; allowed: {allow}\n"),
    )
        .into_response()
}

async fn readyz(State(hub): State<Hub>) -> impl IntoResponse {
    if hub.is_shutting_down() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down\n".to_owned(),
        );
    }
    match hub.shared.health.problem() {
        Some(problem) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {problem}\n"),
        ),
        None => (StatusCode::OK, "ready\n".to_owned()),
    }
}

async fn metrics(State(hub): State<Hub>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        hub.metrics().to_prometheus(),
    )
}

/// The authorization detail type of draft-08 (§Authorization Details).
pub(crate) const AUTHORIZATION_DETAIL_TYPE: &str = "https://mercure.rocks/authorization-detail";

/// The protected resource metadata document (RFC 9728; draft-08
/// §Protected Resource Metadata): what a client needs to get a token for
/// this hub and present it.
async fn resource_metadata(State(hub): State<Hub>) -> impl IntoResponse {
    let config = &hub.shared.config;
    let mut document = serde_json::json!({
        "resource": config.hub_url.to_string(),
        "authorization_details_types_supported": [AUTHORIZATION_DETAIL_TYPE],
        "bearer_methods_supported": ["header"],
        "mercure_cookie": token::ACCESS_TOKEN_COOKIE,
        // Optional when it is just these two; said anyway, so a client
        // need not know the default.
        "mercure_matcher_types_supported": [MatchType::Exact.name(), MatchType::UrlPattern.name()],
    });
    // The trusted issuers are the authorization servers a client gets its
    // tokens from (omitted when tokens are self-issued: no issuer).
    let issuers: Vec<&str> = config
        .access_tokens
        .iter()
        .flat_map(|a| a.issuers.iter().map(|i| i.issuer.as_str()))
        .collect();
    if !issuers.is_empty() {
        document["authorization_servers"] = issuers.into();
    }
    if config.subscriptions {
        document["mercure_subscriptions"] = true.into();
    }
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        document.to_string(),
    )
}

/// A `text/event-stream` response over `frames`, with the headers every
/// event stream of the hub carries: no caching, and no proxy buffering
/// (`X-Accel-Buffering: no` for nginx).
pub(crate) fn event_stream<S>(frames: S) -> axum::response::Response
where
    S: futures_core::Stream<Item = Result<bytes::Bytes, std::convert::Infallible>> + Send + 'static,
{
    let mut response = axum::body::Body::from_stream(frames).into_response();
    let out = response.headers_mut();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache, no-store"),
    );
    out.insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    response
}
