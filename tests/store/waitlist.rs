//! The waiting list: first come, first offered; a seat that comes free is
//! offered before it is for sale again, to one person, once.

use std::time::Duration;

use eventsys_messages::{OrderStatus, Timestamp};
use eventsys_store::{
    EventRecord, Joined, OrderChange, PlaceOutcome, Store, WaitEntry, WaitStatus,
};
use futures::future::join_all;

use crate::{contract, created, event, orders::placement, recorded, user};

contract!(
    the_first_in_line_is_offered_a_seat_that_comes_free,
    one_free_seat_is_offered_to_one_person,
    offers_racing_cancellations_take_each_seat_once,
);

fn entry(event: &EventRecord, who: &str, joined: Timestamp) -> WaitEntry {
    WaitEntry {
        event_id: event.event_id,
        user_id: user(who),
        ticket_type_id: event.spec.ticket_types[0].ticket_type_id,
        joined_at: joined,
        status: WaitStatus::Waiting,
        offer: None,
    }
}

async fn join(store: &dyn Store, entry: &WaitEntry) -> Joined {
    let done = recorded(store, entry.user_id.as_str()).await;
    store.join_waitlist(entry, &done).await.unwrap()
}

async fn ahead(store: &dyn Store, event: &EventRecord, who: &str) -> Option<(WaitStatus, u32)> {
    store
        .waitlist_entry(event.event_id, &user(who))
        .await
        .unwrap()
        .map(|(e, n)| (e.status, n))
}

const HOLD: Duration = Duration::from_secs(900);

async fn the_first_in_line_is_offered_a_seat_that_comes_free(store: &dyn Store) {
    let event = event(2, &[2]);
    created(store, &event).await;
    let tt = event.spec.ticket_types[0].ticket_type_id;
    let sold = placement(event.event_id, tt, 2, "ann");
    store
        .place_order(&sold, &recorded(store, "ann").await)
        .await
        .unwrap();
    let now = Timestamp::now();
    assert_eq!(
        join(store, &entry(&event, "cleo", now)).await,
        Joined::Joined
    );
    let dora = entry(&event, "dora", now + Duration::from_millis(1));
    assert_eq!(join(store, &dora).await, Joined::Joined);
    assert_eq!(join(store, &dora).await, Joined::Waiting);
    assert_eq!(
        ahead(store, &event, "cleo").await,
        Some((WaitStatus::Waiting, 0))
    );
    assert_eq!(
        ahead(store, &event, "dora").await,
        Some((WaitStatus::Waiting, 1))
    );
    assert_eq!(ahead(store, &event, "eve").await, None);
    assert!(
        store
            .offer_next(event.event_id, HOLD, now)
            .await
            .unwrap()
            .is_none()
    );

    // A ticket comes back: not for sale while anyone waits.
    let done = recorded(store, "ann").await;
    store
        .cancel_ticket(sold.tickets[0].ticket_id, &done)
        .await
        .unwrap();
    let public = placement(event.event_id, tt, 1, "eve");
    assert_eq!(
        store
            .place_order(&public, &recorded(store, "eve").await)
            .await
            .unwrap(),
        PlaceOutcome::SoldOut
    );
    let offer = store
        .offer_next(event.event_id, HOLD, now)
        .await
        .unwrap()
        .expect("an offer");
    assert_eq!(
        (offer.buyer_id.as_str(), offer.status),
        ("cleo", OrderStatus::PendingPayment)
    );
    assert_eq!(
        store.order(offer.order_id).await.unwrap(),
        Some(offer.clone())
    );
    assert_eq!(
        ahead(store, &event, "cleo").await,
        Some((WaitStatus::Offered, 0))
    );
    assert_eq!(
        ahead(store, &event, "dora").await,
        Some((WaitStatus::Waiting, 0))
    );
    let c = store
        .event(event.event_id)
        .await
        .unwrap()
        .unwrap()
        .inventory;
    assert_eq!((c.remaining, c.held, c.sold()), (0, 1, 1));
    assert!(
        store
            .offer_next(event.event_id, HOLD, now)
            .await
            .unwrap()
            .is_none()
    );

    // Cleo lets it run out: the seat goes to Dora, never to the public.
    let late = offer.expires_at.unwrap() + Duration::from_secs(1);
    let expiry = recorded(store, "system").await;
    assert_eq!(
        store
            .expire_order(offer.order_id, late, &expiry)
            .await
            .unwrap(),
        OrderChange::Changed
    );
    let next = store
        .offer_next(event.event_id, HOLD, late)
        .await
        .unwrap()
        .expect("the next offer");
    assert_eq!(next.buyer_id.as_str(), "dora");
    let c = store
        .event(event.event_id)
        .await
        .unwrap()
        .unwrap()
        .inventory;
    assert_eq!((c.remaining, c.held, c.sold()), (0, 1, 1));
}

async fn one_free_seat_is_offered_to_one_person(store: &dyn Store) {
    let event = event(1, &[1]);
    created(store, &event).await;
    let tt = event.spec.ticket_types[0].ticket_type_id;
    let sold = placement(event.event_id, tt, 1, "ann");
    store
        .place_order(&sold, &recorded(store, "ann").await)
        .await
        .unwrap();
    let now = Timestamp::now();
    for (i, who) in ["bob", "cleo", "dora"].into_iter().enumerate() {
        let joined = now + Duration::from_millis(u64::try_from(i).unwrap());
        join(store, &entry(&event, who, joined)).await;
    }
    let done = recorded(store, "ann").await;
    store
        .cancel_order(sold.order.order_id, &done)
        .await
        .unwrap();
    let offers = join_all((0..4).map(|_| store.offer_next(event.event_id, HOLD, now))).await;
    let made: Vec<_> = offers.into_iter().filter_map(|o| o.unwrap()).collect();
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(made[0].buyer_id.as_str(), "bob");
    let c = store
        .event(event.event_id)
        .await
        .unwrap()
        .unwrap()
        .inventory;
    assert_eq!((c.remaining, c.held), (0, 1));
}

/// Two tickets cancelled while offers are being made, all at once: each
/// seat is offered once, in line order, and nothing is left over.
async fn offers_racing_cancellations_take_each_seat_once(store: &dyn Store) {
    let event = event(2, &[2]);
    created(store, &event).await;
    let tt = event.spec.ticket_types[0].ticket_type_id;
    let sold = placement(event.event_id, tt, 2, "ann");
    store
        .place_order(&sold, &recorded(store, "ann").await)
        .await
        .unwrap();
    let now = Timestamp::now();
    for (i, who) in ["bob", "cleo", "dora"].into_iter().enumerate() {
        let joined = now + Duration::from_millis(u64::try_from(i).unwrap());
        join(store, &entry(&event, who, joined)).await;
    }
    let (one, two) = (recorded(store, "ann").await, recorded(store, "ann").await);
    let cancels = async {
        tokio::join!(
            store.cancel_ticket(sold.tickets[0].ticket_id, &one),
            store.cancel_ticket(sold.tickets[1].ticket_id, &two),
        )
    };
    let offers = join_all((0..4).map(|_| store.offer_next(event.event_id, HOLD, now)));
    let ((first, second), raced) = tokio::join!(cancels, offers);
    assert_eq!(
        (first.unwrap(), second.unwrap()),
        (OrderChange::Changed, OrderChange::Changed)
    );
    let mut made: Vec<String> = raced
        .into_iter()
        .filter_map(|o| o.unwrap())
        .map(|o| o.buyer_id.as_str().to_owned())
        .collect();
    // Whatever the race left, the next sweep offers.
    while let Some(late) = store.offer_next(event.event_id, HOLD, now).await.unwrap() {
        made.push(late.buyer_id.as_str().to_owned());
    }
    made.sort();
    assert_eq!(made, ["bob", "cleo"]);
    assert_eq!(
        ahead(store, &event, "dora").await,
        Some((WaitStatus::Waiting, 0))
    );
    let c = store
        .event(event.event_id)
        .await
        .unwrap()
        .unwrap()
        .inventory;
    assert_eq!((c.remaining, c.held, c.sold()), (0, 2, 0));
}
