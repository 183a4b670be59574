//! The outcome of a run: a JSON document and the table printed for people
//! (the hub's memory and CPU in it are read by `readings`).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::pool::{ConnectReport, StormReport};
use super::publisher::PubStats;
use super::readings::Memory;
use super::soak::SoakReport;
use super::stats::{LatencySummary, Totals};
use super::transport::Transport;

/// Everything a run measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Report {
    /// Scenario name.
    pub(crate) scenario: String,
    /// What was measured (`--name`).
    pub(crate) target: String,
    /// Hubs loaded: the number of `--hub` (the nodes of a cluster), or 1
    /// with `--sub-url`/`--pub-url`.
    #[serde(default)]
    pub(crate) hubs: usize,
    /// Seconds since the Unix epoch when the run started.
    pub(crate) started_unix: u64,
    pub(crate) subscribers: usize,
    pub(crate) topics: usize,
    /// Worker processes used (0: all subscribers in this process).
    pub(crate) workers: usize,
    /// The protocol subscribers spoke (`--transport`: http1, https, h2,
    /// h2c); how many connections carried them is `connect.connections`.
    #[serde(default)]
    pub(crate) transport: Transport,
    /// Subscribers per HTTP/2 connection asked for (h2, h2c only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) streams_per_connection: Option<usize>,
    pub(crate) connect: ConnectReport,
    pub(crate) connects_per_second: f64,
    /// One per publishing step (or one for a fixed rate).
    pub(crate) steps: Vec<Step>,
    /// Highest deliveries/s of any step.
    pub(crate) peak_deliveries_per_second: f64,
    pub(crate) storm: Option<StormReport>,
    pub(crate) totals: Totals,
    /// Events published (sequence numbers handed out), all topics.
    pub(crate) published: u64,
    /// Publish requests answered with an error.
    pub(crate) publish_errors: u64,
    pub(crate) first_publish_error: Option<String>,
    pub(crate) memory: Option<Memory>,
    /// The soak's samples and verdict (scenario soak).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) soak: Option<SoakReport>,
}

/// One phase of publishing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Step {
    pub(crate) name: String,
    /// Events/s asked of the publisher (`None`: as fast as possible).
    pub(crate) offered_events_per_second: Option<f64>,
    /// Publishes acknowledged per second.
    pub(crate) acked_per_second: f64,
    pub(crate) publish: PubStats,
    /// Events received by subscribers during the step.
    pub(crate) deliveries: u64,
    pub(crate) deliveries_per_second: f64,
    /// Publish-to-receive latency of those deliveries.
    pub(crate) latency: LatencySummary,
    /// CPU the server used during the step, in % of one core (with
    /// several `--hub-pid`, all of them together).
    pub(crate) hub_cpu_percent: Option<f64>,
}

fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if v < 10.0 && v.fract() != 0.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

impl Report {
    /// The table printed at the end of a run.
    pub(crate) fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "herald bench: scenario {} against {}{}: {} subscribers on {} topic(s){}",
            self.scenario,
            self.target,
            if self.hubs > 1 {
                format!(" ({} hubs)", self.hubs)
            } else {
                String::new()
            },
            self.subscribers,
            self.topics,
            if self.workers > 0 {
                format!(", {} worker processes", self.workers)
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            out,
            "subscribers: {} over {}, {} connection(s){}",
            self.connect.connected,
            self.transport.describe(),
            self.connect.connections,
            self.streams_per_connection
                .map(|n| format!(" of up to {n} streams"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "connect: {} connected, {} errors in {:.2} s ({} connects/s){}",
            self.connect.connected,
            self.connect.errors,
            self.connect.seconds,
            si(self.connects_per_second),
            self.connect
                .first_error
                .as_deref()
                .map(|e| format!("; first error: {e}"))
                .unwrap_or_default()
        );
        if !self.steps.is_empty() {
            let _ = writeln!(
                out,
                "{:<18} {:>10} {:>10} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
                "step",
                "offered/s",
                "acked/s",
                "deliveries/s",
                "p50 ms",
                "p99 ms",
                "p99.9 ms",
                "max ms",
                "ack p99",
                "hub CPU"
            );
            for s in &self.steps {
                let _ = writeln!(
                    out,
                    "{:<18} {:>10} {:>10} {:>12} {:>9.2} {:>9.2} {:>9.2} {:>9.1} {:>9.2} {:>8}",
                    s.name,
                    s.offered_events_per_second
                        .map(si)
                        .unwrap_or_else(|| "max".into()),
                    si(s.acked_per_second),
                    si(s.deliveries_per_second),
                    s.latency.p50_ms,
                    s.latency.p99_ms,
                    s.latency.p999_ms,
                    s.latency.max_ms,
                    s.publish.ack_latency.p99_ms,
                    s.hub_cpu_percent
                        .map(|c| format!("{c:.0}%"))
                        .unwrap_or_else(|| "?".into()),
                );
            }
            let _ = writeln!(
                out,
                "peak deliveries/s: {}",
                si(self.peak_deliveries_per_second)
            );
        }
        if let Some(storm) = &self.storm {
            let _ = writeln!(
                out,
                "storm: {} dropped, {} reconnected{} in {:.2} s, {} caught up in {:.2} s",
                storm.dropped,
                storm.reconnected,
                if storm.resumed_on_next_hub {
                    " on the next hub"
                } else {
                    ""
                },
                storm.reconnect_seconds,
                storm.caught_up,
                storm.caught_up_seconds
            );
        }
        let t = &self.totals;
        let _ = writeln!(
            out,
            "events: {} published, {} received, {} lost, {} duplicated, {} malformed; {} behind at the end; {} disconnects, {} reconnects; {} publish errors",
            self.published, t.received, t.lost, t.duplicates, t.malformed, t.behind, t.disconnects, t.reconnects, self.publish_errors
        );
        if let Some(e) = &t.first_disconnect {
            let _ = writeln!(out, "first disconnect: {e}");
        }
        if let Some(e) = &self.first_publish_error {
            let _ = writeln!(out, "first publish error: {e}");
        }
        if let Some(m) = &self.memory {
            let kib = |v: Option<u64>| v.map(|v| format!("{v} KiB")).unwrap_or_else(|| "?".into());
            let _ = writeln!(
                out,
                "hub memory ({}): RSS {} at start, {} connected, {} at the end; {} per subscriber; kernel TCP memory +{} ({} per subscriber, both ends)",
                if m.nodes.is_empty() {
                    format!(
                        "pid {}",
                        m.hub_pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into())
                    )
                } else {
                    format!("{} nodes together", m.nodes.len())
                },
                kib(m.hub_rss_start_kib),
                kib(m.hub_rss_connected_kib),
                kib(m.hub_rss_end_kib),
                m.hub_bytes_per_subscriber
                    .map(|b| format!("{b:.0} B"))
                    .unwrap_or_else(|| "?".into()),
                kib(m.kernel_tcp_delta_kib),
                m.kernel_tcp_bytes_per_subscriber
                    .map(|b| format!("{b:.0} B"))
                    .unwrap_or_else(|| "?".into()),
            );
            for (i, node) in m.nodes.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "  node {} (pid {}, {}): RSS {} at start, {} connected, {} at the end",
                    i + 1,
                    node.pid,
                    node.hub,
                    kib(node.rss_start_kib),
                    kib(node.rss_connected_kib),
                    kib(node.rss_end_kib),
                );
            }
        }
        if let Some(soak) = &self.soak {
            out.push_str(&soak.table(&self.totals));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::readings::{cpu_seconds_of_all, Moment};

    #[test]
    fn table_and_json_carry_the_figures() {
        let report = Report {
            scenario: "fanout".into(),
            target: "herald-memory".into(),
            subscribers: 100,
            topics: 1,
            steps: vec![Step {
                name: "rate 10/s".into(),
                offered_events_per_second: Some(10.0),
                acked_per_second: 10.0,
                deliveries: 1000,
                deliveries_per_second: 1000.0,
                latency: LatencySummary {
                    count: 1000,
                    p50_ms: 0.5,
                    p99_ms: 1.25,
                    p999_ms: 2.0,
                    max_ms: 3.0,
                },
                ..Step::default()
            }],
            peak_deliveries_per_second: 1000.0,
            totals: Totals {
                received: 1000,
                lost: 0,
                duplicates: 0,
                ..Totals::default()
            },
            memory: Some(Memory {
                hub_pid: Some(42),
                hub_rss_start_kib: Some(1000),
                hub_rss_connected_kib: Some(1200),
                hub_bytes_per_subscriber: Some(2048.0),
                ..Memory::default()
            }),
            ..Report::default()
        };
        let table = report.table();
        assert!(
            table.contains("scenario fanout against herald-memory"),
            "{table}"
        );
        assert!(table.contains("rate 10/s"), "{table}");
        // The header has a column for every figure of a step's row.
        let lines: Vec<&str> = table.lines().collect();
        let header = lines.iter().position(|l| l.starts_with("step ")).unwrap();
        assert!(lines[header].ends_with("hub CPU"), "{table}");
        assert_eq!(lines[header].len(), lines[header + 1].len(), "{table}");
        assert!(table.contains("1.25"), "{table}");
        assert!(
            table.contains("1000 received, 0 lost, 0 duplicated"),
            "{table}"
        );
        assert!(table.contains("2048 B per subscriber"), "{table}");
        assert!(
            table.contains("subscribers: 0 over HTTP/1.1, 0 connection(s)\n"),
            "{table}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["steps"][0]["latency"]["p99_ms"], 1.25);
        assert_eq!(json["totals"]["lost"], 0);
        let back: Report = serde_json::from_value(json).unwrap();
        assert_eq!(back.steps[0].deliveries, 1000);
    }

    #[test]
    fn the_table_and_json_say_which_protocol_carried_the_subscribers() {
        let report = Report {
            transport: Transport::H2,
            streams_per_connection: Some(250),
            connect: ConnectReport {
                connected: 10_000,
                connections: 40,
                ..ConnectReport::default()
            },
            ..Report::default()
        };
        let table = report.table();
        assert!(
            table.contains(
                "subscribers: 10000 over HTTP/2 (TLS), 40 connection(s) of up to 250 streams\n"
            ),
            "{table}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["transport"], "h2");
        assert_eq!(json["streams_per_connection"], 250);
        assert_eq!(json["connect"]["connections"], 40);
        // A report written before transports were told apart was HTTP/1.1.
        let mut old = json;
        old.as_object_mut().unwrap().remove("transport");
        let back: Report = serde_json::from_value(old).unwrap();
        assert_eq!(back.transport, Transport::Http1);
    }

    #[test]
    fn the_table_and_json_say_how_many_hubs_were_loaded() {
        let report = Report {
            target: "cluster".into(),
            hubs: 6,
            ..Report::default()
        };
        let table = report.table();
        assert!(table.contains("against cluster (6 hubs):"), "{table}");
        assert_eq!(serde_json::to_value(&report).unwrap()["hubs"], 6);
        // One hub: the line as before.
        let report = Report {
            target: "hub".into(),
            hubs: 1,
            ..Report::default()
        };
        assert!(
            report.table().contains("against hub: "),
            "{}",
            report.table()
        );
        assert_eq!(serde_json::to_value(&report).unwrap()["hubs"], 1);
    }

    #[test]
    fn several_hubs_memory_is_summed_and_kept_per_node() {
        let me = std::process::id();
        let hubs = [
            "http://127.0.0.1:9401/.well-known/mercure".to_owned(),
            "http://127.0.0.1:9402/.well-known/mercure".to_owned(),
        ];
        let mut memory = Memory::start(&[me, me], &hubs);
        assert_eq!(memory.hub_pid, None);
        assert_eq!(memory.nodes.len(), 2);
        assert_eq!(memory.nodes[1].hub, hubs[1]);
        // Each node's figure is its own reading (the same process here,
        // read twice: its RSS may move between the reads).
        let (first, second) = (
            memory.nodes[0].rss_start_kib.unwrap(),
            memory.nodes[1].rss_start_kib.unwrap(),
        );
        assert_eq!(memory.hub_rss_start_kib, Some(first + second));
        memory.record(&[Some(1000), Some(3000)], Moment::Connected);
        assert_eq!(memory.hub_rss_connected_kib, Some(4000));
        assert_eq!(memory.nodes[1].rss_connected_kib, Some(3000));
        // A node that cannot be read leaves the total unknown, not short.
        memory.record(&[Some(1000), None], Moment::End);
        assert_eq!(memory.hub_rss_end_kib, None);
        assert_eq!(memory.nodes[0].rss_end_kib, Some(1000));
        let report = Report {
            target: "cluster".into(),
            hubs: 2,
            memory: Some(memory),
            ..Report::default()
        };
        let table = report.table();
        assert!(table.contains("hub memory (2 nodes together)"), "{table}");
        assert!(
            table.contains(&format!(
                "node 2 (pid {me}, {}): RSS {second} KiB at start, 3000 KiB connected, ? at the end",
                hubs[1]
            )),
            "{table}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["memory"]["nodes"][1]["rss_connected_kib"], 3000);

        // One hub: as before, no per-node list.
        let memory = Memory::start(&[me], &hubs[..1]);
        assert_eq!(memory.hub_pid, Some(me));
        let report = Report {
            target: "hub".into(),
            hubs: 1,
            memory: Some(memory),
            ..Report::default()
        };
        assert!(report.table().contains(&format!("hub memory (pid {me})")));
        let json = serde_json::to_value(&report).unwrap();
        assert!(json["memory"].get("nodes").is_none(), "{json}");

        assert_eq!(cpu_seconds_of_all(&[]), None);
        assert!(cpu_seconds_of_all(&[me, me]).is_some());
        assert_eq!(cpu_seconds_of_all(&[me, u32::MAX]), None);
    }
}
