//! The publishing steps of a run: at each step's rate (a ramp stops at the
//! first that saturates), or none at all (idle), with the reconnect storm
//! in the middle of its step; what each step achieved, from the publisher's
//! side, and then (`fill_steps`) from the subscribers'.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::watch;

use super::options::BenchArgs;
use super::plan::Plan;
use super::pool::StormReport;
use super::pools::Pools;
use super::publisher::{self, PubConfig, Published};
use super::readings;
use super::report::Step;
use super::stats::Phase;

/// What the publishing steps did.
#[derive(Default)]
pub(super) struct Steps {
    pub(super) steps: Vec<Step>,
    pub(super) storm: Option<StormReport>,
    pub(super) publish_errors: u64,
    pub(super) first_publish_error: Option<String>,
}

/// Runs the plan's steps (or its idle hold) on `pools`, announcing each
/// phase on `phase`.
pub(super) async fn run(
    args: &BenchArgs,
    plan: &Plan,
    pools: &mut Pools,
    pub_config: &Arc<PubConfig>,
    published: &Arc<Published>,
    phase: &watch::Sender<String>,
) -> anyhow::Result<Steps> {
    let mut done = Steps::default();
    if plan.idle {
        let _ = phase.send("idle".into());
        pools.phase("idle").await?;
        tokio::time::sleep(plan.step).await;
        return Ok(done);
    }
    let pids = &args.hub_pids;
    let subs_per_topic = plan.subscribers as f64 / plan.topics as f64;
    for (i, rate) in plan.steps.iter().enumerate() {
        let name = match (plan.storm_gap, rate) {
            (Some(_), _) => "before storm".to_owned(),
            (None, Some(r)) => format!("{r}/s"),
            (None, None) => "max".to_owned(),
        };
        let _ = phase.send(name.clone());
        pools.phase(&name).await?;
        let deliveries_before = pools.deliveries();
        let cpu_before = readings::cpu_seconds_of_all(pids);
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(publisher::publish(
            Arc::clone(pub_config),
            Arc::clone(published),
            *rate,
            stop_rx,
        ));
        let step_started = Instant::now();
        let deadline = step_started + plan.step;
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Some(max) = plan.events {
                if published.sent.load(Ordering::Relaxed) >= max {
                    break;
                }
            }
        }
        if let Some(gap) = plan.storm_gap {
            // Drop every subscriber while publishing goes on.
            let _ = phase.send("storm".into());
            done.storm = Some(pools.storm(gap, published.snapshot()).await?);
            pools.phase("after storm").await?;
            let _ = phase.send("after storm".into());
            tokio::time::sleep(plan.step).await;
        }
        let _ = stop_tx.send(true);
        let stats = task.await.context("the publisher failed")?;
        let seconds = step_started.elapsed().as_secs_f64();
        done.publish_errors += stats.errors;
        if done.first_publish_error.is_none() {
            done.first_publish_error.clone_from(&stats.first_error);
        }
        let delivered = pools.deliveries() - deliveries_before;
        let hub_cpu_percent = readings::cpu_seconds_of_all(pids)
            .zip(cpu_before)
            .map(|(after, before)| (after - before) * 100.0 / seconds);
        let achieved = delivered as f64 / seconds;
        let acked = stats.acks_per_second();
        done.steps.push(Step {
            name,
            offered_events_per_second: *rate,
            acked_per_second: acked,
            publish: stats,
            hub_cpu_percent,
            ..Step::default()
        });
        if plan.ramp && i + 1 < plan.steps.len() {
            let offered = rate.unwrap_or(0.0);
            let expected = acked * subs_per_topic;
            let saturated = acked < 0.85 * offered || achieved < 0.85 * expected;
            if saturated {
                if !args.quiet {
                    eprintln!(
                        "\nsaturated at {offered}/s: {acked:.0} acked/s, {achieved:.0} of {expected:.0} deliveries/s; stopping the ramp"
                    );
                }
                break;
            }
        }
    }
    Ok(done)
}

/// Fills each step's deliveries and latency from the phase of its name,
/// and adds the phase after a storm as a step of its own.
pub(super) fn fill_steps(steps: &mut Vec<Step>, phases: &[Phase], plan: &Plan) {
    for step in steps.iter_mut() {
        if let Some(phase) = phases.iter().find(|p| p.name == step.name) {
            step.deliveries = phase.deliveries;
            step.deliveries_per_second = if phase.seconds > 0.0 {
                phase.deliveries as f64 / phase.seconds
            } else {
                0.0
            };
            step.latency = phase.latency.summary();
        }
    }
    if let Some(phase) = phases.iter().find(|p| p.name == "after storm") {
        steps.push(Step {
            name: "after storm".into(),
            offered_events_per_second: plan.steps.first().copied().flatten(),
            deliveries: phase.deliveries,
            deliveries_per_second: phase.deliveries as f64 / phase.seconds.max(1e-9),
            latency: phase.latency.summary(),
            ..Step::default()
        });
    }
}

/// The highest deliveries/s of any step.
pub(super) fn peak(steps: &[Step]) -> f64 {
    steps
        .iter()
        .map(|s| s.deliveries_per_second)
        .fold(0.0, f64::max)
}
