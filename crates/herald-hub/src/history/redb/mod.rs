//! The durable backend: history in a redb file, the default of `herald
//! serve`.
//!
//! On the publish path, each batch from the hub's single writer is one
//! write transaction, committed with fsync before any publisher in it gets
//! its 200: publishes that arrive during a commit wait together for the
//! next one (group commit), so durability costs one fsync per batch, not
//! per event. Retention (events, bytes, age) is applied in the same
//! transaction, and once a second for age, so the file stays bounded
//! without ever pausing publishes for a sweep.
//!
//! On the subscribe path, an id is resolved through an id → sequence
//! table, and replay reads a range of the sequence-keyed event table; the
//! most recent entries are also kept in memory so that the common resume
//! (a client that was gone a few seconds) never touches the disk.
//!
//! After an I/O error (a full disk, a failing device), redb refuses every
//! further operation on the open database. The history then reopens the
//! file by itself (`heal`), at the next write after a short delay that
//! grows while reopening fails, and brings the reopened file and its own
//! state back in line with what publishers were told: a full disk heals
//! once space is freed, without a restart, losing no acknowledged event
//! and keeping none that was refused.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

mod codec;
mod error;
mod heal;
#[cfg(test)]
mod tests;
mod write;

use codec::decode;
use error::open_error;
pub use error::OpenError;
use heal::{Fault, Opener};

use super::ring::Ring;
use super::{
    now_ms, Entry, History, HistoryError, HistoryStats, NewEntry, StatsCell, DEFAULT_CACHE_BYTES,
};

/// Sequence number → encoded entry.
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// Event id → sequence number of its earliest held entry.
const IDS: TableDefinition<&str, u64> = TableDefinition::new("ids");
/// Counters that must survive restarts.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const META_LAST_SEQ: &str = "last_seq";
const META_BYTES: &str = "bytes";

/// The file inside the data directory.
pub const FILE_NAME: &str = "history.redb";

/// How much history to keep. Every limit is optional; all that are set
/// apply together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Most events kept.
    pub max_events: Option<u64>,
    /// Oldest event kept, by the time it was stored.
    pub max_age: Option<Duration>,
    /// Most bytes of events kept (frames, ids and topics).
    pub max_bytes: Option<u64>,
}

/// When a publish counts as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Every batch is fsynced before its publishers get their 200: an
    /// acknowledged event survives a crash or power loss.
    #[default]
    Full,
    /// Batches are written at once but fsynced at most every `interval`:
    /// faster, and a crash loses at most the last `interval` of
    /// acknowledged events. The file stays consistent either way.
    Periodic(Duration),
}

/// Options of [`RedbHistory::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedbOptions {
    /// How much to keep.
    pub retention: Retention,
    /// When a publish counts as stored.
    pub durability: Durability,
    /// Recent events also kept in memory to serve replays.
    pub cache_events: usize,
    /// Most bytes of those recent events kept in memory: with large
    /// events, fewer than `cache_events` are kept.
    pub cache_bytes: u64,
    /// Most bytes of the file's pages redb caches in memory (its reads and
    /// its write buffer). redb's own default, 1 GiB, would let the hub grow
    /// with the file up to its retention bound; replays past the newest
    /// events read pages the kernel's page cache usually holds anyway.
    pub page_cache_bytes: usize,
}

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions {
            retention: Retention::default(),
            durability: Durability::Full,
            cache_events: 10_000,
            cache_bytes: DEFAULT_CACHE_BYTES / 2,
            page_cache_bytes: (DEFAULT_CACHE_BYTES / 2) as usize,
        }
    }
}

/// History in a redb file. See the module documentation.
#[derive(Debug)]
pub struct RedbHistory {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The open database. Each transaction holds the read lock while it
    /// lasts; a reopen (see `heal`) takes the write lock, so the failed
    /// database is closed, and its lock on the file released, before the
    /// file is opened again. `None` only while reopening failed to open it.
    db: RwLock<Option<Database>>,
    path: PathBuf,
    options: RedbOptions,
    /// How the file is opened, at start and at each reopen.
    opener: Opener,
    writer: Mutex<Writer>,
    cache: Mutex<Ring>,
    stats: StatsCell,
    /// The last sequence number a durable commit covers.
    durable_seq: AtomicU64,
}

/// State only the (single) writer changes, under a lock held for the
/// whole write transaction.
#[derive(Debug)]
struct Writer {
    last_seq: u64,
    events: u64,
    bytes: u64,
    /// Commits not yet fsynced (periodic durability).
    unsynced: bool,
    last_sync: Instant,
    /// Set while the database refuses to work after an I/O error: why, and
    /// when to reopen it.
    fault: Option<Fault>,
    /// Writes and reopens that failed in a row, for the delay between
    /// reopens.
    failures: u32,
    /// Successful reopens since the history was opened.
    reopens: u64,
}

/// What the writer tracks of the file: last sequence number, events held,
/// bytes held.
type Counts = (u64, u64, u64);

impl RedbHistory {
    /// Opens (or creates) the history in `dir`. With an age limit or
    /// periodic durability, and when called within a tokio runtime, it also
    /// starts the upkeep task (age retention at least once a second, and
    /// the fsync periodic durability owes every interval), which ends when
    /// the history is dropped.
    pub fn open(dir: &Path, options: RedbOptions) -> Result<RedbHistory, OpenError> {
        RedbHistory::open_with(dir, options, Opener::file(options.page_cache_bytes))
    }

    /// [`RedbHistory::open`], opening the file with `opener` (tests inject
    /// I/O errors through it).
    fn open_with(
        dir: &Path,
        options: RedbOptions,
        opener: Opener,
    ) -> Result<RedbHistory, OpenError> {
        std::fs::create_dir_all(dir).map_err(|error| OpenError::Io {
            path: dir.to_path_buf(),
            error,
        })?;
        let path = dir.join(FILE_NAME);
        // redb makes a new database in an empty file; only a missing file
        // is a first start.
        match std::fs::metadata(&path) {
            Ok(file) if file.len() == 0 => return Err(OpenError::Empty { path }),
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(OpenError::Io { path, error }),
        }
        let db = opener.open(&path).map_err(|e| open_error(&path, e))?;
        let damaged = |reason: String| OpenError::Damaged {
            path: path.clone(),
            reason,
        };
        let (last_seq, events, bytes) = counts(&db).map_err(|e| damaged(e.to_string()))?;

        let inner = Arc::new(Inner {
            db: RwLock::new(Some(db)),
            path: path.clone(),
            options,
            opener,
            writer: Mutex::new(Writer {
                last_seq,
                events,
                bytes,
                unsynced: false,
                last_sync: Instant::now(),
                fault: None,
                failures: 0,
                reopens: 0,
            }),
            cache: Mutex::new(Ring::new(options.cache_events, options.cache_bytes)),
            stats: StatsCell::new(HistoryStats {
                events,
                bytes,
                last_seq,
                reopens: 0,
            }),
            // The counters were just read in a durable commit.
            durable_seq: AtomicU64::new(last_seq),
        });
        inner.warm_cache().map_err(|e| damaged(e.0))?;
        let needs_upkeep = options.retention.max_age.is_some()
            || matches!(options.durability, Durability::Periodic(_));
        if needs_upkeep && tokio::runtime::Handle::try_current().is_ok() {
            // Periodic durability owes an fsync every interval even when
            // publishing stops, so the upkeep runs at least that often.
            let period = match options.durability {
                Durability::Periodic(every) => every.min(UPKEEP_PERIOD),
                Durability::Full => UPKEEP_PERIOD,
            };
            tokio::spawn(maintain(
                Arc::downgrade(&inner),
                period.max(Duration::from_millis(10)),
            ));
        }
        Ok(RedbHistory { inner })
    }

    /// The file this history lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The sequence number of the last entry fsynced: everything up to it
    /// survives a crash. With periodic durability it trails
    /// [`HistoryStats::last_seq`] until the next fsync.
    pub fn durable_seq(&self) -> u64 {
        self.inner.durable_seq.load(Ordering::Acquire)
    }

    /// Runs redb work on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T, HistoryError> + Send + 'static,
    ) -> Result<T, HistoryError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|e| HistoryError(format!("history task failed: {e}")))?
    }
}

/// The counters a file holds, read in a write transaction that also makes
/// every table (a first start creates them).
fn counts(db: &Database) -> Result<Counts, redb::Error> {
    let txn = db.begin_write()?;
    let counts = {
        txn.open_table(IDS)?;
        let events = txn.open_table(EVENTS)?.len()?;
        let meta = txn.open_table(META)?;
        let last_seq = meta.get(META_LAST_SEQ)?.map_or(0, |v| v.value());
        let bytes = meta.get(META_BYTES)?.map_or(0, |v| v.value());
        (last_seq, events, bytes)
    };
    txn.commit()?;
    Ok(counts)
}

impl Inner {
    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cache(&self) -> MutexGuard<'_, Ring> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The open database, for the length of one transaction.
    fn db(&self) -> RwLockReadGuard<'_, Option<Database>> {
        self.db.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a read transaction's work on the open database.
    fn read<T>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, redb::Error>,
    ) -> Result<T, HistoryError> {
        let result = match self.db().as_ref() {
            Some(db) => work(db),
            None => Err(redb::Error::DatabaseClosed),
        };
        result.map_err(|e| self.read_failed(e))
    }

    /// Loads the most recent entries into the in-memory cache.
    fn warm_cache(&self) -> Result<(), HistoryError> {
        let last = self.stats.get().last_seq;
        let from = last.saturating_sub(self.options.cache_events as u64);
        let entries = self.read_from_disk(from, self.options.cache_events)?;
        let mut cache = self.cache();
        for entry in entries {
            cache.push(entry);
        }
        Ok(())
    }

    fn read_from_disk(&self, after: u64, limit: usize) -> Result<Vec<Arc<Entry>>, HistoryError> {
        self.read(|db| {
            let txn = db.begin_read()?;
            let events = txn.open_table(EVENTS)?;
            let mut out = Vec::with_capacity(limit.min(1024));
            for item in events.range(after + 1..)?.take(limit) {
                let (seq, value) = item?;
                let entry =
                    decode(seq.value(), value.value()).map_err(|e| redb::Error::Corrupted(e.0))?;
                out.push(Arc::new(entry));
            }
            Ok(out)
        })
    }

    fn seq_of(&self, id: &str) -> Result<Option<u64>, HistoryError> {
        self.read(|db| {
            let txn = db.begin_read()?;
            let ids = txn.open_table(IDS)?;
            let seq = ids.get(id)?.map(|v| v.value());
            Ok(seq)
        })
    }
}

/// How often age retention runs when nobody publishes.
const UPKEEP_PERIOD: Duration = Duration::from_secs(1);

async fn maintain(history: Weak<Inner>, period: Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(history) = history.upgrade() else {
            return;
        };
        let result = tokio::task::spawn_blocking(move || history.maintain_blocking()).await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "history maintenance failed; will retry"),
            Err(e) => tracing::error!(error = %e, "history maintenance task failed"),
        }
    }
}

#[async_trait]
impl History for RedbHistory {
    async fn append(&self, batch: Vec<NewEntry>) -> Result<Vec<Arc<Entry>>, HistoryError> {
        self.blocking(move |inner| inner.append_blocking(batch))
            .await
    }

    async fn seq_of(&self, id: &str) -> Result<Option<u64>, HistoryError> {
        let id = id.to_owned();
        self.blocking(move |inner| inner.seq_of(&id)).await
    }

    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<Arc<Entry>>, HistoryError> {
        // The cache holds the most recent entries, densely: when it covers
        // `after`, it has everything the disk would return.
        if self.inner.options.cache_events > 0 {
            if let Some(hit) = self.inner.cache().read_after(after, limit) {
                return Ok(hit);
            }
        }
        self.blocking(move |inner| inner.read_from_disk(after, limit))
            .await
    }

    fn stats(&self) -> HistoryStats {
        self.inner.stats.get()
    }
}
