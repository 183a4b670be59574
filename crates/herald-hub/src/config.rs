//! The hub's configuration, as plain data.
//!
//! The binary fills a [`HubConfig`] from flags, `HERALD_*` variables and a
//! TOML file; an application embedding the hub builds one in code. Defaults
//! follow the reference Mercure hub wherever it has one.

use std::time::Duration;

use crate::http::IpRange;
use crate::matcher::HubUrl;
use crate::protocol::{Protocol, ProtocolLimits};

/// The default of [`HubConfig::queue_bytes`]: 4 MiB, four of the largest
/// updates the default publish limit accepts. A subscriber that reads is
/// rarely more than a few events behind; one that stops reading holds no
/// more than this (besides its socket's buffers) until it is closed.
const DEFAULT_QUEUE_BYTES: usize = 4 << 20;

/// A JWT verification key and its algorithm.
#[derive(Clone, PartialEq, Eq)]
pub struct JwtKey {
    /// The algorithm tokens must be signed with.
    pub algorithm: jsonwebtoken::Algorithm,
    /// The HMAC secret for HS*, or a PEM public key for RS*, PS* and ES*.
    pub key: Vec<u8>,
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("JwtKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Everything the hub can be configured with.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Key for publishers' tokens. Without one, nobody can publish over HTTP.
    pub publisher_key: Option<JwtKey>,
    /// Key for subscribers' tokens. Without one, subscriber tokens are
    /// refused and only anonymous subscriptions (if allowed) work.
    pub subscriber_key: Option<JwtKey>,
    /// Whether subscribers without a token may subscribe (to public updates).
    pub anonymous: bool,
    /// Origins whose pages may read the hub cross-origin with credentials
    /// (each echoed back, with `Access-Control-Allow-Credentials`). `*`
    /// lets any other origin read anonymously: a literal `*`, never with
    /// credentials. None of them admits a cookie publish: that is
    /// `publish_origins`.
    pub cors_origins: Vec<String>,
    /// Origins allowed to publish with the cookie (CSRF guard), filled only
    /// from its own option, never from `cors_origins`. `*` allows any.
    pub publish_origins: Vec<String>,
    /// Interval between heartbeat comments on idle streams; zero disables.
    pub heartbeat: Duration,
    /// Events kept in the in-memory history.
    pub history_size: usize,
    /// Largest publish body accepted, in bytes.
    pub max_body: usize,
    /// Topic, selector and length limits.
    pub limits: ProtocolLimits,
    /// Events a subscriber may have queued before it counts as slow and its
    /// stream is closed.
    pub queue_capacity: usize,
    /// Bytes of events (by [`crate::history::Entry::size`]) a subscriber
    /// may have queued before it counts as slow and its stream is closed.
    /// One event larger than this still reaches a subscriber whose queue
    /// is empty: the bound is on falling behind, not on one update's size.
    /// Default 4 MiB.
    pub queue_bytes: usize,
    /// Compiled URI templates kept in the matcher cache.
    pub matcher_cache: usize,
    /// Most distinct URI templates and URL patterns the subscribers may
    /// hold at once: each is compiled once and tested at publishes whose
    /// topic begins like it, so this bounds both memory and the worst
    /// publish. A subscription that would pass it gets a 429.
    pub max_patterns: usize,
    /// The longest a stream lives: it then ends, each a random 0 to 20%
    /// sooner, and the client reconnects (to another node, perhaps) with its
    /// token checked again. `None`: until the token expires or the client
    /// leaves.
    pub max_stream_lifetime: Option<Duration>,
    /// Publishes per second one publisher token may make (in bursts of as
    /// many); past it, 429 with `Retry-After`. `None`: no limit (publishers
    /// hold keys the operator issued; the limit is for hubs shared by
    /// several applications).
    pub max_publish_rate: Option<u32>,
    /// Most subscribers (event streams) at once, over every protocol; past
    /// it, a subscription gets a 503 with `Retry-After`. What it bounds is
    /// memory (about 2 KiB per idle stream): open files are guarded apart,
    /// by the server (`server::Server::http1_stream_connections`), because
    /// HTTP/2 streams share their connection's. Default: no limit.
    pub max_subscribers: usize,
    /// Most event streams one client may hold at once; past it, a
    /// subscription gets a 429 with `Retry-After` (draft-08
    /// §Subscription: limits per client, per source address or token
    /// subject). A client is the subject (`sub`) of its verified token, or,
    /// without one, its address (an IPv6 address by its /64); see
    /// `trusted_proxies` for clients behind a reverse proxy. The address
    /// comes from [`crate::server::Server`], or, for an application that
    /// serves [`crate::Hub::router`] itself, from axum's `ConnectInfo`
    /// (`into_make_service_with_connect_info::<SocketAddr>()`); served
    /// without it, only subscribers with a subject are limited. `None` (or
    /// `Some(0)`): no limit.
    pub max_streams_per_client: Option<usize>,
    /// Reverse proxies whose `X-Forwarded-For` is believed: a request
    /// from one of these addresses counts against the right-most address
    /// of that list that is not one of them. Empty: the peer address is
    /// the client, whatever the request says.
    pub trusted_proxies: Vec<IpRange>,
    /// Which Mercure revisions the hub speaks: draft-07, draft-08 or both.
    pub protocol: Protocol,
    /// The hub's public URL: the base of relative URL patterns and topics,
    /// and the root of the namespace reserved for the hub's own events.
    pub hub_url: HubUrl,
    /// Draft-08 access tokens: the trusted issuers and their keys (`None`:
    /// only draft-07 tokens are accepted).
    pub access_tokens: Option<crate::access_token::AccessTokenConfig>,
    /// Active subscriptions: publish an event when a subscription starts
    /// and ends, and serve the subscription API (`/.well-known/mercure/
    /// subscriptions`). Off by default: each subscription then costs two
    /// updates in history.
    pub subscriptions: bool,
    /// Whether to serve the web UI (`/`) and its live stats stream
    /// (`/.well-known/herald/stats`). Turn it off in production if you do
    /// not want them public.
    pub ui: bool,
}

/// The default of [`HubConfig::max_patterns`].
pub const DEFAULT_MAX_PATTERNS: usize = 10_000;

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            publisher_key: None,
            subscriber_key: None,
            anonymous: false,
            cors_origins: Vec::new(),
            publish_origins: Vec::new(),
            heartbeat: Duration::from_secs(40),
            history_size: 10_000,
            max_body: 1 << 20,
            limits: ProtocolLimits::default(),
            queue_capacity: 1024,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            matcher_cache: crate::topic::DEFAULT_CACHE_CAPACITY,
            max_patterns: DEFAULT_MAX_PATTERNS,
            max_stream_lifetime: None,
            max_publish_rate: None,
            max_subscribers: usize::MAX,
            max_streams_per_client: None,
            trusted_proxies: Vec::new(),
            ui: cfg!(feature = "ui"),
            protocol: Protocol::default(),
            hub_url: HubUrl::default(),
            subscriptions: false,
            access_tokens: None,
        }
    }
}
