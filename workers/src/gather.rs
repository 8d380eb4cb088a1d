//! Group commit on the workers' side of the broker: orders for one event
//! that are carried out at the same time (in a rush, what the prefetch
//! window holds) are placed together in one store call
//! ([`OrderStore::place_orders`]), in the order they reached this point.
//!
//! While a group of an event is being written, the orders that arrive for
//! that event wait and form the next group, so a quiet sale pays no delay
//! and a rush pays one store round trip per group instead of per order.
//! Each order still gets its own outcome, exactly as if placed alone; the
//! event's counts are read once per group, after its write, and handed to
//! the group's last order placed, whose announcement carries them.
//!
//! The event's record, which every order of a rush reads first, is read
//! once for all who ask at the same time ([`Flights`]).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use eventsys_messages::EventId;
use eventsys_store::{
    Completion, EventRecord, EventSnapshot, Flights, PlaceOutcome, Placement, Store, StoreError,
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

type Answer = oneshot::Sender<Result<Placed, StoreError>>;

#[derive(Default)]
struct Event {
    /// A group of this event is being written.
    writing: bool,
    waiting: Vec<(Placement, Completion, Answer)>,
}

#[derive(Default)]
pub struct Gather {
    events: Mutex<HashMap<EventId, Event>>,
    records: Flights<EventId, Option<EventRecord>>,
}

impl Gather {
    fn events(&self) -> MutexGuard<'_, HashMap<EventId, Event>> {
        // The map of queues stays sound whatever a panicking holder left.
        self.events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

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
        let lead = {
            let mut events = self.events();
            let queue = events.entry(event).or_default();
            queue.waiting.push((placement, done, answer));
            !std::mem::replace(&mut queue.writing, true)
        };
        if lead {
            // Its own task: the groups go on even if this order's caller
            // goes away.
            tokio::spawn(self.clone().write_groups(store.clone(), event));
        }
        outcome
            .await
            .unwrap_or_else(|_| Err(StoreError::unavailable("the order's group was not written")))
    }

    /// Writes the groups of `event` until nobody waits.
    async fn write_groups(self: Arc<Self>, store: Arc<dyn Store>, event: EventId) {
        loop {
            let group: Vec<_> = {
                let mut events = self.events();
                let Some(queue) = events.get_mut(&event) else {
                    return;
                };
                if queue.waiting.is_empty() {
                    events.remove(&event);
                    return;
                }
                let take = queue.waiting.len().min(MOST_PER_GROUP);
                queue.waiting.drain(..take).collect()
            };
            let (orders, answers): (Vec<_>, Vec<_>) = group
                .into_iter()
                .map(|(placement, done, answer)| ((placement, done), answer))
                .unzip();
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

    /// The event's record, read once for everyone asking at the same time.
    pub async fn event_record(
        &self,
        store: &dyn Store,
        id: EventId,
    ) -> Result<Option<EventRecord>, StoreError> {
        self.records.read(id, || store.event_record(id)).await
    }
}
