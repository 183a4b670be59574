//! `herald bench`: load a hub (or any SSE server) and measure delivery.
//!
//! A run opens N subscribers (split over worker processes beyond one
//! process's file limit), then publishes events carrying a sequence number
//! and a send time: at fixed rates (a ramp of steps, until saturation), as
//! fast as acknowledgements allow, or not at all (idle). It reports
//! publish-to-receive latency (HdrHistogram), deliveries/s, connect rate and
//! errors, lost and duplicated events, the hub's memory per connection, the
//! recovery from a reconnect storm, and (the soak) whether the hub's memory
//! and open files stay flat under an hour of mixed load and churn.
//!
//! Layout: `options` (the flags and the plan they make), `pool`
//! (subscribers), `worker` (child processes), `publisher`, `hubs` (several
//! hubs: who uses which), `stats` (sequence and latency accounting),
//! `report` (JSON and table), `http` (the raw HTTP/1.1 it speaks), `soak`
//! (the soak scenario: its population, its churn and its samples). This
//! file runs the others. See bench/scenarios.md.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::sync::watch;

mod http;
mod hubs;
mod options;
mod pool;
mod publisher;
mod report;
mod soak;
mod stats;
mod transport;
mod worker;

pub(crate) use options::BenchArgs;
use options::{plan, pub_config, Plan, Scenario};
use pool::PoolConfig;
use publisher::Published;
use report::{Memory, Moment, Report, Step};
use stats::{merge_phases, Phase};
use worker::Pool;

/// Runs `herald bench`.
pub(crate) fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(if args.worker { 1 } else { 2 })
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    if args.worker {
        runtime.block_on(worker::run_worker())?;
        return Ok(ExitCode::SUCCESS);
    }
    let report = runtime.block_on(bench(&args))?;
    println!("{}", report.table());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let clean = report.totals.lost == 0
        && report.totals.duplicates == 0
        && report.connect.errors == 0
        && report.publish_errors == 0;
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// Seconds since the Unix epoch now.
fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Each node's name, its endpoint; with the templates there is one server
/// and no per-node list, whatever --hub says.
fn node_names(args: &BenchArgs) -> anyhow::Result<Vec<String>> {
    if args.sub_url.is_none() && args.pub_url.is_none() {
        hubs::endpoints(args)
    } else {
        Ok(Vec::new())
    }
}

/// The run's subscribers, split over processes beyond `--per-process`,
/// connecting from the start.
struct Pools {
    pools: Vec<Pool>,
    /// Subscribers run in worker processes.
    remote: bool,
    processes: usize,
}

impl Pools {
    /// Starts the subscribers of `plan`; `soak` makes them churn.
    async fn start(
        args: &BenchArgs,
        plan: &Plan,
        soak: Option<soak::mix::Churn>,
    ) -> anyhow::Result<Pools> {
        let sub_urls = hubs::sub_urls(args)?;
        let per_process = args.per_process.max(1);
        let processes = plan.subscribers.div_ceil(per_process).max(1);
        let remote = processes > 1;
        let mut pools = Vec::with_capacity(processes);
        let share = plan.subscribers.div_ceil(processes);
        for p in 0..processes {
            let first = p * share;
            let count = share.min(plan.subscribers.saturating_sub(first));
            let config = PoolConfig {
                sub_urls: sub_urls.clone(),
                resume_elsewhere: plan.resume_elsewhere,
                topic_prefix: args.topic_prefix.clone(),
                first,
                count,
                topics: plan.topics,
                publishers: plan.publishers,
                source_ips: args.source_ips,
                threads: args.threads,
                connect_concurrency: (args.connect_concurrency / processes).max(1),
                reconnect: !args.no_reconnect,
                soak,
                transport: plan.transport,
                streams_per_connection: plan.streams,
                tls: args.tls(),
            };
            pools.push(Pool::start(&config, remote).await?);
        }
        Ok(Pools {
            pools,
            remote,
            processes,
        })
    }

    /// Waits for every subscriber's first attempt; fails when none opened.
    async fn connected(&mut self) -> anyhow::Result<pool::ConnectReport> {
        let mut connect = pool::ConnectReport::default();
        for pool in &mut self.pools {
            connect.add(&pool.connected().await?);
        }
        if connect.connected == 0 {
            bail!(
                "no subscriber could connect: {}",
                connect.first_error.as_deref().unwrap_or("unknown error")
            );
        }
        Ok(connect)
    }

    /// Starts phase `name` everywhere.
    async fn phase(&mut self, name: &str) -> anyhow::Result<()> {
        for pool in &mut self.pools {
            pool.phase(name).await?;
        }
        Ok(())
    }

    /// The progress line's task, unless `--quiet`.
    fn progress(
        &self,
        args: &BenchArgs,
        published: &Arc<Published>,
        phase: watch::Receiver<String>,
        subscribers: usize,
    ) -> Option<tokio::task::JoinHandle<()>> {
        (!args.quiet).then(|| {
            spawn_progress(
                self.pools
                    .iter()
                    .map(|p| Arc::clone(p.counters()))
                    .collect(),
                Arc::clone(published),
                phase,
                subscribers,
            )
        })
    }

    /// Drains (until every subscriber has `published`, or `drain` passed)
    /// and collects every pool's totals and phases.
    async fn finish(
        self,
        published: &[u64],
        drain: Duration,
    ) -> anyhow::Result<(stats::Totals, Vec<Phase>)> {
        let mut totals = stats::Totals::default();
        let mut phases: Vec<Phase> = Vec::new();
        for pool in self.pools {
            let r = pool.finish(published.to_vec(), drain).await?;
            totals.add(&r.totals);
            phases.extend(r.phases.iter().map(Phase::from_wire));
        }
        Ok((totals, merge_phases(phases)))
    }
}

/// Fills each step's deliveries and latency from the phase of its name.
fn fill_steps(steps: &mut [Step], phases: &[Phase]) {
    for step in steps {
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
}

/// The scenario's name, as `--scenario` spells it.
fn scenario_name(scenario: Scenario) -> String {
    clap::ValueEnum::to_possible_value(&scenario)
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}

async fn bench(args: &BenchArgs) -> anyhow::Result<Report> {
    let plan = plan(args)?;
    let pub_config = Arc::new(pub_config(args, &plan)?);
    if args.scenario == Scenario::Soak {
        return soak::run(args, &plan, pub_config).await;
    }
    let started_unix = unix_seconds();
    let pids = &args.hub_pids;
    let nodes = node_names(args)?;
    let mut memory = Memory::start(pids, &nodes);
    let tcp_start = report::kernel_tcp_kib();

    let mut run = Pools::start(args, &plan, None).await?;
    let published = Arc::new(Published::new(plan.topics, plan.publishers));
    let (phase_tx, phase_rx) = watch::channel(String::from("connect"));
    let progress = run.progress(args, &published, phase_rx, plan.subscribers);
    let connect = run.connected().await?;
    let Pools {
        mut pools,
        remote,
        processes,
    } = run;
    // Let the hub settle before reading its memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    memory.read(pids, Moment::Connected);
    let tcp_connected = report::kernel_tcp_kib();
    let n = connect.connected.max(1) as f64;
    if let (Some(a), Some(b)) = (memory.hub_rss_start_kib, memory.hub_rss_connected_kib) {
        memory.hub_bytes_per_subscriber = Some((b as f64 - a as f64) * 1024.0 / n);
    }
    if let (Some(a), Some(b)) = (tcp_start, tcp_connected) {
        memory.kernel_tcp_delta_kib = Some(b.saturating_sub(a));
        memory.kernel_tcp_bytes_per_subscriber = Some(b.saturating_sub(a) as f64 * 1024.0 / n);
    }

    let subs_per_topic = plan.subscribers as f64 / plan.topics as f64;
    let mut steps: Vec<Step> = Vec::new();
    let mut storm = None;
    let mut publish_errors = 0;
    let mut first_publish_error = None;
    if plan.idle {
        let _ = phase_tx.send("idle".into());
        for pool in &mut pools {
            pool.phase("idle").await?;
        }
        tokio::time::sleep(plan.step).await;
    } else {
        for (i, rate) in plan.steps.iter().enumerate() {
            let name = match rate {
                Some(r) => format!("{r}/s"),
                None => "max".to_owned(),
            };
            let name = if plan.storm_gap.is_some() {
                "before storm".to_owned()
            } else {
                name
            };
            let _ = phase_tx.send(name.clone());
            for pool in &mut pools {
                pool.phase(&name).await?;
            }
            let deliveries_before = total_deliveries(&pools);
            let cpu_before = report::cpu_seconds_of_all(pids);
            let (stop_tx, stop_rx) = watch::channel(false);
            let task = tokio::spawn(publisher::publish(
                Arc::clone(&pub_config),
                Arc::clone(&published),
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
                let targets = published.snapshot();
                let _ = phase_tx.send("storm".into());
                let storms = futures_util::future::join_all(
                    pools.iter_mut().map(|p| p.storm(gap, targets.clone())),
                )
                .await;
                let mut report = pool::StormReport::default();
                for r in storms {
                    report.add(&r?);
                }
                storm = Some(report);
                for pool in &mut pools {
                    pool.phase("after storm").await?;
                }
                let _ = phase_tx.send("after storm".into());
                tokio::time::sleep(plan.step).await;
            }
            let _ = stop_tx.send(true);
            let stats = task.await.context("the publisher failed")?;
            let seconds = step_started.elapsed().as_secs_f64();
            publish_errors += stats.errors;
            if first_publish_error.is_none() {
                first_publish_error.clone_from(&stats.first_error);
            }
            let delivered = total_deliveries(&pools) - deliveries_before;
            let hub_cpu_percent = report::cpu_seconds_of_all(pids)
                .zip(cpu_before)
                .map(|(after, before)| (after - before) * 100.0 / seconds);
            let achieved = delivered as f64 / seconds;
            let acked = stats.acks_per_second();
            steps.push(Step {
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
    }

    let _ = phase_tx.send("drain".into());
    for pool in &mut pools {
        pool.phase("drain").await?;
    }
    let final_counts = published.snapshot();
    let mut totals = stats::Totals::default();
    let mut phases: Vec<Phase> = Vec::new();
    for pool in pools {
        let r = pool.finish(final_counts.clone(), args.drain.into()).await?;
        totals.add(&r.totals);
        phases.extend(r.phases.iter().map(Phase::from_wire));
    }
    if let Some(p) = progress {
        p.abort();
        if !args.quiet {
            eprintln!();
        }
    }
    let phases = merge_phases(phases);
    fill_steps(&mut steps, &phases);
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
    memory.read(pids, Moment::End);
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
        workers: if remote { processes } else { 0 },
        transport: plan.transport,
        streams_per_connection: plan.streams_per_connection(),
        connects_per_second: connect.connected as f64 / connect.seconds.max(1e-9),
        connect,
        steps,
        peak_deliveries_per_second: peak,
        storm,
        totals,
        published: final_counts.iter().sum(),
        publish_errors,
        first_publish_error,
        memory: (!pids.is_empty()).then_some(memory),
        soak: None,
    })
}

fn total_deliveries(pools: &[Pool]) -> u64 {
    pools
        .iter()
        .map(|p| p.counters().deliveries.load(Ordering::Relaxed))
        .sum()
}

/// Prints a progress line every second (rewritten in place on a terminal).
fn spawn_progress(
    counters: Vec<Arc<pool::Counters>>,
    published: Arc<Published>,
    phase: watch::Receiver<String>,
    subscribers: usize,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let tty = std::io::stderr().is_terminal();
        let mut last = (Instant::now(), 0u64);
        let mut ticks = 0u64;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            ticks += 1;
            let (mut c, mut d, mut e) = (0, 0, 0);
            for k in &counters {
                let (kc, kd, ke) = k.snapshot();
                c += kc;
                d += kd;
                e += ke;
            }
            let now = Instant::now();
            let rate = (d - last.1.min(d)) as f64 / now.duration_since(last.0).as_secs_f64();
            last = (now, d);
            let line = format!(
                "[{}] subscribers {c}/{subscribers}, {rate:.0} deliveries/s, {d} delivered, {} published, {e} errors",
                phase.borrow().as_str(),
                published.sent.load(Ordering::Relaxed),
            );
            if tty {
                eprint!("\r{line:<110}");
            } else if ticks.is_multiple_of(5) {
                eprintln!("{line}");
            }
        }
    })
}
