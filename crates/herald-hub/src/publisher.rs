//! The one path from publish requests to history and fan-out.
//!
//! Every accepted update is appended to history, then dispatched to
//! fan-out, one update (or batch) at a time: that is what keeps the order
//! subscribers see identical to the order in history, so replay and live
//! never disagree. How depends on the backend:
//!
//! * With a backend that appends without waiting (memory), a publisher
//!   that finds nobody else writing appends and dispatches on its own task:
//!   no hand-over to another task, so a lone publisher's answer waits for
//!   nothing but its own append and dispatch. Publishers that find the
//!   turn taken queue for a writer task, which appends what queued as one
//!   batch when its turn comes.
//! * A backend that waits (redb: an fsync per commit) always goes through
//!   the writer task, which takes whatever requests are waiting and
//!   appends them as one batch (one commit: group commit), dispatches the
//!   stored entries in sequence order, and only then answers each
//!   publisher. It pipelines: while batch N+1 commits, batch N (already
//!   committed) is dispatched, so with many subscribers the fsync and the
//!   fan-out overlap instead of alternating.

use std::sync::Arc;
use std::task::Poll;

use tokio::sync::{mpsc, oneshot, Mutex};

use crate::fanout::Fanout;
use crate::history::{Entry, History, HistoryError, NewEntry};

/// Most requests appended in one batch.
const MAX_BATCH: usize = 1024;

type Ack = oneshot::Sender<Result<Arc<Entry>, HistoryError>>;

/// A handle to the publish path; cheap to clone. The writer task ends when
/// every handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Publisher {
    requests: mpsc::Sender<(NewEntry, Ack)>,
    /// Set when history appends without waiting.
    inline: Option<Inline>,
}

/// What an uncontended publish needs to write on its own task.
#[derive(Debug, Clone)]
struct Inline {
    /// Held while appending and dispatching, by a publisher or the writer.
    turn: Arc<Mutex<()>>,
    history: Arc<dyn History>,
    fanout: Arc<Fanout>,
}

impl Publisher {
    /// The publish path for `history`; starts the writer task on the
    /// current tokio runtime.
    pub(crate) fn spawn(history: Arc<dyn History>, fanout: Arc<Fanout>) -> Publisher {
        let (requests, rx) = mpsc::channel(MAX_BATCH * 4);
        let inline = if history.appends_immediately() {
            let inline = Inline {
                turn: Arc::new(Mutex::new(())),
                history,
                fanout,
            };
            tokio::spawn(run_taking_turns(rx, inline.clone()));
            Some(inline)
        } else {
            tokio::spawn(run(rx, history, fanout));
            None
        };
        Publisher { requests, inline }
    }

    /// Stores and dispatches one update; resolves once it is in history.
    pub(crate) async fn publish(&self, entry: NewEntry) -> Result<Arc<Entry>, HistoryError> {
        if let Some(inline) = &self.inline {
            // Nobody else is writing: write here, with no hand-over. When
            // someone is, queue for the writer, which batches.
            if let Ok(_turn) = inline.turn.try_lock() {
                // Completes in the poll that starts it (`appends_immediately`),
                // so nothing can cancel the dispatch away from the append.
                let stored = inline.history.append(vec![entry]).await?;
                inline.fanout.dispatch(&stored);
                return stored
                    .into_iter()
                    .next()
                    .ok_or_else(|| HistoryError("history stored nothing".into()));
            }
        }
        let (ack, done) = oneshot::channel();
        self.requests
            .send((entry, ack))
            .await
            .map_err(|_| writer_stopped())?;
        done.await.map_err(|_| writer_stopped())?
    }
}

/// The writer task is gone: it only ends when the runtime stops or a
/// history backend panicked (`Hub::shutdown` leaves publishing working).
fn writer_stopped() -> HistoryError {
    HistoryError(
        "the publish writer stopped (the runtime is shutting down, or the history backend failed: see the log); restart the hub".into(),
    )
}

/// The writer for a history that appends without waiting: batches what
/// publishers queued while the turn was taken, and takes its turn too.
async fn run_taking_turns(mut rx: mpsc::Receiver<(NewEntry, Ack)>, inline: Inline) {
    let mut requests = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut requests, MAX_BATCH).await > 0 {
        let (batch, acks): (Vec<NewEntry>, Vec<Ack>) = requests.drain(..).unzip();
        let _turn = inline.turn.lock().await;
        let entries = inline.history.append(batch).await;
        Stored { entries, acks }.deliver(&inline.fanout);
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

/// The writer for a history that may wait: group commit, pipelined.
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
    use crate::fanout::{Inbox, Interest, Registration};
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

    /// A fan-out with one subscriber to topic "t", queueing up to `capacity`.
    fn one_subscriber(capacity: usize) -> (Arc<Fanout>, Registration, Inbox) {
        let fanout = Arc::new(Fanout::new(
            Arc::new(TopicMatcher::new(16)),
            Arc::new(Metrics::default()),
            capacity,
        ));
        let interest = Arc::new(Interest {
            selectors: vec!["t".into()],
            private_selectors: None,
        });
        let (registration, inbox) = fanout.register(interest).unwrap();
        (fanout, registration, inbox)
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

    /// Paused time: a sleep ends only once every other task is blocked
    /// (the clock auto-advances when the runtime is idle), so it means "the
    /// publishers and the writer have gone as far as they can", not a guess
    /// at how long that takes.
    #[tokio::test(start_paused = true)]
    async fn a_batch_is_dispatched_while_the_next_commits_and_never_before_its_own_commit() {
        let history = Arc::new(Gated {
            inner: MemoryHistory::new(100),
            permits: Semaphore::new(0),
            started: AtomicUsize::new(0),
        });
        let (fanout, _registration, mut inbox) = one_subscriber(16);
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
        tokio::time::sleep(Duration::from_millis(50)).await; // until "b" is queued

        // "a" commits; "b" starts committing, and "a" goes out meanwhile.
        history.permits.add_permits(1);
        assert_eq!(next(&mut inbox).await, "a");
        assert_eq!(history.started.load(Ordering::SeqCst), 2);
        assert_eq!(first.await.unwrap().unwrap().id, "a");
        // "b" is not delivered before its commit completes: not once all
        // else is idle.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(std::future::poll_fn(|cx| inbox.poll_recv(cx))
            .now_or_never()
            .is_none());
        assert!(!second.is_finished());

        history.permits.add_permits(1);
        assert_eq!(next(&mut inbox).await, "b");
        assert_eq!(second.await.unwrap().unwrap().seq, 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_publishers_are_dispatched_in_history_order() {
        let history: Arc<dyn History> = Arc::new(MemoryHistory::new(10_000));
        assert!(history.appends_immediately(), "exercises the inline path");
        let (fanout, _registration, mut inbox) = one_subscriber(10_000);
        let publisher = Publisher::spawn(Arc::clone(&history), fanout);

        // Enough concurrency that some publishers find the turn taken and
        // queue for the writer while others write inline.
        let tasks: Vec<_> = (0..8)
            .map(|p| {
                let publisher = publisher.clone();
                tokio::spawn(async move {
                    for i in 0..250 {
                        publisher
                            .publish(update(&format!("{p}-{i}")))
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let stored = history.read_after(0, 10_000).await.unwrap();
        assert_eq!(stored.len(), 2000);
        for (expected, entry) in stored.iter().enumerate() {
            let received = std::future::poll_fn(|cx| inbox.poll_recv(cx))
                .now_or_never()
                .flatten()
                .expect("every stored entry was dispatched");
            assert_eq!(received.seq, expected as u64 + 1);
            assert_eq!(received.id, entry.id);
        }
        assert!(std::future::poll_fn(|cx| inbox.poll_recv(cx))
            .now_or_never()
            .is_none());
    }
}
