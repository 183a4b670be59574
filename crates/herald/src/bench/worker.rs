//! Worker processes: subscribers beyond one process's open-file limit.
//!
//! A process may hold at most 20,000 open files here, so a run with more
//! subscribers than `--per-process` starts `herald bench --worker` children,
//! each holding its share. The parent sends a worker its [`PoolConfig`] and
//! then [`Command`]s, one JSON line each, on its stdin; the worker answers
//! with [`WorkerMessage`] lines on its stdout (progress twice a second,
//! then the outcome of each command). [`Pool`] hides whether subscribers
//! are local threads or a child process.

use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::mpsc;

use super::pool::{
    Command, ConnectReport, Counters, LocalPool, PoolConfig, PoolReport, StormReport,
};

/// A line a worker writes to its parent.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WorkerMessage {
    /// Live counters: (connected, deliveries, errors).
    Progress(u64, u64, u64),
    Connected(ConnectReport),
    Storm(StormReport),
    Finished(PoolReport),
}

/// Subscribers run here or in a child process.
pub(crate) enum Pool {
    Local(LocalPool),
    Remote(Box<RemotePool>),
}

impl Pool {
    /// Starts a pool: local threads, or a worker child when `remote`.
    pub(crate) async fn start(config: &PoolConfig, remote: bool) -> anyhow::Result<Pool> {
        let counters = Arc::new(Counters::default());
        if remote {
            Ok(Pool::Remote(Box::new(
                RemotePool::spawn(config, counters).await?,
            )))
        } else {
            Ok(Pool::Local(LocalPool::start(config, counters)?))
        }
    }

    pub(crate) fn counters(&self) -> &Arc<Counters> {
        match self {
            Pool::Local(p) => p.counters(),
            Pool::Remote(p) => &p.counters,
        }
    }

    pub(crate) async fn connected(&mut self) -> anyhow::Result<ConnectReport> {
        match self {
            Pool::Local(p) => Ok(p.connected().await),
            Pool::Remote(p) => match p.next().await? {
                WorkerMessage::Connected(r) => Ok(r),
                other => bail!("unexpected message from a worker: {other:?}"),
            },
        }
    }

    pub(crate) async fn phase(&mut self, name: &str) -> anyhow::Result<()> {
        match self {
            Pool::Local(p) => {
                p.phase(name);
                Ok(())
            }
            Pool::Remote(p) => p.send(&Command::Phase(name.to_owned())).await,
        }
    }

    /// Runs a reconnect storm and waits for its outcome.
    pub(crate) async fn storm(
        &mut self,
        gap: Duration,
        targets: Vec<u64>,
    ) -> anyhow::Result<StormReport> {
        match self {
            Pool::Local(p) => Ok(p.storm(gap, targets).await),
            Pool::Remote(p) => {
                p.send(&Command::Storm {
                    gap_ms: gap.as_millis() as u64,
                    targets,
                })
                .await?;
                match p.next().await? {
                    WorkerMessage::Storm(r) => Ok(r),
                    other => bail!("unexpected message from a worker: {other:?}"),
                }
            }
        }
    }

    pub(crate) async fn finish(
        self,
        published: Vec<u64>,
        drain: Duration,
    ) -> anyhow::Result<PoolReport> {
        match self {
            Pool::Local(p) => Ok(p.finish(published, drain).await),
            Pool::Remote(mut p) => {
                p.send(&Command::Finish {
                    published,
                    drain_ms: drain.as_millis() as u64,
                })
                .await?;
                let report = match p.next().await? {
                    WorkerMessage::Finished(r) => r,
                    other => bail!("unexpected message from a worker: {other:?}"),
                };
                drop(p.stdin);
                let _ = tokio::time::timeout(Duration::from_secs(10), p.child.wait()).await;
                Ok(report)
            }
        }
    }
}

/// A worker child process.
pub(crate) struct RemotePool {
    child: Child,
    stdin: ChildStdin,
    messages: mpsc::UnboundedReceiver<WorkerMessage>,
    counters: Arc<Counters>,
}

impl RemotePool {
    async fn spawn(config: &PoolConfig, counters: Arc<Counters>) -> anyhow::Result<RemotePool> {
        let exe = std::env::current_exe().context("cannot find the herald executable")?;
        let mut child = tokio::process::Command::new(exe)
            .args(["bench", "--worker"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start a worker process")?;
        let mut stdin = child.stdin.take().context("the worker has no stdin")?;
        let stdout = child.stdout.take().context("the worker has no stdout")?;
        let mut line = serde_json::to_string(config)?;
        line.push('\n');
        stdin.write_all(line.as_bytes()).await?;
        let (tx, messages) = mpsc::unbounded_channel();
        let live = Arc::clone(&counters);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<WorkerMessage>(&line) {
                    Ok(WorkerMessage::Progress(c, d, e)) => {
                        live.connected.store(c, Ordering::Relaxed);
                        live.deliveries.store(d, Ordering::Relaxed);
                        live.errors.store(e, Ordering::Relaxed);
                    }
                    Ok(m) => {
                        let _ = tx.send(m);
                    }
                    Err(e) => eprintln!("herald bench: bad line from a worker ({e}): {line}"),
                }
            }
        });
        Ok(RemotePool {
            child,
            stdin,
            messages,
            counters,
        })
    }

    async fn send(&mut self, command: &Command) -> anyhow::Result<()> {
        let mut line = serde_json::to_string(command)?;
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .context("a worker process went away")
    }

    async fn next(&mut self) -> anyhow::Result<WorkerMessage> {
        self.messages
            .recv()
            .await
            .context("a worker process ended early")
    }
}

/// `herald bench --worker`: runs one pool as the parent says.
pub(crate) async fn run_worker() -> anyhow::Result<()> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let first = lines
        .next_line()
        .await?
        .context("no configuration on stdin (--worker is for herald bench itself)")?;
    let config: PoolConfig =
        serde_json::from_str(&first).context("invalid worker configuration")?;
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<WorkerMessage>();
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(m) = out_rx.recv().await {
            let Ok(mut line) = serde_json::to_string(&m) else {
                continue;
            };
            line.push('\n');
            if stdout.write_all(line.as_bytes()).await.is_err() {
                break;
            }
            let _ = stdout.flush().await;
        }
    });
    let mut pool = LocalPool::start(&config, Arc::new(Counters::default()))?;
    let progress = {
        let counters = Arc::clone(pool.counters());
        let out = out_tx.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let (c, d, e) = counters.snapshot();
                if out.send(WorkerMessage::Progress(c, d, e)).is_err() {
                    break;
                }
            }
        })
    };
    let connected = pool.connected().await;
    let _ = out_tx.send(WorkerMessage::Connected(connected));
    while let Some(line) = lines.next_line().await? {
        let command: Command = serde_json::from_str(&line).context("invalid worker command")?;
        match command {
            Command::Phase(name) => pool.phase(&name),
            Command::Storm { gap_ms, targets } => {
                let report = pool.storm(Duration::from_millis(gap_ms), targets).await;
                let _ = out_tx.send(WorkerMessage::Storm(report));
            }
            Command::Finish {
                published,
                drain_ms,
            } => {
                let report = pool
                    .finish(published, Duration::from_millis(drain_ms))
                    .await;
                progress.abort();
                let _ = out_tx.send(WorkerMessage::Finished(report));
                drop(out_tx);
                let _ = writer.await;
                return Ok(());
            }
        }
    }
    Ok(())
}
