//! Users' notification inboxes in the embedded store.

use async_trait::async_trait;
use eventsys_messages::{NotificationId, UserId};

use crate::{EmbeddedStore, NOTIFICATIONS, commands, get, newest_first, open, open_read, put};
use eventsys_store::{
    StoreError,
    ports::{Finished, NotificationStore},
    records::{Completion, NotificationRecord, Page, PageRequest},
};

/// Notification ids are UUIDv7: within a user, key order is time order.
fn key(user: &UserId, id: NotificationId) -> String {
    format!("{user}\0{id}")
}

#[async_trait]
impl NotificationStore for EmbeddedStore {
    async fn add_notification(
        &self,
        notification: &NotificationRecord,
    ) -> Result<bool, StoreError> {
        let notification = notification.clone();
        self.write(move |txn| {
            let mut table = open(txn, NOTIFICATIONS)?;
            let key = key(&notification.user_id, notification.notification_id);
            if get::<NotificationRecord>(&table, &key)?.is_some() {
                return Ok(false);
            }
            put(&mut table, &key, &notification)?;
            Ok(true)
        })
        .await
    }

    async fn add_notifications(
        &self,
        batch: &[NotificationRecord],
    ) -> Result<Vec<NotificationId>, StoreError> {
        let batch = batch.to_vec();
        self.write(move |txn| {
            let mut table = open(txn, NOTIFICATIONS)?;
            let mut added = Vec::new();
            for notification in &batch {
                let key = key(&notification.user_id, notification.notification_id);
                if get::<NotificationRecord>(&table, &key)?.is_none() {
                    put(&mut table, &key, notification)?;
                    added.push(notification.notification_id);
                }
            }
            Ok(added)
        })
        .await
    }

    async fn notifications(
        &self,
        user: &UserId,
        request: &PageRequest,
    ) -> Result<Page<NotificationRecord>, StoreError> {
        let (user, request) = (user.clone(), request.clone());
        self.read(move |txn| {
            let (start, end) = (format!("{user}\0"), format!("{user}\u{1}"));
            newest_first(&open_read(txn, NOTIFICATIONS)?, (&start, &end), &request)
        })
        .await
    }

    async fn mark_read(
        &self,
        user: &UserId,
        id: NotificationId,
        done: &Completion,
    ) -> Result<Option<Finished>, StoreError> {
        let (user, done) = (user.clone(), done.clone());
        self.write(move |txn| {
            if !commands::unfinished(txn, &done)? {
                return Ok(Some(Finished::Already));
            }
            let mut table = open(txn, NOTIFICATIONS)?;
            let key = key(&user, id);
            let Some(mut notification) = get::<NotificationRecord>(&table, &key)? else {
                return Ok(None);
            };
            notification.read = true;
            put(&mut table, &key, &notification)?;
            commands::finish(txn, &done).map(Some)
        })
        .await
    }
}
