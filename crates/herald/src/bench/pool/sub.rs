//! One subscriber's accounting: a sequence tracker per followed topic and
//! publishing connection, what it must have received, and what happens to
//! its figures when it leaves and a newcomer takes its place (a soak).

use std::rc::Rc;
use std::time::Instant;

use crate::bench::stats::{SeqTracker, Totals};

/// One subscriber's accounting.
#[derive(Debug, Default)]
pub(super) struct Sub {
    /// The run's topics its selectors select, in order.
    pub(super) topics: Vec<usize>,
    /// One per followed topic and publishing connection, index
    /// `position of the topic in topics * connections + connection`.
    pub(super) trackers: Vec<SeqTracker>,
    /// It arrived while events were being published (a soak's newcomer):
    /// each of its trackers starts at the first event it receives, and one
    /// that received none is not checked.
    pub(super) joined_late: bool,
    /// The last event id seen, sent as `Last-Event-ID` on reconnect.
    pub(super) last_id: Option<Rc<str>>,
    /// The stream opened at least once: its losses count.
    pub(super) opened: bool,
    /// Reopened after the current storm's drop.
    pub(super) reconnected_at: Option<Instant>,
    pub(super) caught_up_at: Option<Instant>,
}

impl Sub {
    /// A subscriber following `topics`, with `connections` publishing.
    pub(super) fn new(topics: Vec<usize>, connections: usize) -> Sub {
        Sub {
            trackers: vec![SeqTracker::default(); topics.len() * connections.max(1)],
            topics,
            ..Sub::default()
        }
    }

    /// Publishing connections of the run.
    pub(super) fn connections(&self) -> usize {
        (self.trackers.len() / self.topics.len().max(1)).max(1)
    }

    /// The tracker of events of `topic` from publishing connection `conn`.
    pub(super) fn tracker_mut(&mut self, topic: usize, conn: usize) -> Option<&mut SeqTracker> {
        let n = self.connections();
        let at = self.topics.iter().position(|&t| t == topic)?;
        if conn >= n {
            return None;
        }
        self.trackers.get_mut(at * n + conn)
    }

    /// The published count `counts` gives for the stream of tracker `k`.
    pub(super) fn expected(&self, counts: &[u64], k: usize) -> u64 {
        let n = self.connections();
        self.topics
            .get(k / n)
            .and_then(|&t| counts.get(t * n + k % n))
            .copied()
            .unwrap_or(0)
    }

    /// Whether tracker `k` is accounted for: a newcomer's tracker only once
    /// it has its first event.
    pub(super) fn checked(&self, k: usize) -> bool {
        !self.joined_late || self.trackers.get(k).is_some_and(|t| t.received > 0)
    }

    /// Whether it has everything `counts` says was published.
    pub(super) fn has_all(&self, counts: &[u64]) -> bool {
        self.trackers
            .iter()
            .enumerate()
            .all(|(k, t)| !self.checked(k) || t.max_seen >= self.expected(counts, k))
    }

    /// It is about to resume. Before its first event it has no id to
    /// resume from, and a reconnection without one is a new subscription:
    /// what was published while it was away is not its to receive, so its
    /// streams start where a newcomer's do.
    pub(super) fn resume(&mut self) {
        if self.last_id.is_none() {
            self.joined_late = true;
        }
    }

    /// Its subscriber leaves and a new one takes its place: what the old
    /// one received, skipped or got twice goes into `totals` (not the tail
    /// still in flight when it left), and the new one starts afresh.
    pub(super) fn replace(&mut self, totals: &mut Totals) {
        for t in &mut self.trackers {
            totals.received += t.received;
            totals.lost += t.gaps;
            totals.duplicates += t.duplicates;
            *t = SeqTracker::default();
        }
        totals.departed += 1;
        self.last_id = None;
        self.joined_late = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscriber_tracks_each_publishing_connection_on_its_own() {
        // Topic 1 of 2, two publishing connections: counts are indexed
        // topic * 2 + conn.
        let mut sub = Sub::new(vec![1], 2);
        let counts = [9, 9, 3, 2];
        assert_eq!((sub.expected(&counts, 0), sub.expected(&counts, 1)), (3, 2));
        // Interleaved connections are no loss and no duplicate.
        for (conn, seq) in [(0, 1), (1, 1), (0, 2), (1, 2), (0, 3)] {
            sub.trackers[conn].record(seq);
        }
        assert!(sub.has_all(&counts));
        assert!(!sub.has_all(&[0, 0, 4, 2]));
        let lost: u64 = (0..2)
            .map(|k| sub.trackers[k].lost(sub.expected(&[0, 0, 4, 2], k)))
            .sum();
        assert_eq!(lost, 1);
        assert!(sub.trackers.iter().all(|t| t.duplicates == 0));
    }

    #[test]
    fn a_subscriber_of_several_topics_tracks_each_and_a_newcomer_starts_at_its_first_event() {
        // Topics 0 and 2 of 3, two connections: counts are indexed
        // topic * 2 + conn.
        let counts = [4, 1, 9, 9, 2, 3];
        let mut sub = Sub::new(vec![0, 2], 2);
        let expected: Vec<u64> = (0..4).map(|k| sub.expected(&counts, k)).collect();
        assert_eq!(expected, [4, 1, 2, 3]);
        assert!(sub.tracker_mut(1, 0).is_none(), "topic 1 is not followed");
        assert!(sub.tracker_mut(0, 2).is_none(), "there is no connection 2");
        for (topic, conn, seq) in [(0, 0, 1), (2, 1, 1), (0, 1, 1), (2, 0, 1), (2, 0, 2)] {
            sub.tracker_mut(topic, conn).unwrap().record(seq);
        }
        assert!(!sub.has_all(&counts));
        assert_eq!(sub.trackers[0].lost(sub.expected(&counts, 0)), 3);

        // Without an id (nothing received yet) a resumption is a new
        // subscription.
        let mut fresh = Sub::new(vec![0], 1);
        fresh.resume();
        assert!(fresh.joined_late && !fresh.checked(0));
        // It resumes with an id: nothing changes.

        sub.last_id = Some(Rc::from("urn:x"));
        sub.resume();
        assert!(!sub.joined_late && sub.checked(1));

        // It leaves: what it got is kept, and its place starts afresh.
        let mut totals = Totals::default();
        sub.replace(&mut totals);
        assert_eq!((totals.received, totals.lost, totals.departed), (5, 0, 1));
        assert!(sub.last_id.is_none() && sub.joined_late);
        // The newcomer's first events are where it starts; a stream it got
        // nothing of is not checked, so it is caught up with what it has.
        sub.tracker_mut(0, 0).unwrap().record_joining(3);
        sub.tracker_mut(0, 0).unwrap().record_joining(4);
        assert!(sub.has_all(&counts));
        assert_eq!(sub.trackers[0].lost(4), 0);
        assert!(sub.checked(0) && !sub.checked(1));
        sub.tracker_mut(2, 1).unwrap().record_joining(2);
        sub.resume();
        assert!(sub.checked(0) && !sub.checked(1));
        assert!(!sub.has_all(&counts), "connection 1 of topic 2 published 3");
    }
}
