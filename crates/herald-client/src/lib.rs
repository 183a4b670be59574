//! An async EventSource for Rust that gets reconnection right.
//!
//! Server-Sent Events are a long-lived HTTP response in which a server
//! writes events as they happen. The hard part of a client is not parsing
//! them (that is [`herald_sse`]) but everything around it: which answers
//! open the stream and which end it for good, when and how to reconnect,
//! and which last event id to send so that nothing is lost. This crate does
//! all of it as the WHATWG HTML standard says a browser does, on tokio,
//! hyper 1 and rustls.
//!
//! # Brief overview
//!
//! * [`EventSource`] is the client: a [`Stream`](futures_core::Stream) of
//!   `Result<`[`Item`]`, `[`Error`]`>`. [`Item::Open`] marks each
//!   connection (with the response headers, in [`Opened`]), [`Item::Event`] carries a [`herald_sse::Event`],
//!   [`Item::Reconnecting`] says a connection ended and when the next attempt
//!   comes, and [`Item::Comment`] (opt-in) surfaces heartbeats. An `Err` is
//!   fatal: the stream ends after it. [`EventSource::events`] keeps just the
//!   events.
//! * [`EventSource::restart`] drops the connection and resumes at once from
//!   the last event id; [`EventSource::restart_with_headers`] does so with
//!   new headers (a refreshed token), and [`EventSource::set_headers`]
//!   changes them for the next reconnection. A [`RestartHandle`] does the
//!   same from another task, as a [`CloseHandle`] closes the source.
//! * [`Builder`] sets headers (and bearer tokens), method and body, the
//!   initial last event id, the [`ReconnectPolicy`], a read timeout, the
//!   redirect limit and, for private certificate authorities, the TLS
//!   configuration. HTTPS uses rustls (`ring` provider, Mozilla roots by
//!   default) and speaks HTTP/2 when the server offers it.
//! * [`Error`] says what went wrong, with the status or content type when the
//!   server refused the stream; [`Error::is_retryable`] tells the two kinds
//!   apart.
//!
//! # Example
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use herald_client::{EventSource, Item};
//!
//! # async fn run() -> Result<(), herald_client::Error> {
//! let mut source = EventSource::builder("http://localhost:8080/.well-known/mercure?topic=news")
//!     .bearer_token("eyJhbGciOi...")
//!     .build()?;
//! while let Some(item) = source.next().await {
//!     match item? {
//!         Item::Open(opened) if opened.resume_lost() => eprintln!("connected; events may be lost"),
//!         Item::Open(_) => eprintln!("connected"),
//!         Item::Event(event) => println!("{}: {}", event.event_type(), event.data()),
//!         Item::Reconnecting { error, delay } => eprintln!("{error}; retrying in {delay:?}"),
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Or, when only the events matter:
//!
//! ```no_run
//! use futures_util::StreamExt;
//!
//! # async fn run() -> Result<(), herald_client::Error> {
//! let mut events = herald_client::EventSource::new("http://localhost:8080/events")?.events();
//! while let Some(event) = events.next().await {
//!     println!("{}", event?.data());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Behaviour
//!
//! * Every request sends `Accept: text/event-stream` and
//!   `Cache-Control: no-cache`, and `Last-Event-ID` when the last event id is
//!   not empty and can be a header value (an id with a control character is
//!   not sent, and [`Opened::sent_last_event_id`] is then empty).
//! * Redirect targets are resolved as RFC 3986 says: a `Location` is absolute
//!   only when it starts with a scheme, and `.`/`..` segments are removed.
//! * Only `200` with a `Content-Type` whose essence is `text/event-stream`
//!   (parameters ignored) opens the stream. `204` and every other status,
//!   and any other content type, end it with [`Error::Status`] or
//!   [`Error::ContentType`]: no reconnection.
//! * Redirects (301, 302, 303, 307, 308) are followed up to a limit; every
//!   reconnection starts again from the original URL.
//! * A network error, a [read timeout](Builder::read_timeout) or the body
//!   ending normally leads to a reconnection after the server's `retry`, or
//!   the policy's initial delay (3 s), with exponential backoff and jitter on
//!   failures in a row, reset by a healthy connection. An optional maximum
//!   number of attempts ends the stream with [`Error::AttemptsExhausted`].
//! * The last event id survives reconnections, including over events that
//!   carry no `id`; an empty `id` resets it. An event cut by a disconnection
//!   is discarded, with any `id` inside it.
//! * [`EventSource::close`], a [`CloseHandle`] or dropping the source stops it
//!   at once; no item is delivered after that.
//! * A [restart](EventSource::restart) closes the connection and connects
//!   again without waiting (no `retry`, no backoff), sending the id of the
//!   last event yielded; an event cut by it is discarded. The backoff and
//!   the attempts count start over. A closed source, or one ended by a fatal
//!   error, stays closed. Changed headers hold for every later connection.
//!
//! # Refreshing a token
//!
//! An access token that expires must be replaced before the next
//! connection sends it, or the server answers `401` and the source ends.
//! A task with a [`RestartHandle`] can resume on a new connection with the
//! new token as soon as it has one, without waiting for the old stream to
//! be cut (or use [`RestartHandle::set_headers`] to keep the connection and
//! send the token on the next reconnection):
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use futures_util::StreamExt;
//! use herald_client::{EventSource, ReadyState};
//! use http::header::{HeaderMap, HeaderValue, AUTHORIZATION};
//!
//! # async fn fetch_token() -> String { String::new() }
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut source = EventSource::builder("http://localhost:8080/.well-known/mercure?topic=news")
//!     .bearer_token(&fetch_token().await)
//!     .build()?;
//! let restart = source.restart_handle();
//! tokio::spawn(async move {
//!     while restart.ready_state() != ReadyState::Closed {
//!         // Some time before the token expires.
//!         tokio::time::sleep(Duration::from_secs(240)).await;
//!         let bearer = format!("Bearer {}", fetch_token().await);
//!         let Ok(value) = HeaderValue::try_from(bearer) else { continue };
//!         let mut headers = HeaderMap::new();
//!         headers.insert(AUTHORIZATION, value);
//!         restart.restart_with_headers(headers);
//!     }
//! });
//! while let Some(item) = source.next().await {
//!     // Resumes from the last event id; the server replays what came meanwhile.
//!     let _ = item?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! * `event_source.rs`: [`EventSource`], [`Item`], [`Events`], the
//!   reconnection loop. `handle.rs`: what the loop shares with the handles
//!   that act on it from outside, [`CloseHandle`] and [`RestartHandle`].
//! * `connect.rs`: one connection attempt: request, redirects, response
//!   checks.
//! * `builder.rs`: [`Builder`]. `policy.rs`: [`ReconnectPolicy`].
//!   `error.rs`: [`Error`].
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod builder;
mod connect;
mod error;
mod event_source;
mod handle;
mod policy;

pub use builder::Builder;
pub use error::{BoxError, Error};
pub use event_source::{EventSource, Events, Item, Opened, ReadyState};
pub use handle::{CloseHandle, RestartHandle};
pub use herald_sse::{Event, Limits, ParseError};
pub use policy::ReconnectPolicy;

// The README's examples are compiled and run as doctests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
