//! The redb history backend: durability across reopen, retention by
//! events, bytes and age, bounded file size, id lookup, and clear errors
//! for unusable files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use herald_hub::history::redb::{Durability, OpenError, RedbOptions, Retention, FILE_NAME};
use herald_hub::history::{Entry, History, NewEntry, RedbHistory};

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("herald-redb-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn entry(id: &str, data_len: usize) -> NewEntry {
    let data = "d".repeat(data_len);
    NewEntry {
        id: id.to_owned(),
        topics: vec!["https://ex.com/t".into(), "alt".into()],
        private: id.ends_with('p'),
        frame: herald_sse::Frame::new()
            .id(id)
            .data(&data)
            .encode()
            .unwrap(),
    }
}

fn options(retention: Retention) -> RedbOptions {
    RedbOptions {
        retention,
        ..RedbOptions::default()
    }
}

fn ids(entries: &[Arc<Entry>]) -> Vec<String> {
    entries.iter().map(|e| e.id.clone()).collect()
}

async fn append_n(h: &RedbHistory, range: std::ops::Range<usize>, data_len: usize) {
    for chunk in range.collect::<Vec<_>>().chunks(100) {
        h.append(
            chunk
                .iter()
                .map(|i| entry(&format!("e{i}"), data_len))
                .collect(),
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn entries_survive_reopen_and_sequence_numbers_continue() {
    let dir = TempDir::new("reopen");
    {
        let h = RedbHistory::open(&dir.0, RedbOptions::default()).unwrap();
        let stored = h
            .append(vec![entry("a", 3), entry("b-p", 3)])
            .await
            .unwrap();
        assert_eq!(stored.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
    }
    let h = RedbHistory::open(&dir.0, RedbOptions::default()).unwrap();
    assert_eq!(h.stats().events, 2);
    assert_eq!(h.stats().last_seq, 2);
    let all = h.read_after(0, 10).await.unwrap();
    assert_eq!(ids(&all), vec!["a", "b-p"]);
    assert!(all[1].private);
    assert_eq!(all[0].topics, vec!["https://ex.com/t", "alt"]);
    assert_eq!(all[0].frame, Bytes::from("id: a\ndata: ddd\n\n"));
    assert_eq!(h.seq_of("b-p").await.unwrap(), Some(2));
    let next = h.append(vec![entry("c", 1)]).await.unwrap();
    assert_eq!(next[0].seq, 3);
}

#[tokio::test]
async fn duplicate_ids_resolve_to_the_earliest_and_unknown_ids_to_none() {
    let dir = TempDir::new("dups");
    let h = RedbHistory::open(&dir.0, RedbOptions::default()).unwrap();
    h.append(vec![entry("x", 1), entry("y", 1), entry("x", 1)])
        .await
        .unwrap();
    assert_eq!(h.seq_of("x").await.unwrap(), Some(1));
    assert_eq!(h.seq_of("nope").await.unwrap(), None);
}

#[tokio::test]
async fn reads_from_disk_equal_reads_from_the_cache() {
    let dir = TempDir::new("cache");
    let cached = {
        let h = RedbHistory::open(&dir.0, RedbOptions::default()).unwrap();
        append_n(&h, 0..300, 10).await;
        h.read_after(17, 100).await.unwrap()
    };
    let uncached = RedbHistory::open(
        &dir.0,
        RedbOptions {
            cache_events: 0,
            ..RedbOptions::default()
        },
    )
    .unwrap();
    let from_disk = uncached.read_after(17, 100).await.unwrap();
    assert_eq!(from_disk.len(), 100);
    assert_eq!(
        from_disk.iter().map(|e| e.as_ref()).collect::<Vec<_>>(),
        cached.iter().map(|e| e.as_ref()).collect::<Vec<_>>()
    );
    // A small cache still answers older positions from disk.
    let small = {
        drop(uncached);
        RedbHistory::open(
            &dir.0,
            RedbOptions {
                cache_events: 10,
                ..RedbOptions::default()
            },
        )
        .unwrap()
    };
    assert_eq!(
        ids(&small.read_after(0, 2).await.unwrap()),
        vec!["e0", "e1"]
    );
    assert_eq!(ids(&small.read_after(299, 5).await.unwrap()), vec!["e299"]);
}

#[tokio::test]
async fn retention_by_events_keeps_the_newest_and_forgets_evicted_ids() {
    let dir = TempDir::new("count");
    let h = RedbHistory::open(
        &dir.0,
        options(Retention {
            max_events: Some(100),
            ..Retention::default()
        }),
    )
    .unwrap();
    append_n(&h, 0..1000, 10).await;
    assert_eq!(h.stats().events, 100);
    let all = h.read_after(0, 1000).await.unwrap();
    assert_eq!(all.len(), 100);
    assert_eq!(all[0].id, "e900");
    assert_eq!(all[99].id, "e999");
    assert_eq!(h.seq_of("e899").await.unwrap(), None);
    assert_eq!(h.seq_of("e900").await.unwrap(), Some(901));
    // Positions before the oldest held read from the oldest.
    assert_eq!(h.read_after(5, 1).await.unwrap()[0].id, "e900");
}

#[tokio::test]
async fn retention_by_bytes() {
    let dir = TempDir::new("bytes");
    let max = 64 * 1024;
    let h = RedbHistory::open(
        &dir.0,
        options(Retention {
            max_bytes: Some(max),
            ..Retention::default()
        }),
    )
    .unwrap();
    append_n(&h, 0..500, 1000).await;
    let stats = h.stats();
    assert!(stats.bytes <= max, "{stats:?}");
    assert!(stats.events >= 50 && stats.events < 70, "{stats:?}");
    let held = h.read_after(0, 1000).await.unwrap();
    assert_eq!(held.len() as u64, stats.events);
    assert_eq!(held.last().unwrap().id, "e499");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_age_runs_continuously_even_without_publishes() {
    let dir = TempDir::new("age");
    let h = RedbHistory::open(
        &dir.0,
        options(Retention {
            max_age: Some(Duration::from_millis(300)),
            ..Retention::default()
        }),
    )
    .unwrap();
    append_n(&h, 0..50, 10).await;
    assert_eq!(h.stats().events, 50);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while h.stats().events > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "old events were never removed: {:?}",
            h.stats()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(h.read_after(0, 10).await.unwrap().is_empty());
    assert_eq!(h.seq_of("e1").await.unwrap(), None);
    // New events are kept, with sequence numbers that go on.
    let stored = h.append(vec![entry("fresh", 1)]).await.unwrap();
    assert_eq!(stored[0].seq, 51);
    assert_eq!(ids(&h.read_after(0, 10).await.unwrap()), vec!["fresh"]);
}

fn file_size(dir: &Path) -> u64 {
    std::fs::metadata(dir.join(FILE_NAME)).unwrap().len()
}

#[tokio::test]
async fn the_file_stays_bounded_under_endless_publishing() {
    let dir = TempDir::new("bounded");
    let h = RedbHistory::open(
        &dir.0,
        options(Retention {
            max_events: Some(1000),
            ..Retention::default()
        }),
    )
    .unwrap();
    // 1000 events of ~1 KiB is ~1 MiB of live data.
    append_n(&h, 0..5_000, 1024).await;
    let after_warmup = file_size(&dir.0);
    append_n(&h, 5_000..30_000, 1024).await;
    let after_more = file_size(&dir.0);
    assert_eq!(h.stats().events, 1000);
    // 25 MiB more was written; freed pages must have been reused.
    assert!(
        after_more <= after_warmup.max(4 << 20) * 2,
        "grew from {after_warmup} to {after_more} bytes"
    );
    assert!(
        after_more < 16 << 20,
        "{after_more} bytes for ~1 MiB of events"
    );
}

#[tokio::test]
async fn periodic_durability_still_stores_everything_it_acknowledges_across_a_clean_close() {
    let dir = TempDir::new("periodic");
    {
        let h = RedbHistory::open(
            &dir.0,
            RedbOptions {
                durability: Durability::Periodic(Duration::from_millis(50)),
                ..RedbOptions::default()
            },
        )
        .unwrap();
        append_n(&h, 0..250, 10).await;
    }
    let h = RedbHistory::open(&dir.0, RedbOptions::default()).unwrap();
    assert_eq!(h.stats().events, 250);
}

#[tokio::test]
async fn a_second_opener_is_told_the_file_is_in_use() {
    let dir = TempDir::new("inuse");
    let _first = RedbHistory::open(&dir.0, RedbOptions::default()).unwrap();
    let err = RedbHistory::open(&dir.0, RedbOptions::default()).unwrap_err();
    assert!(matches!(err, OpenError::InUse { .. }), "{err}");
    assert!(err.to_string().contains("--data-dir"), "{err}");
}

#[tokio::test]
async fn an_unreadable_file_is_a_clear_error_and_is_never_deleted() {
    let dir = TempDir::new("corrupt");
    std::fs::create_dir_all(&dir.0).unwrap();
    let garbage: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(dir.0.join(FILE_NAME), &garbage).unwrap();
    let err = RedbHistory::open(&dir.0, RedbOptions::default()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("unreadable") && message.contains("backup"),
        "{message}"
    );
    assert_eq!(
        std::fs::read(dir.0.join(FILE_NAME)).unwrap(),
        garbage,
        "the file is untouched"
    );
}

#[tokio::test]
async fn a_data_dir_that_cannot_be_created_is_a_clear_error() {
    let dir = TempDir::new("notadir");
    std::fs::write(&dir.0, b"a file, not a directory").unwrap();
    let err = RedbHistory::open(&dir.0.join("sub"), RedbOptions::default()).unwrap_err();
    assert!(matches!(err, OpenError::Io { .. }), "{err}");
    assert!(err.to_string().contains("--data-dir"), "{err}");
    let _ = std::fs::remove_file(&dir.0);
}
