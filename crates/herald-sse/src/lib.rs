//! A spec-exact, fast, sans-IO Server-Sent Events codec.
//!
//! Server-Sent Events (SSE) is a line-based text format over a long-lived
//! HTTP response: `event:`, `id:`, `retry:` and `data:` fields, blank lines
//! between events, `:` comments. This crate turns bytes into events and
//! events into bytes, exactly as the WHATWG HTML standard says a browser's
//! `EventSource` reads them, and does no I/O of its own: feed it chunks from
//! any transport, blocking or async.
//!
//! # Brief overview
//!
//! * [`Parser`] is the decoder. [`Parser::feed`] takes chunks split
//!   anywhere; [`Parser::next_event`] yields each complete [`Event`].
//!   [`Parser::last_event_id`] and [`Parser::retry`] are what a reconnecting
//!   client needs. [`Limits`] bound its memory; input past them is reported
//!   as a [`ParseError`] and skipped.
//! * [`Frame`] is the encoder: it builds one event (or comment, or `retry`)
//!   frame as [`bytes::Bytes`], ready to be shared among many subscribers
//!   without copying. [`comment`] builds a heartbeat.
//! * With the `stream` feature, `EventStream` adapts any
//!   `Stream<Item = Result<impl AsRef<[u8]>, E>>` (e.g. a response body) into
//!   a stream of events.
//!
//! # Example
//!
//! ```
//! use herald_sse::{Frame, Parser};
//!
//! // Encode once on the server...
//! let frame = Frame::new().id("1").event("price").data("{\"eur\":3}").encode()?;
//!
//! // ...and decode on the client, whatever the chunking.
//! let mut parser = Parser::new();
//! for byte in frame.iter() {
//!     parser.feed(&[*byte]);
//! }
//! let event = parser.next_event().expect("one event").expect("within limits");
//! assert_eq!(event.event_type(), "price");
//! assert_eq!(event.data(), "{\"eur\":3}");
//! assert_eq!(parser.last_event_id(), "1");
//! # Ok::<(), herald_sse::EncodeError>(())
//! ```
//!
//! # Guarantees
//!
//! The parser never panics, whatever the input; its memory is bounded by
//! the limits plus the size of the chunk being fed; its running time is
//! linear in the input, including when fed one byte at a time.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod encoder;
mod event;
mod limits;
mod parser;
#[cfg(feature = "stream")]
mod stream;

pub use encoder::{comment, EncodeError, Frame};
pub use event::Event;
pub use limits::Limits;
pub use parser::{Events, Item, ParseError, Parser};
#[cfg(feature = "stream")]
pub use stream::{EventStream, StreamError};

// The README's examples are compiled and run as doctests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
