//! Accounting for one benchmark run: sequence tracking per subscriber
//! (lost and duplicated events), latency histograms per phase, and their
//! merge across threads and worker processes.
//!
//! Every event the publisher sends carries its topic's sequence number (1,
//! 2, 3, …) and the wall-clock time it was sent. An SSE stream is ordered,
//! so a subscriber only needs the next number it expects: a smaller one is a
//! duplicate, a larger one means the numbers in between were lost. At the
//! end, whatever the topic published beyond the last number seen was lost
//! too. This costs a few words per subscriber, whatever the run's length.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Largest latency recorded, in microseconds (larger values are clamped).
const MAX_LATENCY_US: u64 = 600_000_000;

/// The in-order sequence tracker of one subscriber.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SeqTracker {
    /// Highest sequence number seen so far (0: none yet).
    pub(crate) max_seen: u64,
    /// Distinct events received.
    pub(crate) received: u64,
    /// Events skipped over (a gap in the sequence).
    pub(crate) gaps: u64,
    /// Events received at or below a number already seen.
    pub(crate) duplicates: u64,
}

/// What a received sequence number was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// The next expected one, or a later one after a gap.
    New,
    /// Already seen (or older than the latest seen).
    Duplicate,
}

impl SeqTracker {
    /// Records sequence number `seq` (1-based).
    pub(crate) fn record(&mut self, seq: u64) -> Seen {
        if seq <= self.max_seen {
            self.duplicates += 1;
            return Seen::Duplicate;
        }
        self.gaps += seq - self.max_seen - 1;
        self.max_seen = seq;
        self.received += 1;
        Seen::New
    }

    /// Records `seq` for a subscriber that arrived while the stream was
    /// going on: its first event is where it starts, whatever came before.
    pub(crate) fn record_joining(&mut self, seq: u64) -> Seen {
        if self.received == 0 && self.duplicates == 0 {
            self.max_seen = self.max_seen.max(seq.saturating_sub(1));
        }
        self.record(seq)
    }

    /// Events lost once `published` events were sent on the topic: the gaps
    /// plus the tail that never arrived.
    pub(crate) fn lost(&self, published: u64) -> u64 {
        self.gaps + published.saturating_sub(self.max_seen)
    }
}

/// A latency histogram in microseconds, in a form that crosses processes.
#[derive(Debug, Clone)]
pub(crate) struct Latency {
    hist: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

/// A serialized histogram: (value in µs, count) for each non-empty bucket.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct LatencyBuckets(pub(crate) Vec<(u64, u64)>);

impl Latency {
    pub(crate) fn new() -> Latency {
        // 3 significant digits from 1 µs to 10 minutes.
        // Constant, valid bounds: this cannot fail.
        let hist = Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
            .expect("1 ≤ max and 3 significant digits are valid bounds");
        Latency { hist }
    }

    /// Records one latency in microseconds (clamped into range).
    pub(crate) fn record(&mut self, us: u64) {
        self.hist.saturating_record(us.clamp(1, MAX_LATENCY_US));
    }

    /// Adds another histogram's counts.
    pub(crate) fn merge(&mut self, other: &Latency) {
        for v in other.hist.iter_recorded() {
            let _ = self
                .hist
                .record_n(v.value_iterated_to(), v.count_at_value());
        }
    }

    /// The counts, for sending to the parent process.
    pub(crate) fn buckets(&self) -> LatencyBuckets {
        LatencyBuckets(
            self.hist
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
        )
    }

    /// Rebuilds a histogram from [`Latency::buckets`].
    pub(crate) fn from_buckets(buckets: &LatencyBuckets) -> Latency {
        let mut latency = Latency::new();
        for &(value, count) in &buckets.0 {
            let _ = latency.hist.record_n(value.clamp(1, MAX_LATENCY_US), count);
        }
        latency
    }

    /// Number of values recorded.
    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The summary printed and written to JSON.
    pub(crate) fn summary(&self) -> LatencySummary {
        if self.hist.is_empty() {
            return LatencySummary::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        LatencySummary {
            count: self.hist.len(),
            p50_ms: ms(self.hist.value_at_quantile(0.50)),
            p99_ms: ms(self.hist.value_at_quantile(0.99)),
            p999_ms: ms(self.hist.value_at_quantile(0.999)),
            max_ms: ms(self.hist.max()),
        }
    }
}

/// Percentiles of one latency histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct LatencySummary {
    /// Deliveries measured.
    pub(crate) count: u64,
    /// Median.
    pub(crate) p50_ms: f64,
    /// 99th percentile.
    pub(crate) p99_ms: f64,
    /// 99.9th percentile.
    pub(crate) p999_ms: f64,
    /// Largest.
    pub(crate) max_ms: f64,
}

/// What the subscribers saw during one phase of the run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Phase {
    pub(crate) name: String,
    pub(crate) deliveries: u64,
    pub(crate) latency: Latency,
    /// Seconds the phase lasted, as the subscriber side measured it.
    pub(crate) seconds: f64,
}

/// [`Phase`] as it crosses processes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct PhaseWire {
    pub(crate) name: String,
    pub(crate) deliveries: u64,
    pub(crate) latency: LatencyBuckets,
    pub(crate) seconds: f64,
}

impl Phase {
    pub(crate) fn named(name: &str) -> Phase {
        Phase {
            name: name.to_owned(),
            ..Phase::default()
        }
    }

    pub(crate) fn to_wire(&self) -> PhaseWire {
        PhaseWire {
            name: self.name.clone(),
            deliveries: self.deliveries,
            latency: self.latency.buckets(),
            seconds: self.seconds,
        }
    }

    pub(crate) fn from_wire(wire: &PhaseWire) -> Phase {
        Phase {
            name: wire.name.clone(),
            deliveries: wire.deliveries,
            latency: Latency::from_buckets(&wire.latency),
            seconds: wire.seconds,
        }
    }
}

/// Merges phases of several threads or processes by name, keeping the
/// order in which names first appear. Durations take the longest.
pub(crate) fn merge_phases(all: impl IntoIterator<Item = Phase>) -> Vec<Phase> {
    let mut merged: Vec<Phase> = Vec::new();
    for phase in all {
        match merged.iter_mut().find(|p| p.name == phase.name) {
            Some(into) => {
                into.deliveries += phase.deliveries;
                into.latency.merge(&phase.latency);
                into.seconds = into.seconds.max(phase.seconds);
            }
            None => merged.push(phase),
        }
    }
    merged
}

/// Totals of the subscriber side, summed over every subscriber.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Totals {
    /// Subscribers whose stream opened (status 200).
    pub(crate) connected: u64,
    /// Connection attempts that failed (refused, reset, bad status).
    pub(crate) connect_errors: u64,
    /// Streams that ended or failed after opening.
    pub(crate) disconnects: u64,
    /// Reconnections made (after a disconnect or a storm).
    pub(crate) reconnects: u64,
    /// Distinct events received.
    pub(crate) received: u64,
    /// Events lost (gaps plus tails).
    pub(crate) lost: u64,
    /// Events received twice.
    pub(crate) duplicates: u64,
    /// Event data that did not parse as a benchmark event.
    pub(crate) malformed: u64,
    /// Subscribers that had not received everything when the drain ended.
    pub(crate) behind: u64,
    /// Why the first stream that ended unasked ended.
    pub(crate) first_disconnect: Option<String>,
    /// Connections a soak ended on schedule (each resumed or replaced).
    #[serde(default)]
    pub(crate) churned: u64,
    /// Subscribers of a soak that left, a new one taking the place.
    #[serde(default)]
    pub(crate) departed: u64,
    /// Streams (topic and publishing connection) that published events
    /// but of which a newcomer had received none at the end: nothing to
    /// start counting from.
    #[serde(default)]
    pub(crate) unchecked: u64,
}

impl Totals {
    pub(crate) fn add(&mut self, other: &Totals) {
        self.connected += other.connected;
        self.connect_errors += other.connect_errors;
        self.disconnects += other.disconnects;
        self.reconnects += other.reconnects;
        self.received += other.received;
        self.lost += other.lost;
        self.duplicates += other.duplicates;
        self.malformed += other.malformed;
        self.behind += other.behind;
        self.churned += other.churned;
        self.departed += other.departed;
        self.unchecked += other.unchecked;
        if self.first_disconnect.is_none() {
            self.first_disconnect.clone_from(&other.first_disconnect);
        }
    }
}

/// The data of one benchmark event: `{seq}_{topic}_{conn}_{sent_unix_ns}`,
/// optionally followed by `_` and padding. Sequence numbers count per
/// topic and publishing connection: each connection's events to a topic
/// arrive in order, whatever the other connections do.
pub(crate) fn event_data(
    seq: u64,
    topic: usize,
    conn: usize,
    sent_ns: u128,
    payload: usize,
) -> String {
    let mut data = format!("{seq}_{topic}_{conn}_{sent_ns}");
    if data.len() < payload {
        data.push('_');
        while data.len() < payload {
            data.push('x');
        }
    }
    data
}

/// Parses [`event_data`]: (seq, topic, conn, sent_unix_ns).
pub(crate) fn parse_event_data(data: &str) -> Option<(u64, usize, usize, u128)> {
    let mut parts = data.splitn(5, '_');
    let seq = parts.next()?.parse().ok()?;
    let topic = parts.next()?.parse().ok()?;
    let conn = parts.next()?.parse().ok()?;
    let sent = parts.next()?.parse().ok()?;
    Some((seq, topic, conn, sent))
}

/// Nanoseconds since the Unix epoch: the clock every process shares.
pub(crate) fn unix_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_sequence_has_no_loss_or_duplicate() {
        let mut t = SeqTracker::default();
        for seq in 1..=100 {
            assert_eq!(t.record(seq), Seen::New);
        }
        assert_eq!((t.received, t.gaps, t.duplicates), (100, 0, 0));
        assert_eq!(t.lost(100), 0);
    }

    #[test]
    fn gap_counts_lost_and_repeat_counts_duplicate() {
        let mut t = SeqTracker::default();
        t.record(1);
        t.record(2);
        t.record(5); // 3 and 4 lost
        assert_eq!(t.record(5), Seen::Duplicate);
        assert_eq!(t.record(2), Seen::Duplicate);
        t.record(6);
        assert_eq!(t.gaps, 2);
        assert_eq!(t.duplicates, 2);
        assert_eq!(t.received, 4);
        // Published 8: 7 and 8 never came.
        assert_eq!(t.lost(8), 4);
    }

    #[test]
    fn nothing_received_loses_everything_published() {
        let t = SeqTracker::default();
        assert_eq!(t.lost(42), 42);
        assert_eq!(t.lost(0), 0);
    }

    #[test]
    fn replay_after_reconnect_overlapping_is_duplicate_only() {
        // A resumed stream that repeats the last event before going on.
        let mut t = SeqTracker::default();
        for seq in 1..=10 {
            t.record(seq);
        }
        for seq in 10..=20 {
            t.record(seq);
        }
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.lost(20), 0);
    }

    #[test]
    fn event_data_round_trips_with_and_without_padding() {
        let d = event_data(7, 3, 2, 1_700_000_000_123_456_789, 0);
        assert_eq!(d, "7_3_2_1700000000123456789");
        assert_eq!(
            parse_event_data(&d),
            Some((7, 3, 2, 1_700_000_000_123_456_789))
        );
        let padded = event_data(7, 3, 0, 12, 64);
        assert_eq!(padded.len(), 64);
        assert_eq!(parse_event_data(&padded), Some((7, 3, 0, 12)));
        assert_eq!(parse_event_data("hello"), None);
        assert_eq!(parse_event_data("1_x_0_3"), None);
    }

    #[test]
    fn latency_percentiles_and_merge_across_the_wire() {
        let mut a = Latency::new();
        for us in 1..=1000 {
            a.record(us);
        }
        let mut b = Latency::from_buckets(&a.buckets());
        assert_eq!(b.count(), 1000);
        b.merge(&a);
        let s = b.summary();
        assert_eq!(s.count, 2000);
        assert!((s.p50_ms - 0.5).abs() < 0.01, "{s:?}");
        assert!((s.p99_ms - 0.99).abs() < 0.01, "{s:?}");
        assert!((s.max_ms - 1.0).abs() < 0.01, "{s:?}");
        assert_eq!(Latency::new().summary(), LatencySummary::default());
    }

    #[test]
    fn phases_merge_by_name_in_first_seen_order() {
        let mut a = Phase::named("warm");
        a.deliveries = 10;
        a.seconds = 1.0;
        a.latency.record(100);
        let mut b = Phase::named("step");
        b.deliveries = 5;
        let mut c = Phase::named("warm");
        c.deliveries = 7;
        c.seconds = 1.5;
        c.latency.record(200);
        let merged = merge_phases([a, b, c]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].name, "warm");
        assert_eq!(merged[0].deliveries, 17);
        assert_eq!(merged[0].latency.count(), 2);
        assert!((merged[0].seconds - 1.5).abs() < f64::EPSILON);
        assert_eq!(merged[1].deliveries, 5);
    }

    #[test]
    fn a_newcomer_starts_at_its_first_event_and_then_counts_as_anyone() {
        let mut t = SeqTracker::default();
        assert_eq!(t.record_joining(41), Seen::New);
        assert_eq!((t.max_seen, t.gaps, t.received), (41, 0, 1));
        assert_eq!(t.record_joining(43), Seen::New);
        assert_eq!(t.record_joining(43), Seen::Duplicate);
        assert_eq!((t.gaps, t.duplicates, t.lost(45)), (1, 1, 3));
    }

    #[test]
    fn totals_add_every_field() {
        let one = Totals {
            connected: 1,
            connect_errors: 2,
            disconnects: 3,
            reconnects: 4,
            received: 5,
            lost: 6,
            duplicates: 7,
            malformed: 8,
            behind: 9,
            first_disconnect: Some("reset".into()),
            churned: 10,
            departed: 11,
            unchecked: 12,
        };
        let mut sum = one.clone();
        sum.add(&one);
        assert_eq!(sum.connected, 2);
        assert_eq!(sum.behind, 18);
        assert_eq!(sum.duplicates, 14);
        assert_eq!((sum.churned, sum.departed, sum.unchecked), (20, 22, 24));
    }
}
