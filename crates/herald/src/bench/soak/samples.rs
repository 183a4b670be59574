//! The soak's measurements: the hub's RSS and open files read every few
//! seconds, and what they say once the warm-up is left out (the level at
//! the start of steady state, its median, its end, and its drift).
//!
//! Drift is the median of the last quarter of the steady samples against
//! the median of the first quarter, in %: medians, so that one sample
//! taken during a burst of reconnections does not decide the verdict, and
//! quarters, so that a slow leak shows as the difference between two
//! stretches of the run rather than between two instants.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::bench::readings::rss_kib;
use crate::bench::stats::Totals;

/// One reading of the hub (with several `--hub-pid`, all of them
/// together; `None` when any could not be read).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct Sample {
    /// Seconds since publishing began.
    pub(crate) t_s: f64,
    pub(crate) rss_kib: Option<u64>,
    /// Open file descriptors (`/proc/PID/fd`).
    pub(crate) fds: Option<u64>,
}

impl Sample {
    /// Reads the processes `pids` at `t_s`.
    pub(crate) fn read(pids: &[u32], t_s: f64) -> Sample {
        Sample {
            t_s,
            rss_kib: pids.iter().map(|&pid| rss_kib(pid)).sum(),
            fds: pids.iter().map(|&pid| open_fds(pid)).sum(),
        }
    }
}

/// The open file descriptors of process `pid`.
pub(crate) fn open_fds(pid: u32) -> Option<u64> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(dir.filter(Result::is_ok).count() as u64)
}

/// One quantity over the steady samples.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct Level {
    /// The first steady sample.
    pub(crate) start: u64,
    pub(crate) min: u64,
    pub(crate) median: u64,
    pub(crate) max: u64,
    /// The last sample.
    pub(crate) end: u64,
    /// Median of the last quarter against the first quarter's, in %.
    pub(crate) drift_percent: f64,
}

impl Level {
    /// The level of `values` (in time order); `None` without any.
    pub(crate) fn of(values: &[u64]) -> Option<Level> {
        let (&start, &end) = (values.first()?, values.last()?);
        let quarter = (values.len() / 4).max(1);
        let first = median(&values[..quarter])? as f64;
        let last = median(&values[values.len() - quarter..])? as f64;
        Some(Level {
            start,
            min: values.iter().copied().min()?,
            median: median(values)?,
            max: values.iter().copied().max()?,
            end,
            drift_percent: if first > 0.0 {
                (last - first) * 100.0 / first
            } else {
                0.0
            },
        })
    }
}

/// The middle value (the lower of the two middle ones for an even count).
fn median(values: &[u64]) -> Option<u64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len().checked_sub(1)? / 2).copied()
}

/// What a soak measured beyond the other scenarios' figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct SoakReport {
    pub(crate) sample_every_s: f64,
    /// Samples before this many seconds are left out of the levels.
    pub(crate) warm_up_s: f64,
    /// The drift still called flat, in %.
    pub(crate) tolerance_percent: f64,
    /// Mean connection lifetime, s.
    pub(crate) lifetime_s: f64,
    /// Of the connections that end, % whose subscriber is replaced.
    pub(crate) leave_percent: u32,
    /// Every sample, warm-up included.
    pub(crate) samples: Vec<Sample>,
    /// RSS after warm-up, KiB.
    pub(crate) rss_kib: Option<Level>,
    /// Open files after warm-up.
    pub(crate) fds: Option<Level>,
    /// Both drifts within the tolerance (`None`: not measured).
    pub(crate) flat: Option<bool>,
}

impl SoakReport {
    /// Computes the levels and the verdict from the samples.
    pub(crate) fn conclude(&mut self) {
        let steady: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.t_s >= self.warm_up_s)
            .collect();
        let series = |f: fn(&Sample) -> Option<u64>| -> Option<Vec<u64>> {
            steady.iter().map(|s| f(s)).collect()
        };
        self.rss_kib = series(|s| s.rss_kib).and_then(|v| Level::of(&v));
        self.fds = series(|s| s.fds).and_then(|v| Level::of(&v));
        let within = |l: &Level| l.drift_percent.abs() <= self.tolerance_percent;
        self.flat = match (&self.rss_kib, &self.fds) {
            (Some(r), Some(f)) => Some(within(r) && within(f)),
            _ => None,
        };
    }

    /// The soak's lines of the printed report.
    pub(crate) fn table(&self, totals: &Totals) -> String {
        let mut out = String::new();
        let steady = self
            .samples
            .iter()
            .filter(|s| s.t_s >= self.warm_up_s)
            .count();
        let _ = writeln!(
            out,
            "soak: {} samples every {:.0} s, {} after a warm-up of {:.0} s; churn: {} connections ended on schedule (mean lifetime {:.0} s), {} subscribers replaced by new ones, {} newcomer streams without an event to check",
            self.samples.len(),
            self.sample_every_s,
            steady,
            self.warm_up_s,
            totals.churned,
            self.lifetime_s,
            totals.departed,
            totals.unchecked,
        );
        let line = |name: &str, unit: &str, level: &Option<Level>| {
            match level {
            Some(l) => format!(
                "{name:<10} start {}{unit}, min {}{unit}, median {}{unit}, max {}{unit}, end {}{unit}; drift {:+.2}% (last quarter's median against the first's)\n",
                l.start, l.min, l.median, l.max, l.end, l.drift_percent
            ),
            None => format!("{name:<10} not read (give --hub-pid)\n"),
        }
        };
        out.push_str(&line("hub RSS", " KiB", &self.rss_kib));
        out.push_str(&line("open files", "", &self.fds));
        let _ = writeln!(
            out,
            "verdict: {} (tolerance ±{}%)",
            match self.flat {
                Some(true) => "flat",
                Some(false) => "NOT flat",
                None => "unknown",
            },
            self.tolerance_percent
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(rss: &[u64]) -> Vec<Sample> {
        rss.iter()
            .enumerate()
            .map(|(i, &r)| Sample {
                t_s: i as f64 * 10.0,
                rss_kib: Some(r),
                fds: Some(100),
            })
            .collect()
    }

    #[test]
    fn levels_leave_out_the_warm_up_and_compare_quarter_medians() {
        // Warm-up (t < 20 s) climbs; then 8 steady samples whose last
        // quarter sits 10% above the first.
        let mut soak = SoakReport {
            warm_up_s: 20.0,
            tolerance_percent: 5.0,
            samples: samples(&[10, 500, 1000, 1000, 1020, 990, 1000, 1050, 1100, 1100]),
            ..SoakReport::default()
        };
        soak.conclude();
        let rss = soak.rss_kib.clone().unwrap();
        assert_eq!(
            (rss.start, rss.min, rss.max, rss.end),
            (1000, 990, 1100, 1100)
        );
        assert_eq!(rss.median, 1000);
        assert!((rss.drift_percent - 10.0).abs() < 1e-9, "{rss:?}");
        assert_eq!(soak.fds.clone().unwrap().drift_percent, 0.0);
        assert_eq!(soak.flat, Some(false));
        let table = soak.table(&Totals::default());
        assert!(table.contains("drift +10.00%"), "{table}");
        assert!(
            table.contains("verdict: NOT flat (tolerance ±5%)"),
            "{table}"
        );

        soak.tolerance_percent = 10.0;
        soak.conclude();
        assert_eq!(soak.flat, Some(true));
        assert!(soak.table(&Totals::default()).contains("verdict: flat"));
    }

    #[test]
    fn an_unreadable_sample_leaves_the_verdict_unknown() {
        let mut soak = SoakReport {
            samples: samples(&[1, 2, 3]),
            ..SoakReport::default()
        };
        soak.samples[1].fds = None;
        soak.conclude();
        assert!(soak.rss_kib.is_some());
        assert_eq!((soak.fds.clone(), soak.flat), (None, None));
        assert!(soak.table(&Totals::default()).contains("verdict: unknown"));
        assert_eq!(Level::of(&[]), None);
        assert_eq!(Level::of(&[7]).unwrap().drift_percent, 0.0);
    }

    #[test]
    fn own_open_files_are_counted() {
        let fds = open_fds(std::process::id()).unwrap();
        assert!(fds >= 3, "{fds}");
        assert_eq!(open_fds(u32::MAX), None);
        let sample = Sample::read(&[std::process::id()], 1.0);
        assert!(sample.rss_kib.is_some() && sample.fds.is_some());
        assert_eq!(Sample::read(&[u32::MAX], 1.0).fds, None);
    }
}
