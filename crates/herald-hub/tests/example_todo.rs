//! The example application (examples/todo): its own routes and the hub
//! nested under `/hub` on one `Server`; a change made through the
//! application's API reaches a page's subscription, and a reconnecting
//! page gets what it missed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/todo/app.rs"]
#[allow(dead_code)]
mod app;
mod common;

use std::net::SocketAddr;

use bytes::Bytes;
use common::*;
use herald_hub::server::Server;
use herald_hub::{Hub, HubConfig};
use http_body_util::Full;
use hyper::{Request, StatusCode};

async fn start_app() -> (Hub, SocketAddr) {
    let hub = Hub::new(HubConfig {
        anonymous: true,
        ui: false,
        ..HubConfig::default()
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(&hub)
        .router(app::router(hub.clone()))
        .stream_path(app::stream_path());
    tokio::spawn(server.serve(listener, std::future::pending()));
    (hub, addr)
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(
        Request::get(format!("http://{addr}{path}"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await
}

async fn post(addr: SocketAddr, path: &str, body: &str) -> Reply {
    request(
        Request::post(format!("http://{addr}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap(),
    )
    .await
}

async fn subscribe_to_the_list(addr: SocketAddr, last_event_id: Option<&str>) -> Stream {
    let mut req = Request::get(format!(
        "http://{addr}{}?topic={}",
        app::stream_path(),
        enc(app::TOPIC)
    ));
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let mut stream = subscribe_request(req.body(Full::new(Bytes::new())).unwrap()).await;
    assert_eq!(stream.status, StatusCode::OK);
    stream.ready().await;
    stream
}

fn change(event: &herald_sse::Event) -> serde_json::Value {
    serde_json::from_str(event.data()).unwrap()
}

#[tokio::test]
async fn a_change_made_through_the_app_reaches_every_open_page() {
    let (_hub, addr) = start_app().await;
    let page = get(addr, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("/hub/.well-known/mercure"),
        "{}",
        page.body
    );

    let mut open_page = subscribe_to_the_list(addr, None).await;
    let added = post(addr, "/todos", "title=write+the+docs").await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    let event = open_page.next_event_within(LONG).await.unwrap();
    assert_eq!(change(&event)["change"], "added");
    assert_eq!(change(&event)["todo"]["title"], "write the docs");
    let first_id = event.last_event_id().to_owned();

    let ticked = post(addr, "/todos/1/done", "").await;
    assert_eq!(ticked.status, StatusCode::OK, "{}", ticked.body);
    let event = open_page.next_event_within(LONG).await.unwrap();
    assert_eq!(change(&event)["change"], "done");
    assert_eq!(change(&event)["todo"]["done"], true);

    // A page that was away since the first change replays the second.
    let mut returning = subscribe_to_the_list(addr, Some(&first_id)).await;
    let replayed = returning.next_event_within(LONG).await.unwrap();
    assert_eq!(change(&replayed)["change"], "done");

    let listed = get(addr, "/todos").await;
    let todos: serde_json::Value = serde_json::from_str(&listed.body).unwrap();
    assert_eq!(
        todos,
        serde_json::json!([{"id": 1, "title": "write the docs", "done": true}])
    );
}

#[tokio::test]
async fn the_apps_own_refusals_are_its_own_and_the_hubs_routes_stay_nested() {
    let (_hub, addr) = start_app().await;
    assert_eq!(
        post(addr, "/todos", "title=++").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(addr, "/todos/9/done", "").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(get(addr, "/hub/healthz").await.status, StatusCode::OK);
    // The hub is only where the application mounted it.
    assert_eq!(
        get(addr, "/.well-known/mercure?topic=x").await.status,
        StatusCode::NOT_FOUND
    );
}
