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
//! [`access_token`] for draft-08 ones) into grants; [`protocol`] parses the
//! form and [`Update`] checks and encodes it once; the grants must cover
//! every topic; the `publisher` appends to [`history`] (one batch per
//! commit), and the `dispatcher`, fed in log order (by the publisher, or on
//! a log shared by several nodes by a reader following it), hands the
//! stored entries to `fanout`, which queues each one (an `Arc`, encoded
//! once) for every matching, authorized subscriber. The subscribe path:
//! [`protocol`] parses the selectors or matchers, [`matcher`] compiles them
//! (once per distinct matcher), the token's grants admit the subscriber,
//! `fanout` registers it, `http` replays history after its `Last-Event-ID`
//! and then streams live entries, with heartbeats. With active
//! subscriptions on, `presence` announces each subscription and keeps the
//! list the subscription API serves. [`topic`] compiles draft-07 URI
//! templates. [`metrics`] counts everything. [`ui`] serves the web page
//! and its live stats stream; [`server`] is the accept loop (plain HTTP or
//! HTTPS, HTTP/1.1 and HTTP/2 on one listener, graceful shutdown).
//!
//! # Example
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use herald_hub::{Hub, HubConfig};
//!
//! let hub = Hub::new(HubConfig { anonymous: true, ..HubConfig::default() })?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! // With each client's address, for the limit of streams per client
//! // (`HubConfig::max_streams_per_client`).
//! let app = hub.router().into_make_service_with_connect_info::<std::net::SocketAddr>();
//! axum::serve(listener, app)
//!     .with_graceful_shutdown({
//!         let hub = hub.clone();
//!         async move {
//!             let _ = tokio::signal::ctrl_c().await;
//!             hub.shutdown(); // end every stream so the server can stop
//!         }
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
pub mod matcher;
pub mod metrics;
mod presence;
pub mod protocol;
mod publisher;
pub mod server;
pub mod topic;
pub mod ui;
mod update;

pub use config::{HubConfig, JwtKey, DEFAULT_MAX_PATTERNS};
pub use http::{IpRange, IpRangeError, HUB_PATH};
pub use hub::{BuildError, Hub, PublishError};
pub use update::Update;

impl Hub {
    /// The hub's HTTP routes, ready for `axum::serve` or to be nested in an
    /// application's router.
    pub fn router(&self) -> axum::Router {
        http::router(self.clone())
    }
}
