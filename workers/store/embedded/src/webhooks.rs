//! Webhook endpoints and their deliveries in the embedded store. One write
//! transaction at a time makes numbering a delivery and guarding its
//! occurrence a single step; an index of what is still owed makes finding
//! the next delivery one read, however long the endpoint's history.

use async_trait::async_trait;
use eventsys_messages::{Timestamp, UserId, WebhookId};

use redb::WriteTransaction;

use crate::{
    DELIVERIES, EmbeddedStore, LEASES, OCCURRENCES, OWED, OWING, WEBHOOKS, WEBHOOKS_BY_ORGANIZER,
    get, newest_first, open, open_read, put, unavailable,
};
use eventsys_store::{
    StoreError,
    ports::WebhookStore,
    records::{DeliveryRecord, DeliveryStatus, Page, PageRequest, SigningSecret, WebhookRecord},
};

fn delivery_key(id: WebhookId, sequence: u64) -> String {
    format!("{id}\0{sequence:020}")
}

/// Writes `delivery`, and keeps it in the owed index exactly while it is.
fn put_delivery(txn: &WriteTransaction, delivery: &DeliveryRecord) -> Result<(), StoreError> {
    let key = delivery_key(delivery.webhook_id, delivery.sequence);
    put(&mut open(txn, DELIVERIES)?, &key, delivery)?;
    let mut owed = open(txn, OWED)?;
    if delivery.status == DeliveryStatus::Pending {
        put(&mut owed, &key, &delivery.sequence)
    } else {
        owed.remove(key.as_str()).map_err(unavailable)?;
        Ok(())
    }
}

/// The key range of one endpoint's entries.
fn range_of(id: WebhookId) -> (String, String) {
    (format!("{id}\0"), format!("{id}\u{1}"))
}

#[async_trait]
impl WebhookStore for EmbeddedStore {
    async fn add_webhook(&self, webhook: &WebhookRecord) -> Result<(), StoreError> {
        let webhook = webhook.clone();
        self.write(move |txn| {
            let id = webhook.webhook_id.to_string();
            put(&mut open(txn, WEBHOOKS)?, &id, &webhook)?;
            let by_organizer = format!("{}\0{id}", webhook.organizer_id);
            put(&mut open(txn, WEBHOOKS_BY_ORGANIZER)?, &by_organizer, &id)
        })
        .await
    }

    async fn webhook(&self, id: WebhookId) -> Result<Option<WebhookRecord>, StoreError> {
        self.read(move |txn| get(&open_read(txn, WEBHOOKS)?, &id.to_string()))
            .await
    }

    async fn webhooks_of(&self, organizer: &UserId) -> Result<Vec<WebhookRecord>, StoreError> {
        let organizer = organizer.clone();
        self.read(move |txn| {
            let (start, end) = (format!("{organizer}\0"), format!("{organizer}\u{1}"));
            let index = open_read(txn, WEBHOOKS_BY_ORGANIZER)?;
            let webhooks = open_read(txn, WEBHOOKS)?;
            let mut found = Vec::new();
            for entry in index
                .range::<&str>(start.as_str()..end.as_str())
                .map_err(unavailable)?
            {
                let (key, _) = entry.map_err(unavailable)?;
                let id = key
                    .value()
                    .rsplit('\0')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                if let Some(webhook) = get::<WebhookRecord>(&webhooks, &id)? {
                    found.push(webhook);
                }
            }
            Ok(found)
        })
        .await
    }

    async fn set_secrets(
        &self,
        id: WebhookId,
        secrets: &[SigningSecret],
    ) -> Result<bool, StoreError> {
        let secrets = secrets.to_vec();
        self.write(move |txn| {
            let mut table = open(txn, WEBHOOKS)?;
            let Some(mut webhook) = get::<WebhookRecord>(&table, &id.to_string())? else {
                return Ok(false);
            };
            webhook.secrets = secrets.clone();
            put(&mut table, &id.to_string(), &webhook)?;
            Ok(true)
        })
        .await
    }

    async fn remove_webhook(&self, id: WebhookId) -> Result<bool, StoreError> {
        self.write(move |txn| {
            let mut table = open(txn, WEBHOOKS)?;
            let Some(webhook) = get::<WebhookRecord>(&table, &id.to_string())? else {
                return Ok(false);
            };
            table.remove(id.to_string().as_str()).map_err(unavailable)?;
            let by_organizer = format!("{}\0{id}", webhook.organizer_id);
            open(txn, WEBHOOKS_BY_ORGANIZER)?
                .remove(by_organizer.as_str())
                .map_err(unavailable)?;
            for index in [OWING, LEASES] {
                open(txn, index)?
                    .remove(id.to_string().as_str())
                    .map_err(unavailable)?;
            }
            Ok(true)
        })
        .await
    }

    async fn owe(&self, delivery: &DeliveryRecord) -> Result<Option<u64>, StoreError> {
        let delivery = delivery.clone();
        self.write(move |txn| {
            let id = delivery.webhook_id;
            let mut webhooks = open(txn, WEBHOOKS)?;
            let Some(mut webhook) = get::<WebhookRecord>(&webhooks, &id.to_string())? else {
                return Ok(None);
            };
            let mut occurrences = open(txn, OCCURRENCES)?;
            let guard = format!("{id}\0{}", delivery.occurrence_id);
            if get::<u64>(&occurrences, &guard)?.is_some() {
                return Ok(None);
            }
            let sequence = webhook.next_sequence;
            webhook.next_sequence += 1;
            webhook.mark += 1;
            put(&mut webhooks, &id.to_string(), &webhook)?;
            put(&mut occurrences, &guard, &sequence)?;
            put(&mut open(txn, OWING)?, &id.to_string(), &())?;
            let numbered = DeliveryRecord {
                sequence,
                ..delivery.clone()
            };
            put_delivery(txn, &numbered)?;
            Ok(Some(sequence))
        })
        .await
    }

    async fn deliveries(
        &self,
        id: WebhookId,
        request: &PageRequest,
    ) -> Result<Page<DeliveryRecord>, StoreError> {
        let request = request.clone();
        self.read(move |txn| {
            let (start, end) = range_of(id);
            newest_first(&open_read(txn, DELIVERIES)?, (&start, &end), &request)
        })
        .await
    }

    async fn delivery(
        &self,
        id: WebhookId,
        sequence: u64,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        self.read(move |txn| get(&open_read(txn, DELIVERIES)?, &delivery_key(id, sequence)))
            .await
    }

    async fn next_owed(&self, id: WebhookId) -> Result<Option<DeliveryRecord>, StoreError> {
        self.read(move |txn| {
            let (start, end) = range_of(id);
            let first = open_read(txn, OWED)?
                .range::<&str>(start.as_str()..end.as_str())
                .map_err(unavailable)?
                .next()
                .transpose()
                .map_err(unavailable)?
                .map(|(key, _)| key.value().to_owned());
            match first {
                Some(key) => get(&open_read(txn, DELIVERIES)?, &key),
                None => Ok(None),
            }
        })
        .await
    }

    async fn record_attempt(&self, delivery: &DeliveryRecord) -> Result<bool, StoreError> {
        let delivery = delivery.clone();
        self.write(move |txn| {
            let key = delivery_key(delivery.webhook_id, delivery.sequence);
            // Read before writing: redb opens a table once at a time.
            let stored = get::<DeliveryRecord>(&open(txn, DELIVERIES)?, &key)?;
            if stored.is_none_or(|d| d.status != DeliveryStatus::Pending) {
                return Ok(false);
            }
            put_delivery(txn, &delivery)?;
            Ok(true)
        })
        .await
    }

    async fn replay(
        &self,
        id: WebhookId,
        sequence: u64,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.write(move |txn| {
            let key = delivery_key(id, sequence);
            let Some(mut delivery) = get::<DeliveryRecord>(&open(txn, DELIVERIES)?, &key)? else {
                return Ok(false);
            };
            let mut webhooks = open(txn, WEBHOOKS)?;
            let Some(mut webhook) = get::<WebhookRecord>(&webhooks, &id.to_string())? else {
                return Ok(false);
            };
            webhook.mark += 1;
            put(&mut webhooks, &id.to_string(), &webhook)?;
            drop(webhooks);
            put(&mut open(txn, OWING)?, &id.to_string(), &())?;
            delivery.status = DeliveryStatus::Pending;
            delivery.next_attempt_at = Some(at);
            delivery.replayed_at = Some(at);
            delivery.replays += 1;
            put_delivery(txn, &delivery)?;
            Ok(true)
        })
        .await
    }

    async fn owing_webhooks(&self, limit: u32) -> Result<Vec<WebhookId>, StoreError> {
        self.read(move |txn| {
            let mut found = Vec::new();
            for entry in open_read(txn, OWING)?
                .range::<&str>(..)
                .map_err(unavailable)?
                .take(limit as usize)
            {
                let (key, _) = entry.map_err(unavailable)?;
                if let Ok(id) = key.value().parse::<WebhookId>() {
                    found.push(id);
                }
            }
            Ok(found)
        })
        .await
    }

    async fn lease_webhook(
        &self,
        id: WebhookId,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let holder = holder.to_owned();
        self.write(move |txn| {
            if get::<WebhookRecord>(&open(txn, WEBHOOKS)?, &id.to_string())?.is_none() {
                return Ok(false);
            }
            let mut leases = open(txn, LEASES)?;
            let held = get::<(String, Timestamp)>(&leases, &id.to_string())?;
            if held.is_some_and(|(other, end)| other != holder && end >= now) {
                return Ok(false);
            }
            put(&mut leases, &id.to_string(), &(holder.clone(), until))?;
            Ok(true)
        })
        .await
    }

    async fn settle_webhook(
        &self,
        id: WebhookId,
        holder: &str,
        seen: u64,
    ) -> Result<bool, StoreError> {
        let holder = holder.to_owned();
        self.write(move |txn| {
            let mark =
                get::<WebhookRecord>(&open(txn, WEBHOOKS)?, &id.to_string())?.map(|w| w.mark);
            let mut leases = open(txn, LEASES)?;
            let held = get::<(String, Timestamp)>(&leases, &id.to_string())?;
            if mark.is_some_and(|mark| mark != seen)
                || held.is_none_or(|(other, _)| other != holder)
            {
                return Ok(false);
            }
            leases
                .remove(id.to_string().as_str())
                .map_err(unavailable)?;
            open(txn, OWING)?
                .remove(id.to_string().as_str())
                .map_err(unavailable)?;
            Ok(true)
        })
        .await
    }
}
