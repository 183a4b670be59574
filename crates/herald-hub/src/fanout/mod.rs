//! Fan-out: the registry of live subscribers and the delivery of each
//! stored update to the ones it concerns.
//!
//! This is the hot end of the publish path: history has assigned the
//! update its sequence number, its frame is encoded once, and here it is
//! handed (as an `Arc`, no copy) to the bounded queue of every matching,
//! authorized subscriber. Subscribers are indexed so that a publish does not
//! scan all of them: exact matchers by topic in a hash map; `*` in one set;
//! URI templates and URL patterns per distinct pattern, each compiled once
//! when the first subscriber using it arrived, indexed by literal prefix
//! and bounded in number (`patterns.rs`).
//!
//! A subscriber whose queue is full (in events or in bytes, see
//! [`Bound`]) is removed from the registry: its stream then ends after
//! what is already queued, and the client resumes from history with
//! `Last-Event-ID`. Memory never grows because one client is slow. Every
//! such removal is counted as a slow disconnect, and so is a subscription
//! whose connection the server closed because its client stopped reading
//! ([`StallFlag`]), unless fan-out had already closed it.

mod mailbox;
mod patterns;
mod slow;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::history::Entry;
use crate::matcher::{HubUrl, Matcher, MatcherKey, Topic};
use crate::metrics::Metrics;

pub(crate) use mailbox::{Bound, Inbox};
use mailbox::{Mailbox, Refused};
use patterns::Patterns;
pub(crate) use slow::{SlowReason, StallFlag};

/// What a subscriber may receive: the topics its matchers select, and, of
/// private updates, those its token grants.
#[derive(Debug)]
pub(crate) struct Interest {
    /// What the subscriber asked for (routing).
    pub(crate) matchers: Vec<Matcher>,
    /// What the subscriber's token lets it read of private updates; `None`
    /// when anonymous.
    pub(crate) grants: Option<Vec<Matcher>>,
}

impl Interest {
    /// Whether an entry is for this subscriber: a matcher selects one of
    /// its topics, and, when private, the token grants one of its topics.
    pub(crate) fn wants(&self, entry: &Entry, hub_url: &HubUrl) -> bool {
        let topics = topics_of(entry, hub_url);
        any_matches(&self.matchers, &topics) && self.may_see(entry, &topics)
    }

    /// The authorization half of [`Interest::wants`].
    fn may_see(&self, entry: &Entry, topics: &[Topic<'_>]) -> bool {
        if !entry.private {
            return true;
        }
        self.grants
            .as_deref()
            .is_some_and(|grants| any_matches(grants, topics))
    }
}

fn topics_of<'a>(entry: &'a Entry, hub_url: &'a HubUrl) -> Vec<Topic<'a>> {
    entry
        .topics
        .iter()
        .map(|t| Topic::new(t, hub_url))
        .collect()
}

/// Whether one of `matchers` selects one of `topics`.
fn any_matches(matchers: &[Matcher], topics: &[Topic<'_>]) -> bool {
    topics.iter().any(|t| matchers.iter().any(|m| m.matches(t)))
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

type Subscribers = HashMap<u64, Arc<Subscriber>>;

#[derive(Debug, Default)]
struct Registry {
    next_id: u64,
    by_id: Subscribers,
    /// Exact topic → subscribers.
    exact: HashMap<Box<str>, Subscribers>,
    /// Subscribers with `*`.
    any: Subscribers,
    /// URI templates and URL patterns → subscribers.
    patterns: Patterns,
}

impl Registry {
    fn insert(&mut self, sub: Arc<Subscriber>) {
        for matcher in &sub.interest.matchers {
            match matcher.key() {
                MatcherKey::Any => {
                    self.any.insert(sub.id, Arc::clone(&sub));
                }
                MatcherKey::Exact(topic) => {
                    let subs = self.exact.entry(topic).or_default();
                    subs.insert(sub.id, Arc::clone(&sub));
                }
                key => self.patterns.insert(key, matcher, &sub),
            }
        }
        self.by_id.insert(sub.id, sub);
    }

    fn remove(&mut self, id: u64) -> bool {
        let Some(sub) = self.by_id.remove(&id) else {
            return false;
        };
        for matcher in &sub.interest.matchers {
            match matcher.key() {
                MatcherKey::Any => {
                    self.any.remove(&id);
                }
                MatcherKey::Exact(topic) => {
                    if let Some(subs) = self.exact.get_mut(&topic) {
                        subs.remove(&id);
                        if subs.is_empty() {
                            self.exact.remove(&topic);
                        }
                    }
                }
                key => self.patterns.remove(&key, matcher, id),
            }
        }
        true
    }
}

/// The registry of live subscribers.
#[derive(Debug)]
pub(crate) struct Fanout {
    registry: RwLock<Registry>,
    hub_url: HubUrl,
    metrics: Arc<Metrics>,
    queue: Bound,
    /// Most distinct URI templates and URL patterns held at once.
    max_patterns: usize,
    /// Most subscribers registered at once.
    max_subscribers: usize,
    closed: AtomicBool,
}

/// Removes its subscriber from the registry when dropped, i.e. when the
/// stream ends for whatever reason.
#[derive(Debug)]
pub(crate) struct Registration {
    fanout: Arc<Fanout>,
    id: u64,
}

impl Registration {
    /// Closes the subscriber as too slow for `reason`, counting it unless
    /// it was already closed (by fan-out as slow, or otherwise).
    pub(crate) fn close_as_slow(&self, reason: SlowReason) {
        self.fanout.remove_slow(self.id, reason);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.fanout.remove(self.id);
        Metrics::dec(&self.fanout.metrics.subscribers);
    }
}

/// Why a subscriber was not registered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unregistered {
    /// The hub is shutting down and takes no new subscribers.
    Closed,
    /// Its patterns would take the hub past its limit of distinct
    /// patterns (the limit).
    TooManyPatterns(usize),
    /// The hub holds its limit of subscribers (the limit).
    Full(usize),
}

impl Fanout {
    /// A registry whose subscribers may each have up to `queue` waiting
    /// (at least one entry, whatever its size), and that holds at most
    /// `max_patterns` distinct URI templates and URL patterns at once.
    pub(crate) fn new(
        hub_url: HubUrl,
        metrics: Arc<Metrics>,
        queue: Bound,
        (max_patterns, max_subscribers): (usize, usize),
    ) -> Fanout {
        Fanout {
            registry: RwLock::new(Registry::default()),
            hub_url,
            metrics,
            queue: Bound {
                events: queue.events.max(1),
                bytes: queue.bytes,
            },
            max_patterns,
            max_subscribers,
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
    ) -> Result<(Registration, Inbox), Unregistered> {
        let mailbox = Arc::new(Mailbox::default());
        let inbox = Inbox::new(Arc::clone(&mailbox));
        let mut registry = self.write();
        if self.closed.load(Ordering::Acquire) {
            return Err(Unregistered::Closed);
        }
        if registry.by_id.len() >= self.max_subscribers {
            drop(registry);
            Metrics::inc(&self.metrics.subscribers_refused_total);
            return Err(Unregistered::Full(self.max_subscribers));
        }
        if !registry
            .patterns
            .room_for(&interest.matchers, self.max_patterns)
        {
            drop(registry);
            Metrics::inc(&self.metrics.patterns_refused_total);
            return Err(Unregistered::TooManyPatterns(self.max_patterns));
        }
        registry.next_id += 1;
        let id = registry.next_id;
        registry.insert(Arc::new(Subscriber {
            id,
            interest,
            mailbox,
        }));
        self.count_patterns(&registry);
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
        let mut registry = self.write();
        let removed = registry.remove(id);
        self.count_patterns(&registry);
        removed
    }

    fn count_patterns(&self, registry: &Registry) {
        Metrics::set(&self.metrics.patterns, registry.patterns.len() as u64);
    }

    /// Removes a subscriber as too slow; counts it if it was still there.
    fn remove_slow(&self, id: u64, reason: SlowReason) {
        if self.remove(id) {
            self.counted_slow(id, reason);
        }
    }

    fn counted_slow(&self, id: u64, reason: SlowReason) {
        self.metrics.slow_disconnect(reason);
        tracing::info!(
            subscriber = id,
            reason = reason.as_str(),
            "closing a slow subscriber ({}); it will resume from history",
            reason.explain()
        );
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
                let topics = topics_of(entry, &self.hub_url);
                for topic in &topics {
                    if let Some(subs) = registry.exact.get(topic.as_str()) {
                        targets.extend(subs.values());
                        routes += 1;
                    }
                    routes += registry.patterns.select(topic, &mut targets);
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
                    if entry.private && !sub.interest.may_see(entry, &topics) {
                        continue;
                    }
                    match sub.mailbox.push(Arc::clone(entry), self.queue) {
                        Ok(()) => delivered += 1,
                        Err(Refused::TooManyEvents) => {
                            dropped.push((sub.id, Some(SlowReason::QueueEvents)));
                        }
                        Err(Refused::TooManyBytes) => {
                            dropped.push((sub.id, Some(SlowReason::QueueBytes)));
                        }
                        Err(Refused::Closed) => dropped.push((sub.id, None)),
                    }
                }
            }
        }
        Metrics::add(&self.metrics.events_delivered_total, delivered);
        if !dropped.is_empty() {
            let mut registry = self.write();
            for (id, slow) in dropped {
                // A subscriber refused for two entries of one batch is
                // removed, and counted, once.
                if let (true, Some(reason)) = (registry.remove(id), slow) {
                    self.counted_slow(id, reason);
                }
            }
            self.count_patterns(&registry);
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
        self.count_patterns(&registry);
        drop(registry);
        // Dropping the subscribers closes their mailboxes.
        drop(everyone);
    }

    /// Refuses new subscribers from now on; the registered ones stay (a
    /// paced drain ends them a few at a time with [`Fanout::disconnect_some`]).
    pub(crate) fn refuse_new(&self) {
        // Set under the lock that `register` checks it under.
        let registry = self.write();
        self.closed.store(true, Ordering::Release);
        drop(registry);
    }

    /// Subscribers registered now.
    pub(crate) fn len(&self) -> usize {
        self.read().by_id.len()
    }

    /// Ends up to `n` streams (each after what is queued for it); returns
    /// how many are left.
    pub(crate) fn disconnect_some(&self, n: usize) -> usize {
        let mut registry = self.write();
        let ids: Vec<u64> = registry.by_id.keys().take(n).copied().collect();
        for id in ids {
            registry.remove(id);
        }
        self.count_patterns(&registry);
        registry.by_id.len()
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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn fanout(events: usize) -> Arc<Fanout> {
        Arc::new(Fanout::new(
            HubUrl::default(),
            Arc::new(Metrics::default()),
            Bound::events(events),
            (usize::MAX, usize::MAX),
        ))
    }

    fn interest(topic: &str) -> Arc<Interest> {
        Arc::new(Interest {
            matchers: vec![Matcher::Exact(topic.into())],
            grants: None,
        })
    }

    fn entry(seq: u64) -> Arc<Entry> {
        Arc::new(Entry {
            seq,
            id: seq.to_string(),
            topics: vec!["t".into()],
            private: false,
            frame: Bytes::from_static(b"data: x\n\n"),
            stored_at_ms: 0,
        })
    }

    fn slow(fanout: &Fanout) -> crate::metrics::SlowDisconnects {
        fanout.metrics.snapshot(Default::default()).slow_disconnects
    }

    #[test]
    fn a_subscriber_is_counted_as_slow_once_whatever_closes_it_after() {
        let fanout = fanout(2);
        let (registration, _inbox) = fanout.register(interest("t")).unwrap();
        fanout.dispatch(&[entry(1), entry(2), entry(3), entry(4)]);
        assert_eq!(slow(&fanout).queue_events, 1, "one subscriber, once");
        // Its connection then stalls too: already closed, not counted.
        registration.close_as_slow(SlowReason::WriteStall);
        assert_eq!(slow(&fanout).write_stall, 0);

        // A subscriber that only stalls is counted for it.
        let (registration, _inbox) = fanout.register(interest("t")).unwrap();
        registration.close_as_slow(SlowReason::WriteStall);
        registration.close_as_slow(SlowReason::WriteStall);
        let slow = slow(&fanout);
        assert_eq!((slow.queue_events, slow.write_stall), (1, 1));
        assert_eq!(
            fanout
                .metrics
                .snapshot(Default::default())
                .slow_disconnects_total,
            2
        );
    }
}
