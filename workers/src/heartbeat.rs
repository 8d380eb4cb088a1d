//! Whether a worker's consumer is alive, for its liveness probe: the
//! consume loop beats whenever it turns (at least every few seconds when
//! idle), and deliveries in flight must keep being settled. A loop that
//! stops turning, or deliveries that all hang, show as a stall that grows
//! until the orchestrator restarts the process.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

#[derive(Clone)]
pub struct Heartbeat(Arc<Inner>);

struct Inner {
    since: Instant,
    /// Milliseconds after `since` of the loop's last turn.
    last_beat: AtomicU64,
    in_flight: AtomicUsize,
    /// Milliseconds after `since` of the last settled delivery, or of the
    /// first one taken after none were in flight.
    last_settled: AtomicU64,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self(Arc::new(Inner {
            since: Instant::now(),
            last_beat: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            last_settled: AtomicU64::new(0),
        }))
    }
}

impl Heartbeat {
    fn now(&self) -> u64 {
        u64::try_from(self.0.since.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The consume loop turned.
    pub fn beat(&self) {
        self.0.last_beat.store(self.now(), Ordering::Relaxed);
    }

    /// A delivery is being handled until the guard is dropped.
    pub fn handling(&self) -> Handling<'_> {
        if self.0.in_flight.fetch_add(1, Ordering::Relaxed) == 0 {
            self.0.last_settled.store(self.now(), Ordering::Relaxed);
        }
        Handling(self)
    }

    /// How long the consumer has shown no progress: since the loop last
    /// turned, or, while deliveries are in flight, since one was settled.
    pub fn stalled_for(&self) -> Duration {
        let now = self.now();
        let beat = now.saturating_sub(self.0.last_beat.load(Ordering::Relaxed));
        let settled = if self.0.in_flight.load(Ordering::Relaxed) > 0 {
            now.saturating_sub(self.0.last_settled.load(Ordering::Relaxed))
        } else {
            0
        };
        Duration::from_millis(beat.max(settled))
    }
}

pub struct Handling<'a>(&'a Heartbeat);

impl Drop for Handling<'_> {
    fn drop(&mut self) {
        let heartbeat = self.0;
        heartbeat
            .0
            .last_settled
            .store(heartbeat.now(), Ordering::Relaxed);
        heartbeat.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hung_delivery_stalls_the_consumer_and_settling_it_does_not() {
        let heartbeat = Heartbeat::default();
        heartbeat.beat();
        assert!(heartbeat.stalled_for() < Duration::from_millis(50));
        let hung = heartbeat.handling();
        std::thread::sleep(Duration::from_millis(120));
        heartbeat.beat();
        assert!(heartbeat.stalled_for() >= Duration::from_millis(100));
        drop(hung);
        assert!(heartbeat.stalled_for() < Duration::from_millis(50));
    }
}
