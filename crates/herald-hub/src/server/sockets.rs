//! The server's open connections, against the budget kept for HTTP/1.1
//! event streams.
//!
//! Over HTTP/1.1 every event stream holds a connection, and so one of the
//! process's open files, for as long as it lasts; once the files run out
//! `accept` fails and nothing gets in, publishers and health checks
//! included. So the server counts its open connections, and past
//! [`Sockets::for_http1_streams`] a new HTTP/1.1 subscription is refused
//! (503, by the subscribe handler, which sees the [`SocketsShort`] the
//! server puts on the request) while the files left serve everything
//! else. HTTP/2 streams share their connection's file and are not refused
//! here; what they cost is memory, which `HubConfig::max_subscribers`
//! bounds. The count is the hub's `herald_connections` gauge, so that two
//! servers of one hub (plain and TLS listeners) count the process's files
//! together.

use std::ops::Deref;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::Shared;
use crate::http::peer::SocketsShort;
use crate::metrics::Metrics;

/// Open files kept for what is not an HTTP/1.1 event stream: publishers,
/// health checks, metrics scrapes, HTTP/2 connections, the history file,
/// Redis.
pub(super) const FILE_HEADROOM: usize = 256;

/// The hub's open connections, against a budget.
#[derive(Debug)]
pub(super) struct Sockets {
    /// Counts them (`connections`).
    metrics: Arc<Metrics>,
    /// Most open connections at which an HTTP/1.1 subscription is still
    /// admitted (its own connection counted).
    for_http1_streams: usize,
}

impl Sockets {
    pub(super) fn new(metrics: Arc<Metrics>, for_http1_streams: usize) -> Sockets {
        Sockets {
            metrics,
            for_http1_streams,
        }
    }

    /// What to put on an HTTP/1.x request when the open connections are
    /// past the budget for HTTP/1.1 streams.
    pub(super) fn short(&self) -> Option<SocketsShort> {
        let open = self.metrics.connections.load(Ordering::Relaxed);
        (usize::try_from(open).unwrap_or(usize::MAX) > self.for_http1_streams)
            .then_some(SocketsShort(self.for_http1_streams))
    }
}

/// A connection task's share of the server: counted among the open
/// connections from accept until the task ends, however it ends.
pub(super) struct Counted(Arc<Shared>);

impl Counted {
    pub(super) fn new(shared: Arc<Shared>) -> Counted {
        Metrics::inc(&shared.sockets.metrics.connections);
        Counted(shared)
    }
}

impl Deref for Counted {
    type Target = Arc<Shared>;

    fn deref(&self) -> &Arc<Shared> {
        &self.0
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        Metrics::dec(&self.0.sockets.metrics.connections);
    }
}

/// The default of [`super::Server::http1_stream_connections`]: the
/// process's open-file limit less [`FILE_HEADROOM`] (at least 1), or no
/// budget where the limit cannot be read (`/proc` is Linux's).
pub(super) fn default_for_http1_streams() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    open_file_limit(&limits)
        .map(|n| {
            usize::try_from(n)
                .unwrap_or(usize::MAX)
                .saturating_sub(FILE_HEADROOM)
                .max(1)
        })
        .unwrap_or(usize::MAX)
}

/// The soft "Max open files" of a `/proc/self/limits` text; `None` when
/// absent or "unlimited".
fn open_file_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_open_file_limit_is_read_from_proc_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             95524                95524                processes \n\
                      Max open files            20000                20000                files     \n";
        assert_eq!(open_file_limit(limits), Some(20000));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(open_file_limit(unlimited), None);
        assert_eq!(open_file_limit(""), None);
    }

    #[test]
    fn this_process_has_a_budget_below_its_file_limit() {
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
        let files = usize::try_from(open_file_limit(&limits).unwrap()).unwrap();
        assert_eq!(
            default_for_http1_streams(),
            files.saturating_sub(FILE_HEADROOM).max(1)
        );
    }

    #[test]
    fn requests_are_marked_only_past_the_budget() {
        let sockets = Sockets::new(Arc::default(), 2);
        sockets.metrics.connections.store(2, Ordering::Relaxed);
        assert!(sockets.short().is_none());
        sockets.metrics.connections.store(3, Ordering::Relaxed);
        assert_eq!(sockets.short().map(|s| s.0), Some(2));
    }
}
