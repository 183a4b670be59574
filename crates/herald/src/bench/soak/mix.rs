//! The soak's population: what each subscriber follows, and how its
//! connections come and go.
//!
//! Subscriber `i` is one of four kinds, by `i mod 20`, so that every path
//! from subscribe to fan-out runs all the time: idle (30%: a topic nothing
//! is published to, so the hub holds the connection and its heartbeats
//! only), one busy topic (40%: exact-topic fan-out), three topics (20%:
//! one subscription, several selectors) and a URI template (10%: the
//! draft-07 template index; `{prefix}{n}` selects every topic of the run).
//! Each connection lives a random time around the mean lifetime; then it
//! either resumes after a short gap with `Last-Event-ID` (replay from
//! history), or the subscriber leaves and a new one takes its place with no
//! id (a fresh subscription). The choice and the times come from a random
//! generator seeded with the subscriber's index, so a run is the same
//! shape in any process.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// How subscribers of a soak churn; carried to worker processes in the
/// pool's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Churn {
    /// Mean lifetime of a connection, ms; each lives a uniform random time
    /// between half and one and a half of it.
    pub(crate) lifetime_ms: u64,
    /// Of the connections that end, the share (in %) whose subscriber
    /// leaves for good (a new one arrives in its place); the rest resume.
    pub(crate) leave_percent: u32,
    /// Longest time a subscriber stays away before it resumes or a new one
    /// arrives, ms (uniform from zero): events published meanwhile are
    /// replayed.
    pub(crate) gap_ms: u64,
}

/// What one subscriber follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Follows {
    /// The selectors of its subscription (one `topic` parameter each).
    pub(crate) selectors: Vec<String>,
    /// The indices of the run's topics those selectors select: the events
    /// it must receive.
    pub(crate) topics: Vec<usize>,
}

/// The selectors and topics of subscriber `index` of a soak with `topics`
/// published topics named `{prefix}{n}`.
pub(crate) fn follows(index: usize, topics: usize, prefix: &str) -> Follows {
    let topics = topics.max(1);
    let t = index % topics;
    let name = |t: usize| format!("{prefix}{t}");
    match index % 20 {
        0..=5 => Follows {
            // Never published: the run's topics are `{prefix}{n}` with a
            // number, this one has a word before it.
            selectors: vec![format!("{prefix}idle-{index}")],
            topics: Vec::new(),
        },
        6..=13 => Follows {
            selectors: vec![name(t)],
            topics: vec![t],
        },
        14..=17 => {
            let mut chosen: Vec<usize> = (0..3).map(|k| (t + k) % topics).collect();
            chosen.dedup();
            chosen.sort_unstable();
            chosen.dedup();
            Follows {
                selectors: chosen.iter().map(|&t| name(t)).collect(),
                topics: chosen,
            }
        }
        _ => Follows {
            // A simple expansion matches any run of unreserved characters:
            // every `{prefix}{n}` (and the idle topics' names, where
            // nothing is published).
            selectors: vec![format!("{prefix}{{n}}")],
            topics: (0..topics).collect(),
        },
    }
}

/// The random choices of one subscriber's connections.
pub(crate) struct Schedule {
    churn: Churn,
    rng: StdRng,
}

/// What a subscriber does when its connection's lifetime ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Resume with `Last-Event-ID` after this gap.
    Resume(Duration),
    /// Leave; a new subscriber takes the place after this gap.
    Replace(Duration),
}

impl Schedule {
    /// The schedule of subscriber `index`.
    pub(crate) fn new(churn: Churn, index: usize) -> Schedule {
        Schedule {
            churn,
            rng: StdRng::seed_from_u64(0x50a6 ^ index as u64),
        }
    }

    /// How long the next connection lives.
    pub(crate) fn lifetime(&mut self) -> Duration {
        let mean = self.churn.lifetime_ms.max(1);
        Duration::from_millis(self.rng.random_range(mean / 2..=mean + mean / 2))
    }

    /// What happens when a connection's lifetime ends.
    pub(crate) fn next(&mut self) -> Next {
        let gap = Duration::from_millis(self.rng.random_range(0..=self.churn.gap_ms));
        if self.rng.random_range(0..100) < self.churn.leave_percent {
            Next::Replace(gap)
        } else {
            Next::Resume(gap)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_population_mixes_idle_single_several_and_template_subscribers() {
        let all: Vec<Follows> = (0..20).map(|i| follows(i, 10, "b-")).collect();
        let idle = all.iter().filter(|f| f.topics.is_empty()).count();
        let single = all.iter().filter(|f| f.topics.len() == 1).count();
        let several = all.iter().filter(|f| f.topics.len() == 3).count();
        let template = all.iter().filter(|f| f.topics.len() == 10).count();
        assert_eq!((idle, single, several, template), (6, 8, 4, 2));
        assert_eq!(all[0].selectors, ["b-idle-0"]);
        assert_eq!(all[7].selectors, ["b-7"]);
        assert_eq!(all[15].selectors, ["b-5", "b-6", "b-7"]);
        assert_eq!(all[15].topics, [5, 6, 7]);
        assert_eq!(all[19].selectors, ["b-{n}"]);
        // Several topics wrap around and never repeat one.
        assert_eq!(follows(17, 2, "b-").topics, [0, 1]);
        assert_eq!(follows(14, 1, "b-").topics, [0]);
    }

    #[test]
    fn lifetimes_and_choices_stay_within_the_churn_and_repeat_per_index() {
        let churn = Churn {
            lifetime_ms: 1000,
            leave_percent: 25,
            gap_ms: 200,
        };
        let mut s = Schedule::new(churn, 3);
        let mut leaves = 0;
        for _ in 0..400 {
            let life = s.lifetime();
            assert!(life >= Duration::from_millis(500) && life <= Duration::from_millis(1500));
            match s.next() {
                Next::Replace(gap) => {
                    leaves += 1;
                    assert!(gap <= Duration::from_millis(200));
                }
                Next::Resume(gap) => assert!(gap <= Duration::from_millis(200)),
            }
        }
        assert!((50..150).contains(&leaves), "{leaves} of 400 left");
        let (mut a, mut b) = (Schedule::new(churn, 9), Schedule::new(churn, 9));
        assert_eq!(a.lifetime(), b.lifetime());
    }
}
