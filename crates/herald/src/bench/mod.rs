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
//! Layout: `options` (the flags), `plan` (the plan they make), `transport`
//! (which protocol subscribers speak, and TLS), `pool` (one process's
//! subscribers: threads, each subscriber's life, accounting, and the wire
//! per transport), `worker` (child processes), `pools` (all of the run's
//! subscribers, over processes), `publisher`, `steps` (the publishing
//! steps, the ramp and the storm), `hubs` (several hubs: who uses which),
//! `stats` (sequence and latency accounting), `report` (JSON and table),
//! `readings` (the hub's memory and CPU, from /proc),
//! `http` (the raw HTTP/1.1 it speaks), `soak` (the soak scenario: its
//! population, its churn and its samples). This file runs the others. See
//! bench/scenarios.md.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

mod http;
mod hubs;
mod options;
mod plan;
mod pool;
mod pools;
mod publisher;
mod readings;
mod report;
mod soak;
mod stats;
mod steps;
mod transport;
mod worker;

pub(crate) use options::BenchArgs;
use options::Scenario;
use plan::{plan, pub_config};
use pools::Pools;
use publisher::Published;
use readings::{Memory, Moment};
use report::Report;
use steps::fill_steps;

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
    let mut memory = Memory::start(pids, &node_names(args)?);
    let tcp_start = readings::kernel_tcp_kib();

    let mut pools = Pools::start(args, &plan, None).await?;
    let published = Arc::new(Published::new(plan.topics, plan.publishers));
    let (phase_tx, phase_rx) = watch::channel(String::from("connect"));
    let progress = pools.progress(args, &published, phase_rx, plan.subscribers);
    let connect = pools.connected().await?;
    // Let the hub settle before reading its memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    memory.read(pids, Moment::Connected);
    memory.per_subscriber(tcp_start, readings::kernel_tcp_kib(), connect.connected);

    let done = steps::run(args, &plan, &mut pools, &pub_config, &published, &phase_tx).await?;

    let _ = phase_tx.send("drain".into());
    pools.phase("drain").await?;
    let final_counts = published.snapshot();
    let workers = if pools.remote { pools.processes } else { 0 };
    let (totals, phases) = pools.finish(&final_counts, args.drain.into()).await?;
    if let Some(p) = progress {
        p.abort();
        if !args.quiet {
            eprintln!();
        }
    }
    let mut steps = done.steps;
    fill_steps(&mut steps, &phases, &plan);
    memory.read(pids, Moment::End);
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
        peak_deliveries_per_second: steps::peak(&steps),
        steps,
        storm: done.storm,
        totals,
        published: final_counts.iter().sum(),
        publish_errors: done.publish_errors,
        first_publish_error: done.first_publish_error,
        memory: (!pids.is_empty()).then_some(memory),
        soak: None,
    })
}
