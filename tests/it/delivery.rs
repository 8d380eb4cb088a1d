//! Invariant 2 (exactly-once effect): a command delivered twice, republished
//! verbatim, or redelivered after its worker died before acknowledging,
//! makes one order, one set of tickets, one notification.

use std::time::Duration;

use eventsys_api::auth::Role;
use eventsys_bus::{Bus, Exchange, Message, rabbitmq::RabbitBus};
use eventsys_store::{CommandLog, dynamodb::DynamoConfig, dynamodb::DynamoStore};
use eventsys_tests::{Layout, System, client::event_body, oracle::Oracle};
use serde_json::{Value, json};

fn is_update(frame: &Value, command_id: &str, status: &str) -> bool {
    frame["type"] == "command.updated"
        && frame["command_id"] == command_id
        && frame["status"] == status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_published_twice_more_makes_one_order() {
    let system = System::start(Layout::OneProcess).await;
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(10)).await;
    let buyer = system.client("ann", &[Role::Attendee]);
    let mut feed = buyer.live().await;
    let placed = buyer
        .post_with(
            &format!("/v1/events/{event_id}/orders"),
            &json!({ "quantity": 2 }),
            &[("prefer", "wait=20")],
        )
        .await;
    assert_eq!(placed.body["status"], "succeeded", "{:?}", placed.body);
    let command_id = placed.str("command_id");
    let notification = feed
        .wait_for(Duration::from_secs(10), |f| f["type"] == "notification")
        .await
        .expect("the buyer is notified");

    // Anyone on the broker republishes the command, byte for byte, twice.
    let store = DynamoStore::connect(&DynamoConfig {
        endpoint: Some(system.dynamodb.clone()),
        table_prefix: system.table_prefix.clone(),
        local_credentials: true,
    })
    .await;
    let record = store
        .command(command_id.parse().expect("a command id"))
        .await
        .expect("the store answers")
        .expect("the command is recorded");
    let bus = RabbitBus::connect(&system.amqp_url, "tests")
        .await
        .expect("RabbitMQ");
    let message = Message {
        routing_key: "order.place".into(),
        message_id: command_id.clone(),
        body: record.message.into_bytes(),
        traceparent: None,
    };
    for _ in 0..2 {
        bus.publish(Exchange::Commands, &message)
            .await
            .expect("published");
    }

    // Each copy is handled: its outcome announced again, its fact reaching
    // the notification worker again (which pushes the same notification).
    let (mut outcomes, mut pushes) = (0, 0);
    while outcomes < 2 || pushes < 2 {
        let frame = feed.next(Duration::from_secs(20)).await.unwrap_or_else(|| {
            panic!("duplicates not handled: {outcomes} outcomes, {pushes} pushes")
        });
        if is_update(&frame, &command_id, "succeeded") {
            outcomes += 1;
        }
        if frame["type"] == "notification" {
            assert_eq!(frame["notification_id"], notification["notification_id"]);
            pushes += 1;
        }
    }
    let oracle = Oracle::new(&system);
    assert_eq!(oracle.count("orders", "event_id", &event_id).await, 1);
    assert_eq!(oracle.count("tickets", "event_id", &event_id).await, 2);
    let event = organizer.get(&format!("/v1/events/{event_id}")).await.body;
    assert_eq!(event["sold"], 2);
    assert_eq!(oracle.count("notifications", "user_id", "ann").await, 1);
    bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_before_its_ack_leaves_one_order_and_the_outcome_is_still_announced() {
    let mut system = System::start(Layout::Distributed { ticketing: 0 }).await;
    // This worker aborts right after writing the order, before announcing
    // or acknowledging anything.
    system.spawn(
        "doomed",
        &["worker", "ticketing"],
        &[("EVENTSYS_FAILPOINT", "worker.after_commit")],
    );
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(10)).await;
    let buyer = system.client("ann", &[Role::Attendee]);
    let mut feed = buyer.live().await;
    let command_id = buyer.order(&event_id, 3).await.str("command_id");

    let exit = system.wait_exit("doomed", Duration::from_secs(20)).await;
    assert!(
        exit.is_some_and(|s| !s.success()),
        "the worker should have crashed: {exit:?}"
    );
    assert!(
        feed.collect(Duration::from_millis(300))
            .await
            .iter()
            .all(|f| !is_update(f, &command_id, "succeeded")),
        "nothing was announced before the crash"
    );

    system.spawn("rescuer", &["worker", "ticketing"], &[]);
    let announced = feed
        .wait_for(Duration::from_secs(30), |f| {
            is_update(f, &command_id, "succeeded")
        })
        .await;
    assert!(
        announced.is_some(),
        "the redelivered command was not announced"
    );
    let oracle = Oracle::new(&system);
    assert_eq!(oracle.count("orders", "event_id", &event_id).await, 1);
    assert_eq!(oracle.count("tickets", "event_id", &event_id).await, 3);
    let event = organizer.get(&format!("/v1/events/{event_id}")).await.body;
    assert_eq!(
        (event["sold"].as_u64(), event["remaining"].as_u64()),
        (Some(3), Some(7))
    );
}
