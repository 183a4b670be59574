//! Healing after an I/O error.
//!
//! When a write (or read) of the file fails, redb latches the failure:
//! every later operation on that database, reads included, answers
//! `PreviousIo` ("close and re-open the database"), even once the cause
//! (a full disk) is gone. So the history notes the fault, answers every
//! write with a clear error until a retry time, and at the first write
//! after it (an append, the hub's probe, or the upkeep) closes the database
//! and opens the file again. The delay doubles while reopening or writing
//! keeps failing, so a disk that stays full costs a reopen (and redb's
//! recovery scan) every few seconds, not one per publish.
//!
//! A reopened file is then reconciled with what publishers were told,
//! before anything else is written:
//!
//! * entries past the last acknowledged sequence number are removed: a
//!   commit that reported an error can still have reached the file (its
//!   last fsync failed after the header was written), but its publishers
//!   got an error and it was never dispatched, so keeping it would store
//!   refused updates and, when they are retried, hold their ids twice;
//! * acknowledged entries missing from the file (with periodic durability,
//!   commits not yet fsynced live only in the failed database's memory)
//!   are written again from the in-memory cache; any the cache no longer
//!   holds are reported as lost, and their positions are never reused.
//!
//! So sequence numbers stay dense and increasing across the reopen, the
//! cache stays exactly the newest part of the file, and the counters are
//! the file's.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use redb::{Database, ReadableTable, ReadableTableMetadata};

use super::codec::{decode, encode};
use super::{
    now_ms, Entry, HistoryError, Inner, Writer, EVENTS, IDS, META, META_BYTES, META_LAST_SEQ,
};

/// Delay before the first reopen after an I/O error: short, so that a
/// transient error costs little.
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// Longest delay between reopens while the file keeps failing.
const MAX_RETRY: Duration = Duration::from_secs(5);

/// The delay before the next reopen after `failures` failures in a row.
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_RETRY.saturating_mul(1 << doublings).min(MAX_RETRY)
}

/// How the history file is opened: redb's own file backend, or in tests a
/// backend that fails on demand.
pub(super) struct Opener(OpenFn);

type OpenFn = Box<dyn Fn(&Path) -> Result<Database, redb::DatabaseError> + Send + Sync>;

impl Opener {
    /// The file itself, with a page cache of at most `cache_bytes`.
    pub(super) fn file(cache_bytes: usize) -> Opener {
        Opener(Box::new(move |path: &Path| {
            Database::builder().set_cache_size(cache_bytes).create(path)
        }))
    }

    /// Opens with `open`.
    #[cfg(test)]
    pub(super) fn new(
        open: impl Fn(&Path) -> Result<Database, redb::DatabaseError> + Send + Sync + 'static,
    ) -> Opener {
        Opener(Box::new(open))
    }

    pub(super) fn open(&self, path: &Path) -> Result<Database, redb::DatabaseError> {
        (self.0)(path)
    }
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Opener")
    }
}

/// The database failed an I/O operation and must be reopened.
#[derive(Debug)]
pub(super) struct Fault {
    /// The error that started it (or the last reopen's), for messages.
    error: String,
    /// When to reopen.
    retry_at: Instant,
}

impl Fault {
    /// Whether it is time to reopen.
    pub(super) fn due(&self) -> bool {
        Instant::now() >= self.retry_at
    }

    /// Makes the reopen due now: tests step through the delays instead of
    /// sleeping.
    #[cfg(test)]
    pub(super) fn retry_now(&mut self) {
        self.retry_at = Instant::now();
    }
}

/// Whether reopening the database can cure `e`: an I/O error, the latch
/// redb sets after one, or a database that reopening failed to open.
fn needs_reopen(e: &redb::Error) -> bool {
    matches!(
        e,
        redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed
    )
}

/// An error in words for an operator: redb's latch message asks the caller
/// to reopen the database, which Herald does itself.
fn describe(e: &redb::Error) -> String {
    match e {
        redb::Error::PreviousIo => "an earlier I/O error stopped the database".to_owned(),
        redb::Error::DatabaseClosed => "the file is not open after an I/O error".to_owned(),
        other => other.to_string(),
    }
}

impl Inner {
    /// A write failed with `e`. When reopening can cure it, notes the fault
    /// and when to reopen.
    pub(super) fn write_failed(&self, writer: &mut Writer, e: redb::Error) -> HistoryError {
        if !needs_reopen(&e) {
            return HistoryError(format!("{}: {e}", self.path.display()));
        }
        // The latch repeats nothing of its cause: keep the cause's words.
        let error = match (&e, &writer.fault) {
            (redb::Error::PreviousIo | redb::Error::DatabaseClosed, Some(fault)) => {
                fault.error.clone()
            }
            _ => describe(&e),
        };
        if writer.fault.is_none() {
            tracing::error!(
                path = %self.path.display(),
                %error,
                "writing the history file failed; publishes are refused until it can be written again (Herald reopens it by itself)"
            );
        }
        self.retry_later(writer, error)
    }

    /// Plans the next reopen, further away for each failure in a row, and
    /// says so.
    fn retry_later(&self, writer: &mut Writer, error: String) -> HistoryError {
        writer.failures = writer.failures.saturating_add(1);
        let delay = backoff(writer.failures);
        let refused = self.unavailable(&error, delay);
        writer.fault = Some(Fault {
            error,
            retry_at: Instant::now() + delay,
        });
        refused
    }

    fn unavailable(&self, error: &str, retry_in: Duration) -> HistoryError {
        HistoryError(format!(
            "{}: cannot write: {error}; Herald reopens the file to retry in {} ms",
            self.path.display(),
            retry_in.as_millis()
        ))
    }

    /// A read failed with `e`. An I/O error on a read latches the database
    /// too: the next write then reopens it at once, rather than failing
    /// first. A writer busy right now will find out by itself.
    pub(super) fn read_failed(&self, e: redb::Error) -> HistoryError {
        if needs_reopen(&e) {
            if let Ok(mut writer) = self.writer.try_lock() {
                if writer.fault.is_none() {
                    writer.fault = Some(Fault {
                        error: describe(&e),
                        retry_at: Instant::now(),
                    });
                }
            }
            return HistoryError(format!(
                "{}: cannot read: {}; Herald reopens the file at the next write",
                self.path.display(),
                describe(&e)
            ));
        }
        HistoryError(format!("{}: {e}", self.path.display()))
    }

    /// Reopens the file when a fault is noted and its time has come. An
    /// error while the database still cannot be written.
    pub(super) fn heal_if_due(&self, writer: &mut Writer) -> Result<(), HistoryError> {
        let Some(fault) = &writer.fault else {
            return Ok(());
        };
        let now = Instant::now();
        if now < fault.retry_at {
            return Err(self.unavailable(&fault.error, fault.retry_at - now));
        }
        if let Err(e) = self.reopen(writer) {
            // Whatever the error, wait before the next attempt: reopening
            // costs a recovery scan of the file.
            let error = format!("reopening failed: {}", describe(&e));
            tracing::warn!(path = %self.path.display(), %error, "the history file is still failing");
            return Err(self.retry_later(writer, error));
        }
        writer.fault = None;
        writer.reopens += 1;
        self.publish_stats(writer);
        tracing::info!(
            path = %self.path.display(),
            last_seq = writer.last_seq,
            "the history file was reopened after an I/O error and can be written again"
        );
        Ok(())
    }

    /// Closes the failed database, opens the file again and reconciles it.
    fn reopen(&self, writer: &mut Writer) -> Result<(), redb::Error> {
        let mut slot = self.db.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(failed) = slot.take() {
            // Closing releases the file's lock for the new handle. A failed
            // database cannot flush: the next open's recovery is for that.
            if let Err(e) = failed.close() {
                tracing::debug!(error = %e, "closing the failed history database");
            }
        }
        let db = slot.insert(self.opener.open(&self.path)?);
        let first_held = self.reconcile(db, writer)?;
        drop(slot);
        // Retention may have run in the file where the cache did not: a
        // commit that failed late had removed old entries too.
        self.cache().trim_before(first_held);
        Ok(())
    }

    /// Makes the reopened file hold what was acknowledged, no more and no
    /// less (see the module documentation), applies retention, and takes
    /// the file's counters, in one durable commit. Returns the first
    /// sequence number the file holds (the next one when it is empty).
    fn reconcile(&self, db: &Database, writer: &mut Writer) -> Result<u64, redb::Error> {
        let acknowledged = writer.last_seq;
        let txn = db.begin_write()?;
        let (counts, first_held) = {
            let mut events = txn.open_table(EVENTS)?;
            let mut ids = txn.open_table(IDS)?;
            let mut meta = txn.open_table(META)?;
            let on_disk = meta.get(META_LAST_SEQ)?.map_or(0, |v| v.value());
            let mut bytes = meta.get(META_BYTES)?.map_or(0, |v| v.value());
            bytes = drop_refused(&mut events, &mut ids, acknowledged, bytes)?;
            if on_disk < acknowledged {
                let missing = self.cached_between(on_disk, acknowledged);
                let lost = acknowledged - on_disk - missing.len() as u64;
                for entry in &missing {
                    events.insert(entry.seq, encode(entry).as_slice())?;
                    if ids.get(entry.id.as_str())?.is_none() {
                        ids.insert(entry.id.as_str(), entry.seq)?;
                    }
                    bytes += entry.size() as u64;
                }
                if lost > 0 {
                    tracing::error!(
                        lost,
                        restored = missing.len(),
                        "acknowledged events were not yet fsynced when the I/O error struck and are no longer in memory: they are lost (periodic durability); their positions are not reused"
                    );
                } else {
                    tracing::warn!(
                        restored = missing.len(),
                        "acknowledged events not yet fsynced when the I/O error struck were written again"
                    );
                }
            }
            let mut counts = (acknowledged, events.len()?, bytes);
            self.evict(&mut events, &mut ids, &mut counts, now_ms())?;
            meta.insert(META_LAST_SEQ, acknowledged)?;
            meta.insert(META_BYTES, counts.2)?;
            let first_held = events
                .first()?
                .map_or(acknowledged + 1, |(seq, _)| seq.value());
            (counts, first_held)
        };
        txn.commit()?;
        (writer.last_seq, writer.events, writer.bytes) = counts;
        writer.unsynced = false;
        writer.last_sync = Instant::now();
        self.durable_seq.store(acknowledged, Ordering::Release);
        Ok(first_held)
    }

    /// The cached entries after `after` up to `last`, oldest first: as many
    /// of them as the cache still holds.
    fn cached_between(&self, after: u64, last: u64) -> Vec<Arc<Entry>> {
        let cache = self.cache();
        // The cache answers only from where it starts.
        let from = cache
            .first_seq()
            .map_or(after, |first| after.max(first.saturating_sub(1)));
        let mut entries = cache.read_after(from, usize::MAX).unwrap_or_default();
        entries.retain(|e| e.seq <= last);
        entries
    }
}

/// Removes every entry after `acknowledged` (see the module
/// documentation). Returns `bytes` less theirs.
fn drop_refused(
    events: &mut redb::Table<u64, &[u8]>,
    ids: &mut redb::Table<&str, u64>,
    acknowledged: u64,
    mut bytes: u64,
) -> Result<u64, redb::Error> {
    let refused = events
        .range(acknowledged + 1..)?
        .map(|item| item.map(|(seq, _)| seq.value()))
        .collect::<Result<Vec<u64>, _>>()?;
    if !refused.is_empty() {
        tracing::warn!(
            count = refused.len(),
            "removing events whose commit reported an error but reached the file: their publishers were refused"
        );
    }
    for seq in refused {
        let Some(value) = events.remove(seq)? else {
            continue;
        };
        let old = decode(seq, value.value()).map_err(|e| redb::Error::Corrupted(e.0))?;
        drop(value);
        if ids.get(old.id.as_str())?.is_some_and(|v| v.value() == seq) {
            ids.remove(old.id.as_str())?;
        }
        bytes = bytes.saturating_sub(old.size() as u64);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_from_a_tenth_of_a_second_up_to_five_seconds() {
        let delays: Vec<u128> = (1..=9).map(|n| backoff(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        assert_eq!(backoff(u32::MAX), MAX_RETRY);
    }
}
