//! When a delivery that failed is tried again: exponential backoff with
//! jitter, so that receivers coming back are not hit by every sender at
//! once, and a last attempt when the retry window closes (a day by
//! default), after which the delivery is given up on until replayed.

use std::time::Duration;

use eventsys_messages::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failed attempt; each next one doubles it.
    pub first_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
    /// How long after a delivery is owed its last attempt is made.
    pub retry_for: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(2 * 60 * 60),
            retry_for: Duration::from_secs(24 * 60 * 60),
        }
    }
}

impl RetryPolicy {
    /// When to try again after `attempts` failed attempts, at `now`, of a
    /// delivery owed since `owed_since`; `None`: give up.
    pub fn next_attempt(
        &self,
        attempts: u32,
        owed_since: Timestamp,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let deadline = owed_since.checked_add(signed(self.retry_for)).ok()?;
        if now >= deadline {
            return None;
        }
        let doubled = self
            .first_delay
            .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1)))
            .min(self.max_delay);
        // Between 80 % and 120 % of the wait.
        let jittered = doubled.mul_f64(0.8 + 0.4 * fastrand::f64());
        let at = now.checked_add(signed(jittered)).ok()?;
        Some(at.min(deadline))
    }
}

fn signed(duration: Duration) -> jiff::SignedDuration {
    jiff::SignedDuration::try_from(duration).unwrap_or(jiff::SignedDuration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(from: Timestamp, to: Timestamp) -> f64 {
        to.duration_since(from).as_secs_f64()
    }

    #[test]
    fn waits_double_within_the_jitter_and_stop_at_the_longest() {
        let policy = RetryPolicy::default();
        let now = Timestamp::now();
        for (attempts, wait) in [(1, 5.0), (2, 10.0), (3, 20.0), (12, 7_200.0), (40, 7_200.0)] {
            let at = policy.next_attempt(attempts, now, now).expect("retried");
            let waited = seconds(now, at);
            assert!(
                (wait * 0.8..=wait * 1.2).contains(&waited),
                "attempt {attempts}: {waited} s"
            );
        }
    }

    #[test]
    fn the_last_attempt_is_when_the_window_closes_then_none() {
        let policy = RetryPolicy::default();
        let owed = Timestamp::now();
        let nearly = owed + jiff::SignedDuration::from_secs(24 * 60 * 60 - 60);
        let last = policy.next_attempt(20, owed, nearly).expect("one more");
        assert_eq!(last, owed + jiff::SignedDuration::from_secs(24 * 60 * 60));
        assert_eq!(policy.next_attempt(21, owed, last), None);
    }
}
