//! Encoding throughput: herald-sse's `Frame::encode` against axum's
//! `axum::response::sse::Event`.
//!
//! axum only exposes an event's bytes through the body of an `Sse`
//! response, so its side runs the events through that body and collects
//! each frame; herald-sse encodes each event to its own `Bytes`, the same
//! unit the hub shares among subscribers. Both build every event from the
//! same borrowed strings. Throughput is in events (criterion prints
//! elements/s). Run with `cargo bench -p herald-sse --bench encode`.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use axum::response::sse::{Event as AxumEvent, Sse};
use axum::response::IntoResponse;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures::executor::block_on;
use futures::stream;
use http_body_util::BodyExt;

struct Input {
    id: String,
    data: String,
}

fn small_json(n: usize) -> Vec<Input> {
    (0..n)
        .map(|i| Input {
            id: i.to_string(),
            data: format!(
                "{{\"id\":{i},\"topic\":\"/books/{}\",\"price\":{}.{:02},\"status\":\"available\"}}",
                i % 997,
                i % 100,
                i % 97
            ),
        })
        .collect()
}

fn multi_line(n: usize) -> Vec<Input> {
    (0..n)
        .map(|i| Input {
            id: i.to_string(),
            data: (0..16)
                .map(|l| format!("line {l} of {i}"))
                .collect::<Vec<_>>()
                .join("\n"),
        })
        .collect()
}

fn large(n: usize) -> Vec<Input> {
    let payload: String = (0..64 * 1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    (0..n)
        .map(|i| Input {
            id: i.to_string(),
            data: payload.clone(),
        })
        .collect()
}

fn herald(inputs: &[Input]) -> usize {
    let mut bytes = 0;
    for input in inputs {
        let frame = herald_sse::Frame::new()
            .event("update")
            .id(&input.id)
            .data(&input.data)
            .encode()
            .expect("valid event");
        bytes += frame.len();
        black_box(frame);
    }
    bytes
}

fn axum(inputs: &[Input]) -> usize {
    let events = inputs.iter().map(|input| {
        Ok::<_, Infallible>(
            AxumEvent::default()
                .event("update")
                .id(&input.id)
                .data(&input.data),
        )
    });
    // `Sse` wants a `'static + Send` stream, so the iterator is collected.
    let events: Vec<_> = events.collect();
    let mut body = Sse::new(stream::iter(events)).into_response().into_body();
    block_on(async {
        let mut bytes = 0;
        while let Some(frame) = body.frame().await {
            let data = frame
                .expect("infallible")
                .into_data()
                .expect("a data frame");
            bytes += data.len();
            black_box(data);
        }
        bytes
    })
}

fn bench_encoders(c: &mut Criterion) {
    let sets = [
        ("small_json", small_json(1000)),
        ("multi_line", multi_line(1000)),
        ("large_64k", large(16)),
    ];
    for (name, inputs) in &sets {
        // Both must write the same number of bytes (same field order aside).
        assert_eq!(
            herald(inputs),
            axum(inputs),
            "encoded sizes differ on {name}"
        );
        let mut group = c.benchmark_group(format!("encode/{name}"));
        group.throughput(Throughput::Elements(inputs.len() as u64));
        group.sample_size(20);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(2));
        group.bench_with_input(BenchmarkId::from_parameter("herald-sse"), inputs, |b, i| {
            b.iter(|| herald(i))
        });
        group.bench_with_input(BenchmarkId::from_parameter("axum"), inputs, |b, i| {
            b.iter(|| axum(i))
        });
        group.finish();
    }
}

criterion_group!(benches, bench_encoders);
criterion_main!(benches);
