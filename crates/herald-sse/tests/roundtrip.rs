//! Property tests: whatever the events and whatever the chunking, what the
//! encoder writes the parser reads back; and on arbitrary bytes the parser's
//! output does not depend on how the input was cut, and it never panics.

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::{feed_all, split_at_points, Seen};
use herald_sse::{Frame, Limits, ParseError, Parser};
use proptest::prelude::*;

/// One frame as the property generates it.
#[derive(Debug, Clone)]
struct Spec {
    comment: Option<String>,
    event_type: Option<String>,
    id: Option<String>,
    retry_ms: Option<u64>,
    data: Option<String>,
}

/// Data made of the awkward pieces: line endings of every kind, leading
/// spaces, colons, NUL, a BOM, and arbitrary non-control unicode.
fn data() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\r".to_owned()),
        Just("\n".to_owned()),
        Just("\r\n".to_owned()),
        Just(" ".to_owned()),
        Just(":".to_owned()),
        Just("\0".to_owned()),
        Just("\u{FEFF}".to_owned()),
        "\\PC{0,8}",
        "[a-z{}\":,]{0,16}",
    ];
    prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::option::weighted(0.2, "[^\r\n]{0,8}"),
        prop::option::of("[^\r\n]{0,10}"),
        prop::option::of("[^\r\n\0]{0,10}"),
        prop::option::weighted(0.2, any::<u64>()),
        prop::option::weighted(0.85, data()),
    )
        .prop_map(|(comment, event_type, id, retry_ms, data)| Spec {
            comment,
            event_type,
            id,
            retry_ms,
            data,
        })
}

fn encode(specs: &[Spec]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for s in specs {
        let mut frame = Frame::new();
        if let Some(c) = &s.comment {
            frame = frame.comment(c);
        }
        if let Some(t) = &s.event_type {
            frame = frame.event(t);
        }
        if let Some(id) = &s.id {
            frame = frame.id(id);
        }
        if let Some(ms) = s.retry_ms {
            frame = frame.retry(Duration::from_millis(ms));
        }
        if let Some(d) = &s.data {
            frame = frame.data(d);
        }
        frame.encode_into(&mut out).expect("valid by construction");
    }
    out.to_vec()
}

/// What a spec-following client sees for these frames: the model.
fn expected(specs: &[Spec]) -> (Vec<Seen>, String, Option<Duration>) {
    let mut last_id = String::new();
    let mut retry = None;
    let mut events = Vec::new();
    for s in specs {
        if let Some(id) = &s.id {
            last_id = id.clone();
        }
        if let Some(ms) = s.retry_ms {
            retry = Some(Duration::from_millis(ms));
        }
        if let Some(d) = &s.data {
            let event_type = match s.event_type.as_deref() {
                None | Some("") => "message",
                Some(t) => t,
            };
            let data = d.replace("\r\n", "\n").replace('\r', "\n");
            events.push(Seen::new(event_type, &data, &last_id));
        }
    }
    (events, last_id, retry)
}

fn run(
    chunks: &[Vec<u8>],
    limits: Limits,
) -> (Vec<Result<Seen, ParseError>>, String, Option<Duration>) {
    let mut parser = Parser::with_limits(limits);
    let out = feed_all(&mut parser, chunks.iter().map(Vec::as_slice));
    (out, parser.last_event_id().to_owned(), parser.retry())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn encoded_events_parse_back_under_any_chunking(
        specs in prop::collection::vec(spec(), 0..8),
        cuts in prop::collection::vec(any::<usize>(), 0..16),
    ) {
        let bytes = encode(&specs);
        let (want_events, want_id, want_retry) = expected(&specs);
        let chunks = split_at_points(&bytes, &cuts);
        let (got, id, retry) = run(&chunks, Limits::default());
        let got: Vec<Seen> = got.into_iter().map(|r| r.expect("within limits")).collect();
        prop_assert_eq!(got, want_events);
        prop_assert_eq!(id, want_id);
        prop_assert_eq!(retry, want_retry);
    }

    #[test]
    fn encoded_events_parse_back_byte_by_byte(specs in prop::collection::vec(spec(), 0..4)) {
        let bytes = encode(&specs);
        let (want_events, want_id, want_retry) = expected(&specs);
        let chunks: Vec<Vec<u8>> = bytes.iter().map(|b| vec![*b]).collect();
        let (got, id, retry) = run(&chunks, Limits::default());
        let got: Vec<Seen> = got.into_iter().map(|r| r.expect("within limits")).collect();
        prop_assert_eq!(got, want_events);
        prop_assert_eq!(id, want_id);
        prop_assert_eq!(retry, want_retry);
    }

    #[test]
    fn arbitrary_bytes_give_the_same_output_under_two_chunkings(
        input in sse_like_bytes(),
        cuts_a in prop::collection::vec(any::<usize>(), 0..16),
        cuts_b in prop::collection::vec(any::<usize>(), 0..16),
        max_line in prop::option::of(0usize..48),
        max_event in prop::option::of(0usize..48),
    ) {
        let mut limits = Limits::default();
        if let Some(n) = max_line {
            limits = limits.max_line(n);
        }
        if let Some(n) = max_event {
            limits = limits.max_event(n);
        }
        let a = run(&split_at_points(&input, &cuts_a), limits);
        let b = run(&split_at_points(&input, &cuts_b), limits);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn never_panics(
        input in prop::collection::vec(any::<u8>(), 0..512),
        cuts in prop::collection::vec(any::<usize>(), 0..16),
        max_line in 0usize..64,
        max_event in 0usize..64,
    ) {
        let mut parser = Parser::with_limits(Limits::default().max_line(max_line).max_event(max_event))
            .with_comments(true);
        for (i, chunk) in split_at_points(&input, &cuts).iter().enumerate() {
            parser.feed(chunk);
            while parser.next_item().is_some() {}
            if i % 3 == 2 {
                parser.finish();
            }
        }
        parser.finish();
        prop_assert!(parser.next_item().is_none());
    }
}

/// Bytes that look like SSE often enough to reach every branch: field
/// names, colons, spaces, all line endings, BOM bytes, invalid UTF-8.
fn sse_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"data".to_vec()),
        Just(b"data:".to_vec()),
        Just(b"data: ".to_vec()),
        Just(b"event:".to_vec()),
        Just(b"id:".to_vec()),
        Just(b"id".to_vec()),
        Just(b"retry:".to_vec()),
        Just(b"retry: 12".to_vec()),
        Just(b":".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(b"\xEF\xBB".to_vec()),
        Just(b"\0".to_vec()),
        Just("é…".as_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 0..6),
        "[a-z0-9]{1,20}".prop_map(String::into_bytes),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|p| p.concat())
}
