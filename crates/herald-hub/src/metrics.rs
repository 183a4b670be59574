//! Counters for `/metrics`, in the Prometheus text format.
//!
//! Every step of both paths bumps a counter here: publishes accepted and
//! rejected, subscribers connected, events delivered to queues, and slow
//! subscribers closed (in all, and by why). Plain atomics: the hot path
//! pays one relaxed add.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::fanout::SlowReason;
use crate::history::HistoryStats;

/// The hub's counters.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) subscribers: AtomicU64,
    pub(crate) subscriptions_total: AtomicU64,
    pub(crate) publishes_total: AtomicU64,
    pub(crate) publishes_rejected_total: AtomicU64,
    pub(crate) events_delivered_total: AtomicU64,
    pub(crate) slow_disconnects_total: AtomicU64,
    slow_queue_events: AtomicU64,
    slow_queue_bytes: AtomicU64,
    slow_write_stall: AtomicU64,
    pub(crate) history_errors_total: AtomicU64,
    /// 1 while history is failing (see `health`), else 0.
    pub(crate) history_failing: AtomicU64,
    pub(crate) patterns: AtomicU64,
    pub(crate) patterns_refused_total: AtomicU64,
    pub(crate) lifetime_ends_total: AtomicU64,
    pub(crate) publishes_rate_limited_total: AtomicU64,
    pub(crate) subscribers_refused_total: AtomicU64,
    pub(crate) client_limit_refused_total: AtomicU64,
    /// Open connections of the hub's servers: what the budget of HTTP/1.1
    /// streams counts (`server::Server::http1_stream_connections`).
    pub(crate) connections: AtomicU64,
    /// Clients holding streams, as the per-client limit counts them.
    pub(crate) client_limit_clients: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Subscribers connected now.
    pub subscribers: u64,
    /// Subscriptions opened since start.
    pub subscriptions_total: u64,
    /// Updates accepted since start.
    pub publishes_total: u64,
    /// Publish requests refused since start (bad input, auth, size).
    pub publishes_rejected_total: u64,
    /// Events queued to subscribers since start (live and replayed).
    pub events_delivered_total: u64,
    /// Subscribers closed as too slow: their queue overflowed (in events
    /// or in bytes), or their client stopped reading for the server's
    /// write stall limit. The sum of [`MetricsSnapshot::slow_disconnects`].
    pub slow_disconnects_total: u64,
    /// [`MetricsSnapshot::slow_disconnects_total`] by why.
    pub slow_disconnects: SlowDisconnects,
    /// History operations (appends, reads of a shared log) that failed.
    pub history_errors_total: u64,
    /// Whether history worked at its last use.
    pub history_available: bool,
    /// Distinct URI templates and URL patterns held by subscribers now.
    pub patterns: u64,
    /// Subscriptions refused because their patterns would pass the limit
    /// of distinct patterns.
    pub patterns_refused_total: u64,
    /// Streams ended because they reached their maximum lifetime.
    pub lifetime_ends_total: u64,
    /// Publishes refused because their token passed its rate.
    pub publishes_rate_limited_total: u64,
    /// Subscriptions refused because the hub held its limit of subscribers,
    /// or (HTTP/1.1) its open connections the budget for streams.
    pub subscribers_refused_total: u64,
    /// Subscriptions refused because their client (token subject, or
    /// address) held its limit of streams.
    pub client_limit_refused_total: u64,
    /// Clients (token subjects, or addresses) holding streams now, as the
    /// limit of streams per client counts them; 0 when it is off.
    pub client_limit_clients: u64,
    /// Connections open now on the hub's own server (`server::Server`),
    /// each holding one of the process's open files.
    pub connections: u64,
    /// What history holds.
    pub history: HistoryStats,
}

/// Slow subscribers closed since start, by why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlowDisconnects {
    /// Their queue held the most events it may (`queue_capacity`).
    pub queue_events: u64,
    /// Their queue would have passed its byte bound (`queue_bytes`).
    pub queue_bytes: u64,
    /// Their connection was closed because the client accepted no bytes
    /// for the server's write stall limit (and fan-out had not closed them
    /// already).
    pub write_stall: u64,
}

impl Metrics {
    /// Counts a subscriber closed as too slow.
    pub(crate) fn slow_disconnect(&self, reason: SlowReason) {
        Metrics::inc(&self.slow_disconnects_total);
        Metrics::inc(match reason {
            SlowReason::QueueEvents => &self.slow_queue_events,
            SlowReason::QueueBytes => &self.slow_queue_bytes,
            SlowReason::WriteStall => &self.slow_write_stall,
        });
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set(gauge: &AtomicU64, value: u64) {
        gauge.store(value, Ordering::Relaxed);
    }

    pub(crate) fn dec(counter: &AtomicU64) {
        counter.fetch_sub(1, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub(crate) fn snapshot(&self, history: HistoryStats) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            subscribers: get(&self.subscribers),
            subscriptions_total: get(&self.subscriptions_total),
            publishes_total: get(&self.publishes_total),
            publishes_rejected_total: get(&self.publishes_rejected_total),
            events_delivered_total: get(&self.events_delivered_total),
            slow_disconnects_total: get(&self.slow_disconnects_total),
            slow_disconnects: SlowDisconnects {
                queue_events: get(&self.slow_queue_events),
                queue_bytes: get(&self.slow_queue_bytes),
                write_stall: get(&self.slow_write_stall),
            },
            history_errors_total: get(&self.history_errors_total),
            history_available: get(&self.history_failing) == 0,
            patterns: get(&self.patterns),
            patterns_refused_total: get(&self.patterns_refused_total),
            lifetime_ends_total: get(&self.lifetime_ends_total),
            publishes_rate_limited_total: get(&self.publishes_rate_limited_total),
            subscribers_refused_total: get(&self.subscribers_refused_total),
            client_limit_refused_total: get(&self.client_limit_refused_total),
            client_limit_clients: get(&self.client_limit_clients),
            connections: get(&self.connections),
            history,
        }
    }
}

impl SlowDisconnects {
    fn get(&self, reason: SlowReason) -> u64 {
        match reason {
            SlowReason::QueueEvents => self.queue_events,
            SlowReason::QueueBytes => self.queue_bytes,
            SlowReason::WriteStall => self.write_stall,
        }
    }
}

impl MetricsSnapshot {
    /// The Prometheus text exposition of this snapshot.
    pub fn to_prometheus(&self) -> String {
        let rows: [(&str, &str, &str, u64); 20] = [
            (
                "herald_subscribers",
                "gauge",
                "Subscribers connected now.",
                self.subscribers,
            ),
            (
                "herald_connections",
                "gauge",
                "Connections open now on the hub's server, each holding an open file.",
                self.connections,
            ),
            (
                "herald_subscriptions_total",
                "counter",
                "Subscriptions opened since start.",
                self.subscriptions_total,
            ),
            (
                "herald_publishes_total",
                "counter",
                "Updates accepted since start.",
                self.publishes_total,
            ),
            (
                "herald_publishes_rejected_total",
                "counter",
                "Publish requests refused since start.",
                self.publishes_rejected_total,
            ),
            (
                "herald_events_delivered_total",
                "counter",
                "Events queued to subscribers since start.",
                self.events_delivered_total,
            ),
            (
                "herald_slow_subscriber_disconnects_total",
                "counter",
                "Subscribers closed as too slow: their queue overflowed or they stopped reading.",
                self.slow_disconnects_total,
            ),
            (
                "herald_history_errors_total",
                "counter",
                "History operations that failed (appends, reads of a shared log).",
                self.history_errors_total,
            ),
            (
                "herald_history_available",
                "gauge",
                "1 when history worked at its last use, 0 while it fails.",
                u64::from(self.history_available),
            ),
            (
                "herald_history_reopens_total",
                "counter",
                "Times the history file was reopened to recover from an I/O error (redb).",
                self.history.reopens,
            ),
            (
                "herald_patterns",
                "gauge",
                "Distinct URI templates and URL patterns held by subscribers, each compiled once.",
                self.patterns,
            ),
            (
                "herald_patterns_refused_total",
                "counter",
                "Subscriptions refused because the hub held its limit of distinct patterns.",
                self.patterns_refused_total,
            ),
            (
                "herald_stream_lifetime_ends_total",
                "counter",
                "Streams ended because they reached the maximum stream lifetime.",
                self.lifetime_ends_total,
            ),
            (
                "herald_publishes_rate_limited_total",
                "counter",
                "Publishes refused (429) because their token passed its rate.",
                self.publishes_rate_limited_total,
            ),
            (
                "herald_subscribers_refused_total",
                "counter",
                "Subscriptions refused (503) because the hub held its limit of subscribers, or its open connections the budget for HTTP/1.1 streams.",
                self.subscribers_refused_total,
            ),
            (
                "herald_client_limit_refused_total",
                "counter",
                "Subscriptions refused (429) because their client (token subject, or address) held its limit of streams.",
                self.client_limit_refused_total,
            ),
            (
                "herald_client_limit_clients",
                "gauge",
                "Clients (token subjects, or addresses) holding event streams now, as the limit of streams per client counts them (0 when it is off).",
                self.client_limit_clients,
            ),
            (
                "herald_history_events",
                "gauge",
                "Events held in history.",
                self.history.events,
            ),
            (
                "herald_history_bytes",
                "gauge",
                "Approximate bytes held in history.",
                self.history.bytes,
            ),
            (
                "herald_history_last_sequence",
                "gauge",
                "Sequence number of the last event stored.",
                self.history.last_seq,
            ),
        ];
        let mut out = String::with_capacity(1024);
        for (name, kind, help, value) in rows {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        // The same disconnects by reason: a family of its own, so that the
        // unlabelled total above keeps its name and meaning.
        let name = "herald_slow_subscriber_disconnects_by_reason_total";
        let _ = writeln!(
            out,
            "# HELP {name} Subscribers closed as too slow, by reason: queue_events (--queue-size), queue_bytes (--queue-bytes), write_stall (the client stopped reading).\n# TYPE {name} counter"
        );
        for reason in SlowReason::ALL {
            let value = self.slow_disconnects.get(reason);
            let _ = writeln!(out, "{name}{{reason=\"{}\"}} {value}", reason.as_str());
        }
        out
    }
}
