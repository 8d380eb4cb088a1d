//! Reads shared by whoever asks for the same item at the same time: a
//! request that arrives while a read of its item is on the way to the
//! store joins that read and gets its answer, so a crowd costs the store
//! one read per item at a time, and nobody gets an answer older than the
//! moment the read they joined started.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Mutex, MutexGuard},
};

use eventsys_messages::{CommandId, EventId};
use tokio::sync::oneshot;

use crate::{CommandRecord, EventRecord, EventSnapshot, Store, StoreError};

/// The reads of a store that a rush repeats, each shared by whoever asks
/// for the same item at the same time.
#[derive(Default)]
pub struct SharedReads {
    records: Flights<EventId, Option<EventRecord>>,
    snapshots: Flights<EventId, Option<EventSnapshot>>,
    commands: Flights<CommandId, Option<CommandRecord>>,
}

impl SharedReads {
    /// The event without its counts.
    pub async fn event_record(
        &self,
        store: &dyn Store,
        id: EventId,
    ) -> Result<Option<EventRecord>, StoreError> {
        self.records.read(id, || store.event_record(id)).await
    }

    /// The event with its counts.
    pub async fn event(
        &self,
        store: &dyn Store,
        id: EventId,
    ) -> Result<Option<EventSnapshot>, StoreError> {
        self.snapshots.read(id, || store.event(id)).await
    }

    /// The command as recorded.
    pub async fn command(
        &self,
        store: &dyn Store,
        id: CommandId,
    ) -> Result<Option<CommandRecord>, StoreError> {
        self.commands.read(id, || store.command(id)).await
    }
}

/// Reads on their way to the store, by item, with whoever waits to share
/// each one's answer.
struct Flights<K, V> {
    waiting: Mutex<HashMap<K, Vec<oneshot::Sender<V>>>>,
}

impl<K, V> Default for Flights<K, V> {
    fn default() -> Self {
        Self {
            waiting: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Copy, V: Clone> Flights<K, V> {
    fn waiting(&self) -> MutexGuard<'_, HashMap<K, Vec<oneshot::Sender<V>>>> {
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Joins the read of `key` in flight, or makes it with `read`.
    async fn read<F, Fut>(&self, key: K, read: F) -> Result<V, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, StoreError>>,
    {
        let joined = {
            let mut waiting = self.waiting();
            match waiting.get_mut(&key) {
                Some(others) => {
                    let (tx, rx) = oneshot::channel();
                    others.push(tx);
                    Some(rx)
                }
                None => {
                    waiting.insert(key, Vec::new());
                    None
                }
            }
        };
        if let Some(answer) = joined {
            // A read that failed, or whose request went away, leaves its
            // followers to read for themselves.
            return match answer.await {
                Ok(value) => Ok(value),
                Err(_) => read().await,
            };
        }
        let flight = Flight { flights: self, key };
        let value = read().await?;
        for follower in flight.land() {
            let _ = follower.send(value.clone());
        }
        Ok(value)
    }
}

/// The read in flight for `key`; however it ends (an answer, an error, its
/// request dropped), its followers are let go.
struct Flight<'a, K: Eq + Hash + Copy, V: Clone> {
    flights: &'a Flights<K, V>,
    key: K,
}

impl<K: Eq + Hash + Copy, V: Clone> Flight<'_, K, V> {
    fn land(&self) -> Vec<oneshot::Sender<V>> {
        self.flights.waiting().remove(&self.key).unwrap_or_default()
    }
}

impl<K: Eq + Hash + Copy, V: Clone> Drop for Flight<'_, K, V> {
    fn drop(&mut self) {
        // Dropping the senders wakes the followers, who then read alone.
        self.land();
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        },
        time::Duration,
    };

    use super::*;

    #[tokio::test]
    async fn a_crowd_asking_at_once_costs_one_read() {
        let flights: Arc<Flights<u32, u32>> = Arc::default();
        let reads = Arc::new(AtomicUsize::new(0));
        let asks = (0..50).map(|_| {
            let (flights, reads) = (flights.clone(), reads.clone());
            tokio::spawn(async move {
                flights
                    .read(7, || async {
                        reads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(42)
                    })
                    .await
            })
        });
        for ask in futures::future::join_all(asks).await {
            assert_eq!(ask.expect("task").expect("read"), 42);
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        // Landed: the next ask reads again, so nothing is served stale.
        let again = flights.read(7, || async { Ok(43) }).await.expect("read");
        assert_eq!(again, 43);
    }

    #[tokio::test]
    async fn followers_of_a_failed_read_read_for_themselves() {
        let flights: Arc<Flights<u32, u32>> = Arc::default();
        let leader = {
            let flights = flights.clone();
            tokio::spawn(async move {
                flights
                    .read(1, || async {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Err(StoreError::unavailable("down"))
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        let follower = flights.read(1, || async { Ok(5) }).await;
        assert!(leader.await.expect("task").is_err());
        assert_eq!(follower.expect("its own read"), 5);
    }
}
