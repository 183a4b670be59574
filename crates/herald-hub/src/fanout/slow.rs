//! Why a subscriber is closed as slow, and how a connection that stopped
//! being read tells its subscriptions so.
//!
//! Fan-out closes a subscriber whose queue passes its bound; the server
//! closes a connection whose client has accepted no bytes for the write
//! stall limit. The second happens below HTTP, where the subscriptions the
//! connection carried are not known (one on HTTP/1.1, any number on
//! HTTP/2), so the server hands every request on the connection the same
//! [`StallFlag`] (as a request extension) and raises it before closing: a
//! subscription dropped with its flag raised counts itself as slow, unless
//! fan-out had already closed it, so each subscriber is counted once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Why a subscriber was closed as too slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlowReason {
    /// Its queue held `--queue-size` events.
    QueueEvents,
    /// Its queue would have passed `--queue-bytes`.
    QueueBytes,
    /// Its client accepted no bytes for the write stall limit.
    WriteStall,
}

impl SlowReason {
    /// Every reason, in the order metrics list them.
    pub(crate) const ALL: [SlowReason; 3] = [
        SlowReason::QueueEvents,
        SlowReason::QueueBytes,
        SlowReason::WriteStall,
    ];

    /// The `reason` label of the metric.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SlowReason::QueueEvents => "queue_events",
            SlowReason::QueueBytes => "queue_bytes",
            SlowReason::WriteStall => "write_stall",
        }
    }

    /// For the log line.
    pub(crate) fn explain(self) -> &'static str {
        match self {
            SlowReason::QueueEvents => "its queue is full of events",
            SlowReason::QueueBytes => "its queue holds too many bytes",
            SlowReason::WriteStall => "its client stopped reading",
        }
    }
}

/// Raised by the server when it closes a connection because the client
/// stopped reading it; shared by every request on that connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct StallFlag(Arc<AtomicBool>);

impl StallFlag {
    /// The connection is being closed for a write stall.
    pub(crate) fn raise(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether [`StallFlag::raise`] was called.
    pub(crate) fn is_raised(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}
