//! The web-platform-tests `eventsource/format-*` vectors, re-expressed as
//! bytes in and events out.
//!
//! Each vector is what one WPT file states: the message it asks the WPT
//! server to send (the percent-encoded `message` parameter of
//! `resources/message.py`, decoded here, or the body of the server script it
//! uses) and the events it asserts. `message.py` sends the message, then
//! `"\n\n"` unless `newline=none`, then one more `"\n"`. Where a WPT test
//! depends on the browser reconnecting (the id tests), the vector has one
//! body per connection, and the parser is `finish`ed between them, exactly
//! as a client does.
//!
//! Two independent checks hold every vector: the standard's algorithm,
//! written out plainly below and sharing nothing with the parser, must give
//! the vector's expected events (so a wrong expectation fails even if the
//! parser shared the mistake); and the parser must give them too, fed whole,
//! byte by byte and split in two at every position. Every WPT file listed
//! must have its vectors, or every test fails.

mod common;

use std::time::Duration;

use common::{byte_by_byte, feed_all, split_at, whole, Seen};
use herald_sse::Parser;

/// The files of WPT's `eventsource/` directory that test the stream format.
/// (The `format-mime-*` files test the `Content-Type` check, which is the
/// client's: see `crates/herald-client/tests/client.rs`.)
const WPT_FORMAT_FILES: [&str; 20] = [
    "format-bom.any.js",
    "format-bom-2.any.js",
    "format-comments.any.js",
    "format-data-before-final-empty-line.any.js",
    "format-field-data.any.js",
    "format-field-event.any.js",
    "format-field-event-empty.any.js",
    "format-field-id.any.js",
    "format-field-id-2.any.js",
    "format-field-id-3.window.js",
    "format-field-id-null.window.js",
    "format-field-parsing.any.js",
    "format-field-retry.any.js",
    "format-field-retry-bogus.any.js",
    "format-field-retry-empty.any.js",
    "format-field-unknown.any.js",
    "format-leading-space.any.js",
    "format-newlines.any.js",
    "format-null-character.any.js",
    "format-utf-8.any.js",
];

struct Vector {
    /// The WPT file, and the subtest when it has several.
    wpt: String,
    /// One body per connection.
    bodies: Vec<Vec<u8>>,
    /// Every event dispatched, across all connections.
    events: Vec<Seen>,
    /// The last event id at the end.
    last_event_id: &'static str,
    /// The reconnection time at the end, in milliseconds.
    retry_ms: Option<u64>,
}

fn seen(event_type: &str, data: &str, id: &str) -> Seen {
    Seen::new(event_type, data, id)
}

fn msg(data: &str, id: &str) -> Seen {
    Seen::new("message", data, id)
}

/// A percent-encoded query value, decoded.
fn percent_decoded(encoded: &str) -> Vec<u8> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
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

/// `message.py`'s body for a `message` parameter as the WPT file writes it.
fn message_query(encoded: &str) -> Vec<u8> {
    message_py(&percent_decoded(encoded), false)
}

/// A vector whose only connection's body is `body`, with no id and no retry.
fn single(wpt: &str, body: Vec<u8>, events: Vec<Seen>) -> Vector {
    Vector {
        wpt: wpt.to_owned(),
        bodies: vec![body],
        events,
        last_event_id: "",
        retry_ms: None,
    }
}

/// `resources/last-event-id.py`: with no `Last-Event-ID` it sends the id
/// (`…` unless `idvalue` is given), `retry: 200` and `hello`; with one, it
/// sends that id back as data.
fn last_event_id_py(idvalue: &[u8]) -> Vec<u8> {
    let mut body = b"id: ".to_vec();
    body.extend_from_slice(idvalue);
    body.extend_from_slice(b"\nretry: 200\ndata: hello\n\n");
    body
}

/// The vectors of one WPT file.
fn vectors_for(wpt: &str) -> Vec<Vector> {
    let long = "x".repeat(2 * 1024);
    match wpt {
        // "1" and "3" are dispatched, "2" is not: one BOM is stripped, a BOM
        // at the start of a later line is part of the field name.
        "format-bom.any.js" => vec![single(
            wpt,
            message_query("%EF%BB%BFdata%3A1%0A%0A%EF%BB%BFdata%3A2%0A%0Adata%3A3"),
            vec![msg("1", ""), msg("3", "")],
        )],
        // "2" and "3", not "1": only the first of two BOMs is stripped.
        "format-bom-2.any.js" => vec![single(
            wpt,
            message_query("%EF%BB%BF%EF%BB%BFdata%3A1%0A%0Adata%3A2%0A%0Adata%3A3"),
            vec![msg("2", ""), msg("3", "")],
        )],
        // One event "1\n2\n3\n4": comments of every shape (`:` then NUL,
        // empty, 2 KiB long) between data lines, CR/LF/CRLF line ends. The
        // message is built in JavaScript, so it is written out here.
        "format-comments.any.js" => vec![single(
            wpt,
            message_py(
                format!(
                    "data:1\r:\0\n:\r\ndata:2\n:{long}\rdata:3\n:data:fail\r:{long}\ndata:4\n"
                )
                .as_bytes(),
                true,
            ),
            vec![msg("1\n2\n3\n4", "")],
        )],
        // The second event is "test1" with an empty lastEventId: the block
        // after the last empty line is never dispatched, and its id is not
        // committed, so the reconnection gets the same body.
        "format-data-before-final-empty-line.any.js" => {
            let body = message_py(b"retry:1000\ndata:test1\n\nid:test\ndata:test2", true);
            vec![Vector {
                wpt: wpt.to_owned(),
                bodies: vec![body.clone(), body],
                events: vec![msg("test1", ""), msg("test1", "")],
                last_event_id: "",
                retry_ms: Some(1000),
            }]
        }
        // "", then "\n", then "test".
        "format-field-data.any.js" => vec![single(
            wpt,
            message_query("data%3A%0A%0Adata%0Adata%0A%0Adata%3Atest"),
            vec![msg("", ""), msg("\n", ""), msg("test", "")],
        )],
        // A `test` event, then a `message`.
        "format-field-event.any.js" => vec![single(
            wpt,
            message_query("event%3Atest%0Adata%3Ax%0A%0Adata%3Ax"),
            vec![seen("test", "x", ""), msg("x", "")],
        )],
        // `event: ` means `message`, with data "data".
        "format-field-event-empty.any.js" => vec![single(
            wpt,
            message_query("event%3A%20%0Adata%3Adata"),
            vec![msg("data", "")],
        )],
        // "hello" with lastEventId "…"; on reconnection the server echoes
        // the Last-Event-ID as data, and that event, which has no id field,
        // still carries "…". The -2 file reconnects twice.
        "format-field-id.any.js" | "format-field-id-2.any.js" => {
            let reconnections = if wpt == "format-field-id.any.js" { 1 } else { 2 };
            let mut bodies = vec![last_event_id_py("…".as_bytes())];
            let mut events = vec![msg("hello", "…")];
            for _ in 0..reconnections {
                bodies.push("data: …\n\n".into());
                events.push(msg("…", "…"));
            }
            vec![Vector {
                wpt: wpt.to_owned(),
                bodies,
                events,
                last_event_id: "…",
                retry_ms: Some(200),
            }]
        }
        // Three subtests over `resources/last-event-id2.py`'s bodies.
        "format-field-id-3.window.js" => vec![
            Vector {
                last_event_id: "1",
                ..single(
                    "format-field-id-3.window.js (persists)",
                    b"id: 1\ndata: 1\n\ndata:2\n\n".to_vec(),
                    vec![msg("1", "1"), msg("2", "1")],
                )
            },
            Vector {
                last_event_id: "2",
                ..single(
                    "format-field-id-3.window.js (changes and persists)",
                    b"id: 1\ndata: 1\n\nid: 2\ndata:2\n\ndata:3\n\n".to_vec(),
                    vec![msg("1", "1"), msg("2", "2"), msg("3", "2")],
                )
            },
            single(
                "format-field-id-3.window.js (resets)",
                b"id: 1\ndata: 1\n\nid:\ndata:2\n\ndata:3\n\n".to_vec(),
                vec![msg("1", "1"), msg("2", ""), msg("3", "")],
            ),
        ],
        // An id containing NUL is ignored: lastEventId stays "", so the
        // reconnection sends no Last-Event-ID and gets "hello" again.
        "format-field-id-null.window.js" => [&b"\0\0"[..], b"x\0", b"\0x", b"x\0x", b" \0"]
            .into_iter()
            .map(|idvalue| {
                let body = last_event_id_py(idvalue);
                Vector {
                    wpt: format!("{wpt} (idvalue {idvalue:?})"),
                    bodies: vec![body.clone(), body],
                    events: vec![msg("hello", ""), msg("hello", "")],
                    last_event_id: "",
                    retry_ms: Some(200),
                }
            })
            .collect(),
        // One event "\0\n 2\n1\n3\n\n4": NUL in data, two spaces keep one,
        // `Data` is unknown (case-sensitive), `data\0` is unknown, a line
        // starting with NUL is unknown, ` data` is unknown. Built in
        // JavaScript, so written out here.
        "format-field-parsing.any.js" => vec![single(
            wpt,
            message_py(
                b"data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\ndata:3\rdata:\r\n data:32\ndata:4\n",
                true,
            ),
            vec![msg("\0\n 2\n1\n3\n\n4", "")],
        )],
        // The reconnection waits 3000 ms: `03000` is decimal, not octal.
        "format-field-retry.any.js" => vec![Vector {
            retry_ms: Some(3000),
            ..single(wpt, message_query("retry%3A03000%0Adata%3Ax"), vec![msg("x", "")])
        }],
        // `1000x` is ignored: the reconnection waits 3000 ms.
        "format-field-retry-bogus.any.js" => vec![Vector {
            retry_ms: Some(3000),
            ..single(
                wpt,
                message_query("retry%3A3000%0Aretry%3A1000x%0Adata%3Ax"),
                vec![msg("x", "")],
            )
        }],
        // A bare `retry` changes nothing; the event is "test".
        "format-field-retry-empty.any.js" => vec![single(
            wpt,
            message_query("retry%0Adata%3Atest"),
            vec![msg("test", "")],
        )],
        // One event "test\n\ntest": unknown names, a line without colon and a
        // comment are skipped; a bare `data` adds an empty line.
        "format-field-unknown.any.js" => vec![single(
            wpt,
            message_query(
                "data%3Atest%0A%20data%0Adata%0Afoobar%3Axxx%0Ajustsometext%0A%3Athisisacommentyay%0Adata%3Atest",
            ),
            vec![msg("test\n\ntest", "")],
        )],
        // One event "\ttest\n\ntest": a tab is kept, `data: ` is empty, a
        // lone CR ends a line.
        "format-leading-space.any.js" => vec![single(
            wpt,
            message_query("data%3A%09test%0Ddata%3A%20%0Adata%3Atest"),
            vec![msg("\ttest\n\ntest", "")],
        )],
        // One event "test\n\ntest": CRLF, LF, CRLF, then CR followed by the
        // server's final LF (one CRLF: one empty line). `newline=none`.
        "format-newlines.any.js" => vec![single(
            wpt,
            message_py(
                &percent_decoded("data%3Atest%0D%0Adata%0Adata%3Atest%0D%0A%0D"),
                true,
            ),
            vec![msg("test\n\ntest", "")],
        )],
        // NUL is kept in data.
        "format-null-character.any.js" => vec![single(
            wpt,
            message_query("data%3A%00%0A%0A"),
            vec![msg("\0", "")],
        )],
        // Always UTF-8, whatever the charset says.
        "format-utf-8.any.js" => vec![single(
            wpt,
            message_query("data%3Aok%E2%80%A6"),
            vec![msg("ok…", "")],
        )],
        other => panic!("no vector for {other}"),
    }
}

fn vectors() -> Vec<Vector> {
    WPT_FORMAT_FILES
        .iter()
        .flat_map(|f| vectors_for(f))
        .collect()
}

/// What the standard's "interpreting an event stream" steps produce for
/// `bodies`, one per connection: each body decoded whole (invalid UTF-8 as
/// U+FFFD, one leading BOM dropped), cut into lines at CRLF, LF or CR, each
/// line applied in turn; what follows the last line ending, and a block not
/// ended by an empty line, are dropped with the connection. Each connection
/// starts from the last id committed by a dispatch, as browsers do (WPT's
/// data-before-final-empty-line test asserts it).
fn standard(bodies: &[Vec<u8>]) -> (Vec<Seen>, String, Option<Duration>) {
    let mut events = Vec::new();
    let mut last_event_id = String::new();
    let mut retry = None;
    for body in bodies {
        let decoded = String::from_utf8_lossy(body);
        let mut rest = decoded.strip_prefix('\u{FEFF}').unwrap_or(&decoded);
        let mut data = String::new();
        let mut event_type = String::new();
        let mut id_buffer = last_event_id.clone();
        while let Some(end) = rest.find(['\r', '\n']) {
            let line = &rest[..end];
            rest = &rest[end
                + if rest[end..].starts_with("\r\n") {
                    2
                } else {
                    1
                }..];
            if line.is_empty() {
                last_event_id.clone_from(&id_buffer);
                if !data.is_empty() {
                    data.pop();
                    let name = if event_type.is_empty() {
                        "message"
                    } else {
                        &event_type
                    };
                    events.push(Seen::new(name, &data, &last_event_id));
                }
                data.clear();
                event_type.clear();
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (name, value) = match line.split_once(':') {
                Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
                None => (line, ""),
            };
            match name {
                "event" => event_type = value.to_owned(),
                "data" => {
                    data.push_str(value);
                    data.push('\n');
                }
                "id" if !value.contains('\0') => id_buffer = value.to_owned(),
                "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                    retry = Some(Duration::from_millis(value.parse().unwrap()));
                }
                _ => {}
            }
        }
    }
    (events, last_event_id, retry)
}

#[test]
fn wpt_expectations_are_what_the_standard_gives() {
    for vector in vectors() {
        let (events, last_event_id, retry) = standard(&vector.bodies);
        assert_eq!(events, vector.events, "{}: events", vector.wpt);
        assert_eq!(last_event_id, vector.last_event_id, "{}", vector.wpt);
        assert_eq!(
            retry,
            vector.retry_ms.map(Duration::from_millis),
            "{}",
            vector.wpt
        );
    }
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
