//! How long to wait before reconnecting, and when to give up.
//!
//! The base delay is the server's `retry` when it sent one, otherwise the
//! policy's initial delay. The first reconnection after a healthy connection
//! waits exactly the base delay, as a browser does; each further failure in a
//! row multiplies it by the backoff factor, up to the cap, minus a random
//! jitter (never below the base), so that many clients dropped at once do not
//! come back in lockstep.

use std::time::Duration;

/// The reconnection policy of an [`EventSource`](crate::EventSource).
///
/// ```
/// use std::time::Duration;
/// use herald_client::ReconnectPolicy;
///
/// let policy = ReconnectPolicy::default()
///     .initial_delay(Duration::from_secs(1))
///     .backoff_factor(2.0)
///     .jitter(0.3)
///     .max_delay(Duration::from_secs(60))
///     .max_attempts(Some(10));
/// assert_eq!(policy.delay(Duration::from_secs(1), 0, 0.5), Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReconnectPolicy {
    initial_delay: Duration,
    factor: f64,
    jitter: f64,
    max_delay: Duration,
    max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    /// 3 s initial delay, factor 2, jitter 0.5, capped at 60 s, no limit on
    /// attempts.
    fn default() -> Self {
        ReconnectPolicy {
            initial_delay: Duration::from_secs(3),
            factor: 2.0,
            jitter: 0.5,
            max_delay: Duration::from_secs(60),
            max_attempts: None,
        }
    }
}

impl ReconnectPolicy {
    /// The delay used when the server sent no valid `retry` field
    /// (default 3 s).
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// How much the delay grows with each failure in a row (default 2;
    /// 1 means no backoff; values below 1 are treated as 1).
    pub fn backoff_factor(mut self, factor: f64) -> Self {
        self.factor = if factor.is_finite() {
            factor.max(1.0)
        } else {
            1.0
        };
        self
    }

    /// The share of a backed-off delay that is randomised away, from 0 (none)
    /// to 1 (default 0.5). The first reconnection after a healthy connection
    /// is never jittered, and no delay goes below the base delay.
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// The cap on backed-off delays (default 60 s). A server `retry` larger
    /// than the cap is still honoured.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Gives up after this many reconnection attempts in a row that did not
    /// lead to a healthy connection (`None`, the default: never). The first
    /// connection is not counted; `Some(0)` never reconnects.
    pub fn max_attempts(mut self, attempts: Option<u32>) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The configured initial delay.
    pub fn get_initial_delay(&self) -> Duration {
        self.initial_delay
    }

    /// The configured maximum number of attempts.
    pub fn get_max_attempts(&self) -> Option<u32> {
        self.max_attempts
    }

    /// The delay before the next attempt, given the base delay (server
    /// `retry` or initial delay), the number of failures in a row before
    /// this one (`0` right after a healthy connection) and a random number
    /// in `[0, 1)`.
    pub fn delay(&self, base: Duration, failures: u32, random: f64) -> Duration {
        if failures == 0 {
            return base;
        }
        let exp = i32::try_from(failures).unwrap_or(i32::MAX);
        let grown = base.as_secs_f64() * self.factor.powi(exp);
        let capped = grown.min(self.max_delay.as_secs_f64());
        let jittered = capped * (1.0 - self.jitter * random.clamp(0.0, 1.0));
        let secs = jittered.max(base.as_secs_f64());
        Duration::try_from_secs_f64(secs).unwrap_or(self.max_delay.max(base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn first_reconnect_waits_exactly_the_base() {
        let p = ReconnectPolicy::default();
        assert_eq!(p.delay(ms(1234), 0, 0.99), ms(1234));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = ReconnectPolicy::default().jitter(0.0).max_delay(ms(500));
        let got: Vec<_> = (0..5).map(|n| p.delay(ms(100), n, 0.7)).collect();
        assert_eq!(got, vec![ms(100), ms(200), ms(400), ms(500), ms(500)]);
    }

    #[test]
    fn jitter_stays_between_base_and_backed_off_delay() {
        let p = ReconnectPolicy::default().jitter(0.5);
        for r in [0.0, 0.3, 0.999] {
            let d = p.delay(ms(100), 3, r);
            assert!(d >= ms(400) && d <= ms(800), "{d:?}");
        }
        assert_eq!(
            ReconnectPolicy::default()
                .jitter(1.0)
                .delay(ms(100), 1, 0.999),
            ms(100)
        );
    }

    #[test]
    fn server_retry_above_the_cap_is_honoured() {
        let p = ReconnectPolicy::default().max_delay(ms(100));
        assert_eq!(p.delay(ms(5000), 4, 0.5), ms(5000));
    }
}
