//! A bounded ring of recent entries with an id index: the whole of the
//! in-memory backend, and the read cache in front of the redb backend.
//!
//! Replay from it is a slice found in constant time from the sequence
//! number; an id is resolved through a hash map.

use std::borrow::Borrow;
use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::Entry;

/// Recent entries, oldest first, with dense sequence numbers.
#[derive(Debug, Default)]
pub(crate) struct Ring {
    entries: VecDeque<Arc<Entry>>,
    /// The earliest held entry of each id, found by its id.
    ids: HashSet<ById>,
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
        // A set keeps what it holds: an id already held keeps its earliest
        // entry.
        self.ids.insert(ById(Arc::clone(&entry)));
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
        // The id's entry is this one (the earliest held), unless a later
        // entry reused the id after this one's was removed.
        if let Some(held) = self.ids.take(old.id.as_str()) {
            if held.0.seq != old.seq {
                self.ids.insert(held);
            }
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
        self.ids.get(id).map(|held| held.0.seq)
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

/// An entry in the id index, hashed and compared by its id: the index
/// shares the entry rather than copying its id, so a publish allocates no
/// key and an eviction reads no memory beyond the entry it drops.
#[derive(Debug)]
struct ById(Arc<Entry>);

impl Borrow<str> for ById {
    fn borrow(&self) -> &str {
        &self.0.id
    }
}

impl Hash for ById {
    // As `str` hashes, which `Borrow<str>` requires.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.id.as_str().hash(state);
    }
}

impl PartialEq for ById {
    fn eq(&self, other: &ById) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for ById {}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn entry(seq: u64, id: &str) -> Arc<Entry> {
        Arc::new(Entry {
            seq,
            stored_at_ms: 0,
            id: id.into(),
            topics: vec!["t".into()],
            private: false,
            frame: Bytes::from_static(b"data: x\n\n"),
        })
    }

    #[test]
    fn an_id_resolves_to_its_earliest_held_entry_until_that_one_leaves() {
        let mut ring = Ring::new(3, u64::MAX);
        ring.push(entry(1, "a"));
        ring.push(entry(2, "b"));
        ring.push(entry(3, "a"));
        assert_eq!(ring.seq_of("a"), Some(1));
        assert_eq!(ring.seq_of("b"), Some(2));
        assert_eq!(ring.seq_of("c"), None);
        // 1 leaves: "a" is no longer indexed (as before: the index holds
        // an id's earliest entry only), and the index holds nothing it
        // dropped.
        ring.push(entry(4, "c"));
        assert_eq!(ring.seq_of("a"), None);
        assert_eq!(ring.seq_of("c"), Some(4));
        assert_eq!(ring.ids.len(), 2);
        // An id used again once its entry left is indexed afresh.
        ring.push(entry(5, "a"));
        assert_eq!(ring.seq_of("a"), Some(5));
        // 3 ("a", never indexed) leaves without touching 5's index entry.
        ring.push(entry(6, "d"));
        assert_eq!(ring.first_seq(), Some(4));
        assert_eq!(ring.seq_of("a"), Some(5));
    }

    #[test]
    fn the_index_shares_the_entries_and_lets_them_go_with_the_ring() {
        let mut ring = Ring::new(2, u64::MAX);
        let first = entry(1, "a");
        ring.push(Arc::clone(&first));
        // Held by the ring, by the index, and here.
        assert_eq!(Arc::strong_count(&first), 3);
        ring.push(entry(2, "b"));
        ring.push(entry(3, "c"));
        assert_eq!(Arc::strong_count(&first), 1);
        ring.clear();
        assert!(ring.ids.is_empty());
        assert_eq!(ring.seq_of("c"), None);
    }

    #[test]
    fn a_gap_starts_the_ring_and_its_index_over() {
        let mut ring = Ring::new(10, u64::MAX);
        ring.push(entry(1, "a"));
        ring.push(entry(5, "b"));
        assert_eq!(ring.seq_of("a"), None);
        assert_eq!(ring.seq_of("b"), Some(5));
        assert_eq!(ring.len(), 1);
    }
}
