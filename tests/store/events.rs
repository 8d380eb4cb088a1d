//! Events and their counters: creation once, reads, and the listing.

use eventsys_messages::{EventId, EventStatus};
use eventsys_store::{EventRecord, Finished, PageRequest, Revised, Revision, StatusChange, Store};

use crate::{contract, created, event, recorded};

contract!(
    an_event_is_created_once_with_nothing_sold,
    the_listing_holds_published_events_by_start_in_pages,
    staff_are_granted_and_revoked_per_event,
    a_draft_is_published_once_and_a_cancelled_event_stays_cancelled,
    a_revision_never_takes_sold_seats,
    a_published_event_is_due_to_end_at_its_end,
);

async fn an_event_is_created_once_with_nothing_sold(store: &dyn Store) {
    let event = event(10, &[10, 4]);
    let done = recorded(store, "olga").await;
    assert_eq!(
        store.create_event(&event, &done).await.unwrap(),
        Finished::Now
    );
    assert_eq!(
        store.create_event(&event, &done).await.unwrap(),
        Finished::Already
    );
    assert_eq!(
        store.event_record(event.event_id).await.unwrap(),
        Some(event.clone())
    );
    let snapshot = store.event(event.event_id).await.unwrap().unwrap();
    assert_eq!(snapshot.event, event);
    let counters = snapshot.inventory;
    assert_eq!((counters.capacity, counters.remaining), (10, 10));
    let (a, b) = (
        event.spec.ticket_types[0].ticket_type_id,
        event.spec.ticket_types[1].ticket_type_id,
    );
    assert_eq!(
        (counters.type_quota(a), counters.type_remaining(a)),
        (10, 10)
    );
    assert_eq!((counters.type_quota(b), counters.type_remaining(b)), (4, 4));
    assert_eq!(store.event(EventId::generate()).await.unwrap(), None);
    assert_eq!(store.event_record(EventId::generate()).await.unwrap(), None);
}

async fn the_listing_holds_published_events_by_start_in_pages(store: &dyn Store) {
    let mut events: Vec<_> = (0..3).map(|_| event(5, &[5])).collect();
    for (day, event) in events.iter_mut().enumerate() {
        event.spec.starts_at = format!("2031-01-0{}T18:00:00Z", 3 - day).parse().unwrap();
        event.spec.ends_at = format!("2031-01-0{}T23:00:00Z", 3 - day).parse().unwrap();
    }
    let mut draft = event(5, &[5]);
    draft.spec.status = EventStatus::Draft;
    for e in events.iter().chain([&draft]) {
        created(store, e).await;
    }
    let first = store
        .published_events(&PageRequest {
            limit: 2,
            after: None,
        })
        .await
        .unwrap();
    let ids = |page: &[eventsys_store::EventSnapshot]| -> Vec<EventId> {
        page.iter().map(|s| s.event.event_id).collect()
    };
    assert_eq!(ids(&first.items), [events[2].event_id, events[1].event_id]);
    assert_eq!(first.items[0].inventory.remaining, 5);
    let rest = store
        .published_events(&PageRequest {
            limit: 2,
            after: first.next,
        })
        .await
        .unwrap();
    assert_eq!(ids(&rest.items), [events[0].event_id]);
    assert_eq!(rest.next, None);
}

/// Door staff are granted and revoked per event, each change once.
async fn staff_are_granted_and_revoked_per_event(store: &dyn Store) {
    let event = event(5, &[5]);
    created(store, &event).await;
    let sam = crate::user("sam");
    let since = eventsys_messages::Timestamp::now();
    let grant = recorded(store, "olga").await;
    assert_eq!(
        store
            .set_staff(event.event_id, &sam, Some(since), &grant)
            .await
            .unwrap(),
        Some(Finished::Now)
    );
    assert_eq!(
        store
            .set_staff(event.event_id, &sam, None, &grant)
            .await
            .unwrap(),
        Some(Finished::Already),
        "the same command twice changes nothing"
    );
    let granted = store.event_record(event.event_id).await.unwrap().unwrap();
    assert_eq!(granted.staff.get(&sam), Some(&since));
    let revoke = recorded(store, "olga").await;
    store
        .set_staff(event.event_id, &sam, None, &revoke)
        .await
        .unwrap();
    let revoked = store.event_record(event.event_id).await.unwrap().unwrap();
    assert!(revoked.staff.is_empty());
    let elsewhere = recorded(store, "olga").await;
    assert_eq!(
        store
            .set_staff(EventId::generate(), &sam, Some(since), &elsewhere)
            .await
            .unwrap(),
        None
    );
}

async fn listed(store: &dyn Store, id: EventId) -> bool {
    let page = store
        .published_events(&PageRequest {
            limit: 200,
            after: None,
        })
        .await
        .unwrap();
    page.items.iter().any(|s| s.event.event_id == id)
}

async fn a_draft_is_published_once_and_a_cancelled_event_stays_cancelled(store: &dyn Store) {
    let mut draft = event(5, &[5]);
    draft.spec.status = EventStatus::Draft;
    created(store, &draft).await;
    let id = draft.event_id;
    assert!(!listed(store, id).await);

    let publish = recorded(store, "olga").await;
    assert_eq!(
        store
            .change_event_status(id, EventStatus::Published, &publish)
            .await
            .unwrap(),
        StatusChange::Changed
    );
    assert_eq!(
        store
            .change_event_status(id, EventStatus::Published, &publish)
            .await
            .unwrap(),
        StatusChange::Already
    );
    assert!(listed(store, id).await);
    let again = recorded(store, "olga").await;
    assert_eq!(
        store
            .change_event_status(id, EventStatus::Published, &again)
            .await
            .unwrap(),
        StatusChange::Refused(EventStatus::Published)
    );

    let cancel = recorded(store, "olga").await;
    assert_eq!(
        store
            .change_event_status(id, EventStatus::Cancelled, &cancel)
            .await
            .unwrap(),
        StatusChange::Changed
    );
    assert!(!listed(store, id).await);
    let record = store.event_record(id).await.unwrap().unwrap();
    assert_eq!(record.spec.status, EventStatus::Cancelled);
    let revive = recorded(store, "olga").await;
    assert_eq!(
        store
            .change_event_status(id, EventStatus::Published, &revive)
            .await
            .unwrap(),
        StatusChange::Refused(EventStatus::Cancelled)
    );
    let missing = recorded(store, "olga").await;
    assert_eq!(
        store
            .change_event_status(EventId::generate(), EventStatus::Cancelled, &missing)
            .await
            .unwrap(),
        StatusChange::NotFound
    );
}

/// Sells `n` seats of the event's first type, one order each.
async fn sell(store: &dyn Store, event: &EventRecord, n: u32) {
    for _ in 0..n {
        let order = crate::orders::placement(
            event.event_id,
            event.spec.ticket_types[0].ticket_type_id,
            1,
            "ann",
        );
        store
            .place_order(&order, &recorded(store, "ann").await)
            .await
            .unwrap();
    }
}

/// On DynamoDB these 10 seats lie in 4 items: a decrease gathers the unsold
/// ones before it takes them.
async fn a_revision_never_takes_sold_seats(store: &dyn Store) {
    let event = event(10, &[10]);
    created(store, &event).await;
    sell(store, &event, 4).await;
    let revise = |to: EventRecord, seen| async move {
        let before = store.event_record(to.event_id).await.unwrap().unwrap();
        let revision = Revision::between(&before.spec, &to.spec);
        let done = recorded(store, "olga").await;
        store
            .revise_event(&to, seen, &revision, &done)
            .await
            .unwrap()
    };
    let mut smaller = store.event_record(event.event_id).await.unwrap().unwrap();
    let seen = smaller.updated_at;
    smaller.spec.capacity = 5;
    smaller.spec.ticket_types[0].quota = 5;
    smaller.spec.venue = "Hall 2".into();
    smaller.updated_at = eventsys_messages::Timestamp::now();
    assert_eq!(revise(smaller.clone(), seen).await, Revised::Changed);
    let counters = store.event(event.event_id).await.unwrap().unwrap();
    assert_eq!(counters.event.spec.venue, "Hall 2");
    let c = counters.inventory;
    let tt = event.spec.ticket_types[0].ticket_type_id;
    assert_eq!((c.capacity, c.remaining, c.sold()), (5, 1, 4));
    assert_eq!((c.type_quota(tt), c.type_remaining(tt)), (5, 1));

    // Read before that change: stale.
    assert_eq!(revise(smaller.clone(), seen).await, Revised::Stale);
    // Below what is sold: refused, nothing changes.
    let mut too_small = smaller.clone();
    too_small.spec.capacity = 3;
    too_small.spec.ticket_types[0].quota = 3;
    too_small.updated_at = eventsys_messages::Timestamp::now();
    assert_eq!(revise(too_small, smaller.updated_at).await, Revised::TooFew);
    let c = store
        .event(event.event_id)
        .await
        .unwrap()
        .unwrap()
        .inventory;
    assert_eq!((c.capacity, c.remaining), (5, 1));

    // A new type, and more seats.
    let mut larger = smaller.clone();
    larger.spec.capacity = 8;
    let mut vip = larger.spec.ticket_types[0].clone();
    vip.ticket_type_id = eventsys_messages::TicketTypeId::generate();
    vip.name = "VIP".into();
    vip.quota = 2;
    larger.spec.ticket_types.push(vip.clone());
    larger.updated_at = eventsys_messages::Timestamp::now();
    assert_eq!(revise(larger, smaller.updated_at).await, Revised::Changed);
    let c = store
        .event(event.event_id)
        .await
        .unwrap()
        .unwrap()
        .inventory;
    assert_eq!((c.capacity, c.remaining, c.sold()), (8, 4, 4));
    assert_eq!(c.type_remaining(vip.ticket_type_id), 2);
}

async fn due_to_end(store: &dyn Store, id: EventId) -> bool {
    let due = store
        .due_endings(eventsys_messages::Timestamp::now(), 100)
        .await
        .unwrap();
    due.iter().any(|e| e.event_id == id)
}

async fn a_published_event_is_due_to_end_at_its_end(store: &dyn Store) {
    let now = eventsys_messages::Timestamp::now();
    let hour = std::time::Duration::from_secs(3600);
    let mut over = event(5, &[5]);
    over.spec.starts_at = now - hour - hour;
    over.spec.ends_at = now - hour;
    created(store, &over).await;
    let mut draft = over.clone();
    draft.event_id = EventId::generate();
    draft.spec.status = EventStatus::Draft;
    created(store, &draft).await;
    let mut later = over.clone();
    later.event_id = EventId::generate();
    later.spec.ends_at = now + hour;
    created(store, &later).await;
    assert!(due_to_end(store, over.event_id).await);
    assert!(
        !due_to_end(store, draft.event_id).await,
        "drafts never end by time"
    );
    assert!(!due_to_end(store, later.event_id).await);

    let end = recorded(store, "system").await;
    assert_eq!(
        store
            .change_event_status(over.event_id, EventStatus::Ended, &end)
            .await
            .unwrap(),
        StatusChange::Changed
    );
    assert!(!due_to_end(store, over.event_id).await);
    assert!(!listed(store, over.event_id).await);
}
