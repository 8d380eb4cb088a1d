//! Users' notification inboxes on DynamoDB.

use async_trait::async_trait;
use std::collections::HashSet;

use aws_sdk_dynamodb::types::{PutRequest, TransactWriteItem, Update, WriteRequest};
use eventsys_messages::{NotificationId, UserId};

use crate::{
    Built, DynamoStore, TxFailure, applied,
    codec::{Item, s, string, to_item},
    limit::Limited,
};
use eventsys_store::{
    StoreError,
    ports::{Finished, NotificationStore},
    records::{Completion, NotificationRecord, Page, PageRequest},
};

#[async_trait]
impl NotificationStore for DynamoStore {
    async fn add_notification(
        &self,
        notification: &NotificationRecord,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.notifications)
            .set_item(Some(to_item(notification)?))
            .condition_expression("attribute_not_exists(notification_id)")
            .send()
            .limited(&self.limit)
            .await;
        applied(result)
    }

    async fn add_notifications(
        &self,
        batch: &[NotificationRecord],
    ) -> Result<Vec<NotificationId>, StoreError> {
        // Batch writes are not conditional: read which exist first, so that
        // a fact handled again never resets what was marked read.
        let key = |n: &NotificationRecord| -> Item {
            [
                ("user_id".to_owned(), s(n.user_id.as_str())),
                (
                    "notification_id".to_owned(),
                    s(n.notification_id.to_string()),
                ),
            ]
            .into()
        };
        let existing: HashSet<String> = self
            .batch_get(&self.tables.notifications, batch.iter().map(key).collect())
            .await?
            .iter()
            .filter_map(|item| string(item, "notification_id").ok().map(str::to_owned))
            .collect();
        let new: Vec<&NotificationRecord> = batch
            .iter()
            .filter(|n| !existing.contains(&n.notification_id.to_string()))
            .collect();
        let mut puts = Vec::with_capacity(new.len());
        for notification in &new {
            let put = PutRequest::builder()
                .set_item(Some(to_item(*notification)?))
                .build()
                .built()?;
            puts.push(WriteRequest::builder().put_request(put).build());
        }
        self.batch_write(&self.tables.notifications, puts).await?;
        Ok(new.iter().map(|n| n.notification_id).collect())
    }

    async fn notifications(
        &self,
        user: &UserId,
        page: &PageRequest,
    ) -> Result<Page<NotificationRecord>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.tables.notifications)
            .key_condition_expression("user_id = :u")
            .expression_attribute_values(":u", s(user.as_str()))
            // Notification ids are UUIDv7: descending id is newest first.
            .scan_index_forward(false);
        self.query_page(query, page).await
    }

    async fn mark_read(
        &self,
        user: &UserId,
        id: NotificationId,
        done: &Completion,
    ) -> Result<Option<Finished>, StoreError> {
        let mark = Update::builder()
            .table_name(&self.tables.notifications)
            .key("user_id", s(user.as_str()))
            .key("notification_id", s(id.to_string()))
            .update_expression("SET #read = :yes")
            .condition_expression("attribute_exists(notification_id)")
            .expression_attribute_names("#read", "read")
            .expression_attribute_values(
                ":yes",
                aws_sdk_dynamodb::types::AttributeValue::Bool(true),
            )
            .build()
            .built()?;
        let items = vec![
            TransactWriteItem::builder().update(mark).build(),
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
}
