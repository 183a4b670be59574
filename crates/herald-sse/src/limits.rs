//! How much a parser is willing to buffer.

/// Upper bounds on what a [`Parser`](crate::Parser) buffers, so that a broken
/// or hostile server cannot make it grow without bound.
///
/// The defaults are generous (16 MiB for a line and for an event's data);
/// lower them where memory is tight or events are known to be small.
///
/// ```
/// use herald_sse::{Limits, Parser};
///
/// let parser = Parser::with_limits(Limits::default().max_line(64 * 1024).max_event(1 << 20));
/// assert_eq!(parser.limits().max_event, 1 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest line accepted, in bytes, without its line ending.
    pub max_line: usize,
    /// The largest event data accepted, in bytes (the sum of its `data`
    /// values, each counted with its joining LF).
    pub max_event: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 16 << 20,
            max_event: 16 << 20,
        }
    }
}

impl Limits {
    /// Sets the longest line accepted, in bytes.
    pub fn max_line(mut self, bytes: usize) -> Limits {
        self.max_line = bytes;
        self
    }

    /// Sets the largest event data accepted, in bytes.
    pub fn max_event(mut self, bytes: usize) -> Limits {
        self.max_event = bytes;
        self
    }
}
