//! What works on an [`EventSource`](crate::EventSource) from outside its
//! reconnection loop: the state the stream shares with its handles,
//! [`CloseHandle`] and [`RestartHandle`].
//!
//! The loop runs only while the stream is polled, so a handle cannot act on
//! it directly: it records what it wants in [`Shared`] and wakes the task
//! that polls the stream, which then acts on it. A wait inside the loop
//! (for the network, or before reconnecting) goes through
//! [`Shared::unless_restarted`], so that a restart cuts it short.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use futures_util::task::AtomicWaker;
use http::header::AUTHORIZATION;
use http::HeaderMap;

use crate::event_source::ReadyState;

/// What the stream and its handles share.
#[derive(Debug)]
pub(crate) struct Shared {
    closed: AtomicBool,
    /// Wakes the task polling the source when a handle closes or restarts
    /// it.
    waker: AtomicWaker,
    state: AtomicU8,
    last_event_id: Mutex<String>,
    /// Set by a restart; taken by the driver before its next step.
    restart: AtomicBool,
    /// Header changes the driver has not applied yet (empty: none), merged
    /// in the order they were made.
    header_updates: Mutex<HeaderMap>,
}

impl Shared {
    /// A source that has not connected yet and starts from `last_event_id`.
    pub(crate) fn new(last_event_id: &str) -> Shared {
        Shared {
            closed: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            state: AtomicU8::new(ReadyState::Connecting as u8),
            last_event_id: Mutex::new(last_event_id.to_owned()),
            restart: AtomicBool::new(false),
            header_updates: Mutex::new(HeaderMap::new()),
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

    /// Asks the driver to drop its connection (or its wait) and connect
    /// again at once. Nothing on a closed source: it stays closed.
    pub(crate) fn restart(&self) {
        if self.is_closed() {
            return;
        }
        self.restart.store(true, Ordering::Release);
        // `Connecting` at once, as the browser's readyState would be; but
        // only over `Open`: a source the driver just closed after a fatal
        // error must not look alive.
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                (state != ReadyState::Closed as u8).then_some(ReadyState::Connecting as u8)
            });
        self.waker.wake();
    }

    /// Whether a restart was asked for and not yet taken.
    fn restart_requested(&self) -> bool {
        self.restart.load(Ordering::Acquire)
    }

    /// Takes a pending restart request.
    pub(crate) fn take_restart(&self) -> bool {
        self.restart.swap(false, Ordering::AcqRel)
    }

    /// Records header changes for the next connection attempt.
    pub(crate) fn update_headers(&self, headers: HeaderMap) {
        if let Ok(mut pending) = self.header_updates.lock() {
            replace_headers(&mut pending, headers);
        }
    }

    /// Applies the recorded header changes to `headers`.
    pub(crate) fn apply_header_updates(&self, headers: &mut HeaderMap) {
        let updates = match self.header_updates.lock() {
            Ok(mut pending) if !pending.is_empty() => std::mem::take(&mut *pending),
            _ => return,
        };
        replace_headers(headers, updates);
    }

    /// Runs `future` to its end, or until a restart is asked for: then
    /// `None`, and `future` is dropped (with the connection or the timer it
    /// was waiting on).
    ///
    /// This needs no waker of its own: the future is polled only from
    /// `EventSource::poll_next`, which registers the task with
    /// [`Shared::register`] first, and a restart wakes that task.
    pub(crate) async fn unless_restarted<F: Future>(&self, future: F) -> Option<F::Output> {
        let mut future = pin!(future);
        std::future::poll_fn(|cx| {
            if self.restart_requested() {
                return Poll::Ready(None);
            }
            future.as_mut().poll(cx).map(Some)
        })
        .await
    }
}

/// For each header name in `updates`, replaces every value `target` has
/// under that name by the values in `updates`; other names are kept.
fn replace_headers(target: &mut HeaderMap, updates: HeaderMap) {
    let mut name = None;
    // `into_iter` gives the name only with the first value of each header.
    for (next, mut value) in updates {
        if let Some(next) = next {
            target.remove(&next);
            name = Some(next);
        }
        let Some(name) = &name else { continue };
        // As `Builder::bearer_token` does: HTTP/2 then keeps the credential
        // out of its header compression tables.
        if name == AUTHORIZATION {
            value.set_sensitive(true);
        }
        target.append(name.clone(), value);
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

    /// Whether the source was closed (or dropped).
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }
}

/// Restarts an [`EventSource`](crate::EventSource), or changes the headers
/// of its next connections, from elsewhere: e.g. a task that refreshes an
/// access token. Cheap to clone.
///
/// Each method does what the [`EventSource`](crate::EventSource) method of
/// the same name does; see
/// [`EventSource::restart`](crate::EventSource::restart).
#[derive(Debug, Clone)]
pub struct RestartHandle {
    pub(crate) shared: Arc<Shared>,
}

impl RestartHandle {
    /// Drops the connection and connects again at once, with
    /// `Last-Event-ID`; see [`EventSource::restart`](crate::EventSource::restart).
    pub fn restart(&self) {
        self.shared.restart();
    }

    /// Replaces these headers, then restarts; see
    /// [`EventSource::restart_with_headers`](crate::EventSource::restart_with_headers).
    pub fn restart_with_headers(&self, headers: HeaderMap) {
        self.shared.update_headers(headers);
        self.shared.restart();
    }

    /// Replaces these headers from the next connection attempt on, without
    /// restarting; see [`EventSource::set_headers`](crate::EventSource::set_headers).
    pub fn set_headers(&self, headers: HeaderMap) {
        self.shared.update_headers(headers);
    }

    /// The source's ready state: [`ReadyState::Closed`] once it was closed,
    /// dropped, or ended after a fatal error, when a restart does nothing
    /// any more.
    pub fn ready_state(&self) -> ReadyState {
        self.shared.state()
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

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

    fn values<'a>(map: &'a HeaderMap, name: &str) -> Vec<&'a str> {
        map.get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    #[test]
    fn header_updates_replace_by_name_and_keep_the_other_names() {
        let mut headers = HeaderMap::new();
        headers.append("x-keep", HeaderValue::from_static("k"));
        headers.append("x-multi", HeaderValue::from_static("old1"));
        headers.append("x-multi", HeaderValue::from_static("old2"));
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer old"));
        let mut updates = HeaderMap::new();
        updates.append("x-multi", HeaderValue::from_static("new1"));
        updates.append("x-multi", HeaderValue::from_static("new2"));
        updates.append(AUTHORIZATION, HeaderValue::from_static("Bearer new"));
        updates.append("x-added", HeaderValue::from_static("a"));
        replace_headers(&mut headers, updates);
        assert_eq!(values(&headers, "x-keep"), ["k"]);
        assert_eq!(values(&headers, "x-multi"), ["new1", "new2"]);
        assert_eq!(values(&headers, "authorization"), ["Bearer new"]);
        assert_eq!(values(&headers, "x-added"), ["a"]);
        assert!(headers[AUTHORIZATION].is_sensitive());
    }

    #[test]
    fn header_updates_made_before_a_connection_apply_in_order() {
        let shared = Shared::new("");
        let one = |name: &'static str, value: &'static str| {
            let mut map = HeaderMap::new();
            map.insert(name, HeaderValue::from_static(value));
            map
        };
        shared.update_headers(one("x-a", "1"));
        shared.update_headers(one("x-b", "2"));
        shared.update_headers(one("x-a", "3"));
        let mut headers = one("x-c", "kept");
        shared.apply_header_updates(&mut headers);
        assert_eq!(values(&headers, "x-a"), ["3"]);
        assert_eq!(values(&headers, "x-b"), ["2"]);
        assert_eq!(values(&headers, "x-c"), ["kept"]);
        // Applied once: the next connection has nothing new to apply.
        let mut again = HeaderMap::new();
        shared.apply_header_updates(&mut again);
        assert!(again.is_empty());
    }

    #[test]
    fn a_restart_leaves_a_closed_source_closed() {
        let shared = Shared::new("");
        shared.set_state(ReadyState::Open);
        shared.restart();
        assert_eq!(shared.state(), ReadyState::Connecting);
        assert!(shared.take_restart());
        assert!(!shared.take_restart(), "taken once");
        // Ended by a fatal error: the driver stored `Closed`.
        shared.set_state(ReadyState::Closed);
        shared.restart();
        assert_eq!(shared.state(), ReadyState::Closed);
        // Closed by the user.
        let shared = Shared::new("");
        shared.close();
        shared.restart();
        assert_eq!(shared.state(), ReadyState::Closed);
        assert!(!shared.take_restart());
    }
}
