//! The hub: one clonable handle over everything a running hub shares.
//!
//! [`Hub::new`] wires history, fan-out, the publish writer, auth and
//! metrics together; [`Hub::router`] serves them over HTTP; [`Hub::publish`]
//! lets an embedding application publish without HTTP; [`Hub::shutdown`]
//! ends every stream so that a graceful server stop completes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::task::TaskTracker;

use crate::access_token::AccessTokenVerifier;
use crate::auth::{AuthError, JwtVerifier, TokenCache};
use crate::config::HubConfig;
use crate::dispatcher::{self, Dispatcher};
use crate::fanout::Fanout;
use crate::health::Health;
use crate::history::{History, HistoryError, MemoryHistory};
use crate::http::client_limit::ClientLimit;
use crate::http::publish_rate::PublishRate;
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::presence::{Membership, Presence};
use crate::protocol::{Protocol, ProtocolError, PublishForm, Revision};
use crate::publisher::Publisher;
use crate::topic::TopicMatcher;
use crate::update::Update;

/// How often a paced drain ends its next share of streams.
const DRAIN_STEP: Duration = Duration::from_millis(100);
/// The fewest streams a step of a paced drain ends.
const DRAIN_MIN_SHARE: usize = 10;

/// The hub could not be built from its configuration.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// A JWT key is unusable for its algorithm.
    Key {
        /// `publisher` or `subscriber`.
        role: &'static str,
        /// What is wrong with it.
        error: AuthError,
    },
    /// The access-token configuration cannot work.
    AccessTokens(crate::access_token::ConfigError),
    /// The configuration asks for a part this build of the crate leaves
    /// out: turn its feature on.
    FeatureOff {
        /// What was asked for.
        what: &'static str,
        /// The crate feature that provides it.
        feature: &'static str,
    },
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Key { role, error } => write!(f, "the {role} JWT key is unusable: {error}"),
            BuildError::AccessTokens(error) => error.fmt(f),
            BuildError::FeatureOff { what, feature } => write!(
                f,
                "{what} needs herald-hub's `{feature}` feature, which this build leaves out"
            ),
        }
    }
}

impl std::error::Error for BuildError {}

/// A publish the hub refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum PublishError {
    /// The update breaks a rule of the protocol (e.g. a line break in the
    /// id); the error names the field.
    Invalid(ProtocolError),
    /// History could not store it; nothing was dispatched.
    History(HistoryError),
}

impl std::fmt::Display for PublishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublishError::Invalid(e) => e.fmt(f),
            PublishError::History(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for PublishError {}

pub(crate) struct Shared {
    pub(crate) config: HubConfig,
    pub(crate) history: Arc<dyn History>,
    pub(crate) fanout: Arc<Fanout>,
    pub(crate) publisher: Publisher,
    /// Kept here so that the reader of a shared log stops with the hub.
    _dispatcher: Arc<Dispatcher>,
    pub(crate) health: Arc<Health>,
    /// The active subscriptions, when `HubConfig::subscriptions`.
    pub(crate) presence: Option<Arc<Presence>>,
    /// This node's records in the shared log's roster, when presence is on
    /// and the log is shared.
    pub(crate) membership: Option<Arc<Membership>>,
    /// The announcements of subscriptions that ended, still being
    /// published: a graceful stop waits for them ([`Hub::settle`]).
    pub(crate) announcements: TaskTracker,
    /// Publishes per token, when `HubConfig::max_publish_rate` is set.
    pub(crate) publish_rate: Option<PublishRate>,
    /// Streams per client, when `HubConfig::max_streams_per_client` is set.
    pub(crate) client_limit: Option<Arc<ClientLimit>>,
    pub(crate) matcher: Arc<TopicMatcher>,
    pub(crate) publisher_jwt: Option<JwtVerifier>,
    /// Publisher tokens `publisher_jwt` verified, kept for their next use
    /// (the key cannot change while this hub lives).
    pub(crate) publisher_tokens: TokenCache,
    pub(crate) subscriber_jwt: Option<JwtVerifier>,
    /// Verifies draft-08 access tokens, when issuers are configured.
    pub(crate) access_tokens: Option<AccessTokenVerifier>,
    pub(crate) metrics: Arc<Metrics>,
    /// The heartbeat frame, encoded once.
    pub(crate) heartbeat: Bytes,
}

/// A running hub. Cheap to clone; every clone is the same hub.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use herald_hub::server::Server;
/// use herald_hub::{Hub, HubConfig};
///
/// let hub = Hub::new(HubConfig { anonymous: true, ..HubConfig::default() })?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// Server::new(&hub).serve(listener, std::future::pending()).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Hub {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub with the in-memory history sized by `config.history_size`.
    /// Must be called within a tokio runtime.
    pub fn new(config: HubConfig) -> Result<Hub, BuildError> {
        let history = Arc::new(MemoryHistory::new(config.history_size));
        Hub::with_history(config, history)
    }

    /// A hub storing its history in `history`. Must be called within a
    /// tokio runtime.
    pub fn with_history(config: HubConfig, history: Arc<dyn History>) -> Result<Hub, BuildError> {
        if config.ui && !cfg!(feature = "ui") {
            return Err(BuildError::FeatureOff {
                what: "the web UI (`HubConfig::ui`)",
                feature: "ui",
            });
        }
        let verifier = |role, key: &Option<crate::config::JwtKey>| {
            key.as_ref()
                .map(|k| JwtVerifier::new(k.algorithm, &k.key))
                .transpose()
                .map_err(|error| BuildError::Key { role, error })
        };
        let publisher_jwt = verifier("publisher", &config.publisher_key)?;
        let subscriber_jwt = verifier("subscriber", &config.subscriber_key)?;
        let access_tokens = config
            .access_tokens
            .clone()
            .map(AccessTokenVerifier::new)
            .transpose()
            .map_err(BuildError::AccessTokens)?;
        if let (Some(verifier), Ok(runtime)) =
            (&access_tokens, tokio::runtime::Handle::try_current())
        {
            // Keys at JWKS URLs: fetched now and refreshed while the hub
            // lives; a token arriving first fetches them itself.
            let verifier = verifier.clone();
            runtime.spawn(async move { verifier.start().await });
        }
        let matcher = Arc::new(TopicMatcher::new(config.matcher_cache));
        let metrics = Arc::new(Metrics::default());
        let fanout = Arc::new(Fanout::new(
            config.hub_url.clone(),
            Arc::clone(&metrics),
            crate::fanout::Bound {
                events: config.queue_capacity,
                bytes: config.queue_bytes,
            },
            (config.max_patterns, config.max_subscribers),
        ));
        let health = Arc::new(Health::new(Arc::clone(&metrics)));
        // Live entries start after what the log holds now: a subscriber
        // that wants older ones replays them.
        let last_seq = history.stats().last_seq;
        // On a shared log, the subscriptions of the other nodes are in the
        // roster, loaded once the hub runs.
        let membership = config
            .subscriptions
            .then(|| history.roster())
            .flatten()
            .map(|roster| Arc::new(Membership::new(roster)));
        let presence = config.subscriptions.then(|| {
            Arc::new(Presence::new(
                config.hub_url.as_url().path(),
                last_seq,
                membership.is_some(),
            ))
        });
        let dispatcher = Arc::new(Dispatcher::new(
            Arc::clone(&fanout),
            last_seq,
            presence.clone(),
        ));
        let publisher = match history.follow(last_seq) {
            Some(follow) => {
                tokio::spawn(dispatcher::follow(
                    follow,
                    Arc::downgrade(&dispatcher),
                    Arc::clone(&health),
                ));
                Publisher::shared(Arc::clone(&history), Arc::clone(&health))
            }
            None => {
                // Only appends report this log's health: probe it while it
                // fails, so that readiness comes back without a publish.
                tokio::spawn(crate::health::retry(
                    Arc::downgrade(&history),
                    Arc::downgrade(&health),
                ));
                Publisher::local(
                    Arc::clone(&history),
                    Arc::clone(&dispatcher),
                    Arc::clone(&health),
                )
            }
        };
        let publish_rate = config.max_publish_rate.map(PublishRate::new);
        let client_limit = config
            .max_streams_per_client
            .filter(|max| *max > 0)
            .map(|max| Arc::new(ClientLimit::new(max, Arc::clone(&metrics))));
        let hub = Hub {
            shared: Arc::new(Shared {
                config,
                history,
                fanout,
                publisher,
                _dispatcher: dispatcher,
                health,
                presence,
                membership,
                announcements: TaskTracker::new(),
                publish_rate,
                client_limit,
                matcher,
                publisher_jwt,
                publisher_tokens: TokenCache::default(),
                subscriber_jwt,
                access_tokens,
                metrics,
                heartbeat: herald_sse::comment(""),
            }),
        };
        if let Some(membership) = &hub.shared.membership {
            tokio::spawn(crate::presence::membership::run(
                Arc::downgrade(&hub.shared),
                membership.lease(),
            ));
        }
        Ok(hub)
    }

    /// The configuration the hub runs with.
    pub fn config(&self) -> &HubConfig {
        &self.shared.config
    }

    /// Publishes an update without HTTP or authorization (the embedding
    /// application is trusted, but its updates follow the protocol's rules
    /// like any other). Returns the event id.
    pub async fn publish(&self, form: PublishForm) -> Result<String, PublishError> {
        let update = self.update(form)?;
        self.publish_update(update).await
    }

    /// Checks `form` against the rules every update follows, whoever
    /// publishes it (draft-08's stricter character rules when the hub
    /// speaks only draft-08), and encodes it.
    pub fn update(&self, form: PublishForm) -> Result<Update, PublishError> {
        self.update_as(form, Revision::Draft07)
    }

    /// [`Hub::update`] for a publisher of `revision`: a draft-08 publisher
    /// follows draft-08's character rules on any hub.
    pub(crate) fn update_as(
        &self,
        form: PublishForm,
        revision: Revision,
    ) -> Result<Update, PublishError> {
        let config = &self.shared.config;
        let strict = config.protocol == Protocol::Draft08 || revision == Revision::Draft08;
        Update::new(form, &config.hub_url, strict).map_err(PublishError::Invalid)
    }

    /// Stores `update` and hands it to fan-out; returns its id once stored.
    pub async fn publish_update(&self, update: Update) -> Result<String, PublishError> {
        let stored = self
            .shared
            .publisher
            .publish(update.into_entry())
            .await
            .map_err(PublishError::History)?;
        Metrics::inc(&self.shared.metrics.publishes_total);
        Ok(stored.id.clone())
    }

    /// The counters behind `/metrics`.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared.metrics.snapshot(self.shared.history.stats())
    }

    /// Ends every subscriber's stream and refuses new subscriptions, so a
    /// graceful server shutdown can complete. Publishes still work until
    /// the hub is dropped.
    pub fn shutdown(&self) {
        self.shared.fanout.close();
    }

    /// [`Hub::shutdown`] paced over `window`: new subscriptions are refused
    /// (and `/readyz` says so) at once, and the open streams end a share at
    /// a time, evenly over the window, so that their clients reconnect to
    /// the other nodes spread out rather than in one second. Returns early
    /// once every stream has ended.
    pub async fn drain(&self, window: Duration) {
        let fanout = &self.shared.fanout;
        if window.is_zero() {
            fanout.close();
            return;
        }
        fanout.refuse_new();
        // A share every step of 100 ms, spread over the window; but never
        // fewer than DRAIN_MIN_SHARE streams a step: a handful of clients
        // make no storm, and need not wait.
        let total = fanout.len();
        let steps = u32::try_from(window.as_millis() / DRAIN_STEP.as_millis())
            .unwrap_or(u32::MAX)
            .min(u32::try_from(total.div_ceil(DRAIN_MIN_SHARE)).unwrap_or(u32::MAX))
            .max(1);
        let per_step = total.div_ceil(steps as usize).max(1);
        let mut tick = tokio::time::interval(window / steps);
        for _ in 0..steps {
            tick.tick().await;
            if fanout.disconnect_some(per_step) == 0 {
                break;
            }
        }
        fanout.close();
    }

    /// Waits, for at most `limit`, until what the hub still publishes on
    /// its own behalf after [`Hub::shutdown`] (the `active: false` events of
    /// the streams it ended) is stored, so that a graceful stop loses none
    /// of them. Returns whether everything was.
    pub async fn settle(&self, limit: Duration) -> bool {
        let announcements = &self.shared.announcements;
        announcements.close();
        let settled = tokio::time::timeout(limit, announcements.wait())
            .await
            .is_ok();
        announcements.reopen();
        settled
    }

    /// Whether [`Hub::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.fanout.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll};

    use super::*;
    use crate::fanout::{Inbox, Interest};
    use crate::matcher::Matcher;

    fn ended(inbox: &mut Inbox) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        matches!(inbox.poll_recv(&mut cx), Poll::Ready(None))
    }

    // The default configuration builds whatever the build holds; asking
    // for the UI of a build without it is refused by name, not ignored.
    #[tokio::test]
    async fn a_part_left_out_of_the_build_is_refused_by_name() {
        assert!(Hub::new(HubConfig::default()).is_ok());
        let with_ui = Hub::new(HubConfig {
            ui: true,
            ..HubConfig::default()
        });
        if cfg!(feature = "ui") {
            assert!(with_ui.is_ok());
        } else {
            let Err(error) = with_ui else {
                panic!("a build without the ui feature built a hub with the UI on");
            };
            assert!(matches!(
                error,
                BuildError::FeatureOff { feature: "ui", .. }
            ));
            assert!(error.to_string().contains("`ui` feature"), "{error}");
        }
    }

    // A paced drain refuses new subscribers at once and ends the open
    // streams a share per step, over the window, not all in one instant;
    // a handful of streams end at once.
    #[tokio::test(start_paused = true)]
    async fn a_drain_ends_streams_spread_over_its_window() {
        let hub = Hub::new(HubConfig::default()).unwrap();
        let fanout = &hub.shared.fanout;
        let interest = Arc::new(Interest {
            matchers: vec![Matcher::Exact("t".into())],
            grants: None,
        });
        let mut held: Vec<_> = (0..200)
            .map(|_| fanout.register(Arc::clone(&interest)).unwrap())
            .collect();
        let draining = tokio::spawn({
            let hub = hub.clone();
            async move { hub.drain(Duration::from_secs(1)).await }
        });
        tokio::task::yield_now().await;
        assert!(hub.is_shutting_down());
        assert!(fanout.register(Arc::clone(&interest)).is_err());
        let mut ended_by_step = Vec::new();
        for _ in 0..10 {
            ended_by_step.push(
                held.iter_mut()
                    .map(|(_, inbox)| ended(inbox))
                    .filter(|e| *e)
                    .count(),
            );
            tokio::time::advance(DRAIN_STEP).await;
            tokio::task::yield_now().await;
        }
        draining.await.unwrap();
        let few = Hub::new(HubConfig::default()).unwrap();
        let mut three: Vec<_> = (0..3)
            .map(|_| few.shared.fanout.register(Arc::clone(&interest)).unwrap())
            .collect();
        few.drain(Duration::from_secs(3600)).await;
        assert!(three.iter_mut().all(|(_, inbox)| ended(inbox)));
        // Twenty per step of 100 ms (200 streams over 10 steps).
        assert_eq!(
            ended_by_step,
            [20, 40, 60, 80, 100, 120, 140, 160, 180, 200]
        );
        assert!(held.iter_mut().all(|(_, inbox)| ended(inbox)));
    }
}
