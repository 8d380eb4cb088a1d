//! The DynamoDB adapter.
//!
//! Seven tables share one prefix (see [`schema`] for the layout and the
//! README for why). Every state change that carries out a command is a
//! single `TransactWriteItems` whose last item moves the command to its
//! terminal status on condition that it is still unfinished; capacity is a
//! condition on an inventory shard in the same transaction.

mod codec;
mod commands;
mod events;
mod limit;
mod notifications;
mod orders;
pub mod schema;
pub mod shards;
mod webhooks;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region, timeout::TimeoutConfig};
use aws_sdk_dynamodb::{
    Client,
    config::Credentials,
    error::{ProvideErrorMetadata, SdkError},
    operation::transact_write_items::TransactWriteItemsError,
    types::TransactWriteItem,
};

use eventsys_store::{StoreError, ports::Store};
use eventsys_telemetry::metrics;

use crate::limit::{AdaptiveLimit, Limited};
pub use schema::Tables;

/// How to reach DynamoDB, and how to lay events out in it.
#[derive(Clone, Debug)]
pub struct DynamoConfig {
    /// An endpoint override for DynamoDB-compatible local servers.
    pub endpoint: Option<String>,
    /// Prepended to every table name.
    pub table_prefix: String,
    /// Use fixed dummy credentials and a default region, for local servers
    /// that accept anything, instead of the AWS credential chain.
    pub local_credentials: bool,
    /// An event gets one counter item per this many seats (see [`shards`]).
    pub seats_per_shard: u32,
}

impl Default for DynamoConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            table_prefix: String::new(),
            local_credentials: false,
            seats_per_shard: shards::DEFAULT_SEATS_PER_SHARD,
        }
    }
}

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    tables: Arc<Tables>,
    seats_per_shard: u32,
    /// Shared by every clone: one limit per process.
    limit: Arc<AdaptiveLimit>,
    /// Where the client's credentials come from, for [`Self::check`].
    credentials: Option<aws_sdk_dynamodb::config::SharedCredentialsProvider>,
}

impl DynamoStore {
    pub async fn connect(config: &DynamoConfig) -> Self {
        // Bounded waits: a frozen or partitioned store must surface as an
        // error the caller can retry, not as a request that hangs forever.
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(2))
            .operation_attempt_timeout(Duration::from_secs(4))
            .operation_timeout(Duration::from_secs(10))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts);
        if let Some(endpoint) = &config.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        if config.local_credentials {
            loader = loader
                .credentials_provider(Credentials::new("local", "local", None, None, "eventsys"))
                .region(Region::new("us-east-1"));
        }
        let shared = loader.load().await;
        Self {
            client: Client::new(&shared),
            tables: Arc::new(Tables::new(&config.table_prefix)),
            seats_per_shard: config.seats_per_shard,
            limit: Arc::default(),
            credentials: shared.credentials_provider(),
        }
    }

    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// Runs a transaction; a cancellation caused only by failed conditions
    /// comes back as which items' conditions failed, in request order.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), TxFailure> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .limited(&self.limit)
            .await;
        let Err(err) = result else { return Ok(()) };
        if let SdkError::ServiceError(ctx) = &err
            && let TransactWriteItemsError::TransactionCanceledException(t) = ctx.err()
        {
            let codes: Vec<&str> = t
                .cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None"))
                .collect();
            if codes
                .iter()
                .all(|c| matches!(*c, "None" | "ConditionalCheckFailed"))
            {
                return Err(TxFailure::Conditions(
                    codes
                        .iter()
                        .map(|c| *c == "ConditionalCheckFailed")
                        .collect(),
                ));
            }
            // TransactionConflict, throttling and the like: worth another try.
            return Err(TxFailure::Store(StoreError::unavailable(format!(
                "transaction cancelled: {}",
                codes.join(", ")
            ))));
        }
        Err(TxFailure::Store(classify(err)))
    }
}

/// Why a transaction did not apply.
enum TxFailure {
    /// Conditions failed; `true` marks the items whose condition failed.
    Conditions(Vec<bool>),
    Store(StoreError),
}

impl TxFailure {
    /// Whether the condition of the item at `index` failed; negative indexes
    /// count from the end.
    fn failed_at(conditions: &[bool], index: isize) -> bool {
        let i = if index < 0 {
            conditions.len().checked_sub(index.unsigned_abs())
        } else {
            Some(index.unsigned_abs())
        };
        i.and_then(|i| conditions.get(i)).copied().unwrap_or(false)
    }
}

/// What DynamoDB answers when a table or account is over its capacity.
const THROTTLING_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "ThrottlingException",
];

/// Errors other than throttling that DynamoDB documents as retryable.
const TRANSIENT_CODES: &[&str] = &[
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
    "TransactionConflictException",
    "LimitExceededException",
];

/// Sorts an SDK error into transient trouble or a refusal, keeping it as
/// the cause.
fn classify<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let (error, kind) = match &err {
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code().unwrap_or("Unknown");
            if code == "ResourceNotFoundException" {
                let missing = StoreError::unavailable("a table is missing (run `eventsys init`)");
                (missing, "missing_table")
            } else if THROTTLING_CODES.contains(&code) {
                (
                    StoreError::unavailable(format!("DynamoDB answered {code}")),
                    "throttled",
                )
            } else if TRANSIENT_CODES.contains(&code) {
                (
                    StoreError::unavailable(format!("DynamoDB answered {code}")),
                    "unavailable",
                )
            } else {
                (
                    StoreError::rejected(format!("DynamoDB answered {code}")),
                    "rejected",
                )
            }
        }
        SdkError::ConstructionFailure(_) => (
            StoreError::rejected("the request could not be built"),
            "rejected",
        ),
        SdkError::TimeoutError(_) => (
            StoreError::unavailable("DynamoDB did not answer in time"),
            "unavailable",
        ),
        _ => (
            StoreError::unavailable("DynamoDB could not be reached"),
            "unavailable",
        ),
    };
    metrics::store_error(kind);
    error.because(err)
}

/// Whether a conditional write applied: `false` when only its condition
/// failed, an error for anything else.
fn applied<T, E, R>(result: Result<T, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(err)
            if err.as_service_error().and_then(ProvideErrorMetadata::code)
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(false)
        }
        Err(err) => Err(classify(err)),
    }
}

/// Request builders fail only when a required field is missing: a bug in
/// this adapter, never trouble in the store.
trait Built<T> {
    fn built(self) -> Result<T, StoreError>;
}

impl<T> Built<T> for Result<T, aws_sdk_dynamodb::error::BuildError> {
    fn built(self) -> Result<T, StoreError> {
        self.map_err(|err| StoreError::rejected("malformed request").because(err))
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.client
            .describe_table()
            .table_name(&self.tables.commands)
            // A probe does not queue behind the work it reports on.
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}

impl DynamoStore {
    /// One record by its key, read consistently.
    async fn get_record<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        key: &str,
        value: impl Into<String>,
    ) -> Result<Option<T>, StoreError> {
        self.get_item(table, key, value)
            .await?
            .map(codec::from_item)
            .transpose()
    }

    /// One item by its key, read consistently.
    async fn get_item(
        &self,
        table: &str,
        key: &str,
        value: impl Into<String>,
    ) -> Result<Option<codec::Item>, StoreError> {
        let got = self
            .client
            .get_item()
            .table_name(table)
            .key(key, codec::s(value))
            .consistent_read(true)
            .send()
            .limited(&self.limit)
            .await
            .map_err(classify)?;
        Ok(got.item)
    }

    /// Runs one page of `query`, starting where `page` says.
    async fn query_page<T: serde::de::DeserializeOwned>(
        &self,
        query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
        page: &eventsys_store::PageRequest,
    ) -> Result<eventsys_store::Page<T>, StoreError> {
        let eventsys_store::Page { items, next } = self.query_items(query, page).await?;
        let items = items
            .into_iter()
            .map(codec::from_item)
            .collect::<Result<_, _>>()?;
        Ok(eventsys_store::Page { items, next })
    }

    /// Like [`Self::query_page`], the items as they are stored.
    async fn query_items(
        &self,
        query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
        page: &eventsys_store::PageRequest,
    ) -> Result<eventsys_store::Page<codec::Item>, StoreError> {
        let start = page
            .after
            .as_deref()
            .map(codec::decode_position)
            .transpose()?;
        let out = query
            .limit(i32::try_from(page.limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .limited(&self.limit)
            .await
            .map_err(classify)?;
        let next = out
            .last_evaluated_key
            .as_ref()
            .map(codec::encode_position)
            .transpose()?;
        Ok(eventsys_store::Page {
            items: out.items.unwrap_or_default(),
            next,
        })
    }

    /// Runs a transaction whose last item is a command's completion: a
    /// failed completion condition means the command had finished before;
    /// any other failed condition is `conflict`.
    async fn effect(
        &self,
        items: Vec<TransactWriteItem>,
        conflict: impl FnOnce() -> String,
    ) -> Result<eventsys_store::Finished, StoreError> {
        match self.transact(items).await {
            Ok(()) => Ok(eventsys_store::Finished::Now),
            Err(TxFailure::Conditions(c)) if TxFailure::failed_at(&c, -1) => {
                Ok(eventsys_store::Finished::Already)
            }
            Err(TxFailure::Conditions(_)) => Err(StoreError::rejected(conflict())),
            Err(TxFailure::Store(e)) => Err(e),
        }
    }

    /// The items of `index` on `table` that became due before `before`,
    /// from every partition of it, soonest first, at most `limit`.
    async fn due<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        index: &schema::TimeIndex,
        before: eventsys_messages::Timestamp,
        limit: u32,
    ) -> Result<Vec<T>, StoreError> {
        let mut due: Vec<(String, codec::Item)> = Vec::new();
        for shard in 0..index.shards {
            let out = self
                .client
                .query()
                .table_name(table)
                .index_name(index.name)
                .key_condition_expression("#h = :h AND #r < :before")
                .expression_attribute_names("#h", index.hash)
                .expression_attribute_names("#r", index.range)
                .expression_attribute_values(":h", codec::s(index.shard_key(shard)))
                .expression_attribute_values(":before", codec::s(eventsys_store::sortable(before)))
                .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                .send()
                .limited(&self.limit)
                .await
                .map_err(classify)?;
            for item in out.items.unwrap_or_default() {
                due.push((codec::string(&item, index.range)?.to_owned(), item));
            }
        }
        due.sort_by(|(a, _), (b, _)| a.cmp(b));
        due.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        due.into_iter()
            .map(|(_, item)| codec::from_item(item))
            .collect()
    }

    /// `refusal`, decided from a read before writing, unless `done`'s
    /// command had finished before: then `already` is the answer, whatever
    /// the record became since (a redelivery answers as the first did).
    async fn unless_done<T>(
        &self,
        done: &eventsys_store::Completion,
        refusal: T,
        already: T,
    ) -> Result<T, StoreError> {
        use eventsys_store::CommandLog;
        let finished = self
            .command(done.command_id)
            .await?
            .is_some_and(|c| !c.is_unfinished());
        Ok(if finished { already } else { refusal })
    }

    /// Writes items (puts and deletes) in batches of 25, the most DynamoDB
    /// takes at once, sending again whatever it leaves unprocessed.
    async fn batch_write(
        &self,
        table: &str,
        requests: Vec<aws_sdk_dynamodb::types::WriteRequest>,
    ) -> Result<(), StoreError> {
        for chunk in requests.chunks(25) {
            let mut pending = chunk.to_vec();
            let mut round = 0u32;
            while !pending.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(table, pending)
                    .send()
                    .limited(&self.limit)
                    .await
                    .map_err(classify)?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(table))
                    .unwrap_or_default();
                if !pending.is_empty() {
                    round += 1;
                    if round > 8 {
                        return Err(StoreError::unavailable("batch write kept being throttled"));
                    }
                    tokio::time::sleep(Duration::from_millis(20 << round.min(5))).await;
                }
            }
        }
        Ok(())
    }

    /// Reads items by key, in any order, however many there are.
    async fn batch_get(
        &self,
        table: &str,
        keys: Vec<codec::Item>,
    ) -> Result<Vec<codec::Item>, StoreError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut found = Vec::with_capacity(keys.len());
        // DynamoDB takes at most 100 keys per call.
        for chunk in keys.chunks(100) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(true)
                    .build()
                    .built()?,
            );
            let mut round = 0u32;
            while let Some(request) = pending.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(table, request)
                    .send()
                    .limited(&self.limit)
                    .await
                    .map_err(classify)?;
                if let Some(items) = out.responses.and_then(|mut r| r.remove(table)) {
                    found.extend(items);
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(table))
                    .filter(|k| !k.keys().is_empty());
                if pending.is_some() {
                    round += 1;
                    if round > 8 {
                        return Err(StoreError::unavailable("batch read kept being throttled"));
                    }
                    tokio::time::sleep(Duration::from_millis(20 << round.min(5))).await;
                }
            }
        }
        Ok(found)
    }
}
