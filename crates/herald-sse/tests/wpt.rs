//! The web-platform-tests `eventsource/format-*` vectors, re-expressed as
//! bytes in and events out (sse.md §2).
//!
//! WPT serves each test body from `resources/message.py`, which appends
//! `"\n\n"` to the message (unless `newline=none`) and then one more `"\n"`;
//! the bodies below include those bytes. Where a WPT test depends on the
//! browser reconnecting (the id tests), the vector has one body per
//! connection, and the parser is `finish`ed between them, exactly as a
//! client does.
//!
//! Every vector runs fed whole, byte by byte, and split into two chunks at
//! every position; all must give the same events, last event id and retry.

mod common;

use std::time::Duration;

use common::{byte_by_byte, feed_all, split_at, whole, Seen};
use herald_sse::Parser;

struct Vector {
    /// The WPT file the vector comes from.
    wpt: &'static str,
    /// One body per connection.
    bodies: Vec<Vec<u8>>,
    /// Every event dispatched, across all connections.
    events: Vec<Seen>,
    /// `parser.last_event_id()` at the end.
    last_event_id: &'static str,
    /// `parser.retry()` at the end, in milliseconds.
    retry_ms: Option<u64>,
}

fn seen(event_type: &str, data: &str, id: &str) -> Seen {
    Seen::new(event_type, data, id)
}

fn msg(data: &str, id: &str) -> Seen {
    Seen::new("message", data, id)
}

/// `message.py`'s body: the message, `"\n\n"` unless `newline=none`, `"\n"`.
fn message_py(message: &[u8], newline_none: bool) -> Vec<u8> {
    let mut body = message.to_vec();
    if !newline_none {
        body.extend_from_slice(b"\n\n");
    }
    body.push(b'\n');
    body
}

fn vectors() -> Vec<Vector> {
    let long = "x".repeat(2 * 1024);
    let mut v = vec![
        // format-bom.any.js: one BOM is stripped; a BOM at the start of a
        // later line is part of the field name, so "data:2" is unknown.
        Vector {
            wpt: "format-bom.any.js",
            bodies: vec![message_py(
                b"\xEF\xBB\xBFdata:1\n\n\xEF\xBB\xBFdata:2\n\ndata:3",
                false,
            )],
            events: vec![msg("1", ""), msg("3", "")],
            last_event_id: "",
            retry_ms: None,
        },
        // format-bom-2.any.js: of two BOMs only the first is stripped; the
        // second makes the first field name unknown.
        Vector {
            wpt: "format-bom-2.any.js",
            bodies: vec![message_py(
                b"\xEF\xBB\xBF\xEF\xBB\xBFdata:1\n\ndata:2\n\ndata:3",
                false,
            )],
            events: vec![msg("2", ""), msg("3", "")],
            last_event_id: "",
            retry_ms: None,
        },
        // format-comments.any.js: comments of every shape (`:` then NUL,
        // empty, 2 KiB long) between data lines, CR/LF/CRLF line ends.
        Vector {
            wpt: "format-comments.any.js",
            bodies: vec![message_py(
                format!(
                    "data:1\r:\0\n:\r\ndata:2\n:{long}\rdata:3\n:data:fail\r:{long}\ndata:4\n"
                )
                .as_bytes(),
                true,
            )],
            events: vec![msg("1\n2\n3\n4", "")],
            last_event_id: "",
            retry_ms: None,
        },
        // format-data-before-final-empty-line.any.js: the block after the
        // last empty line is never dispatched, and its id is not committed:
        // the reconnection gets "test1" again with an empty lastEventId.
        Vector {
            wpt: "format-data-before-final-empty-line.any.js",
            bodies: vec![
                message_py(b"retry:1000\ndata:test1\n\nid:test\ndata:test2", true),
                message_py(b"retry:1000\ndata:test1\n\nid:test\ndata:test2", true),
            ],
            events: vec![msg("test1", ""), msg("test1", "")],
            last_event_id: "",
            retry_ms: Some(1000),
        },
        // format-field-data.any.js: `data:` is "", two bare `data` lines are
        // "\n".
        Vector {
            wpt: "format-field-data.any.js",
            bodies: vec![message_py(b"data:\n\ndata\ndata\n\ndata:test", false)],
            events: vec![msg("", ""), msg("\n", ""), msg("test", "")],
            last_event_id: "",
            retry_ms: None,
        },
        // format-field-event.any.js: a named event, then a `message`.
        Vector {
            wpt: "format-field-event.any.js",
            bodies: vec![message_py(b"event:test\ndata:x\n\ndata:x", false)],
            events: vec![seen("test", "x", ""), msg("x", "")],
            last_event_id: "",
            retry_ms: None,
        },
        // format-field-event-empty.any.js: `event: ` means `message`.
        Vector {
            wpt: "format-field-event-empty.any.js",
            bodies: vec![message_py(b"event: \ndata:data", false)],
            events: vec![msg("data", "")],
            last_event_id: "",
            retry_ms: None,
        },
        // format-field-id.any.js (server: last-event-id.py): a non-ASCII id;
        // on reconnection the server echoes the Last-Event-ID as data and
        // the event, which has no id field, still carries the old id.
        Vector {
            wpt: "format-field-id.any.js",
            bodies: vec![
                "id: …\nretry: 200\ndata: hello\n\n".into(),
                "data: …\n\n".into(),
            ],
            events: vec![msg("hello", "…"), msg("…", "…")],
            last_event_id: "…",
            retry_ms: Some(200),
        },
        // format-field-id-2.any.js: as above, over two reconnections.
        Vector {
            wpt: "format-field-id-2.any.js",
            bodies: vec![
                "id: …\nretry: 200\ndata: hello\n\n".into(),
                "data: …\n\n".into(),
                "data: …\n\n".into(),
            ],
            events: vec![msg("hello", "…"), msg("…", "…"), msg("…", "…")],
            last_event_id: "…",
            retry_ms: Some(200),
        },
        // format-field-id-3.window.js, "lastEventId persists".
        Vector {
            wpt: "format-field-id-3.window.js (persists)",
            bodies: vec![b"id: 1\ndata: 1\n\ndata: 2\n\nid: 2\ndata: 3\n\ndata: 4\n\n".to_vec()],
            events: vec![msg("1", "1"), msg("2", "1"), msg("3", "2"), msg("4", "2")],
            last_event_id: "2",
            retry_ms: None,
        },
        // format-field-id-3.window.js, "lastEventId resets".
        Vector {
            wpt: "format-field-id-3.window.js (resets)",
            bodies: vec![b"id: 1\ndata: 1\n\nid:\ndata: 2\n\ndata: 3\n\n".to_vec()],
            events: vec![msg("1", "1"), msg("2", ""), msg("3", "")],
            last_event_id: "",
            retry_ms: None,
        },
        // format-field-id-3.window.js, "lastEventId resets (id without
        // colon)".
        Vector {
            wpt: "format-field-id-3.window.js (resets, no colon)",
            bodies: vec![b"id: 1\ndata: 1\n\nid\ndata: 2\n\ndata: 3\n\n".to_vec()],
            events: vec![msg("1", "1"), msg("2", ""), msg("3", "")],
            last_event_id: "",
            retry_ms: None,
        },
        // format-field-parsing.any.js: NUL in data, two spaces keep one,
        // `Data` is unknown (case-sensitive), `data\0` is unknown, a line
        // after CR starting with NUL is unknown, ` data` is unknown.
        Vector {
            wpt: "format-field-parsing.any.js",
            bodies: vec![message_py(
                b"data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\ndata:3\rdata:\r\n data:32\ndata:4\n",
                true,
            )],
            events: vec![msg("\0\n 2\n1\n3\n\n4", "")],
            last_event_id: "",
            retry_ms: None,
        },
        // format-field-retry.any.js: `03000` is decimal 3000, not octal.
        Vector {
            wpt: "format-field-retry.any.js",
            bodies: vec![message_py(b"retry:03000\ndata:x", false)],
            events: vec![msg("x", "")],
            last_event_id: "",
            retry_ms: Some(3000),
        },
        // format-field-retry-bogus.any.js: `1000x` is ignored, 3000 stays.
        Vector {
            wpt: "format-field-retry-bogus.any.js",
            bodies: vec![message_py(b"retry:3000\nretry:1000x\ndata:x", false)],
            events: vec![msg("x", "")],
            last_event_id: "",
            retry_ms: Some(3000),
        },
        // format-field-retry-empty.any.js: a bare `retry` changes nothing
        // and does not disturb the event.
        Vector {
            wpt: "format-field-retry-empty.any.js",
            bodies: vec![message_py(b"retry\ndata:test", false)],
            events: vec![msg("test", "")],
            last_event_id: "",
            retry_ms: None,
        },
        // format-field-unknown.any.js: unknown names, a line without colon
        // and a comment are skipped; bare `data` adds an empty line.
        Vector {
            wpt: "format-field-unknown.any.js",
            bodies: vec![message_py(
                b"data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test",
                false,
            )],
            events: vec![msg("test\n\ntest", "")],
            last_event_id: "",
            retry_ms: None,
        },
        // format-leading-space.any.js: a tab is kept, `data: ` is empty, a
        // lone CR ends a line.
        Vector {
            wpt: "format-leading-space.any.js",
            bodies: vec![message_py(b"data:\ttest\rdata: \ndata:test", false)],
            events: vec![msg("\ttest\n\ntest", "")],
            last_event_id: "",
            retry_ms: None,
        },
        // format-newlines.any.js: CRLF, LF, CRLF, then CR followed by the
        // server's final LF (one CRLF: one empty line).
        Vector {
            wpt: "format-newlines.any.js",
            bodies: vec![message_py(b"data:test\r\ndata\ndata:test\r\n\r", true)],
            events: vec![msg("test\n\ntest", "")],
            last_event_id: "",
            retry_ms: None,
        },
        // format-null-character.any.js: NUL is kept in data.
        Vector {
            wpt: "format-null-character.any.js",
            bodies: vec![message_py(b"data:\0\n\n", false)],
            events: vec![msg("\0", "")],
            last_event_id: "",
            retry_ms: None,
        },
        // format-utf-8.any.js: always UTF-8, whatever the charset says.
        Vector {
            wpt: "format-utf-8.any.js",
            bodies: vec![message_py(b"data:ok\xE2\x80\xA6", false)],
            events: vec![msg("ok…", "")],
            last_event_id: "",
            retry_ms: None,
        },
    ];
    // format-field-id-null.window.js: an id containing NUL is ignored, so
    // lastEventId stays "" and the client sends no Last-Event-ID on
    // reconnection: the server answers with the same body again.
    for value in [&b"\0\0"[..], b"x\0", b"\0x", b"x\0x", b" \0"] {
        let mut body = b"id: ".to_vec();
        body.extend_from_slice(value);
        body.extend_from_slice(b"\nretry: 200\ndata: hello\n\n");
        v.push(Vector {
            wpt: "format-field-id-null.window.js",
            bodies: vec![body.clone(), body],
            events: vec![msg("hello", ""), msg("hello", "")],
            last_event_id: "",
            retry_ms: Some(200),
        });
    }
    v
}

/// Runs one vector with every body cut by `chunker`.
fn run(vector: &Vector, chunker: &dyn Fn(&[u8]) -> Vec<Vec<u8>>, how: &str) {
    let mut parser = Parser::new();
    let mut events = Vec::new();
    for body in &vector.bodies {
        let chunks = chunker(body);
        for item in feed_all(&mut parser, chunks.iter().map(Vec::as_slice)) {
            match item {
                Ok(e) => events.push(e),
                Err(e) => panic!("{} ({how}): unexpected error {e}", vector.wpt),
            }
        }
        parser.finish();
    }
    assert_eq!(events, vector.events, "{} ({how}): events", vector.wpt);
    assert_eq!(
        parser.last_event_id(),
        vector.last_event_id,
        "{} ({how}): last event id",
        vector.wpt
    );
    assert_eq!(
        parser.retry(),
        vector.retry_ms.map(Duration::from_millis),
        "{} ({how}): retry",
        vector.wpt
    );
}

#[test]
fn wpt_vectors_fed_whole() {
    for vector in vectors() {
        run(&vector, &whole, "whole");
    }
}

#[test]
fn wpt_vectors_fed_byte_by_byte() {
    for vector in vectors() {
        run(&vector, &byte_by_byte, "byte by byte");
    }
}

#[test]
fn wpt_vectors_split_at_every_position() {
    for vector in vectors() {
        let longest = vector.bodies.iter().map(Vec::len).max().unwrap_or(0);
        for at in 0..=longest {
            let chunker = |body: &[u8]| split_at(body, at.min(body.len()));
            run(&vector, &chunker, &format!("split at {at}"));
        }
    }
}

#[test]
fn every_listed_wpt_format_vector_is_covered() {
    // sse.md §2 lists these; each must have at least one vector above.
    let listed = [
        "bom",
        "bom-2",
        "comments",
        "data-before-final-empty-line",
        "field-data",
        "field-event",
        "field-event-empty",
        "field-id",
        "field-id-2",
        "field-id-3",
        "field-id-null",
        "field-parsing",
        "field-retry",
        "field-retry-bogus",
        "field-retry-empty",
        "field-unknown",
        "leading-space",
        "newlines",
        "null-character",
        "utf-8",
    ];
    let vectors = vectors();
    for name in listed {
        let prefix = format!("format-{name}.");
        assert!(
            vectors.iter().any(|v| v.wpt.starts_with(&prefix)),
            "no vector for format-{name}"
        );
    }
}
