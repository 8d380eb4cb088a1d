//! Group commit on the workers' side of the broker: orders for one event
//! that are carried out at the same time (in a rush, what the prefetch
//! window holds) are written together in one store call, placements with
//! [`OrderStore::place_orders`] and refusals with
//! [`OrderStore::reject_orders`], in the order they reached this point.
//!
//! While a group of an event is being written, the orders that arrive for
//! that event wait and form the next group, so a quiet sale pays no delay
//! and a rush pays one store round trip per group instead of per order.
//! Each order still gets its own outcome, exactly as if written alone; the
//! event's counts are read once per group of placements, after its write,
//! and handed to the group's last order placed, whose announcement carries
//! them.
//!
//! The buyers' notifications of a rush are stored the same way, in
//! batches ([`NotificationStore::add_notifications`]), whatever their event.
//!
//! The event's record, which every order of a rush reads first, is read
//! once for all who ask at the same time ([`SharedReads`]).
//!
//! [`OrderStore::place_orders`]: eventsys_store::OrderStore::place_orders
//! [`OrderStore::reject_orders`]: eventsys_store::OrderStore::reject_orders
//! [`NotificationStore::add_notifications`]: eventsys_store::NotificationStore::add_notifications

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex, MutexGuard},
};

use eventsys_messages::EventId;
use eventsys_store::{
    Completion, EventRecord, EventSnapshot, Finished, NotificationRecord, OrderRecord,
    PlaceOutcome, Placement, SharedReads, Store, StoreError,
};
use tokio::sync::oneshot;

/// The most orders one group carries: a store call, not a whole sale.
pub const MOST_PER_GROUP: usize = 64;

/// What placing one order came to.
#[derive(Debug)]
pub struct Placed {
    pub outcome: PlaceOutcome,
    /// The event's counts after the group, for the group's last order
    /// placed; `None` for the others.
    pub counts: Option<EventSnapshot>,
}

type Answer<T> = oneshot::Sender<Result<T, StoreError>>;

#[derive(Default)]
pub struct Gather {
    placements: Lanes<EventId, (Placement, Completion, Answer<Placed>)>,
    refusals: Lanes<EventId, (OrderRecord, Completion, Answer<Finished>)>,
    /// Notifications to store, one lane for all.
    notifications: Lanes<(), (NotificationRecord, Answer<bool>)>,
    reads: SharedReads,
}

impl Gather {
    /// Places one order, with whichever others of its event are placed at
    /// the same time.
    pub async fn place(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        placement: Placement,
        done: Completion,
    ) -> Result<Placed, StoreError> {
        let event = placement.order.event_id;
        let (answer, outcome) = oneshot::channel();
        if self.placements.join(event, (placement, done, answer)) {
            // Its own task: the groups go on even if this order's caller
            // goes away.
            tokio::spawn(self.clone().write_placements(store.clone(), event));
        }
        outcome.await.unwrap_or_else(|_| Err(unwritten()))
    }

    /// Writes a refused order, with whichever others of its event are
    /// refused at the same time.
    pub async fn reject(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        order: OrderRecord,
        done: Completion,
    ) -> Result<Finished, StoreError> {
        let event = order.event_id;
        let (answer, outcome) = oneshot::channel();
        if self.refusals.join(event, (order, done, answer)) {
            tokio::spawn(self.clone().write_refusals(store.clone(), event));
        }
        outcome.await.unwrap_or_else(|_| Err(unwritten()))
    }

    /// Stores a notification unless it is stored already (`false`), with
    /// whichever others are stored at the same time.
    pub async fn notify(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        notification: NotificationRecord,
    ) -> Result<bool, StoreError> {
        let (answer, outcome) = oneshot::channel();
        if self.notifications.join((), (notification, answer)) {
            tokio::spawn(self.clone().write_notifications(store.clone()));
        }
        outcome.await.unwrap_or_else(|_| Err(unwritten()))
    }

    /// The event's record, read once for everyone asking at the same time.
    pub async fn event_record(
        &self,
        store: &dyn Store,
        id: EventId,
    ) -> Result<Option<EventRecord>, StoreError> {
        self.reads.event_record(store, id).await
    }

    async fn write_placements(self: Arc<Self>, store: Arc<dyn Store>, event: EventId) {
        while let Some(group) = self.placements.next_group(event) {
            let (orders, answers): (Vec<_>, Vec<_>) = group
                .into_iter()
                .map(|(placement, done, answer)| ((placement, done), answer))
                .unzip();
            tracing::debug!(%event, orders = orders.len(), "placing a group");
            let outcomes = store.place_orders(&orders).await;
            let last_placed = outcomes
                .iter()
                .rposition(|o| matches!(o, Ok(PlaceOutcome::Placed)));
            // Read after the write, so that it counts this group's sales. A
            // failed read costs one announcement of counts, not the orders:
            // the next group's announcement brings them up to date.
            let mut counts = match last_placed {
                Some(_) => store.event(event).await.unwrap_or_else(|err| {
                    tracing::warn!(%event, error = %err, "could not read the counts after a group");
                    None
                }),
                None => None,
            };
            for (i, (answer, outcome)) in answers.into_iter().zip(outcomes).enumerate() {
                let placed = outcome.map(|outcome| Placed {
                    outcome,
                    counts: if Some(i) == last_placed {
                        counts.take()
                    } else {
                        None
                    },
                });
                let _ = answer.send(placed);
            }
        }
    }

    async fn write_refusals(self: Arc<Self>, store: Arc<dyn Store>, event: EventId) {
        while let Some(group) = self.refusals.next_group(event) {
            let (orders, answers): (Vec<_>, Vec<_>) = group
                .into_iter()
                .map(|(order, done, answer)| ((order, done), answer))
                .unzip();
            tracing::debug!(%event, orders = orders.len(), "refusing a group");
            let outcomes = store.reject_orders(&orders).await;
            for (answer, outcome) in answers.into_iter().zip(outcomes) {
                let _ = answer.send(outcome);
            }
        }
    }
}

impl Gather {
    async fn write_notifications(self: Arc<Self>, store: Arc<dyn Store>) {
        while let Some(group) = self.notifications.next_group(()) {
            let (mut batch, answers): (Vec<_>, Vec<_>) = group.into_iter().unzip();
            let ids: Vec<_> = batch.iter().map(|n| n.notification_id).collect();
            // A fact handled twice at once brings its notification twice; a
            // batch write takes each key once.
            let mut seen = std::collections::HashSet::new();
            batch.retain(|n| seen.insert(n.notification_id));
            match store.add_notifications(&batch).await {
                Ok(new) => {
                    for (id, answer) in ids.iter().zip(answers) {
                        let _ = answer.send(Ok(new.contains(id)));
                    }
                }
                Err(err) => {
                    let cause = err.to_string();
                    for answer in answers {
                        let _ = answer.send(Err(StoreError::unavailable(cause.clone())));
                    }
                }
            }
        }
    }
}

fn unwritten() -> StoreError {
    StoreError::unavailable("the order's group was not written")
}

/// Work of one kind queued per key (an event), taken a group at a time by
/// whoever writes that key's groups.
struct Lanes<K, T> {
    lanes: Mutex<HashMap<K, Lane<T>>>,
}

struct Lane<T> {
    /// Someone is writing this event's groups.
    writing: bool,
    waiting: Vec<T>,
}

impl<K, T> Default for Lanes<K, T> {
    fn default() -> Self {
        Self {
            lanes: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Copy, T> Lanes<K, T> {
    fn lanes(&self) -> MutexGuard<'_, HashMap<K, Lane<T>>> {
        // The queues stay sound whatever a panicking holder left.
        self.lanes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `work` under `key`; `true` if nobody writes that key's
    /// groups yet, and the caller must.
    fn join(&self, key: K, work: T) -> bool {
        let mut lanes = self.lanes();
        let lane = lanes.entry(key).or_insert_with(|| Lane {
            writing: false,
            waiting: Vec::new(),
        });
        lane.waiting.push(work);
        !std::mem::replace(&mut lane.writing, true)
    }

    /// The next group under `key`, oldest first; `None`, and the lane
    /// closed, once nobody waits.
    fn next_group(&self, key: K) -> Option<Vec<T>> {
        let mut lanes = self.lanes();
        let lane = lanes.get_mut(&key)?;
        if lane.waiting.is_empty() {
            lanes.remove(&key);
            return None;
        }
        let take = lane.waiting.len().min(MOST_PER_GROUP);
        Some(lane.waiting.drain(..take).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_writer_per_event_takes_groups_in_order_until_nobody_waits() {
        let lanes: Lanes<EventId, usize> = Lanes::default();
        let (a, b) = (EventId::generate(), EventId::generate());
        assert!(lanes.join(a, 0), "the first order of an event writes");
        assert!(!lanes.join(a, 1), "later ones wait for the writer");
        assert!(lanes.join(b, 0), "events are written apart");
        for i in 2..(MOST_PER_GROUP + 10) {
            lanes.join(a, i);
        }
        let first = lanes.next_group(a).unwrap_or_default();
        assert_eq!(first, (0..MOST_PER_GROUP).collect::<Vec<_>>());
        assert!(!lanes.join(a, 999), "still being written");
        let second = lanes.next_group(a).unwrap_or_default();
        assert_eq!(second.len(), 11);
        assert_eq!(second.last(), Some(&999));
        assert_eq!(lanes.next_group(a), None);
        assert!(lanes.join(a, 0), "a closed lane opens again");
    }
}
