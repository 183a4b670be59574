//! Fuzz target for the parser: arbitrary bytes under arbitrary chunking.
//!
//! The first bytes of the input choose the limits and the chunk sizes; the
//! rest is the stream. Invariants checked:
//! 1. feeding whole, in the chosen chunks, and (for short inputs) byte by
//!    byte gives identical events, errors, last event id and retry;
//! 2. the same holds for comments (`next_item` with comments on);
//! 3. every event parsed with the default limits, re-encoded with `Frame`,
//!    parses back to the same event (type, data, last event id);
//! 4. nothing panics, including `finish` and reuse after it.
#![no_main]

use bytes::BytesMut;
use herald_sse::{Frame, Item, Limits, ParseError, Parser};
use libfuzzer_sys::fuzz_target;

type Output = (Vec<Result<Item, ParseError>>, String, Option<std::time::Duration>);

fn run(limits: Limits, chunks: &[&[u8]]) -> Output {
    let mut parser = Parser::with_limits(limits).with_comments(true);
    let mut out = Vec::new();
    for chunk in chunks {
        parser.feed(chunk);
        while let Some(item) = parser.next_item() {
            out.push(item);
        }
    }
    let id = parser.last_event_id().to_owned();
    let retry = parser.retry();
    parser.finish();
    assert!(parser.next_item().is_none(), "nothing after finish");
    // The parser is reusable after finish (when the limits allow the line).
    if limits.max_line >= 11 && limits.max_event >= 6 {
        parser.feed(b"data: again\n\n");
        assert!(matches!(parser.next_item(), Some(Ok(Item::Event(_)))));
    }
    (out, id, retry)
}

/// What an `EventSource` exposes of an event; `Event`'s own equality tells
/// an unset type from an explicit `message`, which the wire cannot.
fn key(e: &herald_sse::Event) -> (String, String, String) {
    (e.event_type().to_owned(), e.data().to_owned(), e.last_event_id().to_owned())
}

/// Cuts `data` into chunks whose sizes come from `sizes` (cycled), each
/// size byte giving 0..=255 bytes (0 is an empty chunk, which must be fine).
fn chunk<'a>(data: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = if sizes.is_empty() { rest.len() } else { usize::from(sizes[i % sizes.len()]) };
        let n = n.min(rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
        i += 1;
        if i > 4 * data.len() + 8 {
            out.push(rest);
            break;
        }
    }
    out
}

fuzz_target!(|input: &[u8]| {
    if input.len() < 3 {
        return;
    }
    // Header: limits selector, number of size bytes, then the size bytes.
    let limits = match input[0] % 4 {
        0 => Limits::default(),
        1 => Limits::default().max_line(usize::from(input[0] >> 2)),
        2 => Limits::default().max_event(usize::from(input[0] >> 2)),
        _ => Limits::default().max_line(usize::from(input[0] >> 2)).max_event(usize::from(input[0] >> 3)),
    };
    let n_sizes = usize::from(input[1] % 16).min(input.len() - 2);
    let sizes = &input[2..2 + n_sizes];
    let data = &input[2 + n_sizes..];

    let whole = run(limits, &[data]);
    let chunked = run(limits, &chunk(data, sizes));
    assert_eq!(whole, chunked, "whole vs chunked");
    if data.len() <= 4096 {
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(whole, run(limits, &bytes), "whole vs byte by byte");
    }

    if limits == Limits::default() {
        // Re-encode every event and parse it back.
        let mut encoded = BytesMut::new();
        let mut events = Vec::new();
        for item in &whole.0 {
            match item {
                Ok(Item::Event(e)) => {
                    Frame::new()
                        .event(e.event_type())
                        .id(e.last_event_id())
                        .data(e.data())
                        .encode_into(&mut encoded)
                        .expect("a parsed event is always encodable");
                    events.push(key(e));
                }
                Ok(_) => {}
                Err(e) => panic!("default limits hit on a small input: {e}"),
            }
        }
        let again = run(Limits::default(), &[&encoded[..]]);
        let again: Vec<_> = again
            .0
            .into_iter()
            .filter_map(|item| match item {
                Ok(Item::Event(e)) => Some(key(&e)),
                _ => None,
            })
            .collect();
        assert_eq!(events, again, "parse → encode → parse");
    }
});
