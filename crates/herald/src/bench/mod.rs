//! `herald bench`: load a hub (or any SSE server) and measure delivery.
//!
//! A run opens N subscribers (split over worker processes beyond one
//! process's file limit), then publishes events carrying a sequence number
//! and a send time: at fixed rates (a ramp of steps, until saturation), as
//! fast as acknowledgements allow, or not at all (idle). It reports
//! publish-to-receive latency (HdrHistogram), deliveries/s, connect rate and
//! errors, lost and duplicated events, the hub's memory per connection, and
//! the recovery from a reconnect storm.
//!
//! Layout: `pool` (subscribers), `worker` (child processes), `publisher`,
//! `stats` (sequence and latency accounting), `report` (JSON and table),
//! `http` (the raw HTTP/1.1 it speaks). See bench/scenarios.md.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::sync::watch;

mod http;
mod hubs;
mod pool;
mod publisher;
mod report;
mod stats;
mod worker;

use pool::PoolConfig;
use publisher::{PubConfig, Published};
use report::{Memory, Moment, Report, Step};
use stats::{merge_phases, Phase};
use worker::Pool;

/// A ready-made scenario; its defaults apply to every flag not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Scenario {
    /// Only the flags given (1,000 subscribers, 10 events/s for 10 s).
    Custom,
    /// As many idle subscribers as one hub process can hold: memory.
    Idle,
    /// 10,000 subscribers on one topic; rate ramped to saturation.
    Fanout,
    /// 10,000 subscribers each on its own topic; random publishes.
    ManyTopics,
    /// 10,000 subscribers drop and resume with Last-Event-ID at once.
    Storm,
    /// Concurrent publishers as fast as acknowledged.
    Publish,
}

/// Options of `herald bench`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = BENCH_EXAMPLES)]
pub(crate) struct BenchArgs {
    /// Scenario whose defaults to use.
    #[arg(long, value_enum, default_value = "custom")]
    scenario: Scenario,
    /// Mercure hub: its endpoint or base URL, as for `herald pub` (used
    /// unless --sub-url/--pub-url are given). Repeat the flag for the nodes
    /// of a cluster, `--hub URL1 --hub URL2 …` (not a comma-separated list:
    /// a comma may be part of a URL): subscriber i subscribes on hub i mod
    /// N, publishing connection j publishes to hub j mod N.
    #[arg(
        long = "hub",
        value_name = "URL",
        default_value = "http://127.0.0.1:8080/.well-known/mercure"
    )]
    hubs: Vec<String>,
    /// Subscribe URL template for other SSE servers, e.g.
    /// `http://127.0.0.1:9000/sub/{topic}` (one server: not with several
    /// --hub).
    #[arg(long, value_name = "TEMPLATE")]
    sub_url: Option<String>,
    /// Publish URL template for other servers, e.g.
    /// `http://127.0.0.1:9000/pub/{topic}` (one server: not with several
    /// --hub).
    #[arg(long, value_name = "TEMPLATE")]
    pub_url: Option<String>,
    /// Publish method.
    #[arg(long, default_value = "POST")]
    pub_method: String,
    /// Publish body template: `{topic}` and `{data}` [default: Mercure's
    /// form, or `{data}` with --pub-url].
    #[arg(long, value_name = "TEMPLATE")]
    pub_body: Option<String>,
    /// Publish Content-Type [default: the form type, or text/plain with
    /// --pub-url].
    #[arg(long)]
    pub_content_type: Option<String>,
    /// Publisher JWT for the hub.
    #[arg(long, env = "HERALD_BENCH_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// HS256 key to mint a publisher JWT with (instead of --token).
    #[arg(long, env = "HERALD_JWT_KEY", hide_env_values = true)]
    jwt_key: Option<String>,
    /// Topic names are this prefix and a number.
    #[arg(long, default_value = "bench-")]
    topic_prefix: String,

    /// Subscribers.
    #[arg(long, short = 'n')]
    subscribers: Option<usize>,
    /// Topics (subscriber i follows topic i mod topics).
    #[arg(long)]
    topics: Option<usize>,
    /// Events per second in total; 0 publishes nothing, `max` as fast as
    /// acknowledged.
    #[arg(long)]
    rate: Option<String>,
    /// Rates to step through, e.g. `10,100,1000`; the ramp stops at
    /// saturation.
    #[arg(long, value_delimiter = ',')]
    ramp: Option<Vec<f64>>,
    /// Duration of the run, or of each ramp step, e.g. 10s.
    #[arg(long)]
    duration: Option<humantime::Duration>,
    /// Stop after this many events in total (fixed-rate runs).
    #[arg(long)]
    events: Option<u64>,
    /// Publishing connections [default: the scenario's, and at least one
    /// per --hub].
    #[arg(long)]
    publishers: Option<usize>,
    /// Publish requests in flight per connection (HTTP/1.1 pipelining;
    /// 1: each connection waits for its answer, as a publisher does).
    #[arg(long)]
    window: Option<usize>,
    /// Minimum bytes of data per event.
    #[arg(long, default_value_t = 0)]
    payload: usize,
    /// Gap of the reconnect storm (scenario storm).
    #[arg(long)]
    storm_gap: Option<humantime::Duration>,
    /// With several --hub, a storm's subscribers resume on their own hub
    /// (by default subscriber i, on hub i mod N, resumes on the next one,
    /// (i + 1) mod N, with the Last-Event-ID the first one gave).
    #[arg(long)]
    resume_same_hub: bool,
    /// How long to wait at the end for late events.
    #[arg(long, default_value = "15s")]
    drain: humantime::Duration,

    /// Source addresses 127.0.0.1 ..= 127.0.0.N to spread connections over.
    #[arg(long, default_value_t = 16)]
    source_ips: usize,
    /// Threads reading subscriptions (per process).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Most subscribers per process; more start worker processes.
    #[arg(long, default_value_t = 19_000)]
    per_process: usize,
    /// Connections opened at once.
    #[arg(long, default_value_t = 256)]
    connect_concurrency: usize,
    /// Do not reconnect streams that end.
    #[arg(long)]
    no_reconnect: bool,

    /// PID of the hub, to read its memory and CPU from /proc. With several
    /// --hub, repeat it, one per hub in the same order: the report gives
    /// the total and each node's.
    #[arg(long = "hub-pid", value_name = "PID")]
    hub_pids: Vec<u32>,
    /// Name of what is measured, for the report.
    #[arg(long, default_value = "hub")]
    name: String,
    /// Write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// No progress line.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Internal: run as a worker process of another `herald bench`.
    #[arg(long, hide = true)]
    worker: bool,
}

const BENCH_EXAMPLES: &str = "\
Examples:
  # Fan-out to 10,000 subscribers against a local hub, ramped to saturation
  herald serve --jwt-key secret --anonymous --history memory &
  herald bench --scenario fanout --jwt-key secret --hub-pid $! --json fanout.json

  # Two nodes of a cluster (--history redis, one --redis-url): subscribers and
  # publishers spread over both; the storm resumes each on the other node
  herald bench --scenario storm --jwt-key secret \\
      --hub http://127.0.0.1:9401 --hub http://127.0.0.1:9402

  # Any SSE server: subscribe and publish URL templates
  herald bench -n 1000 --rate 100 --sub-url 'http://127.0.0.1:9000/sub/{topic}' \\
      --pub-url 'http://127.0.0.1:9000/pub/{topic}'

Scenarios and the peer comparison: bench/scenarios.md, bench/compare.sh.";

/// The plan a scenario and the flags make.
#[derive(Debug, Clone)]
struct Plan {
    subscribers: usize,
    topics: usize,
    /// Rates of the steps; `None` in a step: as fast as possible.
    steps: Vec<Option<f64>>,
    step: Duration,
    events: Option<u64>,
    publishers: usize,
    window: usize,
    storm_gap: Option<Duration>,
    /// Publish nothing; hold the connections this long.
    idle: bool,
    ramp: bool,
    /// Hubs (servers) loaded: the number of --hub, or one with templates.
    hubs: usize,
    /// In a storm, subscribers resume on the next hub rather than their own.
    resume_elsewhere: bool,
}

fn plan(args: &BenchArgs) -> anyhow::Result<Plan> {
    use Scenario::*;
    let hubs = hubs::count(args)?;
    let (subs, topics, rates, step, publishers, window): (
        usize,
        usize,
        Vec<Option<f64>>,
        u64,
        usize,
        usize,
    ) = match args.scenario {
        Custom => (1_000, 1, vec![Some(10.0)], 10, 1, 1),
        Idle => (19_500, 1, vec![Some(0.0)], 10, 1, 1),
        Fanout => (
            10_000,
            1,
            [1.0, 10.0, 25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0]
                .into_iter()
                .map(Some)
                .collect(),
            8,
            16,
            1,
        ),
        ManyTopics => (10_000, 10_000, vec![Some(2_000.0)], 20, 8, 1),
        Storm => (10_000, 1, vec![Some(20.0)], 5, 1, 1),
        Publish => (100, 100, vec![None], 15, 32, 1),
    };
    let mut steps = rates;
    if let Some(rate) = &args.rate {
        steps = vec![match rate.as_str() {
            "max" => None,
            r => Some(
                r.parse::<f64>()
                    .with_context(|| format!("invalid --rate {r:?}: a number or max"))?,
            ),
        }];
    }
    if let Some(ramp) = &args.ramp {
        steps = ramp.iter().map(|r| Some(*r)).collect();
    }
    if steps
        .iter()
        .any(|r| r.is_some_and(|r| !(r >= 0.0 && r.is_finite())))
    {
        bail!("rates must be finite and not negative");
    }
    let subscribers = args.subscribers.unwrap_or(subs);
    if subscribers == 0 {
        bail!("-n/--subscribers must be at least 1: deliveries are measured at subscribers");
    }
    let topics = args.topics.unwrap_or(topics).max(1);
    let idle = steps.iter().all(|r| *r == Some(0.0));
    Ok(Plan {
        subscribers,
        topics,
        ramp: steps.len() > 1,
        steps,
        step: args
            .duration
            .map(Into::into)
            .unwrap_or(Duration::from_secs(step)),
        events: args.events,
        // By default every hub gets a publishing connection of its own.
        publishers: args.publishers.unwrap_or(publishers.max(hubs)).max(1),
        window: args.window.unwrap_or(window).max(1),
        storm_gap: (args.scenario == Storm || args.storm_gap.is_some()).then(|| {
            args.storm_gap
                .map(Into::into)
                .unwrap_or(Duration::from_secs(1))
        }),
        idle,
        hubs,
        resume_elsewhere: hubs > 1 && !args.resume_same_hub,
    })
}

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

fn pub_config(args: &BenchArgs, plan: &Plan) -> anyhow::Result<PubConfig> {
    let mut headers = Vec::new();
    let (urls, body, content_type) = match &args.pub_url {
        Some(url) => (
            vec![url.clone()],
            args.pub_body.clone().unwrap_or_else(|| "{data}".into()),
            args.pub_content_type
                .clone()
                .unwrap_or_else(|| "text/plain".into()),
        ),
        None => {
            let token = match (&args.token, &args.jwt_key) {
                (Some(t), _) => Some(t.clone()),
                (None, Some(key)) => Some(
                    crate::token::sign(
                        jsonwebtoken::Algorithm::HS256,
                        key.as_bytes(),
                        &["*".to_owned()],
                        &[],
                        "none",
                        None,
                    )
                    .context("cannot mint a publisher token")?,
                ),
                (None, None) => None,
            };
            if let Some(token) = token {
                headers.push(("Authorization".into(), format!("Bearer {token}")));
            }
            (
                hubs::endpoints(args)?,
                args.pub_body
                    .clone()
                    .unwrap_or_else(|| "topic={topic}&data={data}".into()),
                args.pub_content_type
                    .clone()
                    .unwrap_or_else(|| "application/x-www-form-urlencoded".into()),
            )
        }
    };
    for url in &urls {
        http::Url::parse(&http::fill(url, "t", "", true)).context("invalid publish URL")?;
    }
    Ok(PubConfig {
        urls,
        method: args.pub_method.clone(),
        body,
        content_type,
        headers,
        topic_prefix: args.topic_prefix.clone(),
        topics: plan.topics,
        window: plan.window,
        payload: args.payload,
    })
}

async fn bench(args: &BenchArgs) -> anyhow::Result<Report> {
    let plan = plan(args)?;
    let pub_config = Arc::new(pub_config(args, &plan)?);
    let sub_urls = hubs::sub_urls(args)?;
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let pids = &args.hub_pids;
    // Each node is named by its endpoint; with the templates there is one
    // server and no per-node list, whatever --hub says.
    let nodes = if args.sub_url.is_none() && args.pub_url.is_none() {
        hubs::endpoints(args)?
    } else {
        Vec::new()
    };
    let mut memory = Memory::start(pids, &nodes);
    let tcp_start = report::kernel_tcp_kib();

    // Subscribers, split over processes.
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
        };
        pools.push(Pool::start(&config, remote).await?);
    }
    let published = Arc::new(Published::new(plan.topics, plan.publishers));
    let (phase_tx, phase_rx) = watch::channel(String::from("connect"));
    let progress = (!args.quiet).then(|| {
        spawn_progress(
            pools.iter().map(|p| Arc::clone(p.counters())).collect(),
            Arc::clone(&published),
            phase_rx,
            plan.subscribers,
        )
    });

    let mut connect = pool::ConnectReport::default();
    for pool in &mut pools {
        connect.add(&pool.connected().await?);
    }
    if connect.connected == 0 {
        bail!(
            "no subscriber could connect: {}",
            connect.first_error.as_deref().unwrap_or("unknown error")
        );
    }
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
    for step in &mut steps {
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
    memory.read(pids, Moment::End);
    let peak = steps
        .iter()
        .map(|s| s.deliveries_per_second)
        .fold(0.0, f64::max);
    Ok(Report {
        scenario: clap::ValueEnum::to_possible_value(&args.scenario)
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default(),
        target: args.name.clone(),
        hubs: plan.hubs,
        started_unix,
        subscribers: plan.subscribers,
        topics: plan.topics,
        workers: if remote { processes } else { 0 },
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn args(extra: &[&str]) -> BenchArgs {
        Cli::parse_from(std::iter::once("bench").chain(extra.iter().copied())).args
    }

    /// The one subscribe URL of a run against one server.
    fn sub_url(a: &BenchArgs) -> anyhow::Result<String> {
        let mut urls = hubs::sub_urls(a)?;
        assert_eq!(urls.len(), 1, "{urls:?}");
        Ok(urls.remove(0))
    }

    #[test]
    fn scenarios_set_defaults_and_flags_win() {
        let p = plan(&args(&["--scenario", "fanout"])).unwrap();
        assert_eq!((p.subscribers, p.topics), (10_000, 1));
        assert!(p.ramp && p.steps.len() > 3);
        let p = plan(&args(&["--scenario", "fanout", "-n", "50", "--rate", "5"])).unwrap();
        assert_eq!(p.subscribers, 50);
        assert_eq!(p.steps, vec![Some(5.0)]);
        assert!(!p.ramp);
        let p = plan(&args(&["--scenario", "idle"])).unwrap();
        assert!(p.idle);
        let p = plan(&args(&["--scenario", "storm"])).unwrap();
        assert_eq!(p.storm_gap, Some(Duration::from_secs(1)));
        let p = plan(&args(&["--scenario", "publish"])).unwrap();
        assert_eq!(p.steps, vec![None]);
        assert!(plan(&args(&["--rate", "fast"])).is_err());
        assert!(plan(&args(&["--rate=-1"])).is_err());
        let err = plan(&args(&["-n", "0"])).unwrap_err();
        assert!(err.to_string().contains("at least 1"), "{err}");
    }

    #[test]
    fn urls_default_to_mercure_and_templates_are_taken_as_given() {
        let a = args(&[]);
        assert_eq!(
            sub_url(&a).unwrap(),
            "http://127.0.0.1:8080/.well-known/mercure?topic={topic}"
        );
        let c = pub_config(&a, &plan(&a).unwrap()).unwrap();
        assert_eq!(c.body, "topic={topic}&data={data}");
        assert!(c.headers.is_empty());
        let a = args(&[
            "--sub-url",
            "http://127.0.0.1:9/sub/{topic}",
            "--pub-url",
            "http://127.0.0.1:9/pub/{topic}",
        ]);
        assert_eq!(sub_url(&a).unwrap(), "http://127.0.0.1:9/sub/{topic}");
        let c = pub_config(&a, &plan(&a).unwrap()).unwrap();
        assert_eq!(
            (c.body.as_str(), c.content_type.as_str()),
            ("{data}", "text/plain")
        );
        let a = args(&["--jwt-key", "secret"]);
        let c = pub_config(&a, &plan(&a).unwrap()).unwrap();
        assert!(c.headers[0].1.starts_with("Bearer ey"));
        assert!(pub_config(
            &args(&["--hub", "http://10.1.1.1/"]),
            &plan(&args(&[])).unwrap()
        )
        .is_err());
    }

    #[test]
    fn a_hub_base_url_gets_the_mercure_path_as_for_herald_pub() {
        for hub in ["http://127.0.0.1:8080", "http://127.0.0.1:8080/"] {
            let a = args(&["--hub", hub]);
            assert_eq!(
                sub_url(&a).unwrap(),
                "http://127.0.0.1:8080/.well-known/mercure?topic={topic}"
            );
            let c = pub_config(&a, &plan(&a).unwrap()).unwrap();
            assert_eq!(c.urls, ["http://127.0.0.1:8080/.well-known/mercure"]);
        }
        let a = args(&["--hub", "http://127.0.0.1:8080/custom?x=1"]);
        assert_eq!(
            sub_url(&a).unwrap(),
            "http://127.0.0.1:8080/custom?x=1&topic={topic}"
        );
        assert!(sub_url(&args(&["--hub", "127.0.0.1:8080"])).is_err());
        // Templates for other servers are not touched.
        let a = args(&["--hub", "nonsense", "--sub-url", "http://127.0.0.1:9/"]);
        assert_eq!(sub_url(&a).unwrap(), "http://127.0.0.1:9/");
    }

    #[test]
    fn hub_repeats_for_the_nodes_of_a_cluster() {
        // No --hub: the one default; one --hub replaces it.
        let p = plan(&args(&[])).unwrap();
        assert_eq!((p.hubs, p.resume_elsewhere, p.publishers), (1, false, 1));
        let a = args(&["--hub", "http://127.0.0.1:9611"]);
        assert_eq!(a.hubs, ["http://127.0.0.1:9611"]);
        assert_eq!(plan(&a).unwrap().hubs, 1);

        let two = [
            "--hub",
            "http://127.0.0.1:9611",
            "--hub",
            "http://127.0.0.1:9612/",
        ];
        let a = args(&two);
        let p = plan(&a).unwrap();
        assert_eq!(p.hubs, 2);
        // A storm resumes elsewhere unless told not to.
        assert!(p.resume_elsewhere);
        let a = args(&[&two[..], &["--resume-same-hub"]].concat());
        assert!(!plan(&a).unwrap().resume_elsewhere);
        // Every hub gets a publishing connection by default; flags win.
        let six: Vec<String> = (9401..=9406)
            .flat_map(|port| ["--hub".to_owned(), format!("http://127.0.0.1:{port}")])
            .collect();
        let six: Vec<&str> = six.iter().map(String::as_str).collect();
        assert_eq!(plan(&args(&six)).unwrap().publishers, 6);
        let fanout = args(&[&six[..], &["--scenario", "fanout"]].concat());
        assert_eq!(plan(&fanout).unwrap().publishers, 16);
        let one = args(&[&six[..], &["--publishers", "1"]].concat());
        assert_eq!(plan(&one).unwrap().publishers, 1);
    }

    #[test]
    fn subscribers_and_publishers_spread_over_the_hubs() {
        let a = args(&[
            "--hub",
            "http://127.0.0.1:9611",
            "--hub",
            "http://127.0.0.1:9612/.well-known/mercure",
            "--hub",
            "http://127.0.0.1:9613/custom?x=1",
        ]);
        let subs = hubs::sub_urls(&a).unwrap();
        assert_eq!(
            subs,
            [
                "http://127.0.0.1:9611/.well-known/mercure?topic={topic}",
                "http://127.0.0.1:9612/.well-known/mercure?topic={topic}",
                "http://127.0.0.1:9613/custom?x=1&topic={topic}",
            ]
        );
        // Subscriber i on hub i mod 3.
        let on: Vec<&str> = (0..4)
            .map(|i| subs[hubs::assigned_hub(i, subs.len())].as_str())
            .collect();
        assert_eq!(on, [&subs[0], &subs[1], &subs[2], &subs[0]]);
        // Publishing connection j to hub j mod 3.
        let c = pub_config(&a, &plan(&a).unwrap()).unwrap();
        let to: Vec<&str> = (0..5).map(|j| c.url_of(j)).collect();
        assert_eq!(
            to,
            [
                "http://127.0.0.1:9611/.well-known/mercure",
                "http://127.0.0.1:9612/.well-known/mercure",
                "http://127.0.0.1:9613/custom?x=1",
                "http://127.0.0.1:9611/.well-known/mercure",
                "http://127.0.0.1:9612/.well-known/mercure",
            ]
        );
        // One bad hub among several is refused.
        let a = args(&["--hub", "http://127.0.0.1:9611", "--hub", "9612"]);
        assert!(hubs::sub_urls(&a).is_err());
        assert!(pub_config(&a, &plan(&a).unwrap()).is_err());
    }

    #[test]
    fn several_hubs_refuse_templates_and_want_one_pid_each() {
        let two = [
            "--hub",
            "http://127.0.0.1:9611",
            "--hub",
            "http://127.0.0.1:9612",
        ];
        for template in ["--sub-url", "--pub-url"] {
            let a = args(&[&two[..], &[template, "http://127.0.0.1:9/{topic}"]].concat());
            let err = plan(&a).unwrap_err().to_string();
            assert!(
                err.contains("--sub-url and --pub-url address one server"),
                "{err}"
            );
        }
        // One server of another kind with a template is as before.
        let a = args(&["--sub-url", "http://127.0.0.1:9/{topic}", "--hub-pid", "7"]);
        assert_eq!(plan(&a).unwrap().hubs, 1);

        let a = args(&[&two[..], &["--hub-pid", "7", "--hub-pid", "8"]].concat());
        assert_eq!(a.hub_pids, [7, 8]);
        assert!(plan(&a).is_ok());
        let three = ["--hub-pid", "7", "--hub-pid", "8", "--hub-pid", "9"];
        for pids in [&three[..2], &three[..]] {
            let a = args(&[&two[..], pids].concat());
            let err = plan(&a).unwrap_err().to_string();
            assert!(err.contains("one --hub-pid per --hub"), "{err}");
        }
        let a = args(&["--hub-pid", "7", "--hub-pid", "8"]);
        let err = plan(&a).unwrap_err().to_string();
        assert!(err.contains("2 --hub-pid for 1 hub(s)"), "{err}");
    }
}
