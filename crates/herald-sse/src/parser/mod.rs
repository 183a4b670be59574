//! The decoder: bytes in, events out.
//!
//! This is the receiving end of every SSE connection (the client, `herald
//! sub`, the benchmark's subscribers). It follows the WHATWG "interpreting an
//! event stream" algorithm exactly: BOM stripping, CR/LF/CRLF line endings
//! split anywhere across chunks, lossy UTF-8, field rules, dispatch, and the
//! end-of-stream rule that drops an unfinished block together with its `id`.
//!
//! The parser is sans-IO: [`Parser::feed`] takes whatever chunk the transport
//! produced and [`Parser::next_event`] hands back the events that chunk
//! completed. Lines are found with `memchr`, and a partial line is never
//! rescanned, so the cost is linear in the input whatever the chunking.

use std::time::Duration;

mod scan;
mod shared;

use scan::{decode, find_colon, find_line_end, has_nul};
use shared::Shared;

use crate::event::Event;
use crate::limits::Limits;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Event data at least this long is moved into the event rather than
/// copied out of the parser's buffer.
const TAKE_DATA_AT: usize = 4096;

/// The most capacity kept for the data buffer after a large event.
const KEEP_CAPACITY: usize = 1 << 20;

/// A partial `data` line at least this long is streamed: the rest of its
/// value is copied from each chunk straight into the data buffer instead of
/// through the input buffer, one copy fewer for large payloads.
const STREAM_AT: usize = 2048;

/// A `data` line being streamed into the data buffer.
#[derive(Debug, Clone, Copy)]
struct DataStream {
    /// Where this line's value starts in the data buffer.
    start: usize,
    /// `data:` or `data: `, to restore the line if it must be put back.
    prefix_len: usize,
}

/// Why the parser dropped part of the stream.
///
/// A `ParseError` never ends the stream: the parser skips the offending line
/// or event, reports it once, and carries on with what follows. The limits
/// exist so that a hostile or broken server cannot make the parser buffer
/// without bound.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// A single line grew past [`Limits::max_line`]. The rest of that line is
    /// skipped; the event it belonged to is dropped.
    LineTooLong {
        /// The configured limit, in bytes.
        limit: usize,
    },
    /// The data of one event grew past [`Limits::max_event`]. The event is
    /// dropped up to the next empty line.
    EventTooLarge {
        /// The configured limit, in bytes.
        limit: usize,
    },
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::LineTooLong { limit } => {
                write!(
                    f,
                    "SSE line longer than the limit of {limit} bytes; event dropped"
                )
            }
            ParseError::EventTooLarge { limit } => {
                write!(
                    f,
                    "SSE event larger than the limit of {limit} bytes; event dropped"
                )
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// What the parser produces: an event, or (when enabled) a comment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Item {
    /// A dispatched event.
    Event(Event),
    /// The text of a comment line (everything after the leading `:`),
    /// decoded as UTF-8. Only produced when [`Parser::with_comments`] asked
    /// for comments.
    Comment(String),
}

/// An incremental, spec-exact Server-Sent Events parser.
///
/// ```
/// use herald_sse::Parser;
///
/// let mut parser = Parser::new();
/// parser.feed(b"id: 7\nevent: greeting\ndata: hel");
/// assert!(parser.next_event().is_none()); // the event is not finished yet
/// parser.feed(b"lo\n\n");
/// let event = parser.next_event().unwrap().unwrap();
/// assert_eq!(event.event_type(), "greeting");
/// assert_eq!(event.data(), "hello");
/// assert_eq!(event.last_event_id(), "7");
/// ```
///
/// One parser follows one logical EventSource: after [`Parser::finish`] it is
/// ready for the next connection's body and keeps the last event id and the
/// reconnection time, exactly what a reconnecting client needs.
#[derive(Debug)]
pub struct Parser {
    limits: Limits,
    /// Bytes fed but not yet consumed; `pos` is where unconsumed bytes start.
    buf: Vec<u8>,
    pos: usize,
    /// How far past `pos` the current partial line has already been searched
    /// for a line ending, so feeding many small chunks stays linear.
    scanned: usize,
    /// The previous line ended with CR: a LF at the start of the next bytes
    /// is the second half of a CRLF, not an empty line.
    skip_lf: bool,
    /// Still at the start of the stream, where one BOM is stripped.
    at_start: bool,
    /// Discarding input until the end of the current line (it was too long).
    skipping_line: bool,
    /// Discarding the current event until the next empty line (too large or
    /// part of it was lost to an over-long line).
    skipping_event: bool,
    emit_comments: bool,

    /// The data and event-type buffers hold raw bytes: UTF-8 decoding
    /// (lossy, as the standard asks) happens once, at dispatch. Decoding per
    /// line or per event gives the same text, since CR, LF and `:` are never
    /// part of a multi-byte sequence.
    data: Vec<u8>,
    /// Set while a long `data` line is being copied from each fed chunk
    /// straight into `data`, skipping `buf` (see [`Parser::feed`]).
    stream: Option<DataStream>,
    event_type: Vec<u8>,
    /// The type of the last event dispatched (empty for `message`).
    last_type: Shared,
    /// An `id` seen in the current block, not yet committed by a dispatch
    /// (valid when `id_pending`; the buffer is reused between blocks).
    id_buf: Vec<u8>,
    id_pending: bool,
    last_event_id: Shared,
    retry: Option<Duration>,
}

impl Default for Parser {
    fn default() -> Self {
        Parser::new()
    }
}

impl Parser {
    /// A parser with the default [`Limits`] (16 MiB per line and per event).
    pub fn new() -> Parser {
        Parser::with_limits(Limits::default())
    }

    /// A parser that refuses lines and events larger than `limits`.
    pub fn with_limits(limits: Limits) -> Parser {
        Parser {
            limits,
            buf: Vec::new(),
            pos: 0,
            scanned: 0,
            skip_lf: false,
            at_start: true,
            skipping_line: false,
            skipping_event: false,
            emit_comments: false,
            data: Vec::new(),
            stream: None,
            event_type: Vec::new(),
            last_type: Shared::new(""),
            id_buf: Vec::new(),
            id_pending: false,
            last_event_id: Shared::new(""),
            retry: None,
        }
    }

    /// Also report comment lines, through [`Parser::next_item`].
    ///
    /// Off by default: comments are then skipped without being decoded, which
    /// keeps heartbeats off the hot path.
    pub fn with_comments(mut self, yes: bool) -> Parser {
        self.emit_comments = yes;
        self
    }

    /// Starts from a known last event id, e.g. one a client persisted before
    /// a restart.
    pub fn with_last_event_id(mut self, id: &str) -> Parser {
        self.last_event_id = Shared::new(id);
        self
    }

    /// The limits this parser enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Appends a chunk of the response body. Any split is fine: inside a
    /// CRLF, inside the BOM, inside a multi-byte UTF-8 character.
    #[inline]
    pub fn feed(&mut self, chunk: &[u8]) {
        let chunk = match self.stream {
            Some(stream) => match self.feed_stream(stream, chunk) {
                Some(rest) => rest,
                None => return,
            },
            None => chunk,
        };
        if chunk.is_empty() {
            return;
        }
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            // Compact before growing so the buffer holds at most about one
            // partial line plus the new chunk.
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        match chunk {
            // One byte at a time is common enough (and slow enough through
            // `memcpy`) to deserve its own path.
            [byte] => self.buf.push(*byte),
            _ => self.buf.extend_from_slice(chunk),
        }
    }

    /// The next complete event, if the bytes fed so far finish one.
    ///
    /// Returns `None` when more input is needed. An `Err` reports input that
    /// was dropped for exceeding the [`Limits`]; parsing continues after it.
    #[inline]
    pub fn next_event(&mut self) -> Option<Result<Event, ParseError>> {
        loop {
            match self.next_item()? {
                Ok(Item::Event(event)) => return Some(Ok(event)),
                Ok(Item::Comment(_)) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// Like [`Parser::next_event`], but also yields comments when the parser
    /// was built [`with_comments`](Parser::with_comments).
    #[inline]
    pub fn next_item(&mut self) -> Option<Result<Item, ParseError>> {
        // The common state gets an inlined first step: scan the bytes not
        // yet scanned for a line end. With small chunks most calls end here.
        if self.at_start || self.skipping_line || self.skip_lf {
            return self.next_item_slow();
        }
        let from = self.pos + self.scanned;
        match find_line_end(&self.buf[from..]) {
            Some(offset) => self.line_found(from + offset),
            None => {
                let partial = self.buf.len() - self.pos;
                if partial > self.limits.max_line {
                    return Some(Err(self.partial_line_too_long()));
                }
                if partial < STREAM_AT || !self.start_stream() {
                    self.scanned = partial;
                }
                None
            }
        }
    }

    /// The general loop of [`Parser::next_item`]: BOM, skipped lines, a CR
    /// waiting for its LF, and every line after the first.
    fn next_item_slow(&mut self) -> Option<Result<Item, ParseError>> {
        if self.at_start && !self.strip_bom() {
            return None;
        }
        loop {
            if self.skipping_line {
                self.skip_rest_of_line()?;
                continue;
            }
            if self.skip_lf && self.pos < self.buf.len() {
                self.skip_lf = false;
                if self.buf[self.pos] == b'\n' {
                    self.pos += 1;
                }
            }
            let from = self.pos + self.scanned;
            let Some(offset) = find_line_end(&self.buf[from..]) else {
                let partial = self.buf.len() - self.pos;
                if partial > self.limits.max_line {
                    return Some(Err(self.partial_line_too_long()));
                }
                if partial < STREAM_AT || !self.start_stream() {
                    self.scanned = partial;
                }
                return None;
            };
            if let Some(item) = self.take_line(from + offset) {
                return Some(item);
            }
        }
    }

    /// A line ends at `end`: consume and process it, then carry on.
    fn line_found(&mut self, end: usize) -> Option<Result<Item, ParseError>> {
        match self.take_line(end) {
            Some(item) => Some(item),
            None => self.next_item_slow(),
        }
    }

    /// Consumes the line from `pos` to the line ending at `end` and
    /// processes it; `Some` when that produced an item.
    fn take_line(&mut self, end: usize) -> Option<Result<Item, ParseError>> {
        let start = self.pos;
        self.skip_lf = self.buf[end] == b'\r';
        self.pos = end + 1;
        self.scanned = 0;
        if end - start > self.limits.max_line {
            return Some(Err(self.drop_event(ParseError::LineTooLong {
                limit: self.limits.max_line,
            })));
        }
        self.process_line(start, end)
    }

    /// The unfinished line at the end of the buffer is already past the
    /// limit: drop it (and its event) and skip to its end.
    #[cold]
    fn partial_line_too_long(&mut self) -> ParseError {
        self.pos = self.buf.len();
        self.scanned = 0;
        self.skipping_line = true;
        self.drop_event(ParseError::LineTooLong {
            limit: self.limits.max_line,
        })
    }

    /// An iterator over the events available now; see [`Parser::next_event`].
    pub fn events(&mut self) -> Events<'_> {
        Events { parser: self }
    }

    /// Ends the current stream (the connection closed).
    ///
    /// An event not ended by an empty line is discarded, and an `id` inside
    /// that unfinished block is not committed. The parser is then ready for
    /// the next connection's body, keeping [`last_event_id`] and [`retry`].
    ///
    /// [`last_event_id`]: Parser::last_event_id
    /// [`retry`]: Parser::retry
    pub fn finish(&mut self) {
        self.buf.clear();
        self.pos = 0;
        self.scanned = 0;
        self.skip_lf = false;
        self.at_start = true;
        self.skipping_line = false;
        self.skipping_event = false;
        self.data.clear();
        self.stream = None;
        self.event_type.clear();
        self.id_pending = false;
    }

    /// Starts streaming the partial line at `pos` into `data` if it is a
    /// `data` line that the limits allow so far. Returns whether it did.
    #[cold]
    fn start_stream(&mut self) -> bool {
        let line = &self.buf[self.pos..];
        if self.skipping_event || !line.starts_with(b"data:") {
            return false;
        }
        // The line is long, so the byte after the colon is known.
        let prefix_len = if line.get(5) == Some(&b' ') { 6 } else { 5 };
        let value = &line[prefix_len..];
        if self.data.len() + value.len() + 1 > self.limits.max_event {
            return false;
        }
        self.stream = Some(DataStream {
            start: self.data.len(),
            prefix_len,
        });
        self.data.extend_from_slice(value);
        self.pos = self.buf.len();
        self.scanned = 0;
        true
    }

    /// Feeds `chunk` while streaming: copies it into `data` up to the end
    /// of the line. Returns what follows the line end, for `buf`, or `None`
    /// when the whole chunk was taken. When the line would pass a limit,
    /// puts the line back into `buf` as if it had never been streamed, so
    /// the ordinary path reports the error exactly as it would have.
    fn feed_stream<'c>(&mut self, stream: DataStream, chunk: &'c [u8]) -> Option<&'c [u8]> {
        let end = memchr::memchr2(b'\n', b'\r', chunk);
        let taken = end.unwrap_or(chunk.len());
        let value_len = self.data.len() - stream.start + taken;
        if stream.prefix_len + value_len > self.limits.max_line
            || stream.start + value_len + 1 > self.limits.max_event
        {
            self.unstream(stream);
            return Some(chunk);
        }
        self.data.reserve(taken + 1);
        self.data.extend_from_slice(&chunk[..taken]);
        let end = end?;
        // The line is complete: it was a `data` field like any other.
        self.data.push(b'\n');
        self.stream = None;
        self.skip_lf = chunk[end] == b'\r';
        Some(&chunk[end + 1..])
    }

    /// Moves a streamed partial line back into `buf` (which holds nothing
    /// unconsumed while streaming).
    #[cold]
    fn unstream(&mut self, stream: DataStream) {
        self.stream = None;
        self.buf.clear();
        self.pos = 0;
        let prefix: &[u8] = if stream.prefix_len == 6 {
            b"data: "
        } else {
            b"data:"
        };
        self.buf.extend_from_slice(prefix);
        self.buf.extend_from_slice(&self.data[stream.start..]);
        self.data.truncate(stream.start);
        // Already searched: it holds no line end.
        self.scanned = self.buf.len();
    }

    /// The last event id: what a reconnecting client sends as `Last-Event-ID`.
    ///
    /// Updated at every dispatch point, including blocks that carry an `id`
    /// but no data; not reset between events.
    pub fn last_event_id(&self) -> &str {
        self.last_event_id.as_str()
    }

    /// The latest valid `retry` value, if the server sent one.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// Strips one BOM at the start of the stream. Returns false when the
    /// bytes so far are a strict prefix of the BOM and more are needed.
    fn strip_bom(&mut self) -> bool {
        let avail = &self.buf[self.pos..];
        let n = avail.len().min(BOM.len());
        if avail[..n] != BOM[..n] {
            self.at_start = false;
            return true;
        }
        if n < BOM.len() {
            return false;
        }
        self.pos += BOM.len();
        self.at_start = false;
        true
    }

    /// Consumes input up to and including the end of an over-long line.
    /// Returns `None` when the line has not ended yet.
    fn skip_rest_of_line(&mut self) -> Option<()> {
        match find_line_end(&self.buf[self.pos..]) {
            Some(offset) => {
                let end = self.pos + offset;
                self.skip_lf = self.buf[end] == b'\r';
                self.pos = end + 1;
                self.skipping_line = false;
                Some(())
            }
            None => {
                self.pos = self.buf.len();
                None
            }
        }
    }

    /// Drops the event being built and skips to the next empty line.
    fn drop_event(&mut self, error: ParseError) -> ParseError {
        self.data.clear();
        self.stream = None;
        self.event_type.clear();
        self.skipping_event = true;
        error
    }

    fn process_line(&mut self, start: usize, end: usize) -> Option<Result<Item, ParseError>> {
        if start == end {
            return self.dispatch();
        }
        let line = &self.buf[start..end];
        if line[0] == b':' {
            if self.emit_comments {
                let text = String::from_utf8_lossy(&line[1..]).into_owned();
                return Some(Ok(Item::Comment(text)));
            }
            return None;
        }
        if self.skipping_event {
            return None;
        }
        let (name, value) = match find_colon(line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                let value = value.strip_prefix(b" ").unwrap_or(value);
                (&line[..colon], value)
            }
            None => (line, &b""[..]),
        };
        // Names compare case-sensitively. Array patterns compile to a length
        // check and a few byte compares, not a call to `memcmp`.
        match name {
            [b'd', b'a', b't', b'a'] => {
                if self.data.len() + value.len() + 1 > self.limits.max_event {
                    return Some(Err(self.drop_event(ParseError::EventTooLarge {
                        limit: self.limits.max_event,
                    })));
                }
                // Reserve for the LF too: growing by one byte after the
                // value would reallocate and copy a large value again.
                self.data.reserve(value.len() + 1);
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
            }
            [b'e', b'v', b'e', b'n', b't'] => {
                self.event_type.clear();
                self.event_type.extend_from_slice(value);
            }
            // An id containing NUL is ignored as a whole.
            [b'i', b'd'] if !has_nul(value) => {
                self.id_buf.clear();
                self.id_buf.extend_from_slice(value);
                self.id_pending = true;
            }
            // Digits only: no sign, no space, not empty; anything else is
            // ignored.
            [b'r', b'e', b't', b'r', b'y']
                if !value.is_empty() && value.iter().all(u8::is_ascii_digit) =>
            {
                let ms = value.iter().fold(0u64, |acc, d| {
                    acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                });
                self.retry = Some(Duration::from_millis(ms));
            }
            _ => {}
        }
        None
    }

    /// The dispatch step, on an empty line.
    fn dispatch(&mut self) -> Option<Result<Item, ParseError>> {
        if self.id_pending {
            self.id_pending = false;
            self.last_event_id.set(&self.id_buf);
        }
        if self.skipping_event {
            self.skipping_event = false;
            return None;
        }
        if self.data.is_empty() {
            self.event_type.clear();
            return None;
        }
        self.data.pop();
        // Small data is copied out at its exact size and the buffer kept for
        // the next event; large data is handed over without a copy.
        let data = if self.data.len() >= TAKE_DATA_AT {
            // The next event is likely as large: give the buffer a head
            // start (bounded, so one huge event does not pin its size).
            let next = Vec::with_capacity(self.data.len().min(KEEP_CAPACITY));
            match String::from_utf8(std::mem::replace(&mut self.data, next)) {
                Ok(data) => data,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            }
        } else {
            let data = decode(&self.data).into_owned();
            self.data.clear();
            data
        };
        self.last_type.set(&self.event_type);
        self.event_type.clear();
        let event_type = self.last_type.share();
        Some(Ok(Item::Event(Event::from_parts(
            event_type,
            data,
            self.last_event_id.share(),
        ))))
    }
}

/// Iterator over the events a [`Parser`] can produce from its input so far.
#[derive(Debug)]
pub struct Events<'a> {
    parser: &'a mut Parser,
}

impl Iterator for Events<'_> {
    type Item = Result<Event, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.parser.next_event()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn all(parser: &mut Parser) -> Vec<Result<Event, ParseError>> {
        parser.events().collect()
    }

    #[test]
    fn cr_at_end_of_chunk_then_lf_is_one_line_ending() {
        let mut p = Parser::new();
        p.feed(b"data: a\r");
        assert!(p.next_event().is_none());
        p.feed(b"\n\r");
        let events = all(&mut p);
        assert_eq!(events.len(), 1);
        p.feed(b"\ndata: b\n\n");
        let events = all(&mut p);
        assert_eq!(
            events,
            vec![Ok(Event::new(None, "b".into(), Arc::from("")))]
        );
    }

    #[test]
    fn over_long_line_is_reported_once_and_parsing_resumes() {
        let mut p = Parser::with_limits(Limits::default().max_line(8));
        p.feed(b"data: 0123456789");
        assert_eq!(
            p.next_event(),
            Some(Err(ParseError::LineTooLong { limit: 8 }))
        );
        p.feed(b"abcdef\ndata: x\n\ndata: ok\n\n");
        let events = all(&mut p);
        // The block that held the long line is dropped; the next one is fine.
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].as_ref().map(|e| e.data()), Ok("ok"));
    }

    #[test]
    fn oversized_event_is_dropped_and_bounded() {
        let mut p = Parser::with_limits(Limits::default().max_event(10));
        p.feed(b"data: 12345\ndata: 67890\ndata: x\n\ndata: y\n\n");
        let events = all(&mut p);
        assert_eq!(events[0], Err(ParseError::EventTooLarge { limit: 10 }));
        assert_eq!(events[1].as_ref().map(|e| e.data()), Ok("y"));
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn comments_are_surfaced_only_when_asked() {
        let mut p = Parser::new().with_comments(true);
        p.feed(b": hi\ndata: x\n\n");
        assert_eq!(p.next_item(), Some(Ok(Item::Comment(" hi".into()))));
        assert!(matches!(p.next_item(), Some(Ok(Item::Event(_)))));
    }
}
