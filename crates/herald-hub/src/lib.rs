//! herald-hub: a Mercure-compatible Server-Sent Events hub, as a library.
//!
//! Backends publish updates with a form POST; browsers subscribe with a
//! plain `EventSource`; the hub stores each update in history, fans it out
//! to every matching subscriber, and replays what a reconnecting client
//! missed from its `Last-Event-ID`. It speaks both revisions of the Mercure
//! protocol on one endpoint ([`protocol::Protocol`]): draft-07, what Mercure
//! 0.x clients speak (`topic` selectors, the `mercure` JWT claim), and
//! draft-08, Mercure 1.0 (`match` and `match_urlpattern` matchers, OAuth
//! access tokens from trusted issuers, active subscriptions).
//!
//! # Layout
//!
//! The publish path, in order: the request's token is found (`http`) and
//! verified as its revision's ([`auth`] for draft-07 tokens,
//! [`access_token`] for draft-08 ones) into grants; `protocol` parses the
//! form and [`Update`] checks and encodes it once; the grants must cover
//! every topic; the `publisher` appends to [`history`] (one batch per
//! commit), and the `dispatcher`, fed in log order (by the publisher, or on
//! a log shared by several nodes by a reader following it), hands the
//! stored entries to `fanout`, which queues each one (an `Arc`, encoded
//! once) for every matching, authorized subscriber. The subscribe path:
//! `protocol` parses the selectors or matchers, `matcher` compiles them
//! (once per distinct matcher), the token's grants admit the subscriber,
//! `fanout` registers it, `http` replays history after its `Last-Event-ID`
//! and then streams live entries, with heartbeats. With active
//! subscriptions on, `presence` announces each subscription and keeps the
//! list the subscription API serves. `topic` compiles draft-07 URI
//! templates. `metrics` counts everything. `http` also serves the
//! browser module pages import to subscribe ([`BROWSER_MODULE_PATH`]);
//! `ui` serves the web page and its live stats stream; [`server`] is the accept loop (plain HTTP or
//! HTTPS, HTTP/1.1 and HTTP/2 on one listener, graceful shutdown).
//!
//! # Features
//!
//! An application takes only the parts it uses (`default-features =
//! false`, then the ones it wants); the `herald` binary turns all on.
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | `redb`  | on  | `history::RedbHistory`, the durable history in one file |
//! | `tls`   | on  | HTTPS in `server::Server` (`TlsConfig`, self-signed certificates) |
//! | `ui`    | on  | the web UI and its stats stream ([`HubConfig::ui`]; asked for without the feature, [`Hub::new`] refuses with [`BuildError::FeatureOff`]) |
//! | `redis` | off | `history::RedisHistory`: hub nodes sharing one log in Redis Streams, with presence across nodes |
//!
//! # Example
//!
//! The hub inside an application: its routes nested beside the
//! application's own, its updates published from the application's
//! handlers with [`Hub::publish`]. [`server::Server`] serves the whole
//! router (HTTP/1.1 and HTTP/2, plain or TLS); it keeps an idle subscriber
//! at ~2 KiB, drops clients that stop reading, and ends every stream at
//! shutdown, which `axum::serve` does not; and it gives the hub each
//! client's address, for [`HubConfig::max_streams_per_client`] (under
//! `axum::serve`, serve the router with
//! `into_make_service_with_connect_info::<SocketAddr>()` for that). A whole
//! application is in `examples/todo`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::routing::post;
//! use herald_hub::PublishForm;
//! use herald_hub::server::Server;
//! use herald_hub::{Hub, HubConfig, HUB_PATH};
//!
//! let hub = Hub::new(HubConfig { anonymous: true, ..HubConfig::default() })?;
//! let publisher = hub.clone();
//! let app = axum::Router::new()
//!     .route("/orders", post(move || async move {
//!         let update = PublishForm {
//!             topics: vec!["https://shop.example/orders".into()],
//!             data: "{\"status\":\"placed\"}".into(),
//!             ..PublishForm::default()
//!         };
//!         match publisher.publish(update).await {
//!             Ok(_id) => "placed",
//!             Err(_) => "placed, not announced",
//!         }
//!     }))
//!     .nest("/hub", hub.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! Server::new(&hub)
//!     .router(app)
//!     .stream_path(format!("/hub{HUB_PATH}"))
//!     .serve(listener, async {
//!         let _ = tokio::signal::ctrl_c().await;
//!     })
//!     .await?;
//! # Ok(()) }
//! ```
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod access_token;
pub mod auth;
mod config;
mod dispatcher;
mod fanout;
// Not an API: wrappers for the fuzz targets (see the module). Compiled in
// tests too, so that CI builds and lints it without the feature.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod health;
pub mod history;
mod http;
mod hub;
mod matcher;
mod metrics;
mod presence;
mod protocol;
mod publisher;
pub mod server;
mod topic;
#[cfg(feature = "ui")]
mod ui;
mod update;

pub use config::{HubConfig, JwtKey, DEFAULT_MAX_PATTERNS};
pub use http::{IpRange, IpRangeError, BROWSER_MODULE_PATH, HUB_PATH};
pub use hub::{BuildError, Hub, PublishError};
pub use matcher::{HubUrl, MatchType, DEFAULT_HUB_URL};
pub use metrics::{MetricsSnapshot, SlowDisconnects};
pub use protocol::{Protocol, ProtocolError, ProtocolLimits, PublishForm, Revision};
#[cfg(feature = "ui")]
pub use ui::STATS_PATH;
pub use update::Update;

impl Hub {
    /// The hub's HTTP routes, ready for `axum::serve` or to be nested in an
    /// application's router.
    pub fn router(&self) -> axum::Router {
        http::router(self.clone())
    }
}

// The README's examples are compiled and run as doctests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
