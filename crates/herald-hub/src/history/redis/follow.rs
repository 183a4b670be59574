//! Following the shared log: `XREAD BLOCK` after the last position read,
//! on a connection of its own (a blocked read holds up every other command
//! on its connection).

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::Value;

use super::{codec, log_state, manager_config, Inner, FOLLOW_BATCH, FOLLOW_BLOCK};
use crate::history::{Follow, Followed, HistoryError};

/// The pause after a failed read before the next one.
const RETRY_DELAY: Duration = Duration::from_millis(250);

struct Follower {
    inner: Arc<Inner>,
    conn: Option<ConnectionManager>,
    /// Sequence number of the last entry read.
    last: u64,
    /// The epoch of the log being followed.
    epoch: String,
    failed: bool,
}

/// The entries appended after `after`, batch by batch, for as long as the
/// stream is polled.
pub(super) fn stream(inner: Arc<Inner>, after: u64) -> Follow {
    let follower = Follower {
        epoch: inner.epoch.clone(),
        inner,
        conn: None,
        last: after,
        failed: false,
    };
    Box::pin(futures_util::stream::unfold(follower, |mut f| async move {
        let read = f.read().await;
        Some((read, f))
    }))
}

impl Follower {
    async fn read(&mut self) -> Result<Followed, HistoryError> {
        if std::mem::take(&mut self.failed) {
            tokio::time::sleep(RETRY_DELAY).await;
        }
        let result = self.try_read().await;
        self.failed = result.is_err();
        result
    }

    async fn try_read(&mut self) -> Result<Followed, HistoryError> {
        let inner = &self.inner;
        let timeout = inner.options.timeout;
        let conn = match &self.conn {
            Some(conn) => conn,
            None => {
                // The server holds the read for up to FOLLOW_BLOCK: the
                // answer is late only past that plus the usual limit.
                let config = manager_config(FOLLOW_BLOCK + timeout, timeout);
                let conn = ConnectionManager::new_lazy_with_config(inner.client.clone(), config)
                    .map_err(|e| inner.fail(&e))?;
                self.conn.insert(conn)
            }
        };
        let mut conn = conn.clone();
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(FOLLOW_BATCH)
            .arg("BLOCK")
            .arg(FOLLOW_BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&inner.keys.log)
            .arg(format!("{}-0", self.last));
        let reply: Value = inner
            .bounded(FOLLOW_BLOCK + timeout, cmd.query_async(&mut conn))
            .await?;
        // Asked after the read: if the epoch is still ours and the counter
        // has not gone back, what was read belongs to the log this node
        // has been following.
        let (epoch, counter) = inner
            .bounded(timeout, log_state(&mut conn, &inner.keys))
            .await?;
        if epoch != self.epoch {
            // Redis lost the log (restarted without persistence, flushed):
            // positions started over. Follow the new log from where it ends.
            tracing::warn!("the shared log in Redis started over (its data was lost or flushed)");
            self.epoch = epoch;
            return Ok(self.restarted(counter.unwrap_or(0)));
        }
        if let Some(counter) = counter.filter(|c| *c < self.last) {
            // The log lost its newest entries (a failover to a replica that
            // had not received them).
            tracing::warn!(
                followed_to = self.last,
                log_ends_at = counter,
                "the shared log in Redis went back (a failover lost its newest entries)"
            );
            return Ok(self.restarted(counter));
        }
        let entries = codec::read_reply(reply)?;
        let mut cache = inner.cache();
        for entry in &entries {
            cache.push(Arc::clone(entry));
        }
        drop(cache);
        if let Some(newest) = entries.last() {
            self.last = newest.seq;
            inner.stats.set_last_seq(newest.seq);
        }
        Ok(Followed::Entries(entries))
    }

    /// Follows on from `last_seq`, the log's end now.
    fn restarted(&mut self, last_seq: u64) -> Followed {
        self.inner.cache().clear();
        self.last = last_seq;
        self.inner.stats.set_last_seq(last_seq);
        Followed::Restarted { last_seq }
    }
}
