//! One subscriber's queue of live entries.
//!
//! Fan-out pushes the same `Arc<Entry>` into thousands of these per
//! publish, and each one lives as long as its subscriber, so it is kept to
//! one lock, one deque and one waker: the push touches one cache line, and
//! an idle subscriber's queue holds no buffer at all (a general-purpose
//! channel costs a few hundred bytes per subscriber before the first
//! entry, and over a fifth of the hub's CPU at high fan-out; see
//! bench/RESULTS.md). The bound is the caller's: a full queue refuses the
//! entry and fan-out closes the subscriber, which resumes from history.

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
    /// The subscription waiting for an entry, if it is waiting.
    waker: Option<Waker>,
    /// No entry will be pushed any more: the receiver drains and ends.
    closed: bool,
}

/// Why [`Mailbox::push`] refused an entry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The queue holds `capacity` entries: the subscriber is too slow.
    Full,
    /// The subscription is gone.
    Closed,
}

impl Mailbox {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section is a few field updates that cannot panic
        // half-way in a way that matters; keep serving after a poison.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `entry` unless the queue already holds `capacity` entries or
    /// is closed, and wakes the subscription.
    pub(crate) fn push(&self, entry: Arc<Entry>, capacity: usize) -> Result<(), Refused> {
        let mut state = self.lock();
        if state.closed {
            return Err(Refused::Closed);
        }
        if state.entries.len() >= capacity {
            return Err(Refused::Full);
        }
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
        Arc::new(Entry {
            seq,
            id: seq.to_string(),
            topics: vec!["t".into()],
            private: false,
            frame: Bytes::new(),
            stored_at_ms: 0,
        })
    }

    #[test]
    fn entries_arrive_in_order_and_a_full_queue_refuses() {
        let mailbox = Arc::new(Mailbox::default());
        let mut inbox = Inbox::new(Arc::clone(&mailbox));
        assert_eq!(mailbox.push(entry(1), 2), Ok(()));
        assert_eq!(mailbox.push(entry(2), 2), Ok(()));
        assert_eq!(mailbox.push(entry(3), 2), Err(Refused::Full));
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
        mailbox.push(entry(1), 8).unwrap();
        mailbox.close();
        assert_eq!(mailbox.push(entry(2), 8), Err(Refused::Closed));
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
        assert_eq!(mailbox.push(entry(1), 8), Err(Refused::Closed));
    }

    #[tokio::test]
    async fn a_push_wakes_the_waiting_receiver() {
        let mailbox = Arc::new(Mailbox::default());
        let mut inbox = Inbox::new(Arc::clone(&mailbox));
        let receiver = tokio::spawn(async move { inbox.recv().await.map(|e| e.seq) });
        tokio::task::yield_now().await;
        mailbox.push(entry(7), 8).unwrap();
        assert_eq!(receiver.await.unwrap(), Some(7));
    }

    #[test]
    fn an_emptied_queue_gives_back_a_burst_buffer() {
        let mailbox = Arc::new(Mailbox::default());
        let mut inbox = Inbox::new(Arc::clone(&mailbox));
        for seq in 0..1000 {
            mailbox.push(entry(seq), 1000).unwrap();
        }
        while inbox.recv().now_or_never().flatten().is_some() {}
        assert!(mailbox.lock().entries.capacity() <= KEPT_CAPACITY);
    }
}
