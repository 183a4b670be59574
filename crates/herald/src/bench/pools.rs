//! The run's subscribers as one: pools split over worker processes beyond
//! `--per-process`, commanded together (phases, the storm, the finish),
//! their live counters summed for the progress line.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use tokio::sync::watch;

use super::hubs;
use super::options::BenchArgs;
use super::plan::Plan;
use super::pool::{self, PoolConfig, StormReport};
use super::publisher::Published;
use super::soak;
use super::stats::{self, merge_phases, Phase};
use super::worker::Pool;

/// The run's subscribers, split over processes beyond `--per-process`,
/// connecting from the start.
pub(super) struct Pools {
    pools: Vec<Pool>,
    /// Subscribers run in worker processes.
    pub(super) remote: bool,
    pub(super) processes: usize,
}

/// Each process's share of `subscribers` at most `per_process` each: its
/// first subscriber and how many. Over HTTP/2 a share is whole groups of
/// `group` (the subscribers of one connection), so no connection is split
/// between processes.
fn shares(subscribers: usize, per_process: usize, group: usize) -> Vec<(usize, usize)> {
    let processes = subscribers.div_ceil(per_process.max(1)).max(1);
    let group = group.max(1);
    let share = subscribers.div_ceil(processes).div_ceil(group) * group;
    (0..subscribers.div_ceil(share).max(1))
        .map(|p| {
            let first = p * share;
            (first, share.min(subscribers.saturating_sub(first)))
        })
        .collect()
}

impl Pools {
    /// Starts the subscribers of `plan`; `soak` makes them churn.
    pub(super) async fn start(
        args: &BenchArgs,
        plan: &Plan,
        soak: Option<soak::mix::Churn>,
    ) -> anyhow::Result<Pools> {
        let sub_urls = hubs::sub_urls(args)?;
        // The subscribers of one HTTP/2 connection: `streams` consecutive
        // ones on each hub (see `pool::wire::h2::group_of`).
        let group = plan
            .streams_per_connection()
            .map_or(1, |streams| streams * sub_urls.len().max(1));
        let shares = shares(plan.subscribers, args.per_process, group);
        let processes = shares.len();
        let remote = processes > 1;
        let mut pools = Vec::with_capacity(processes);
        for (first, count) in shares {
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
    pub(super) async fn connected(&mut self) -> anyhow::Result<pool::ConnectReport> {
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
    pub(super) async fn phase(&mut self, name: &str) -> anyhow::Result<()> {
        for pool in &mut self.pools {
            pool.phase(name).await?;
        }
        Ok(())
    }

    /// Drops every subscriber at once, everywhere, and waits until they
    /// resumed and caught up with `targets`.
    pub(super) async fn storm(
        &mut self,
        gap: Duration,
        targets: Vec<u64>,
    ) -> anyhow::Result<StormReport> {
        let storms = futures_util::future::join_all(
            self.pools.iter_mut().map(|p| p.storm(gap, targets.clone())),
        )
        .await;
        let mut report = StormReport::default();
        for r in storms {
            report.add(&r?);
        }
        Ok(report)
    }

    /// Events received so far, all subscribers together.
    pub(super) fn deliveries(&self) -> u64 {
        self.pools
            .iter()
            .map(|p| p.counters().deliveries.load(Ordering::Relaxed))
            .sum()
    }

    /// The progress line's task, unless `--quiet`.
    pub(super) fn progress(
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
    pub(super) async fn finish(
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

    #[test]
    fn processes_share_subscribers_and_never_split_a_connection() {
        // Over HTTP/1.1, even shares under the limit, as before.
        assert_eq!(shares(50, 25, 1), [(0, 25), (25, 25)]);
        assert_eq!(shares(19_500, 19_000, 1), [(0, 9_750), (9_750, 9_750)]);
        assert_eq!(shares(10, 19_000, 1), [(0, 10)]);
        // Over HTTP/2, whole connections: 300 subscribers, 100 streams,
        // are three connections, two in the first process.
        assert_eq!(shares(300, 200, 100), [(0, 200), (200, 100)]);
        assert_eq!(shares(250, 200, 100), [(0, 200), (200, 50)]);
        // Fewer subscribers than one connection holds: one process.
        assert_eq!(shares(30, 10, 100), [(0, 30)]);
        // Every subscriber has a place, once.
        for (n, per, group) in [(1_001, 97, 10), (7, 2, 3), (100_000, 19_000, 250)] {
            let s = shares(n, per, group);
            assert_eq!(s.iter().map(|(_, c)| c).sum::<usize>(), n);
            assert!(s.windows(2).all(|w| w[0].0 + w[0].1 == w[1].0));
            assert!(s.iter().all(|(first, _)| first % group == 0));
        }
    }
}
