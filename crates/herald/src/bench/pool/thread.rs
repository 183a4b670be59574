//! A subscriber thread: a single-threaded runtime that owns its share of
//! the subscribers and their accounting outright, and a controller that
//! obeys the run's commands (start a phase, drop every connection and
//! resume, finish).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bench::transport::TlsClient;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

use super::conn::Conn;
use super::state::{State, Storm};
use super::sub::Sub;
use super::wire::Dialer;
use super::{ConnectReport, Counters, PoolConfig, PoolReport, StormReport};
use crate::bench::stats::Phase;

/// A command of the run to one thread.
pub(super) enum ThreadCmd {
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

/// What a thread is given to run.
pub(super) struct ThreadPlan {
    pub(super) config: PoolConfig,
    /// The run's indices of its subscribers.
    pub(super) indices: Vec<usize>,
    /// Subscriptions being opened at once.
    pub(super) connects: usize,
    /// The TLS connector of an `https://` hub.
    pub(super) tls: Option<TlsClient>,
}

/// Runs a thread's subscribers until the run finishes; `connected` gets
/// the connect phase's report once every first attempt ended.
pub(super) async fn run_thread(
    plan: ThreadPlan,
    counters: Arc<Counters>,
    mut commands: mpsc::UnboundedReceiver<ThreadCmd>,
    connected: oneshot::Sender<ConnectReport>,
) {
    let ThreadPlan {
        config,
        indices,
        connects,
        tls,
    } = plan;
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
    let dialer = Rc::new(Dialer::new(&config, tls, storm_rx.clone()));
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
            dialer: Rc::clone(&dialer),
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
                    let opened = s.opened();
                    let report = ConnectReport {
                        connected: opened,
                        // One per subscriber, unless they share them.
                        connections: dialer.shared_connections().unwrap_or(opened),
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
                        let elsewhere = config.resume_elsewhere && config.sub_urls.len() > 1;
                        tokio::task::spawn_local(await_storm(Rc::clone(&state), gap, elsewhere, reply));
                    }
                    ThreadCmd::Finish { published, drain, reply } => {
                        state.borrow_mut().finishing = true;
                        let deadline = Instant::now() + drain;
                        while Instant::now() < deadline && !state.borrow().all_caught_up(&published) {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        let report = state.borrow_mut().report(&published);
                        let _ = reply.send(report);
                        return;
                    }
                }
            }
        }
    }
}

/// Waits until every subscriber caught up after the storm (or a minute
/// past its gap) and replies with how it went.
async fn await_storm(
    state: Rc<RefCell<State>>,
    gap: Duration,
    elsewhere: bool,
    reply: oneshot::Sender<StormReport>,
) {
    let deadline = Instant::now() + gap + Duration::from_secs(60);
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let done = {
            let st = state.borrow();
            st.subs
                .iter()
                .filter(|x| x.opened)
                .all(|x| x.caught_up_at.is_some())
        };
        if done || Instant::now() > deadline {
            break;
        }
    }
    let mut report = state.borrow().storm_report().unwrap_or_default();
    report.resumed_on_next_hub = elsewhere;
    state.borrow_mut().storm = None;
    let _ = reply.send(report);
}
