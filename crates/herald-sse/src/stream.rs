//! An adapter from a stream of byte chunks (e.g. an HTTP response body) to
//! a stream of events. Behind the `stream` feature so the core stays free of
//! any async dependency.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::{Event, ParseError, Parser};

/// What an [`EventStream`] yields on failure: the transport's error, or
/// input the parser dropped.
#[derive(Debug)]
pub enum StreamError<E> {
    /// The underlying byte stream failed.
    Transport(E),
    /// The parser dropped input past its limits; the stream goes on.
    Parse(ParseError),
}

impl<E: std::fmt::Display> std::fmt::Display for StreamError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamError::Transport(e) => write!(f, "transport error: {e}"),
            StreamError::Parse(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for StreamError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StreamError::Transport(e) => Some(e),
            StreamError::Parse(e) => Some(e),
        }
    }
}

/// Events parsed from a stream of byte chunks.
///
/// When the byte stream ends, the unfinished event (if any) is discarded as
/// the spec requires, and the event stream ends too.
#[derive(Debug)]
pub struct EventStream<S> {
    inner: S,
    parser: Parser,
    done: bool,
}

impl<S> EventStream<S> {
    /// Parses `inner` with a default [`Parser`].
    pub fn new(inner: S) -> EventStream<S> {
        EventStream::with_parser(inner, Parser::new())
    }

    /// Parses `inner` with a configured parser (limits, last event id).
    pub fn with_parser(inner: S, parser: Parser) -> EventStream<S> {
        EventStream {
            inner,
            parser,
            done: false,
        }
    }

    /// The parser, e.g. to read the last event id or `retry` after the
    /// stream ended.
    pub fn parser(&self) -> &Parser {
        &self.parser
    }
}

impl<S, B, E> Stream for EventStream<S>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
{
    type Item = Result<Event, StreamError<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(item) = this.parser.next_event() {
                return Poll::Ready(Some(item.map_err(StreamError::Parse)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => this.parser.feed(chunk.as_ref()),
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Some(Err(StreamError::Transport(e))))
                }
                Poll::Ready(None) => {
                    this.parser.finish();
                    this.done = true;
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
