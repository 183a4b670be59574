//! Parser behaviour named by sse.md §1, beyond the WPT vectors: the spec's
//! own examples, id persistence, retry parsing, lossy UTF-8, line endings
//! and BOMs split across chunks, end of stream, and the limits.

mod common;

use std::time::Duration;

use common::{byte_by_byte, feed_all, parse_whole, Seen};
use herald_sse::{Limits, ParseError, Parser};

fn msg(data: &str, id: &str) -> Seen {
    Seen::new("message", data, id)
}

/// Every two-chunk split and the byte-by-byte feeding give `expected`.
fn assert_any_split(body: &[u8], expected: &[Seen]) {
    assert_eq!(parse_whole(body), expected, "whole");
    let mut p = Parser::new();
    let chunks = byte_by_byte(body);
    let got: Vec<_> = feed_all(&mut p, chunks.iter().map(Vec::as_slice))
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, expected, "byte by byte");
    for at in 0..=body.len() {
        let mut p = Parser::new();
        let got: Vec<_> = feed_all(&mut p, [&body[..at], &body[at..]])
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, expected, "split at {at}");
    }
}

#[test]
fn spec_example_empty_data_and_two_empty_lines_and_dropped_tail() {
    // The standard's example: "" then "\n", and the unterminated block is
    // dropped at the end of the stream.
    let mut p = Parser::new();
    let got = feed_all(&mut p, [&b"data\n\ndata\ndata\n\ndata:"[..]]);
    p.finish();
    let got: Vec<_> = got.into_iter().map(Result::unwrap).collect();
    assert_eq!(got, vec![msg("", ""), msg("\n", "")]);
    assert!(p.next_event().is_none());
}

#[test]
fn spec_example_space_after_colon_is_optional() {
    assert_eq!(
        parse_whole(b"data:test\n\n"),
        parse_whole(b"data: test\n\n")
    );
    assert_eq!(parse_whole(b"data:test\n\n"), vec![msg("test", "")]);
    // Only one space is removed.
    assert_eq!(parse_whole(b"data:  test\n\n"), vec![msg(" test", "")]);
}

#[test]
fn id_persists_across_events_until_changed_and_bare_id_resets_it() {
    let body = b"id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\nid\ndata: d\n\ndata: e\n\n";
    assert_any_split(
        body,
        &[
            msg("a", "1"),
            msg("b", "1"),
            msg("c", "2"),
            msg("d", ""),
            msg("e", ""),
        ],
    );
}

#[test]
fn id_in_a_block_without_data_updates_last_event_id() {
    let mut p = Parser::new();
    let got = feed_all(&mut p, [&b"id: 42\n\n"[..]]);
    assert!(got.is_empty(), "no event is dispatched");
    assert_eq!(p.last_event_id(), "42");
    // And the next event carries it.
    let got = feed_all(&mut p, [&b"data: x\n\n"[..]]);
    assert_eq!(got, vec![Ok(msg("x", "42"))]);
}

#[test]
fn id_with_nul_is_ignored_and_keeps_the_previous_id() {
    assert_eq!(
        parse_whole(b"id: 7\n\nid: a\0b\ndata: x\n\n"),
        vec![msg("x", "7")]
    );
}

#[test]
fn id_with_a_leading_space_keeps_all_but_one_space() {
    assert_eq!(parse_whole(b"id:  7\ndata: x\n\n"), vec![msg("x", " 7")]);
}

#[test]
fn event_type_is_reset_after_dispatch_and_by_an_empty_block() {
    assert_eq!(
        parse_whole(b"event: a\ndata: 1\n\ndata: 2\n\nevent: b\n\ndata: 3\n\n"),
        vec![Seen::new("a", "1", ""), msg("2", ""), msg("3", "")]
    );
}

fn retry_of(body: &[u8]) -> Option<Duration> {
    let mut p = Parser::new();
    p.feed(body);
    while p.next_event().is_some() {}
    p.retry()
}

#[test]
fn retry_accepts_digits_only() {
    assert_eq!(
        retry_of(b"retry: 1500\n"),
        Some(Duration::from_millis(1500))
    );
    assert_eq!(retry_of(b"retry:1500\n"), Some(Duration::from_millis(1500)));
    assert_eq!(retry_of(b"retry: 0\n"), Some(Duration::ZERO));
    assert_eq!(retry_of(b"retry: +5\n"), None);
    assert_eq!(retry_of(b"retry: -5\n"), None);
    assert_eq!(retry_of(b"retry: 5x\n"), None);
    assert_eq!(retry_of(b"retry: 5 \n"), None);
    assert_eq!(
        retry_of(b"retry:  5\n"),
        None,
        "a second space is not stripped"
    );
    assert_eq!(retry_of(b"retry: 5.0\n"), None);
    assert_eq!(retry_of(b"retry:\n"), None);
    assert_eq!(retry_of(b"retry\n"), None);
    assert_eq!(retry_of(b"Retry: 5\n"), None, "names are case-sensitive");
    // A bad value leaves the previous good one in force.
    assert_eq!(
        retry_of(b"retry: 10\nretry: x\n"),
        Some(Duration::from_millis(10))
    );
    // Applied at once, not at dispatch, and kept after an unfinished block.
    assert_eq!(retry_of(b"retry: 10"), None);
    assert_eq!(retry_of(b"retry: 10\r"), Some(Duration::from_millis(10)));
}

#[test]
fn retry_does_not_overflow_on_huge_values() {
    let got = retry_of(b"retry: 99999999999999999999999999999999\n");
    assert_eq!(got, Some(Duration::from_millis(u64::MAX)));
}

#[test]
fn invalid_utf8_becomes_replacement_characters() {
    assert_eq!(
        parse_whole(b"event: a\xFFb\nid: \xC3\ndata: x\xE2\x82y\xF0\x9F\x98\x80\n\n"),
        vec![Seen::new("a\u{FFFD}b", "x\u{FFFD}y😀", "\u{FFFD}")]
    );
    // A multi-byte character split over chunks is decoded whole.
    assert_any_split("data: é😀…\n\n".as_bytes(), &[msg("é😀…", "")]);
}

#[test]
fn cr_at_the_very_end_of_the_stream_dispatches() {
    let mut p = Parser::new();
    let got = feed_all(&mut p, [&b"data: x\r\r"[..]]);
    assert_eq!(got, vec![Ok(msg("x", ""))]);
    let mut p = Parser::new();
    let got = feed_all(&mut p, [&b"data: x\n"[..], b"\r"]);
    assert_eq!(got, vec![Ok(msg("x", ""))]);
}

#[test]
fn crlf_split_across_chunks_is_one_line_ending() {
    // If the LF after a chunk-final CR counted as an empty line, "a" and "b"
    // would be dispatched separately.
    let mut p = Parser::new();
    let got = feed_all(&mut p, [&b"data: a\r"[..], b"\ndata: b\r", b"\n\r", b"\n"]);
    assert_eq!(got, vec![Ok(msg("a\nb", ""))]);
}

#[test]
fn line_endings_of_every_kind_mixed() {
    assert_any_split(
        b"data: 1\rdata: 2\ndata: 3\r\n\rdata: 4\r\n\r\ndata: 5\n\n",
        &[msg("1\n2\n3", ""), msg("4", ""), msg("5", "")],
    );
}

#[test]
fn bom_split_over_three_chunks_is_stripped() {
    let mut p = Parser::new();
    let got = feed_all(&mut p, [&b"\xEF"[..], b"\xBB", b"\xBF", b"data: x\n\n"]);
    assert_eq!(got, vec![Ok(msg("x", ""))]);
}

#[test]
fn second_bom_is_part_of_the_first_line() {
    // "\u{FEFF}data" is an unknown field, so nothing is dispatched.
    assert_eq!(
        parse_whole(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\ndata: y\n\n"),
        vec![msg("y", "")]
    );
    // A BOM anywhere else is data.
    assert_eq!(
        parse_whole(b"data: \xEF\xBB\xBFx\n\n"),
        vec![msg("\u{FEFF}x", "")]
    );
}

#[test]
fn partial_bom_then_other_bytes_is_not_stripped() {
    // EF BB followed by 'd' is not a BOM: the bytes stay (as U+FFFD) and
    // spoil the first field name.
    let mut p = Parser::new();
    let got = feed_all(&mut p, [&b"\xEF\xBB"[..], b"data: x\n\ndata: y\n\n"]);
    assert_eq!(got, vec![Ok(msg("y", ""))]);
}

#[test]
fn finish_discards_an_unterminated_event_and_does_not_commit_its_id() {
    let mut p = Parser::new();
    let got = feed_all(&mut p, [&b"id: 1\ndata: a\n\nid: 2\ndata: b\n"[..]]);
    assert_eq!(got, vec![Ok(msg("a", "1"))]);
    p.finish();
    assert_eq!(p.last_event_id(), "1");
    assert!(p.next_event().is_none());
    // The next connection starts clean (nothing of "b" leaks in) and keeps
    // the committed id; it may start with a BOM again.
    let got = feed_all(&mut p, [&b"\xEF\xBB\xBFdata: c\n\n"[..]]);
    assert_eq!(got, vec![Ok(msg("c", "1"))]);
}

#[test]
fn finish_forgets_a_pending_cr() {
    // A CR at the end of one connection must not swallow a LF that starts
    // the next one (that LF is an empty line of the new stream).
    let mut p = Parser::new();
    feed_all(&mut p, [&b"data: a\r"[..]]);
    p.finish();
    let got = feed_all(&mut p, [&b"data: b\n\n"[..]]);
    assert_eq!(got, vec![Ok(msg("b", ""))]);
}

#[test]
fn with_last_event_id_seeds_the_id() {
    let mut p = Parser::new().with_last_event_id("9");
    assert_eq!(p.last_event_id(), "9");
    let got = feed_all(&mut p, [&b"data: x\n\n"[..]]);
    assert_eq!(got, vec![Ok(msg("x", "9"))]);
}

#[test]
fn line_limit_gives_a_typed_error_and_parsing_resumes() {
    let limits = Limits::default().max_line(16);
    let body = b"data: ok1\n\ndata: this line is far too long\ndata: same event\n\ndata: ok2\n\n";
    // Whole, and byte by byte: the same outcome, the error reported once.
    for chunks in [vec![body.to_vec()], byte_by_byte(body)] {
        let mut p = Parser::with_limits(limits);
        let got = feed_all(&mut p, chunks.iter().map(Vec::as_slice));
        assert_eq!(
            got,
            vec![
                Ok(msg("ok1", "")),
                Err(ParseError::LineTooLong { limit: 16 }),
                Ok(msg("ok2", "")),
            ]
        );
    }
}

#[test]
fn line_limit_reports_an_endless_line_once() {
    let mut p = Parser::with_limits(Limits::default().max_line(1024));
    p.feed(b"data: ");
    let mut errors = 0;
    for _ in 0..1000 {
        p.feed(&[b'x'; 1000]);
        while let Some(item) = p.next_event() {
            assert_eq!(item, Err(ParseError::LineTooLong { limit: 1024 }));
            errors += 1;
        }
    }
    assert_eq!(errors, 1, "one error for one long line");
    p.feed(b"\n\ndata: after\n\n");
    assert_eq!(
        p.next_event(),
        Some(Ok(herald_sse::Event::new(None, "after".into(), "".into())))
    );
}

#[test]
fn event_limit_gives_a_typed_error_and_parsing_resumes() {
    let mut p = Parser::with_limits(Limits::default().max_event(8));
    let got = feed_all(
        &mut p,
        [&b"data: 1234\ndata: 5678\ndata: 9\nid: skipped\n\ndata: ok\n\n"[..]],
    );
    assert_eq!(
        got,
        vec![
            Err(ParseError::EventTooLarge { limit: 8 }),
            Ok(msg("ok", ""))
        ]
    );
    // Display says what happened.
    assert!(ParseError::EventTooLarge { limit: 8 }
        .to_string()
        .contains("8 bytes"));
}

#[test]
fn event_limit_counts_joining_line_feeds() {
    // "abc\ndef" plus the trailing LF is 8 bytes: exactly at the limit.
    let mut p = Parser::with_limits(Limits::default().max_event(8));
    let got = feed_all(&mut p, [&b"data: abc\ndata: def\n\n"[..]]);
    assert_eq!(got, vec![Ok(msg("abc\ndef", ""))]);
}

#[test]
fn comments_do_not_dispatch_or_disturb_the_event() {
    assert_any_split(b": hi\ndata: a\n: mid\ndata: b\n:\n\n", &[msg("a\nb", "")]);
}

#[test]
fn unknown_and_case_variant_fields_are_ignored() {
    assert_eq!(
        parse_whole(b"Data: x\nEVENT: y\nID: z\nfoo: bar\ndata: ok\n\n"),
        vec![msg("ok", "")]
    );
}

#[test]
fn field_value_keeps_later_colons() {
    assert_eq!(parse_whole(b"data: a:b: c\n\n"), vec![msg("a:b: c", "")]);
}

#[test]
fn never_panics_on_awkward_inputs() {
    let inputs: [&[u8]; 10] = [
        b"",
        b"\r",
        b"\n",
        b"\r\n\r\n\r",
        b":",
        b"\xEF",
        b"\xEF\xBB",
        b"\xFF\xFE\xFD\n\n",
        b"data",
        b"\0\0\0:\0\n\n",
    ];
    for input in inputs {
        for limits in [
            Limits::default(),
            Limits::default().max_line(0).max_event(0),
        ] {
            let mut p = Parser::with_limits(limits);
            feed_all(&mut p, byte_by_byte(input).iter().map(Vec::as_slice));
            p.finish();
            feed_all(&mut p, [input]);
        }
    }
}
