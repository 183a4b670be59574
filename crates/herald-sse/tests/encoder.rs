//! Encoder behaviour named by sse.md §4: exact bytes, data split on every
//! line ending, empty payloads, leading spaces, and typed errors for fields
//! that would break the stream.

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::{parse_whole, Seen};
use herald_sse::{comment, EncodeError, Frame};

#[test]
fn full_frame_exact_bytes() {
    let bytes = Frame::new()
        .comment("c")
        .event("update")
        .id("42")
        .retry(Duration::from_millis(3000))
        .data("{\"a\":1}")
        .encode()
        .unwrap();
    assert_eq!(
        &bytes[..],
        b": c\nevent: update\nid: 42\nretry: 3000\ndata: {\"a\":1}\n\n"
    );
}

#[test]
fn data_is_split_on_cr_lf_and_crlf() {
    let bytes = Frame::new().data("a\rb\nc\r\nd\n\re").encode().unwrap();
    // "\n\r" is two line endings (LF, then a lone CR), so an empty line.
    assert_eq!(
        &bytes[..],
        b"data: a\ndata: b\ndata: c\ndata: d\ndata: \ndata: e\n\n"
    );
    assert_eq!(
        parse_whole(&bytes),
        vec![Seen::new("message", "a\nb\nc\nd\n\ne", "")]
    );
}

#[test]
fn trailing_line_ending_gives_a_trailing_empty_data_line() {
    let bytes = Frame::new().data("x\n").encode().unwrap();
    assert_eq!(&bytes[..], b"data: x\ndata: \n\n");
    assert_eq!(parse_whole(&bytes), vec![Seen::new("message", "x\n", "")]);
    let bytes = Frame::new().data("x\r\n").encode().unwrap();
    assert_eq!(&bytes[..], b"data: x\ndata: \n\n");
}

#[test]
fn empty_payload_is_one_data_line_and_is_dispatched() {
    let bytes = Frame::new().data("").encode().unwrap();
    assert_eq!(&bytes[..], b"data: \n\n");
    assert_eq!(parse_whole(&bytes), vec![Seen::new("message", "", "")]);
}

#[test]
fn leading_spaces_survive() {
    let bytes = Frame::new()
        .event(" t")
        .id(" i")
        .data("  two\n one")
        .encode()
        .unwrap();
    assert_eq!(
        &bytes[..],
        b"event:  t\nid:  i\ndata:   two\ndata:  one\n\n"
    );
    assert_eq!(
        parse_whole(&bytes),
        vec![Seen::new(" t", "  two\n one", " i")]
    );
}

#[test]
fn frame_without_data_is_not_an_event() {
    let bytes = Frame::new().id("5").encode().unwrap();
    assert_eq!(&bytes[..], b"id: 5\n\n");
    assert!(parse_whole(&bytes).is_empty());
    let bytes = Frame::new().retry(Duration::from_secs(2)).encode().unwrap();
    assert_eq!(&bytes[..], b"retry: 2000\n\n");
}

#[test]
fn empty_event_type_writes_nothing_and_empty_id_resets() {
    let bytes = Frame::new().event("").id("").data("x").encode().unwrap();
    assert_eq!(&bytes[..], b"id: \ndata: x\n\n");
}

#[test]
fn comments_split_on_line_endings() {
    assert_eq!(&comment("a\r\nb")[..], b": a\n: b\n\n");
    assert_eq!(&comment("")[..], b":\n\n");
    assert_eq!(&comment("ping")[..], b": ping\n\n");
}

#[test]
fn line_breaks_in_type_or_id_and_nul_in_id_are_typed_errors() {
    for t in ["a\nb", "a\rb", "\r\n", "x\n"] {
        assert_eq!(
            Frame::new().event(t).data("d").encode(),
            Err(EncodeError::EventTypeHasLineBreak)
        );
    }
    for id in ["a\nb", "a\rb", "\r\n", "\n"] {
        assert_eq!(
            Frame::new().id(id).data("d").encode(),
            Err(EncodeError::IdHasLineBreak)
        );
    }
    for id in ["\0", "a\0", "\0b"] {
        assert_eq!(
            Frame::new().id(id).data("d").encode(),
            Err(EncodeError::IdHasNul)
        );
    }
    // NUL is fine in the type and the data.
    assert!(Frame::new().event("a\0").data("\0").encode().is_ok());
    assert!(!EncodeError::IdHasNul.to_string().is_empty());
}

#[test]
fn encode_into_appends_and_writes_nothing_on_error() {
    let mut out = BytesMut::new();
    Frame::new().data("1").encode_into(&mut out).unwrap();
    Frame::new().data("2").encode_into(&mut out).unwrap();
    assert_eq!(
        Frame::new().id("a\nb").data("3").encode_into(&mut out),
        Err(EncodeError::IdHasLineBreak)
    );
    assert_eq!(&out[..], b"data: 1\n\ndata: 2\n\n");
}
