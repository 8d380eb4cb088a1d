//! Orders, tickets and check-in: the seats an order takes, whole or not at
//! all, never more than there are, however many orders race; each effect
//! written once.

use std::time::Duration;

use eventsys_messages::{
    CommandError, EventId, EventStatus, OrderId, Reason, TicketId, TicketTypeId, Timestamp,
};
use eventsys_store::{
    CheckInOutcome, Completion, EventRecord, Finished, OrderChange, OrderRecord, OrderStatus,
    PageRequest, PlaceOutcome, Placement, Scan, Store, TicketRecord, TicketStatus,
};
use futures::future::join_all;

use crate::{contract, created, event, recorded};

contract!(
    an_order_is_placed_once_and_reads_back_with_its_tickets,
    an_order_is_served_whole_or_refused_whole,
    a_type_quota_and_the_capacity_both_bound_a_sale,
    an_order_larger_than_any_one_part_is_still_served,
    racing_orders_never_take_more_than_there_is,
    nothing_is_sold_for_an_event_not_on_sale,
    a_rejected_order_is_written_once,
    a_holders_tickets_are_listed_newest_first,
    a_ticket_is_admitted_once,
    the_earliest_scan_of_a_ticket_stands,
    a_cancelled_events_tickets_are_not_admitted,
    a_hold_takes_its_seats_until_confirmed,
    a_hold_runs_out_or_is_confirmed_never_both,
    cancelling_gives_the_seats_back,
    every_holder_of_an_event_is_found_page_by_page,
    a_group_is_decided_in_order_and_its_tail_exactly,
    a_group_places_the_others_when_one_finished_before,
    racing_groups_never_take_more_than_there_is,
    a_group_of_refusals_is_written_once,
);

/// An order of `quantity` tickets of `ticket_type` by `buyer`.
pub fn placement(
    event_id: EventId,
    ticket_type: TicketTypeId,
    quantity: u32,
    buyer: &str,
) -> Placement {
    let order_id = OrderId::generate();
    let now = Timestamp::now();
    let tickets: Vec<TicketRecord> = (0..quantity)
        .map(|_| TicketRecord {
            ticket_id: TicketId::generate(),
            event_id,
            order_id,
            holder_id: crate::user(buyer),
            ticket_type_id: ticket_type,
            status: TicketStatus::Valid,
            created_at: now,
            checked_in_at: None,
            checked_in_gate: None,
        })
        .collect();
    Placement {
        order: OrderRecord {
            order_id,
            event_id,
            buyer_id: crate::user(buyer),
            ticket_type_id: ticket_type,
            quantity,
            status: OrderStatus::Confirmed,
            created_at: now,
            expires_at: None,
            ticket_ids: tickets.iter().map(|t| t.ticket_id).collect(),
            rejection: None,
        },
        tickets,
    }
}

fn first_type(event: &EventRecord) -> TicketTypeId {
    event.spec.ticket_types[0].ticket_type_id
}

async fn place(store: &dyn Store, event: &EventRecord, tt: TicketTypeId, n: u32) -> PlaceOutcome {
    let order = placement(event.event_id, tt, n, "ann");
    let done = recorded(store, "ann").await;
    store.place_order(&order, &done).await.unwrap()
}

async fn remaining(store: &dyn Store, event: &EventRecord) -> u32 {
    store
        .event(event.event_id)
        .await
        .unwrap()
        .unwrap()
        .inventory
        .remaining
}

async fn an_order_is_placed_once_and_reads_back_with_its_tickets(store: &dyn Store) {
    let event = event(10, &[10]);
    created(store, &event).await;
    let order = placement(event.event_id, first_type(&event), 2, "ann");
    let done = recorded(store, "ann").await;
    assert_eq!(
        store.place_order(&order, &done).await.unwrap(),
        PlaceOutcome::Placed
    );
    assert_eq!(
        store.place_order(&order, &done).await.unwrap(),
        PlaceOutcome::Already
    );
    assert_eq!(remaining(store, &event).await, 8, "taken once");
    assert_eq!(
        store.order(order.order.order_id).await.unwrap(),
        Some(order.order.clone())
    );
    let mut tickets = order.tickets.clone();
    tickets.sort_by_key(|t| t.ticket_id);
    assert_eq!(
        store.tickets(&order.order.ticket_ids).await.unwrap(),
        tickets
    );
    let twice = [
        order.order.ticket_ids.clone(),
        order.order.ticket_ids.clone(),
    ]
    .concat();
    assert_eq!(store.tickets(&twice).await.unwrap(), tickets, "each once");
    assert_eq!(
        store.ticket(tickets[0].ticket_id).await.unwrap(),
        Some(tickets[0].clone())
    );
    assert_eq!(store.ticket(TicketId::generate()).await.unwrap(), None);
    assert_eq!(store.order(OrderId::generate()).await.unwrap(), None);
    let command = store.command(done.command_id).await.unwrap().unwrap();
    // Another command with the same order id places nothing.
    let twin = recorded(store, "ann").await;
    assert_eq!(
        store.place_order(&order, &twin).await.unwrap(),
        PlaceOutcome::Duplicate
    );
    assert_eq!(remaining(store, &event).await, 8);
    assert!(command.status.is_terminal());
}

async fn an_order_is_served_whole_or_refused_whole(store: &dyn Store) {
    let event = event(3, &[3]);
    created(store, &event).await;
    let tt = first_type(&event);
    assert_eq!(place(store, &event, tt, 2).await, PlaceOutcome::Placed);
    assert_eq!(place(store, &event, tt, 2).await, PlaceOutcome::SoldOut);
    assert_eq!(remaining(store, &event).await, 1, "a refusal takes nothing");
    assert_eq!(place(store, &event, tt, 1).await, PlaceOutcome::Placed);
    assert_eq!(place(store, &event, tt, 1).await, PlaceOutcome::SoldOut);
    assert_eq!(remaining(store, &event).await, 0);
}

/// Quotas may add up to more than the capacity: each bounds its type, the
/// capacity bounds them all.
async fn a_type_quota_and_the_capacity_both_bound_a_sale(store: &dyn Store) {
    let event = event(5, &[2, 5]);
    created(store, &event).await;
    let (small, big) = (
        event.spec.ticket_types[0].ticket_type_id,
        event.spec.ticket_types[1].ticket_type_id,
    );
    assert_eq!(place(store, &event, small, 3).await, PlaceOutcome::SoldOut);
    assert_eq!(place(store, &event, small, 2).await, PlaceOutcome::Placed);
    assert_eq!(place(store, &event, small, 1).await, PlaceOutcome::SoldOut);
    assert_eq!(place(store, &event, big, 4).await, PlaceOutcome::SoldOut);
    assert_eq!(place(store, &event, big, 3).await, PlaceOutcome::Placed);
    let counters = store
        .event(event.event_id)
        .await
        .unwrap()
        .unwrap()
        .inventory;
    assert_eq!((counters.sold(), counters.remaining), (5, 0));
    assert_eq!((counters.type_sold(small), counters.type_sold(big)), (2, 3));
    assert_eq!(counters.type_remaining(big), 0, "bounded by the capacity");
}

/// On DynamoDB these 10 seats lie in 4 items of at most 3: an order of 5
/// fits in none of them, and is served all the same.
async fn an_order_larger_than_any_one_part_is_still_served(store: &dyn Store) {
    let event = event(10, &[10]);
    created(store, &event).await;
    let tt = first_type(&event);
    assert_eq!(place(store, &event, tt, 5).await, PlaceOutcome::Placed);
    assert_eq!(place(store, &event, tt, 4).await, PlaceOutcome::Placed);
    assert_eq!(place(store, &event, tt, 2).await, PlaceOutcome::SoldOut);
    assert_eq!(place(store, &event, tt, 1).await, PlaceOutcome::Placed);
    assert_eq!(remaining(store, &event).await, 0);
}

async fn racing_orders_never_take_more_than_there_is(store: &dyn Store) {
    let event = event(7, &[7]);
    created(store, &event).await;
    let tt = first_type(&event);
    let outcomes = join_all((0..20).map(|_| place(store, &event, tt, 1))).await;
    let placed = outcomes
        .iter()
        .filter(|o| **o == PlaceOutcome::Placed)
        .count();
    let sold_out = outcomes
        .iter()
        .filter(|o| **o == PlaceOutcome::SoldOut)
        .count();
    assert_eq!((placed, sold_out), (7, 13));
    assert_eq!(remaining(store, &event).await, 0);
}

async fn nothing_is_sold_for_an_event_not_on_sale(store: &dyn Store) {
    let mut draft = event(5, &[5]);
    draft.spec.status = EventStatus::Draft;
    created(store, &draft).await;
    let tt = first_type(&draft);
    assert_eq!(place(store, &draft, tt, 1).await, PlaceOutcome::NotOnSale);
    assert_eq!(remaining(store, &draft).await, 5);
    let missing = event(5, &[5]);
    assert_eq!(place(store, &missing, tt, 1).await, PlaceOutcome::NotOnSale);
}

async fn a_rejected_order_is_written_once(store: &dyn Store) {
    let event = event(5, &[5]);
    let mut order = placement(event.event_id, first_type(&event), 1, "ann").order;
    order.status = OrderStatus::Rejected;
    order.ticket_ids.clear();
    order.rejection = Some(CommandError::new(Reason::SoldOut, "none left"));
    let done = recorded(store, "ann").await;
    let done = Completion::rejected(
        done.command_id,
        CommandError::new(Reason::SoldOut, "none left"),
    );
    assert_eq!(
        store.reject_order(&order, &done).await.unwrap(),
        Finished::Now
    );
    assert_eq!(
        store.reject_order(&order, &done).await.unwrap(),
        Finished::Already
    );
    assert_eq!(store.order(order.order_id).await.unwrap(), Some(order));
}

async fn a_holders_tickets_are_listed_newest_first(store: &dyn Store) {
    let event = event(10, &[10]);
    created(store, &event).await;
    let tt = first_type(&event);
    let mut mine = Vec::new();
    for _ in 0..3 {
        let order = placement(event.event_id, tt, 1, "cleo");
        let done = recorded(store, "cleo").await;
        store.place_order(&order, &done).await.unwrap();
        mine.push(order.tickets[0].ticket_id);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    place(store, &event, tt, 1).await;
    let page = |after| PageRequest { limit: 2, after };
    let cleo = crate::user("cleo");
    let first = store.tickets_of(&cleo, &page(None)).await.unwrap();
    let ids = |ts: &[TicketRecord]| ts.iter().map(|t| t.ticket_id).collect::<Vec<_>>();
    assert_eq!(ids(&first.items), [mine[2], mine[1]]);
    let rest = store.tickets_of(&cleo, &page(first.next)).await.unwrap();
    assert_eq!((ids(&rest.items), rest.next), (vec![mine[0]], None));
}

/// A scan of the first ticket of `order`, at `at`, through `gate`.
fn scan_of(order: &Placement, at: Timestamp, gate: &str) -> Scan {
    let ticket = &order.tickets[0];
    Scan {
        ticket_id: ticket.ticket_id,
        event_id: ticket.event_id,
        ticket_type_id: ticket.ticket_type_id,
        at,
        gate: Some(gate.to_owned()),
        offline: false,
    }
}

async fn checked_in(store: &dyn Store, event: &EventRecord) -> u32 {
    let counters = store
        .event(event.event_id)
        .await
        .unwrap()
        .unwrap()
        .inventory;
    assert_eq!(
        counters.checked_in,
        counters.type_checked_in(first_type(event))
    );
    counters.checked_in
}

async fn a_ticket_is_admitted_once(store: &dyn Store) {
    let event = event(5, &[5]);
    created(store, &event).await;
    let order = placement(event.event_id, first_type(&event), 1, "ann");
    store
        .place_order(&order, &recorded(store, "ann").await)
        .await
        .unwrap();
    let at = Timestamp::now();
    let scan = scan_of(&order, at, "north");

    let elsewhere = Scan {
        event_id: EventId::generate(),
        ..scan.clone()
    };
    let done = recorded(store, "sam").await;
    assert_eq!(
        store.check_in(&elsewhere, &done).await.unwrap(),
        CheckInOutcome::NotAdmissible
    );
    let unknown = Scan {
        ticket_id: TicketId::generate(),
        ..scan.clone()
    };
    let done = recorded(store, "sam").await;
    assert_eq!(
        store.check_in(&unknown, &done).await.unwrap(),
        CheckInOutcome::NotAdmissible
    );
    let done = recorded(store, "sam").await;
    assert_eq!(
        store.check_in(&scan, &done).await.unwrap(),
        CheckInOutcome::CheckedIn
    );
    assert_eq!(
        store.check_in(&scan, &done).await.unwrap(),
        CheckInOutcome::Already
    );
    let later = scan_of(&order, at + Duration::from_secs(5), "south");
    let done = recorded(store, "sam").await;
    assert_eq!(
        store.check_in(&later, &done).await.unwrap(),
        CheckInOutcome::NotAdmissible
    );
    let admitted = store.ticket(scan.ticket_id).await.unwrap().unwrap();
    assert_eq!(
        (
            admitted.status,
            admitted.checked_in_at,
            admitted.checked_in_gate.as_deref()
        ),
        (TicketStatus::CheckedIn, Some(at), Some("north"))
    );
    assert_eq!(checked_in(store, &event).await, 1);
}

/// A door that was offline uploads a scan earlier than the one recorded:
/// the earlier scan stands, and the ticket is still counted once.
async fn the_earliest_scan_of_a_ticket_stands(store: &dyn Store) {
    let event = event(5, &[5]);
    created(store, &event).await;
    let order = placement(event.event_id, first_type(&event), 1, "ann");
    store
        .place_order(&order, &recorded(store, "ann").await)
        .await
        .unwrap();
    let online = Timestamp::now();
    let done = recorded(store, "sam").await;
    store
        .check_in(&scan_of(&order, online, "north"), &done)
        .await
        .unwrap();
    let earlier = scan_of(&order, online - Duration::from_secs(30), "north");
    let done = recorded(store, "sam").await;
    assert_eq!(
        store.check_in(&earlier, &done).await.unwrap(),
        CheckInOutcome::NotAdmissible,
        "an online scan never replaces another, whatever its stamp"
    );
    let offline = Scan {
        offline: true,
        ..scan_of(&order, online - Duration::from_secs(60), "offline-gate")
    };
    let done = recorded(store, "sam").await;
    assert_eq!(
        store.check_in(&offline, &done).await.unwrap(),
        CheckInOutcome::Earlier
    );
    // The same upload again changes nothing.
    let again = recorded(store, "sam").await;
    assert_eq!(
        store.check_in(&offline, &again).await.unwrap(),
        CheckInOutcome::NotAdmissible
    );
    let admitted = store.ticket(offline.ticket_id).await.unwrap().unwrap();
    assert_eq!(
        (admitted.checked_in_at, admitted.checked_in_gate.as_deref()),
        (Some(offline.at), Some("offline-gate"))
    );
    assert_eq!(checked_in(store, &event).await, 1);
}

async fn a_cancelled_events_tickets_are_not_admitted(store: &dyn Store) {
    let event = event(5, &[5]);
    created(store, &event).await;
    let order = placement(event.event_id, first_type(&event), 1, "ann");
    store
        .place_order(&order, &recorded(store, "ann").await)
        .await
        .unwrap();
    let cancel = recorded(store, "olga").await;
    store
        .change_event_status(event.event_id, EventStatus::Cancelled, &cancel)
        .await
        .unwrap();
    let done = recorded(store, "sam").await;
    assert_eq!(
        store
            .check_in(&scan_of(&order, Timestamp::now(), "north"), &done)
            .await
            .unwrap(),
        CheckInOutcome::NotAdmissible
    );
    assert_eq!(
        place(store, &event, first_type(&event), 1).await,
        PlaceOutcome::NotOnSale
    );
}

/// A hold of `n` seats of the first type, running out at `expires`.
fn hold(event: &EventRecord, n: u32, expires: Timestamp) -> Placement {
    let mut held = placement(event.event_id, first_type(event), n, "ann");
    held.order.status = OrderStatus::PendingPayment;
    held.order.expires_at = Some(expires);
    held.order.ticket_ids.clear();
    held.tickets.clear();
    held
}

/// The tickets a confirmation of `order` writes.
fn tickets_for(order: &OrderRecord) -> Vec<TicketRecord> {
    placement(order.event_id, order.ticket_type_id, order.quantity, "ann")
        .tickets
        .into_iter()
        .map(|t| TicketRecord {
            order_id: order.order_id,
            ..t
        })
        .collect()
}

/// (remaining, held, sold) of the event.
async fn seats(store: &dyn Store, event: &EventRecord) -> (u32, u32, u32) {
    let c = store
        .event(event.event_id)
        .await
        .unwrap()
        .unwrap()
        .inventory;
    (c.remaining, c.held, c.sold())
}

async fn is_due(store: &dyn Store, order: OrderId) -> bool {
    let due = store
        .due_holds(Timestamp::now() + Duration::from_secs(7200), 100)
        .await
        .unwrap();
    due.iter().any(|o| o.order_id == order)
}

async fn a_hold_takes_its_seats_until_confirmed(store: &dyn Store) {
    let event = event(5, &[5]);
    created(store, &event).await;
    let held = hold(&event, 2, Timestamp::now() + Duration::from_secs(3600));
    let id = held.order.order_id;
    store
        .place_order(&held, &recorded(store, "ann").await)
        .await
        .unwrap();
    assert_eq!(seats(store, &event).await, (3, 2, 0));
    assert!(is_due(store, id).await, "indexed until it ends");

    let tickets = tickets_for(&held.order);
    let done = recorded(store, "ann").await;
    let now = Timestamp::now();
    assert_eq!(
        store.confirm_order(id, &tickets, now, &done).await.unwrap(),
        OrderChange::Changed
    );
    assert_eq!(
        store.confirm_order(id, &tickets, now, &done).await.unwrap(),
        OrderChange::Already
    );
    assert_eq!(seats(store, &event).await, (3, 0, 2));
    let confirmed = store.order(id).await.unwrap().unwrap();
    assert_eq!(confirmed.status, OrderStatus::Confirmed);
    assert_eq!(confirmed.ticket_ids.len(), 2);
    assert_eq!(store.tickets(&confirmed.ticket_ids).await.unwrap().len(), 2);
    assert!(!is_due(store, id).await);
    let again = recorded(store, "ann").await;
    assert_eq!(
        store
            .confirm_order(id, &tickets_for(&held.order), now, &again)
            .await
            .unwrap(),
        OrderChange::Refused(OrderStatus::Confirmed)
    );
}

/// A confirmation and an expiry of the same hold, each right by its own
/// clock, race: exactly one of them wins, and the counts add up.
async fn a_hold_runs_out_or_is_confirmed_never_both(store: &dyn Store) {
    let event = event(10, &[10]);
    created(store, &event).await;
    let early = Timestamp::now() - Duration::from_secs(1);
    let ran_out = hold(&event, 1, early);
    store
        .place_order(&ran_out, &recorded(store, "ann").await)
        .await
        .unwrap();
    let id = ran_out.order.order_id;
    assert!(is_due(store, id).await);
    let late = recorded(store, "ann").await;
    assert_eq!(
        store
            .confirm_order(id, &tickets_for(&ran_out.order), Timestamp::now(), &late)
            .await
            .unwrap(),
        OrderChange::Expired
    );
    let expiry = recorded(store, "system").await;
    assert_eq!(
        store
            .expire_order(id, Timestamp::now(), &expiry)
            .await
            .unwrap(),
        OrderChange::Changed
    );
    assert_eq!(
        store.order(id).await.unwrap().unwrap().status,
        OrderStatus::Expired
    );
    assert!(!is_due(store, id).await);
    let not_yet = hold(&event, 1, Timestamp::now() + Duration::from_secs(3600));
    store
        .place_order(&not_yet, &recorded(store, "ann").await)
        .await
        .unwrap();
    let early_expiry = recorded(store, "system").await;
    assert_eq!(
        store
            .expire_order(not_yet.order.order_id, Timestamp::now(), &early_expiry)
            .await
            .unwrap(),
        OrderChange::Refused(OrderStatus::PendingPayment)
    );

    // The race: five holds, each confirmed and expired at once.
    let edge = Timestamp::now() + Duration::from_secs(2);
    let mut winners = 0;
    for _ in 0..5 {
        let contested = hold(&event, 1, edge);
        let id = contested.order.order_id;
        store
            .place_order(&contested, &recorded(store, "ann").await)
            .await
            .unwrap();
        let (confirm, expire) = (
            recorded(store, "ann").await,
            recorded(store, "system").await,
        );
        let tickets = tickets_for(&contested.order);
        let (confirmed, expired) = tokio::join!(
            store.confirm_order(id, &tickets, edge - Duration::from_millis(1), &confirm),
            store.expire_order(id, edge + Duration::from_millis(1), &expire),
        );
        let outcomes = [confirmed.unwrap(), expired.unwrap()];
        let won = outcomes
            .iter()
            .filter(|o| **o == OrderChange::Changed)
            .count();
        assert_eq!(won, 1, "{outcomes:?}");
        winners += won;
    }
    assert_eq!(winners, 5);
    let (remaining, held, sold) = seats(store, &event).await;
    assert_eq!(remaining + held + sold, 10, "no seat counted twice or lost");
    assert_eq!(held, 1, "only the hold not yet due");
}

async fn cancelling_gives_the_seats_back(store: &dyn Store) {
    let event = event(5, &[5]);
    created(store, &event).await;
    let order = placement(event.event_id, first_type(&event), 3, "ann");
    store
        .place_order(&order, &recorded(store, "ann").await)
        .await
        .unwrap();
    assert_eq!(seats(store, &event).await, (2, 0, 3));
    let one = order.tickets[0].ticket_id;
    let done = recorded(store, "ann").await;
    assert_eq!(
        store.cancel_ticket(one, &done).await.unwrap(),
        OrderChange::Changed
    );
    assert_eq!(
        store.cancel_ticket(one, &done).await.unwrap(),
        OrderChange::Already
    );
    assert_eq!(seats(store, &event).await, (3, 0, 2));
    let twice = recorded(store, "ann").await;
    assert_eq!(
        store.cancel_ticket(one, &twice).await.unwrap(),
        OrderChange::Refused(OrderStatus::Confirmed)
    );
    let whole = recorded(store, "ann").await;
    assert_eq!(
        store
            .cancel_order(order.order.order_id, &whole)
            .await
            .unwrap(),
        OrderChange::Changed
    );
    assert_eq!(seats(store, &event).await, (5, 0, 0));
    let tickets = store.tickets(&order.order.ticket_ids).await.unwrap();
    assert!(tickets.iter().all(|t| t.status == TicketStatus::Cancelled));
    let again = recorded(store, "ann").await;
    assert_eq!(
        store
            .cancel_order(order.order.order_id, &again)
            .await
            .unwrap(),
        OrderChange::Refused(OrderStatus::Cancelled)
    );

    // A hold cancelled gives back what it held.
    let held = hold(&event, 2, Timestamp::now() + Duration::from_secs(3600));
    store
        .place_order(&held, &recorded(store, "ann").await)
        .await
        .unwrap();
    let done = recorded(store, "ann").await;
    store
        .cancel_order(held.order.order_id, &done)
        .await
        .unwrap();
    assert_eq!(seats(store, &event).await, (5, 0, 0));
    assert!(!is_due(store, held.order.order_id).await);

    // An order whose ticket was admitted stays.
    let used = placement(event.event_id, first_type(&event), 1, "ann");
    store
        .place_order(&used, &recorded(store, "ann").await)
        .await
        .unwrap();
    store
        .check_in(
            &scan_of(&used, Timestamp::now(), "north"),
            &recorded(store, "sam").await,
        )
        .await
        .unwrap();
    let refused = recorded(store, "ann").await;
    assert_eq!(
        store
            .cancel_order(used.order.order_id, &refused)
            .await
            .unwrap(),
        OrderChange::Refused(OrderStatus::Confirmed)
    );
    assert_eq!(store.order(OrderId::generate()).await.unwrap(), None);
}

async fn every_holder_of_an_event_is_found_page_by_page(store: &dyn Store) {
    let event = event(10, &[10]);
    created(store, &event).await;
    for buyer in ["ann", "ann", "bob", "cleo", "dora"] {
        let order = placement(event.event_id, first_type(&event), 1, buyer);
        store
            .place_order(&order, &recorded(store, buyer).await)
            .await
            .unwrap();
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut after = None;
    loop {
        let page = store
            .holders(event.event_id, &PageRequest { limit: 2, after })
            .await
            .unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|u| u.as_str().to_owned()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["ann", "bob", "cleo", "dora"]
    );
    let elsewhere = store
        .holders(
            EventId::generate(),
            &PageRequest {
                limit: 2,
                after: None,
            },
        )
        .await
        .unwrap();
    assert!(elsewhere.items.is_empty());
}

/// A group's outcomes; an error is the finding itself.
fn settled<T>(outcomes: Vec<Result<T, eventsys_store::StoreError>>) -> Vec<T> {
    outcomes.into_iter().map(Result::unwrap).collect()
}

/// `n` orders of one ticket each by different buyers, each with its
/// recorded command.
async fn group(store: &dyn Store, event: &EventRecord, n: usize) -> Vec<(Placement, Completion)> {
    let mut orders = Vec::with_capacity(n);
    for i in 0..n {
        let buyer = format!("buyer-{i}");
        let order = placement(event.event_id, first_type(event), 1, &buyer);
        orders.push((order, recorded(store, &buyer).await));
    }
    orders
}

async fn a_group_is_decided_in_order_and_its_tail_exactly(store: &dyn Store) {
    let event = event(5, &[5]);
    created(store, &event).await;
    let orders = group(store, &event, 8).await;
    let outcomes: Vec<PlaceOutcome> = settled(store.place_orders(&orders).await);
    let mut expected = vec![PlaceOutcome::Placed; 5];
    expected.extend([PlaceOutcome::SoldOut; 3]);
    assert_eq!(outcomes, expected, "the first five get the five seats");
    assert_eq!(remaining(store, &event).await, 0);
    for (placement, _) in &orders[..5] {
        let order = store.order(placement.order.order_id).await.unwrap();
        assert_eq!(order, Some(placement.order.clone()));
        let tickets = store.tickets(&placement.order.ticket_ids).await.unwrap();
        assert_eq!(tickets.len(), 1);
    }
    for (_, done) in &orders {
        let record = store.command(done.command_id).await.unwrap().unwrap();
        let finished = orders[..5]
            .iter()
            .any(|(_, d)| d.command_id == done.command_id);
        assert_eq!(
            record.status.is_terminal(),
            finished,
            "only the placed ones finished"
        );
    }
    let again: Vec<PlaceOutcome> = settled(store.place_orders(&orders[..5]).await);
    assert_eq!(
        again,
        vec![PlaceOutcome::Already; 5],
        "a redelivered group writes nothing"
    );
    assert_eq!(remaining(store, &event).await, 0);
}

async fn a_group_places_the_others_when_one_finished_before(store: &dyn Store) {
    let event = event(10, &[10]);
    created(store, &event).await;
    let orders = group(store, &event, 4).await;
    let (first, done) = &orders[1];
    assert_eq!(
        store.place_order(first, done).await.unwrap(),
        PlaceOutcome::Placed
    );
    let outcomes: Vec<PlaceOutcome> = settled(store.place_orders(&orders).await);
    assert_eq!(
        outcomes,
        vec![
            PlaceOutcome::Placed,
            PlaceOutcome::Already,
            PlaceOutcome::Placed,
            PlaceOutcome::Placed
        ]
    );
    assert_eq!(
        remaining(store, &event).await,
        6,
        "each order took its seat once"
    );
}

async fn racing_groups_never_take_more_than_there_is(store: &dyn Store) {
    let event = event(25, &[25]);
    created(store, &event).await;
    let mut groups = Vec::new();
    for _ in 0..4 {
        groups.push(group(store, &event, 10).await);
    }
    let outcomes = join_all(groups.iter().map(|g| store.place_orders(g))).await;
    let placed = outcomes
        .iter()
        .flatten()
        .filter(|o| matches!(o, Ok(PlaceOutcome::Placed)))
        .count();
    let sold_out = outcomes
        .iter()
        .flatten()
        .filter(|o| matches!(o, Ok(PlaceOutcome::SoldOut)))
        .count();
    assert_eq!(
        (placed, sold_out),
        (25, 15),
        "every seat sold once, none twice"
    );
    assert_eq!(remaining(store, &event).await, 0);
    for g in &outcomes {
        // Within a group, a later order never got a seat an earlier one did not.
        let first_refused = g
            .iter()
            .position(|o| !matches!(o, Ok(PlaceOutcome::Placed)));
        if let Some(at) = first_refused {
            assert!(
                g[at..]
                    .iter()
                    .all(|o| matches!(o, Ok(PlaceOutcome::SoldOut))),
                "{g:?}"
            );
        }
    }
}

async fn a_group_of_refusals_is_written_once(store: &dyn Store) {
    let event = event(10, &[10]);
    created(store, &event).await;
    let reason = CommandError::new(Reason::SoldOut, "none left");
    let mut refusals = Vec::new();
    for i in 0..3 {
        let buyer = format!("buyer-{i}");
        let mut order = placement(event.event_id, first_type(&event), 1, &buyer).order;
        order.status = OrderStatus::Rejected;
        order.ticket_ids.clear();
        order.rejection = Some(reason.clone());
        let done = recorded(store, &buyer).await;
        let done = Completion::rejected(done.command_id, reason.clone());
        refusals.push((order, done));
    }
    let (order, done) = &refusals[1];
    assert_eq!(
        store.reject_order(order, done).await.unwrap(),
        Finished::Now
    );
    let outcomes: Vec<Finished> = settled(store.reject_orders(&refusals).await);
    assert_eq!(
        outcomes,
        vec![Finished::Now, Finished::Already, Finished::Now]
    );
    for (order, done) in &refusals {
        assert_eq!(
            store.order(order.order_id).await.unwrap().as_ref(),
            Some(order)
        );
        let record = store.command(done.command_id).await.unwrap().unwrap();
        assert_eq!(record.error.as_ref(), Some(&reason));
    }
    let again: Vec<Finished> = settled(store.reject_orders(&refusals).await);
    assert_eq!(again, vec![Finished::Already; 3]);
    assert_eq!(
        remaining(store, &event).await,
        10,
        "a refusal takes no seat"
    );
}
