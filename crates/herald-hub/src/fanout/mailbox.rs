//! One subscriber's queue of live entries.
//!
//! Fan-out pushes the same `Arc<Entry>` into thousands of these per
//! publish, and each one lives as long as its subscriber, so it is kept to
//! one lock, one deque and one waker: the push touches one cache line, and
//! an idle subscriber's queue holds no buffer at all (a general-purpose
//! channel costs a few hundred bytes per subscriber before the first
//! entry, and over a fifth of the hub's CPU at high fan-out; see
//! bench/RESULTS.md). The bound is the caller's, in events and in bytes: a
//! full queue refuses the entry and fan-out closes the subscriber, which
//! resumes from history.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::history::Entry;

/// Capacity kept by an emptied queue; a burst's larger buffer is given back.
const KEPT_CAPACITY: usize = 16;

/// The queue shared by fan-out (pushing) and one subscription (receiving).
#[derive(Debug, Default)]
pub(crate) struct Mailbox {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    entries: VecDeque<Arc<Entry>>,
    /// What `entries` hold, by [`Entry::size`].
    bytes: usize,
    /// The subscription waiting for an entry, if it is waiting.
    waker: Option<Waker>,
    /// No entry will be pushed any more: the receiver drains and ends.
    closed: bool,
}

/// How much one queue may hold before its subscriber counts as too slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bound {
    /// Most entries queued.
    pub(crate) events: usize,
    /// Most bytes queued (by [`Entry::size`]). An entry larger than this
    /// still enters an empty queue: the bound is on falling behind, not on
    /// the size of one update, which the publish limit already bounds.
    pub(crate) bytes: usize,
}

impl Bound {
    /// A bound of `events` entries and, in effect, no byte limit.
    #[cfg(test)]
    pub(crate) fn events(events: usize) -> Bound {
        Bound {
            events,
            bytes: usize::MAX,
        }
    }
}

/// Why [`Mailbox::push`] refused an entry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The queue holds [`Bound::events`] entries: the subscriber is too
    /// slow.
    TooManyEvents,
    /// The entry would take the queue past [`Bound::bytes`]: the
    /// subscriber is too slow.
    TooManyBytes,
    /// The subscription is gone.
    Closed,
}

impl Mailbox {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section is a few field updates that cannot panic
        // half-way in a way that matters; keep serving after a poison.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `entry` unless that would take the queue past `bound` or
    /// the queue is closed, and wakes the subscription.
    pub(crate) fn push(&self, entry: Arc<Entry>, bound: Bound) -> Result<(), Refused> {
        let mut state = self.lock();
        if state.closed {
            return Err(Refused::Closed);
        }
        if state.entries.len() >= bound.events {
            return Err(Refused::TooManyEvents);
        }
        let size = entry.size();
        if !state.entries.is_empty() && state.bytes.saturating_add(size) > bound.bytes {
            return Err(Refused::TooManyBytes);
        }
        state.bytes += size;
        state.entries.push_back(entry);
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Ends the queue: the receiver gets what is queued, then `None`.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<Arc<Entry>>> {
        let mut state = self.lock();
        if let Some(entry) = state.entries.pop_front() {
            state.bytes = state.bytes.saturating_sub(entry.size());
            if state.entries.is_empty() && state.entries.capacity() > KEPT_CAPACITY {
                state.entries.shrink_to(KEPT_CAPACITY);
            }
            return Poll::Ready(Some(entry));
        }
        if state.closed {
            return Poll::Ready(None);
        }
        match &mut state.waker {
            Some(waker) => waker.clone_from(cx.waker()),
            empty => *empty = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// The receiving end of a [`Mailbox`]; dropping it closes the mailbox, so
/// fan-out stops queueing for a subscription that has gone.
#[derive(Debug)]
pub(crate) struct Inbox(Arc<Mailbox>);

impl Inbox {
    pub(crate) fn new(mailbox: Arc<Mailbox>) -> Inbox {
        Inbox(mailbox)
    }

    /// The next entry; `Ready(None)` once the mailbox is closed and
    /// drained.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Arc<Entry>>> {
        self.0.poll_recv(cx)
    }

    #[cfg(test)]
    async fn recv(&mut self) -> Option<Arc<Entry>> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures_util::FutureExt as _;

    fn entry(seq: u64) -> Arc<Entry> {
        sized(seq, 0)
    }

    /// An entry whose frame is `len` bytes.
    fn sized(seq: u64, len: usize) -> Arc<Entry> {
        Arc::new(Entry {
            seq,
            id: seq.to_string(),
            topics: vec!["t".into()],
            private: false,
            frame: Bytes::from(vec![b'x'; len]),
            stored_at_ms: 0,
        })
    }

    #[test]
    fn entries_arrive_in_order_and_a_full_queue_refuses() {
        let mailbox = Arc::new(Mailbox::default());
        let mut inbox = Inbox::new(Arc::clone(&mailbox));
        assert_eq!(mailbox.push(entry(1), Bound::events(2)), Ok(()));
        assert_eq!(mailbox.push(entry(2), Bound::events(2)), Ok(()));
        assert_eq!(
            mailbox.push(entry(3), Bound::events(2)),
            Err(Refused::TooManyEvents)
        );
        assert_eq!(
            inbox.recv().now_or_never().flatten().map(|e| e.seq),
            Some(1)
        );
        assert_eq!(
            inbox.recv().now_or_never().flatten().map(|e| e.seq),
            Some(2)
        );
        assert!(inbox.recv().now_or_never().is_none(), "empty: waits");
    }

    #[test]
    fn a_closed_mailbox_drains_then_ends() {
        let mailbox = Arc::new(Mailbox::default());
        let mut inbox = Inbox::new(Arc::clone(&mailbox));
        mailbox.push(entry(1), Bound::events(8)).unwrap();
        mailbox.close();
        assert_eq!(
            mailbox.push(entry(2), Bound::events(8)),
            Err(Refused::Closed)
        );
        assert_eq!(
            inbox.recv().now_or_never().flatten().map(|e| e.seq),
            Some(1)
        );
        assert_eq!(inbox.recv().now_or_never(), Some(None));
    }

    #[test]
    fn dropping_the_inbox_refuses_further_entries() {
        let mailbox = Arc::new(Mailbox::default());
        drop(Inbox::new(Arc::clone(&mailbox)));
        assert_eq!(
            mailbox.push(entry(1), Bound::events(8)),
            Err(Refused::Closed)
        );
    }

    #[tokio::test]
    async fn a_push_wakes_the_waiting_receiver() {
        let mailbox = Arc::new(Mailbox::default());
        let mut inbox = Inbox::new(Arc::clone(&mailbox));
        let receiver = tokio::spawn(async move { inbox.recv().await.map(|e| e.seq) });
        tokio::task::yield_now().await;
        mailbox.push(entry(7), Bound::events(8)).unwrap();
        assert_eq!(receiver.await.unwrap(), Some(7));
    }

    #[test]
    fn an_emptied_queue_gives_back_a_burst_buffer() {
        let mailbox = Arc::new(Mailbox::default());
        let mut inbox = Inbox::new(Arc::clone(&mailbox));
        for seq in 0..1000 {
            mailbox.push(entry(seq), Bound::events(1000)).unwrap();
        }
        while inbox.recv().now_or_never().flatten().is_some() {}
        assert!(mailbox.lock().entries.capacity() <= KEPT_CAPACITY);
    }

    #[test]
    fn the_byte_bound_refuses_what_would_pass_it_but_never_an_empty_queues_first() {
        let mailbox = Arc::new(Mailbox::default());
        let mut inbox = Inbox::new(Arc::clone(&mailbox));
        let size = sized(0, 1000).size();
        let bound = Bound {
            events: 100,
            bytes: 3 * size,
        };
        for seq in 1..=3 {
            assert_eq!(mailbox.push(sized(seq, 1000), bound), Ok(()));
        }
        assert_eq!(
            mailbox.push(sized(4, 1000), bound),
            Err(Refused::TooManyBytes)
        );
        // Taking one makes room for one.
        assert_eq!(
            inbox.recv().now_or_never().flatten().map(|e| e.seq),
            Some(1)
        );
        assert_eq!(mailbox.push(sized(4, 1000), bound), Ok(()));
        while inbox.recv().now_or_never().flatten().is_some() {}
        assert_eq!(mailbox.lock().bytes, 0, "an empty queue holds no bytes");

        // An entry larger than the whole bound enters an empty queue, and
        // nothing joins it until it is taken.
        assert_eq!(mailbox.push(sized(5, 10 * size), bound), Ok(()));
        assert_eq!(mailbox.push(entry(6), bound), Err(Refused::TooManyBytes));
        assert_eq!(
            inbox.recv().now_or_never().flatten().map(|e| e.seq),
            Some(5)
        );
        assert_eq!(mailbox.push(sized(7, 10 * size), bound), Ok(()));
    }
}
