//! CORS over HTTP: listed origins are echoed with credentials, `*` admits
//! any other origin without them, preflights, `Vary: Origin`, the exposed
//! headers, and the CSRF guard that `*` does not open.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::*;
use herald_hub::HUB_PATH;
use http_body_util::Full;
use hyper::{HeaderMap, Request, StatusCode};

const APP: &str = "https://app.example";
const EVIL: &str = "https://evil.example";

const ALLOW_ORIGIN: &str = "access-control-allow-origin";
const ALLOW_CREDENTIALS: &str = "access-control-allow-credentials";

/// A test hub whose CORS origins are `origins`.
async fn hub_with(origins: &[&str]) -> TestHub {
    start(herald_hub::HubConfig {
        cors_origins: origins.iter().map(|o| o.to_string()).collect(),
        ..config()
    })
    .await
}

/// `GET /healthz`, from `origin` when given.
async fn get_from(hub: &TestHub, origin: Option<&str>) -> Reply {
    let mut req = Request::get(format!("http://{}/healthz", hub.addr));
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    request(req.body(Full::new(Bytes::new())).unwrap()).await
}

/// A preflight from `origin` for a `QUERY` with `Authorization`.
async fn preflight(hub: &TestHub, origin: &str) -> Reply {
    let req = Request::options(format!("http://{}{HUB_PATH}", hub.addr))
        .header("origin", origin)
        .header("access-control-request-method", "QUERY")
        .header("access-control-request-headers", "authorization")
        .body(Full::new(Bytes::new()))
        .unwrap();
    request(req).await
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

/// Whether `Origin` is among the fields of every `Vary` line.
fn varies_by_origin(headers: &HeaderMap) -> bool {
    headers
        .get_all("vary")
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .any(|field| field.trim().eq_ignore_ascii_case("origin"))
}

// draft-08 §Subscription: `Access-Control-Allow-Origin: *` never comes
// with credentials.
#[tokio::test]
async fn star_answers_an_unlisted_origin_with_a_literal_star_and_no_credentials() {
    let hub = hub_with(&["*"]).await;
    let reply = get_from(&hub, Some(EVIL)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(header(&reply.headers, ALLOW_ORIGIN), Some("*"));
    assert_eq!(header(&reply.headers, ALLOW_CREDENTIALS), None);

    // The event stream too, on the server's own HTTP/1.1 path.
    let sub = subscribe(hub.addr, "topic=a", &[("origin", EVIL)]).await;
    assert_eq!(sub.status, StatusCode::OK);
    assert_eq!(header(&sub.headers, ALLOW_ORIGIN), Some("*"));
    assert_eq!(header(&sub.headers, ALLOW_CREDENTIALS), None);
}

// draft-08 §Subscription: an origin of the explicit allowlist is echoed,
// with `Access-Control-Allow-Credentials: true`.
#[tokio::test]
async fn a_listed_origin_beside_star_is_echoed_with_credentials() {
    let hub = hub_with(&[APP, "*"]).await;
    let reply = get_from(&hub, Some(APP)).await;
    assert_eq!(header(&reply.headers, ALLOW_ORIGIN), Some(APP));
    assert_eq!(header(&reply.headers, ALLOW_CREDENTIALS), Some("true"));

    let sub = subscribe(hub.addr, "topic=a", &[("origin", APP)]).await;
    assert_eq!(header(&sub.headers, ALLOW_ORIGIN), Some(APP));
    assert_eq!(header(&sub.headers, ALLOW_CREDENTIALS), Some("true"));

    // Origins compare case-insensitively; the request's spelling is echoed.
    let reply = get_from(&hub, Some("https://APP.example")).await;
    assert_eq!(
        header(&reply.headers, ALLOW_ORIGIN),
        Some("https://APP.example")
    );
    assert_eq!(header(&reply.headers, ALLOW_CREDENTIALS), Some("true"));
}

// draft-08 §Subscription: an origin off the allowlist is not reflected.
#[tokio::test]
async fn without_star_an_unlisted_origin_gets_no_allow_origin() {
    let hub = hub_with(&[APP]).await;
    for origin in [
        EVIL,
        "http://app.example",
        "https://app.example.evil.example",
    ] {
        let reply = get_from(&hub, Some(origin)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(header(&reply.headers, ALLOW_ORIGIN), None, "{origin}");
        assert_eq!(header(&reply.headers, ALLOW_CREDENTIALS), None, "{origin}");
        assert_eq!(
            header(&reply.headers, "access-control-expose-headers"),
            None
        );
    }
}

#[tokio::test]
async fn preflights_from_allowed_origins_are_204_with_methods_headers_and_max_age() {
    let hub = hub_with(&[APP, "*"]).await;
    for (origin, allow_origin, credentials) in [(APP, APP, Some("true")), (EVIL, "*", None)] {
        let reply = preflight(&hub, origin).await;
        let h = &reply.headers;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{origin}");
        assert_eq!(header(h, ALLOW_ORIGIN), Some(allow_origin));
        assert_eq!(header(h, ALLOW_CREDENTIALS), credentials, "{origin}");
        assert_eq!(
            header(h, "access-control-allow-methods"),
            Some("GET, POST, QUERY")
        );
        assert_eq!(
            header(h, "access-control-allow-headers"),
            Some("authorization, cache-control, content-type, last-event-id")
        );
        assert_eq!(header(h, "access-control-max-age"), Some("600"));
        assert!(varies_by_origin(h), "{origin}");
    }
}

#[tokio::test]
async fn a_preflight_from_an_origin_not_allowed_is_204_without_cors_headers() {
    let hub = hub_with(&[APP]).await;
    let reply = preflight(&hub, EVIL).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let cors: Vec<_> = reply
        .headers
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .collect();
    assert!(cors.is_empty(), "{cors:?}");
    assert!(varies_by_origin(&reply.headers));
}

#[tokio::test]
async fn every_response_of_a_cors_hub_varies_by_origin() {
    for origins in [&["*"][..], &[APP], &[APP, "*"]] {
        let hub = hub_with(origins).await;
        for origin in [None, Some(APP), Some(EVIL)] {
            let reply = get_from(&hub, origin).await;
            assert!(varies_by_origin(&reply.headers), "{origins:?} {origin:?}");
            // Failures too: a 401 publish and a 405.
            let mut req = Request::post(format!("http://{}{HUB_PATH}", hub.addr));
            if let Some(origin) = origin {
                req = req.header("origin", origin);
            }
            let reply = request(req.body(Full::new(Bytes::new())).unwrap()).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
            assert!(varies_by_origin(&reply.headers), "{origins:?} {origin:?}");
            let req = Request::delete(format!("http://{}{HUB_PATH}", hub.addr));
            let reply = request(req.body(Full::new(Bytes::new())).unwrap()).await;
            assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
            assert!(varies_by_origin(&reply.headers), "{origins:?}");
        }
        let sub = subscribe(hub.addr, "topic=a", &[]).await;
        assert!(varies_by_origin(&sub.headers), "{origins:?}");
    }
    // A hub without CORS says nothing about origins.
    let hub = hub_with(&[]).await;
    let reply = get_from(&hub, Some(APP)).await;
    assert!(!varies_by_origin(&reply.headers));
    assert_eq!(header(&reply.headers, ALLOW_ORIGIN), None);
}

// draft-08 §Subscription API and §Reconciliation: cross-origin callers
// may read `Link` and the resume headers (tests/subscriptions.rs checks it
// on the API itself).
#[tokio::test]
async fn actual_responses_to_allowed_origins_expose_the_resume_and_link_headers() {
    let hub = hub_with(&[APP, "*"]).await;
    for origin in [APP, EVIL] {
        let sub = subscribe(hub.addr, "topic=a", &[("origin", origin)]).await;
        assert_eq!(
            header(&sub.headers, "access-control-expose-headers"),
            Some("last-event-id, mercure-last-event-id, link"),
            "{origin}"
        );
    }
    // Not on a preflight, where it means nothing.
    let reply = preflight(&hub, APP).await;
    assert_eq!(
        header(&reply.headers, "access-control-expose-headers"),
        None
    );
}

/// A publish with the token in the cookie, as a browser sends it.
async fn cookie_publish_from(hub: &TestHub, origin: &str) -> Reply {
    let req = Request::post(format!("http://{}{HUB_PATH}", hub.addr))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("mercureAuthorization={}", publisher()))
        .header("origin", origin)
        .body(Full::new(Bytes::from("topic=a&data=x")))
        .unwrap();
    request(req).await
}

// draft-07 §Security Considerations: the CSRF guard on cookie publishes
// holds whatever the CORS origins.
#[tokio::test]
async fn a_cookie_publish_from_an_unlisted_origin_is_refused_under_star() {
    // `*` among the CORS origins, and no publish origin at all.
    let hub = hub_with(&["*"]).await;
    let reply = cookie_publish_from(&hub, EVIL).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert_eq!(header(&reply.headers, ALLOW_CREDENTIALS), None);

    // `*` and a listed CORS origin, and a publish origin: only the
    // publish origin may publish with the cookie.
    let hub = start(herald_hub::HubConfig {
        cors_origins: vec!["*".into(), APP.into()],
        publish_origins: vec![APP.into()],
        ..config()
    })
    .await;
    let reply = cookie_publish_from(&hub, EVIL).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    let reply = cookie_publish_from(&hub, APP).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(header(&reply.headers, ALLOW_ORIGIN), Some(APP));
}
