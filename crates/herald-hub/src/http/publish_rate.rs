//! Publishes per token per second (`HubConfig::max_publish_rate`): a
//! token bucket per publisher token, so one publisher (a runaway job, a
//! leaked token) cannot take the hub's whole publish capacity from the
//! others.
//!
//! Each bucket holds at most one second's worth of publishes and refills
//! continuously; a publish takes one. Buckets are keyed by a hash of the
//! token (its compact form), so a token re-minted with the same claims is a
//! new publisher. Full buckets are forgotten when the map grows, which is
//! all the state a publisher that stopped keeps.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Buckets kept before full ones are swept out.
const SWEEP_AT: usize = 16_384;

/// The buckets of every publisher token seen lately.
#[derive(Debug)]
pub(crate) struct PublishRate {
    per_second: f64,
    hasher: RandomState,
    buckets: Mutex<HashMap<u64, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Publishes available, at `at`.
    available: f64,
    at: Instant,
}

impl PublishRate {
    /// At most `per_second` publishes per second per token, in bursts of
    /// up to `per_second`.
    pub(crate) fn new(per_second: u32) -> PublishRate {
        PublishRate {
            per_second: f64::from(per_second.max(1)),
            hasher: RandomState::new(),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Publishes per second each token may make.
    pub(crate) fn per_second(&self) -> f64 {
        self.per_second
    }

    /// Takes one publish from `token`'s bucket, or says how long until one
    /// is available.
    pub(crate) fn admit(&self, token: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let key = self.hasher.hash_one(token);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= SWEEP_AT && !buckets.contains_key(&key) {
            buckets.retain(|_, b| self.refilled(*b, now) < self.per_second);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            available: self.per_second,
            at: now,
        });
        let available = self.refilled(*bucket, now);
        // Within a rounding error of a whole publish is one: a client that
        // waited exactly the `Retry-After` it was given gets in.
        if available >= 1.0 - 1e-9 {
            *bucket = Bucket {
                available: (available - 1.0).max(0.0),
                at: now,
            };
            Ok(())
        } else {
            *bucket = Bucket { available, at: now };
            Err(Duration::from_secs_f64((1.0 - available) / self.per_second))
        }
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.available + elapsed * self.per_second).min(self.per_second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_one_second_then_the_rate_per_token() {
        let rate = PublishRate::new(3);
        for _ in 0..3 {
            assert_eq!(rate.admit("a"), Ok(()));
        }
        let wait = rate.admit("a").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(334),
            "{wait:?}"
        );
        // Another token has its own bucket.
        assert_eq!(rate.admit("b"), Ok(()));
        tokio::time::advance(wait).await;
        assert_eq!(rate.admit("a"), Ok(()));
        assert!(rate.admit("a").is_err());
        // A second refills the whole burst, no more.
        tokio::time::advance(Duration::from_secs(5)).await;
        for _ in 0..3 {
            assert_eq!(rate.admit("a"), Ok(()));
        }
        assert!(rate.admit("a").is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn idle_publishers_are_forgotten() {
        let rate = PublishRate::new(1);
        for i in 0..SWEEP_AT {
            assert_eq!(rate.admit(&i.to_string()), Ok(()));
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(rate.admit("new"), Ok(()));
        assert_eq!(rate.buckets.lock().unwrap().len(), 1);
    }
}
