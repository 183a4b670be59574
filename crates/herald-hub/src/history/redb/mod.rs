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

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

mod codec;
mod error;

use codec::{decode, encode, stored_at};
use error::open_error;
pub use error::OpenError;

use super::ring::Ring;
use super::{now_ms, Entry, History, HistoryError, HistoryStats, NewEntry, StatsCell};

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
}

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions {
            retention: Retention::default(),
            durability: Durability::Full,
            cache_events: 10_000,
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
    db: Database,
    path: PathBuf,
    options: RedbOptions,
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
}

fn storage(path: &Path) -> impl Fn(redb::Error) -> HistoryError + '_ {
    move |e| HistoryError(format!("{}: {e}", path.display()))
}

impl RedbHistory {
    /// Opens (or creates) the history in `dir`. With an age limit or
    /// periodic durability, and when called within a tokio runtime, it also
    /// starts the upkeep task (age retention at least once a second, and
    /// the fsync periodic durability owes every interval), which ends when
    /// the history is dropped.
    pub fn open(dir: &Path, options: RedbOptions) -> Result<RedbHistory, OpenError> {
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
        let db = Database::create(&path).map_err(|e| open_error(&path, e))?;
        let damaged = |reason: String| OpenError::Damaged {
            path: path.clone(),
            reason,
        };
        let (last_seq, events, bytes) = (|| -> Result<(u64, u64, u64), redb::Error> {
            let txn = db.begin_write()?;
            let counters = {
                txn.open_table(IDS)?;
                let events = txn.open_table(EVENTS)?.len()?;
                let meta = txn.open_table(META)?;
                let last_seq = meta.get(META_LAST_SEQ)?.map_or(0, |v| v.value());
                let bytes = meta.get(META_BYTES)?.map_or(0, |v| v.value());
                (last_seq, events, bytes)
            };
            txn.commit()?;
            Ok(counters)
        })()
        .map_err(|e| damaged(e.to_string()))?;

        let inner = Arc::new(Inner {
            db,
            path: path.clone(),
            options,
            writer: Mutex::new(Writer {
                last_seq,
                events,
                bytes,
                unsynced: false,
                last_sync: Instant::now(),
            }),
            cache: Mutex::new(Ring::new(options.cache_events, u64::MAX)),
            stats: StatsCell::new(HistoryStats {
                events,
                bytes,
                last_seq,
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

impl Inner {
    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cache(&self) -> MutexGuard<'_, Ring> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
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

    /// Appends a batch in one transaction, applying retention.
    fn append_blocking(&self, batch: Vec<NewEntry>) -> Result<Vec<Arc<Entry>>, HistoryError> {
        let now = now_ms();
        let mut writer = self.writer();
        let fail = storage(&self.path);
        let mut txn = self.db.begin_write().map_err(|e| fail(e.into()))?;
        let sync = match self.options.durability {
            Durability::Full => true,
            Durability::Periodic(every) => writer.last_sync.elapsed() >= every,
        };
        if !sync {
            txn.set_durability(redb::Durability::None)
                .map_err(|e| HistoryError(e.to_string()))?;
        }
        let mut state = (writer.last_seq, writer.events, writer.bytes);
        let mut stored = Vec::with_capacity(batch.len());
        let first_kept = {
            let mut events = txn.open_table(EVENTS).map_err(|e| fail(e.into()))?;
            let mut ids = txn.open_table(IDS).map_err(|e| fail(e.into()))?;
            let mut meta = txn.open_table(META).map_err(|e| fail(e.into()))?;
            for new in batch {
                state.0 += 1;
                let entry = Entry::new(state.0, now, new);
                events
                    .insert(entry.seq, encode(&entry).as_slice())
                    .map_err(|e| fail(e.into()))?;
                if ids
                    .get(entry.id.as_str())
                    .map_err(|e| fail(e.into()))?
                    .is_none()
                {
                    ids.insert(entry.id.as_str(), entry.seq)
                        .map_err(|e| fail(e.into()))?;
                }
                state.1 += 1;
                state.2 += entry.size() as u64;
                stored.push(Arc::new(entry));
            }
            let first_kept = self
                .evict(&mut events, &mut ids, &mut state, now)
                .map_err(&fail)?;
            meta.insert(META_LAST_SEQ, state.0)
                .map_err(|e| fail(e.into()))?;
            meta.insert(META_BYTES, state.2)
                .map_err(|e| fail(e.into()))?;
            first_kept
        };
        txn.commit().map_err(|e| fail(e.into()))?;

        (writer.last_seq, writer.events, writer.bytes) = state;
        if sync {
            writer.unsynced = false;
            writer.last_sync = Instant::now();
            self.durable_seq.store(writer.last_seq, Ordering::Release);
        } else {
            writer.unsynced = true;
        }
        self.publish_stats(&writer);
        drop(writer);
        let mut cache = self.cache();
        for entry in &stored {
            cache.push(Arc::clone(entry));
        }
        if let Some(first) = first_kept {
            cache.trim_before(first);
        }
        Ok(stored)
    }

    /// Removes entries beyond the retention limits from the front. Returns
    /// the first sequence number kept when anything was removed.
    fn evict(
        &self,
        events: &mut redb::Table<u64, &[u8]>,
        ids: &mut redb::Table<&str, u64>,
        state: &mut (u64, u64, u64),
        now: u64,
    ) -> Result<Option<u64>, redb::Error> {
        let retention = self.options.retention;
        let cutoff = retention
            .max_age
            .map(|age| now.saturating_sub(age.as_millis() as u64));
        let mut removed = false;
        loop {
            let over_count = retention.max_events.is_some_and(|max| state.1 > max);
            let over_bytes = retention
                .max_bytes
                .is_some_and(|max| state.2 > max && state.1 > 1);
            let too_old = match (cutoff, events.first()?) {
                (Some(cutoff), Some((_, value))) => {
                    stored_at(value.value()).is_some_and(|at| at < cutoff)
                }
                _ => false,
            };
            if !(over_count || over_bytes || too_old) {
                break;
            }
            let Some((seq, value)) = events.pop_first()? else {
                break;
            };
            let seq = seq.value();
            let old = decode(seq, value.value()).map_err(|e| redb::Error::Corrupted(e.0))?;
            drop(value);
            if ids.get(old.id.as_str())?.is_some_and(|v| v.value() == seq) {
                ids.remove(old.id.as_str())?;
            }
            state.1 = state.1.saturating_sub(1);
            state.2 = state.2.saturating_sub(old.size() as u64);
            removed = true;
        }
        if !removed {
            return Ok(None);
        }
        Ok(Some(
            events.first()?.map_or(state.0 + 1, |(k, _)| k.value()),
        ))
    }

    /// The upkeep: age retention, and the fsync that periodic
    /// durability owes.
    fn maintain_blocking(&self) -> Result<(), HistoryError> {
        let mut writer = self.writer();
        let needs_age = self.options.retention.max_age.is_some() && self.stats.get().events > 0;
        let needs_sync =
            matches!(self.options.durability, Durability::Periodic(_)) && writer.unsynced;
        if !needs_age && !needs_sync {
            return Ok(());
        }
        let fail = storage(&self.path);
        let txn = self.db.begin_write().map_err(|e| fail(e.into()))?;
        let mut state = (writer.last_seq, writer.events, writer.bytes);
        let first_kept = {
            let mut events = txn.open_table(EVENTS).map_err(|e| fail(e.into()))?;
            let mut ids = txn.open_table(IDS).map_err(|e| fail(e.into()))?;
            let mut meta = txn.open_table(META).map_err(|e| fail(e.into()))?;
            let first_kept = self
                .evict(&mut events, &mut ids, &mut state, now_ms())
                .map_err(&fail)?;
            if first_kept.is_some() {
                meta.insert(META_BYTES, state.2)
                    .map_err(|e| fail(e.into()))?;
            }
            first_kept
        };
        if first_kept.is_none() && !needs_sync {
            // Nothing expired and nothing to sync: no write, no fsync.
            txn.abort().map_err(|e| fail(e.into()))?;
            return Ok(());
        }
        txn.commit().map_err(|e| fail(e.into()))?;
        (writer.last_seq, writer.events, writer.bytes) = state;
        writer.unsynced = false;
        writer.last_sync = Instant::now();
        self.durable_seq.store(writer.last_seq, Ordering::Release);
        self.publish_stats(&writer);
        drop(writer);
        if let Some(first) = first_kept {
            self.cache().trim_before(first);
        }
        Ok(())
    }

    fn publish_stats(&self, writer: &Writer) {
        self.stats.set(HistoryStats {
            events: writer.events,
            bytes: writer.bytes,
            last_seq: writer.last_seq,
        });
    }

    fn read_from_disk(&self, after: u64, limit: usize) -> Result<Vec<Arc<Entry>>, HistoryError> {
        let fail = storage(&self.path);
        let txn = self.db.begin_read().map_err(|e| fail(e.into()))?;
        let events = txn.open_table(EVENTS).map_err(|e| fail(e.into()))?;
        let mut out = Vec::with_capacity(limit.min(1024));
        for item in events
            .range(after + 1..)
            .map_err(|e| fail(e.into()))?
            .take(limit)
        {
            let (seq, value) = item.map_err(|e| fail(e.into()))?;
            out.push(Arc::new(decode(seq.value(), value.value())?));
        }
        Ok(out)
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
        self.blocking(move |inner| {
            let fail = storage(&inner.path);
            let txn = inner.db.begin_read().map_err(|e| fail(e.into()))?;
            let ids = txn.open_table(IDS).map_err(|e| fail(e.into()))?;
            let seq = ids
                .get(id.as_str())
                .map_err(|e| fail(e.into()))?
                .map(|v| v.value());
            Ok(seq)
        })
        .await
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
