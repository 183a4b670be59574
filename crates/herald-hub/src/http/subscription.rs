//! One subscriber's stream of frames: replay, then live, with heartbeats.
//!
//! Replay reads history a page at a time from the position the request
//! resolved to; live entries come from the subscriber's fan-out inbox, and
//! any at or below the last sequence number already sent are dropped (they
//! were replayed). Heartbeat comments fill silences only, and the stream
//! ends when the subscriber's token expires, or when it has lived its
//! maximum lifetime ([`End`]). Dropped because the server closed its
//! connection for a write stall, it counts itself as slow. However it ends,
//! it gives back its place among its client's streams
//! ([`super::client_limit`]). A subscriber
//! that asked to be told when its resume position is gone gets the
//! `events_lost` frame ([`super::lost_events`]) before anything the replay
//! sends.
//!
//! The stream is polled by hand rather than written as an `async` loop:
//! a subscriber keeps it for as long as it is connected, and a hand-written
//! state is less than half the size of the equivalent future.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use tokio::time::{Instant, Sleep};

use super::client_limit::ClientPermit;
use crate::fanout::{Inbox, Interest, Registration, SlowReason, StallFlag};
use crate::history::{Entry, HistoryError};
use crate::metrics::Metrics;
use crate::presence::Announced;
use crate::Hub;

/// Entries read from history at a time during replay.
pub(super) const REPLAY_PAGE: usize = 512;

type PageRead = Pin<Box<dyn Future<Output = Result<Vec<Arc<Entry>>, HistoryError>> + Send>>;

/// Where a replay stands.
pub(super) struct Replay {
    buffered: VecDeque<Arc<Entry>>,
    /// History returned a short page: nothing more to read.
    exhausted: bool,
    /// The read of the next page, while it is under way.
    reading: Option<PageRead>,
    /// The resume id history did not hold, while the `events_lost` frame
    /// is still to be sent. It waits for the first entry this subscriber
    /// may receive, whose id it names: an id the subscriber sees anyway,
    /// never one of an update it may not read.
    lost: Option<String>,
    /// A replayed frame held back while the `events_lost` frame goes first.
    held: Option<Bytes>,
}

impl Replay {
    /// A replay that starts with `page`, the first page read from history.
    /// `lost` is the resume id to report as lost, for a subscriber that
    /// asked to be told.
    pub(super) fn new(page: Vec<Arc<Entry>>, lost: Option<String>) -> Replay {
        Replay {
            exhausted: page.len() < REPLAY_PAGE,
            buffered: page.into(),
            reading: None,
            lost,
            held: None,
        }
    }
}

/// A step of the replay.
enum Replayed {
    /// The next replayed frame.
    Frame(Bytes),
    /// Replay is over (or there was none): go live.
    Done,
    /// The stream must end (history failed, or lost entries mid-replay).
    End,
}

/// Why a stream ends at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    /// The subscriber's token expires.
    TokenExpiry,
    /// The stream has lived `HubConfig::max_stream_lifetime` (less its
    /// jitter): the client reconnects, elsewhere perhaps, with its token
    /// checked again.
    Lifetime,
}

/// One subscriber's stream of frames.
pub(super) struct Subscription {
    hub: Hub,
    interest: Arc<Interest>,
    inbox: Inbox,
    /// Unregisters from fan-out when the stream is dropped.
    registration: Registration,
    /// Raised when the server closes the connection because the client
    /// stopped reading; `None` when served by another server.
    stall: Option<StallFlag>,
    /// `None` once replay is over (or when there was none).
    replay: Option<Box<Replay>>,
    /// Sequence number of the last entry replayed or sent.
    last_seq: u64,
    started: bool,
    /// When bytes were last produced; heartbeats only fill silences.
    last_write: Instant,
    heartbeat: Option<Pin<Box<Sleep>>>,
    expires: Option<(Pin<Box<Sleep>>, End)>,
    /// Announces the end of the subscriptions when the stream is dropped.
    _announced: Option<Announced>,
    /// The stream's place among its client's (`None`: not counted). Given
    /// back as soon as the stream ends, before its last chunk is written,
    /// or when it is dropped: a client that reconnects at once is not
    /// refused for the stream it just lost.
    client: Option<ClientPermit>,
}

impl Subscription {
    /// A stream for a registered subscriber: `replay` first when given,
    /// from just after `last_seq`; it ends at `ends` if set.
    pub(super) fn new(
        hub: Hub,
        interest: Arc<Interest>,
        (registration, inbox): (Registration, Inbox),
        replay: Option<Replay>,
        last_seq: u64,
        ends: Option<(Instant, End)>,
    ) -> Subscription {
        Subscription {
            hub,
            interest,
            inbox,
            registration,
            stall: None,
            replay: replay.map(Box::new),
            last_seq,
            started: false,
            last_write: Instant::now(),
            heartbeat: None,
            expires: ends.map(|(at, why)| (Box::pin(tokio::time::sleep_until(at)), why)),
            _announced: None,
            client: None,
        }
    }

    /// Ties the subscription events of this connection to the stream: its
    /// end is announced when the stream is dropped.
    pub(super) fn announced(mut self, announced: Option<Announced>) -> Subscription {
        self._announced = announced;
        self
    }

    /// Ties the stream to the connection's stall flag (see
    /// [`crate::fanout::StallFlag`]).
    pub(super) fn stall_flag(mut self, stall: Option<StallFlag>) -> Subscription {
        self.stall = stall;
        self
    }

    /// Counts the stream against its client until it ends.
    pub(super) fn client_permit(mut self, permit: Option<ClientPermit>) -> Subscription {
        self.client = permit;
        self
    }

    /// The next step of the replay.
    fn poll_replayed(&mut self, cx: &mut Context<'_>) -> Poll<Replayed> {
        let shared = &self.hub.shared;
        loop {
            let Some(replay) = self.replay.as_mut() else {
                return Poll::Ready(Replayed::Done);
            };
            if let Some(frame) = replay.held.take() {
                return Poll::Ready(Replayed::Frame(frame));
            }
            if let Some(reading) = replay.reading.as_mut() {
                let page = ready!(reading.as_mut().poll(cx));
                replay.reading = None;
                match page {
                    // Entries were evicted while we replayed: end the stream
                    // so the client reconnects and is told `earliest`.
                    Ok(page) if page.first().is_some_and(|e| e.seq != self.last_seq + 1) => {
                        return Poll::Ready(Replayed::End)
                    }
                    Ok(page) => {
                        replay.exhausted = page.len() < REPLAY_PAGE;
                        replay.buffered = page.into();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "replay stopped: history read failed");
                        return Poll::Ready(Replayed::End);
                    }
                }
            }
            if let Some(entry) = replay.buffered.pop_front() {
                self.last_seq = entry.seq;
                if self.interest.wants(&entry, &shared.config.hub_url) {
                    Metrics::inc(&shared.metrics.events_delivered_total);
                    if let Some(requested) = replay.lost.take() {
                        replay.held = Some(entry.frame.clone());
                        let signal = super::lost_events::frame(&requested, Some(&entry.id));
                        return Poll::Ready(Replayed::Frame(signal));
                    }
                    return Poll::Ready(Replayed::Frame(entry.frame.clone()));
                }
                continue;
            }
            if replay.exhausted {
                // Nothing to replay to this subscriber: it is still told.
                if let Some(requested) = replay.lost.take() {
                    let signal = super::lost_events::frame(&requested, None);
                    return Poll::Ready(Replayed::Frame(signal));
                }
                self.replay = None;
                return Poll::Ready(Replayed::Done);
            }
            if self.hub.is_shutting_down() {
                return Poll::Ready(Replayed::End);
            }
            let history = Arc::clone(&shared.history);
            let after = self.last_seq;
            replay.reading = Some(Box::pin(async move {
                history.read_after(after, REPLAY_PAGE).await
            }));
        }
    }

    fn poll_live(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let interval = self.hub.shared.config.heartbeat;
        loop {
            if let Some((expires, why)) = self.expires.as_mut() {
                if expires.as_mut().poll(cx).is_ready() {
                    match why {
                        End::TokenExpiry => tracing::debug!("closing a stream: its token expired"),
                        End::Lifetime => {
                            Metrics::inc(&self.hub.shared.metrics.lifetime_ends_total);
                            tracing::debug!("closing a stream: it reached its maximum lifetime");
                        }
                    }
                    return Poll::Ready(None);
                }
            }
            match self.inbox.poll_recv(cx) {
                Poll::Ready(None) => return Poll::Ready(None),
                // Already replayed.
                Poll::Ready(Some(entry)) if entry.seq <= self.last_seq => continue,
                Poll::Ready(Some(entry)) => {
                    self.last_seq = entry.seq;
                    return Poll::Ready(Some(self.wrote(entry.frame.clone())));
                }
                Poll::Pending => {}
            }
            if interval.is_zero() {
                return Poll::Pending;
            }
            let due = self.last_write + interval;
            let heartbeat = self
                .heartbeat
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
            if heartbeat.deadline() != due {
                heartbeat.as_mut().reset(due);
            }
            ready!(heartbeat.as_mut().poll(cx));
            return Poll::Ready(Some(self.wrote(self.hub.shared.heartbeat.clone())));
        }
    }

    fn wrote(&mut self, frame: Bytes) -> Bytes {
        self.last_write = Instant::now();
        frame
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // The client's place first, before the registration leaves
        // fan-out: whoever sees the subscriber count fall sees it free.
        self.client = None;
        if self.stall.as_ref().is_some_and(StallFlag::is_raised) {
            self.registration.close_as_slow(SlowReason::WriteStall);
        }
    }
}

impl Stream for Subscription {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if !this.started {
            // An initial comment makes servers and proxies flush the headers.
            this.started = true;
            let frame = this.hub.shared.heartbeat.clone();
            return Poll::Ready(Some(Ok(this.wrote(frame))));
        }
        let next = match ready!(this.poll_replayed(cx)) {
            Replayed::Frame(frame) => Some(this.wrote(frame)),
            Replayed::End => None,
            Replayed::Done => ready!(this.poll_live(cx)),
        };
        if next.is_none() {
            this.client = None;
        }
        Poll::Ready(next.map(Ok))
    }
}
