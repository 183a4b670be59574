//! The one path from publish requests to the log, and, on a log that only
//! this process writes, to the dispatcher.
//!
//! On such a log (memory, redb), every accepted update is appended, then
//! handed to the [`Dispatcher`], one update (or batch) at a time: that is
//! what keeps the order subscribers see identical to the order in history,
//! so replay and live never disagree. Appending and dispatching take turns.
//!
//! On a log whose appends never wait ([`History::appends_at_once`]:
//! memory), every publisher appends and dispatches on its own task, under
//! a lock held for just that and never across an `.await`: concurrent
//! publishers wait for each other on the lock, but no update is handed to
//! another task and no answer comes back through a channel. With 32
//! concurrent publishers, queueing for a writer task cost two task
//! wake-ups per publish (bench/RESULTS.md, "Publish path (issue 14)").
//! On a log that may wait (redb):
//!
//! * A publisher that finds nobody else writing appends and dispatches on
//!   its own task while appends complete at once: no hand-over to
//!   another task, so a lone publisher's answer waits for nothing but its
//!   own append and dispatch. An append that has to wait (redb's fsync)
//!   is finished on a task of its own, and from then on every update goes
//!   through the writer task, which suits a log that waits.
//! * Publishers that find the turn taken queue for the writer task, which
//!   takes whatever requests are waiting and appends them as one batch (one
//!   commit: group commit), dispatches the stored entries in sequence
//!   order, and only then answers each publisher. It pipelines: while batch
//!   N+1 commits, batch N (already committed) is dispatched, so with many
//!   subscribers the fsync and the fan-out overlap instead of alternating.
//!
//! On a log that other nodes append to (Redis Streams), the order is the
//! log's: a publish only appends, and this node's reader dispatches the
//! entry when it reads it back, in log order with everybody else's (see
//! `dispatcher`). The 200 then means "stored in the shared log".

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;

use futures_util::FutureExt as _;
use tokio::sync::{mpsc, oneshot, Mutex, OwnedMutexGuard};

use crate::dispatcher::Dispatcher;
use crate::health::Health;
use crate::history::{Entry, History, HistoryError, NewEntry};

/// Most requests appended in one batch.
const MAX_BATCH: usize = 1024;

type Ack = oneshot::Sender<Result<Arc<Entry>, HistoryError>>;
type Stored = Result<Vec<Arc<Entry>>, HistoryError>;

/// A handle to the publish path; cheap to clone. The writer task ends when
/// every handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Publisher {
    history: Arc<dyn History>,
    health: Arc<Health>,
    /// Who appends and dispatches.
    path: Path,
}

/// How an update goes from a publisher to the log and the dispatcher.
#[derive(Debug, Clone)]
enum Path {
    /// A log that only this process writes, whose appends never wait.
    AtOnce(Arc<AtOnce>),
    /// A log that only this process writes, whose appends may wait.
    Local(Local),
    /// A log that other nodes append to as well, whose reader dispatches.
    Shared,
}

/// The publish path of a log that only this process writes and whose
/// appends never wait: each publisher appends and dispatches itself.
#[derive(Debug)]
struct AtOnce {
    /// Held while appending and dispatching one update, which is all that
    /// keeps dispatch order equal to log order. Never held across an
    /// `.await`: the append completes at its first poll.
    turn: std::sync::Mutex<()>,
    dispatcher: Arc<Dispatcher>,
}

/// The publish path of a log that only this process writes.
#[derive(Debug, Clone)]
struct Local {
    requests: mpsc::Sender<(NewEntry, Ack)>,
    /// Held while appending and dispatching, by a publisher or the writer.
    turn: Arc<Mutex<()>>,
    /// Cleared once an append had to wait: from then on the writer task
    /// appends everything (see the module docs).
    inline: Arc<AtomicBool>,
    dispatcher: Arc<Dispatcher>,
}

impl Publisher {
    /// The publish path for a log that only this process writes: appended
    /// entries go to `dispatcher`. Unless the log's appends never wait,
    /// starts the writer task on the current tokio runtime.
    pub(crate) fn local(
        history: Arc<dyn History>,
        dispatcher: Arc<Dispatcher>,
        health: Arc<Health>,
    ) -> Publisher {
        if history.appends_at_once() {
            return Publisher {
                history,
                health,
                path: Path::AtOnce(Arc::new(AtOnce {
                    turn: std::sync::Mutex::new(()),
                    dispatcher,
                })),
            };
        }
        let (requests, rx) = mpsc::channel(MAX_BATCH * 4);
        let local = Local {
            requests,
            turn: Arc::new(Mutex::new(())),
            inline: Arc::new(AtomicBool::new(true)),
            dispatcher,
        };
        tokio::spawn(run(
            rx,
            local.turn.clone(),
            Arc::clone(&history),
            Writer {
                dispatcher: Arc::clone(&local.dispatcher),
                health: Arc::clone(&health),
            },
        ));
        Publisher {
            history,
            health,
            path: Path::Local(local),
        }
    }

    /// The publish path for a log that other nodes append to as well.
    pub(crate) fn shared(history: Arc<dyn History>, health: Arc<Health>) -> Publisher {
        Publisher {
            history,
            health,
            path: Path::Shared,
        }
    }

    /// Stores one update (and, on a local log, dispatches it); resolves
    /// once it is in history.
    pub(crate) async fn publish(&self, entry: NewEntry) -> Result<Arc<Entry>, HistoryError> {
        let local = match &self.path {
            Path::AtOnce(at_once) => return first(self.append_at_once(at_once, entry)),
            Path::Local(local) => local,
            Path::Shared => {
                let stored = self.history.append(vec![entry]).await;
                return first(report(&self.health, stored));
            }
        };
        if local.inline.load(Ordering::Relaxed) {
            // Nobody else is writing: write here, with no hand-over. When
            // someone is, queue for the writer, which batches.
            if let Ok(turn) = Arc::clone(&local.turn).try_lock_owned() {
                return first(self.append_inline(local, entry, turn).await);
            }
        }
        let (ack, done) = oneshot::channel();
        local
            .requests
            .send((entry, ack))
            .await
            .map_err(|_| writer_stopped())?;
        done.await.map_err(|_| writer_stopped())?
    }

    /// Appends and dispatches `entry` on this task, holding `at_once`'s
    /// turn for no longer than that.
    fn append_at_once(&self, at_once: &AtOnce, entry: NewEntry) -> Stored {
        // The turn guards no data, only the order: a panic while it was
        // held leaves nothing to repair.
        let turn = at_once
            .turn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(stored) = self.history.append(vec![entry]).now_or_never() else {
            // The backend broke its word: the append is dropped
            // unfinished, and the publisher told so.
            return report(
                &self.health,
                Err(HistoryError(
                    "the history backend promised appends that never wait, and one waited; it was abandoned".into(),
                )),
            );
        };
        let stored = report(&self.health, stored);
        if let Ok(entries) = &stored {
            at_once.dispatcher.dispatch(entries);
        }
        drop(turn);
        stored
    }

    /// Appends and dispatches `entry` holding `turn`: on this task when the
    /// append completes at once, else on a task of its own, so that a
    /// publisher who goes away cannot separate the dispatch from the append.
    async fn append_inline(
        &self,
        local: &Local,
        entry: NewEntry,
        turn: OwnedMutexGuard<()>,
    ) -> Stored {
        let history = Arc::clone(&self.history);
        let dispatcher = Arc::clone(&local.dispatcher);
        let health = Arc::clone(&self.health);
        let mut job: Pin<Box<dyn Future<Output = Stored> + Send>> = Box::pin(async move {
            let stored = report(&health, history.append(vec![entry]).await);
            if let Ok(entries) = &stored {
                dispatcher.dispatch(entries);
            }
            drop(turn);
            stored
        });
        if let Some(stored) = (&mut job).now_or_never() {
            return stored;
        }
        local.inline.store(false, Ordering::Relaxed);
        tokio::spawn(job).await.map_err(|_| writer_stopped())?
    }
}

/// Notes the outcome of an append in the hub's health.
fn report(health: &Health, stored: Stored) -> Stored {
    match &stored {
        Ok(_) => health.ok(),
        Err(e) => health.failed(e),
    }
    stored
}

/// The one entry of a one-update batch.
fn first(stored: Stored) -> Result<Arc<Entry>, HistoryError> {
    stored?
        .into_iter()
        .next()
        .ok_or_else(|| HistoryError("history stored nothing".into()))
}

/// The writer task is gone: it only ends when the runtime stops or a
/// history backend panicked (`Hub::shutdown` leaves publishing working).
fn writer_stopped() -> HistoryError {
    HistoryError(
        "the publish writer stopped (the runtime is shutting down, or the history backend failed: see the log); restart the hub".into(),
    )
}

/// Where the writer sends what it stored.
struct Writer {
    dispatcher: Arc<Dispatcher>,
    health: Arc<Health>,
}

/// A batch that is in history, waiting to be dispatched and answered.
struct Committed {
    entries: Stored,
    acks: Vec<Ack>,
}

impl Writer {
    /// Dispatches a committed batch, then answers its publishers.
    fn deliver(&self, batch: Committed) {
        match report(&self.health, batch.entries) {
            Ok(stored) => {
                self.dispatcher.dispatch(&stored);
                for (ack, entry) in batch.acks.into_iter().zip(stored) {
                    // A publisher that went away still had its update stored.
                    let _ = ack.send(Ok(entry));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "history append failed; the batch was refused");
                for ack in batch.acks {
                    let _ = ack.send(Err(e.clone()));
                }
            }
        }
    }
}

/// The writer task: group commit, pipelined. It holds the turn while it
/// has work, and lets it go when idle so that a lone publisher can write
/// on its own task again.
async fn run(
    mut rx: mpsc::Receiver<(NewEntry, Ack)>,
    turn: Arc<Mutex<()>>,
    history: Arc<dyn History>,
    writer: Writer,
) {
    let mut requests = Vec::with_capacity(MAX_BATCH);
    // The batch stored last, not yet dispatched: it is dispatched while the
    // next batch is being committed, so a durable backend's fsync and the
    // fan-out overlap instead of taking turns. Dispatch order is still
    // storage order, and each batch is dispatched only after its own commit.
    let mut stored: Option<Committed> = None;
    let mut held: Option<OwnedMutexGuard<()>> = None;
    loop {
        if rx.is_empty() {
            // Nothing to overlap with: deliver now rather than wait.
            if let Some(batch) = stored.take() {
                writer.deliver(batch);
            }
            held = None;
        }
        if rx.recv_many(&mut requests, MAX_BATCH).await == 0 {
            break;
        }
        if held.is_none() {
            held = Some(Arc::clone(&turn).lock_owned().await);
        }
        let (batch, acks): (Vec<NewEntry>, Vec<Ack>) = requests.drain(..).unzip();
        let mut append = history.append(batch);
        // Start the commit (a durable backend hands it to a blocking
        // thread) before dispatching the previous batch.
        let started = std::future::poll_fn(|cx| Poll::Ready(append.as_mut().poll(cx))).await;
        if let Some(batch) = stored.take() {
            writer.deliver(batch);
        }
        let entries = match started {
            Poll::Ready(entries) => entries,
            Poll::Pending => append.await,
        };
        stored = Some(Committed { entries, acks });
    }
    if let Some(batch) = stored {
        writer.deliver(batch);
    }
    drop(held);
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use async_trait::async_trait;
    use bytes::Bytes;
    use futures_util::FutureExt as _;
    use tokio::sync::Semaphore;

    use super::*;
    use crate::fanout::{Fanout, Inbox, Interest, Registration};
    use crate::history::{HistoryStats, MemoryHistory};
    use crate::metrics::Metrics;

    /// A memory history that says `at_once` of its appends whatever
    /// they do (a durable backend's `false` sends publishers through the
    /// writer task; `true` from one whose appends wait is a broken
    /// promise), and whose appends each wait for one of its `permits`.
    #[derive(Debug)]
    struct Says {
        inner: MemoryHistory,
        at_once: bool,
        permits: Semaphore,
        /// Appends begun, waiting for their permit or past it.
        started: AtomicUsize,
    }

    impl Says {
        /// Appends that wait until the test adds permits.
        fn gated(at_once: bool) -> Arc<Says> {
            Says::new(at_once, 0, 100)
        }

        /// Appends that never wait, whatever they are said to do.
        fn open(at_once: bool, capacity: usize) -> Arc<Says> {
            Says::new(at_once, Semaphore::MAX_PERMITS, capacity)
        }

        fn new(at_once: bool, permits: usize, capacity: usize) -> Arc<Says> {
            Arc::new(Says {
                inner: MemoryHistory::new(capacity),
                at_once,
                permits: Semaphore::new(permits),
                started: AtomicUsize::new(0),
            })
        }
    }

    #[async_trait]
    impl History for Says {
        async fn append(&self, batch: Vec<NewEntry>) -> Result<Vec<Arc<Entry>>, HistoryError> {
            self.started.fetch_add(1, Ordering::SeqCst);
            self.permits.acquire().await.unwrap().forget();
            self.inner.append(batch).await
        }
        fn appends_at_once(&self) -> bool {
            self.at_once
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

    /// A local publish path to `history` with one subscriber to topic "t",
    /// queueing up to `capacity`.
    fn publisher_with_subscriber(
        history: Arc<dyn History>,
        capacity: usize,
    ) -> (Publisher, Registration, Inbox) {
        let fanout = Arc::new(Fanout::new(
            crate::matcher::HubUrl::default(),
            Arc::new(Metrics::default()),
            crate::fanout::Bound::events(capacity),
            (usize::MAX, usize::MAX),
        ));
        let interest = Arc::new(Interest {
            matchers: vec![crate::matcher::Matcher::Exact("t".into())],
            grants: None,
        });
        let (registration, inbox) = fanout.register(interest).unwrap();
        let health = Arc::new(Health::new(Arc::new(Metrics::default())));
        let last_seq = history.stats().last_seq;
        let dispatcher = Arc::new(Dispatcher::new(fanout, last_seq, None));
        let publisher = Publisher::local(history, dispatcher, health);
        (publisher, registration, inbox)
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

    fn nothing_queued(inbox: &mut Inbox) -> bool {
        std::future::poll_fn(|cx| inbox.poll_recv(cx))
            .now_or_never()
            .is_none()
    }

    /// Paused time: a sleep ends only once every other task is blocked
    /// (the clock auto-advances when the runtime is idle), so it means "the
    /// publishers and the writer have gone as far as they can", not a guess
    /// at how long that takes.
    #[tokio::test(start_paused = true)]
    async fn a_batch_is_dispatched_while_the_next_commits_and_never_before_its_own_commit() {
        let history = Says::gated(false);
        let (publisher, _registration, mut inbox) = publisher_with_subscriber(history.clone(), 16);
        // The first append waits: from then on the writer task appends.
        history.permits.add_permits(1);
        publisher.publish(update("w")).await.unwrap();
        assert_eq!(next(&mut inbox).await, "w");

        let first = tokio::spawn({
            let publisher = publisher.clone();
            async move { publisher.publish(update("a")).await }
        });
        until("the first commit starting", || {
            history.started.load(Ordering::SeqCst) == 2
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
        assert_eq!(history.started.load(Ordering::SeqCst), 3);
        assert_eq!(first.await.unwrap().unwrap().id, "a");
        // "b" is not delivered before its commit completes: not once all
        // else is idle.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(nothing_queued(&mut inbox));
        assert!(!second.is_finished());

        history.permits.add_permits(1);
        assert_eq!(next(&mut inbox).await, "b");
        assert_eq!(second.await.unwrap().unwrap().seq, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn an_append_that_waits_is_dispatched_even_if_its_publisher_goes_away() {
        let history = Says::gated(false);
        let (publisher, _registration, mut inbox) = publisher_with_subscriber(history.clone(), 16);
        let gone = tokio::spawn({
            let publisher = publisher.clone();
            async move { publisher.publish(update("a")).await }
        });
        until("the commit starting", || {
            history.started.load(Ordering::SeqCst) == 1
        })
        .await;
        gone.abort();
        assert!(gone.await.unwrap_err().is_cancelled());

        history.permits.add_permits(1);
        assert_eq!(next(&mut inbox).await, "a");
        // The next update queues for the writer, and follows in order.
        history.permits.add_permits(1);
        assert_eq!(publisher.publish(update("b")).await.unwrap().seq, 2);
        assert_eq!(next(&mut inbox).await, "b");
        assert!(nothing_queued(&mut inbox));
    }

    #[tokio::test]
    async fn a_memory_log_is_appended_and_dispatched_on_the_publishers_task() {
        let history: Arc<dyn History> = Arc::new(MemoryHistory::new(100));
        let (publisher, _registration, mut inbox) =
            publisher_with_subscriber(Arc::clone(&history), 16);
        assert!(matches!(publisher.path, Path::AtOnce(_)));
        // Complete at its first poll: stored and dispatched, with no other
        // task to run first.
        let stored = publisher
            .publish(update("a"))
            .now_or_never()
            .expect("no wait")
            .unwrap();
        assert_eq!(stored.seq, 1);
        assert_eq!(next(&mut inbox).await, "a");
        assert_eq!(history.stats().last_seq, 1);
    }

    #[tokio::test]
    async fn an_append_that_waits_after_promising_not_to_is_refused_not_awaited() {
        let gated = Says::gated(true);
        let (publisher, _registration, mut inbox) = publisher_with_subscriber(gated.clone(), 16);
        let refused = publisher
            .publish(update("a"))
            .now_or_never()
            .expect("no wait");
        assert!(refused
            .unwrap_err()
            .0
            .contains("promised appends that never wait"));
        assert!(nothing_queued(&mut inbox));
        // The turn was let go: the next publish is tried, and stored once
        // the backend no longer waits.
        gated.permits.add_permits(1);
        let stored = publisher
            .publish(update("b"))
            .now_or_never()
            .expect("no wait");
        assert_eq!(stored.unwrap().id, "b");
        assert_eq!(next(&mut inbox).await, "b");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_publishers_are_dispatched_in_history_order() {
        let history: Arc<dyn History> = Arc::new(MemoryHistory::new(10_000));
        concurrent_publishers_in_order(history).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_publishers_through_the_writer_are_dispatched_in_history_order() {
        concurrent_publishers_in_order(Says::open(false, 10_000)).await;
    }

    async fn concurrent_publishers_in_order(history: Arc<dyn History>) {
        let (publisher, _registration, mut inbox) =
            publisher_with_subscriber(Arc::clone(&history), 10_000);

        // Enough concurrency that publishers find the turn taken: they
        // wait for the lock (a memory log) or queue for the writer while
        // others write inline (a log that may wait).
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
        assert!(nothing_queued(&mut inbox));
    }
}
