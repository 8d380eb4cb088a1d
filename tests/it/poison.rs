//! Invariant 6, on the broker: a message that cannot be handled ends in the
//! dead-letter queue without crashing anything; if it is a recorded command
//! that cannot be carried out, the command becomes `failed`.

use std::time::Duration;

use eventsys_api::auth::Role;
use eventsys_bus::{Bus, Exchange, Message};
use eventsys_messages::{
    Action, CommandEnvelope, CommandStatus, OrderId, PlaceOrder, Reason, TicketTypeId, UserId,
};
use eventsys_store::{CommandLog, CommandRecord};
use eventsys_store_dynamodb::DynamoStore;
use eventsys_tests::{Setup, System, client::event_body, eventually, queue_depth, scrape::Samples};

const DEAD_LETTERS: &str = "eventsys.ticketing.dead-letter";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_are_dead_lettered_and_the_worker_carries_on() {
    let mut system = System::start(Setup::Roles { ticketing: 1 }).await;
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(10)).await;
    let bus = system.broker().await;
    let publish = |id: &str, body: Vec<u8>| Message {
        routing_key: "order.place".into(),
        message_id: id.to_owned(),
        body,
        traceparent: None,
    };

    // Garbage, and a well-formed command that the API never recorded.
    bus.publish(
        Exchange::Commands,
        &publish("garbage", b"{not json".to_vec()),
    )
    .await
    .expect("published");
    let forged = CommandEnvelope::new(
        UserId::parse("mallory").expect("an id"),
        Action::PlaceOrder(PlaceOrder {
            order_id: OrderId::generate(),
            event_id: event_id.parse().expect("an id"),
            ticket_type_id: TicketTypeId::generate(),
            quantity: 1,
        }),
    );
    bus.publish(Exchange::Commands, &Message::command(&forged, None))
        .await
        .expect("published");

    // A recorded command in a schema this build does not know.
    let store = DynamoStore::connect(&system.store_config()).await;
    let future = CommandEnvelope::new(UserId::parse("ann").expect("an id"), forged.action.clone());
    let mut body: serde_json::Value = serde_json::from_slice(&future.to_json()).expect("json");
    body["version"] = 99.into();
    let body = body.to_string();
    let record = CommandRecord {
        command_id: future.command_id(),
        kind: "order.place".into(),
        issuer: future.issuer.clone(),
        status: CommandStatus::Accepted,
        submitted_at: future.occurred_at,
        updated_at: future.occurred_at,
        resources: Default::default(),
        result: None,
        error: None,
        message: body.clone(),
    };
    store.record_command(&record, None).await.expect("recorded");
    bus.publish(
        Exchange::Commands,
        &publish(&future.command_id().to_string(), body.into_bytes()),
    )
    .await
    .expect("published");

    let depth = eventually(Duration::from_secs(20), 3, || {
        queue_depth(&system, DEAD_LETTERS)
    })
    .await;
    assert_eq!(depth, 3);
    let failed = store
        .command(future.command_id())
        .await
        .expect("store")
        .expect("record");
    assert_eq!(failed.status, CommandStatus::Failed);
    assert_eq!(failed.error.map(|e| e.code), Some(Reason::Unprocessable));

    // The worker is still there and still sells.
    let buyer = system.client("ann", &[Role::Attendee]);
    let command_id = buyer.order(&event_id, 1).await.str("command_id");
    let outcome = buyer
        .wait_terminal(&command_id, Duration::from_secs(20))
        .await;
    assert_eq!(outcome["status"], "succeeded");
    assert_eq!(queue_depth(&system, DEAD_LETTERS).await, 3);
    // The alert on dead letters reads what the worker counted.
    let counted = Samples::parse(
        &system
            .scrape()
            .await
            .into_iter()
            .map(|(_, text)| text)
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let dead = [("queue", "eventsys.ticketing"), ("outcome", "dead_letter")];
    assert_eq!(counted.sum("eventsys_deliveries_total", &dead), 3.0);
    assert_eq!(
        counted.sum(
            "eventsys_commands_finished_total",
            &[("command", "order.place"), ("status", "failed")]
        ),
        1.0
    );
    bus.close().await;
    // Only the last order took effect.
    assert_eq!(system.oracle().await.all("orders").await, 1);
}
