//! The subscriber side: a pool of SSE subscribers that reads and accounts
//! for every event.
//!
//! A pool runs on a few OS threads (`thread`), each with a single-threaded
//! tokio runtime that owns its share of the subscribers and their
//! accounting outright (no locks, no atomics per event). Each subscriber is
//! one task (`conn`: its life, reconnecting as the run asks) that opens its
//! stream through the transport's `wire` (HTTP/1.1 over TCP or TLS, one
//! connection each; or HTTP/2 streams sharing connections), feeds a
//! `herald_sse::Parser`, and has each event's latency and sequence number
//! recorded in the thread's `state` (`sub`: one subscriber's trackers). A
//! controller task per thread obeys the run's commands (start a phase, drop
//! every connection and resume, finish).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::http::{self, Url};
use super::soak::mix::{self, Churn, Follows};
use super::stats::{Phase, PhaseWire, Totals};
use super::transport::{TlsOptions, Transport};

mod conn;
mod state;
mod sub;
mod thread;
mod wire;

use thread::{run_thread, ThreadCmd, ThreadPlan};

/// What a pool (or a worker process) is asked to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PoolConfig {
    /// Subscribe URL templates, one per hub, `{topic}` replaced
    /// (percent-encoded). Subscriber `i` subscribes on hub `i mod N`
    /// (`hubs::assigned_hub`).
    pub(crate) sub_urls: Vec<String>,
    /// In a storm, resume on the next hub of `sub_urls` rather than on the
    /// subscriber's own (`hubs::next_hub`).
    pub(crate) resume_elsewhere: bool,
    /// Topic names are this prefix followed by the topic index.
    pub(crate) topic_prefix: String,
    /// Index of this pool's first subscriber among all of the run's.
    pub(crate) first: usize,
    /// Subscribers in this pool.
    pub(crate) count: usize,
    /// Topics in the run; subscriber `i` follows topic `i % topics`.
    pub(crate) topics: usize,
    /// Publishing connections: each numbers its events per topic.
    pub(crate) publishers: usize,
    /// Source addresses to spread over: 127.0.0.1 ..= 127.0.0.N.
    pub(crate) source_ips: usize,
    /// OS threads reading the connections.
    pub(crate) threads: usize,
    /// Connections being opened at once (per pool).
    pub(crate) connect_concurrency: usize,
    /// Reconnect (with `Last-Event-ID`) when a stream ends on its own.
    pub(crate) reconnect: bool,
    /// A soak: subscribers follow the soak's mix of selectors and their
    /// connections churn (`None`: subscriber `i` follows topic `i mod
    /// topics` on one connection).
    #[serde(default)]
    pub(crate) soak: Option<Churn>,
    /// The protocol subscribers speak.
    #[serde(default)]
    pub(crate) transport: Transport,
    /// Subscribers sharing one HTTP/2 connection (`h2`, `h2c`).
    #[serde(default = "one")]
    pub(crate) streams_per_connection: usize,
    /// How to trust an `https://` hub.
    #[serde(default)]
    pub(crate) tls: TlsOptions,
}

fn one() -> usize {
    1
}

impl PoolConfig {
    /// What subscriber `index` follows.
    pub(crate) fn follows(&self, index: usize) -> Follows {
        let topics = self.topics.max(1);
        match self.soak {
            Some(_) => mix::follows(index, topics, &self.topic_prefix),
            None => Follows {
                selectors: vec![format!("{}{}", self.topic_prefix, index % topics)],
                topics: vec![index % topics],
            },
        }
    }
}

/// A command of the run to every subscriber thread.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Command {
    /// Close the current phase and start recording into a new one.
    Phase(String),
    /// Drop every connection now, wait `gap_ms`, reconnect with
    /// `Last-Event-ID`; report once each has caught up to `targets`
    /// (published count per topic and connection when the storm began).
    Storm { gap_ms: u64, targets: Vec<u64> },
    /// Wait until every subscriber has its `published` events (or
    /// `drain_ms` passed), then report and close.
    Finish { published: Vec<u64>, drain_ms: u64 },
}

/// How the connect phase went.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ConnectReport {
    /// Subscribers whose stream opened.
    pub(crate) connected: u64,
    /// Connections they opened: one each over HTTP/1.1, fewer over HTTP/2.
    #[serde(default)]
    pub(crate) connections: u64,
    pub(crate) errors: u64,
    /// Seconds from the first attempt until every attempt ended.
    pub(crate) seconds: f64,
    /// First connect error, to tell the user why.
    pub(crate) first_error: Option<String>,
}

impl ConnectReport {
    pub(crate) fn add(&mut self, other: &ConnectReport) {
        self.connected += other.connected;
        self.connections += other.connections;
        self.errors += other.errors;
        self.seconds = self.seconds.max(other.seconds);
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
    }
}

/// How a reconnect storm went.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct StormReport {
    /// Subscribers dropped.
    pub(crate) dropped: u64,
    /// Subscribers whose stream reopened.
    pub(crate) reconnected: u64,
    /// Subscribers that received every event published before the drop.
    pub(crate) caught_up: u64,
    /// Seconds from the drop until the last stream reopened.
    pub(crate) reconnect_seconds: f64,
    /// Seconds from the drop until the last subscriber caught up.
    pub(crate) caught_up_seconds: f64,
    /// Subscribers resumed on the next hub rather than their own.
    #[serde(default)]
    pub(crate) resumed_on_next_hub: bool,
}

impl StormReport {
    pub(crate) fn add(&mut self, other: &StormReport) {
        self.dropped += other.dropped;
        self.reconnected += other.reconnected;
        self.caught_up += other.caught_up;
        self.reconnect_seconds = self.reconnect_seconds.max(other.reconnect_seconds);
        self.caught_up_seconds = self.caught_up_seconds.max(other.caught_up_seconds);
        self.resumed_on_next_hub |= other.resumed_on_next_hub;
    }
}

/// Everything a pool measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct PoolReport {
    pub(crate) totals: Totals,
    pub(crate) phases: Vec<PhaseWire>,
}

/// Live counters for the progress line.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connected: AtomicU64,
    pub(crate) deliveries: AtomicU64,
    pub(crate) errors: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.connected.load(Ordering::Relaxed),
            self.deliveries.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }
}

struct ThreadHandle {
    commands: mpsc::UnboundedSender<ThreadCmd>,
    connected: Option<oneshot::Receiver<ConnectReport>>,
    join: std::thread::JoinHandle<()>,
}

/// Subscribers run by threads of this process.
pub(crate) struct LocalPool {
    threads: Vec<ThreadHandle>,
    counters: Arc<Counters>,
}

impl LocalPool {
    /// Starts the threads; they begin connecting at once.
    pub(crate) fn start(config: &PoolConfig, counters: Arc<Counters>) -> anyhow::Result<LocalPool> {
        if config.sub_urls.is_empty() {
            bail!("no subscribe URL");
        }
        // Fail early on a bad template.
        for url in &config.sub_urls {
            Url::parse(&http::fill(url, "t", "", true))?;
        }
        let tls = config
            .transport
            .tls()
            .then(|| config.tls.connector(&[wire::alpn(config.transport)]))
            .transpose()?;
        let threads = config.threads.clamp(1, 64).min(config.count.max(1));
        let per_thread_connects = (config.connect_concurrency / threads).max(1);
        let mut handles = Vec::with_capacity(threads);
        for t in 0..threads {
            let (commands, rx) = mpsc::unbounded_channel();
            let (connected_tx, connected_rx) = oneshot::channel();
            let indices: Vec<usize> = (config.first..config.first + config.count)
                .filter(|&i| wire::thread_of(config, i, threads) == t)
                .collect();
            let plan = ThreadPlan {
                config: config.clone(),
                indices,
                connects: per_thread_connects,
                tls: tls.clone(),
            };
            let counters = Arc::clone(&counters);
            let join = std::thread::Builder::new()
                .name(format!("bench-sub-{t}"))
                .spawn(move || {
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(r) => r,
                        Err(e) => {
                            eprintln!("herald bench: cannot start a runtime: {e}");
                            return;
                        }
                    };
                    let local = tokio::task::LocalSet::new();
                    local.block_on(&runtime, run_thread(plan, counters, rx, connected_tx));
                })
                .context("cannot start a subscriber thread")?;
            handles.push(ThreadHandle {
                commands,
                connected: Some(connected_rx),
                join,
            });
        }
        Ok(LocalPool {
            threads: handles,
            counters,
        })
    }

    /// The live counters.
    pub(crate) fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Waits until every subscriber's first connection attempt ended.
    pub(crate) async fn connected(&mut self) -> ConnectReport {
        let mut report = ConnectReport::default();
        for t in &mut self.threads {
            if let Some(rx) = t.connected.take() {
                if let Ok(r) = rx.await {
                    report.add(&r);
                }
            }
        }
        report
    }

    /// Starts a new phase.
    pub(crate) fn phase(&self, name: &str) {
        for t in &self.threads {
            let _ = t.commands.send(ThreadCmd::Phase(name.to_owned()));
        }
    }

    /// Runs a reconnect storm and waits for its outcome.
    pub(crate) async fn storm(&self, gap: Duration, targets: Vec<u64>) -> StormReport {
        let targets = Arc::new(targets);
        let mut waits = Vec::new();
        for t in &self.threads {
            let (reply, rx) = oneshot::channel();
            let _ = t.commands.send(ThreadCmd::Storm {
                gap,
                targets: Arc::clone(&targets),
                reply,
            });
            waits.push(rx);
        }
        let mut report = StormReport::default();
        for rx in waits {
            if let Ok(r) = rx.await {
                report.add(&r);
            }
        }
        report
    }

    /// Drains, collects every thread's report and stops the threads.
    pub(crate) async fn finish(self, published: Vec<u64>, drain: Duration) -> PoolReport {
        let published = Arc::new(published);
        let mut waits = Vec::new();
        for t in &self.threads {
            let (reply, rx) = oneshot::channel();
            let _ = t.commands.send(ThreadCmd::Finish {
                published: Arc::clone(&published),
                drain,
                reply,
            });
            waits.push(rx);
        }
        let mut totals = Totals::default();
        let mut phases = Vec::new();
        for rx in waits {
            if let Ok(r) = rx.await {
                totals.add(&r.totals);
                phases.extend(r.phases.iter().map(Phase::from_wire));
            }
        }
        for t in self.threads {
            drop(t.commands);
            let _ = tokio::task::spawn_blocking(move || t.join.join()).await;
        }
        PoolReport {
            totals,
            phases: super::stats::merge_phases(phases)
                .iter()
                .map(Phase::to_wire)
                .collect(),
        }
    }
}
