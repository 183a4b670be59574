//! Which node holds which active subscription, for a log that several hub
//! nodes share.
//!
//! Subscription events go through the log, so every node sees the
//! subscriptions that start and end while it runs. Two cases need more than
//! the log: a node that starts after a subscription did (the `active: true`
//! event is behind it, perhaps trimmed), and a node that dies without
//! ending its subscriptions (SIGKILL, a crash, a host lost: no
//! `active: false` ever comes). A [`Roster`] covers both: each node records
//! the subscriptions it holds under its own name and renews a lease while
//! it lives; a starting node loads the records of every live node, and a
//! live node claims the records of a node whose lease lapsed and publishes
//! their end.

use std::time::Duration;

use async_trait::async_trait;

use super::HistoryError;

/// How a renewal found this node's lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// Held all along.
    Held,
    /// It had lapsed (the node stalled longer than the lease) and nobody
    /// is ending its subscriptions now: other nodes may have ended them
    /// already, so the node announces them again.
    Lapsed,
    /// It had lapsed and another node is ending its subscriptions right
    /// now: announce them again once that is over.
    BeingEnded,
}

/// Subscriptions of a node whose lease lapsed, claimed by this node to
/// end them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphans {
    /// The node that held them.
    pub node: String,
    /// Their records, as [`Roster::enter`] stored them.
    pub records: Vec<String>,
}

/// Where the nodes sharing a log record the subscriptions each holds.
///
/// Records are opaque to the roster: the hub stores what it needs to
/// describe a subscription and to announce its end, keyed by the
/// subscription's topic (unique per connection).
#[async_trait]
pub trait Roster: Send + Sync + std::fmt::Debug + 'static {
    /// This node's name in the roster.
    fn node(&self) -> &str;

    /// How long a lease lasts after a renewal: the node renews it several
    /// times within that.
    fn lease(&self) -> Duration;

    /// Records that this node holds the subscriptions of `records`, each
    /// `(topic, record)`, in one step (a connection's matchers come and go
    /// together).
    async fn enter(&self, records: &[(String, String)]) -> Result<(), HistoryError>;

    /// Forgets this node's subscriptions on `topics`, in one step.
    async fn leave(&self, topics: &[String]) -> Result<(), HistoryError>;

    /// The records of every node whose lease is held.
    async fn load(&self) -> Result<Vec<String>, HistoryError>;

    /// Renews this node's lease.
    async fn renew(&self) -> Result<Lease, HistoryError>;

    /// Claims the records of one other node whose lease lapsed, if there
    /// is one that no other node is ending; the claim lasts long enough to
    /// publish their end, then [`Roster::release`] drops them.
    async fn claim_lapsed(&self) -> Result<Option<Orphans>, HistoryError>;

    /// Drops the records of `node` after their end was published (unless
    /// the node renewed its lease meanwhile: then it announces them again)
    /// and ends the claim.
    async fn release(&self, node: &str) -> Result<(), HistoryError>;
}
