//! This node's part in a cluster's presence: recording the subscriptions
//! it holds in the log's [`Roster`], loading those of the other nodes when
//! it starts, and ending those of a node that died.
//!
//! Ordering makes the loaded list exact. The list starts at a position P of
//! the log and the roster is read after P was, so applying every
//! subscription event after P on top of the records converges on the
//! truth, provided a record is written before its `active: true` event and
//! removed before its `active: false` event (which [`Membership::enter`]
//! and [`Membership::leave`] are called for).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde_json::Value;

use super::announce::publish;
use super::{ActiveSubscription, Presence};
use crate::history::{Lease, Roster};
use crate::hub::{Hub, Shared};

/// How often, per lease, a node renews it: a lease survives two missed
/// renewals.
const RENEWALS_PER_LEASE: u32 = 3;

/// The subscriptions this node holds, kept in the roster as well.
#[derive(Debug)]
pub(crate) struct Membership {
    roster: Arc<dyn Roster>,
    /// By topic: what to announce again if the lease lapsed.
    local: Mutex<HashMap<String, ActiveSubscription>>,
}

impl Membership {
    pub(crate) fn new(roster: Arc<dyn Roster>) -> Membership {
        Membership {
            roster,
            local: Mutex::new(HashMap::new()),
        }
    }

    /// How long this node's lease lasts.
    pub(crate) fn lease(&self) -> Duration {
        self.roster.lease()
    }

    fn local(&self) -> std::sync::MutexGuard<'_, HashMap<String, ActiveSubscription>> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `subscriptions` (before their `active: true` events).
    pub(crate) async fn enter(&self, hub_path: &str, subscriptions: &[ActiveSubscription]) {
        let records: Vec<(String, String)> = subscriptions
            .iter()
            .map(|s| (s.topic(hub_path), s.record()))
            .collect();
        {
            let mut local = self.local();
            for ((topic, _), subscription) in records.iter().zip(subscriptions) {
                local.insert(topic.clone(), subscription.clone());
            }
        }
        if let Err(e) = self.roster.enter(&records).await {
            // The lease loop cannot tell that these are missing; a node
            // starting now would not list them until their next event.
            tracing::warn!(error = %e, "could not record subscriptions in the roster");
        }
    }

    /// Forgets `subscriptions` (before their `active: false` events).
    pub(crate) async fn leave(&self, hub_path: &str, subscriptions: &[ActiveSubscription]) {
        let topics: Vec<String> = subscriptions.iter().map(|s| s.topic(hub_path)).collect();
        {
            let mut local = self.local();
            for topic in &topics {
                local.remove(topic);
            }
        }
        if let Err(e) = self.roster.leave(&topics).await {
            tracing::warn!(error = %e, "could not remove subscriptions from the roster");
        }
    }
}

/// Renews the lease, loads the other nodes' subscriptions into
/// `presence` once, announces again what a lapsed lease may have ended,
/// and ends the subscriptions of lapsed nodes; ends with the hub.
pub(crate) async fn run(shared: Weak<Shared>, lease: Duration) {
    let mut tick = tokio::time::interval(lease / RENEWALS_PER_LEASE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut loaded = false;
    let mut announce_again = false;
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let hub = Hub { shared };
        let (Some(membership), Some(presence)) =
            (hub.shared.membership.clone(), hub.shared.presence.clone())
        else {
            return;
        };
        match membership.roster.renew().await {
            Ok(Lease::Held) => {}
            Ok(Lease::Lapsed) => announce_again = true,
            Ok(Lease::BeingEnded) => {
                // Announced after the other node has ended them, not before.
                announce_again = true;
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not renew this node's lease in the roster");
                continue;
            }
        }
        if !loaded {
            loaded = load(&hub, &membership, &presence).await;
        }
        if announce_again {
            let held: Vec<ActiveSubscription> = membership.local().values().cloned().collect();
            if !held.is_empty() {
                tracing::warn!(
                    subscriptions = held.len(),
                    "this node's lease in the roster had lapsed; announcing its subscriptions again"
                );
            }
            let hub_path = hub.shared.config.hub_url.as_url().path().to_owned();
            membership.enter(&hub_path, &held).await;
            announce_again = !publish(&hub, &held, true).await;
        }
        end_lapsed(&hub, &membership).await;
    }
}

/// Merges every live node's records into `presence`; false if the roster
/// could not be read (tried again at the next renewal).
async fn load(hub: &Hub, membership: &Membership, presence: &Presence) -> bool {
    let records = match membership.roster.load().await {
        Ok(records) => records,
        Err(e) => {
            tracing::warn!(error = %e, "could not load the cluster's subscriptions; will retry");
            return false;
        }
    };
    let hub_path = hub.shared.config.hub_url.as_url().path();
    let loaded: Vec<(String, Value)> = records
        .iter()
        .filter_map(|r| ActiveSubscription::from_record(r))
        .map(|s| (s.topic(hub_path), s.document(hub_path, true)))
        .collect();
    presence.merge(loaded);
    true
}

/// Announces the end of the subscriptions of each node whose lease lapsed
/// (one claimed at a time, so nodes share the work).
async fn end_lapsed(hub: &Hub, membership: &Membership) {
    loop {
        let orphans = match membership.roster.claim_lapsed().await {
            Ok(Some(orphans)) => orphans,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "could not look for lapsed nodes in the roster");
                return;
            }
        };
        let ended: Vec<ActiveSubscription> = orphans
            .records
            .iter()
            .filter_map(|r| ActiveSubscription::from_record(r))
            .collect();
        tracing::info!(
            node = orphans.node,
            subscriptions = ended.len(),
            "a node's lease lapsed; announcing the end of its subscriptions"
        );
        if !publish(hub, &ended, false).await {
            // The claim runs out and a node (perhaps this one) tries again.
            return;
        }
        if let Err(e) = membership.roster.release(&orphans.node).await {
            tracing::warn!(error = %e, node = orphans.node, "could not release a lapsed node's records");
            return;
        }
    }
}
