//! A subscriber thread's accounting: every subscriber's trackers, the
//! current phase's deliveries and latency, the totals, and the storm in
//! progress. Whatever the transport, each subscriber's stream feeds its
//! parser and the events it yields are accounted for here.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::sub::Sub;
use super::{Counters, PoolReport, StormReport};
use crate::bench::stats::{parse_event_data, unix_ns, Phase, Totals};

/// A storm in progress.
pub(super) struct Storm {
    pub(super) at: Instant,
    pub(super) gap: Duration,
    pub(super) targets: Arc<Vec<u64>>,
}

/// The state a thread's tasks share.
#[derive(Default)]
pub(super) struct State {
    pub(super) subs: Vec<Sub>,
    pub(super) phase: Phase,
    pub(super) phase_started: Option<Instant>,
    pub(super) done_phases: Vec<Phase>,
    pub(super) totals: Totals,
    pub(super) storm: Option<Storm>,
    pub(super) finishing: bool,
    pub(super) first_error: Option<String>,
    /// First connection attempts that ended.
    pub(super) attempted: usize,
    pub(super) connect_ended: Option<Instant>,
}

impl State {
    pub(super) fn close_phase(&mut self, next: &str) {
        let now = Instant::now();
        if let Some(started) = self.phase_started {
            self.phase.seconds = now.duration_since(started).as_secs_f64();
        }
        let done = std::mem::replace(&mut self.phase, Phase::named(next));
        if !done.name.is_empty() || done.deliveries > 0 {
            self.done_phases.push(done);
        }
        self.phase_started = Some(now);
    }

    /// Subscribers whose stream opened at least once.
    pub(super) fn opened(&self) -> u64 {
        self.subs.iter().filter(|s| s.opened).count() as u64
    }

    pub(super) fn storm_report(&self) -> Option<StormReport> {
        let storm = self.storm.as_ref()?;
        let mut report = StormReport::default();
        for sub in self.subs.iter().filter(|s| s.opened) {
            report.dropped += 1;
            if let Some(at) = sub.reconnected_at {
                report.reconnected += 1;
                report.reconnect_seconds = report
                    .reconnect_seconds
                    .max(at.duration_since(storm.at).as_secs_f64());
            }
            if let Some(at) = sub.caught_up_at {
                report.caught_up += 1;
                report.caught_up_seconds = report
                    .caught_up_seconds
                    .max(at.duration_since(storm.at).as_secs_f64());
            }
        }
        Some(report)
    }

    pub(super) fn all_caught_up(&self, published: &[u64]) -> bool {
        self.subs
            .iter()
            .filter(|s| s.opened)
            .all(|s| s.has_all(published))
    }

    /// Subscriber `local`'s first attempt to subscribe ended with `result`.
    pub(super) fn first_attempt(
        &mut self,
        local: usize,
        result: anyhow::Result<()>,
        counters: &Counters,
    ) {
        self.attempted += 1;
        match result {
            Ok(()) => {
                self.subs[local].opened = true;
                counters.connected.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.totals.connect_errors += 1;
                counters.errors.fetch_add(1, Ordering::Relaxed);
                if self.first_error.is_none() {
                    self.first_error = Some(format!("{e:#}"));
                }
            }
        }
        if self.attempted >= self.subs.len() {
            self.connect_ended = Some(Instant::now());
        }
    }

    /// Subscriber `local`'s stream reopened after the first time.
    pub(super) fn reopened(&mut self, local: usize) {
        self.totals.reconnects += 1;
        if self.storm.is_some() {
            self.subs[local].reconnected_at = Some(Instant::now());
        }
        // After a storm reconnect: a subscriber that had everything
        // already is caught up as soon as its stream reopens.
        let Some(storm) = &self.storm else {
            return;
        };
        let sub = &mut self.subs[local];
        if sub.caught_up_at.is_none() && sub.has_all(&storm.targets) {
            sub.caught_up_at = sub.reconnected_at;
        }
    }

    /// Subscriber `local`'s stream ended (or failed) on its own, `why`.
    pub(super) fn disconnected(&mut self, why: &anyhow::Error) {
        self.totals.disconnects += 1;
        if self.totals.first_disconnect.is_none() {
            self.totals.first_disconnect = Some(format!("{why:#}"));
        }
    }

    /// Accounts for every event `parser` holds, received by subscriber
    /// `local`.
    pub(super) fn record_events(
        &mut self,
        local: usize,
        parser: &mut herald_sse::Parser,
        counters: &Counters,
    ) {
        let now = unix_ns();
        let mut delivered = 0u64;
        while let Some(event) = parser.next_event() {
            let Ok(event) = event else {
                self.totals.malformed += 1;
                continue;
            };
            let Some((seq, topic, conn, sent)) = parse_event_data(event.data()) else {
                self.totals.malformed += 1;
                continue;
            };
            let sub = &mut self.subs[local];
            let joining = sub.joined_late;
            let Some(tracker) = sub.tracker_mut(topic, conn) else {
                self.totals.malformed += 1;
                continue;
            };
            if joining {
                tracker.record_joining(seq);
            } else {
                tracker.record(seq);
            }

            if !event.last_event_id().is_empty()
                && sub.last_id.as_deref() != Some(event.last_event_id())
            {
                sub.last_id = Some(Rc::from(event.last_event_id()));
            }
            delivered += 1;
            self.phase.deliveries += 1;
            let latency_us = (now.saturating_sub(sent) / 1000) as u64;
            self.phase.latency.record(latency_us);
            if let Some(storm) = &self.storm {
                let sub = &mut self.subs[local];
                if sub.caught_up_at.is_none()
                    && sub.reconnected_at.is_some()
                    && sub.has_all(&storm.targets)
                {
                    sub.caught_up_at = Some(Instant::now());
                }
            }
        }
        if delivered > 0 {
            counters.deliveries.fetch_add(delivered, Ordering::Relaxed);
        }
    }

    /// Closes the last phase and sums up what every subscriber received
    /// against what was `published`.
    pub(super) fn report(&mut self, published: &[u64]) -> PoolReport {
        self.close_phase("");
        let mut totals = self.totals.clone();
        for sub in self.subs.iter().filter(|x| x.opened) {
            for (k, tracker) in sub.trackers.iter().enumerate() {
                totals.duplicates += tracker.duplicates;
                totals.received += tracker.received;
                if sub.checked(k) {
                    totals.lost += tracker.lost(sub.expected(published, k));
                } else if sub.expected(published, k) > 0 {
                    totals.unchecked += 1;
                }
            }
            if !sub.has_all(published) {
                totals.behind += 1;
            }
        }
        totals.connected = self.opened();
        let phases = self.done_phases.iter().map(Phase::to_wire).collect();
        PoolReport { totals, phases }
    }
}
