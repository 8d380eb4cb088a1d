//! Webhook endpoints and their deliveries on DynamoDB.
//!
//! `webhook_deliveries` holds, under each endpoint, its deliveries at
//! `d#{sequence}` (zero-padded, so that they sort in order) and one guard
//! item per occurrence at `o#{occurrence_id}`. Owing a delivery is one
//! transaction: the endpoint's counter moves on only if nobody moved it
//! first, the guard is new, and the delivery is put. A delivery still owed
//! carries `owed`, which the sparse `owed` index orders.
//!
//! An endpoint owed something carries `owing` until a dispatcher settles
//! it, so the sparse `owing` index lists what there is to send after a
//! restart; its `mark` moves with each delivery owed, and a dispatcher's
//! lease is `lease_holder` until `lease_until_ms`.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use eventsys_messages::{Timestamp, UserId, WebhookId};

use crate::{
    Built, DynamoStore, TxFailure, applied, classify,
    codec::{Item, from_item, n, s, to_item, to_value},
    limit::Limited,
    schema::{BY_ORGANIZER_INDEX, OWED_INDEX, OWING_INDEX},
};
use eventsys_store::{
    StoreError,
    ports::WebhookStore,
    records::{DeliveryRecord, DeliveryStatus, Page, PageRequest, SigningSecret, WebhookRecord},
};

/// How often owing a delivery is tried again when another writer took
/// the sequence number first.
const NUMBERING_RACES: usize = 20;

/// The one value of `owing`: the index is there to list, not to sort.
const OWING: &str = "owing";

fn millis(at: Timestamp) -> aws_sdk_dynamodb::types::AttributeValue {
    n(at.as_millisecond())
}

/// Marks the endpoint owed something again; part of each transaction
/// that owes a delivery.
fn mark_owing(table: &str, id: WebhookId) -> Result<Update, StoreError> {
    Update::builder()
        .table_name(table)
        .key("webhook_id", s(id.to_string()))
        .update_expression("SET #owing = :owing ADD #mark :one")
        .condition_expression("attribute_exists(webhook_id)")
        .expression_attribute_names("#owing", "owing")
        .expression_attribute_names("#mark", "mark")
        .expression_attribute_values(":owing", s(OWING))
        .expression_attribute_values(":one", n(1))
        .build()
        .built()
}

fn position(sequence: u64) -> String {
    format!("d#{sequence:020}")
}

/// A delivery as stored: the record, its position, and `owed` while it is.
fn delivery_item(delivery: &DeliveryRecord) -> Result<Item, StoreError> {
    let mut item = to_item(delivery)?;
    let at = position(delivery.sequence);
    if delivery.status == DeliveryStatus::Pending {
        item.insert("owed".into(), s(at.clone()));
    }
    item.insert("position".into(), s(at));
    Ok(item)
}

#[async_trait]
impl WebhookStore for DynamoStore {
    async fn add_webhook(&self, webhook: &WebhookRecord) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.tables.webhooks)
            .set_item(Some(to_item(webhook)?))
            .send()
            .limited(&self.limit)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn webhook(&self, id: WebhookId) -> Result<Option<WebhookRecord>, StoreError> {
        self.get_record(&self.tables.webhooks, "webhook_id", id.to_string())
            .await
    }

    async fn webhooks_of(&self, organizer: &UserId) -> Result<Vec<WebhookRecord>, StoreError> {
        let mut found = Vec::new();
        let mut after = None;
        loop {
            let query = self
                .client
                .query()
                .table_name(&self.tables.webhooks)
                .index_name(BY_ORGANIZER_INDEX)
                .key_condition_expression("organizer_id = :o")
                .expression_attribute_values(":o", s(organizer.as_str()));
            let page = PageRequest { limit: 100, after };
            let Page { items, next } = self.query_page::<WebhookRecord>(query, &page).await?;
            found.extend(items);
            match next {
                Some(position) => after = Some(position),
                None => return Ok(found),
            }
        }
    }

    async fn set_secrets(
        &self,
        id: WebhookId,
        secrets: &[SigningSecret],
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.webhooks)
            .key("webhook_id", s(id.to_string()))
            .update_expression("SET secrets = :s")
            .condition_expression("attribute_exists(webhook_id)")
            .expression_attribute_values(":s", to_value(&secrets)?)
            .send()
            .limited(&self.limit)
            .await;
        applied(result)
    }

    async fn remove_webhook(&self, id: WebhookId) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.tables.webhooks)
            .key("webhook_id", s(id.to_string()))
            .condition_expression("attribute_exists(webhook_id)")
            .send()
            .limited(&self.limit)
            .await;
        applied(result)
    }

    async fn owe(&self, delivery: &DeliveryRecord) -> Result<Option<u64>, StoreError> {
        let id = delivery.webhook_id;
        for _ in 0..NUMBERING_RACES {
            let Some(webhook) = self.webhook(id).await? else {
                return Ok(None);
            };
            let sequence = webhook.next_sequence;
            let take_number = Update::builder()
                .table_name(&self.tables.webhooks)
                .key("webhook_id", s(id.to_string()))
                .update_expression("SET next_sequence = :after, #owing = :owing ADD #mark :one")
                .condition_expression("next_sequence = :taken")
                .expression_attribute_names("#owing", "owing")
                .expression_attribute_names("#mark", "mark")
                .expression_attribute_values(":taken", n(sequence))
                .expression_attribute_values(":after", n(sequence + 1))
                .expression_attribute_values(":owing", s(OWING))
                .expression_attribute_values(":one", n(1))
                .build()
                .built()?;
            let guard = Put::builder()
                .table_name(&self.tables.deliveries)
                .item("webhook_id", s(id.to_string()))
                .item("position", s(format!("o#{}", delivery.occurrence_id)))
                .condition_expression("attribute_not_exists(#p)")
                .expression_attribute_names("#p", "position")
                .build()
                .built()?;
            let numbered = DeliveryRecord {
                sequence,
                ..delivery.clone()
            };
            let put = Put::builder()
                .table_name(&self.tables.deliveries)
                .set_item(Some(delivery_item(&numbered)?))
                .build()
                .built()?;
            let items = vec![
                TransactWriteItem::builder().update(take_number).build(),
                TransactWriteItem::builder().put(guard).build(),
                TransactWriteItem::builder().put(put).build(),
            ];
            match self.transact(items).await {
                Ok(()) => return Ok(Some(sequence)),
                Err(TxFailure::Conditions(c)) if TxFailure::failed_at(&c, 1) => return Ok(None),
                // Another delivery took this number (or the endpoint went):
                // read the counter again.
                Err(TxFailure::Conditions(_)) => continue,
                Err(TxFailure::Store(e)) => return Err(e),
            }
        }
        Err(StoreError::unavailable(
            "too many deliveries raced for the endpoint's next number",
        ))
    }

    async fn deliveries(
        &self,
        id: WebhookId,
        page: &PageRequest,
    ) -> Result<Page<DeliveryRecord>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.tables.deliveries)
            .key_condition_expression("webhook_id = :w AND begins_with(#p, :d)")
            .expression_attribute_names("#p", "position")
            .expression_attribute_values(":w", s(id.to_string()))
            .expression_attribute_values(":d", s("d#"))
            .scan_index_forward(false);
        self.query_page(query, page).await
    }

    async fn delivery(
        &self,
        id: WebhookId,
        sequence: u64,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        let got = self
            .client
            .get_item()
            .table_name(&self.tables.deliveries)
            .key("webhook_id", s(id.to_string()))
            .key("position", s(position(sequence)))
            .consistent_read(true)
            .send()
            .limited(&self.limit)
            .await
            .map_err(classify)?;
        got.item.map(from_item).transpose()
    }

    async fn next_owed(&self, id: WebhookId) -> Result<Option<DeliveryRecord>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.tables.deliveries)
            .index_name(OWED_INDEX)
            .key_condition_expression("webhook_id = :w")
            .expression_attribute_values(":w", s(id.to_string()));
        let page = PageRequest {
            limit: 10,
            after: None,
        };
        let Page { items, .. } = self.query_page::<DeliveryRecord>(query, &page).await?;
        // The index lags the table: what it lists as owed is read again,
        // consistently, so that a delivery just settled is not sent twice.
        for candidate in items {
            if let Some(delivery) = self.delivery(id, candidate.sequence).await?
                && delivery.status == DeliveryStatus::Pending
            {
                return Ok(Some(delivery));
            }
        }
        Ok(None)
    }

    async fn record_attempt(&self, delivery: &DeliveryRecord) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.deliveries)
            .set_item(Some(delivery_item(delivery)?))
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", to_value(&DeliveryStatus::Pending)?)
            .send()
            .limited(&self.limit)
            .await;
        applied(result)
    }

    async fn replay(
        &self,
        id: WebhookId,
        sequence: u64,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let owe_again = Update::builder()
            .table_name(&self.tables.deliveries)
            .key("webhook_id", s(id.to_string()))
            .key("position", s(position(sequence)))
            .update_expression(
                "SET #status = :pending, next_attempt_at = :at, replayed_at = :at, \
                 owed = :position ADD replays :one",
            )
            .condition_expression("attribute_exists(#p)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#p", "position")
            .expression_attribute_values(":pending", to_value(&DeliveryStatus::Pending)?)
            .expression_attribute_values(":at", to_value(&at)?)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":position", s(position(sequence)))
            .build()
            .built()?;
        let items = vec![
            TransactWriteItem::builder().update(owe_again).build(),
            TransactWriteItem::builder()
                .update(mark_owing(&self.tables.webhooks, id)?)
                .build(),
        ];
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(TxFailure::Conditions(_)) => Ok(false),
            Err(TxFailure::Store(e)) => Err(e),
        }
    }

    async fn owing_webhooks(&self, limit: u32) -> Result<Vec<WebhookId>, StoreError> {
        let mut found = Vec::new();
        let mut after = None;
        while found.len() < limit as usize {
            let query = self
                .client
                .query()
                .table_name(&self.tables.webhooks)
                .index_name(OWING_INDEX)
                .key_condition_expression("#owing = :owing")
                .expression_attribute_names("#owing", "owing")
                .expression_attribute_values(":owing", s(OWING));
            let page = PageRequest {
                limit: limit.min(100),
                after,
            };
            let Page { items, next } = self.query_page::<WebhookRecord>(query, &page).await?;
            found.extend(items.into_iter().map(|w| w.webhook_id));
            match next {
                Some(position) => after = Some(position),
                None => break,
            }
        }
        found.truncate(limit as usize);
        Ok(found)
    }

    async fn lease_webhook(
        &self,
        id: WebhookId,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.webhooks)
            .key("webhook_id", s(id.to_string()))
            .update_expression("SET lease_holder = :me, lease_until_ms = :until")
            .condition_expression(
                "attribute_exists(webhook_id) AND (attribute_not_exists(lease_until_ms) \
                 OR lease_until_ms < :now OR lease_holder = :me)",
            )
            .expression_attribute_values(":me", s(holder))
            .expression_attribute_values(":now", millis(now))
            .expression_attribute_values(":until", millis(until))
            .send()
            .limited(&self.limit)
            .await;
        applied(result)
    }

    async fn settle_webhook(
        &self,
        id: WebhookId,
        holder: &str,
        seen: u64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.webhooks)
            .key("webhook_id", s(id.to_string()))
            .update_expression("REMOVE #owing, lease_holder, lease_until_ms")
            .condition_expression("#mark = :seen AND lease_holder = :me")
            .expression_attribute_names("#owing", "owing")
            .expression_attribute_names("#mark", "mark")
            .expression_attribute_values(":seen", n(seen))
            .expression_attribute_values(":me", s(holder))
            .send()
            .limited(&self.limit)
            .await;
        applied(result)
    }
}
