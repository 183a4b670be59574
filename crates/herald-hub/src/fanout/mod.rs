//! Fan-out: the registry of live subscribers and the delivery of each
//! stored update to the ones it concerns.
//!
//! This is the hot end of the publish path: history has assigned the
//! update its sequence number, its frame is encoded once, and here it is
//! handed (as an `Arc`, no copy) to the bounded queue of every matching,
//! authorized subscriber. Subscribers are indexed so that a publish does not
//! scan all of them: exact selectors by topic in a hash map; `*` in one set;
//! URI templates per template, each checked once per topic through the
//! matcher cache.
//!
//! A subscriber whose queue is full is removed from the registry: its
//! stream then ends after what is already queued, and the client resumes
//! from history with `Last-Event-ID`. Memory never grows because one
//! client is slow.

mod mailbox;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::auth::selectors_match;
use crate::history::Entry;
use crate::metrics::Metrics;
use crate::topic::{is_template, TopicMatcher};

pub(crate) use mailbox::Inbox;
use mailbox::{Mailbox, Refused};

/// What a subscriber may receive: its selectors, and the selectors of its
/// token that unlock private updates.
#[derive(Debug)]
pub(crate) struct Interest {
    pub(crate) selectors: Vec<String>,
    /// `mercure.subscribe` of the subscriber's token; `None` when anonymous.
    pub(crate) private_selectors: Option<Vec<String>>,
}

impl Interest {
    /// Whether an entry is for this subscriber: a selector matches one of
    /// its topics, and, when private, the token allows one of its topics.
    pub(crate) fn wants(&self, matcher: &TopicMatcher, entry: &Entry) -> bool {
        any_topic_matches(matcher, &self.selectors, entry) && self.may_see(matcher, entry)
    }

    /// The authorization half of [`Interest::wants`].
    fn may_see(&self, matcher: &TopicMatcher, entry: &Entry) -> bool {
        if !entry.private {
            return true;
        }
        let Some(allowed) = &self.private_selectors else {
            return false;
        };
        any_topic_matches(matcher, allowed, entry)
    }
}

/// Whether one of `selectors` matches one of the entry's topics.
fn any_topic_matches(matcher: &TopicMatcher, selectors: &[String], entry: &Entry) -> bool {
    entry
        .topics
        .iter()
        .any(|topic| selectors_match(matcher, selectors, topic))
}

#[derive(Debug)]
struct Subscriber {
    id: u64,
    interest: Arc<Interest>,
    mailbox: Arc<Mailbox>,
}

impl Drop for Subscriber {
    /// Out of the registry (gone, too slow, or shutdown): the stream ends
    /// after what is already queued.
    fn drop(&mut self) {
        self.mailbox.close();
    }
}

#[derive(Debug, Default)]
struct Registry {
    next_id: u64,
    by_id: HashMap<u64, Arc<Subscriber>>,
    /// Exact selector → subscribers.
    exact: HashMap<String, HashMap<u64, Arc<Subscriber>>>,
    /// Subscribers with the `*` selector.
    any: HashMap<u64, Arc<Subscriber>>,
    /// URI template → subscribers.
    templates: HashMap<String, HashMap<u64, Arc<Subscriber>>>,
}

impl Registry {
    fn remove(&mut self, id: u64) -> bool {
        let Some(sub) = self.by_id.remove(&id) else {
            return false;
        };
        for selector in &sub.interest.selectors {
            let index = if selector == "*" {
                Some(&mut self.any)
            } else if is_template(selector) {
                self.templates.get_mut(selector)
            } else {
                self.exact.get_mut(selector)
            };
            if let Some(index) = index {
                index.remove(&id);
                if index.is_empty() && selector != "*" {
                    self.templates.remove(selector);
                    self.exact.remove(selector);
                }
            }
        }
        true
    }
}

/// The registry of live subscribers.
#[derive(Debug)]
pub(crate) struct Fanout {
    registry: RwLock<Registry>,
    matcher: Arc<TopicMatcher>,
    metrics: Arc<Metrics>,
    queue_capacity: usize,
    closed: AtomicBool,
}

/// Removes its subscriber from the registry when dropped, i.e. when the
/// stream ends for whatever reason.
#[derive(Debug)]
pub(crate) struct Registration {
    fanout: Arc<Fanout>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.fanout.remove(self.id);
        Metrics::dec(&self.fanout.metrics.subscribers);
    }
}

/// The hub is shutting down and takes no new subscribers.
#[derive(Debug)]
pub(crate) struct Closed;

impl Fanout {
    pub(crate) fn new(
        matcher: Arc<TopicMatcher>,
        metrics: Arc<Metrics>,
        queue_capacity: usize,
    ) -> Fanout {
        Fanout {
            registry: RwLock::new(Registry::default()),
            matcher,
            metrics,
            queue_capacity: queue_capacity.max(1),
            closed: AtomicBool::new(false),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Registry> {
        // Registry updates are single inserts and removes; a panic in one
        // cannot leave it half-changed in a way that matters to delivery.
        self.registry.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a subscriber; live entries for it arrive in the inbox
    /// until the registration is dropped or the subscriber is too slow.
    pub(crate) fn register(
        self: &Arc<Self>,
        interest: Arc<Interest>,
    ) -> Result<(Registration, Inbox), Closed> {
        let mailbox = Arc::new(Mailbox::default());
        let inbox = Inbox::new(Arc::clone(&mailbox));
        let mut registry = self.write();
        if self.closed.load(Ordering::Acquire) {
            return Err(Closed);
        }
        registry.next_id += 1;
        let id = registry.next_id;
        let sub = Arc::new(Subscriber {
            id,
            interest,
            mailbox,
        });
        for selector in &sub.interest.selectors {
            let index = if selector == "*" {
                &mut registry.any
            } else if is_template(selector) {
                registry.templates.entry(selector.clone()).or_default()
            } else {
                registry.exact.entry(selector.clone()).or_default()
            };
            index.insert(id, Arc::clone(&sub));
        }
        registry.by_id.insert(id, sub);
        drop(registry);
        Metrics::inc(&self.metrics.subscribers);
        Metrics::inc(&self.metrics.subscriptions_total);
        Ok((
            Registration {
                fanout: Arc::clone(self),
                id,
            },
            inbox,
        ))
    }

    fn remove(&self, id: u64) -> bool {
        self.write().remove(id)
    }

    /// Delivers stored entries, in order, to every subscriber they concern.
    pub(crate) fn dispatch(&self, entries: &[Arc<Entry>]) {
        let mut dropped = Vec::new();
        let mut delivered = 0u64;
        {
            let registry = self.read();
            let mut targets: Vec<&Arc<Subscriber>> = Vec::new();
            for entry in entries {
                targets.clear();
                let mut routes = 0;
                for topic in &entry.topics {
                    if let Some(subs) = registry.exact.get(topic) {
                        targets.extend(subs.values());
                        routes += 1;
                    }
                    for (template, subs) in &registry.templates {
                        if self.matcher.matches(template, topic) {
                            targets.extend(subs.values());
                            routes += 1;
                        }
                    }
                }
                if !registry.any.is_empty() {
                    targets.extend(registry.any.values());
                    routes += 1;
                }
                if routes > 1 {
                    targets.sort_unstable_by_key(|s| s.id);
                    targets.dedup_by_key(|s| s.id);
                }
                for sub in &targets {
                    if entry.private && !sub.interest.may_see(&self.matcher, entry) {
                        continue;
                    }
                    match sub.mailbox.push(Arc::clone(entry), self.queue_capacity) {
                        Ok(()) => delivered += 1,
                        Err(Refused::Full) => dropped.push((sub.id, true)),
                        Err(Refused::Closed) => dropped.push((sub.id, false)),
                    }
                }
            }
        }
        Metrics::add(&self.metrics.events_delivered_total, delivered);
        if !dropped.is_empty() {
            let mut registry = self.write();
            for (id, slow) in dropped {
                if registry.remove(id) && slow {
                    Metrics::inc(&self.metrics.slow_disconnects_total);
                    tracing::info!(
                        subscriber = id,
                        "closing a slow subscriber: its queue is full; it will resume from history"
                    );
                }
            }
        }
    }

    /// Whether [`Fanout::close`] was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Ends every stream (each after what is queued for it); new
    /// subscribers are still taken.
    pub(crate) fn disconnect_all(&self) {
        let mut registry = self.write();
        // Numbering goes on: a reused id would let an old registration's
        // drop remove a new subscriber.
        let fresh = Registry {
            next_id: registry.next_id,
            ..Registry::default()
        };
        let everyone = std::mem::replace(&mut *registry, fresh);
        drop(registry);
        // Dropping the subscribers closes their mailboxes.
        drop(everyone);
    }

    /// Ends every stream and refuses new subscribers (shutdown).
    pub(crate) fn close(&self) {
        // Set under the lock that `register` checks it under: nobody
        // registers after this.
        let registry = self.write();
        self.closed.store(true, Ordering::Release);
        drop(registry);
        self.disconnect_all();
    }
}
