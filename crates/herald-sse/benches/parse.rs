//! Parsing throughput: herald-sse against `eventsource-stream` 0.2 and
//! `sse-parse` 0.1, on the same corpora cut into the same chunks.
//!
//! Corpora are generated here (cheap, so `cargo test --all-targets`, which
//! runs each benchmark once, stays quick):
//! * `small_json`: many ~150-byte JSON events with id and type;
//! * `large_64k`: events whose data is one 64 KiB line;
//! * `many_lines`: events of 64 short data lines each;
//! * `cr_only`: small events with lone-CR line endings.
//!
//! Each is fed in 4 KiB chunks; `small_json_1b` feeds a smaller corpus one
//! byte at a time. Throughput is in bytes (criterion prints MB/s); the
//! number of events per corpus is printed once so events/s can be derived.
//! Run with `cargo bench -p herald-sse --bench parse`.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use eventsource_stream::Eventsource;
use futures::executor::block_on;
use futures::stream::{self, StreamExt};

/// `n` JSON events of about 150 bytes each, LF line endings.
fn small_json(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 160);
    for i in 0..n {
        out.extend_from_slice(
            format!(
                "id: {i}\nevent: update\ndata: {{\"id\":{i},\"topic\":\"/books/{}\",\"price\":{}.{:02},\"status\":\"available\",\"tags\":[\"a\",\"b\"]}}\n\n",
                i % 997,
                i % 100,
                i % 97
            )
            .as_bytes(),
        );
    }
    out
}

/// `n` events whose data is a single 64 KiB line.
fn large(n: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..64 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let mut out = Vec::with_capacity(n * (payload.len() + 32));
    for i in 0..n {
        out.extend_from_slice(format!("id: {i}\ndata: ").as_bytes());
        out.extend_from_slice(&payload);
        out.extend_from_slice(b"\n\n");
    }
    out
}

/// `n` events of 64 data lines of about 24 bytes each.
fn many_lines(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        for l in 0..64 {
            out.extend_from_slice(format!("data: line {l:02} of event {i:06}\n").as_bytes());
        }
        out.push(b'\n');
    }
    out
}

/// `n` small events with lone-CR line endings.
fn cr_only(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.extend_from_slice(
            format!("id: {i}\revent: tick\rdata: {{\"seq\":{i},\"ok\":true}}\r\r").as_bytes(),
        );
    }
    out
}

fn chunks(corpus: &[u8], size: usize) -> Vec<&[u8]> {
    corpus.chunks(size).collect()
}

fn herald(chunks: &[&[u8]]) -> usize {
    let mut parser = herald_sse::Parser::new();
    let mut n = 0;
    for chunk in chunks {
        parser.feed(chunk);
        while let Some(event) = parser.next_event() {
            black_box(event.ok());
            n += 1;
        }
    }
    n
}

fn sse_parse(chunks: &[&[u8]]) -> usize {
    let mut parser = sse_parse::SseParser::new();
    let mut n = 0;
    for chunk in chunks {
        parser.feed(chunk);
        while let Some(event) = parser.next_event() {
            black_box(event);
            n += 1;
        }
    }
    n
}

fn eventsource_stream(chunks: &[&[u8]]) -> usize {
    let body = stream::iter(chunks.iter().map(|c| Ok::<&[u8], Infallible>(c)));
    let mut events = body.eventsource();
    block_on(async {
        let mut n = 0;
        while let Some(event) = events.next().await {
            black_box(event.ok());
            n += 1;
        }
        n
    })
}

type Parse = fn(&[&[u8]]) -> usize;

const PARSERS: [(&str, Parse); 3] = [
    ("herald-sse", herald),
    ("sse-parse", sse_parse),
    ("eventsource-stream", eventsource_stream),
];

fn bench_parsers(c: &mut Criterion) {
    let corpora: Vec<(&str, Vec<u8>, usize)> = vec![
        ("small_json", small_json(8 * 1024), 4096),
        ("large_64k", large(16), 4096),
        ("many_lines", many_lines(512), 4096),
        ("cr_only", cr_only(16 * 1024), 4096),
        ("small_json_1b", small_json(256), 1),
    ];
    for (name, corpus, chunk_size) in &corpora {
        let chunks = chunks(corpus, *chunk_size);
        // All three must agree on the event count, or the comparison is
        // meaningless; print it for events/s.
        let expected = herald(&chunks);
        for (parser, parse) in PARSERS {
            let got = parse(&chunks);
            // eventsource-stream holds a final lone CR back waiting for a
            // possible LF, so it never dispatches the last CR-ended event
            // of a stream (the spec says it should): allow exactly that.
            let known_gap = parser == "eventsource-stream" && *name == "cr_only";
            assert!(
                got == expected || (known_gap && got + 1 == expected),
                "{parser} on {name}: {got} events, herald-sse {expected}"
            );
        }
        eprintln!(
            "corpus {name}: {} bytes, {expected} events, {chunk_size}-byte chunks",
            corpus.len()
        );

        let mut group = c.benchmark_group(format!("parse/{name}"));
        group.throughput(Throughput::Bytes(corpus.len() as u64));
        group.sample_size(20);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(2));
        for (parser, parse) in PARSERS {
            group.bench_with_input(BenchmarkId::from_parameter(parser), &chunks, |b, chunks| {
                b.iter(|| parse(chunks))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_parsers);
criterion_main!(benches);
