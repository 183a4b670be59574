//! Byte-level scanning: line ends, the field colon, NUL in ids, and lossy
//! UTF-8 decoding. Tuned for the short inputs a parser mostly sees.

use std::borrow::Cow;

/// Bytes decoded as UTF-8, with U+FFFD for invalid sequences. Valid input
/// (the common case) takes `from_utf8`'s fast ASCII path, which
/// `from_utf8_lossy` does not.
pub(super) fn decode(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Below this many bytes a plain loop beats `memchr`'s SIMD set-up; this
/// is what a client fed one byte (or a few) at a time hits on every call.
const SHORT: usize = 16;

/// The offset of the first CR or LF.
#[inline]
pub(super) fn find_line_end(hay: &[u8]) -> Option<usize> {
    if hay.len() < SHORT {
        hay.iter().position(|&b| b == b'\n' || b == b'\r')
    } else {
        memchr::memchr2(b'\n', b'\r', hay)
    }
}

/// Whether `value` contains NUL (ids are short: a plain loop, no call;
/// `contains` would call `memchr` for a handful of bytes).
#[inline]
#[allow(clippy::manual_contains)]
pub(super) fn has_nul(value: &[u8]) -> bool {
    if value.len() < SHORT {
        value.iter().any(|&b| b == 0)
    } else {
        memchr::memchr(0, value).is_some()
    }
}

/// The offset of the first colon. Field names are short, so the colon is
/// usually found by the plain loop over the first bytes.
#[inline]
pub(super) fn find_colon(line: &[u8]) -> Option<usize> {
    let head = &line[..line.len().min(SHORT)];
    match head.iter().position(|&b| b == b':') {
        Some(i) => Some(i),
        None if line.len() > SHORT => memchr::memchr(b':', &line[SHORT..]).map(|i| i + SHORT),
        None => None,
    }
}
