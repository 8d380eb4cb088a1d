//! Events and their sharded inventory on DynamoDB.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Get, Put, TransactGetItem, TransactWriteItem};
use eventsys_messages::{EventId, EventStatus, TicketTypeId};

use crate::{
    Built, DynamoStore, classify,
    codec::{Item, n, number, s, string, to_item},
    schema::BY_START_INDEX,
};
use eventsys_store::{
    Inventory, Shard, StoreError, TypeSlice,
    ports::{EventStore, Finished},
    records::{Completion, EventRecord, EventSnapshot, Page, PageRequest},
    sortable,
};

/// Per-type counters of a shard live in attributes named by the type id.
pub(super) fn quota_attr(tt: TicketTypeId) -> String {
    format!("q_{tt}")
}

pub(super) fn remaining_attr(tt: TicketTypeId) -> String {
    format!("r_{tt}")
}

pub(super) fn shard_key(event_id: EventId, index: u16) -> Item {
    [("shard_id".to_owned(), s(format!("{event_id}#{index}")))].into()
}

fn shard_item(event_id: EventId, shard: &Shard) -> Item {
    let mut item = shard_key(event_id, shard.index);
    item.insert("event_id".into(), s(event_id.to_string()));
    item.insert("index".into(), n(shard.index));
    item.insert("capacity".into(), n(shard.capacity));
    item.insert("remaining".into(), n(shard.remaining));
    for (tt, slice) in &shard.types {
        item.insert(quota_attr(*tt), n(slice.quota));
        item.insert(remaining_attr(*tt), n(slice.remaining));
    }
    item
}

fn shard_from_item(item: &Item) -> Result<Shard, StoreError> {
    let index = number(item, "index")?;
    let mut types: BTreeMap<TicketTypeId, TypeSlice> = BTreeMap::new();
    for name in item.keys() {
        if let Some(raw) = name.strip_prefix("q_") {
            let tt: TicketTypeId = raw
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("bad ticket type attribute {name}")))?;
            types.insert(
                tt,
                TypeSlice {
                    quota: number(item, name)?,
                    remaining: number(item, &remaining_attr(tt))?,
                },
            );
        }
    }
    Ok(Shard {
        index: u16::try_from(index)
            .map_err(|_| StoreError::Corrupt(format!("shard index {index}")))?,
        capacity: number(item, "capacity")?,
        remaining: number(item, "remaining")?,
        types,
    })
}

fn inventory_from_items(items: &[Item]) -> Result<Inventory, StoreError> {
    let mut shards = items
        .iter()
        .map(shard_from_item)
        .collect::<Result<Vec<_>, _>>()?;
    shards.sort_by_key(|s| s.index);
    Ok(Inventory { shards })
}

fn event_item(event: &EventRecord) -> Result<Item, StoreError> {
    let mut item = to_item(event)?;
    // Only published events carry the listing attributes, so the listing
    // index holds exactly the events anyone may see.
    if event.spec.status == EventStatus::Published {
        item.insert("listing".into(), s("published"));
        item.insert(
            "listing_sort".into(),
            s(format!(
                "{}#{}",
                sortable(event.spec.starts_at),
                event.event_id
            )),
        );
    }
    Ok(item)
}

impl DynamoStore {
    /// All shards of one event, read atomically.
    pub(super) async fn inventory(
        &self,
        event_id: EventId,
        shards: u16,
    ) -> Result<Inventory, StoreError> {
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
            .await
            .map_err(classify)?;
        let items: Vec<Item> = out
            .responses()
            .iter()
            .filter_map(|r| r.item().cloned())
            .collect();
        inventory_from_items(&items)
    }
}

#[async_trait]
impl EventStore for DynamoStore {
    async fn create_event(
        &self,
        event: &EventRecord,
        inventory: &Inventory,
        done: &Completion,
    ) -> Result<Finished, StoreError> {
        let mut items = vec![
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.tables.events)
                        .set_item(Some(event_item(event)?))
                        .condition_expression("attribute_not_exists(event_id)")
                        .build()
                        .built()?,
                )
                .build(),
        ];
        for shard in &inventory.shards {
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

    async fn event_record(&self, id: EventId) -> Result<Option<EventRecord>, StoreError> {
        self.get_record(&self.tables.events, "event_id", id.to_string())
            .await
    }

    async fn event(&self, id: EventId) -> Result<Option<EventSnapshot>, StoreError> {
        let Some(event) = self.event_record(id).await? else {
            return Ok(None);
        };
        let inventory = self.inventory(id, event.shards).await?;
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
        let Page {
            items: events,
            next,
        } = self.query_page::<EventRecord>(query, page).await?;
        let keys = events
            .iter()
            .flat_map(|e| (0..e.shards).map(|i| shard_key(e.event_id, i)))
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
            .map(|event| {
                let shards = by_event
                    .remove(&event.event_id.to_string())
                    .unwrap_or_default();
                Ok(EventSnapshot {
                    inventory: inventory_from_items(&shards)?,
                    event,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Page { items, next })
    }
}
