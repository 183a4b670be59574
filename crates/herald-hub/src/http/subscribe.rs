//! `GET /.well-known/mercure`: the subscribe path, from request to stream.
//!
//! Parse the selectors, authenticate (or admit anonymously), register with
//! fan-out FIRST, then resolve `Last-Event-ID` and replay from history,
//! then follow the live queue, dropping live entries already replayed
//! (sequence number at or below the last one sent). Registering before
//! reading history is what makes the hand-over free of gaps; comparing
//! sequence numbers is what makes it free of duplicates.
//!
//! An id that history no longer holds (evicted, or never seen) is never
//! taken to mean "nothing missed": the stream replays everything history
//! still holds and the response says `Last-Event-ID: earliest`.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

use super::Rejection;
use crate::auth::{extract_token, Claims, TokenSource};
use crate::fanout::{Interest, Registration};
use crate::history::Entry;
use crate::metrics::Metrics;
use crate::protocol::parse_subscribe;
use crate::Hub;

/// Entries read from history at a time during replay.
const REPLAY_PAGE: usize = 512;

/// The reserved `Last-Event-ID` that asks for all history.
const EARLIEST: &str = "earliest";

static LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

pub(crate) async fn subscribe(
    State(hub): State<Hub>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    match open(hub, query.as_deref(), &headers).await {
        Ok(response) => response,
        Err(rejection) => rejection.into_response(),
    }
}

async fn open(hub: Hub, query: Option<&str>, headers: &HeaderMap) -> Result<Response, Rejection> {
    if hub.is_shutting_down() {
        return Err(Rejection::Unavailable(
            "the hub is shutting down; reconnect to another node".into(),
        ));
    }
    let shared = Arc::clone(&hub.shared);
    let request = parse_subscribe(query.unwrap_or(""), &shared.config.limits)
        .map_err(|e| Rejection::BadRequest(e.to_string()))?;
    let claims = authenticate(&hub, headers, query)?;
    let last_event_id = match headers.get(&LAST_EVENT_ID) {
        Some(raw) => Some(
            std::str::from_utf8(raw.as_bytes())
                .map_err(|_| {
                    Rejection::BadRequest(
                        "invalid \"Last-Event-ID\" header: not valid UTF-8".into(),
                    )
                })?
                .to_owned(),
        ),
        None => request.last_event_id,
    }
    // An empty id is no position (browsers never send one): no replay.
    .filter(|id| !id.is_empty());
    let expires = claims.as_ref().and_then(|c| c.exp).map(deadline_of);
    let interest = Arc::new(Interest {
        selectors: request.selectors,
        private_selectors: claims.and_then(|c| c.subscribe),
    });

    // Register for live entries before reading history: nothing stored
    // from here on can be missed.
    let (registration, queue) = shared.fanout.register(Arc::clone(&interest)).map_err(|_| {
        Rejection::Unavailable("the hub is shutting down; reconnect to another node".into())
    })?;

    let mut resumed_from = None;
    let mut replay = None;
    let mut last_seq = 0;
    if let Some(id) = last_event_id {
        let found = if id == EARLIEST {
            None
        } else {
            shared.history.seq_of(&id).await.map_err(unavailable)?
        };
        let after = found.unwrap_or(0);
        last_seq = after;
        let page = shared
            .history
            .read_after(after, REPLAY_PAGE)
            .await
            .map_err(unavailable)?;
        // The id may have been evicted between the lookup and the read.
        let intact = found.is_some() && page.first().is_none_or(|e| e.seq == after + 1);
        resumed_from = Some(if intact { id } else { EARLIEST.to_owned() });
        replay = Some(Replay {
            exhausted: page.len() < REPLAY_PAGE,
            buffered: page.into(),
        });
    }

    tracing::debug!(
        selectors = ?interest.selectors,
        authorized = interest.private_selectors.is_some(),
        resumed_from = resumed_from.as_deref().unwrap_or(""),
        "subscribed"
    );
    let subscription = Subscription {
        hub,
        interest,
        queue,
        _registration: registration,
        replay,
        last_seq,
        started: false,
        last_write: Instant::now(),
        heartbeat: None,
        expires: expires.map(|at| Box::pin(tokio::time::sleep_until(at))),
    };
    let stream = futures_util::stream::unfold(subscription, |mut sub| async move {
        let frame = sub.next_frame().await?;
        Some((Ok::<_, std::convert::Infallible>(frame), sub))
    });

    let mut response = super::event_stream(stream);
    let out = response.headers_mut();
    if let Some(id) = resumed_from {
        // Ids come from the publish form or the request and may hold bytes a
        // header cannot; such an id is still replayed from, just not echoed.
        if let Ok(value) = HeaderValue::from_str(&id) {
            out.insert(LAST_EVENT_ID.clone(), value);
        }
    }
    Ok(response)
}

fn unavailable(e: crate::history::HistoryError) -> Rejection {
    Rejection::Unavailable(format!("history is unavailable: {e}"))
}

/// The subscriber's verified claims, `None` for an anonymous subscriber.
fn authenticate(
    hub: &Hub,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<Claims>, Rejection> {
    let shared = &hub.shared;
    let anonymous = shared.config.anonymous;
    let Some((token, source)) =
        extract_token(headers, query).map_err(|e| Rejection::Unauthorized(e.to_string()))?
    else {
        return if anonymous {
            Ok(None)
        } else {
            Err(Rejection::Unauthorized(
                "subscribing needs a JWT: send \"Authorization: Bearer <token>\", the \"authorization\" query parameter or the \"mercureAuthorization\" cookie".into(),
            ))
        };
    };
    let verified = match &shared.subscriber_jwt {
        Some(verifier) => verifier.verify(&token).map_err(|e| e.to_string()),
        None => Err("this hub has no subscriber key configured".to_string()),
    };
    match verified {
        Ok(claims) => Ok(Some(claims)),
        // A stale cookie must not lock a browser out of public updates it
        // could read without one (a common complaint about the reference
        // hub); a token given explicitly is still refused.
        Err(reason) if source == TokenSource::Cookie && anonymous => {
            tracing::debug!(%reason, "ignoring an unusable mercureAuthorization cookie; subscribing anonymously");
            Ok(None)
        }
        Err(reason) => Err(Rejection::Unauthorized(reason)),
    }
}

/// The instant a token with `exp` (seconds since the epoch) runs out.
fn deadline_of(exp: u64) -> Instant {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let left = Duration::from_secs(exp).saturating_sub(now);
    Instant::now() + left
}

struct Replay {
    buffered: VecDeque<Arc<Entry>>,
    /// History returned a short page: nothing more to read.
    exhausted: bool,
}

/// One subscriber's stream: replay, then live, with heartbeats.
struct Subscription {
    hub: Hub,
    interest: Arc<Interest>,
    queue: mpsc::Receiver<Arc<Entry>>,
    /// Unregisters from fan-out when the stream is dropped.
    _registration: Registration,
    replay: Option<Replay>,
    /// Sequence number of the last entry replayed or sent.
    last_seq: u64,
    started: bool,
    /// When bytes were last produced; heartbeats only fill silences.
    last_write: Instant,
    heartbeat: Option<Pin<Box<Sleep>>>,
    expires: Option<Pin<Box<Sleep>>>,
}

impl Subscription {
    /// The next bytes to send, or `None` to end the stream.
    async fn next_frame(&mut self) -> Option<Bytes> {
        if !self.started {
            // An initial comment makes servers and proxies flush the headers.
            self.started = true;
            return Some(self.wrote(self.hub.shared.heartbeat.clone()));
        }
        if self.replay.is_some() {
            if let Some(frame) = self.next_replayed().await {
                return Some(self.wrote(frame));
            }
            if self.replay.is_some() {
                return None;
            }
        }
        self.next_live().await
    }

    /// The next replayed frame; `None` with `self.replay` cleared when the
    /// replay is complete, `None` with it set when the stream must end.
    async fn next_replayed(&mut self) -> Option<Bytes> {
        let shared = Arc::clone(&self.hub.shared);
        loop {
            let replay = self.replay.as_mut()?;
            if let Some(entry) = replay.buffered.pop_front() {
                self.last_seq = entry.seq;
                if self.interest.wants(&shared.matcher, &entry) {
                    Metrics::inc(&shared.metrics.events_delivered_total);
                    return Some(entry.frame.clone());
                }
                continue;
            }
            if replay.exhausted {
                self.replay = None;
                return None;
            }
            if self.hub.is_shutting_down() {
                return None;
            }
            match shared.history.read_after(self.last_seq, REPLAY_PAGE).await {
                // Entries were evicted while we replayed: end the stream so
                // the client reconnects and is told `earliest`.
                Ok(page) if page.first().is_some_and(|e| e.seq != self.last_seq + 1) => {
                    return None
                }
                Ok(page) => {
                    replay.exhausted = page.len() < REPLAY_PAGE;
                    replay.buffered = page.into();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "replay stopped: history read failed");
                    return None;
                }
            }
        }
    }

    async fn next_live(&mut self) -> Option<Bytes> {
        let interval = self.hub.shared.config.heartbeat;
        loop {
            if !interval.is_zero() && self.heartbeat.is_none() {
                self.heartbeat = Some(Box::pin(tokio::time::sleep_until(
                    self.last_write + interval,
                )));
            }
            tokio::select! {
                biased;
                () = wait(&mut self.expires) => {
                    tracing::debug!("closing a stream: its token expired");
                    return None;
                }
                entry = self.queue.recv() => {
                    let entry = entry?;
                    if entry.seq <= self.last_seq {
                        continue; // already replayed
                    }
                    self.last_seq = entry.seq;
                    return Some(self.wrote(entry.frame.clone()));
                }
                () = wait(&mut self.heartbeat) => {
                    self.heartbeat = None;
                    if self.last_write.elapsed() >= interval {
                        return Some(self.wrote(self.hub.shared.heartbeat.clone()));
                    }
                }
            }
        }
    }

    fn wrote(&mut self, frame: Bytes) -> Bytes {
        self.last_write = Instant::now();
        frame
    }
}

/// Waits for an optional timer; never completes when there is none.
async fn wait(timer: &mut Option<Pin<Box<Sleep>>>) {
    match timer {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}
