//! A bounded ring of recent entries with an id index: the whole of the
//! in-memory backend, and the read cache in front of the redb backend.
//!
//! Replay from it is a slice found in constant time from the sequence
//! number; an id is resolved through a hash map.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::Entry;

/// Recent entries, oldest first, with dense sequence numbers.
#[derive(Debug, Default)]
pub(crate) struct Ring {
    entries: VecDeque<Arc<Entry>>,
    /// Id to the sequence number of its earliest held entry.
    ids: HashMap<String, u64>,
    bytes: u64,
    max_events: usize,
    max_bytes: u64,
}

impl Ring {
    pub(crate) fn new(max_events: usize, max_bytes: u64) -> Ring {
        Ring {
            max_events,
            max_bytes,
            ..Ring::default()
        }
    }

    /// Appends an entry whose sequence number follows the last one held
    /// (or starts a new run when the ring is empty), evicting the oldest
    /// beyond the limits.
    pub(crate) fn push(&mut self, entry: Arc<Entry>) {
        if self.max_events == 0 {
            return;
        }
        if self
            .entries
            .back()
            .is_some_and(|last| last.seq + 1 != entry.seq)
        {
            // Never let a gap into the ring: what it holds must be dense.
            self.clear();
        }
        self.ids.entry(entry.id.clone()).or_insert(entry.seq);
        self.bytes += entry.size() as u64;
        self.entries.push_back(entry);
        while self.entries.len() > self.max_events
            || (self.bytes > self.max_bytes && self.entries.len() > 1)
        {
            self.pop_front();
        }
    }

    /// Drops the oldest entry.
    pub(crate) fn pop_front(&mut self) -> Option<Arc<Entry>> {
        let old = self.entries.pop_front()?;
        self.bytes -= old.size() as u64;
        if self.ids.get(&old.id) == Some(&old.seq) {
            self.ids.remove(&old.id);
        }
        Some(old)
    }

    /// Drops every entry below `seq`.
    #[cfg(feature = "redb")]
    pub(crate) fn trim_before(&mut self, seq: u64) {
        while self.first_seq().is_some_and(|first| first < seq) {
            self.pop_front();
        }
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.ids.clear();
        self.bytes = 0;
    }

    /// The oldest entry held.
    pub(crate) fn front(&self) -> Option<&Arc<Entry>> {
        self.entries.front()
    }

    pub(crate) fn first_seq(&self) -> Option<u64> {
        self.entries.front().map(|e| e.seq)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The earliest held entry with this id.
    pub(crate) fn seq_of(&self, id: &str) -> Option<u64> {
        self.ids.get(id).copied()
    }

    /// Up to `limit` entries above `after`, when the ring holds everything
    /// above `after` (`None` when older entries would be needed).
    pub(crate) fn read_after(&self, after: u64, limit: usize) -> Option<Vec<Arc<Entry>>> {
        let Some(first) = self.first_seq() else {
            return Some(Vec::new());
        };
        if after + 1 < first {
            return None;
        }
        let skip = (after + 1 - first) as usize;
        Some(
            self.entries
                .iter()
                .skip(skip)
                .take(limit)
                .cloned()
                .collect(),
        )
    }

    /// Up to `limit` of the oldest entries held.
    pub(crate) fn oldest(&self, limit: usize) -> Vec<Arc<Entry>> {
        self.entries.iter().take(limit).cloned().collect()
    }
}
