//! History: the ordered log of published updates that replay reads from.
//!
//! On the publish path, every accepted update is appended here before it is
//! fanned out (and, for a durable backend, before the publisher gets its
//! 200). On the subscribe path, a `Last-Event-ID` is resolved to a position
//! in this log and everything after it is replayed before the live stream
//! takes over.
//!
//! Backends implement [`History`]: `RedbHistory` (durable, in a redb
//! file, the `redb` feature: the default of `herald serve`) and [`MemoryHistory`] (a bounded
//! ring, lost on restart). A Redis Streams backend, shared by many hub
//! nodes, fits the same trait through [`History::follow`]. Each entry gets
//! a sequence number: dense, increasing, assigned by the backend.
//! Fan-out and replay compare sequence numbers, never ids, which is what
//! makes the switch from replay to live free of gaps and duplicates.

mod memory;
#[cfg(feature = "redb")]
pub mod redb;
#[cfg(feature = "redis")]
pub mod redis;
mod ring;
mod roster;
#[cfg(any(feature = "redb", feature = "redis"))]
mod stats;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

pub use memory::MemoryHistory;
#[cfg(feature = "redb")]
pub use redb::RedbHistory;
#[cfg(feature = "redis")]
pub use redis::{RedisHistory, RedisOptions};
pub use roster::{Lease, Orphans, Roster};
#[cfg(any(feature = "redb", feature = "redis"))]
pub(crate) use stats::StatsCell;

/// Memory a durable or shared history may use for caching by default: the
/// newest events kept in memory for replays and, for redb, the file's pages
/// (half each). Bounded so that the hub does not grow with its history.
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// An update ready to be stored: routing data plus its encoded SSE frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// The event id (client-given or hub-generated).
    pub id: String,
    /// The canonical topic first, then the alternates.
    pub topics: Vec<String>,
    /// Whether only authorized subscribers may receive it.
    pub private: bool,
    /// The SSE frame, encoded once, as sent to every subscriber.
    pub frame: Bytes,
}

/// A stored update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the log: dense and increasing, starting at 1.
    pub seq: u64,
    /// When the hub stored it, in milliseconds since the Unix epoch.
    pub stored_at_ms: u64,
    /// The event id.
    pub id: String,
    /// The canonical topic first, then the alternates.
    pub topics: Vec<String>,
    /// Whether only authorized subscribers may receive it.
    pub private: bool,
    /// The SSE frame.
    pub frame: Bytes,
}

impl Entry {
    /// Stores `new` at `seq`.
    pub fn new(seq: u64, stored_at_ms: u64, new: NewEntry) -> Entry {
        Entry {
            seq,
            stored_at_ms,
            id: new.id,
            topics: new.topics,
            private: new.private,
            frame: new.frame,
        }
    }

    /// Approximate bytes this entry holds, for the size limit and metrics.
    pub fn size(&self) -> usize {
        held_size(&self.id, &self.topics, &self.frame)
    }
}

impl NewEntry {
    /// The [`Entry::size`] this update will have once stored.
    pub fn size(&self) -> usize {
        held_size(&self.id, &self.topics, &self.frame)
    }
}

/// What an entry counts for against the byte limit: its frame, id and
/// topics, plus 64 bytes of bookkeeping.
fn held_size(id: &str, topics: &[String], frame: &Bytes) -> usize {
    frame.len() + id.len() + topics.iter().map(String::len).sum::<usize>() + 64
}

/// What history holds now, for metrics and the UI.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryStats {
    /// Entries held.
    pub events: u64,
    /// Approximate bytes held.
    pub bytes: u64,
    /// Sequence number of the last entry appended (0 when none ever was).
    pub last_seq: u64,
    /// Times the backend reopened its storage to recover from an I/O error
    /// (redb), since it was opened.
    pub reopens: u64,
}

/// A history backend failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryError(pub String);

impl std::fmt::Display for HistoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "history: {}", self.0)
    }
}

impl std::error::Error for HistoryError {}

/// A shared log as a node follows it: what it yields, in log order. See
/// [`History::follow`].
///
/// An `Err` item is one failed read; the stream goes on afterwards (the
/// backend waits before retrying), so the follower can report the outage
/// and keep following.
pub type Follow =
    std::pin::Pin<Box<dyn futures_core::Stream<Item = Result<Followed, HistoryError>> + Send>>;

/// One step of following a shared log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// New entries, oldest first, each above the last one yielded. An
    /// empty batch says the log was read and held nothing new.
    Entries(Vec<Arc<Entry>>),
    /// The log lost entries that had been followed (its store lost its
    /// data, or failed over to a copy that lacked the newest): positions up
    /// to `last_seq` may now hold other entries than the ones followed.
    /// Following goes on after `last_seq`.
    Restarted {
        /// The log's last position now.
        last_seq: u64,
    },
}

/// The ordered log of updates.
///
/// Implementations assign dense, increasing sequence numbers in
/// [`History::append`] and return only once the entries are stored as
/// durably as the backend promises. Delivery is not the log's business:
/// the hub has one dispatcher per node that feeds fan-out in log order,
/// from what [`History::append`] returns when this process is the log's
/// only writer, or from [`History::follow`] when other nodes append too.
#[async_trait]
pub trait History: Send + Sync + std::fmt::Debug + 'static {
    /// Appends a batch, in order; the returned entries carry their sequence
    /// numbers. Batches come from the hub's single writer, so a backend can
    /// commit each batch once (group commit).
    async fn append(&self, batch: Vec<NewEntry>) -> Result<Vec<Arc<Entry>>, HistoryError>;

    /// Whether every [`History::append`] completes at its first poll,
    /// never waiting (the memory backend). The hub then appends and
    /// dispatches on each publisher's own task, taking turns on a lock held
    /// only that long, instead of queueing concurrent publishers for its
    /// writer task: no hand-over between tasks per publish. The default,
    /// `false`, suits a backend that may wait (a disk, a network).
    fn appends_at_once(&self) -> bool {
        false
    }

    /// The sequence number of the earliest held entry with this id.
    async fn seq_of(&self, id: &str) -> Result<Option<u64>, HistoryError>;

    /// Up to `limit` entries with a sequence number above `after`, oldest
    /// first. `after = 0` reads from the oldest entry held.
    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<Arc<Entry>>, HistoryError>;

    /// What the log holds now.
    fn stats(&self) -> HistoryStats;

    /// Checks whether the log can be written, after appends failed. The
    /// hub calls it while history fails, so that readiness comes back when
    /// the log does, even when no publisher tries in the meantime (a load
    /// balancer sends none to a hub that is not ready). A backend that
    /// heals itself (redb reopens its file after an I/O error) heals here
    /// too. The default appends an empty batch.
    async fn probe(&self) -> Result<(), HistoryError> {
        self.append(Vec::new()).await.map(drop)
    }

    /// Follows what every writer appends after `after`, for a log that
    /// other processes append to as well (Redis Streams): the hub
    /// dispatches only what this stream yields, whoever appended it.
    ///
    /// `None` (the default) says this process is the log's only writer:
    /// every new entry is one that [`History::append`] returned, and the
    /// hub dispatches those itself.
    fn follow(&self, after: u64) -> Option<Follow> {
        let _ = after;
        None
    }

    /// Where the nodes sharing this log record the subscriptions each
    /// holds, so that presence covers them all ([`Roster`]). `None` (the
    /// default) for a log this process alone writes: its subscriptions
    /// end with it.
    fn roster(&self) -> Option<Arc<dyn Roster>> {
        None
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
