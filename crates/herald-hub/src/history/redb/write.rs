//! The write side: appending batches with retention, and the upkeep (age
//! retention and the fsync periodic durability owes). Every write goes
//! through the writer lock, so the in-memory counters always describe the
//! last successful commit; an I/O error is handed to `heal`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::codec::{decode, encode, stored_at};
use super::{
    now_ms, Counts, Durability, Entry, HistoryError, HistoryStats, Inner, NewEntry, Writer, EVENTS,
    IDS, META, META_BYTES, META_LAST_SEQ,
};
use redb::ReadableTable;

/// What a committed batch leaves to do: the stored entries, the new
/// counters, and the first sequence number kept when retention removed any.
type Committed = (Vec<Arc<Entry>>, Counts, Option<u64>);

/// What the upkeep's commit leaves: the new counters, and the first
/// sequence number kept when it removed anything.
type Expired = (Counts, Option<u64>);

impl Inner {
    /// Appends a batch in one transaction, applying retention. An empty
    /// batch still commits (durably, with full durability): it is how a
    /// probe learns that the file can be written.
    pub(super) fn append_blocking(
        &self,
        batch: Vec<NewEntry>,
    ) -> Result<Vec<Arc<Entry>>, HistoryError> {
        let mut writer = self.writer();
        // A database that failed an I/O operation refuses everything until
        // it is reopened: reopen first when it is time, else say so.
        self.heal_if_due(&mut writer)?;
        let sync = match self.options.durability {
            Durability::Full => true,
            Durability::Periodic(every) => writer.last_sync.elapsed() >= every,
        };
        let (stored, counts, first_kept) = match self.commit_batch(&writer, batch, sync) {
            Ok(committed) => committed,
            Err(e) => return Err(self.write_failed(&mut writer, e)),
        };
        writer.failures = 0;
        (writer.last_seq, writer.events, writer.bytes) = counts;
        if sync {
            writer.unsynced = false;
            writer.last_sync = Instant::now();
            self.durable_seq.store(writer.last_seq, Ordering::Release);
        } else {
            writer.unsynced = true;
        }
        // The cache before the counters: whoever sees the new counters
        // finds the cache agreeing with them.
        let mut cache = self.cache();
        for entry in &stored {
            cache.push(Arc::clone(entry));
        }
        if let Some(first) = first_kept {
            cache.trim_before(first);
        }
        drop(cache);
        self.publish_stats(&writer);
        Ok(stored)
    }

    /// The transaction of [`Inner::append_blocking`]. The writer's counters
    /// change only once it committed.
    fn commit_batch(
        &self,
        writer: &Writer,
        batch: Vec<NewEntry>,
        sync: bool,
    ) -> Result<Committed, redb::Error> {
        let now = now_ms();
        let db = self.db();
        let db = db.as_ref().ok_or(redb::Error::DatabaseClosed)?;
        let mut txn = db.begin_write()?;
        if !sync {
            txn.set_durability(redb::Durability::None)?;
        }
        let mut counts = (writer.last_seq, writer.events, writer.bytes);
        let mut stored = Vec::with_capacity(batch.len());
        let first_kept = {
            let mut events = txn.open_table(EVENTS)?;
            let mut ids = txn.open_table(IDS)?;
            let mut meta = txn.open_table(META)?;
            for new in batch {
                counts.0 += 1;
                let entry = Entry::new(counts.0, now, new);
                events.insert(entry.seq, encode(&entry).as_slice())?;
                if ids.get(entry.id.as_str())?.is_none() {
                    ids.insert(entry.id.as_str(), entry.seq)?;
                }
                counts.1 += 1;
                counts.2 += entry.size() as u64;
                stored.push(Arc::new(entry));
            }
            let first_kept = self.evict(&mut events, &mut ids, &mut counts, now)?;
            meta.insert(META_LAST_SEQ, counts.0)?;
            meta.insert(META_BYTES, counts.2)?;
            first_kept
        };
        txn.commit()?;
        Ok((stored, counts, first_kept))
    }

    /// Removes entries beyond the retention limits from the front. Returns
    /// the first sequence number kept when anything was removed.
    pub(super) fn evict(
        &self,
        events: &mut redb::Table<u64, &[u8]>,
        ids: &mut redb::Table<&str, u64>,
        counts: &mut Counts,
        now: u64,
    ) -> Result<Option<u64>, redb::Error> {
        let retention = self.options.retention;
        let cutoff = retention
            .max_age
            .map(|age| now.saturating_sub(age.as_millis() as u64));
        let mut removed = false;
        loop {
            let over_count = retention.max_events.is_some_and(|max| counts.1 > max);
            let over_bytes = retention
                .max_bytes
                .is_some_and(|max| counts.2 > max && counts.1 > 1);
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
            counts.1 = counts.1.saturating_sub(1);
            counts.2 = counts.2.saturating_sub(old.size() as u64);
            removed = true;
        }
        if !removed {
            return Ok(None);
        }
        Ok(Some(
            events.first()?.map_or(counts.0 + 1, |(k, _)| k.value()),
        ))
    }

    /// The upkeep: age retention, the fsync that periodic durability owes,
    /// and, after an I/O error, reopening the file when it is time, so
    /// that the file heals even while nobody publishes.
    pub(super) fn maintain_blocking(&self) -> Result<(), HistoryError> {
        let mut writer = self.writer();
        if writer.fault.as_ref().is_some_and(|f| !f.due()) {
            // Not yet time to reopen; the failure was reported when it
            // happened.
            return Ok(());
        }
        self.heal_if_due(&mut writer)?;
        let needs_age = self.options.retention.max_age.is_some() && self.stats.get().events > 0;
        let needs_sync =
            matches!(self.options.durability, Durability::Periodic(_)) && writer.unsynced;
        if !needs_age && !needs_sync {
            return Ok(());
        }
        let (counts, first_kept) = match self.expire(&writer, needs_sync) {
            Ok(Some(expired)) => expired,
            Ok(None) => return Ok(()),
            Err(e) => return Err(self.write_failed(&mut writer, e)),
        };
        (writer.last_seq, writer.events, writer.bytes) = counts;
        writer.unsynced = false;
        writer.last_sync = Instant::now();
        self.durable_seq.store(writer.last_seq, Ordering::Release);
        // As in `append_blocking`: once the counters say the expired
        // events are gone, a replay from the cache no longer finds them.
        if let Some(first) = first_kept {
            self.cache().trim_before(first);
        }
        self.publish_stats(&writer);
        Ok(())
    }

    /// The transaction of the upkeep. `None` when there was nothing to
    /// commit: nothing expired and nothing to sync, so no write and no
    /// fsync.
    fn expire(&self, writer: &Writer, needs_sync: bool) -> Result<Option<Expired>, redb::Error> {
        let db = self.db();
        let db = db.as_ref().ok_or(redb::Error::DatabaseClosed)?;
        let txn = db.begin_write()?;
        let mut counts = (writer.last_seq, writer.events, writer.bytes);
        let first_kept = {
            let mut events = txn.open_table(EVENTS)?;
            let mut ids = txn.open_table(IDS)?;
            let mut meta = txn.open_table(META)?;
            let first_kept = self.evict(&mut events, &mut ids, &mut counts, now_ms())?;
            if first_kept.is_some() {
                meta.insert(META_BYTES, counts.2)?;
            }
            first_kept
        };
        if first_kept.is_none() && !needs_sync {
            txn.abort()?;
            return Ok(None);
        }
        txn.commit()?;
        Ok(Some((counts, first_kept)))
    }

    pub(super) fn publish_stats(&self, writer: &Writer) {
        self.stats.set(HistoryStats {
            events: writer.events,
            bytes: writer.bytes,
            last_seq: writer.last_seq,
            reopens: writer.reopens,
        });
    }
}
