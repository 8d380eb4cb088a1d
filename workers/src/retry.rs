//! Retries of transient failures, with exponential backoff and jitter,
//! paid for from a budget shared by the whole process. The one place that
//! knows the retry policy.
//!
//! The budget is what keeps a slow store from being buried in retries:
//! every first attempt earns [`RETRIES_PER_ATTEMPT`] of a retry, and
//! [`RETRIES_PER_SECOND`] more come in each second whatever happens. A
//! retry the budget cannot pay for is not sent: the backoff waits on, and
//! the delivery is handed back once its time is up.

use std::{
    future::Future,
    sync::Mutex,
    time::{Duration, Instant},
};

use backoff::ExponentialBackoff;

use crate::WorkError;

/// How long one delivery may be retried in-process before it is handed
/// back to the queue; long enough to ride out a broker restart or a store
/// hiccup, short enough that a worker being drained is not stuck.
pub const RETRY_FOR: Duration = Duration::from_secs(20);

/// Retries earned by each first attempt.
pub const RETRIES_PER_ATTEMPT: f64 = 0.2;
/// Retries the process may spend each second even when nothing succeeds.
pub const RETRIES_PER_SECOND: f64 = 10.0;
/// The most retries saved up.
const MOST_SAVED: f64 = 100.0;

/// Retries this process may still spend.
pub struct RetryBudget {
    state: Mutex<(f64, Instant)>,
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self {
            state: Mutex::new((MOST_SAVED, Instant::now())),
        }
    }
}

impl RetryBudget {
    fn change(&self, by: f64) -> bool {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (saved, since) = &mut *state;
        let now = Instant::now();
        *saved = (*saved + now.duration_since(*since).as_secs_f64() * RETRIES_PER_SECOND)
            .min(MOST_SAVED);
        *since = now;
        if *saved + by < 0.0 {
            return false;
        }
        *saved = (*saved + by).min(MOST_SAVED);
        true
    }

    fn earn(&self) {
        self.change(RETRIES_PER_ATTEMPT);
    }

    /// Takes one retry from the budget, if there is one.
    fn spend(&self) -> bool {
        self.change(-1.0)
    }
}

/// The budget every retry in this process draws on.
static BUDGET: std::sync::LazyLock<RetryBudget> = std::sync::LazyLock::new(RetryBudget::default);

fn policy(max_elapsed: Duration) -> ExponentialBackoff {
    ExponentialBackoff {
        initial_interval: Duration::from_millis(50),
        randomization_factor: 0.5,
        multiplier: 2.0,
        max_interval: Duration::from_secs(2),
        max_elapsed_time: Some(max_elapsed),
        ..ExponentialBackoff::default()
    }
}

/// Runs `op` until it succeeds, fails for good, or `max_elapsed` has passed
/// retrying transient failures.
pub async fn retry_transient<T, F, Fut>(max_elapsed: Duration, mut op: F) -> Result<T, WorkError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, WorkError>>,
{
    let mut first = true;
    backoff::future::retry(policy(max_elapsed), || {
        let paid = if std::mem::take(&mut first) {
            BUDGET.earn();
            true
        } else {
            BUDGET.spend()
        };
        let attempt = paid.then(&mut op);
        async move {
            let Some(attempt) = attempt else {
                tracing::debug!("retry budget spent; waiting longer");
                return Err(backoff::Error::transient(WorkError::Changing(
                    "the process's retry budget is spent".into(),
                )));
            };
            attempt.await.map_err(|err| {
                if err.is_transient() {
                    tracing::debug!(error = %err, "retrying");
                    backoff::Error::transient(err)
                } else {
                    backoff::Error::permanent(err)
                }
            })
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn transient_failures_are_retried_and_permanent_ones_are_not() {
        let calls = AtomicU32::new(0);
        let result = retry_transient(Duration::from_secs(5), || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(WorkError::Changing("not yet".into())),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(result.ok(), Some(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retry_transient(Duration::from_secs(5), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(WorkError::Poison("never".into()))
        })
        .await;
        assert!(matches!(result, Err(WorkError::Poison(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_budget_pays_for_a_fifth_of_the_attempts_plus_a_trickle() {
        let budget = RetryBudget::default();
        let mut spent = 0;
        while budget.spend() {
            spent += 1;
            assert!(spent <= 101, "the budget never runs dry");
        }
        assert!((100..=101).contains(&spent), "{spent}");
        for _ in 0..10 {
            budget.earn();
        }
        assert!(budget.spend(), "ten first attempts earn two retries");
        assert!(budget.spend());
        std::thread::sleep(Duration::from_millis(150));
        assert!(budget.spend(), "a second's trickle pays for ten");
    }

    #[tokio::test]
    async fn retrying_stops_after_the_time_allowed() {
        let result: Result<(), _> = retry_transient(Duration::from_millis(200), || async {
            Err(WorkError::Changing("down".into()))
        })
        .await;
        assert!(result.is_err_and(|e| e.is_transient()));
    }
}
