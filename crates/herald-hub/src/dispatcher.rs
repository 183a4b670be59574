//! The dispatcher: the one caller of fan-out, fed strictly in log order.
//!
//! Live order must equal log order, or a subscriber's stream (which drops
//! anything at or below the last sequence number it sent) would lose an
//! entry that arrived late. So every node has one [`Dispatcher`], and it
//! hands fan-out the entries above the last one it dispatched, in order.
//! It is fed from one of two places, depending on who writes the log:
//!
//! * this process alone (memory, redb): the publisher, with each batch it
//!   committed, taking turns so that batches arrive in commit order;
//! * several nodes (Redis Streams): [`follow`], one reader task per node
//!   that dispatches what [`History::follow`] yields, whoever appended it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use futures_util::StreamExt as _;

use crate::fanout::Fanout;
use crate::health::Health;
use crate::history::{Entry, Follow, Followed};
use crate::presence::Presence;

/// Feeds fan-out in log order.
#[derive(Debug)]
pub(crate) struct Dispatcher {
    fanout: Arc<Fanout>,
    /// Sees every entry before fan-out, to keep the list of active
    /// subscriptions at the position of the log fan-out is at.
    presence: Option<Arc<Presence>>,
    /// Sequence number of the last entry dispatched.
    last: AtomicU64,
}

impl Dispatcher {
    /// A dispatcher whose next entry follows `last_seq`.
    pub(crate) fn new(
        fanout: Arc<Fanout>,
        last_seq: u64,
        presence: Option<Arc<Presence>>,
    ) -> Dispatcher {
        Dispatcher {
            fanout,
            presence,
            last: AtomicU64::new(last_seq),
        }
    }

    /// Sequence number of the last entry dispatched.
    pub(crate) fn last_seq(&self) -> u64 {
        self.last.load(Ordering::Acquire)
    }

    /// Dispatches `batch` (oldest first), which follows the last entry
    /// dispatched. Callers take turns: one publisher or writer at a time,
    /// or the one reader.
    pub(crate) fn dispatch(&self, batch: &[Arc<Entry>]) {
        let (Some(first), Some(newest)) = (batch.first(), batch.last()) else {
            return;
        };
        let last = self.last_seq();
        if first.seq != last + 1 {
            // Only a shared log skips: entries were evicted before this
            // node read them (it lagged behind retention).
            self.end_every_stream(
                "entries left the log before this node dispatched them",
                first.seq,
            );
        }
        if let Some(presence) = &self.presence {
            presence.observe(batch);
        }
        self.fanout.dispatch(batch);
        self.last.store(newest.seq, Ordering::Release);
    }

    /// The log started over at `last_seq` (see [`Followed::Restarted`]).
    pub(crate) fn restart(&self, last_seq: u64) {
        self.end_every_stream("the log started over", last_seq + 1);
        self.last.store(last_seq, Ordering::Release);
    }

    /// A live stream can no longer carry what its client missed: end every
    /// stream, so each client resumes from history and learns where it
    /// stands.
    fn end_every_stream(&self, why: &str, next_in_log: u64) {
        tracing::warn!(
            last_dispatched = self.last_seq(),
            next_in_log,
            "{why}; ending every stream so that clients resume from history"
        );
        self.fanout.disconnect_all();
    }
}

/// The reader task of a node on a shared log: dispatches what `follow`
/// yields until the hub is gone or shut down, and reports the log's
/// health as it goes.
pub(crate) async fn follow(mut follow: Follow, dispatcher: Weak<Dispatcher>, health: Arc<Health>) {
    while let Some(read) = follow.next().await {
        let Some(dispatcher) = dispatcher.upgrade() else {
            return;
        };
        if dispatcher.fanout.is_closed() {
            return;
        }
        match read {
            Ok(Followed::Entries(batch)) => {
                health.ok();
                dispatcher.dispatch(&batch);
            }
            Ok(Followed::Restarted { last_seq }) => {
                health.ok();
                dispatcher.restart(last_seq);
            }
            Err(e) => health.failed(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use futures_util::FutureExt as _;

    use super::*;
    use crate::fanout::{Inbox, Interest};
    use crate::metrics::Metrics;

    fn entry(seq: u64) -> Arc<Entry> {
        Arc::new(Entry {
            seq,
            stored_at_ms: 0,
            id: seq.to_string(),
            topics: vec!["t".into()],
            private: false,
            frame: Bytes::new(),
        })
    }

    fn received(inbox: &mut Inbox) -> Vec<u64> {
        let mut seqs = Vec::new();
        while let Some(Some(e)) = std::future::poll_fn(|cx| inbox.poll_recv(cx)).now_or_never() {
            seqs.push(e.seq);
        }
        seqs
    }

    fn dispatcher_with_subscriber(
        last_seq: u64,
    ) -> (Dispatcher, crate::fanout::Registration, Inbox) {
        let fanout = Arc::new(Fanout::new(
            crate::matcher::HubUrl::default(),
            Arc::new(Metrics::default()),
            crate::fanout::Bound::events(64),
            (usize::MAX, usize::MAX),
        ));
        let interest = Arc::new(Interest {
            matchers: vec![crate::matcher::Matcher::Exact("t".into())],
            grants: None,
        });
        let (registration, inbox) = fanout.register(interest).unwrap();
        (Dispatcher::new(fanout, last_seq, None), registration, inbox)
    }

    #[test]
    fn batches_that_follow_each_other_are_delivered_in_order() {
        let (dispatcher, _registration, mut inbox) = dispatcher_with_subscriber(2);
        dispatcher.dispatch(&[entry(3), entry(4)]);
        dispatcher.dispatch(&[]);
        dispatcher.dispatch(&[entry(5)]);
        assert_eq!(received(&mut inbox), vec![3, 4, 5]);
        assert_eq!(dispatcher.last_seq(), 5);
    }

    #[test]
    fn a_log_that_starts_over_ends_every_live_stream() {
        let (dispatcher, _registration, mut inbox) = dispatcher_with_subscriber(0);
        dispatcher.dispatch(&[entry(1), entry(2)]);
        dispatcher.restart(1);
        dispatcher.dispatch(&[entry(2)]);
        assert_eq!(received(&mut inbox), vec![1, 2]);
        assert_eq!(
            std::future::poll_fn(|cx| inbox.poll_recv(cx)).now_or_never(),
            Some(None),
        );
        assert_eq!(
            dispatcher.last_seq(),
            2,
            "the new log's positions from now on"
        );
    }

    #[test]
    fn a_gap_ends_every_live_stream_after_what_is_queued() {
        let (dispatcher, _registration, mut inbox) = dispatcher_with_subscriber(0);
        dispatcher.dispatch(&[entry(1)]);
        dispatcher.dispatch(&[entry(4), entry(5)]);
        assert_eq!(received(&mut inbox), vec![1]);
        assert_eq!(
            std::future::poll_fn(|cx| inbox.poll_recv(cx)).now_or_never(),
            Some(None),
            "the stream ends: its client resumes from history"
        );
        assert_eq!(dispatcher.last_seq(), 5);
    }
}
