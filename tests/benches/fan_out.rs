//! Fan-out benchmark: how long every holder of an event takes to hear that
//! it was cancelled. The event's holders are written straight into the
//! embedded store (one order of one ticket each), the system is started on
//! it, the organizer cancels, and the clock stops when the last holder's
//! notification is in their inbox. A small event is measured in the same
//! run as the baseline. See BENCHMARKS.md for the method.
//!
//! Run it with `tests/scripts/bench.sh`.

use std::time::{Duration, Instant};

use eventsys_api::auth::Role;
use eventsys_messages::{
    CommandEnvelope, EventId, EventSpec, OrderId, OrderStatus, PlaceOrder, TicketId, TicketStatus,
    Timestamp, UserId,
};
use eventsys_store::{
    CommandLog, CommandRecord, Completion, EventRecord, EventStore, NotificationStore, OrderRecord,
    OrderStore, Placement, TicketRecord,
};
use eventsys_store_embedded::EmbeddedStore;
use eventsys_tests::{Setup, System};
use futures::{StreamExt, stream};
use serde_json::json;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn user(name: &str) -> UserId {
    UserId::parse(name).expect("a user id")
}

/// Records a command of `issuer` so that an effect may be written under it.
async fn recorded(store: &EmbeddedStore, issuer: &UserId) -> Completion {
    let envelope = CommandEnvelope::new(
        issuer.clone(),
        eventsys_messages::Action::PlaceOrder(PlaceOrder {
            order_id: OrderId::generate(),
            event_id: EventId::generate(),
            ticket_type_id: eventsys_messages::TicketTypeId::generate(),
            quantity: 1,
        }),
    );
    store
        .record_command(&CommandRecord::accepted(&envelope), None)
        .await
        .expect("recording a command");
    Completion::succeeded(envelope.command_id(), Default::default())
}

/// An event of `holders` seats, each sold to a holder of its own.
async fn seed(store: &EmbeddedStore, holders: usize) -> EventId {
    let organizer = user("olga");
    let capacity = u32::try_from(holders).expect("a capacity");
    let now = Timestamp::now();
    let mut spec = EventSpec::sample(capacity, &[capacity]);
    spec.max_per_order = 1;
    let event = EventRecord {
        event_id: EventId::generate(),
        organizer_id: organizer.clone(),
        spec,
        staff: Default::default(),
        created_at: now,
        updated_at: now,
    };
    let done = recorded(store, &organizer).await;
    store.create_event(&event, &done).await.expect("an event");
    let ticket_type = event.spec.ticket_types[0].ticket_type_id;
    stream::iter(0..holders)
        .for_each_concurrent(16, |i| {
            let event_id = event.event_id;
            async move {
                let holder = user(&format!("holder-{i:06}"));
                let order_id = OrderId::generate();
                let ticket = TicketRecord {
                    ticket_id: TicketId::generate(),
                    event_id,
                    order_id,
                    holder_id: holder.clone(),
                    ticket_type_id: ticket_type,
                    status: TicketStatus::Valid,
                    created_at: Timestamp::now(),
                    checked_in_at: None,
                    checked_in_gate: None,
                };
                let placement = Placement {
                    order: OrderRecord {
                        order_id,
                        event_id,
                        buyer_id: holder.clone(),
                        ticket_type_id: ticket_type,
                        quantity: 1,
                        status: OrderStatus::Confirmed,
                        created_at: ticket.created_at,
                        expires_at: None,
                        ticket_ids: vec![ticket.ticket_id],
                        rejection: None,
                    },
                    tickets: vec![ticket],
                };
                let done = recorded(store, &holder).await;
                store.place_order(&placement, &done).await.expect("a sale");
            }
        })
        .await;
    event.event_id
}

/// Seconds from the cancellation until every holder was told.
async fn measure(holders: usize) -> f64 {
    let mut system = System::start(Setup::Embedded).await;
    system.stop("serve").await;
    let store = EmbeddedStore::open(&system.data_dir.join("store.redb")).expect("the store");
    let seeding = Instant::now();
    let event_id = seed(&store, holders).await;
    eprintln!(
        "seeded {holders} holders in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    drop(store);
    system.spawn("serve", &["serve"], &[]);
    system.wait_ready().await;

    let organizer = system.client("olga", &[Role::Organizer]);
    let last = system.client(&format!("holder-{:06}", holders - 1), &[Role::Attendee]);
    let first = system.client("holder-000000", &[Role::Attendee]);
    let started = Instant::now();
    let cancelled = organizer
        .post(&format!("/v1/events/{event_id}/cancel"), &json!({}))
        .await;
    assert_eq!(cancelled.status, 202, "{:?}", cancelled.body);
    // Holders are told a page at a time in the order their tickets were
    // sold: the last one sold is in the last page.
    let deadline = started + Duration::from_secs(600);
    while !(told(&last).await && told(&first).await) {
        assert!(
            Instant::now() < deadline,
            "holders not told within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seconds = started.elapsed().as_secs_f64();

    // Not timed: every holder, exactly once.
    system.stop("serve").await;
    let store = EmbeddedStore::open(&system.data_dir.join("store.redb")).expect("the store");
    let page = eventsys_store::PageRequest {
        limit: 10,
        after: None,
    };
    let mut told_once = 0;
    for i in 0..holders {
        let inbox = store
            .notifications(&user(&format!("holder-{i:06}")), &page)
            .await
            .expect("an inbox");
        let cancelled = inbox
            .items
            .iter()
            .filter(|n| n.kind == "event.cancelled")
            .count();
        assert_eq!(cancelled, 1, "holder {i}");
        told_once += 1;
    }
    assert_eq!(told_once, holders);
    seconds
}

/// Whether `client` was told of the cancellation.
async fn told(client: &eventsys_tests::Client) -> bool {
    let inbox = client.get("/v1/me/notifications").await.body;
    inbox["items"]
        .as_array()
        .is_some_and(|items| items.iter().any(|n| n["kind"] == "event.cancelled"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let holders = setting("EVENTSYS_BENCH_HOLDERS", 20_000);
    let baseline = setting("EVENTSYS_BENCH_BASELINE_HOLDERS", 1_000);
    println!("fan-out: an event cancelled, every holder told; embedded");
    println!(
        "{:<12} {:>16} {:>16} {:>12}",
        "holders", "all told (s)", "holders/s", "x baseline"
    );
    let base = measure(baseline).await;
    let large = measure(holders).await;
    for (n, seconds) in [(baseline, base), (holders, large)] {
        println!(
            "{:<12} {:>16.2} {:>16.0} {:>12.2}",
            n,
            seconds,
            n as f64 / seconds,
            seconds / base
        );
    }
}
