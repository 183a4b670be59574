//! What the hub's TLS record keys cost per record (`server/tls/record_keys.rs`):
//! the hub keeps each connection's traffic keys as raw bytes and builds
//! ring's key for every record, where rustls's ring provider keeps ring's
//! expanded key (560 bytes a direction) for the connection's life. This
//! measures a record sealed both ways, for each TLS 1.3 AEAD, at the size
//! of a small event (200 bytes) and of a full record (16 KiB).
//!
//! `cargo bench -p herald-hub --bench record_keys`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};

fn seal(c: &mut Criterion) {
    let algorithms = [
        ("aes-128-gcm", &aead::AES_128_GCM),
        ("aes-256-gcm", &aead::AES_256_GCM),
        ("chacha20-poly1305", &aead::CHACHA20_POLY1305),
    ];
    let raw = [7u8; 32];
    let mut group = c.benchmark_group("seal_one_record");
    for (name, algorithm) in algorithms {
        let raw = &raw[..algorithm.key_len()];
        for size in [200usize, 16 * 1024] {
            group.throughput(Throughput::Bytes(size as u64));
            let mut record = Vec::with_capacity(size + 17);
            let kept = LessSafeKey::new(UnboundKey::new(algorithm, raw).unwrap());
            group.bench_function(BenchmarkId::new(format!("{name}/kept-key"), size), |b| {
                b.iter(|| {
                    record.clear();
                    record.resize(size, b'x');
                    let nonce = Nonce::assume_unique_for_key([1; 12]);
                    kept.seal_in_place_append_tag(nonce, Aad::from([0u8; 5]), &mut record)
                        .unwrap();
                })
            });
            group.bench_function(BenchmarkId::new(format!("{name}/raw-key"), size), |b| {
                b.iter(|| {
                    record.clear();
                    record.resize(size, b'x');
                    let key = LessSafeKey::new(UnboundKey::new(algorithm, raw).unwrap());
                    let nonce = Nonce::assume_unique_for_key([1; 12]);
                    key.seal_in_place_append_tag(nonce, Aad::from([0u8; 5]), &mut record)
                        .unwrap();
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, seal);
criterion_main!(benches);
