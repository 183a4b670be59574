//! Fuzz target for the request head parser of the lean HTTP/1.1 path
//! (`server/http1.rs`), which reads the start of every plain-HTTP
//! connection before hyper sees it.
//!
//! The input is the start of a connection. Invariants checked:
//! 1. nothing panics;
//! 2. a subscription's head is at most the buffer, ends with a blank line,
//!    and has at most `MAX_HEADERS` fields;
//! 3. it is a `GET` of the hub's path over HTTP/1.1, without a body
//!    (`Content-Length` other than 0, `Transfer-Encoding`), `Upgrade` or
//!    `Expect`, and it keeps the connection open unless a `Connection`
//!    header lists `close`;
//! 4. the head alone parses to the same subscription, and the head
//!    without its last byte is partial (more is read, nothing is decided
//!    on a prefix).
#![no_main]

use herald_hub::fuzzing::{parse_head, Head, MAX_HEADERS};
use herald_hub::HUB_PATH;
use http::{header, Method, Version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Head::Subscription {
        request,
        keep_alive,
        head_len,
    } = parse_head(input)
    else {
        return;
    };
    assert!(
        head_len <= input.len(),
        "the head is longer than the buffer"
    );
    let head = &input[..head_len];
    assert!(
        head.ends_with(b"\n\n") || head.ends_with(b"\n\r\n"),
        "{head:?} ends with no blank line"
    );
    let headers = request.headers();
    assert!(
        headers.len() <= MAX_HEADERS,
        "{} header fields",
        headers.len()
    );
    assert_eq!(request.method(), Method::GET);
    assert_eq!(request.version(), Version::HTTP_11);
    assert_eq!(request.uri().path(), HUB_PATH);
    assert!(
        headers
            .get_all(header::CONTENT_LENGTH)
            .iter()
            .all(|v| v == "0"),
        "a body"
    );
    for name in [header::TRANSFER_ENCODING, header::UPGRADE, header::EXPECT] {
        assert!(!headers.contains_key(&name), "{name} kept");
    }
    let close = headers.get_all(header::CONNECTION).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
    });
    assert_eq!(keep_alive, !close, "keep-alive");

    match parse_head(head) {
        Head::Subscription {
            request: again,
            keep_alive: k,
            head_len: n,
        } => {
            assert_eq!((n, k), (head_len, keep_alive), "the head alone");
            assert_eq!(again.uri(), request.uri());
            assert_eq!(again.headers(), request.headers());
        }
        _ => panic!("the head alone is no subscription"),
    }
    assert!(
        matches!(parse_head(&head[..head_len - 1]), Head::Partial),
        "a prefix decided"
    );
});
