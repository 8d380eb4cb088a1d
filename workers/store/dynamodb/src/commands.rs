//! The command log on DynamoDB: recording, idempotency keys, and the status
//! transitions that guard every effect.

use async_trait::async_trait;
use aws_sdk_dynamodb::{
    operation::update_item::UpdateItemError,
    types::{
        AttributeValue, Delete, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
        TransactWriteItem, Update,
    },
};
use eventsys_messages::{CommandId, CommandStatus, Timestamp};

use crate::{
    Built, DynamoStore, TxFailure, applied, classify,
    codec::{Item, from_item, n, s, to_item, to_value},
    limit::Limited,
    schema::{COMMAND_TTL_ATTRIBUTE, PENDING},
};
use eventsys_store::{
    StoreError,
    ports::{Begun, CommandLog, Finished, Recorded},
    records::{CommandRecord, Completion, IdempotencyClaim},
    sortable,
};

/// Where an `accepted` command sits in the pending index.
fn pending_keys(id: CommandId, at: Timestamp) -> (String, String) {
    (
        PENDING.key(id.0.as_bytes()[15]),
        format!("{}#{id}", sortable(at)),
    )
}

/// The status condition every effect is written under.
const UNFINISHED: &str = "#s IN (:accepted, :processing)";

impl DynamoStore {
    /// The update that ends a command, for use inside an effect's transaction.
    pub(super) fn completion(&self, done: &Completion) -> Result<TransactWriteItem, StoreError> {
        let parts = CompletionParts::new(done)?;
        let update = Update::builder()
            .table_name(&self.tables.commands)
            .key("command_id", s(done.command_id.to_string()))
            .update_expression(parts.expression)
            .condition_expression(UNFINISHED)
            .set_expression_attribute_names(Some(parts.names))
            .set_expression_attribute_values(Some(parts.values))
            .build()
            .built()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    async fn existing_claim(
        &self,
        claim: &IdempotencyClaim,
    ) -> Result<Option<(CommandRecord, bool)>, StoreError> {
        let stored: Option<StoredClaim> = self
            .get_record(
                &self.tables.idempotency,
                "key_hash",
                claim.key_hash.as_str(),
            )
            .await?;
        let Some(stored) = stored.filter(|c| c.expires_at_epoch >= Timestamp::now().as_second())
        else {
            return Ok(None);
        };
        let record = self.command(stored.command_id).await?;
        Ok(record.map(|r| (r, stored.fingerprint == claim.fingerprint)))
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredClaim {
    key_hash: String,
    command_id: CommandId,
    fingerprint: String,
    expires_at_epoch: i64,
}

/// `SET` expression, names and values that write a completion.
struct CompletionParts {
    expression: String,
    names: std::collections::HashMap<String, String>,
    values: Item,
}

impl CompletionParts {
    fn new(done: &Completion) -> Result<Self, StoreError> {
        // DynamoDB's TTL forgets the command once its retention is over.
        let mut expression =
            format!("SET #s = :status, #u = :at, {COMMAND_TTL_ATTRIBUTE} = :forget");
        let remove = " REMOVE pending, pending_sort";
        let mut names: std::collections::HashMap<String, String> =
            [("#s", "status"), ("#u", "updated_at")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into();
        let mut values: Item = [
            (":status", s(done.status.as_str())),
            (":at", s(done.at.to_string())),
            (
                ":forget",
                AttributeValue::N(done.forget_at().as_second().to_string()),
            ),
            (":accepted", s(CommandStatus::Accepted.as_str())),
            (":processing", s(CommandStatus::Processing.as_str())),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .into();
        if let Some(result) = &done.result {
            expression.push_str(", #r = :result");
            names.insert("#r".into(), "result".into());
            values.insert(":result".into(), to_value(result)?);
        }
        if let Some(error) = &done.error {
            expression.push_str(", #e = :error");
            names.insert("#e".into(), "error".into());
            values.insert(":error".into(), to_value(error)?);
        }
        expression.push_str(remove);
        Ok(Self {
            expression,
            names,
            values,
        })
    }
}

#[async_trait]
impl CommandLog for DynamoStore {
    async fn find_claim(&self, claim: &IdempotencyClaim) -> Result<Option<Recorded>, StoreError> {
        Ok(self
            .existing_claim(claim)
            .await?
            .map(|(record, same_request)| Recorded::Existing {
                record: Box::new(record),
                same_request,
            }))
    }

    async fn record_command(
        &self,
        record: &CommandRecord,
        claim: Option<&IdempotencyClaim>,
    ) -> Result<Recorded, StoreError> {
        let mut item = to_item(record)?;
        let (pending, pending_sort) = pending_keys(record.command_id, record.submitted_at);
        item.insert("pending".into(), s(pending));
        item.insert("pending_sort".into(), s(pending_sort));
        let Some(claim) = claim else {
            // One item: a conditional put, not a transaction (which costs
            // twice the capacity on DynamoDB, and far more on local servers;
            // batching several into one transaction was measured slower
            // than putting them side by side: see BENCHMARKS.md).
            let put = self
                .client
                .put_item()
                .table_name(&self.tables.commands)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(command_id)")
                .send()
                .limited(&self.limit)
                .await;
            if applied(put)? {
                return Ok(Recorded::New);
            }
            // The SDK retries a write that timed out; if the first try
            // landed, the retry finds our own record.
            return match self.command(record.command_id).await? {
                Some(existing) if existing.message == record.message => Ok(Recorded::New),
                _ => Err(StoreError::rejected("command id already recorded")),
            };
        };
        let put_command = Put::builder()
            .table_name(&self.tables.commands)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(command_id)")
            .build()
            .built()?;
        let stored = StoredClaim {
            key_hash: claim.key_hash.clone(),
            command_id: record.command_id,
            fingerprint: claim.fingerprint.clone(),
            expires_at_epoch: claim.expires_at.as_second(),
        };
        let put_claim = Put::builder()
            .table_name(&self.tables.idempotency)
            .set_item(Some(to_item(&stored)?))
            // An expired claim that the TTL reaper has not removed yet is free.
            .condition_expression("attribute_not_exists(key_hash) OR expires_at_epoch < :now")
            .expression_attribute_values(":now", n(Timestamp::now().as_second()))
            .build()
            .built()?;
        // A concurrent claim may land between our failed put and our read;
        // a couple of rounds settle it.
        for _ in 0..3 {
            let items = vec![
                TransactWriteItem::builder().put(put_claim.clone()).build(),
                TransactWriteItem::builder()
                    .put(put_command.clone())
                    .build(),
            ];
            match self.transact(items).await {
                Ok(()) => return Ok(Recorded::New),
                Err(TxFailure::Store(e)) => return Err(e),
                Err(TxFailure::Conditions(_)) => match self.existing_claim(claim).await? {
                    // A retried write that found its own first try.
                    Some((existing, _)) if existing.command_id == record.command_id => {
                        return Ok(Recorded::New);
                    }
                    Some((existing, same_request)) => {
                        return Ok(Recorded::Existing {
                            record: Box::new(existing),
                            same_request,
                        });
                    }
                    None => {}
                },
            }
        }
        Err(StoreError::unavailable(
            "idempotency key is being claimed concurrently",
        ))
    }

    async fn withdraw_command(
        &self,
        id: CommandId,
        claim: Option<&IdempotencyClaim>,
    ) -> Result<bool, StoreError> {
        let mut items = vec![
            TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name(&self.tables.commands)
                        .key("command_id", s(id.to_string()))
                        .condition_expression("#s = :accepted")
                        .expression_attribute_names("#s", "status")
                        .expression_attribute_values(
                            ":accepted",
                            s(CommandStatus::Accepted.as_str()),
                        )
                        .build()
                        .built()?,
                )
                .build(),
        ];
        if let Some(claim) = claim {
            items.push(
                TransactWriteItem::builder()
                    .delete(
                        Delete::builder()
                            .table_name(&self.tables.idempotency)
                            .key("key_hash", s(&claim.key_hash))
                            .condition_expression("command_id = :id")
                            .expression_attribute_values(":id", s(id.to_string()))
                            .build()
                            .built()?,
                    )
                    .build(),
            );
        }
        match self.transact(items).await {
            Ok(()) => Ok(true),
            // Gone is withdrawn (a retried delete finds its own first try);
            // there is only a command left if someone started on it.
            Err(TxFailure::Conditions(_)) => Ok(self.command(id).await?.is_none()),
            Err(TxFailure::Store(e)) => Err(e),
        }
    }

    async fn command(&self, id: CommandId) -> Result<Option<CommandRecord>, StoreError> {
        self.get_record(&self.tables.commands, "command_id", id.to_string())
            .await
    }

    async fn begin_processing(
        &self,
        id: CommandId,
        message: &[u8],
        at: Timestamp,
    ) -> Result<Begun, StoreError> {
        // Whatever is not text cannot be a recorded command.
        let Ok(text) = std::str::from_utf8(message) else {
            return Ok(match self.command(id).await? {
                Some(_) => Begun::NotAsRecorded,
                None => Begun::NotRecorded,
            });
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.commands)
            .key("command_id", s(id.to_string()))
            .update_expression(
                "SET #s = :processing, updated_at = :at REMOVE pending, pending_sort",
            )
            .condition_expression("#s = :accepted AND #m = :message")
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#m", "message")
            .expression_attribute_values(":processing", s(CommandStatus::Processing.as_str()))
            .expression_attribute_values(":accepted", s(CommandStatus::Accepted.as_str()))
            .expression_attribute_values(":message", s(text))
            .expression_attribute_values(":at", s(at.to_string()))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .limited(&self.limit)
            .await;
        let found: Option<CommandRecord> = match result {
            Ok(out) => match out.attributes {
                Some(item) => {
                    return Ok(Begun::Recorded {
                        record: Box::new(from_item(item)?),
                        started: true,
                    });
                }
                None => return Err(StoreError::corrupt("an update returned no attributes")),
            },
            Err(err) => {
                let Some(UpdateItemError::ConditionalCheckFailedException(ccf)) =
                    err.as_service_error()
                else {
                    return Err(classify(err));
                };
                match ccf.item().cloned() {
                    Some(item) => Some(from_item(item)?),
                    // Some servers do not return the old item: read it.
                    None => self.command(id).await?,
                }
            }
        };
        Ok(match found {
            None => Begun::NotRecorded,
            Some(record) if !record.is_recorded_as(message) => Begun::NotAsRecorded,
            Some(record) => Begun::Recorded {
                record: Box::new(record),
                started: false,
            },
        })
    }

    async fn stale_commands(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<CommandRecord>, StoreError> {
        self.due(&self.tables.commands, &PENDING, before, limit)
            .await
    }

    async fn reopen_command(&self, id: CommandId) -> Result<bool, StoreError> {
        let now = Timestamp::now();
        let (pending, pending_sort) = pending_keys(id, now);
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.commands)
            .key("command_id", s(id.to_string()))
            .update_expression(
                "SET #s = :accepted, updated_at = :at, pending = :p, pending_sort = :ps REMOVE #e",
            )
            .condition_expression("#s = :failed")
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#e", "error")
            .expression_attribute_values(":accepted", s(CommandStatus::Accepted.as_str()))
            .expression_attribute_values(":failed", s(CommandStatus::Failed.as_str()))
            .expression_attribute_values(":at", s(now.to_string()))
            .expression_attribute_values(":p", s(pending))
            .expression_attribute_values(":ps", s(pending_sort))
            .send()
            .limited(&self.limit)
            .await;
        applied(result)
    }

    async fn forget_expired(&self, _: Timestamp, _: u32) -> Result<u32, StoreError> {
        // The tables' TTL attributes do it, within days of the time.
        Ok(0)
    }

    async fn finish_command(&self, done: &Completion) -> Result<Finished, StoreError> {
        self.effect(vec![self.completion(done)?], String::new).await
    }
}
