//! The `stream` feature: `EventStream` over a `futures` stream of chunks.

use std::convert::Infallible;

use futures::executor::block_on;
use futures::stream::{self, StreamExt};
use herald_sse::{EventStream, Limits, ParseError, Parser, StreamError};

#[test]
fn collects_events_from_a_stream_of_chunks_split_anywhere() {
    let body = b"\xEF\xBB\xBFid: 1\nevent: a\ndata: x\r\n\r\ndata: y\r\rdata: dropped";
    // One byte per chunk, the hardest cutting.
    let chunks: Vec<Result<Vec<u8>, Infallible>> = body.iter().map(|b| Ok(vec![*b])).collect();
    let mut events = EventStream::new(stream::iter(chunks));
    let got: Vec<_> = block_on(async {
        let mut got = Vec::new();
        while let Some(item) = events.next().await {
            let e = item.expect("no error");
            got.push((
                e.event_type().to_owned(),
                e.data().to_owned(),
                e.last_event_id().to_owned(),
            ));
        }
        got
    });
    assert_eq!(
        got,
        vec![
            ("a".to_owned(), "x".to_owned(), "1".to_owned()),
            ("message".to_owned(), "y".to_owned(), "1".to_owned()),
        ]
    );
    assert_eq!(events.parser().last_event_id(), "1");
}

#[test]
fn transport_errors_are_passed_through_and_the_stream_goes_on() {
    let chunks: Vec<Result<&[u8], &str>> =
        vec![Ok(b"data: a\n\n"), Err("reset"), Ok(b"data: b\n\n")];
    let got: Vec<_> = block_on(EventStream::new(stream::iter(chunks)).collect());
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[0].as_ref().map(|e| e.data().to_owned()).ok(),
        Some("a".to_owned())
    );
    assert!(matches!(got[1], Err(StreamError::Transport("reset"))));
    assert_eq!(
        got[2].as_ref().map(|e| e.data().to_owned()).ok(),
        Some("b".to_owned())
    );
}

#[test]
fn parse_errors_are_reported_with_a_configured_parser() {
    let chunks: Vec<Result<&[u8], Infallible>> = vec![Ok(b"data: far too long\n\ndata: ok\n\n")];
    let parser = Parser::with_limits(Limits::default().max_line(8));
    let got: Vec<_> = block_on(EventStream::with_parser(stream::iter(chunks), parser).collect());
    assert_eq!(got.len(), 2);
    assert!(matches!(
        got[0],
        Err(StreamError::Parse(ParseError::LineTooLong { limit: 8 }))
    ));
    assert_eq!(
        got[1].as_ref().map(|e| e.data().to_owned()).ok(),
        Some("ok".to_owned())
    );
}
