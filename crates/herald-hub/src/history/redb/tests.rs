//! Healing, with I/O errors injected through redb's `StorageBackend`: a
//! file backend that fails on demand, the way a full disk or a failing
//! device does. The delays between reopens are stepped through
//! (`Fault::retry_now`), never slept.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use redb::backends::FileBackend;
use redb::{BackendError, Database, ReadableDatabase, ReadableTable, StorageBackend};

use super::heal::Opener;
use super::{Durability, RedbHistory, RedbOptions, EVENTS, FILE_NAME};
use crate::history::{Entry, History, NewEntry};

/// What the injected backend does wrong, shared by every database the
/// opener makes (so a reopen meets the same disk).
#[derive(Debug, Default)]
struct Faults {
    /// Every write, resize and fsync fails, as on a full disk.
    full: AtomicBool,
    /// The next fsync fails (then this clears): whatever was written
    /// before it, the commit header included, stays in the file.
    next_sync: AtomicBool,
    /// Every read fails, as on a failing device.
    reads: AtomicBool,
}

fn no_space() -> io::Error {
    io::Error::new(
        io::ErrorKind::StorageFull,
        "No space left on device (injected)",
    )
}

/// redb's file backend, failing as [`Faults`] says.
#[derive(Debug)]
struct Faulty {
    file: FileBackend,
    faults: Arc<Faults>,
}

impl Faulty {
    fn check_write(&self) -> io::Result<()> {
        if self.faults.full.load(Ordering::SeqCst) {
            return Err(no_space());
        }
        Ok(())
    }
}

impl StorageBackend for Faulty {
    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        if self.faults.reads.load(Ordering::SeqCst) {
            return Err(io::Error::other("read failed (injected)"));
        }
        self.file.read(offset, out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check_write()?;
        self.file.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.check_write()?;
        if self.faults.next_sync.swap(false, Ordering::SeqCst) {
            return Err(io::Error::other("fsync failed (injected)"));
        }
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check_write()?;
        self.file.write(offset, data)
    }

    fn close(&self) -> io::Result<()> {
        self.file.close()
    }

    // The file's locks, as redb's own backend takes them: a second opener
    // is refused, and a reopen must release them first.
    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}

fn faulty_opener(faults: &Arc<Faults>) -> Opener {
    faulty_opener_caching(faults, None)
}

/// With `cache_bytes`, redb's page cache has that size (0: every read
/// reaches the backend).
fn faulty_opener_caching(faults: &Arc<Faults>, cache_bytes: Option<usize>) -> Opener {
    let faults = Arc::clone(faults);
    Opener::new(move |path| {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut builder = Database::builder();
        if let Some(bytes) = cache_bytes {
            builder.set_cache_size(bytes);
        }
        builder.create_with_backend(Faulty {
            file: FileBackend::new(file)?,
            faults: Arc::clone(&faults),
        })
    })
}

/// A fresh directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("herald-heal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn entry(id: &str) -> NewEntry {
    NewEntry {
        id: id.to_owned(),
        topics: vec!["https://ex.com/t".into()],
        private: false,
        frame: Bytes::from(format!("id: {id}\ndata: {}\n\n", "d".repeat(100))),
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

fn append(h: &RedbHistory, ids: &[&str]) -> Result<Vec<Arc<Entry>>, crate::history::HistoryError> {
    h.inner
        .append_blocking(ids.iter().map(|id| entry(id)).collect())
}

fn ids_and_seqs(entries: &[Arc<Entry>]) -> Vec<(String, u64)> {
    entries.iter().map(|e| (e.id.clone(), e.seq)).collect()
}

fn expected(ids: &[&str]) -> Vec<(String, u64)> {
    ids.iter()
        .zip(1..)
        .map(|(id, seq)| (id.to_string(), seq))
        .collect()
}

/// Makes the planned reopen due now.
fn retry_now(h: &RedbHistory) {
    h.inner
        .writer()
        .fault
        .as_mut()
        .expect("a reopen is planned")
        .retry_now();
}

/// Everything the file holds, read with a plain redb handle after the
/// history is gone: (id, seq) in order.
fn file_contents(dir: &Path) -> Vec<(String, u64)> {
    let db = Database::create(dir.join(FILE_NAME)).unwrap();
    let txn = db.begin_read().unwrap();
    let events = txn.open_table(EVENTS).unwrap();
    let mut out = Vec::new();
    for item in events.iter().unwrap() {
        let (seq, value) = item.unwrap();
        let entry = super::codec::decode(seq.value(), value.value()).unwrap();
        out.push((entry.id, entry.seq));
    }
    out
}

#[test]
fn a_full_disk_refuses_writes_clearly_then_heals_with_nothing_lost() {
    let dir = TempDir::new("full");
    let faults = Arc::new(Faults::default());
    let options = RedbOptions {
        // Small, so that older reads go to the disk.
        cache_events: 4,
        ..RedbOptions::default()
    };
    let h = RedbHistory::open_with(&dir.0, options, faulty_opener(&faults)).unwrap();
    let before = ["a0", "a1", "a2", "a3", "a4", "a5"];
    append(&h, &before).unwrap();

    faults.full.store(true, Ordering::SeqCst);
    let refused = append(&h, &["refused"]).unwrap_err().to_string();
    assert!(
        refused.contains("cannot write")
            && refused.contains("No space left on device")
            && refused.contains("reopens the file"),
        "{refused}"
    );
    // Until the reopen is due, writes are refused at once, with the cause.
    let again = append(&h, &["refused-too"]).unwrap_err().to_string();
    assert!(again.contains("No space left on device"), "{again}");
    // Reads: the newest from the cache; older ones need the file, which
    // the latched database serves from redb's page cache when it holds
    // them, and else refuses with a clear error.
    let newest = block_on(h.read_after(3, 10)).unwrap();
    assert_eq!(ids_and_seqs(&newest), expected(&before)[3..]);
    match block_on(h.read_after(0, 10)) {
        Ok(older) => assert_eq!(ids_and_seqs(&older), expected(&before)),
        Err(e) => assert!(e.to_string().contains("cannot read"), "{e}"),
    }
    match block_on(h.seq_of("a0")) {
        Ok(seq) => assert_eq!(seq, Some(1)),
        Err(e) => assert!(e.to_string().contains("cannot read"), "{e}"),
    }

    // Still full at the retry: reopening fails, and the next one waits
    // longer.
    retry_now(&h);
    let still = append(&h, &["refused-again"]).unwrap_err().to_string();
    assert!(still.contains("reopening failed"), "{still}");
    assert_eq!(h.inner.writer().failures, 2);
    assert_eq!(h.stats().reopens, 0);

    // Space is back: the next write after the delay reopens and succeeds.
    faults.full.store(false, Ordering::SeqCst);
    retry_now(&h);
    let stored = append(&h, &["after"]).unwrap();
    assert_eq!(ids_and_seqs(&stored), vec![("after".to_owned(), 7)]);
    let stats = h.stats();
    assert_eq!(
        (stats.reopens, stats.last_seq, stats.events),
        (1, 7, 7),
        "{stats:?}"
    );
    assert_eq!(h.inner.writer().failures, 0);
    let all = block_on(h.read_after(0, 100)).unwrap();
    let mut want = before.to_vec();
    want.push("after");
    assert_eq!(ids_and_seqs(&all), expected(&want));
    assert_eq!(block_on(h.seq_of("refused")).unwrap(), None);
    assert_eq!(block_on(h.seq_of("a0")).unwrap(), Some(1));
    assert_eq!(block_on(h.read_after(4, 100)).unwrap().len(), 3);
    drop(h);
    assert_eq!(file_contents(&dir.0), expected(&want));
}

/// The fsync of a commit fails after its header was written: the append
/// reports an error, yet the commit is in the file.
fn fail_after_the_header(dir: &Path, faults: &Arc<Faults>) -> RedbHistory {
    let h = RedbHistory::open_with(dir, RedbOptions::default(), faulty_opener(faults)).unwrap();
    append(&h, &["b0", "b1", "b2"]).unwrap();
    faults.next_sync.store(true, Ordering::SeqCst);
    assert!(append(&h, &["ghost", "ghost2"]).is_err());
    h
}

#[test]
fn a_commit_that_reported_an_error_is_removed_when_it_reached_the_file() {
    // The premise: such a commit does reach the file.
    let dir = TempDir::new("ghost-premise");
    let faults = Arc::new(Faults::default());
    drop(fail_after_the_header(&dir.0, &faults));
    assert_eq!(
        file_contents(&dir.0),
        expected(&["b0", "b1", "b2", "ghost", "ghost2"])
    );

    // Healing removes it: its publishers were refused, and one retrying
    // gets the next position, with its id held once.
    let dir = TempDir::new("ghost");
    let h = fail_after_the_header(&dir.0, &faults);
    retry_now(&h);
    let retried = append(&h, &["ghost"]).unwrap();
    assert_eq!(ids_and_seqs(&retried), vec![("ghost".to_owned(), 4)]);
    assert_eq!(h.stats().events, 4);
    let want = ["b0", "b1", "b2", "ghost"];
    assert_eq!(
        ids_and_seqs(&block_on(h.read_after(0, 100)).unwrap()),
        expected(&want)
    );
    assert_eq!(block_on(h.seq_of("ghost")).unwrap(), Some(4));
    assert_eq!(block_on(h.seq_of("ghost2")).unwrap(), None);
    let stats = h.stats();
    drop(h);
    assert_eq!(file_contents(&dir.0), expected(&want));
    // The byte count stayed the file's.
    let reopened = RedbHistory::open(&dir.0, RedbOptions::default()).unwrap();
    assert_eq!(reopened.stats().bytes, stats.bytes);
}

/// Periodic durability that never comes due during a test. These tests
/// run outside a runtime, so no upkeep fsyncs behind their back.
fn unsynced(cache_events: usize) -> RedbOptions {
    RedbOptions {
        durability: Durability::Periodic(std::time::Duration::from_secs(3600)),
        cache_events,
        ..RedbOptions::default()
    }
}

/// Appends `p0`..`p9` without fsync (redb keeps them in memory), then the
/// fsync the upkeep owes fails: the reopened file has none of them.
fn lose_unsynced(dir: &Path, faults: &Arc<Faults>, cache_events: usize) -> RedbHistory {
    let h = RedbHistory::open_with(dir, unsynced(cache_events), faulty_opener(faults)).unwrap();
    for i in 0..10 {
        append(&h, &[format!("p{i}").as_str()]).unwrap();
    }
    assert_eq!(h.durable_seq(), 0);
    faults.full.store(true, Ordering::SeqCst);
    let err = h.inner.maintain_blocking().unwrap_err().to_string();
    assert!(err.contains("No space left on device"), "{err}");
    assert!(append(&h, &["refused"]).is_err());
    faults.full.store(false, Ordering::SeqCst);
    h
}

#[test]
fn acknowledged_events_not_yet_fsynced_are_written_again_from_memory() {
    let ps: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
    let mut want: Vec<&str> = ps.iter().map(String::as_str).collect();
    // The premise: a reopen finds none of them in the file.
    let dir = TempDir::new("unsynced-premise");
    let faults = Arc::new(Faults::default());
    drop(lose_unsynced(&dir.0, &faults, 100));
    assert_eq!(file_contents(&dir.0), vec![]);

    let dir = TempDir::new("unsynced");
    let h = lose_unsynced(&dir.0, &faults, 100);
    retry_now(&h);
    let stored = append(&h, &["after"]).unwrap();
    assert_eq!(stored[0].seq, 11);
    assert_eq!(h.durable_seq(), 10, "the reopen wrote them durably");
    want.push("after");
    assert_eq!(
        ids_and_seqs(&h.inner.read_from_disk(0, 100).unwrap()),
        expected(&want)
    );
    assert_eq!(h.stats().events, 11);
    drop(h);
    assert_eq!(file_contents(&dir.0), expected(&want));
}

#[test]
fn unsynced_events_the_cache_no_longer_holds_are_lost_but_their_positions_never_reused() {
    let dir = TempDir::new("unsynced-lost");
    let faults = Arc::new(Faults::default());
    let h = lose_unsynced(&dir.0, &faults, 3);
    retry_now(&h);
    let stored = append(&h, &["after"]).unwrap();
    assert_eq!(stored[0].seq, 11, "positions go on after the lost ones");
    let held = ids_and_seqs(&h.inner.read_from_disk(0, 100).unwrap());
    let want: Vec<(String, u64)> = [("p7", 8), ("p8", 9), ("p9", 10), ("after", 11)]
        .iter()
        .map(|(id, seq)| (id.to_string(), *seq))
        .collect();
    assert_eq!(held, want);
    assert_eq!(h.stats().events, 4);
    assert_eq!(block_on(h.read_after(7, 100)).unwrap().len(), 4);
    drop(h);
    let reopened = RedbHistory::open(&dir.0, RedbOptions::default()).unwrap();
    assert_eq!(reopened.stats().last_seq, 11);
}

#[test]
fn a_read_error_lets_the_next_write_reopen_at_once() {
    let dir = TempDir::new("read-latch");
    let faults = Arc::new(Faults::default());
    let h = RedbHistory::open_with(
        &dir.0,
        RedbOptions {
            cache_events: 0,
            ..RedbOptions::default()
        },
        faulty_opener_caching(&faults, Some(0)),
    )
    .unwrap();
    append(&h, &["c0"]).unwrap();
    faults.reads.store(true, Ordering::SeqCst);
    let err = block_on(h.read_after(0, 10)).unwrap_err().to_string();
    assert!(err.contains("cannot read"), "{err}");
    faults.reads.store(false, Ordering::SeqCst);
    // redb refuses everything after the failed read; the write that
    // follows reopens first instead of failing.
    let stored = append(&h, &["c1"]).unwrap();
    assert_eq!(stored[0].seq, 2);
    assert_eq!(h.stats().reopens, 1);
    assert_eq!(
        ids_and_seqs(&block_on(h.read_after(0, 10)).unwrap()),
        expected(&["c0", "c1"])
    );
}

#[test]
fn the_probe_heals_without_a_publish() {
    let dir = TempDir::new("probe");
    let faults = Arc::new(Faults::default());
    let h = RedbHistory::open_with(&dir.0, RedbOptions::default(), faulty_opener(&faults)).unwrap();
    append(&h, &["d0"]).unwrap();
    faults.full.store(true, Ordering::SeqCst);
    assert!(append(&h, &["refused"]).is_err());
    faults.full.store(false, Ordering::SeqCst);
    retry_now(&h);
    block_on(h.probe()).unwrap();
    assert_eq!(h.stats().reopens, 1);
    assert_eq!(h.stats().last_seq, 1, "a probe stores nothing");
    assert_eq!(append(&h, &["d1"]).unwrap()[0].seq, 2);
}
