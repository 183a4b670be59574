//! The single writer between publish requests and history.
//!
//! Every accepted update passes through one task, which takes whatever
//! requests are waiting, appends them to history as one batch (one commit
//! for a durable backend: group commit), dispatches the stored entries to
//! fan-out in sequence order, and only then answers each publisher. One
//! writer is what keeps the order that subscribers see identical to the
//! order in history, so replay and live never disagree.

use std::sync::Arc;

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

async fn run(
    mut rx: mpsc::Receiver<(NewEntry, Ack)>,
    history: Arc<dyn History>,
    fanout: Arc<Fanout>,
) {
    let mut requests = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut requests, MAX_BATCH).await > 0 {
        let (batch, acks): (Vec<NewEntry>, Vec<Ack>) = requests.drain(..).unzip();
        match history.append(batch).await {
            Ok(stored) => {
                fanout.dispatch(&stored);
                for (ack, entry) in acks.into_iter().zip(stored) {
                    // A publisher that went away still had its update stored.
                    let _ = ack.send(Ok(entry));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "history append failed; the batch was refused");
                for ack in acks {
                    let _ = ack.send(Err(e.clone()));
                }
            }
        }
    }
}
