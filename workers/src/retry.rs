//! Retries of transient failures, with exponential backoff and jitter. The
//! one place that knows the retry policy.

use std::{future::Future, time::Duration};

use backoff::ExponentialBackoff;

use crate::WorkError;

/// How long one delivery may be retried in-process before it is handed
/// back to the queue; long enough to ride out a broker restart or a store
/// hiccup, short enough that a worker being drained is not stuck.
pub const RETRY_FOR: Duration = Duration::from_secs(20);

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
    backoff::future::retry(policy(max_elapsed), || {
        let attempt = op();
        async move {
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

    #[tokio::test]
    async fn retrying_stops_after_the_time_allowed() {
        let result: Result<(), _> = retry_transient(Duration::from_millis(200), || async {
            Err(WorkError::Changing("down".into()))
        })
        .await;
        assert!(result.is_err_and(|e| e.is_transient()));
    }
}
