//! Long `data` lines, which the parser copies from each chunk straight into
//! the event's data once they pass a couple of KiB: the result must not
//! depend on the chunking, on the line ending, or on where the limits are.

mod common;

use common::{byte_by_byte, feed_all, split_at, split_at_points, Seen};
use herald_sse::{Limits, ParseError, Parser};
use proptest::prelude::*;

fn chunked(body: &[u8], size: usize) -> Vec<Vec<u8>> {
    body.chunks(size).map(<[u8]>::to_vec).collect()
}

fn run(chunks: &[Vec<u8>], limits: Limits) -> (Vec<Result<Seen, ParseError>>, String) {
    let mut p = Parser::with_limits(limits);
    let out = feed_all(&mut p, chunks.iter().map(Vec::as_slice));
    (out, p.last_event_id().to_owned())
}

fn long(n: usize) -> String {
    (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect()
}

#[test]
fn long_data_lines_parse_the_same_under_any_chunk_size() {
    let big = long(10_000);
    for ending in ["\n", "\r", "\r\n"] {
        for prefix in ["data:", "data: ", "data:  "] {
            let body = format!(
                "id: 1{e}data: short{e}{prefix}{big}{e}data: after{e}{e}{prefix}{big}{e}{e}data: tail{e}{e}",
                e = ending
            );
            let value = &format!("{prefix}{big}")[5..];
            let value = value.strip_prefix(' ').unwrap_or(value);
            let expected = vec![
                Ok(Seen::new("message", &format!("short\n{value}\nafter"), "1")),
                Ok(Seen::new("message", value, "1")),
                Ok(Seen::new("message", "tail", "1")),
            ];
            for size in [1, 2, 7, 100, 1000, 2047, 2048, 2049, 4096, 9999, body.len()] {
                let (got, _) = run(&chunked(body.as_bytes(), size), Limits::default());
                assert_eq!(
                    got, expected,
                    "ending {ending:?}, prefix {prefix:?}, chunks of {size}"
                );
            }
        }
    }
}

#[test]
fn crlf_split_right_after_a_long_data_line_is_one_line_ending() {
    let big = long(5000);
    let body = format!("data: {big}\r\n\r\ndata: x\n\n");
    let cut = body.find('\r').unwrap() + 1;
    let chunks = split_at_points(body.as_bytes(), &[1000, 3000, cut]);
    let (got, _) = run(&chunks, Limits::default());
    assert_eq!(
        got,
        vec![
            Ok(Seen::new("message", &big, "")),
            Ok(Seen::new("message", "x", ""))
        ]
    );
}

#[test]
fn finish_while_a_long_line_streams_discards_it() {
    let mut p = Parser::new();
    let big = long(5000);
    p.feed(b"id: 9\ndata: ");
    p.feed(&big.as_bytes()[..3000]);
    assert!(p.next_event().is_none());
    p.feed(&big.as_bytes()[3000..]);
    assert!(p.next_event().is_none());
    p.finish();
    assert_eq!(p.last_event_id(), "");
    p.feed(b"data: next\n\n");
    let got: Vec<_> = p.events().map(|e| e.map(|e| e.data().to_owned())).collect();
    assert_eq!(got, vec![Ok("next".to_owned())]);
}

/// The ways to cut `body` that the limits could be sensitive to: whole,
/// byte by byte, and in two at each position of `at`.
fn cuts(body: &[u8], at: Vec<usize>) -> Vec<(String, Vec<Vec<u8>>)> {
    let mut out = vec![
        ("whole".to_owned(), vec![body.to_vec()]),
        ("byte by byte".to_owned(), byte_by_byte(body)),
    ];
    out.extend(
        at.into_iter()
            .filter(|&p| p > 0 && p < body.len())
            .map(|p| (format!("split at {p}"), split_at(body, p))),
    );
    out
}

/// Where a cut could matter: inside `data: `, around the 2 KiB after a line
/// start where streaming starts, and on either side of every line ending.
fn interesting_positions(body: &[u8]) -> Vec<usize> {
    let mut at: Vec<usize> = (1..8).collect();
    let mut line_start = 0;
    for (i, b) in body.iter().enumerate() {
        if *b == b'\r' || *b == b'\n' {
            at.extend(i.saturating_sub(3)..i + 4);
            at.extend(line_start + 2040..line_start + 2060);
            line_start = i + 1;
        }
    }
    at
}

#[test]
fn limits_apply_to_long_lines_as_to_short_ones() {
    // Long enough to be streamed, short enough to cut at every position.
    const N: usize = 2500;
    let big = long(N);
    let small = long(1000);
    let line_too_long = |limit| Err(ParseError::LineTooLong { limit });
    let event_too_large = |limit| Err(ParseError::EventTooLarge { limit });
    let message = |data: &str| Ok(Seen::new("message", data, ""));
    for e in ["\n", "\r", "\r\n"] {
        // One `data: ` line of N + 6 bytes: N + 1 bytes of event data with
        // its line feed. Two lines: 1001 + N + 1.
        let one_line = format!("data: {big}{e}{e}data: ok{e}{e}");
        let two_lines = format!("data: {small}{e}data: {big}{e}{e}data: ok{e}{e}");
        let both = format!("{small}\n{big}");
        let cases = [
            (
                "line 1 byte over",
                &one_line,
                Limits::default().max_line(N + 5),
                vec![line_too_long(N + 5), message("ok")],
            ),
            (
                "line over once streaming",
                &one_line,
                Limits::default().max_line(2100),
                vec![line_too_long(2100), message("ok")],
            ),
            (
                "line over before streaming",
                &one_line,
                Limits::default().max_line(1000),
                vec![line_too_long(1000), message("ok")],
            ),
            (
                "event 1 byte over",
                &one_line,
                Limits::default().max_event(N),
                vec![event_too_large(N), message("ok")],
            ),
            (
                "event over once streaming",
                &one_line,
                Limits::default().max_event(2100),
                vec![event_too_large(2100), message("ok")],
            ),
            (
                "event over before streaming",
                &one_line,
                Limits::default().max_event(1000),
                vec![event_too_large(1000), message("ok")],
            ),
            (
                "second line takes the event 1 byte over",
                &two_lines,
                Limits::default().max_event(N + 1001),
                vec![event_too_large(N + 1001), message("ok")],
            ),
            // The line's length is checked before its data is counted.
            (
                "both 1 byte over",
                &one_line,
                Limits::default().max_line(N + 5).max_event(N),
                vec![line_too_long(N + 5), message("ok")],
            ),
            (
                "line at the limit",
                &one_line,
                Limits::default().max_line(N + 6),
                vec![message(&big), message("ok")],
            ),
            (
                "event at the limit",
                &one_line,
                Limits::default().max_event(N + 1),
                vec![message(&big), message("ok")],
            ),
            (
                "both at the limit",
                &one_line,
                Limits::default().max_line(N + 6).max_event(N + 1),
                vec![message(&big), message("ok")],
            ),
            (
                "two lines at the limit",
                &two_lines,
                Limits::default().max_event(N + 1002),
                vec![message(&both), message("ok")],
            ),
        ];
        for (name, body, limits, expected) in cases {
            // LF ends: a cut at every position, which also covers the
            // limits being crossed in either chunk. CR and CRLF differ
            // only at the line endings.
            let at = if e == "\n" {
                (1..body.len()).collect()
            } else {
                interesting_positions(body.as_bytes())
            };
            for (cut, chunks) in cuts(body.as_bytes(), at) {
                assert_eq!(
                    run(&chunks, limits).0,
                    expected,
                    "{name}, ending {e:?}, {cut}"
                );
            }
        }
    }
}

/// Streams with long lines among short ones.
fn long_line_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        (0usize..6000).prop_map(|n| format!("data: {}", "x".repeat(n)).into_bytes()),
        (0usize..6000).prop_map(|n| format!("data:{}", "y".repeat(n)).into_bytes()),
        (0usize..6000).prop_map(|n| format!(":{}", "c".repeat(n)).into_bytes()),
        Just(b"data: s".to_vec()),
        Just(b"id: 3".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\xFF\xE2\x82".to_vec()),
    ];
    prop::collection::vec(piece, 0..16).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn long_lines_give_the_same_output_under_two_chunkings(
        input in long_line_bytes(),
        cuts_a in prop::collection::vec(any::<usize>(), 0..24),
        size_b in 1usize..5000,
        max_line in prop::option::of(0usize..8000),
        max_event in prop::option::of(0usize..12000),
    ) {
        let mut limits = Limits::default();
        if let Some(n) = max_line {
            limits = limits.max_line(n);
        }
        if let Some(n) = max_event {
            limits = limits.max_event(n);
        }
        let whole = run(std::slice::from_ref(&input), limits);
        prop_assert_eq!(&run(&split_at_points(&input, &cuts_a), limits), &whole);
        prop_assert_eq!(&run(&chunked(&input, size_b), limits), &whole);
    }
}
