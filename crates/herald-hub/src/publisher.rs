//! The single writer between publish requests and history.
//!
//! Every accepted update passes through one task, which takes whatever
//! requests are waiting, appends them to history as one batch (one commit
//! for a durable backend: group commit), dispatches the stored entries to
//! fan-out in sequence order, and only then answers each publisher. One
//! writer is what keeps the order that subscribers see identical to the
//! order in history, so replay and live never disagree.
//!
//! The writer pipelines: while batch N+1 commits, batch N (already
//! committed) is dispatched. With a durable backend and many subscribers
//! the fsync and the fan-out then overlap instead of alternating.

use std::sync::Arc;
use std::task::Poll;

use tokio::sync::{mpsc, oneshot};

use crate::fanout::Fanout;
use crate::history::{Entry, History, HistoryError, NewEntry};

/// Most requests appended in one batch.
const MAX_BATCH: usize = 1024;

type Ack = oneshot::Sender<Result<Arc<Entry>, HistoryError>>;

/// A handle to the writer task; the task ends when every handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Publisher {
    requests: mpsc::Sender<(NewEntry, Ack)>,
}

impl Publisher {
    /// Starts the writer task on the current tokio runtime.
    pub(crate) fn spawn(history: Arc<dyn History>, fanout: Arc<Fanout>) -> Publisher {
        let (requests, rx) = mpsc::channel(MAX_BATCH * 4);
        tokio::spawn(run(rx, history, fanout));
        Publisher { requests }
    }

    /// Stores and dispatches one update; resolves once it is in history.
    pub(crate) async fn publish(&self, entry: NewEntry) -> Result<Arc<Entry>, HistoryError> {
        let (ack, done) = oneshot::channel();
        self.requests
            .send((entry, ack))
            .await
            .map_err(|_| HistoryError("the hub is shutting down".into()))?;
        done.await
            .map_err(|_| HistoryError("the hub is shutting down".into()))?
    }
}

/// A batch that is in history, waiting to be dispatched and answered.
struct Stored {
    entries: Result<Vec<Arc<Entry>>, HistoryError>,
    acks: Vec<Ack>,
}

impl Stored {
    /// Dispatches the batch to fan-out, then answers its publishers.
    fn deliver(self, fanout: &Fanout) {
        match self.entries {
            Ok(stored) => {
                fanout.dispatch(&stored);
                for (ack, entry) in self.acks.into_iter().zip(stored) {
                    // A publisher that went away still had its update stored.
                    let _ = ack.send(Ok(entry));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "history append failed; the batch was refused");
                for ack in self.acks {
                    let _ = ack.send(Err(e.clone()));
                }
            }
        }
    }
}

async fn run(
    mut rx: mpsc::Receiver<(NewEntry, Ack)>,
    history: Arc<dyn History>,
    fanout: Arc<Fanout>,
) {
    let mut requests = Vec::with_capacity(MAX_BATCH);
    // The batch stored last, not yet dispatched: it is dispatched while the
    // next batch is being committed, so a durable backend's fsync and the
    // fan-out overlap instead of taking turns. Dispatch order is still
    // storage order, and each batch is dispatched only after its own commit.
    let mut stored: Option<Stored> = None;
    loop {
        if rx.is_empty() {
            // Nothing to overlap with: deliver now rather than wait.
            if let Some(batch) = stored.take() {
                batch.deliver(&fanout);
            }
        }
        if rx.recv_many(&mut requests, MAX_BATCH).await == 0 {
            break;
        }
        let (batch, acks): (Vec<NewEntry>, Vec<Ack>) = requests.drain(..).unzip();
        let mut append = history.append(batch);
        // Start the commit (a durable backend hands it to a blocking
        // thread) before dispatching the previous batch.
        let started = std::future::poll_fn(|cx| Poll::Ready(append.as_mut().poll(cx))).await;
        if let Some(batch) = stored.take() {
            batch.deliver(&fanout);
        }
        let entries = match started {
            Poll::Ready(entries) => entries,
            Poll::Pending => append.await,
        };
        stored = Some(Stored { entries, acks });
    }
    if let Some(batch) = stored {
        batch.deliver(&fanout);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use async_trait::async_trait;
    use bytes::Bytes;
    use futures_util::FutureExt as _;
    use tokio::sync::Semaphore;

    use super::*;
    use crate::fanout::{Inbox, Interest};
    use crate::history::{HistoryStats, MemoryHistory};
    use crate::metrics::Metrics;
    use crate::topic::TopicMatcher;

    /// A memory history whose appends each wait for a permit.
    #[derive(Debug)]
    struct Gated {
        inner: MemoryHistory,
        permits: Semaphore,
        started: AtomicUsize,
    }

    #[async_trait]
    impl History for Gated {
        async fn append(&self, batch: Vec<NewEntry>) -> Result<Vec<Arc<Entry>>, HistoryError> {
            self.started.fetch_add(1, Ordering::SeqCst);
            self.permits.acquire().await.unwrap().forget();
            self.inner.append(batch).await
        }
        async fn seq_of(&self, id: &str) -> Result<Option<u64>, HistoryError> {
            self.inner.seq_of(id).await
        }
        async fn read_after(
            &self,
            after: u64,
            limit: usize,
        ) -> Result<Vec<Arc<Entry>>, HistoryError> {
            self.inner.read_after(after, limit).await
        }
        fn stats(&self) -> HistoryStats {
            self.inner.stats()
        }
    }

    fn update(id: &str) -> NewEntry {
        NewEntry {
            id: id.into(),
            topics: vec!["t".into()],
            private: false,
            frame: Bytes::from(format!("id: {id}\n\n")),
        }
    }

    async fn next(inbox: &mut Inbox) -> String {
        let entry = tokio::time::timeout(
            Duration::from_secs(5),
            std::future::poll_fn(|cx| inbox.poll_recv(cx)),
        )
        .await
        .expect("an entry in time")
        .expect("the inbox is open");
        entry.id.clone()
    }

    async fn until(what: &str, done: impl Fn() -> bool) {
        for _ in 0..500 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{what} never happened");
    }

    #[tokio::test]
    async fn a_batch_is_dispatched_while_the_next_commits_and_never_before_its_own_commit() {
        let history = Arc::new(Gated {
            inner: MemoryHistory::new(100),
            permits: Semaphore::new(0),
            started: AtomicUsize::new(0),
        });
        let fanout = Arc::new(Fanout::new(
            Arc::new(TopicMatcher::new(16)),
            Arc::new(Metrics::default()),
            16,
        ));
        let interest = Arc::new(Interest {
            selectors: vec!["t".into()],
            private_selectors: None,
        });
        let (_registration, mut inbox) = fanout.register(interest).unwrap();
        let publisher = Publisher::spawn(history.clone(), fanout);

        let first = tokio::spawn({
            let publisher = publisher.clone();
            async move { publisher.publish(update("a")).await }
        });
        until("the first commit starting", || {
            history.started.load(Ordering::SeqCst) == 1
        })
        .await;
        let second = tokio::spawn({
            let publisher = publisher.clone();
            async move { publisher.publish(update("b")).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await; // "b" is queued

        // "a" commits; "b" starts committing, and "a" goes out meanwhile.
        history.permits.add_permits(1);
        assert_eq!(next(&mut inbox).await, "a");
        assert_eq!(history.started.load(Ordering::SeqCst), 2);
        assert_eq!(first.await.unwrap().unwrap().id, "a");
        // "b" is not delivered before its commit completes.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(std::future::poll_fn(|cx| inbox.poll_recv(cx))
            .now_or_never()
            .is_none());
        assert!(!second.is_finished());

        history.permits.add_permits(1);
        assert_eq!(next(&mut inbox).await, "b");
        assert_eq!(second.await.unwrap().unwrap().seq, 2);
    }
}
