//! Events and their inventory in the embedded store.

use async_trait::async_trait;
use eventsys_messages::{EventId, EventStatus, Timestamp, UserId};

use crate::{
    ENDINGS, EVENTS, EmbeddedStore, INVENTORY, LISTING, commands, get, open, open_read, page, put,
    unavailable,
};
use eventsys_store::{
    Inventory, StoreError,
    ports::{EventStore, Finished, Revised, StatusChange},
    records::{Completion, EventRecord, EventSnapshot, Page, PageRequest, Revision},
    sortable,
};

fn inventory(
    table: &impl redb::ReadableTable<&'static str, &'static [u8]>,
    event: &EventRecord,
) -> Result<Inventory, StoreError> {
    get::<Inventory>(table, &event.event_id.to_string())?
        .ok_or_else(|| StoreError::corrupt(format!("event {} has no inventory", event.event_id)))
}

fn listing_key(event: &EventRecord) -> String {
    format!("{}#{}", sortable(event.spec.starts_at), event.event_id)
}

fn ending_key(event: &EventRecord) -> String {
    format!("{}#{}", sortable(event.spec.ends_at), event.event_id)
}

/// Keeps the listing and the endings in step with the event as it is
/// now (`after`), no longer as it was (`before`): a published event is in
/// both, any other in neither.
fn reindex(
    txn: &redb::WriteTransaction,
    before: Option<&EventRecord>,
    after: &EventRecord,
) -> Result<(), StoreError> {
    let (mut listing, mut endings) = (open(txn, LISTING)?, open(txn, ENDINGS)?);
    if let Some(before) = before {
        listing
            .remove(listing_key(before).as_str())
            .map_err(unavailable)?;
        endings
            .remove(ending_key(before).as_str())
            .map_err(unavailable)?;
    }
    if after.spec.status == EventStatus::Published {
        put(&mut listing, &listing_key(after), &after.event_id)?;
        put(&mut endings, &ending_key(after), &after.event_id)?;
    }
    Ok(())
}

#[async_trait]
impl EventStore for EmbeddedStore {
    async fn create_event(
        &self,
        event: &EventRecord,
        done: &Completion,
    ) -> Result<Finished, StoreError> {
        let (event, done) = (event.clone(), done.clone());
        self.write(move |txn| {
            if !commands::unfinished(txn, &done)? {
                return Ok(Finished::Already);
            }
            let mut events = open(txn, EVENTS)?;
            let key = event.event_id.to_string();
            if get::<EventRecord>(&events, &key)?.is_some() {
                return Err(StoreError::rejected(format!(
                    "event {key} exists but its command is unfinished"
                )));
            }
            put(&mut events, &key, &event)?;
            reindex(txn, None, &event)?;
            put(
                &mut open(txn, INVENTORY)?,
                &key,
                &Inventory::initial(&event.spec),
            )?;
            commands::finish(txn, &done)
        })
        .await
    }

    async fn due_endings(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<EventRecord>, StoreError> {
        self.read(move |txn| {
            let end = sortable(before);
            let Page { items, .. } =
                page::<EventId>(&open_read(txn, ENDINGS)?, ("", &end), None, limit, false)?;
            let events = open_read(txn, EVENTS)?;
            let mut due = Vec::with_capacity(items.len());
            for (_, id) in items {
                due.extend(get::<EventRecord>(&events, &id.to_string())?);
            }
            Ok(due)
        })
        .await
    }

    async fn revise_event(
        &self,
        event: &EventRecord,
        seen: Timestamp,
        revision: &Revision,
        done: &Completion,
    ) -> Result<Revised, StoreError> {
        let (event, revision, done) = (event.clone(), revision.clone(), done.clone());
        self.write(move |txn| {
            if !commands::unfinished(txn, &done)? {
                return Ok(Revised::Already);
            }
            let mut events = open(txn, EVENTS)?;
            let key = event.event_id.to_string();
            let Some(before) = get::<EventRecord>(&events, &key)? else {
                return Ok(Revised::NotFound);
            };
            if before.updated_at != seen {
                return Ok(Revised::Stale);
            }
            let mut counters = open(txn, INVENTORY)?;
            let mut inventory = get::<Inventory>(&counters, &key)?
                .ok_or_else(|| StoreError::corrupt(format!("event {key} has no inventory")))?;
            if !inventory.revise(&revision) {
                return Ok(Revised::TooFew);
            }
            put(&mut counters, &key, &inventory)?;
            reindex(txn, Some(&before), &event)?;
            put(&mut events, &key, &event)?;
            commands::finish(txn, &done)?;
            Ok(Revised::Changed)
        })
        .await
    }

    async fn change_event_status(
        &self,
        event_id: EventId,
        to: EventStatus,
        done: &Completion,
    ) -> Result<StatusChange, StoreError> {
        let done = done.clone();
        self.write(move |txn| {
            if !commands::unfinished(txn, &done)? {
                return Ok(StatusChange::Already);
            }
            let mut events = open(txn, EVENTS)?;
            let key = event_id.to_string();
            let Some(mut event) = get::<EventRecord>(&events, &key)? else {
                return Ok(StatusChange::NotFound);
            };
            if !to.reached_from().contains(&event.spec.status) {
                return Ok(StatusChange::Refused(event.spec.status));
            }
            let before = event.clone();
            event.spec.status = to;
            event.updated_at = done.at;
            reindex(txn, Some(&before), &event)?;
            put(&mut events, &key, &event)?;
            commands::finish(txn, &done)?;
            Ok(StatusChange::Changed)
        })
        .await
    }

    async fn set_staff(
        &self,
        event_id: EventId,
        user: &UserId,
        granted: Option<Timestamp>,
        done: &Completion,
    ) -> Result<Option<Finished>, StoreError> {
        let (user, done) = (user.clone(), done.clone());
        self.write(move |txn| {
            if !commands::unfinished(txn, &done)? {
                return Ok(Some(Finished::Already));
            }
            let mut events = open(txn, EVENTS)?;
            let key = event_id.to_string();
            let Some(mut event) = get::<EventRecord>(&events, &key)? else {
                return Ok(None);
            };
            match granted {
                Some(since) => event.staff.insert(user.clone(), since),
                None => event.staff.remove(&user),
            };
            put(&mut events, &key, &event)?;
            commands::finish(txn, &done).map(Some)
        })
        .await
    }

    async fn event_record(&self, id: EventId) -> Result<Option<EventRecord>, StoreError> {
        self.read(move |txn| get(&open_read(txn, EVENTS)?, &id.to_string()))
            .await
    }

    async fn event(&self, id: EventId) -> Result<Option<EventSnapshot>, StoreError> {
        self.read(move |txn| {
            let Some(event) = get::<EventRecord>(&open_read(txn, EVENTS)?, &id.to_string())? else {
                return Ok(None);
            };
            let inventory = inventory(&open_read(txn, INVENTORY)?, &event)?;
            Ok(Some(EventSnapshot { event, inventory }))
        })
        .await
    }

    async fn published_events(
        &self,
        request: &PageRequest,
    ) -> Result<Page<EventSnapshot>, StoreError> {
        let request = request.clone();
        self.read(move |txn| {
            let Page { items: ids, next } = page::<EventId>(
                &open_read(txn, LISTING)?,
                ("", "\u{10FFFF}"),
                request.after.as_deref(),
                request.limit,
                false,
            )?;
            let (events, shards) = (open_read(txn, EVENTS)?, open_read(txn, INVENTORY)?);
            let items = ids
                .into_iter()
                .map(|(_, id)| {
                    let event = get::<EventRecord>(&events, &id.to_string())?.ok_or_else(|| {
                        StoreError::corrupt(format!("listed event {id} is missing"))
                    })?;
                    Ok(EventSnapshot {
                        inventory: inventory(&shards, &event)?,
                        event,
                    })
                })
                .collect::<Result<_, StoreError>>()?;
            Ok(Page { items, next })
        })
        .await
    }
}
