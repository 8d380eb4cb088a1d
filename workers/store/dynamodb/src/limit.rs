//! An adaptive limit on the requests one process has in flight to
//! DynamoDB: a store that answers slowly gets fewer concurrent calls, not
//! more, so that an overloaded store is not pushed further behind by the
//! very callers waiting on it.
//!
//! Additive increase, multiplicative decrease, on latency: a call that
//! takes longer than [`SLOW_FACTOR`] times the fastest recent call (plus
//! [`SLOW_MARGIN`]) cuts the limit by a tenth, at most once per
//! [`CUT_EVERY`]; every other call adds `1 / limit`, so a limit that is
//! used in full grows by one per round of calls. A store that serves
//! requests in parallel keeps its latency as concurrency rises and the
//! limit climbs to [`MAX_LIMIT`]; one that serves them one at a time
//! (the test server) queues them, and the limit falls to what it can
//! take.

use std::{
    future::Future,
    sync::Mutex,
    time::{Duration, Instant},
};

use eventsys_telemetry::metrics;
use tokio::sync::Semaphore;

pub const MIN_LIMIT: usize = 2;
pub const MAX_LIMIT: usize = 256;
const INITIAL_LIMIT: usize = 32;
const SLOW_FACTOR: u32 = 4;
const SLOW_MARGIN: Duration = Duration::from_millis(200);
const CUT_EVERY: Duration = Duration::from_millis(100);

/// `.limited(&limit)` on a request's future: it waits for a permit.
pub trait Limited: Future + Sized {
    fn limited(self, limit: &AdaptiveLimit) -> impl Future<Output = Self::Output> {
        limit.run(self)
    }
}

impl<F: Future> Limited for F {}

pub struct AdaptiveLimit {
    permits: Semaphore,
    state: Mutex<State>,
}

struct State {
    limit: f64,
    /// Permits that exist: the semaphore's, plus those held.
    issued: usize,
    /// Permits to retire as they come back, after a cut.
    owed: usize,
    /// The fastest recent call; drifts up slowly so that it follows the
    /// store as tables grow.
    fastest: Duration,
    last_cut: Instant,
}

impl Default for AdaptiveLimit {
    fn default() -> Self {
        Self {
            permits: Semaphore::new(INITIAL_LIMIT),
            state: Mutex::new(State {
                limit: INITIAL_LIMIT as f64,
                issued: INITIAL_LIMIT,
                owed: 0,
                fastest: Duration::MAX,
                last_cut: Instant::now(),
            }),
        }
    }
}

impl AdaptiveLimit {
    /// Runs `call` once a permit is free, and learns from how long it took.
    pub async fn run<F: Future>(&self, call: F) -> F::Output {
        // The semaphore is never closed, so acquiring cannot fail; if it
        // somehow did, the call goes ahead unlimited rather than not at all.
        let permit = self.permits.acquire().await.ok();
        let started = Instant::now();
        let output = call.await;
        let took = started.elapsed();
        metrics::store_call(took);
        let retire = self.learn(took);
        if let Some(permit) = permit
            && retire
        {
            permit.forget();
        }
        output
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adjusts the limit after a call of `latency`; returns whether the
    /// permit that call held is to be retired.
    fn learn(&self, latency: Duration) -> bool {
        let mut state = self.state();
        let now = Instant::now();
        state.fastest = if latency < state.fastest {
            latency
        } else {
            state.fastest + state.fastest / 1000
        };
        let slow = latency > state.fastest * SLOW_FACTOR + SLOW_MARGIN;
        if slow {
            if now.duration_since(state.last_cut) >= CUT_EVERY {
                state.limit = (state.limit * 0.9).max(MIN_LIMIT as f64);
                state.last_cut = now;
            }
        } else {
            state.limit = (state.limit + 1.0 / state.limit).min(MAX_LIMIT as f64);
        }
        let wanted = state.limit as usize;
        metrics::store_concurrency(wanted);
        let standing = state.issued - state.owed;
        if wanted > standing {
            let back = (wanted - standing).min(state.owed);
            state.owed -= back;
            let fresh = wanted - standing - back;
            state.issued += fresh;
            self.permits.add_permits(fresh);
        } else {
            state.owed += standing - wanted;
        }
        if state.owed > 0 {
            state.owed -= 1;
            state.issued -= 1;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    };

    use super::*;

    fn limit_of(limit: &AdaptiveLimit) -> usize {
        limit.state().limit as usize
    }

    #[tokio::test]
    async fn slow_answers_cut_the_limit_and_fast_ones_raise_it() {
        let limit = AdaptiveLimit::default();
        limit.learn(Duration::from_millis(2));
        for _ in 0..30 {
            limit.state().last_cut = Instant::now() - CUT_EVERY;
            limit.learn(Duration::from_millis(500));
        }
        assert_eq!(limit_of(&limit), MIN_LIMIT);
        let before = limit_of(&limit);
        for _ in 0..100 {
            limit.learn(Duration::from_millis(2));
        }
        assert!(limit_of(&limit) > before + 5, "{}", limit_of(&limit));
        let state = limit.state();
        assert_eq!(state.issued - state.owed, state.limit as usize);
    }

    #[tokio::test]
    async fn no_more_calls_run_at_once_than_the_limit() {
        let limit = Arc::new(AdaptiveLimit::default());
        let running = Arc::new(AtomicU64::new(0));
        let most = Arc::new(AtomicU64::new(0));
        let mut calls = Vec::new();
        for _ in 0..100 {
            let (limit, running, most) = (limit.clone(), running.clone(), most.clone());
            calls.push(tokio::spawn(async move {
                limit
                    .run(async {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
            }));
        }
        let mut ran = 0;
        for call in calls {
            call.await.unwrap();
            ran += 1;
        }
        assert!(most.load(Ordering::SeqCst) <= INITIAL_LIMIT as u64 + 4);
        assert_eq!(ran, 100);
    }
}
