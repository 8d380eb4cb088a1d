//! New commands recorded in batches: the accept path's side of group
//! commit.
//!
//! In a rush the API records hundreds of new commands a second, one item
//! each. Those that arrive while a batch is being written wait and go in
//! the next one (up to [`MOST_PER_BATCH`]), so a quiet API pays no delay
//! and a rush pays one round trip per batch. A batch is one transaction of
//! conditional puts (the id must be new), so the port's promise holds
//! whole: an id is recorded once, and each caller is answered only once
//! its own command is written, before the API publishes it. A lone command
//! is a conditional `PutItem`, which costs less than a transaction.
//!
//! Commands with an idempotency key keep their own transaction with the
//! claim.

use std::sync::{Arc, Mutex, MutexGuard};

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use eventsys_store::{CommandLog, StoreError, records::CommandRecord};
use tokio::sync::oneshot;

use crate::{Built, DynamoStore, TxFailure, applied, codec::Item};

/// The most commands one transaction records (DynamoDB's limit of items
/// in a transaction).
pub const MOST_PER_BATCH: usize = 100;

type Answer = oneshot::Sender<Result<(), StoreError>>;

struct Waiting {
    record: CommandRecord,
    item: Item,
    answer: Answer,
}

#[derive(Default)]
struct Queue {
    writing: bool,
    waiting: Vec<Waiting>,
}

/// The commands waiting to be recorded; shared by every clone of the store.
#[derive(Clone, Default)]
pub(crate) struct NewCommands {
    queue: Arc<Mutex<Queue>>,
}

impl NewCommands {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // A queue of owned items stays sound whatever a panicking holder left.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl DynamoStore {
    /// Records `record` as `item` on condition that its id is new, with
    /// whichever others arrive at the same time.
    pub(crate) async fn record_new(
        &self,
        record: &CommandRecord,
        item: Item,
    ) -> Result<(), StoreError> {
        let (answer, written) = oneshot::channel();
        let lead = {
            let mut queue = self.new_commands.queue();
            queue.waiting.push(Waiting {
                record: record.clone(),
                item,
                answer,
            });
            !std::mem::replace(&mut queue.writing, true)
        };
        if lead {
            // Its own task: the batches go on even if this request goes away.
            tokio::spawn(self.clone().record_until_empty());
        }
        written.await.unwrap_or_else(|_| {
            Err(StoreError::unavailable(
                "a batch of commands was not written",
            ))
        })
    }

    async fn record_until_empty(self) {
        loop {
            let batch: Vec<Waiting> = {
                let mut queue = self.new_commands.queue();
                if queue.waiting.is_empty() {
                    queue.writing = false;
                    return;
                }
                let take = queue.waiting.len().min(MOST_PER_BATCH);
                queue.waiting.drain(..take).collect()
            };
            self.record_batch(batch).await;
        }
    }

    /// Writes a batch and answers each of its callers.
    async fn record_batch(&self, mut batch: Vec<Waiting>) {
        // Each round either writes what is left or settles at least one
        // command whose condition failed, so this ends.
        while !batch.is_empty() {
            if let [one] = batch.as_slice() {
                let outcome = self.record_one(&one.record, one.item.clone()).await;
                if let Some(one) = batch.pop() {
                    let _ = one.answer.send(outcome);
                }
                return;
            }
            let items = match self.new_command_puts(&batch) {
                Ok(items) => items,
                Err(err) => return answer_all(batch, &err),
            };
            match self.transact(items).await {
                Ok(()) => {
                    for waiting in batch {
                        let _ = waiting.answer.send(Ok(()));
                    }
                    return;
                }
                Err(TxFailure::Store(err)) => return answer_all(batch, &err),
                Err(TxFailure::Conditions(failed)) => {
                    let mut rest = Vec::with_capacity(batch.len());
                    for (waiting, failed) in batch.into_iter().zip(failed) {
                        if failed {
                            let outcome = self.already_ours(&waiting.record).await;
                            let _ = waiting.answer.send(outcome);
                        } else {
                            rest.push(waiting);
                        }
                    }
                    batch = rest;
                }
            }
        }
    }

    /// One command alone: a conditional put.
    async fn record_one(&self, record: &CommandRecord, item: Item) -> Result<(), StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.tables.commands)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(command_id)")
            .send()
            .await;
        if applied(put)? {
            Ok(())
        } else {
            self.already_ours(record).await
        }
    }

    /// A command whose id was taken: ours if the store holds this very
    /// command (a retried write whose first try landed), else refused.
    async fn already_ours(&self, record: &CommandRecord) -> Result<(), StoreError> {
        match self.command(record.command_id).await? {
            Some(existing) if existing.message == record.message => Ok(()),
            _ => Err(StoreError::rejected("command id already recorded")),
        }
    }

    fn new_command_puts(&self, batch: &[Waiting]) -> Result<Vec<TransactWriteItem>, StoreError> {
        batch
            .iter()
            .map(|waiting| {
                let put = Put::builder()
                    .table_name(&self.tables.commands)
                    .set_item(Some(waiting.item.clone()))
                    .condition_expression("attribute_not_exists(command_id)")
                    .build()
                    .built()?;
                Ok(TransactWriteItem::builder().put(put).build())
            })
            .collect()
    }
}

fn answer_all(batch: Vec<Waiting>, err: &StoreError) {
    let cause = err.to_string();
    for waiting in batch {
        let _ = waiting
            .answer
            .send(Err(StoreError::unavailable(cause.clone())));
    }
}
