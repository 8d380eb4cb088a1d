//! Operating the system: dead letters can be listed and, once their cause
//! is fixed, replayed, on either adapter set.

use std::{sync::Arc, time::Duration};

use eventsys_api::auth::Role;
use eventsys_bus::{Bus, Exchange, Message};
use eventsys_bus_embedded::EmbeddedBus;
use eventsys_messages::{
    Action, CommandEnvelope, CommandError, CommandStatus, OrderId, PlaceOrder, Reason, UserId,
    WorkQueue,
};
use eventsys_store::{CommandRecord, Completion, Store};
use eventsys_store_dynamodb::DynamoStore;
use eventsys_store_embedded::EmbeddedStore;
use eventsys_tests::{Setup, System, client::event_body, on_both};

on_both!(
    dead_letters_are_listed_and_replayed,
    Setup::Roles { ticketing: 0 }
);

/// The adapters of `system`, opened by the test itself.
async fn adapters(system: &System) -> (Arc<dyn Bus>, Arc<dyn Store>) {
    if system.setup.is_embedded() {
        let bus = EmbeddedBus::open(&system.data_dir.join("queue.redb")).expect("the queue file");
        let store =
            EmbeddedStore::open(&system.data_dir.join("store.redb")).expect("the store file");
        (Arc::new(bus), Arc::new(store))
    } else {
        let bus = system.broker().await;
        let config = system.store_config();
        (Arc::new(bus), Arc::new(DynamoStore::connect(&config).await))
    }
}

fn dead_letters(system: &System) -> Vec<String> {
    let listed = system.run(&["dlq", "list", "--role", "ticketing"], &[]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn dead_letters_are_listed_and_replayed(setup: Setup) {
    let mut system = System::start(setup).await;
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(10)).await;
    let ticket_type = organizer.get(&format!("/v1/events/{event_id}")).await.body["ticket_types"]
        [0]["ticket_type_id"]
        .as_str()
        .expect("a ticket type")
        .parse()
        .expect("an id");
    if setup.is_embedded() {
        // The embedded files belong to one process at a time.
        system.stop("serve").await;
    }

    // An order that a worker gave up on (its store was down too long, say),
    // and a message nobody can read: both end up dead-lettered.
    let (bus, store) = adapters(&system).await;
    let order = CommandEnvelope::new(
        UserId::parse("ann").expect("an id"),
        Action::PlaceOrder(PlaceOrder {
            order_id: OrderId::generate(),
            event_id: event_id.parse().expect("an id"),
            ticket_type_id: ticket_type,
            quantity: 1,
        }),
    );
    let record = CommandRecord {
        command_id: order.command_id(),
        kind: "order.place".into(),
        issuer: order.issuer.clone(),
        status: CommandStatus::Accepted,
        submitted_at: order.occurred_at,
        updated_at: order.occurred_at,
        resources: Default::default(),
        result: None,
        error: None,
        message: String::from_utf8(order.to_json()).expect("JSON"),
    };
    store.record_command(&record, None).await.expect("recorded");
    let gave_up = Completion::failed(
        order.command_id(),
        CommandError::new(Reason::GaveUp, "the store stayed down"),
    );
    store.finish_command(&gave_up).await.expect("failed");
    let garbage = Message {
        routing_key: "order.place".into(),
        message_id: "garbage".into(),
        body: b"{not json".to_vec(),
        traceparent: None,
    };
    for message in [Message::command(&order, None), garbage] {
        bus.publish(Exchange::Commands, &message)
            .await
            .expect("published");
    }
    let mut queue = bus
        .consume(WorkQueue::Ticketing, 10)
        .await
        .expect("consuming");
    for _ in 0..2 {
        let delivery = tokio::time::timeout(Duration::from_secs(10), queue.next())
            .await
            .expect("a delivery in time")
            .expect("a delivery");
        delivery.dead_letter().await.expect("dead-lettered");
    }
    queue.stop().await;
    queue.close().await;
    bus.close().await;
    drop((bus, store));

    let listed = dead_letters(&system);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(
        listed
            .iter()
            .any(|l| l.contains(&order.command_id().to_string()) && l.ends_with("failed"))
    );
    assert!(
        listed
            .iter()
            .any(|l| l.contains("garbage") && l.ends_with("unrecorded"))
    );

    let replayed = system.run(&["dlq", "replay", "--role", "ticketing"], &[]);
    let said = String::from_utf8_lossy(&replayed.stdout);
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    assert!(said.contains("1 replayed, 1 left"), "{said}");

    // With a worker back, the reopened order goes through, once.
    if setup.is_embedded() {
        system.spawn("serve", &["serve"], &[]);
    } else {
        system.spawn("ticketing-0", &["worker", "ticketing"], &[]);
    }
    system.wait_ready().await;
    let ann = system.client("ann", &[Role::Attendee]);
    let outcome = ann
        .wait_terminal(&order.command_id().to_string(), Duration::from_secs(30))
        .await;
    assert_eq!(outcome["status"], "succeeded", "{outcome}");
    assert_eq!(
        ann.get("/v1/me/tickets").await.body["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    if setup.is_embedded() {
        system.stop("serve").await;
    }
    let left = dead_letters(&system);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].contains("garbage"));
}

/// A role that cannot serve stops at start and says what to do: tables not
/// made yet (the store answers, so nothing is worth waiting for), or a
/// secret too short (reported before anything is reached).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misconfigured_role_stops_at_start_and_says_what_to_do() {
    let system = System::start(Setup::Serve).await;
    let started = std::time::Instant::now();
    let no_tables = system.run(
        &["worker", "ticketing"],
        &[("EVENTSYS_TABLE_PREFIX", "never_initialised_")],
    );
    let said = String::from_utf8_lossy(&no_tables.stderr);
    assert!(!no_tables.status.success(), "{said}");
    assert!(
        said.contains("table never_initialised_commands does not exist: run `eventsys init`"),
        "{said}"
    );
    let short_secret = system.run(&["api"], &[("EVENTSYS_JWT_SECRET", "short")]);
    let said = String::from_utf8_lossy(&short_secret.stderr);
    assert!(!short_secret.status.success(), "{said}");
    assert!(
        said.contains("EVENTSYS_JWT_SECRET must be at least 16 characters"),
        "{said}"
    );
    assert!(!said.contains("connected to RabbitMQ"), "{said}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "neither waited for anything"
    );
}
