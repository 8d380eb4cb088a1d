//! The table layout, designed for the API's access patterns (no `Scan` on
//! any request path), and its idempotent creation and migration: a table
//! made by an earlier version gains the indexes and TTL this one reads.
//!
//! | table | key | indexes | serves |
//! |---|---|---|---|
//! | `commands` | `command_id` | `pending` (`pending`, `pending_sort`), sparse: `accepted` only, in 8 shards | command status, exactly-once guard, re-publishing; TTL `forget_at_epoch` once finished |
//! | `idempotency` | `key_hash` | TTL `expires_at_epoch` | `Idempotency-Key` replays |
//! | `events` | `event_id` | `by_start` (`listing`, `listing_sort`) and `endings` (`ending_key`, `ending_sort`), sparse: published only | event reads, listing, ending events on time |
//! | `inventory` | `shard_id` = `{event_id}#{index}` | | capacity conditions |
//! | `orders` | `order_id` | `holds` (`hold_key`, `hold_sort`), sparse: `pending_payment` only, in 8 shards | order reads, hold expiry |
//! | `tickets` | `ticket_id` | `by_holder` (`holder_id`, `holder_sort`); `by_event` (`event_id`, `ticket_id`) | ticket reads, my tickets, check-in; telling every holder of an event |
//! | `notifications` | `user_id`, `notification_id` | | a user's inbox, newest first |
//! | `waitlist` | `event_id`, `user_id` | `waiting` (`waiting_event`, `position`), sparse: still waiting | a user's place; the first in line |
//! | `webhooks` | `webhook_id` | `by_organizer` (`organizer_id`, `webhook_id`); `owing` (`owing`, `webhook_id`), sparse: owed something | an organizer's endpoints; what dispatchers take up after a restart |
//! | `webhook_deliveries` | `webhook_id`, `position` (`d#{sequence}`, or `o#{occurrence}` for a guard) | `owed` (`webhook_id`, `owed`), sparse: still owed | the delivery log, newest first; what to send next; each occurrence owed once |

use std::time::Duration;

use aws_sdk_dynamodb::{
    error::{ProvideErrorMetadata, SdkError},
    types::{
        AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
        GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType, Projection,
        ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
        TimeToLiveStatus,
    },
};

use crate::{Built, DynamoStore, classify};
use eventsys_store::StoreError;

pub const BY_START_INDEX: &str = "by_start";
pub const BY_HOLDER_INDEX: &str = "by_holder";
pub const BY_EVENT_INDEX: &str = "by_event";
/// Those still waiting for an event, in list order (sparse).
pub const WAITING_INDEX: &str = "waiting";
pub const BY_ORGANIZER_INDEX: &str = "by_organizer";
/// An endpoint's deliveries still owed, in sequence order (sparse).
pub const OWED_INDEX: &str = "owed";
/// Endpoints owed something, until a dispatcher settles them (sparse).
pub const OWING_INDEX: &str = "owing";

/// A sparse index of what becomes due at a time (the sort key starts with
/// it), spread over `shards` partition keys `{prefix}#{n}` so that it never
/// becomes a hot partition; an item is in it while it has the attributes.
pub struct TimeIndex {
    pub name: &'static str,
    pub hash: &'static str,
    pub range: &'static str,
    prefix: &'static str,
    pub shards: u8,
}

impl TimeIndex {
    /// The partition key of the thing whose id ends with `last_byte`.
    pub fn key(&self, last_byte: u8) -> String {
        self.shard_key(last_byte % self.shards)
    }

    pub fn shard_key(&self, shard: u8) -> String {
        format!("{}#{shard}", self.prefix)
    }
}

/// Commands still `accepted`, by the time they became so: re-publishing.
pub const PENDING: TimeIndex = TimeIndex {
    name: "pending",
    hash: "pending",
    range: "pending_sort",
    prefix: "accepted",
    shards: 8,
};
/// Holds, by their expiry.
pub const HOLDS: TimeIndex = TimeIndex {
    name: "holds",
    hash: "hold_key",
    range: "hold_sort",
    prefix: "held",
    shards: 8,
};
/// Published events, by their end.
pub const ENDINGS: TimeIndex = TimeIndex {
    name: "endings",
    hash: "ending_key",
    range: "ending_sort",
    prefix: "ending",
    shards: 4,
};
/// The TTL attribute (seconds since the epoch) of claims and of finished
/// commands: DynamoDB deletes the item some time after.
pub const IDEMPOTENCY_TTL_ATTRIBUTE: &str = "expires_at_epoch";
pub const COMMAND_TTL_ATTRIBUTE: &str = "forget_at_epoch";

/// The names of the tables, prefix included.
#[derive(Clone, Debug)]
pub struct Tables {
    pub commands: String,
    pub idempotency: String,
    pub events: String,
    pub inventory: String,
    pub orders: String,
    pub tickets: String,
    pub notifications: String,
    pub waitlist: String,
    pub webhooks: String,
    pub deliveries: String,
}

impl Tables {
    pub fn new(prefix: &str) -> Self {
        let name = |table: &str| format!("{prefix}{table}");
        Self {
            commands: name("commands"),
            idempotency: name("idempotency"),
            events: name("events"),
            inventory: name("inventory"),
            orders: name("orders"),
            tickets: name("tickets"),
            notifications: name("notifications"),
            waitlist: name("waitlist"),
            webhooks: name("webhooks"),
            deliveries: name("webhook_deliveries"),
        }
    }

    pub fn all(&self) -> [&str; 10] {
        [
            &self.commands,
            &self.idempotency,
            &self.events,
            &self.inventory,
            &self.orders,
            &self.tickets,
            &self.notifications,
            &self.waitlist,
            &self.webhooks,
            &self.deliveries,
        ]
    }
}

/// Whether DynamoDB refused `err` with the error code `code`.
fn answered<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>, code: &str) -> bool {
    err.as_service_error().and_then(|e| e.code()) == Some(code)
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .built()
}

/// Every key attribute is a string.
fn attribute(name: &str) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .built()
}

/// An index's keys, and its projection: every attribute, so that a query
/// on it never reads the table again.
fn index_keys(hash: &str, range: &str) -> Result<(Vec<KeySchemaElement>, Projection), StoreError> {
    let keys = vec![key(hash, KeyType::Hash)?, key(range, KeyType::Range)?];
    let projection = Projection::builder()
        .projection_type(ProjectionType::All)
        .build();
    Ok((keys, projection))
}

/// One table's key schema and secondary indexes (name, hash, range).
struct TableDef<'a> {
    name: &'a str,
    hash: &'a str,
    range: Option<&'a str>,
    indexes: &'a [(&'a str, &'a str, &'a str)],
}

impl DynamoStore {
    /// Creates every table that does not exist yet, adds the indexes and
    /// TTL an existing one lacks, and waits until all are active. Safe to
    /// run any number of times, from any number of replicas.
    pub async fn create_tables(&self) -> Result<(), StoreError> {
        let t = &self.tables;
        let defs = [
            TableDef {
                name: &t.commands,
                hash: "command_id",
                range: None,
                indexes: &[(PENDING.name, PENDING.hash, PENDING.range)],
            },
            TableDef {
                name: &t.idempotency,
                hash: "key_hash",
                range: None,
                indexes: &[],
            },
            TableDef {
                name: &t.events,
                hash: "event_id",
                range: None,
                indexes: &[
                    (BY_START_INDEX, "listing", "listing_sort"),
                    (ENDINGS.name, ENDINGS.hash, ENDINGS.range),
                ],
            },
            TableDef {
                name: &t.inventory,
                hash: "shard_id",
                range: None,
                indexes: &[],
            },
            TableDef {
                name: &t.orders,
                hash: "order_id",
                range: None,
                indexes: &[(HOLDS.name, HOLDS.hash, HOLDS.range)],
            },
            TableDef {
                name: &t.tickets,
                hash: "ticket_id",
                range: None,
                indexes: &[
                    (BY_HOLDER_INDEX, "holder_id", "holder_sort"),
                    (BY_EVENT_INDEX, "event_id", "ticket_id"),
                ],
            },
            TableDef {
                name: &t.notifications,
                hash: "user_id",
                range: Some("notification_id"),
                indexes: &[],
            },
            TableDef {
                name: &t.waitlist,
                hash: "event_id",
                range: Some("user_id"),
                indexes: &[(WAITING_INDEX, "waiting_event", "position")],
            },
            TableDef {
                name: &t.webhooks,
                hash: "webhook_id",
                range: None,
                indexes: &[
                    (BY_ORGANIZER_INDEX, "organizer_id", "webhook_id"),
                    (OWING_INDEX, "owing", "webhook_id"),
                ],
            },
            TableDef {
                name: &t.deliveries,
                hash: "webhook_id",
                range: Some("position"),
                indexes: &[(OWED_INDEX, "webhook_id", "owed")],
            },
        ];
        for def in &defs {
            self.create_table(def).await?;
        }
        for def in &defs {
            self.wait_until_active(def.name).await?;
            self.add_missing_indexes(def).await?;
        }
        self.enable_ttl(&self.tables.idempotency, IDEMPOTENCY_TTL_ATTRIBUTE)
            .await?;
        self.enable_ttl(&self.tables.commands, COMMAND_TTL_ATTRIBUTE)
            .await
    }

    async fn create_table(&self, def: &TableDef<'_>) -> Result<(), StoreError> {
        let mut request = self
            .client
            .create_table()
            .table_name(def.name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(def.hash, KeyType::Hash)?)
            .attribute_definitions(attribute(def.hash)?);
        if let Some(range) = def.range {
            request = request
                .key_schema(key(range, KeyType::Range)?)
                .attribute_definitions(attribute(range)?);
        }
        let mut defined = vec![def.hash];
        defined.extend(def.range);
        for &(index, hash, range) in def.indexes {
            for name in [hash, range] {
                if !defined.contains(&name) {
                    request = request.attribute_definitions(attribute(name)?);
                    defined.push(name);
                }
            }
            let (key_schema, projection) = index_keys(hash, range)?;
            request = request.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index)
                    .set_key_schema(Some(key_schema))
                    .projection(projection)
                    .build()
                    .built()?,
            );
        }
        match request.send().await {
            Ok(_) => {
                tracing::info!(table = def.name, "created table");
                Ok(())
            }
            Err(err) if answered(&err, "ResourceInUseException") => Ok(()),
            Err(err) => Err(classify(err)),
        }
    }

    /// Adds the indexes of `def` that its table lacks, one at a time as
    /// DynamoDB requires. The table serves meanwhile; an index is usable
    /// once backfilled, which [`Self::wait_until_active`] waits for.
    async fn add_missing_indexes(&self, def: &TableDef<'_>) -> Result<(), StoreError> {
        let described = self
            .client
            .describe_table()
            .table_name(def.name)
            .send()
            .await
            .map_err(classify)?;
        let existing: Vec<String> = described
            .table()
            .map(|t| t.global_secondary_indexes())
            .unwrap_or_default()
            .iter()
            .filter_map(|i| i.index_name().map(str::to_owned))
            .collect();
        for &(index, hash, range) in def.indexes {
            if existing.iter().any(|name| name == index) {
                continue;
            }
            let (key_schema, projection) = index_keys(hash, range)?;
            let create = CreateGlobalSecondaryIndexAction::builder()
                .index_name(index)
                .set_key_schema(Some(key_schema))
                .projection(projection)
                .build()
                .built()?;
            self.client
                .update_table()
                .table_name(def.name)
                .attribute_definitions(attribute(hash)?)
                .attribute_definitions(attribute(range)?)
                .global_secondary_index_updates(
                    GlobalSecondaryIndexUpdate::builder().create(create).build(),
                )
                .send()
                .await
                .map_err(classify)?;
            tracing::info!(table = def.name, index, "adding index");
            self.wait_until_active(def.name).await?;
        }
        Ok(())
    }

    /// Waits until the table and every index of it are active.
    async fn wait_until_active(&self, table: &str) -> Result<(), StoreError> {
        for _ in 0..1200 {
            let described = self
                .client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(classify)?;
            let Some(description) = described.table() else {
                break;
            };
            let indexes_ready = description
                .global_secondary_indexes()
                .iter()
                .all(|i| i.index_status().is_none_or(|s| *s == IndexStatus::Active));
            if description.table_status() == Some(&TableStatus::Active) && indexes_ready {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(StoreError::unavailable(format!(
            "table {table} or an index of it did not become active"
        )))
    }

    /// Turns on `table`'s TTL on `attribute`, also on a table made by an
    /// earlier version. A TTL on another attribute is not replaced: DynamoDB
    /// allows one change an hour, so an operator decides.
    async fn enable_ttl(&self, table: &str, attribute: &str) -> Result<(), StoreError> {
        let current = self
            .client
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .map_err(classify)?;
        if let Some(ttl) = current.time_to_live_description() {
            let on = matches!(
                ttl.time_to_live_status(),
                Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
            );
            match ttl.attribute_name() {
                Some(name) if on && name == attribute => return Ok(()),
                Some(name) if on => {
                    return Err(StoreError::rejected(format!(
                        "table {table} expires items on {name}, this version on {attribute}: \
                         disable its TTL, then run `eventsys init` again"
                    )));
                }
                _ => {}
            }
        }
        let spec = TimeToLiveSpecification::builder()
            .attribute_name(attribute)
            .enabled(true)
            .build()
            .built()?;
        match self
            .client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(spec)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Enabling it twice is refused with a ValidationException.
            Err(err) if answered(&err, "ValidationException") => Ok(()),
            Err(err) => Err(classify(err)),
        }
    }

    /// Whether this store can serve a role: credentials found, every table
    /// there. Each failure says what to do; only an unreachable service is
    /// worth waiting for.
    pub async fn check(&self) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::config::ProvideCredentials;

        const SET_CREDENTIALS: &str = "on AWS, give the pods a role (IRSA) or set AWS_PROFILE or \
             AWS_ACCESS_KEY_ID; against a local server, set EVENTSYS_DYNAMODB_ENDPOINT";
        let provider = self.credentials.as_ref().ok_or_else(|| {
            StoreError::rejected(format!(
                "no AWS credentials are configured: {SET_CREDENTIALS}"
            ))
        })?;
        provider.provide_credentials().await.map_err(|err| {
            StoreError::rejected(format!(
                "no AWS credentials could be loaded: {SET_CREDENTIALS}"
            ))
            .because(err)
        })?;
        for table in self.tables.all() {
            let described = self.client.describe_table().table_name(table).send().await;
            if let Err(err) = described {
                if answered(&err, "ResourceNotFoundException") {
                    return Err(StoreError::rejected(format!(
                        "table {table} does not exist: run `eventsys init` with the same \
                         EVENTSYS_TABLE_PREFIX and region first"
                    )));
                }
                return Err(classify(err));
            }
        }
        Ok(())
    }

    /// Deletes every table of this prefix; for tests and resets.
    pub async fn delete_tables(&self) -> Result<(), StoreError> {
        for table in self.tables.all() {
            match self.client.delete_table().table_name(table).send().await {
                Ok(_) => {}
                Err(err) if answered(&err, "ResourceNotFoundException") => {}
                Err(err) => return Err(classify(err)),
            }
        }
        Ok(())
    }
}
