//! The in-memory backend: a bounded ring, lost on restart.
//!
//! `--history memory` is for tests and for deployments that accept losing
//! history with the process; the durable default is [`super::RedbHistory`].

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use super::ring::Ring;
use super::{now_ms, Entry, History, HistoryError, HistoryStats, NewEntry};

/// A bounded in-memory history holding the most recent `capacity` events,
/// at most `max_bytes` bytes of them and, when set, none older than a
/// maximum age.
#[derive(Debug)]
pub struct MemoryHistory {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    ring: Ring,
    next_seq: u64,
    /// Entries stored longer ago than this many milliseconds are dropped.
    max_age_ms: Option<u64>,
}

impl State {
    /// Drops the entries older than the age limit at `now_ms`. Called on
    /// every access, so an expired entry is never read, whether or not
    /// anybody publishes.
    fn expire(&mut self, now_ms: u64) {
        let Some(max_age) = self.max_age_ms else {
            return;
        };
        let cutoff = now_ms.saturating_sub(max_age);
        while self
            .ring
            .front()
            .is_some_and(|oldest| oldest.stored_at_ms < cutoff)
        {
            self.ring.pop_front();
        }
    }
}

impl MemoryHistory {
    /// A history keeping at most `capacity` events (0 keeps none: no replay).
    pub fn new(capacity: usize) -> MemoryHistory {
        MemoryHistory::with_max_bytes(capacity, u64::MAX)
    }

    /// A history keeping at most `capacity` events and `max_bytes` bytes.
    pub fn with_max_bytes(capacity: usize, max_bytes: u64) -> MemoryHistory {
        MemoryHistory {
            state: Mutex::new(State {
                ring: Ring::new(capacity, max_bytes),
                next_seq: 1,
                max_age_ms: None,
            }),
        }
    }

    /// The same history, also dropping events stored longer ago than
    /// `max_age`.
    pub fn with_max_age(self, max_age: Duration) -> MemoryHistory {
        let millis = u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX);
        self.lock().max_age_ms = Some(millis);
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Each mutation of the ring is a single push or pop, so a panic
        // elsewhere while holding the lock cannot leave it inconsistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The state, with expired entries already dropped.
    fn current(&self) -> MutexGuard<'_, State> {
        let mut state = self.lock();
        state.expire(now_ms());
        state
    }
}

#[async_trait]
impl History for MemoryHistory {
    async fn append(&self, batch: Vec<NewEntry>) -> Result<Vec<Arc<Entry>>, HistoryError> {
        let now = now_ms();
        let mut state = self.lock();
        state.expire(now);
        let mut stored = Vec::with_capacity(batch.len());
        for new in batch {
            let entry = Arc::new(Entry::new(state.next_seq, now, new));
            state.next_seq += 1;
            state.ring.push(Arc::clone(&entry));
            stored.push(entry);
        }
        Ok(stored)
    }

    /// Appending takes the ring's lock and nothing else.
    fn appends_at_once(&self) -> bool {
        true
    }

    async fn seq_of(&self, id: &str) -> Result<Option<u64>, HistoryError> {
        Ok(self.current().ring.seq_of(id))
    }

    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<Arc<Entry>>, HistoryError> {
        let state = self.current();
        Ok(state
            .ring
            .read_after(after, limit)
            .unwrap_or_else(|| state.ring.oldest(limit)))
    }

    fn stats(&self) -> HistoryStats {
        let state = self.current();
        HistoryStats {
            events: state.ring.len() as u64,
            bytes: state.ring.bytes(),
            last_seq: state.next_seq - 1,
            reopens: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn new_entry(id: &str) -> NewEntry {
        NewEntry {
            id: id.into(),
            topics: vec!["t".into()],
            private: false,
            frame: Bytes::from(format!("id: {id}\ndata: x\n\n")),
        }
    }

    #[tokio::test]
    async fn bounded_ring_with_dense_sequence_numbers() {
        let h = MemoryHistory::new(3);
        let batch = (1..=5).map(|i| new_entry(&i.to_string())).collect();
        let stored = h.append(batch).await.unwrap();
        assert_eq!(
            stored.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
        assert_eq!(h.stats().events, 3);
        assert_eq!(
            h.seq_of("1").await.unwrap(),
            None,
            "evicted ids are forgotten"
        );
        assert_eq!(h.seq_of("4").await.unwrap(), Some(4));
        let ids = |v: Vec<Arc<Entry>>| v.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(h.read_after(0, 10).await.unwrap()), vec!["3", "4", "5"]);
        assert_eq!(ids(h.read_after(1, 10).await.unwrap()), vec!["3", "4", "5"]);
        assert_eq!(ids(h.read_after(4, 10).await.unwrap()), vec!["5"]);
        assert_eq!(ids(h.read_after(3, 1).await.unwrap()), vec!["4"]);
        assert!(h.read_after(5, 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn duplicate_ids_resolve_to_the_earliest() {
        let h = MemoryHistory::new(10);
        h.append(vec![new_entry("a"), new_entry("b"), new_entry("a")])
            .await
            .unwrap();
        assert_eq!(h.seq_of("a").await.unwrap(), Some(1));
    }

    #[tokio::test]
    async fn byte_limit_evicts_oldest() {
        let one = Entry::new(0, 0, new_entry("x")).size() as u64;
        let h = MemoryHistory::with_max_bytes(100, one * 2);
        h.append((0..5).map(|i| new_entry(&i.to_string())).collect())
            .await
            .unwrap();
        assert_eq!(h.stats().events, 2);
        assert!(h.stats().bytes <= one * 2);
    }

    #[tokio::test]
    async fn entries_older_than_the_age_limit_are_never_read() {
        let h = MemoryHistory::new(100).with_max_age(Duration::from_secs(60));
        h.append(vec![new_entry("old"), new_entry("new")])
            .await
            .unwrap();
        let stored_at = h.read_after(0, 10).await.unwrap()[0].stored_at_ms;
        // Seen from later clocks: within the limit, then past it.
        {
            let mut state = h.lock();
            state.expire(stored_at + 59_000);
            assert_eq!(state.ring.len(), 2, "both still within the limit");
            state.expire(stored_at + 60_001);
            assert_eq!(state.ring.len(), 0, "both past the limit");
        }
        h.append(vec![new_entry("fresh")]).await.unwrap();
        assert_eq!(h.seq_of("old").await.unwrap(), None);
        let ids: Vec<_> = h
            .read_after(0, 10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.id.clone())
            .collect();
        assert_eq!(ids, vec!["fresh"]);
        assert_eq!(h.stats().events, 1);
        assert_eq!(h.stats().last_seq, 3, "sequence numbers go on");
    }
}
