//! The encoder: events in, bytes out.
//!
//! This is the sending end: the hub encodes each published update once into
//! a [`Bytes`] frame and hands clones of it (a reference-count bump, no copy)
//! to every subscriber's queue.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

/// Why a frame could not be encoded. Each variant names a field whose value
/// would have broken the line structure of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The event type contains CR or LF.
    EventTypeHasLineBreak,
    /// The id contains CR or LF.
    IdHasLineBreak,
    /// The id contains NUL, which makes clients ignore the whole `id` field.
    IdHasNul,
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EncodeError::EventTypeHasLineBreak => "the event type must not contain CR or LF",
            EncodeError::IdHasLineBreak => "the event id must not contain CR or LF",
            EncodeError::IdHasNul => "the event id must not contain NUL",
        })
    }
}

impl std::error::Error for EncodeError {}

/// One frame to put on the wire: an event, or control fields and comments.
///
/// ```
/// use herald_sse::Frame;
///
/// let bytes = Frame::new().id("42").event("update").data("line 1\nline 2").encode()?;
/// assert_eq!(&bytes[..], b"event: update\nid: 42\ndata: line 1\ndata: line 2\n\n");
/// # Ok::<(), herald_sse::EncodeError>(())
/// ```
///
/// Data is split on CR, LF and CRLF into one `data:` line each, written as
/// `data: ` with the space so a leading space in the payload survives. Set
/// data to `""` to send an event with empty data; leave it unset for a frame
/// that carries only `id`, `retry` or comments, which clients do not
/// dispatch as an event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Frame<'a> {
    event_type: Option<&'a str>,
    id: Option<&'a str>,
    retry: Option<Duration>,
    data: Option<&'a str>,
    comment: Option<&'a str>,
}

impl<'a> Frame<'a> {
    /// An empty frame; add fields with the builder methods.
    pub fn new() -> Frame<'a> {
        Frame::default()
    }

    /// Sets the event type (`event:`). Empty means the default, `message`,
    /// and writes nothing.
    pub fn event(mut self, event_type: &'a str) -> Frame<'a> {
        self.event_type = Some(event_type);
        self
    }

    /// Sets the event id (`id:`). An empty id resets the client's last
    /// event id.
    pub fn id(mut self, id: &'a str) -> Frame<'a> {
        self.id = Some(id);
        self
    }

    /// Sets the client's reconnection time (`retry:`), in whole milliseconds.
    pub fn retry(mut self, retry: Duration) -> Frame<'a> {
        self.retry = Some(retry);
        self
    }

    /// Sets the data; see the type's documentation for line handling.
    pub fn data(mut self, data: &'a str) -> Frame<'a> {
        self.data = Some(data);
        self
    }

    /// Adds a comment, written first; line breaks start new comment lines.
    pub fn comment(mut self, text: &'a str) -> Frame<'a> {
        self.comment = Some(text);
        self
    }

    /// Checks the fields that may not contain line breaks or NUL.
    pub fn validate(&self) -> Result<(), EncodeError> {
        if let Some(t) = self.event_type {
            if memchr::memchr2(b'\r', b'\n', t.as_bytes()).is_some() {
                return Err(EncodeError::EventTypeHasLineBreak);
            }
        }
        if let Some(id) = self.id {
            if memchr::memchr2(b'\r', b'\n', id.as_bytes()).is_some() {
                return Err(EncodeError::IdHasLineBreak);
            }
            if memchr::memchr(0, id.as_bytes()).is_some() {
                return Err(EncodeError::IdHasNul);
            }
        }
        Ok(())
    }

    /// The frame as one shareable buffer.
    pub fn encode(&self) -> Result<Bytes, EncodeError> {
        let mut out = BytesMut::with_capacity(self.encoded_len_hint());
        self.encode_into(&mut out)?;
        Ok(out.freeze())
    }

    /// Appends the frame to `out`, e.g. to batch several frames in one write.
    /// On error nothing is written.
    pub fn encode_into(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        self.validate()?;
        out.reserve(self.encoded_len_hint());
        if let Some(text) = self.comment {
            for_each_line(text, |line| {
                out.extend_from_slice(b":");
                if !line.is_empty() {
                    out.extend_from_slice(b" ");
                }
                out.extend_from_slice(line);
                out.put_u8(b'\n');
            });
        }
        if let Some(t) = self.event_type.filter(|t| !t.is_empty()) {
            put_field(out, b"event: ", t.as_bytes());
        }
        if let Some(id) = self.id {
            put_field(out, b"id: ", id.as_bytes());
        }
        if let Some(retry) = self.retry {
            let digits = itoa_buf(retry.as_millis());
            put_field(out, b"retry: ", digits.as_bytes());
        }
        if let Some(data) = self.data {
            put_data(out, data.as_bytes());
        }
        out.put_u8(b'\n');
        Ok(())
    }

    /// An upper-bound-ish estimate of the encoded size, so one allocation
    /// usually suffices.
    fn encoded_len_hint(&self) -> usize {
        let data = self.data.map_or(0, |d| d.len() + 7);
        let event = self.event_type.map_or(0, |t| t.len() + 8);
        let id = self.id.map_or(0, |i| i.len() + 5);
        let retry = if self.retry.is_some() { 28 } else { 0 };
        let comment = self.comment.map_or(0, |c| c.len() + 3);
        data + event + id + retry + comment + 1
    }
}

/// A comment frame, e.g. a heartbeat: `: text\n\n`, or `:\n\n` for empty
/// text. Line breaks in `text` start new comment lines.
pub fn comment(text: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(text.len() + 4);
    for_each_line(text, |line| {
        out.extend_from_slice(b":");
        if !line.is_empty() {
            out.extend_from_slice(b" ");
        }
        out.extend_from_slice(line);
        out.put_u8(b'\n');
    });
    out.put_u8(b'\n');
    out.freeze()
}

fn put_field(out: &mut BytesMut, prefix: &[u8], value: &[u8]) {
    out.extend_from_slice(prefix);
    out.extend_from_slice(value);
    out.put_u8(b'\n');
}

/// Writes one `data: ` line per line of `data` (split on CR, LF and CRLF;
/// empty data is one empty line). A line ended by LF is copied together
/// with its LF, which spares a write per line in the common case.
fn put_data(out: &mut BytesMut, data: &[u8]) {
    let mut start = 0;
    while let Some(offset) = memchr::memchr2(b'\r', b'\n', &data[start..]) {
        let end = start + offset;
        out.extend_from_slice(b"data: ");
        if data[end] == b'\n' {
            out.extend_from_slice(&data[start..=end]);
            start = end + 1;
        } else {
            out.extend_from_slice(&data[start..end]);
            out.put_u8(b'\n');
            start = end + 1;
            if data.get(start) == Some(&b'\n') {
                start += 1;
            }
        }
    }
    put_field(out, b"data: ", &data[start..]);
}

/// Calls `f` with each line of `text`, split on CR, LF and CRLF. Always at
/// least one call, so empty text is one empty line.
fn for_each_line(text: &str, mut f: impl FnMut(&[u8])) {
    let bytes = text.as_bytes();
    let mut start = 0;
    while let Some(offset) = memchr::memchr2(b'\r', b'\n', &bytes[start..]) {
        let end = start + offset;
        f(&bytes[start..end]);
        start = end + 1;
        if bytes[end] == b'\r' && bytes.get(start) == Some(&b'\n') {
            start += 1;
        }
    }
    f(&bytes[start..]);
}

/// Decimal digits of `n` without allocating.
struct Digits {
    buf: [u8; 40],
    start: usize,
}

impl Digits {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_buf(mut n: u128) -> Digits {
    let mut buf = [0u8; 40];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    Digits { buf, start: i }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_split_on_every_line_ending() {
        let bytes = Frame::new().data("a\rb\nc\r\nd").encode().unwrap();
        assert_eq!(&bytes[..], b"data: a\ndata: b\ndata: c\ndata: d\n\n");
    }

    #[test]
    fn empty_data_is_still_one_data_line() {
        let bytes = Frame::new().data("").encode().unwrap();
        assert_eq!(&bytes[..], b"data: \n\n");
    }

    #[test]
    fn leading_space_survives() {
        let bytes = Frame::new().data(" x").encode().unwrap();
        assert_eq!(&bytes[..], b"data:  x\n\n");
    }

    #[test]
    fn retry_and_comment() {
        let bytes = Frame::new()
            .comment("hello\nworld")
            .retry(Duration::from_millis(1500))
            .encode()
            .unwrap();
        assert_eq!(&bytes[..], b": hello\n: world\nretry: 1500\n\n");
        assert_eq!(&comment("")[..], b":\n\n");
    }

    #[test]
    fn bad_fields_are_rejected() {
        assert_eq!(
            Frame::new().event("a\nb").encode(),
            Err(EncodeError::EventTypeHasLineBreak)
        );
        assert_eq!(
            Frame::new().id("a\rb").encode(),
            Err(EncodeError::IdHasLineBreak)
        );
        assert_eq!(Frame::new().id("a\0b").encode(), Err(EncodeError::IdHasNul));
        let mut out = BytesMut::new();
        assert!(Frame::new()
            .id("\n")
            .data("x")
            .encode_into(&mut out)
            .is_err());
        assert!(out.is_empty());
    }
}
