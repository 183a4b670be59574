//! The subscriber side: a pool of SSE connections that reads and accounts
//! for every event.
//!
//! A pool runs on a few OS threads, each with a single-threaded tokio
//! runtime that owns its share of the connections and their accounting
//! outright (no locks, no atomics per event). Each connection is one task
//! (`conn`):
//! connect from a 127.0.0.x source address, send a GET, decode the chunked
//! body, feed a `herald_sse::Parser`, and record each event's latency and
//! sequence number. A controller task per thread obeys the run's commands
//! (start a phase, drop every connection and resume, finish).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

use super::http::{self, Url};
use super::soak::mix::{self, Churn, Follows};
use super::stats::{Phase, PhaseWire, Totals};

mod conn;
mod sub;

use conn::Conn;
use sub::Sub;

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
    pub(crate) connected: u64,
    pub(crate) errors: u64,
    /// Seconds from the first attempt until every attempt ended.
    pub(crate) seconds: f64,
    /// First connect error, to tell the user why.
    pub(crate) first_error: Option<String>,
}

impl ConnectReport {
    pub(crate) fn add(&mut self, other: &ConnectReport) {
        self.connected += other.connected;
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

enum ThreadCmd {
    Phase(String),
    Storm {
        gap: Duration,
        targets: Arc<Vec<u64>>,
        reply: oneshot::Sender<StormReport>,
    },
    Finish {
        published: Arc<Vec<u64>>,
        drain: Duration,
        reply: oneshot::Sender<PoolReport>,
    },
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
        let threads = config.threads.clamp(1, 64).min(config.count.max(1));
        let per_thread_connects = (config.connect_concurrency / threads).max(1);
        let mut handles = Vec::with_capacity(threads);
        for t in 0..threads {
            let (commands, rx) = mpsc::unbounded_channel();
            let (connected_tx, connected_rx) = oneshot::channel();
            let indices: Vec<usize> = (config.first..config.first + config.count)
                .filter(|i| i % threads == t)
                .collect();
            let config = config.clone();
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
                    local.block_on(
                        &runtime,
                        run_thread(
                            config,
                            indices,
                            per_thread_connects,
                            counters,
                            rx,
                            connected_tx,
                        ),
                    );
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

/// A storm in progress.
struct Storm {
    at: Instant,
    gap: Duration,
    targets: Arc<Vec<u64>>,
}

/// The state a thread's tasks share.
#[derive(Default)]
struct State {
    subs: Vec<Sub>,
    phase: Phase,
    phase_started: Option<Instant>,
    done_phases: Vec<Phase>,
    totals: Totals,
    storm: Option<Storm>,
    finishing: bool,
    first_error: Option<String>,
    /// First connection attempts that ended.
    attempted: usize,
    connect_ended: Option<Instant>,
}

impl State {
    fn close_phase(&mut self, next: &str) {
        let now = Instant::now();
        if let Some(started) = self.phase_started {
            self.phase.seconds = now.duration_since(started).as_secs_f64();
        }
        let done = std::mem::replace(&mut self.phase, Phase::named(next));
        if !done.name.is_empty() || done.deliveries > 0 {
            self.done_phases.push(done);
        }
        self.phase_started = Some(now);
    }

    fn storm_report(&self) -> Option<StormReport> {
        let storm = self.storm.as_ref()?;
        let mut report = StormReport::default();
        for sub in self.subs.iter().filter(|s| s.opened) {
            report.dropped += 1;
            if let Some(at) = sub.reconnected_at {
                report.reconnected += 1;
                report.reconnect_seconds = report
                    .reconnect_seconds
                    .max(at.duration_since(storm.at).as_secs_f64());
            }
            if let Some(at) = sub.caught_up_at {
                report.caught_up += 1;
                report.caught_up_seconds = report
                    .caught_up_seconds
                    .max(at.duration_since(storm.at).as_secs_f64());
            }
        }
        Some(report)
    }

    fn all_caught_up(&self, published: &[u64]) -> bool {
        self.subs
            .iter()
            .filter(|s| s.opened)
            .all(|s| s.has_all(published))
    }
}

async fn run_thread(
    config: PoolConfig,
    indices: Vec<usize>,
    connects: usize,
    counters: Arc<Counters>,
    mut commands: mpsc::UnboundedReceiver<ThreadCmd>,
    connected: oneshot::Sender<ConnectReport>,
) {
    let connect_started = Instant::now();
    let state = Rc::new(RefCell::new(State {
        subs: indices
            .iter()
            .map(|&i| Sub::new(config.follows(i).topics, config.publishers))
            .collect(),
        phase: Phase::named("connect"),
        phase_started: Some(connect_started),
        ..State::default()
    }));
    let (storm_tx, storm_rx) = watch::channel(0u64);
    let permits = Rc::new(Semaphore::new(connects));
    let total = indices.len();
    let config = Rc::new(config);
    for (local, &global) in indices.iter().enumerate() {
        let conn = Conn {
            local,
            global,
            config: Rc::clone(&config),
            state: Rc::clone(&state),
            counters: Arc::clone(&counters),
            storm: storm_rx.clone(),
            permits: Rc::clone(&permits),
        };
        tokio::task::spawn_local(conn.run());
    }

    // Report the connect phase when every first attempt ended.
    let mut connected = Some(connected);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tokio::select! {
            _ = tick.tick(), if connected.is_some() => {
                let s = state.borrow();
                if s.attempted >= total {
                    let report = ConnectReport {
                        connected: s.subs.iter().filter(|x| x.opened).count() as u64,
                        errors: s.totals.connect_errors,
                        seconds: s.connect_ended.unwrap_or_else(Instant::now).duration_since(connect_started).as_secs_f64(),
                        first_error: s.first_error.clone(),
                    };
                    if let Some(tx) = connected.take() {
                        let _ = tx.send(report);
                    }
                }
            }
            cmd = commands.recv() => {
                let Some(cmd) = cmd else { return };
                match cmd {
                    ThreadCmd::Phase(name) => state.borrow_mut().close_phase(&name),
                    ThreadCmd::Storm { gap, targets, reply } => {
                        {
                            let mut s = state.borrow_mut();
                            for sub in &mut s.subs {
                                sub.reconnected_at = None;
                                sub.caught_up_at = None;
                            }
                            s.storm = Some(Storm { at: Instant::now(), gap, targets });
                        }
                        storm_tx.send_modify(|g| *g += 1);
                        let s = Rc::clone(&state);
                        let elsewhere = config.resume_elsewhere && config.sub_urls.len() > 1;
                        tokio::task::spawn_local(async move {
                            let deadline = Instant::now() + gap + Duration::from_secs(60);
                            loop {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                let done = {
                                    let st = s.borrow();
                                    st.subs.iter().filter(|x| x.opened).all(|x| x.caught_up_at.is_some())
                                };
                                if done || Instant::now() > deadline {
                                    break;
                                }
                            }
                            let mut report = s.borrow().storm_report().unwrap_or_default();
                            report.resumed_on_next_hub = elsewhere;
                            s.borrow_mut().storm = None;
                            let _ = reply.send(report);
                        });
                    }
                    ThreadCmd::Finish { published, drain, reply } => {
                        state.borrow_mut().finishing = true;
                        let deadline = Instant::now() + drain;
                        while Instant::now() < deadline && !state.borrow().all_caught_up(&published) {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        let mut s = state.borrow_mut();
                        s.close_phase("");
                        let mut totals = s.totals.clone();
                        for sub in s.subs.iter().filter(|x| x.opened) {
                            for (k, tracker) in sub.trackers.iter().enumerate() {
                                totals.duplicates += tracker.duplicates;
                                totals.received += tracker.received;
                                if sub.checked(k) {
                                    totals.lost += tracker.lost(sub.expected(&published, k));
                                } else if sub.expected(&published, k) > 0 {
                                    totals.unchecked += 1;
                                }
                            }
                            if !sub.has_all(&published) {
                                totals.behind += 1;
                            }
                        }
                        totals.connected = s.subs.iter().filter(|x| x.opened).count() as u64;
                        let phases = s.done_phases.iter().map(Phase::to_wire).collect();
                        let _ = reply.send(PoolReport { totals, phases });
                        return;
                    }
                }
            }
        }
    }
}
