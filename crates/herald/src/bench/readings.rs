//! What the bench reads of the hubs it loads and of the kernel, from
//! /proc: each hub's RSS (`/proc/PID/status`) at the start, once every
//! subscriber is connected and at the end, its CPU time
//! (`/proc/PID/stat`), and the kernel's TCP buffer memory
//! (`/proc/net/sockstat`).

use serde::{Deserialize, Serialize};

/// Memory readings. With several hubs (one `--hub-pid` each) the `hub_*`
/// figures are the sum over every node (`None` when any node could not be
/// read), so per subscriber is the cluster's cost of one subscriber, and
/// `nodes` has each node's own RSS.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Memory {
    /// The hub's PID (`None` with several: see `nodes`).
    pub(crate) hub_pid: Option<u32>,
    /// The hub's RSS before any subscriber connected, KiB.
    pub(crate) hub_rss_start_kib: Option<u64>,
    /// With every subscriber connected and settled, KiB.
    pub(crate) hub_rss_connected_kib: Option<u64>,
    /// At the end of the run, KiB.
    pub(crate) hub_rss_end_kib: Option<u64>,
    /// (connected − start) / subscribers, bytes.
    pub(crate) hub_bytes_per_subscriber: Option<f64>,
    /// Kernel TCP memory (both ends of every loopback connection), change
    /// from start to connected, KiB.
    pub(crate) kernel_tcp_delta_kib: Option<u64>,
    /// That change per subscriber, bytes (both ends).
    pub(crate) kernel_tcp_bytes_per_subscriber: Option<f64>,
    /// Each node's readings, in the order of `--hub`, when there are
    /// several.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) nodes: Vec<NodeMemory>,
}

/// One node's RSS, KiB, when several hubs are measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct NodeMemory {
    /// Its `--hub` endpoint.
    pub(crate) hub: String,
    pub(crate) pid: u32,
    pub(crate) rss_start_kib: Option<u64>,
    pub(crate) rss_connected_kib: Option<u64>,
    pub(crate) rss_end_kib: Option<u64>,
}

/// When in the run the RSS is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Moment {
    /// Before any subscriber.
    Start,
    /// Every subscriber connected and settled.
    Connected,
    /// After the drain.
    End,
}

impl Memory {
    /// The readings of the hub processes `pids`, one per hub of `hubs` in
    /// the same order, the first one taken now.
    pub(crate) fn start(pids: &[u32], hubs: &[String]) -> Memory {
        let mut memory = Memory {
            hub_pid: pids.first().copied().filter(|_| pids.len() == 1),
            nodes: if pids.len() > 1 {
                pids.iter()
                    .zip(hubs)
                    .map(|(&pid, hub)| NodeMemory {
                        hub: hub.clone(),
                        pid,
                        ..NodeMemory::default()
                    })
                    .collect()
            } else {
                Vec::new()
            },
            ..Memory::default()
        };
        memory.read(pids, Moment::Start);
        memory
    }

    /// Works out the cost of each of `subscribers` from the RSS readings at
    /// the start and once connected, and the kernel's TCP memory
    /// (`tcp_start`, `tcp_connected`).
    pub(crate) fn per_subscriber(
        &mut self,
        tcp_start: Option<u64>,
        tcp_connected: Option<u64>,
        subscribers: u64,
    ) {
        let n = subscribers.max(1) as f64;
        if let (Some(a), Some(b)) = (self.hub_rss_start_kib, self.hub_rss_connected_kib) {
            self.hub_bytes_per_subscriber = Some((b as f64 - a as f64) * 1024.0 / n);
        }
        if let (Some(a), Some(b)) = (tcp_start, tcp_connected) {
            self.kernel_tcp_delta_kib = Some(b.saturating_sub(a));
            self.kernel_tcp_bytes_per_subscriber = Some(b.saturating_sub(a) as f64 * 1024.0 / n);
        }
    }

    /// Reads the RSS of every process in `pids` (the ones given to
    /// [`Memory::start`]) for the moment `at`.
    pub(crate) fn read(&mut self, pids: &[u32], at: Moment) {
        let rss: Vec<Option<u64>> = pids.iter().map(|&pid| rss_kib(pid)).collect();
        self.record(&rss, at);
    }

    /// Records the readings `rss` (one per process, in order) for the
    /// moment `at`.
    pub(crate) fn record(&mut self, rss: &[Option<u64>], at: Moment) {
        for (node, kib) in self.nodes.iter_mut().zip(rss) {
            *match at {
                Moment::Start => &mut node.rss_start_kib,
                Moment::Connected => &mut node.rss_connected_kib,
                Moment::End => &mut node.rss_end_kib,
            } = *kib;
        }
        // A total only when every node was read: a partial sum would pass
        // for the cluster's.
        let total = rss.iter().copied().sum::<Option<u64>>();
        *match at {
            Moment::Start => &mut self.hub_rss_start_kib,
            Moment::Connected => &mut self.hub_rss_connected_kib,
            Moment::End => &mut self.hub_rss_end_kib,
        } = total;
    }
}

/// The `VmRSS` of a process, KiB.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time (user + system) the processes `pids` have used together, in
/// seconds; `None` when there are none or any cannot be read.
pub(crate) fn cpu_seconds_of_all(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| cpu_seconds(pid)).sum()
}

/// CPU time (user + system) a process has used, in seconds.
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_cpu_seconds(&stat)
}

/// User + system CPU seconds from a `/proc/PID/stat` line.
fn parse_stat_cpu_seconds(stat: &str) -> Option<f64> {
    // Fields after the command name, which is in parentheses and may itself
    // hold spaces and parentheses: the last `)` ends it.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line (11 and 12
    // here), in clock ticks of 1/100 s on Linux.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// Kernel TCP buffer memory in KiB, from `/proc/net/sockstat` (pages).
pub(crate) fn kernel_tcp_kib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/sockstat").ok()?;
    parse_sockstat_mem_pages(&text).map(|pages| pages * 4)
}

fn parse_sockstat_mem_pages(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("TCP:"))?;
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == "mem" {
            return words.next()?.parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockstat_memory_is_read_in_pages() {
        let text =
            "sockets: used 290\nTCP: inuse 12 orphan 0 tw 3 alloc 14 mem 7\nUDP: inuse 1 mem 2\n";
        assert_eq!(parse_sockstat_mem_pages(text), Some(7));
        assert_eq!(parse_sockstat_mem_pages("UDP: inuse 1 mem 2\n"), None);
    }

    #[test]
    fn own_rss_and_cpu_are_readable() {
        let rss = rss_kib(std::process::id()).unwrap();
        assert!(rss > 0);
        assert_eq!(rss_kib(u32::MAX), None);
        assert!(cpu_seconds(std::process::id()).is_some());
        assert_eq!(cpu_seconds(u32::MAX), None);
    }

    #[test]
    fn cpu_seconds_are_utime_plus_stime_in_hundredths() {
        // A command name with spaces and parentheses of its own; utime 250
        // and stime 75 ticks are fields 14 and 15 of the line.
        let stat = "4242 (herald (bench) x) R 1 4242 4242 0 -1 4194560 1003 0 2 0 250 75 3 4 20 0 9 0 123456 1000 50\n";
        assert_eq!(parse_stat_cpu_seconds(stat), Some(3.25));
        // Cut before stime, or with a non-number there: nothing, not zero.
        assert_eq!(
            parse_stat_cpu_seconds("4242 (x) R 1 4242 4242 0 -1 4194560 1003 0 2 0 250"),
            None
        );
        assert_eq!(
            parse_stat_cpu_seconds("4242 (x) R 1 4242 4242 0 -1 4194560 1003 0 2 0 250 x"),
            None
        );
        assert_eq!(parse_stat_cpu_seconds("no parenthesis at all"), None);
    }
}
