//! The backends' statistics, readable without a lock.

use std::sync::atomic::{AtomicU64, Ordering};

use super::HistoryStats;

/// [`HistoryStats`] kept where [`History::stats`] can read them without a
/// lock while the backend updates them (the stored backends' need).
#[derive(Debug, Default)]
pub(crate) struct StatsCell {
    events: AtomicU64,
    bytes: AtomicU64,
    last_seq: AtomicU64,
    reopens: AtomicU64,
}

impl StatsCell {
    #[cfg_attr(not(feature = "redb"), allow(dead_code))]
    pub(crate) fn new(stats: HistoryStats) -> StatsCell {
        let cell = StatsCell::default();
        cell.set(stats);
        cell
    }

    pub(crate) fn get(&self) -> HistoryStats {
        HistoryStats {
            events: self.events.load(Ordering::Acquire),
            bytes: self.bytes.load(Ordering::Acquire),
            last_seq: self.last_seq.load(Ordering::Acquire),
            reopens: self.reopens.load(Ordering::Acquire),
        }
    }

    pub(crate) fn set(&self, stats: HistoryStats) {
        self.events.store(stats.events, Ordering::Release);
        self.bytes.store(stats.bytes, Ordering::Release);
        self.last_seq.store(stats.last_seq, Ordering::Release);
        self.reopens.store(stats.reopens, Ordering::Release);
    }

    /// Only a shared log (Redis) learns its last position apart from stats.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn set_last_seq(&self, last_seq: u64) {
        self.last_seq.store(last_seq, Ordering::Release);
    }
}
