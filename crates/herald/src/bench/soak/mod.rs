//! `herald bench --scenario soak`: an hour (by default) of mixed load, to
//! see whether the hub's memory and open files stay flat.
//!
//! The subscribers (`mix`) are a steady population of idle, one-topic,
//! several-topic and URI-template subscriptions whose connections churn
//! all the time: each ends after a random lifetime and either resumes with
//! `Last-Event-ID` (replay, then live) or gives its place to a new
//! subscriber; publishers send at a moderate fixed rate throughout. So
//! connection setup and teardown, replay and fan-out all run for the whole
//! soak, and every event is still accounted for as in the other scenarios
//! (a resumed stream must lose and repeat nothing). The hub's RSS and open
//! files are read every `--sample-every` (`samples`); the first tenth (or
//! `--warm-up`) is left out, and the rest gives the levels, the drift and
//! the verdict. Two phases, "warm-up" and "steady", carry the deliveries
//! and latencies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

pub(crate) mod mix;
mod samples;

pub(crate) use samples::SoakReport;

use super::options::BenchArgs;
use super::plan::Plan;
use super::pools::Pools;
use super::publisher::{self, PubConfig, Published};
use super::readings::{self, Memory, Moment};
use super::report::{Report, Step};
use super::steps::fill_steps;
use super::{node_names, scenario_name, unix_seconds};
use mix::Churn;
use samples::Sample;

/// Of the connections that end, the share whose subscriber leaves (a new
/// one takes its place); the others resume.
const LEAVE_PERCENT: u32 = 25;

/// The longest a subscriber stays away before it resumes or is replaced:
/// long enough that events are published meanwhile (replayed on resume).
const GAP: Duration = Duration::from_secs(1);

/// Runs the soak.
pub(super) async fn run(
    args: &BenchArgs,
    plan: &Plan,
    pub_config: Arc<PubConfig>,
) -> anyhow::Result<Report> {
    let pids = &args.hub_pids;
    if pids.is_empty() {
        bail!("--scenario soak measures the hub's memory and open files: give its --hub-pid");
    }
    let duration = plan.step;
    let warm_up: Duration = args
        .warm_up
        .map(Into::into)
        .unwrap_or(duration / 10)
        .min(duration);
    let sample_every: Duration = args.sample_every.into();
    if sample_every.is_zero() {
        bail!("--sample-every must be more than zero");
    }
    let lifetime: Duration = args.lifetime.into();
    let churn = Churn {
        lifetime_ms: (lifetime.as_millis() as u64).max(1),
        leave_percent: LEAVE_PERCENT,
        gap_ms: GAP.as_millis() as u64,
    };
    let rate = plan.steps.first().copied().flatten();
    let started_unix = unix_seconds();
    let mut memory = Memory::start(pids, &node_names(args)?);

    let mut run = Pools::start(args, plan, Some(churn)).await?;
    let published = Arc::new(Published::new(plan.topics, plan.publishers));
    let (phase_tx, phase_rx) = watch::channel(String::from("connect"));
    let progress = run.progress(args, &published, phase_rx, plan.subscribers);
    let connect = run.connected().await?;
    memory.read(pids, Moment::Connected);

    let mut soak = SoakReport {
        sample_every_s: sample_every.as_secs_f64(),
        warm_up_s: warm_up.as_secs_f64(),
        tolerance_percent: args.tolerance,
        lifetime_s: lifetime.as_secs_f64(),
        leave_percent: LEAVE_PERCENT,
        ..SoakReport::default()
    };
    let started = Instant::now();
    let mut tick = tokio::time::interval(sample_every);
    // A late tick is taken when it can be, and the next one a whole period
    // later: samples stay evenly spaced rather than bunched after a stall.
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut steps = Vec::new();
    let mut publish_errors = 0;
    let mut first_publish_error = None;
    for (name, until) in [("warm-up", warm_up), ("steady", duration)] {
        if name == "warm-up" && warm_up.is_zero() {
            continue;
        }
        let _ = phase_tx.send(name.to_owned());
        run.phase(name).await?;
        let cpu_before = readings::cpu_seconds_of_all(pids);
        let phase_started = Instant::now();
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(publisher::publish(
            Arc::clone(&pub_config),
            Arc::clone(&published),
            rate,
            stop_rx,
        ));
        let deadline = tokio::time::Instant::from_std(started + until);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    soak.samples.push(Sample::read(pids, started.elapsed().as_secs_f64()));
                }
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        let _ = stop_tx.send(true);
        let stats = task.await.context("the publisher failed")?;
        publish_errors += stats.errors;
        if first_publish_error.is_none() {
            first_publish_error.clone_from(&stats.first_error);
        }
        let seconds = phase_started.elapsed().as_secs_f64();
        steps.push(Step {
            hub_cpu_percent: readings::cpu_seconds_of_all(pids)
                .zip(cpu_before)
                .map(|(after, before)| (after - before) * 100.0 / seconds),
            name: name.to_owned(),
            offered_events_per_second: rate,
            acked_per_second: stats.acks_per_second(),
            publish: stats,
            ..Step::default()
        });
    }
    // The last reading of the steady state, before the drain.
    soak.samples
        .push(Sample::read(pids, started.elapsed().as_secs_f64()));

    let _ = phase_tx.send("drain".into());
    run.phase("drain").await?;
    let final_counts = published.snapshot();
    let workers = if run.remote { run.processes } else { 0 };
    let (totals, phases) = run.finish(&final_counts, args.drain.into()).await?;
    if let Some(p) = progress {
        p.abort();
        if !args.quiet {
            eprintln!();
        }
    }
    fill_steps(&mut steps, &phases, plan);
    memory.read(pids, Moment::End);
    soak.conclude();
    let peak = steps
        .iter()
        .map(|s| s.deliveries_per_second)
        .fold(0.0, f64::max);
    Ok(Report {
        scenario: scenario_name(args.scenario),
        target: args.name.clone(),
        hubs: plan.hubs,
        started_unix,
        subscribers: plan.subscribers,
        topics: plan.topics,
        workers,
        transport: plan.transport,
        streams_per_connection: plan.streams_per_connection(),
        connects_per_second: connect.connected as f64 / connect.seconds.max(1e-9),
        connect,
        steps,
        peak_deliveries_per_second: peak,
        storm: None,
        totals,
        published: final_counts.iter().sum(),
        publish_errors,
        first_publish_error,
        memory: Some(memory),
        soak: Some(soak),
    })
}
