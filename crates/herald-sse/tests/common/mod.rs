//! Helpers shared by the integration tests: feeding a parser under a given
//! chunking and collecting what it produces, in a form easy to compare.

#![allow(dead_code, unreachable_pub)]

use herald_sse::{Event, ParseError, Parser};

/// An event reduced to the three things an `EventSource` exposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub event_type: String,
    pub data: String,
    pub last_event_id: String,
}

impl Seen {
    pub fn new(event_type: &str, data: &str, last_event_id: &str) -> Seen {
        Seen {
            event_type: event_type.to_owned(),
            data: data.to_owned(),
            last_event_id: last_event_id.to_owned(),
        }
    }
}

impl From<&Event> for Seen {
    fn from(e: &Event) -> Seen {
        Seen::new(e.event_type(), e.data(), e.last_event_id())
    }
}

/// Feeds `chunks` one by one, draining the parser after each, and returns
/// everything it produced (events and limit errors) in order. Does not call
/// `finish`.
pub fn feed_all<'a>(
    parser: &mut Parser,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<Result<Seen, ParseError>> {
    let mut out = Vec::new();
    for chunk in chunks {
        parser.feed(chunk);
        while let Some(item) = parser.next_event() {
            out.push(item.map(|e| Seen::from(&e)));
        }
    }
    out
}

/// Parses one whole body fed as a single chunk and returns its events;
/// panics on a limit error (the default limits are never hit by tests that
/// use this).
pub fn parse_whole(body: &[u8]) -> Vec<Seen> {
    let mut parser = Parser::new();
    let out = feed_all(&mut parser, [body]);
    parser.finish();
    out.into_iter()
        .map(|r| r.expect("no limit error"))
        .collect()
}

/// The ways a body is cut into chunks by the data-driven tests.
pub fn whole(body: &[u8]) -> Vec<Vec<u8>> {
    vec![body.to_vec()]
}

pub fn byte_by_byte(body: &[u8]) -> Vec<Vec<u8>> {
    body.iter().map(|b| vec![*b]).collect()
}

pub fn split_at(body: &[u8], at: usize) -> Vec<Vec<u8>> {
    vec![body[..at].to_vec(), body[at..].to_vec()]
}

/// Cuts `body` at the given offsets (sorted and clamped here).
pub fn split_at_points(body: &[u8], points: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = points.iter().map(|p| p % (body.len() + 1)).collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for p in points {
        out.push(body[start..p].to_vec());
        start = p;
    }
    out.push(body[start..].to_vec());
    out
}
