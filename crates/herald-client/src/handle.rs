//! What works on an [`EventSource`](crate::EventSource) from outside its
//! reconnection loop: the state the stream shares with its handles, and
//! [`CloseHandle`].
//!
//! The loop runs only while the stream is polled, so a handle cannot act on
//! it directly: it records what it wants in [`Shared`] and wakes the task
//! that polls the stream, which then acts on it.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;

use futures_util::task::AtomicWaker;

use crate::event_source::ReadyState;

/// What the stream and its handles share.
#[derive(Debug)]
pub(crate) struct Shared {
    closed: AtomicBool,
    /// Wakes the task polling the source when a handle closes it.
    waker: AtomicWaker,
    state: AtomicU8,
    last_event_id: Mutex<String>,
}

impl Shared {
    /// A source that has not connected yet and starts from `last_event_id`.
    pub(crate) fn new(last_event_id: &str) -> Shared {
        Shared {
            closed: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            state: AtomicU8::new(ReadyState::Connecting as u8),
            last_event_id: Mutex::new(last_event_id.to_owned()),
        }
    }

    /// Registers the task polling the source, to be woken by its handles.
    /// Called at every poll, before the flags are read.
    pub(crate) fn register(&self, waker: &Waker) {
        self.waker.register(waker);
    }

    pub(crate) fn set_state(&self, state: ReadyState) {
        self.state.store(state as u8, Ordering::Release);
    }

    /// The ready state. The `closed` flag wins over `state`: a `close` from
    /// another thread can come while the driver is polled, which may then
    /// still store `Open` or `Connecting` after it.
    pub(crate) fn state(&self) -> ReadyState {
        if self.is_closed() {
            return ReadyState::Closed;
        }
        match self.state.load(Ordering::Acquire) {
            0 => ReadyState::Connecting,
            1 => ReadyState::Open,
            _ => ReadyState::Closed,
        }
    }

    pub(crate) fn last_event_id(&self) -> String {
        self.last_event_id
            .lock()
            .map(|id| id.clone())
            .unwrap_or_default()
    }

    pub(crate) fn set_last_event_id(&self, id: &str) {
        if let Ok(mut current) = self.last_event_id.lock() {
            if *current != id {
                id.clone_into(&mut current);
            }
        }
    }

    /// Whether the source was closed by [`Shared::close`].
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.set_state(ReadyState::Closed);
        self.waker.wake();
    }
}

/// Closes an [`EventSource`](crate::EventSource) from elsewhere (another
/// task, a signal handler). Cheap to clone.
#[derive(Debug, Clone)]
pub struct CloseHandle {
    pub(crate) shared: Arc<Shared>,
}

impl CloseHandle {
    /// Closes the source: its stream ends at its next poll (a pending poll
    /// is woken), with no further item.
    pub fn close(&self) {
        self.shared.close();
    }

    /// Whether the source was closed.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_source_stays_closed_whatever_the_driver_stores_after() {
        let shared = Shared::new("");
        shared.set_state(ReadyState::Open);
        assert_eq!(shared.state(), ReadyState::Open);
        // A close handle on another thread closes while the driver is
        // connecting; the driver then finishes and stores its state.
        shared.close();
        for late in [ReadyState::Open, ReadyState::Connecting] {
            shared.set_state(late);
            assert_eq!(shared.state(), ReadyState::Closed, "{late:?}");
        }
    }
}
