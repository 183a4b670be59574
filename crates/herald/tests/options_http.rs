//! Browser-facing options through the binary: `--publish-origin` (the
//! CSRF guard on cookie-authenticated publishes: `Origin`, the `Referer`
//! fallback, `*`, lists and trailing slashes) and `--cors-origin` (`*` and
//! lists, preflight and actual responses, header by header).

use bytes::Bytes;
use http_body_util::Full;

mod support;
mod support_options;
use support::{AsyncHub, TempDir};
use support_options::{base, publish_request, send, serve_keyed, start, token, Reply};

const FORBIDDEN: &str =
    "publishing with a token cookie is only allowed from the configured publish origins\n";

/// Publishes with the token in the `mercureAuthorization` cookie, as a
/// browser does, with these extra headers (`Origin`, `Referer`).
async fn publish_with_cookie(hub: &AsyncHub, headers: &[(&str, &str)]) -> Reply {
    let mut request =
        publish_request(hub, None).header("cookie", format!("mercureAuthorization={}", token()));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(
        request
            .body(Full::new(Bytes::from("topic=t&data=x")))
            .unwrap(),
    )
    .await
}

/// Asserts the cookie publish with `headers` is accepted (200) or refused
/// (403 with the guard's message).
async fn assert_cookie_publish(hub: &AsyncHub, headers: &[(&str, &str)], allowed: bool) {
    let reply = publish_with_cookie(hub, headers).await;
    if allowed {
        assert_eq!(reply.status, 200, "{headers:?}: {}", reply.body);
    } else {
        assert_eq!(reply.status, 403, "{headers:?}: {}", reply.body);
        assert_eq!(reply.body, FORBIDDEN, "{headers:?}");
    }
}

#[tokio::test]
async fn publish_origin_flag_admits_its_origin_and_refuses_others() {
    // The trailing slash is how a user often copies an origin; browsers
    // never send one.
    let hub = start(serve_keyed(&["--publish-origin", "https://app.example/"])).await;
    assert_cookie_publish(&hub, &[("origin", "https://app.example")], true).await;
    assert_cookie_publish(&hub, &[("origin", "https://evil.example")], false).await;
    assert_cookie_publish(&hub, &[("origin", "http://app.example")], false).await;
    // No Origin: the origin of the Referer decides.
    assert_cookie_publish(&hub, &[("referer", "https://app.example/page?x=1")], true).await;
    assert_cookie_publish(
        &hub,
        &[("referer", "https://evil.example/app.example")],
        false,
    )
    .await;
    // Origin, when present, wins over Referer.
    assert_cookie_publish(
        &hub,
        &[
            ("origin", "https://evil.example"),
            ("referer", "https://app.example/"),
        ],
        false,
    )
    .await;
    // Neither: refused, a cookie alone proves nothing.
    assert_cookie_publish(&hub, &[], false).await;

    // The guard is for cookies only: a bearer token from any origin works.
    let request = publish_request(&hub, Some(&token()))
        .header("origin", "https://evil.example")
        .body(Full::new(Bytes::from("topic=t")))
        .unwrap();
    assert_eq!(send(request).await.status, 200);
}

#[tokio::test]
async fn publish_origins_from_the_environment_are_a_comma_list() {
    let mut cmd = serve_keyed(&[]);
    cmd.env(
        "HERALD_PUBLISH_ORIGINS",
        "https://a.example, https://b.example:8443/",
    );
    let hub = start(cmd).await;
    assert_cookie_publish(&hub, &[("origin", "https://a.example")], true).await;
    assert_cookie_publish(&hub, &[("origin", "https://b.example:8443")], true).await;
    assert_cookie_publish(&hub, &[("referer", "https://b.example:8443/x")], true).await;
    assert_cookie_publish(&hub, &[("origin", "https://b.example")], false).await;
    assert_cookie_publish(&hub, &[("origin", "https://c.example")], false).await;
}

#[tokio::test]
async fn publish_origin_star_from_the_config_file_admits_any_origin_but_not_none() {
    let dir = TempDir::new("options-publish-origin-star");
    let file = dir.join("herald.toml");
    std::fs::write(&file, "publish-origin = \"*\"\n").unwrap();
    let hub = start(serve_keyed(&["--config", file.to_str().unwrap()])).await;
    assert_cookie_publish(&hub, &[("origin", "https://any.example")], true).await;
    assert_cookie_publish(&hub, &[("referer", "http://other.example:1/")], true).await;
    assert_cookie_publish(&hub, &[], false).await;
}

#[tokio::test]
async fn without_publish_origins_a_cookie_publish_is_always_refused() {
    let hub = start(serve_keyed(&[])).await;
    assert_cookie_publish(&hub, &[("origin", "https://app.example")], false).await;
}

/// An `OPTIONS` preflight for a POST with an `Authorization` header from
/// `origin`.
async fn preflight(hub: &AsyncHub, origin: &str) -> Reply {
    let request = http::Request::options(&hub.url)
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization")
        .body(Full::default())
        .unwrap();
    send(request).await
}

/// A plain `GET /healthz` from `origin`.
async fn get_from(hub: &AsyncHub, origin: &str) -> Reply {
    let request = http::Request::get(format!("{}/healthz", base(hub)))
        .header("origin", origin)
        .body(Full::default())
        .unwrap();
    send(request).await
}

/// Whether `Origin` is among the fields of the `Vary` lines of `reply`.
fn varies_by_origin(reply: &Reply) -> bool {
    reply
        .headers
        .get_all("vary")
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .any(|field| field.trim().eq_ignore_ascii_case("origin"))
}

/// Asserts that `origin` is allowed: the preflight and an actual response
/// both carry exactly the CORS headers a request needs, with
/// `Access-Control-Allow-Origin: allow_origin` and credentials allowed or
/// not (never, under `*`).
async fn assert_cors_headers(hub: &AsyncHub, origin: &str, allow_origin: &str, credentials: bool) {
    let credentials = credentials.then_some("true");
    let pre = preflight(hub, origin).await;
    assert_eq!(pre.status, 204);
    assert_eq!(
        pre.header("access-control-allow-origin"),
        Some(allow_origin)
    );
    assert_eq!(pre.header("access-control-allow-credentials"), credentials);
    assert_eq!(
        pre.header("access-control-allow-methods"),
        Some("GET, POST, QUERY")
    );
    assert_eq!(
        pre.header("access-control-allow-headers"),
        Some("authorization, cache-control, content-type, last-event-id")
    );
    assert_eq!(pre.header("access-control-max-age"), Some("600"));
    assert!(varies_by_origin(&pre), "{:?}", pre.headers);

    let actual = get_from(hub, origin).await;
    assert_eq!(actual.status, 200);
    assert_eq!(
        actual.header("access-control-allow-origin"),
        Some(allow_origin)
    );
    assert_eq!(
        actual.header("access-control-allow-credentials"),
        credentials
    );
    assert_eq!(
        actual.header("access-control-expose-headers"),
        Some("last-event-id, mercure-last-event-id, link")
    );
    assert!(varies_by_origin(&actual), "{:?}", actual.headers);
}

/// Asserts that `origin` is listed: echoed, with credentials.
async fn assert_cors_allows(hub: &AsyncHub, origin: &str) {
    assert_cors_headers(hub, origin, origin, true).await;
}

/// Asserts that `origin` gets no CORS allowance, neither in a preflight
/// nor in an actual response.
async fn assert_cors_refuses(hub: &AsyncHub, origin: &str) {
    let pre = preflight(hub, origin).await;
    assert_eq!(pre.header("access-control-allow-origin"), None, "{origin}");
    let actual = get_from(hub, origin).await;
    assert_eq!(
        actual.header("access-control-allow-origin"),
        None,
        "{origin}"
    );
}

#[tokio::test]
async fn cors_origin_star_allows_any_origin_without_credentials() {
    let hub = start(serve_keyed(&["--cors-origin", "*"])).await;
    // A literal `*`, which browsers never accept for a credentialed read:
    // no page on another origin reads private updates with the cookie.
    assert_cors_headers(&hub, "https://one.example", "*", false).await;
    assert_cors_headers(&hub, "http://127.0.0.1:3000", "*", false).await;
    // Nor does `*` admit a cookie publish: that is --publish-origin's.
    assert_cookie_publish(&hub, &[("origin", "https://one.example")], false).await;

    // Listed beside `*`, an origin is echoed with credentials.
    let hub = start(serve_keyed(&["--cors-origin", "*,https://app.example"])).await;
    assert_cors_allows(&hub, "https://app.example").await;
    assert_cors_headers(&hub, "https://one.example", "*", false).await;
}

#[tokio::test]
async fn cors_origins_from_the_environment_allow_exactly_the_listed_ones() {
    let mut cmd = serve_keyed(&[]);
    cmd.env(
        "HERALD_CORS_ORIGINS",
        "https://a.example,https://b.example/, http://localhost:5173",
    );
    let hub = start(cmd).await;
    assert_cors_allows(&hub, "https://a.example").await;
    assert_cors_allows(&hub, "https://b.example").await;
    assert_cors_allows(&hub, "http://localhost:5173").await;
    assert_cors_refuses(&hub, "https://c.example").await;
    assert_cors_refuses(&hub, "http://a.example").await;
}

#[tokio::test]
async fn cors_origin_flags_repeat_and_a_file_list_works_too() {
    let hub = start(serve_keyed(&[
        "--cors-origin",
        "https://a.example",
        "--cors-origin",
        "https://b.example",
    ]))
    .await;
    assert_cors_allows(&hub, "https://b.example").await;
    assert_cors_refuses(&hub, "https://c.example").await;

    let dir = TempDir::new("options-cors-file");
    let file = dir.join("herald.toml");
    std::fs::write(&file, "cors-origin = [\"https://c.example\"]\n").unwrap();
    let hub = start(serve_keyed(&["--config", file.to_str().unwrap()])).await;
    assert_cors_allows(&hub, "https://c.example").await;
    assert_cors_refuses(&hub, "https://a.example").await;
}

#[tokio::test]
async fn without_cors_origins_no_cors_headers_are_sent() {
    let hub = start(serve_keyed(&[])).await;
    assert_cors_refuses(&hub, "https://a.example").await;
}
