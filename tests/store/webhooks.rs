//! Webhook endpoints: an organizer's list, secrets replaced, removal; and
//! what each is owed: one delivery per occurrence, numbered without gaps
//! or repeats even when owed concurrently, sent in order, logged newest
//! first, replayed on request; endpoints owed something listed, for one
//! sender at a time, until settled.

use std::sync::Arc;

use eventsys_messages::{Timestamp, WebhookId};
use eventsys_store::{
    DeliveryRecord, DeliveryStatus, PageRequest, SigningSecret, Store, WebhookRecord,
};
use uuid::Uuid;

use crate::{contract, user};

contract!(
    an_organizer_lists_their_endpoints_and_a_removed_one_is_gone,
    each_occurrence_is_owed_once_and_numbered_in_order,
    concurrent_occurrences_take_every_number_once,
    deliveries_are_sent_in_order_and_logged_newest_first,
    a_delivery_given_up_on_is_owed_again_by_a_replay,
    an_endpoint_owed_something_is_listed_until_its_one_sender_settles_it,
);

fn endpoint(organizer: &str) -> WebhookRecord {
    WebhookRecord {
        webhook_id: WebhookId::generate(),
        organizer_id: user(organizer),
        url: "https://hooks.example.com/eventsys".into(),
        event_id: None,
        types: vec!["order.succeeded".into(), "ticket.checked_in".into()],
        secrets: vec![SigningSecret {
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            until: None,
        }],
        created_at: Timestamp::now(),
        next_sequence: 1,
        mark: 0,
    }
}

fn occurrence(webhook: &WebhookRecord) -> DeliveryRecord {
    DeliveryRecord::owed(
        webhook.webhook_id,
        Uuid::new_v4(),
        "order.succeeded",
        r#"{"type":"order.succeeded"}"#.into(),
        Timestamp::now(),
    )
}

async fn added(store: &dyn Store, organizer: &str) -> WebhookRecord {
    let webhook = endpoint(organizer);
    store.add_webhook(&webhook).await.unwrap();
    webhook
}

async fn an_organizer_lists_their_endpoints_and_a_removed_one_is_gone(store: &dyn Store) {
    let (first, second) = (added(store, "olga").await, added(store, "olga").await);
    added(store, "otto").await;
    let listed = store.webhooks_of(&user("olga")).await.unwrap();
    assert_eq!(listed, [first.clone(), second.clone()]);
    let rotated = vec![
        SigningSecret {
            secret: "whsec_bmV3LXNlY3JldC1uZXctc2VjcmV0LW5ldw==".into(),
            until: None,
        },
        SigningSecret {
            until: Some(Timestamp::now()),
            ..first.secrets[0].clone()
        },
    ];
    assert!(store.set_secrets(first.webhook_id, &rotated).await.unwrap());
    let read = store.webhook(first.webhook_id).await.unwrap().unwrap();
    assert_eq!(read.secrets, rotated);
    assert!(store.remove_webhook(first.webhook_id).await.unwrap());
    assert!(!store.remove_webhook(first.webhook_id).await.unwrap());
    assert_eq!(store.webhook(first.webhook_id).await.unwrap(), None);
    assert_eq!(store.webhooks_of(&user("olga")).await.unwrap(), [second]);
    assert!(!store.set_secrets(first.webhook_id, &rotated).await.unwrap());
    assert_eq!(store.owe(&occurrence(&first)).await.unwrap(), None);
}

async fn each_occurrence_is_owed_once_and_numbered_in_order(store: &dyn Store) {
    let (one, other) = (added(store, "olga").await, added(store, "olga").await);
    let first = occurrence(&one);
    assert_eq!(store.owe(&first).await.unwrap(), Some(1));
    assert_eq!(store.owe(&first).await.unwrap(), None);
    assert_eq!(store.owe(&occurrence(&one)).await.unwrap(), Some(2));
    // The same occurrence is owed to every endpoint that wants it, each
    // numbering its own.
    let same_for_other = DeliveryRecord {
        webhook_id: other.webhook_id,
        ..first.clone()
    };
    assert_eq!(store.owe(&same_for_other).await.unwrap(), Some(1));
    let stored = store.delivery(one.webhook_id, 1).await.unwrap().unwrap();
    assert_eq!(
        stored,
        DeliveryRecord {
            sequence: 1,
            ..first
        }
    );
    assert_eq!(
        store
            .webhook(one.webhook_id)
            .await
            .unwrap()
            .unwrap()
            .next_sequence,
        3
    );
}

async fn concurrent_occurrences_take_every_number_once(store: &dyn Store) {
    let webhook = added(store, "olga").await;
    let store: Arc<&dyn Store> = Arc::new(store);
    let owed = futures::future::join_all((0..8).map(|_| {
        let delivery = occurrence(&webhook);
        let store = store.clone();
        async move { store.owe(&delivery).await.unwrap() }
    }))
    .await;
    let mut numbers: Vec<u64> = owed.into_iter().map(|n| n.expect("owed")).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=8).collect::<Vec<u64>>());
    // One occurrence owed by eight at once is owed once.
    let same = occurrence(&webhook);
    let owed = futures::future::join_all((0..8).map(|_| {
        let store = store.clone();
        let same = same.clone();
        async move { store.owe(&same).await.unwrap() }
    }))
    .await;
    assert_eq!(owed.iter().filter(|n| n.is_some()).count(), 1);
}

async fn deliveries_are_sent_in_order_and_logged_newest_first(store: &dyn Store) {
    let webhook = added(store, "olga").await;
    for _ in 0..3 {
        store.owe(&occurrence(&webhook)).await.unwrap();
    }
    let next = store.next_owed(webhook.webhook_id).await.unwrap().unwrap();
    assert_eq!(next.sequence, 1);
    let delivered = DeliveryRecord {
        status: DeliveryStatus::Delivered,
        attempts: 1,
        next_attempt_at: None,
        last_attempt_at: Some(Timestamp::now()),
        last_response: Some(204),
        ..next
    };
    assert!(store.record_attempt(&delivered).await.unwrap());
    // A delivery no longer owed takes no more attempts.
    assert!(!store.record_attempt(&delivered).await.unwrap());
    let next = store.next_owed(webhook.webhook_id).await.unwrap().unwrap();
    assert_eq!(next.sequence, 2);
    let first_page = store
        .deliveries(
            webhook.webhook_id,
            &PageRequest {
                limit: 2,
                after: None,
            },
        )
        .await
        .unwrap();
    let sequences: Vec<u64> = first_page.items.iter().map(|d| d.sequence).collect();
    assert_eq!(sequences, [3, 2]);
    let rest = store
        .deliveries(
            webhook.webhook_id,
            &PageRequest {
                limit: 2,
                after: first_page.next,
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.items, [delivered]);
    assert_eq!(rest.next, None);
}

async fn a_delivery_given_up_on_is_owed_again_by_a_replay(store: &dyn Store) {
    let webhook = added(store, "olga").await;
    store.owe(&occurrence(&webhook)).await.unwrap();
    let owed = store.next_owed(webhook.webhook_id).await.unwrap().unwrap();
    let failed = DeliveryRecord {
        status: DeliveryStatus::Failed,
        attempts: 12,
        next_attempt_at: None,
        last_response: Some(500),
        ..owed
    };
    assert!(store.record_attempt(&failed).await.unwrap());
    assert_eq!(store.next_owed(webhook.webhook_id).await.unwrap(), None);
    let at = Timestamp::now();
    assert!(store.replay(webhook.webhook_id, 1, at).await.unwrap());
    assert!(!store.replay(webhook.webhook_id, 9, at).await.unwrap());
    let again = store.next_owed(webhook.webhook_id).await.unwrap().unwrap();
    assert_eq!(
        (again.sequence, again.status, again.replays, again.attempts),
        (1, DeliveryStatus::Pending, 1, 12)
    );
    assert_eq!(again.next_attempt_at, Some(at));
    assert_eq!(again.owed_since(), at);
}

async fn is_owing(store: &dyn Store, id: WebhookId) -> bool {
    // Other clauses share the store: look for this endpoint among all.
    store.owing_webhooks(100_000).await.unwrap().contains(&id)
}

async fn an_endpoint_owed_something_is_listed_until_its_one_sender_settles_it(store: &dyn Store) {
    let webhook = added(store, "olga").await;
    let id = webhook.webhook_id;
    assert!(!is_owing(store, id).await);
    store.owe(&occurrence(&webhook)).await.unwrap();
    assert!(is_owing(store, id).await);
    let now = Timestamp::now();
    let later = now + jiff::SignedDuration::from_secs(30);
    assert!(store.lease_webhook(id, "one", now, later).await.unwrap());
    // Another sender waits for the lease to run out; its holder extends it.
    assert!(!store.lease_webhook(id, "two", now, later).await.unwrap());
    assert!(store.lease_webhook(id, "one", now, later).await.unwrap());
    let seen = store.webhook(id).await.unwrap().unwrap().mark;
    assert_eq!(seen, 1);
    // Something owed meanwhile: the sender must look again.
    store.owe(&occurrence(&webhook)).await.unwrap();
    assert!(!store.settle_webhook(id, "one", seen).await.unwrap());
    assert!(!store.settle_webhook(id, "two", seen + 1).await.unwrap());
    assert!(store.settle_webhook(id, "one", seen + 1).await.unwrap());
    assert!(!is_owing(store, id).await);
    // Settling ended the lease; and a lease that ran out is anyone's.
    assert!(store.lease_webhook(id, "two", now, later).await.unwrap());
    let after_it = later + jiff::SignedDuration::from_millis(1);
    assert!(
        store
            .lease_webhook(
                id,
                "one",
                after_it,
                after_it + jiff::SignedDuration::from_secs(30)
            )
            .await
            .unwrap()
    );
    // A replay lists it again; removal for good.
    assert!(store.replay(id, 1, now).await.unwrap());
    assert!(is_owing(store, id).await);
    assert!(store.remove_webhook(id).await.unwrap());
    assert!(!is_owing(store, id).await);
    assert!(!store.lease_webhook(id, "one", now, later).await.unwrap());
}
