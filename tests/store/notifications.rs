//! Inboxes: one entry per notification id, newest first, read marks.

use eventsys_messages::{NotificationId, Timestamp};
use eventsys_store::{Finished, NotificationRecord, PageRequest, Store};

use crate::{contract, recorded, user};

contract!(
    a_notification_is_stored_once_and_listed_newest_first,
    only_its_user_marks_a_notification_read,
    a_batch_stores_only_what_is_missing,
);

fn notification(to: &str) -> NotificationRecord {
    NotificationRecord {
        user_id: user(to),
        notification_id: NotificationId::generate(),
        kind: "order.confirmed".into(),
        message: "Your order is confirmed.".into(),
        created_at: Timestamp::now(),
        read: false,
        event_id: None,
        order_id: None,
        ticket_id: None,
    }
}

async fn a_notification_is_stored_once_and_listed_newest_first(store: &dyn Store) {
    let sent: Vec<_> = (0..3).map(|_| notification("ann")).collect();
    for n in &sent {
        assert!(store.add_notification(n).await.unwrap());
    }
    assert!(!store.add_notification(&sent[0]).await.unwrap());
    store.add_notification(&notification("bob")).await.unwrap();
    let first = store
        .notifications(
            &user("ann"),
            &PageRequest {
                limit: 2,
                after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(first.items, [sent[2].clone(), sent[1].clone()]);
    let rest = store
        .notifications(
            &user("ann"),
            &PageRequest {
                limit: 2,
                after: first.next,
            },
        )
        .await
        .unwrap();
    assert_eq!((rest.items, rest.next), (vec![sent[0].clone()], None));
}

async fn only_its_user_marks_a_notification_read(store: &dyn Store) {
    let n = notification("ann");
    store.add_notification(&n).await.unwrap();
    let done = recorded(store, "bob").await;
    assert_eq!(
        store
            .mark_read(&user("bob"), n.notification_id, &done)
            .await
            .unwrap(),
        None
    );
    let done = recorded(store, "ann").await;
    assert_eq!(
        store
            .mark_read(&user("ann"), n.notification_id, &done)
            .await
            .unwrap(),
        Some(Finished::Now)
    );
    assert_eq!(
        store
            .mark_read(&user("ann"), n.notification_id, &done)
            .await
            .unwrap(),
        Some(Finished::Already)
    );
    let page = store
        .notifications(
            &user("ann"),
            &PageRequest {
                limit: 10,
                after: None,
            },
        )
        .await
        .unwrap();
    assert!(page.items[0].read);
}

/// A fan-out handled again stores nothing twice and keeps read marks.
async fn a_batch_stores_only_what_is_missing(store: &dyn Store) {
    let batch: Vec<_> = ["ann", "bob", "cleo"].map(notification).into();
    let first = store.add_notifications(&batch).await.unwrap();
    assert_eq!(first.len(), 3);
    let done = recorded(store, "ann").await;
    store
        .mark_read(&user("ann"), batch[0].notification_id, &done)
        .await
        .unwrap();
    assert!(store.add_notifications(&batch).await.unwrap().is_empty());
    let inbox = store
        .notifications(
            &user("ann"),
            &PageRequest {
                limit: 10,
                after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(inbox.items.len(), 1);
    assert!(inbox.items[0].read, "a second batch does not unread it");
}
