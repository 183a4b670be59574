//! Whether history works right now, as `/readyz` and `/metrics` tell it.
//!
//! The publisher reports each append, and on a shared log the reader
//! reports each read: one failure makes the hub not ready (a load balancer
//! then sends publishers elsewhere) until the next success. Subscribers
//! stay connected either way; they only miss nothing if the log comes back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::history::HistoryError;
use crate::metrics::Metrics;

/// The health of the hub's history.
#[derive(Debug)]
pub(crate) struct Health {
    metrics: Arc<Metrics>,
    failing: AtomicBool,
    /// The last error, while failing.
    error: Mutex<Option<String>>,
}

impl Health {
    pub(crate) fn new(metrics: Arc<Metrics>) -> Health {
        Health {
            metrics,
            failing: AtomicBool::new(false),
            error: Mutex::new(None),
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
        *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.to_string());
        if !self.failing.swap(true, Ordering::AcqRel) {
            Metrics::set(&self.metrics.history_failing, 1);
            tracing::error!(%error, "history is failing: the hub is not ready");
        }
    }

    /// What is wrong, while history is failing.
    pub(crate) fn problem(&self) -> Option<String> {
        if !self.failing.load(Ordering::Acquire) {
            return None;
        }
        let error = self.error.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Some(error.unwrap_or_else(|| "history is failing".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
