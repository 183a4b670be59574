//! Whether history works right now, as `/readyz` and `/metrics` tell it.
//!
//! The publisher reports each append, and on a shared log the reader
//! reports each read: one failure makes the hub not ready (a load balancer
//! then sends publishers elsewhere) until the next success. Subscribers
//! stay connected either way; they only miss nothing if the log comes back.
//!
//! On a log only this process writes, nothing but appends would report a
//! success, and a hub that is not ready gets none: so while history fails,
//! [`retry`] probes it once a second ([`History::probe`]; redb reopens its
//! file there), and readiness comes back with the log.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;

use crate::history::{History, HistoryError};
use crate::metrics::Metrics;

/// How often a failing history is probed.
const PROBE_PERIOD: Duration = Duration::from_secs(1);

/// The health of the hub's history.
#[derive(Debug)]
pub(crate) struct Health {
    metrics: Arc<Metrics>,
    failing: AtomicBool,
    /// The last error, while failing.
    error: Mutex<Option<String>>,
    /// Wakes [`retry`] each time history starts failing.
    started_failing: watch::Sender<()>,
}

impl Health {
    pub(crate) fn new(metrics: Arc<Metrics>) -> Health {
        Health {
            metrics,
            failing: AtomicBool::new(false),
            error: Mutex::new(None),
            started_failing: watch::Sender::new(()),
        }
    }

    /// An operation on history succeeded.
    pub(crate) fn ok(&self) {
        // One relaxed load on the hot path while healthy.
        if self.failing.load(Ordering::Relaxed) && self.failing.swap(false, Ordering::AcqRel) {
            *self.error.lock().unwrap_or_else(|p| p.into_inner()) = None;
            Metrics::set(&self.metrics.history_failing, 0);
            tracing::info!("history works again");
        }
    }

    /// An operation on history failed.
    pub(crate) fn failed(&self, error: &HistoryError) {
        Metrics::inc(&self.metrics.history_errors_total);
        self.still_failing(error);
    }

    /// A probe of a failing history failed: the hub stays not ready with
    /// the probe's error, which counts as no operation.
    fn still_failing(&self, error: &HistoryError) {
        *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.to_string());
        if !self.failing.swap(true, Ordering::AcqRel) {
            Metrics::set(&self.metrics.history_failing, 1);
            tracing::error!(%error, "history is failing: the hub is not ready");
            self.started_failing.send_replace(());
        }
    }

    fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }

    /// What is wrong, while history is failing.
    pub(crate) fn problem(&self) -> Option<String> {
        if !self.is_failing() {
            return None;
        }
        let error = self.error.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Some(error.unwrap_or_else(|| "history is failing".into()))
    }
}

/// While history fails, probes it every [`PROBE_PERIOD`] and reports the
/// outcome, until it works again; then waits for the next failure. For a
/// log only this process writes (a shared log's reader reports by itself).
/// Holds neither the history nor the health between probes, and ends when
/// the health is gone.
pub(crate) async fn retry(history: Weak<dyn History>, health: Weak<Health>) {
    let Some(mut started_failing) = health.upgrade().map(|h| h.started_failing.subscribe()) else {
        return;
    };
    while started_failing.changed().await.is_ok() {
        loop {
            // A retry delay, not a wait for a condition: the probe is what
            // finds out whether history works again.
            tokio::time::sleep(PROBE_PERIOD).await;
            let (Some(history), Some(health)) = (history.upgrade(), health.upgrade()) else {
                return;
            };
            if !health.is_failing() {
                break;
            }
            match history.probe().await {
                Ok(()) => health.ok(),
                Err(e) => health.still_failing(&e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use async_trait::async_trait;

    use super::*;
    use crate::history::{Entry, HistoryStats, NewEntry};

    /// A log whose appends fail while `broken`, counting probes.
    #[derive(Debug, Default)]
    struct Flaky {
        broken: AtomicBool,
        probes: AtomicUsize,
    }

    #[async_trait]
    impl History for Flaky {
        async fn append(&self, batch: Vec<NewEntry>) -> Result<Vec<Arc<Entry>>, HistoryError> {
            assert!(batch.is_empty(), "only probes append here");
            self.probes.fetch_add(1, Ordering::SeqCst);
            if self.broken.load(Ordering::SeqCst) {
                return Err(HistoryError("disk full".into()));
            }
            Ok(Vec::new())
        }
        async fn seq_of(&self, _id: &str) -> Result<Option<u64>, HistoryError> {
            Ok(None)
        }
        async fn read_after(
            &self,
            _after: u64,
            _limit: usize,
        ) -> Result<Vec<Arc<Entry>>, HistoryError> {
            Ok(Vec::new())
        }
        fn stats(&self) -> HistoryStats {
            HistoryStats::default()
        }
    }

    /// Lets paused time run, one probe period at a time, until `done` or
    /// `periods` periods passed.
    async fn within(periods: u32, done: impl Fn() -> bool) -> bool {
        for _ in 0..periods {
            if done() {
                return true;
            }
            tokio::time::sleep(PROBE_PERIOD).await;
        }
        done()
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_history_is_probed_until_it_works_and_readiness_comes_back() {
        let metrics = Arc::new(Metrics::default());
        let health = Arc::new(Health::new(Arc::clone(&metrics)));
        let flaky = Arc::new(Flaky::default());
        flaky.broken.store(true, Ordering::SeqCst);
        let history: Arc<dyn History> = flaky.clone();
        let task = tokio::spawn(retry(Arc::downgrade(&history), Arc::downgrade(&health)));

        assert!(
            !within(3, || flaky.probes.load(Ordering::SeqCst) > 0).await,
            "no probe while healthy"
        );
        health.failed(&HistoryError("disk full".into()));
        assert!(
            within(10, || flaky.probes.load(Ordering::SeqCst) >= 3).await,
            "probed while failing"
        );
        assert!(health.problem().is_some());
        assert_eq!(
            metrics.snapshot(Default::default()).history_errors_total,
            1,
            "probes are not operations"
        );

        flaky.broken.store(false, Ordering::SeqCst);
        assert!(
            within(10, || health.problem().is_none()).await,
            "ready again without a publish"
        );
        assert!(metrics.snapshot(Default::default()).history_available);
        let probes = flaky.probes.load(Ordering::SeqCst);
        assert!(
            !within(5, || flaky.probes.load(Ordering::SeqCst) > probes).await,
            "no probe once it works"
        );

        // The next failure starts probing again; the task ends with the hub.
        health.failed(&HistoryError("disk full again".into()));
        assert!(within(10, || health.problem().is_none()).await);
        drop(health);
        tokio::time::timeout(PROBE_PERIOD * 3, task)
            .await
            .unwrap()
            .unwrap();
    }

    #[test]
    fn a_failure_is_reported_until_the_next_success_and_counted() {
        let metrics = Arc::new(Metrics::default());
        let health = Health::new(Arc::clone(&metrics));
        assert_eq!(health.problem(), None);
        assert!(metrics.snapshot(Default::default()).history_available);

        health.failed(&HistoryError("redis: no answer within 3s".into()));
        health.failed(&HistoryError("redis: cannot reach Redis".into()));
        assert_eq!(
            health.problem().as_deref(),
            Some("history: redis: cannot reach Redis"),
            "the latest error"
        );
        let snapshot = metrics.snapshot(Default::default());
        assert!(!snapshot.history_available);
        assert_eq!(snapshot.history_errors_total, 2);

        health.ok();
        assert_eq!(health.problem(), None);
        let snapshot = metrics.snapshot(Default::default());
        assert!(snapshot.history_available);
        assert_eq!(
            snapshot.history_errors_total, 2,
            "a counter never goes back"
        );
    }
}
