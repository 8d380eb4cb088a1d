//! Events and their sharded inventory on DynamoDB.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, Get, Put, TransactGetItem, TransactWriteItem, Update,
};
use eventsys_messages::{EventId, EventStatus, Timestamp, UserId};

use crate::{
    Built, DynamoStore, TxFailure, classify,
    codec::{Item, from_item, n, number, s, string, to_item},
    limit::Limited,
    schema::{BY_START_INDEX, ENDINGS},
    shards::{
        Shard, quota_attr, remaining_attr, shard_count, shard_item, shard_key, shards_from_items,
        split, total,
    },
};
use eventsys_store::{
    StoreError,
    ports::{EventStore, Finished, Revised, StatusChange},
    records::{Completion, EventRecord, EventSnapshot, Page, PageRequest, Revision},
    sortable,
};

/// The number of shards of the event an item holds; kept beside the record.
const SHARDS_ATTR: &str = "shards";

fn event_item(event: &EventRecord, shards: u16) -> Result<Item, StoreError> {
    let mut item = to_item(event)?;
    item.insert(SHARDS_ATTR.into(), n(shards));
    // Only published events carry the listing attributes, so the listing
    // index holds exactly the events anyone may see.
    if event.spec.status == EventStatus::Published {
        item.extend(index_attrs(event));
    }
    Ok(item)
}

/// Where a published event sits in the listing (by start) and in the
/// endings (by end); any other event sits in neither.
fn index_attrs(event: &EventRecord) -> [(String, AttributeValue); 4] {
    [
        ("listing".into(), s("published")),
        (
            "listing_sort".into(),
            s(format!(
                "{}#{}",
                sortable(event.spec.starts_at),
                event.event_id
            )),
        ),
        (
            ENDINGS.hash.into(),
            s(ENDINGS.key(event.event_id.0.as_bytes()[15])),
        ),
        (
            ENDINGS.range.into(),
            s(format!(
                "{}#{}",
                sortable(event.spec.ends_at),
                event.event_id
            )),
        ),
    ]
}

impl DynamoStore {
    /// Moves shard 0's counters by `revision`, on condition that each
    /// decrease finds enough unsold seats there.
    fn revise_counters(
        &self,
        event_id: EventId,
        revision: &Revision,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut names = HashMap::new();
        let mut values: Item = HashMap::new();
        let mut set = Vec::new();
        let mut conditions = vec!["attribute_exists(shard_id)".to_owned()];
        values.insert(":zero".into(), n(0));
        let mut counter = |attr: String, base: &str, delta: i64, i: usize| {
            let (name, quota) = (format!("#r{i}"), format!("#q{i}"));
            let value = format!(":d{i}");
            names.insert(name.clone(), attr.clone());
            names.insert(quota.clone(), base.to_owned());
            values.insert(value.clone(), n(delta));
            set.push(format!("{name} = if_not_exists({name}, :zero) + {value}"));
            set.push(format!("{quota} = if_not_exists({quota}, :zero) + {value}"));
            if delta < 0 {
                let need = format!(":n{i}");
                values.insert(need.clone(), n(-delta));
                conditions.push(format!("{name} >= {need}"));
            }
        };
        if revision.capacity != 0 {
            counter("remaining".into(), "capacity", revision.capacity, 0);
        }
        for (i, (tt, delta)) in revision.quotas.iter().enumerate() {
            counter(remaining_attr(*tt), &quota_attr(*tt), *delta, i + 1);
        }
        let mut update = Update::builder()
            .table_name(&self.tables.inventory)
            .set_key(Some(shard_key(event_id, 0)))
            .condition_expression(conditions.join(" AND "));
        update = if set.is_empty() {
            // Nothing moves: a no-op that still checks the shard is there.
            values.insert(":one".into(), n(0));
            update.update_expression("ADD revisions :one")
        } else {
            update.update_expression(format!("SET {}", set.join(", ")))
        };
        let update = update
            .set_expression_attribute_names((!names.is_empty()).then_some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .built()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// An event's record and its number of shards.
    pub(crate) async fn event_with_shards(
        &self,
        id: EventId,
    ) -> Result<Option<(EventRecord, u16)>, StoreError> {
        let Some(item) = self
            .get_item(&self.tables.events, "event_id", id.to_string())
            .await?
        else {
            return Ok(None);
        };
        let shards = shards_of(&item)?;
        Ok(Some((from_item(item)?, shards)))
    }

    /// All shards of one event, read atomically.
    pub(crate) async fn shards(
        &self,
        event_id: EventId,
        shards: u16,
    ) -> Result<Vec<Shard>, StoreError> {
        let gets = (0..shards)
            .map(|i| {
                Get::builder()
                    .table_name(&self.tables.inventory)
                    .set_key(Some(shard_key(event_id, i)))
                    .build()
                    .map(|get| TransactGetItem::builder().get(get).build())
            })
            .collect::<Result<Vec<_>, _>>()
            .built()?;
        let out = self
            .client
            .transact_get_items()
            .set_transact_items(Some(gets))
            .send()
            .limited(&self.limit)
            .await
            .map_err(classify)?;
        let items: Vec<Item> = out
            .responses()
            .iter()
            .filter_map(|r| r.item().cloned())
            .collect();
        shards_from_items(&items)
    }
}

#[async_trait]
impl EventStore for DynamoStore {
    async fn create_event(
        &self,
        event: &EventRecord,
        done: &Completion,
    ) -> Result<Finished, StoreError> {
        let count = shard_count(event.spec.capacity, self.seats_per_shard);
        let mut items = vec![
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.tables.events)
                        .set_item(Some(event_item(event, count)?))
                        .condition_expression("attribute_not_exists(event_id)")
                        .build()
                        .built()?,
                )
                .build(),
        ];
        for shard in &split(&event.spec, count) {
            items.push(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(&self.tables.inventory)
                            .set_item(Some(shard_item(event.event_id, shard)))
                            .condition_expression("attribute_not_exists(shard_id)")
                            .build()
                            .built()?,
                    )
                    .build(),
            );
        }
        items.push(self.completion(done)?);
        self.effect(items, || {
            format!(
                "event {} exists but its command is unfinished",
                event.event_id
            )
        })
        .await
    }

    async fn due_endings(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<EventRecord>, StoreError> {
        self.due(&self.tables.events, &ENDINGS, before, limit).await
    }

    async fn revise_event(
        &self,
        event: &EventRecord,
        seen: Timestamp,
        revision: &Revision,
        done: &Completion,
    ) -> Result<Revised, StoreError> {
        let Some((before, count)) = self.event_with_shards(event.event_id).await? else {
            return self
                .unless_done(done, Revised::NotFound, Revised::Already)
                .await;
        };
        if before.updated_at != seen {
            return self
                .unless_done(done, Revised::Stale, Revised::Already)
                .await;
        }
        // Decreases take from shard 0: gather the unsold seats there first.
        for attempt in 0..2 {
            let put = Put::builder()
                .table_name(&self.tables.events)
                .set_item(Some(event_item(event, count)?))
                .condition_expression("updated_at = :seen")
                .expression_attribute_values(":seen", s(seen.to_string()))
                .build()
                .built()?;
            let items = vec![
                TransactWriteItem::builder().put(put).build(),
                self.revise_counters(event.event_id, revision)?,
                self.completion(done)?,
            ];
            match self.transact(items).await {
                Ok(()) => return Ok(Revised::Changed),
                Err(TxFailure::Conditions(c)) if TxFailure::failed_at(&c, -1) => {
                    return Ok(Revised::Already);
                }
                Err(TxFailure::Conditions(c)) if TxFailure::failed_at(&c, 0) => {
                    return Ok(Revised::Stale);
                }
                Err(TxFailure::Conditions(_)) if attempt == 0 && count > 1 => {
                    let shards = self.shards(event.event_id, count).await?;
                    self.consolidate(event.event_id, &shards, 0).await?;
                }
                Err(TxFailure::Conditions(_)) => return Ok(Revised::TooFew),
                Err(TxFailure::Store(e)) => return Err(e),
            }
        }
        Ok(Revised::TooFew)
    }

    async fn change_event_status(
        &self,
        event_id: EventId,
        to: EventStatus,
        done: &Completion,
    ) -> Result<StatusChange, StoreError> {
        // The listing key needs the start time: read the event, then write
        // on condition that its status is still one that may change.
        let event = self.event_record(event_id).await?;
        let from = to.reached_from();
        let refusal = match &event {
            None => Some(StatusChange::NotFound),
            Some(e) if !from.contains(&e.spec.status) => Some(StatusChange::Refused(e.spec.status)),
            Some(_) => None,
        };
        // A command that finished before is answered as such, whatever the
        // event's status has become since.
        if let Some(refusal) = refusal {
            return self.unless_done(done, refusal, StatusChange::Already).await;
        }
        let Some(event) = event else {
            return Ok(StatusChange::NotFound);
        };
        let mut update = Update::builder()
            .table_name(&self.tables.events)
            .key("event_id", s(event_id.to_string()))
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":at", s(done.at.to_string()));
        let mut allowed = Vec::new();
        for (i, status) in from.iter().enumerate() {
            let name = format!(":from{i}");
            update = update.expression_attribute_values(&name, s(status.as_str()));
            allowed.push(name);
        }
        update = update.condition_expression(format!("#s IN ({})", allowed.join(", ")));
        update = if to == EventStatus::Published {
            let mut update = update.update_expression(
                "SET #s = :to, updated_at = :at, listing = :i0, listing_sort = :i1, \
                 ending_key = :i2, ending_sort = :i3",
            );
            for (i, (_, value)) in index_attrs(&event).into_iter().enumerate() {
                update = update.expression_attribute_values(format!(":i{i}"), value);
            }
            update
        } else {
            update.update_expression(
                "SET #s = :to, updated_at = :at \
                 REMOVE listing, listing_sort, ending_key, ending_sort",
            )
        };
        let items = vec![
            TransactWriteItem::builder()
                .update(update.build().built()?)
                .build(),
            self.completion(done)?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(StatusChange::Changed),
            Err(TxFailure::Conditions(c)) if TxFailure::failed_at(&c, -1) => {
                Ok(StatusChange::Already)
            }
            // Someone else changed it meanwhile: say what it is now.
            Err(TxFailure::Conditions(_)) => Ok(match self.event_record(event_id).await? {
                Some(now) => StatusChange::Refused(now.spec.status),
                None => StatusChange::NotFound,
            }),
            Err(TxFailure::Store(e)) => Err(e),
        }
    }

    async fn set_staff(
        &self,
        event_id: EventId,
        user: &UserId,
        granted: Option<Timestamp>,
        done: &Completion,
    ) -> Result<Option<Finished>, StoreError> {
        let update = Update::builder()
            .table_name(&self.tables.events)
            .key("event_id", s(event_id.to_string()))
            .condition_expression("attribute_exists(event_id)")
            .expression_attribute_names("#staff", "staff")
            .expression_attribute_names("#u", user.as_str());
        let update = match granted {
            Some(since) => update
                .update_expression("SET #staff.#u = :since")
                .expression_attribute_values(":since", s(since.to_string())),
            None => update.update_expression("REMOVE #staff.#u"),
        };
        let items = vec![
            TransactWriteItem::builder()
                .update(update.build().built()?)
                .build(),
            self.completion(done)?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(Some(Finished::Now)),
            Err(TxFailure::Conditions(c)) if TxFailure::failed_at(&c, -1) => {
                Ok(Some(Finished::Already))
            }
            Err(TxFailure::Conditions(_)) => Ok(None),
            Err(TxFailure::Store(e)) => Err(e),
        }
    }

    async fn event_record(&self, id: EventId) -> Result<Option<EventRecord>, StoreError> {
        self.get_record(&self.tables.events, "event_id", id.to_string())
            .await
    }

    async fn event(&self, id: EventId) -> Result<Option<EventSnapshot>, StoreError> {
        let Some((event, count)) = self.event_with_shards(id).await? else {
            return Ok(None);
        };
        let inventory = total(&self.shards(id, count).await?);
        Ok(Some(EventSnapshot { event, inventory }))
    }

    async fn published_events(
        &self,
        page: &PageRequest,
    ) -> Result<Page<EventSnapshot>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.tables.events)
            .index_name(BY_START_INDEX)
            .key_condition_expression("listing = :published")
            .expression_attribute_values(":published", s("published"));
        let Page { items, next } = self.query_items(query, page).await?;
        let events = items
            .into_iter()
            .map(|item| Ok((shards_of(&item)?, from_item::<EventRecord>(item)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let keys = events
            .iter()
            .flat_map(|(count, e)| (0..*count).map(|i| shard_key(e.event_id, i)))
            .collect();
        let mut by_event: HashMap<String, Vec<Item>> = HashMap::new();
        for item in self.batch_get(&self.tables.inventory, keys).await? {
            by_event
                .entry(string(&item, "event_id")?.to_owned())
                .or_default()
                .push(item);
        }
        let items = events
            .into_iter()
            .map(|(_, event)| {
                let shards = by_event
                    .remove(&event.event_id.to_string())
                    .unwrap_or_default();
                Ok(EventSnapshot {
                    inventory: total(&shards_from_items(&shards)?),
                    event,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Page { items, next })
    }
}

fn shards_of(item: &Item) -> Result<u16, StoreError> {
    let count = number(item, SHARDS_ATTR)?;
    u16::try_from(count).map_err(|_| StoreError::corrupt(format!("{count} shards")))
}
