//! The EventSource itself: a stream that connects, parses, and reconnects.
//!
//! A private `Driver` runs the loop (connect → read → parse → on failure wait
//! and reconnect) as plain `async` code; [`EventSource`] wraps it as a
//! [`Stream`] and adds what must work from outside the loop: closing and
//! restarting at once, changing the headers, the ready state and the last
//! event id. Nothing runs in the background:
//! the connection makes progress only while the stream is polled, and
//! dropping the source drops the connection.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use herald_sse::{Event, ParseError, Parser};
use http::HeaderMap;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::builder::{Builder, Config};
use crate::connect::{self, HttpClient};
use crate::error::Error;
use crate::handle::{CloseHandle, RestartHandle, Shared};

/// What an [`EventSource`] yields, besides a fatal `Err` that ends it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Item {
    /// A connection opened: the server answered `200` with
    /// `text/event-stream`. Comes before the events of each connection.
    Open(Opened),
    /// An event.
    Event(Event),
    /// A comment line (the text after `:`), only when the builder asked for
    /// [`comments`](Builder::comments). Servers send them as heartbeats.
    Comment(String),
    /// The connection failed or ended; the source waits `delay`, then
    /// reconnects (with `Last-Event-ID` when it knows one).
    Reconnecting {
        /// Why the connection ended. Always [retryable](Error::is_retryable).
        error: Error,
        /// How long the source waits before the next attempt.
        delay: Duration,
    },
    /// Part of the stream went past the parser's [`Limits`](herald_sse::Limits)
    /// and was skipped; the stream goes on.
    Dropped(ParseError),
}

/// What the server answered when a connection opened, from [`Item::Open`].
///
/// Its headers matter for resuming: a Mercure hub answers a request that
/// carried `Last-Event-ID` with a `Last-Event-ID` header (draft-07) or a
/// `Mercure-Last-Event-ID` header (draft-08) saying where its replay
/// starts, `earliest` when it no longer knows the id sent (so events may
/// have been missed). [`Opened::resume_lost`] checks exactly that.
///
/// A Herald hub can also say it in the stream, for browsers that cannot
/// read headers: a subscription URL with `lost_events=1` gets an
/// [`Item::Event`] of type `mercure` whose data is
/// `{"type":"events_lost","requested":…,"earliest":…}` before the replay.
/// It carries no id, so the source's last event id does not move. A Rust
/// client has the same fact from `resume_lost` without asking for it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Opened {
    /// The URL that answered, after any redirects.
    pub url: http::Uri,
    /// The response headers.
    pub headers: http::HeaderMap,
    /// The `Last-Event-ID` the request sent (empty when none was sent).
    pub sent_last_event_id: String,
}

impl Opened {
    /// A response header as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether the server said it could not resume from the id sent: the
    /// request carried a `Last-Event-ID` other than `earliest`, and the
    /// response's `Last-Event-ID` or `Mercure-Last-Event-ID` header is
    /// `earliest` (the Mercure convention for "unknown id, replaying all I
    /// have"; a hub speaking only draft-08 sends only the second).
    pub fn resume_lost(&self) -> bool {
        !self.sent_last_event_id.is_empty()
            && self.sent_last_event_id != "earliest"
            && (self.header("last-event-id") == Some("earliest")
                || self.header("mercure-last-event-id") == Some("earliest"))
    }
}

/// The state of a source, as in the browser's `EventSource.readyState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyState {
    /// Connecting, or waiting to reconnect.
    Connecting,
    /// A connection is open.
    Open,
    /// Closed for good: by [`EventSource::close`], or after a fatal error.
    Closed,
}

/// An EventSource: follows a Server-Sent Events stream over HTTP, and
/// reconnects the way the WHATWG standard says a browser does.
///
/// Consume it as a [`Stream`] of `Result<`[`Item`]`, `[`Error`]`>`: `Ok`
/// items report connections opening, events, comments and reconnections;
/// an `Err` is fatal and the stream ends after it. Use
/// [`EventSource::events`] for just the events.
///
/// Nothing happens until the stream is polled. [`EventSource::close`], a
/// [`CloseHandle`], or dropping the source stops it at once: no item is
/// delivered after that. [`EventSource::restart`] (or a [`RestartHandle`])
/// drops the connection and resumes at once, optionally with new headers.
pub struct EventSource {
    stream: Option<BoxStream>,
    shared: Arc<Shared>,
}

/// The reconnection loop, boxed as a stream.
type BoxStream = Pin<Box<dyn Stream<Item = Result<Item, Error>> + Send>>;

impl std::fmt::Debug for EventSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSource")
            .field("ready_state", &self.ready_state())
            .field("last_event_id", &self.last_event_id())
            .finish_non_exhaustive()
    }
}

impl EventSource {
    /// A source for `url` with the default settings: `GET`, reconnect after
    /// 3 s (or the server's `retry`) with backoff, forever.
    ///
    /// Fails with [`Error::InvalidUrl`] unless `url` is an absolute `http` or
    /// `https` URL.
    pub fn new(url: &str) -> Result<EventSource, Error> {
        Builder::new(url).build()
    }

    /// A [`Builder`] for `url`, to set headers, method, body, reconnection
    /// policy and more.
    pub fn builder(url: &str) -> Builder {
        Builder::new(url)
    }

    pub(crate) fn from_config(config: Arc<Config>) -> Result<EventSource, Error> {
        let client = connect::http_client(config.tls.clone())?;
        let parser = Parser::with_limits(config.limits)
            .with_comments(config.comments)
            .with_last_event_id(&config.last_event_id);
        let shared = Arc::new(Shared::new(&config.last_event_id));
        let driver = Driver {
            headers: config.headers.clone(),
            client,
            config,
            parser,
            shared: shared.clone(),
            conn: None,
            wait: None,
            failures: 0,
            done: false,
        };
        let stream = futures_util::stream::unfold(driver, |mut driver| async move {
            let item = driver.next().await?;
            Some((item, driver))
        });
        Ok(EventSource {
            stream: Some(Box::pin(stream)),
            shared,
        })
    }

    /// Stops the source at once: the connection (or the wait before the
    /// next one) is dropped, and the stream yields nothing more.
    pub fn close(&mut self) {
        self.shared.close();
        self.stream = None;
    }

    /// A handle that closes this source from anywhere, e.g. another task.
    pub fn close_handle(&self) -> CloseHandle {
        CloseHandle {
            shared: self.shared.clone(),
        }
    }

    /// Drops the connection and connects again at once, sending the last
    /// event id as `Last-Event-ID`: to resume on a connection the
    /// application knows is stale, or with new headers (see
    /// [`EventSource::restart_with_headers`]).
    ///
    /// What happens, exactly:
    ///
    /// * The open connection is closed, or the attempt under way abandoned,
    ///   or the wait before the next attempt cut short. The next attempt
    ///   starts when the source is next polled, without any delay: neither
    ///   the server's `retry` nor the backoff applies.
    /// * An event not complete when the connection is dropped is discarded,
    ///   with any `id` inside it, as on any disconnection; so are events
    ///   that arrived but were not yielded yet. The request sends
    ///   [`EventSource::last_event_id`]: the id of the last event yielded
    ///   (or of an id-only block after it), from which the server can
    ///   replay what was discarded.
    /// * No [`Item::Reconnecting`] is yielded for it: the next item is the
    ///   [`Item::Open`] of the new connection, or what its failure brings
    ///   (an `Item::Reconnecting`, or a fatal `Err`) as for any attempt.
    /// * The backoff starts over: failures before the restart neither
    ///   lengthen the delays after it nor count towards
    ///   [`max_attempts`](crate::ReconnectPolicy::max_attempts).
    /// * The [ready state](EventSource::ready_state) is
    ///   [`Connecting`](ReadyState::Connecting) until the new connection
    ///   opens.
    /// * A closed source stays closed: after [`EventSource::close`], a
    ///   [`CloseHandle`], or a fatal error, a restart does nothing. To go on
    ///   after a fatal error (e.g. a `401` for an expired token), build a
    ///   new source with [`Builder::last_event_id`] set to this one's
    ///   [`EventSource::last_event_id`].
    ///
    /// Called by the task that polls the source, between two items, no
    /// item of the old connection comes after it. Called from elsewhere
    /// (through a [`RestartHandle`]), it wakes that task; an item already
    /// being produced at that moment may still come first. Nothing limits
    /// how often a source restarts: each call means a new request.
    pub fn restart(&self) {
        self.shared.restart();
    }

    /// Replaces these request headers, then [restarts](EventSource::restart):
    /// what a refreshed access token needs.
    ///
    /// For each header name in `headers`, its values replace every value
    /// sent so far under that name (by the builder or an earlier change);
    /// other headers are kept. The change holds for the connection this
    /// restart opens and for every later one, automatic reconnections
    /// included. As with the builder's headers, `Accept`, `Cache-Control`
    /// and `Last-Event-ID` stay set by the client, and `Authorization` and
    /// `Cookie` are not sent on to another origin after a redirect; an
    /// `Authorization` value is marked sensitive, as
    /// [`Builder::bearer_token`] does.
    ///
    /// ```
    /// use http::header::{HeaderMap, HeaderValue, AUTHORIZATION};
    /// use herald_client::EventSource;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let source = EventSource::builder("https://hub.example.com/.well-known/mercure?topic=news")
    ///     .bearer_token("old-token")
    ///     .header("X-Client", "docs")
    ///     .build()?;
    /// // Later, with a refreshed token: `X-Client` is still sent.
    /// let token = "new-token";
    /// let mut headers = HeaderMap::new();
    /// headers.insert(AUTHORIZATION, HeaderValue::try_from(format!("Bearer {token}"))?);
    /// source.restart_with_headers(headers);
    /// # Ok(())
    /// # }
    /// ```
    pub fn restart_with_headers(&self, headers: HeaderMap) {
        self.shared.update_headers(headers);
        self.shared.restart();
    }

    /// Replaces these request headers, as
    /// [`EventSource::restart_with_headers`] does, from the next connection
    /// attempt on, without touching the current connection: e.g. a token
    /// refreshed ahead of its expiry, for whenever the source reconnects.
    ///
    /// An attempt already under way keeps the headers it went out with.
    /// When the old headers may already be refused (a token that has
    /// expired), restart with the new ones instead: a `401` ends the
    /// source.
    pub fn set_headers(&self, headers: HeaderMap) {
        self.shared.update_headers(headers);
    }

    /// A handle that restarts this source, or changes its headers, from
    /// anywhere: e.g. a task that refreshes an access token.
    pub fn restart_handle(&self) -> RestartHandle {
        RestartHandle {
            shared: self.shared.clone(),
        }
    }

    /// Connecting, open or closed.
    pub fn ready_state(&self) -> ReadyState {
        self.shared.state()
    }

    /// The last event id: what the next reconnection sends as
    /// `Last-Event-ID` (empty for none). Save it to resume with
    /// [`Builder::last_event_id`] in a new source, e.g. after the program
    /// restarts.
    pub fn last_event_id(&self) -> String {
        self.shared.last_event_id()
    }

    /// Only the events: a stream of `Result<Event, Error>` that skips the
    /// other items and ends after a fatal error.
    pub fn events(self) -> Events {
        Events { inner: self }
    }
}

impl Drop for EventSource {
    /// Marks the source closed, so that its handles see it so.
    fn drop(&mut self) {
        self.shared.close();
    }
}

impl Stream for EventSource {
    type Item = Result<Item, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.shared.register(cx.waker());
        if self.shared.is_closed() {
            self.stream = None;
            return Poll::Ready(None);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Poll::Ready(None);
        };
        match stream.as_mut().poll_next(cx) {
            Poll::Ready(None) => {
                self.stream = None;
                self.shared.set_state(ReadyState::Closed);
                Poll::Ready(None)
            }
            other => other,
        }
    }
}

/// The events of an [`EventSource`], from [`EventSource::events`].
#[derive(Debug)]
pub struct Events {
    inner: EventSource,
}

impl Events {
    /// Closes the underlying source; see [`EventSource::close`].
    pub fn close(&mut self) {
        self.inner.close();
    }

    /// The underlying source.
    pub fn source(&self) -> &EventSource {
        &self.inner
    }
}

impl Stream for Events {
    type Item = Result<Event, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(Item::Event(event)))) => return Poll::Ready(Some(Ok(event))),
                Poll::Ready(Some(Ok(_))) => continue,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// One open connection.
struct Conn {
    body: Incoming,
    opened: Instant,
    /// Whether it delivered an event, which makes it healthy.
    delivered: bool,
}

/// The reconnection loop.
struct Driver {
    client: HttpClient,
    config: Arc<Config>,
    /// One parser for the whole life of the source: it carries the last
    /// event id and the server's `retry` from one connection to the next.
    parser: Parser,
    shared: Arc<Shared>,
    /// The headers every request sends: the builder's, with the changes
    /// made since by `set_headers` and `restart_with_headers`.
    headers: HeaderMap,
    conn: Option<Conn>,
    /// The delay to wait before the next connection attempt.
    wait: Option<Duration>,
    /// Reconnection attempts since the last healthy connection.
    failures: u32,
    done: bool,
}

impl Driver {
    async fn next(&mut self) -> Option<Result<Item, Error>> {
        loop {
            if self.done {
                return None;
            }
            // Before anything else, so that no item of the old connection
            // comes after a restart made between two items.
            if self.shared.take_restart() {
                self.restart();
            }
            let Some(conn) = self.conn.as_mut() else {
                if let Some(delay) = self.wait.take() {
                    let sleep = tokio::time::sleep(delay);
                    if self.shared.unless_restarted(sleep).await.is_none() {
                        continue;
                    }
                }
                // The state is already `Connecting`: initially, and after
                // `fail` or `restart` (which set it before this wait).
                self.shared.apply_header_updates(&mut self.headers);
                let open = connect::open(
                    &self.client,
                    &self.config,
                    &self.headers,
                    self.parser.last_event_id(),
                );
                let Some(opened) = self.shared.unless_restarted(open).await else {
                    continue;
                };
                match opened {
                    Ok((body, opened)) => {
                        self.conn = Some(Conn {
                            body,
                            opened: Instant::now(),
                            delivered: false,
                        });
                        self.shared.set_state(ReadyState::Open);
                        return Some(Ok(Item::Open(opened)));
                    }
                    Err(e) => return Some(self.fail(e)),
                }
            };
            let item = self.parser.next_item();
            // Every dispatch moves the last event id, also that of an id-only
            // block, which yields no item.
            self.shared.set_last_event_id(self.parser.last_event_id());
            match item {
                Some(Ok(herald_sse::Item::Event(event))) => {
                    conn.delivered = true;
                    return Some(Ok(Item::Event(event)));
                }
                Some(Ok(herald_sse::Item::Comment(text))) => {
                    return Some(Ok(Item::Comment(text)));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Some(Ok(Item::Dropped(e))),
                None => {}
            }
            let read = connect::with_timeout(self.config.read_timeout, conn.body.frame());
            let frame = match self.shared.unless_restarted(read).await {
                None => continue,
                Some(Ok(frame)) => frame,
                Some(Err(timeout)) => return Some(self.fail(timeout)),
            };
            match frame {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.parser.feed(&data);
                    }
                }
                Some(Err(e)) => return Some(self.fail(Error::Body(Box::new(e)))),
                None => return Some(self.fail(Error::StreamEnded)),
            }
        }
    }

    /// Ends the current connection (if any) after `error`, and decides:
    /// reconnect after a delay, or stop.
    fn fail(&mut self, error: Error) -> Result<Item, Error> {
        if let Some(conn) = self.conn.take() {
            // A partial event (and any id inside it) dies with the connection.
            self.parser.finish();
            if conn.delivered || conn.opened.elapsed() >= self.config.healthy_after {
                self.failures = 0;
            }
        }
        if !error.is_retryable() {
            self.stop();
            return Err(error);
        }
        let policy = self.config.policy;
        if let Some(max) = policy.get_max_attempts() {
            if self.failures >= max {
                self.stop();
                return Err(Error::AttemptsExhausted {
                    attempts: self.failures,
                    last: Box::new(error),
                });
            }
        }
        let base = self.parser.retry().unwrap_or(policy.get_initial_delay());
        let delay = policy.delay(base, self.failures, rand::random::<f64>());
        self.failures = self.failures.saturating_add(1);
        self.wait = Some(delay);
        self.shared.set_state(ReadyState::Connecting);
        Ok(Item::Reconnecting { error, delay })
    }

    /// Drops the connection, or the wait before the next attempt, for a
    /// restart: the next loop step connects at once.
    fn restart(&mut self) {
        // Dropping the body closes the connection (HTTP/1.1) or resets its
        // stream (HTTP/2).
        self.conn = None;
        // An event cut by the restart is discarded, with any `id` inside
        // it, as on any disconnection (WHATWG: an unfinished block is not
        // dispatched). Bytes read but not parsed yet go with it, so the
        // last event id stays that of the last item yielded.
        self.parser.finish();
        self.wait = None;
        // Whoever restarts starts over: the previous failures do not grow
        // the backoff of the next ones, nor count towards `max_attempts`.
        self.failures = 0;
        self.shared.set_state(ReadyState::Connecting);
    }

    fn stop(&mut self) {
        self.done = true;
        self.shared.set_state(ReadyState::Closed);
    }
}
