//! The reads every client repeats during a rush (an event's counts and
//! record, a command's status), so that a crowd asking the same thing
//! costs the store one read, not one each.
//!
//! - A finished command never changes again: it is answered from memory
//!   once read.
//! - Otherwise, requests that arrive while a read of the same item is on
//!   its way to the store join it and share its answer ([`SharedReads`]). The
//!   answer is never older than the moment the shared read started, so
//!   nobody sees anything staler than the store's own latency, and the
//!   store sees at most one read per item at a time, however many ask.
//!
//! The finished commands kept are bounded (see [`Finished`]).

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

use eventsys_messages::{CommandId, EventId};
use eventsys_store::{CommandRecord, EventRecord, EventSnapshot, SharedReads, Store, StoreError};

/// Finished commands kept, across both generations.
const FINISHED: usize = 100_000;

#[derive(Default)]
pub struct Reads {
    finished: Finished,
    shared: SharedReads,
}

impl Reads {
    /// The command as recorded.
    pub async fn command(
        &self,
        store: &dyn Store,
        id: CommandId,
    ) -> Result<Option<CommandRecord>, StoreError> {
        if let Some(record) = self.finished.get(&id) {
            return Ok(Some(record));
        }
        let record = self.shared.command(store, id).await?;
        if let Some(record) = record.as_ref().filter(|r| r.status.is_terminal()) {
            self.finished.put(id, record.clone());
        }
        Ok(record)
    }

    /// The event with its counts.
    pub async fn event(
        &self,
        store: &dyn Store,
        id: EventId,
    ) -> Result<Option<EventSnapshot>, StoreError> {
        self.shared.event(store, id).await
    }

    /// The event without its counts, as every order checks it first.
    pub async fn event_record(
        &self,
        store: &dyn Store,
        id: EventId,
    ) -> Result<Option<EventRecord>, StoreError> {
        self.shared.event_record(store, id).await
    }
}

/// Finished commands in two generations: when the newer one fills up, the
/// older one is dropped whole, so memory is bounded without bookkeeping
/// per read and what is asked for often stays.
#[derive(Default)]
struct Finished {
    maps: Mutex<[HashMap<CommandId, CommandRecord>; 2]>,
}

impl Finished {
    fn maps(&self) -> MutexGuard<'_, [HashMap<CommandId, CommandRecord>; 2]> {
        // Maps of copies are sound whatever a panicking holder left.
        self.maps
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn get(&self, id: &CommandId) -> Option<CommandRecord> {
        self.maps().iter().find_map(|map| map.get(id)).cloned()
    }

    fn put(&self, id: CommandId, record: CommandRecord) {
        let mut maps = self.maps();
        if maps[0].len() >= FINISHED / 2 {
            maps[1] = std::mem::take(&mut maps[0]);
        }
        maps[0].insert(id, record);
    }
}
