//! A to-do list whose page updates live: an axum application that mounts
//! the hub beside its own routes and publishes from its handlers.
//!
//! ```text
//! cargo run -p herald-hub --example todo        # then open http://127.0.0.1:3000
//! cargo run -p herald-hub --example todo -- 127.0.0.1:4000
//! ```
//!
//! Open the page in two windows: an item added or ticked in one appears
//! in the other at once. The application's routes (`/`, `/todos`) and the
//! hub's (`/hub/.well-known/mercure`, `/hub/metrics`, ...) share one
//! listener, served by [`Server`], which keeps idle subscribers at ~2 KiB
//! each and ends their streams on shutdown.

mod app;

use herald_hub::server::Server;
use herald_hub::{Hub, HubConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    // The page subscribes without a token (its updates are public), and
    // only the application publishes (`Hub::publish` needs no key). History
    // is in memory here; `Hub::with_history` and `RedbHistory` make it
    // durable.
    let hub = Hub::new(HubConfig {
        anonymous: true,
        ui: false,
        ..HubConfig::default()
    })?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("to-do list on http://{}", listener.local_addr()?);
    Server::new(&hub)
        .router(app::router(hub.clone()))
        .stream_path(app::stream_path())
        .serve(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
