//! The axum baseline for `herald bench`: `GET /sub/{topic}` is an SSE
//! stream (axum's `Sse`) of whatever `POST /pub/{topic}` sends, one tokio
//! `broadcast` channel per topic. No history, no auth: the least a Rust
//! SSE server does. Usage: `axum-sse-peer [ADDR]` (default 127.0.0.1:9200).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::Router;
use futures_util::Stream;
use tokio::sync::broadcast;

/// Events a slow subscriber may fall behind before it skips (and loses) some.
const CAPACITY: usize = 1024;

type Topics = Arc<Mutex<HashMap<String, broadcast::Sender<Arc<str>>>>>;

fn channel(topics: &Topics, topic: &str) -> broadcast::Sender<Arc<str>> {
    let mut map = topics.lock().unwrap_or_else(|p| p.into_inner());
    map.entry(topic.to_owned())
        .or_insert_with(|| broadcast::channel(CAPACITY).0)
        .clone()
}

async fn subscribe(
    State(topics): State<Topics>,
    Path(topic): Path<String>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = channel(&topics, &topic).subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(data) => return Some((Ok(Event::default().data(&*data)), rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn publish(
    State(topics): State<Topics>,
    Path(topic): Path<String>,
    body: String,
) -> StatusCode {
    let _ = channel(&topics, &topic).send(Arc::from(body));
    StatusCode::OK
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9200".into());
    let topics: Topics = Arc::default();
    let app = Router::new()
        .route("/sub/{topic}", get(subscribe))
        .route("/pub/{topic}", post(publish))
        .with_state(topics);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("axum-sse peer listening on http://{addr}");
    // Stopped by a signal: endless streams would keep a graceful
    // shutdown waiting forever.
    axum::serve(listener, app).await
}
