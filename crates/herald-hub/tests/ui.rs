//! The web UI's routes: the embedded page and assets, the live stats stream,
//! and `HubConfig::ui = false` removing both; the browser module, served
//! with or without the UI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use herald_hub::PublishForm;
use herald_hub::{Hub, HubConfig};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

struct Running {
    addr: std::net::SocketAddr,
    hub: Hub,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.hub.shutdown();
    }
}

async fn start(ui: bool) -> Running {
    let hub = Hub::new(HubConfig {
        anonymous: true,
        ui,
        ..HubConfig::default()
    })
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = herald_hub::server::Server::new(&hub);
    tokio::spawn(server.serve(listener, std::future::pending()));
    Running { addr, hub }
}

async fn get(running: &Running, path: &str) -> Response<Incoming> {
    get_with(running, path, &[]).await
}

fn header<'a>(response: &'a Response<Incoming>, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_a_strict_policy() {
    let running = start(true).await;
    for (path, mime, needle) in [
        ("/", "text/html; charset=utf-8", "<title>Herald</title>"),
        (
            "/ui/app.js",
            "text/javascript; charset=utf-8",
            "new EventSource",
        ),
        ("/ui/style.css", "text/css; charset=utf-8", ":root"),
        ("/ui/icon.svg", "image/svg+xml", "<svg"),
    ] {
        let response = get(&running, path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, "content-type"), mime, "{path}");
        assert!(header(&response, "content-security-policy").contains("default-src 'self'"));
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(
            std::str::from_utf8(&body).unwrap().contains(needle),
            "{path} lacks {needle}"
        );
    }
}

#[tokio::test]
async fn the_stats_stream_sends_json_snapshots_that_follow_the_counters() {
    let running = start(true).await;
    let mut response = get(&running, "/.well-known/herald/stats").await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "text/event-stream");
    let mut text = String::new();
    let mut published = false;
    let last = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let frame = response.body_mut().frame().await.unwrap().unwrap();
            text.push_str(std::str::from_utf8(&frame.into_data().unwrap()).unwrap());
            let snapshots: Vec<serde_json::Value> = text
                .split("\n\n")
                .filter_map(|event| event.strip_prefix("event: stats\ndata: "))
                .map(|json| serde_json::from_str(json).unwrap())
                .collect();
            if !published && !snapshots.is_empty() {
                assert_eq!(snapshots[0]["publishes_total"], 0);
                running
                    .hub
                    .publish(PublishForm {
                        topics: vec!["https://example.com/a".into()],
                        data: "x".into(),
                        ..PublishForm::default()
                    })
                    .await
                    .unwrap();
                published = true;
            }
            if let Some(s) = snapshots.last().filter(|s| s["publishes_total"] == 1) {
                return s.clone();
            }
        }
    })
    .await
    .expect("a snapshot with the publish counted");
    assert_eq!(last["history_events"], 1);
    assert_eq!(
        last["subscribers"], 0,
        "the stats stream is not a subscriber"
    );
    assert!(last["time"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn ui_off_removes_the_page_and_the_stats_stream() {
    let running = start(false).await;
    for path in ["/", "/ui/app.js", "/.well-known/herald/stats"] {
        assert_eq!(get(&running, path).await.status(), 404, "{path}");
    }
    assert_eq!(get(&running, "/healthz").await.status(), 200);
}

/// A GET of `path` with extra request headers.
async fn get_with(running: &Running, path: &str, headers: &[(&str, &str)]) -> Response<Incoming> {
    let tcp = TcpStream::connect(running.addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut request = Request::get(path).header("host", "localhost");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send.send_request(request.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap()
}

// The browser module is imported by pages on other origins, so it is
// served with the UI off too, as a module script (text/javascript, CORS),
// and revalidated with its ETag.
#[tokio::test]
async fn the_browser_module_is_served_to_any_origin_with_or_without_the_ui() {
    for ui in [true, false] {
        let running = start(ui).await;
        let origin = [("origin", "https://app.example")];
        let response = get_with(&running, herald_hub::BROWSER_MODULE_PATH, &origin).await;
        assert_eq!(response.status(), 200, "ui {ui}");
        assert_eq!(
            header(&response, "content-type"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(header(&response, "access-control-allow-origin"), "*");
        assert_eq!(header(&response, "cache-control"), "no-cache");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        let etag = header(&response, "etag").to_owned();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag:?}");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            &body[..],
            include_bytes!("../web/eventsource/herald.js"),
            "the package's file, as it is"
        );

        // Revalidation: the same version is a 304 without a body, also
        // with a weak tag among others; another version gets the file.
        let weak = format!("\"other\", W/{etag}");
        for tag in [etag.as_str(), weak.as_str()] {
            let response = get_with(
                &running,
                herald_hub::BROWSER_MODULE_PATH,
                &[("if-none-match", tag)],
            )
            .await;
            assert_eq!(response.status(), 304, "{tag}");
            assert_eq!(header(&response, "etag"), etag);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert!(body.is_empty());
        }
        let response = get_with(
            &running,
            herald_hub::BROWSER_MODULE_PATH,
            &[("if-none-match", "\"0000000000000000\"")],
        )
        .await;
        assert_eq!(response.status(), 200);
    }
}

// With CORS origins configured, a listed origin is answered as everywhere
// else (echoed, with credentials) and any other still gets `*`.
#[tokio::test]
async fn the_browser_module_under_a_cors_policy() {
    let hub = Hub::new(HubConfig {
        anonymous: true,
        cors_origins: vec!["https://listed.example".into()],
        ..HubConfig::default()
    })
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(herald_hub::server::Server::new(&hub).serve(listener, std::future::pending()));
    let running = Running { addr, hub };
    let path = herald_hub::BROWSER_MODULE_PATH;
    let listed = get_with(&running, path, &[("origin", "https://listed.example")]).await;
    assert_eq!(
        header(&listed, "access-control-allow-origin"),
        "https://listed.example"
    );
    assert_eq!(header(&listed, "access-control-allow-credentials"), "true");
    let other = get_with(&running, path, &[("origin", "https://other.example")]).await;
    assert_eq!(header(&other, "access-control-allow-origin"), "*");
    assert_eq!(header(&other, "access-control-allow-credentials"), "");
}
