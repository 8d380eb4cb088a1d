//! Invariant 2 (exactly-once effect): a command delivered twice, republished
//! verbatim, or redelivered after its worker died before acknowledging,
//! makes one order, one set of tickets, one notification.

use std::time::Duration;

use eventsys_api::auth::Role;
use eventsys_bus::{Bus, Exchange, Message};
use eventsys_store::CommandLog;
use eventsys_store_dynamodb::DynamoStore;
use eventsys_tests::{Setup, System, client::event_body, eventually, on_both};
use serde_json::{Value, json};

fn is_update(frame: &Value, command_id: &str, status: &str) -> bool {
    frame["type"] == "command.updated"
        && frame["command_id"] == command_id
        && frame["status"] == status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_published_twice_more_makes_one_order() {
    let mut system = System::start(Setup::Serve).await;
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
    let store = DynamoStore::connect(&system.store_config()).await;
    let record = store
        .command(command_id.parse().expect("a command id"))
        .await
        .expect("the store answers")
        .expect("the command is recorded");
    let bus = system.broker().await;
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
    let event = organizer.get(&format!("/v1/events/{event_id}")).await.body;
    assert_eq!(event["sold"], 2);
    let oracle = system.oracle().await;
    assert_eq!(oracle.count("orders", "event_id", &event_id).await, 1);
    assert_eq!(oracle.count("tickets", "event_id", &event_id).await, 2);
    assert_eq!(oracle.count("notifications", "user_id", "ann").await, 1);
    bus.close().await;
}

on_both!(
    a_worker_killed_before_its_ack_leaves_one_order_and_the_outcome_is_still_announced,
    Setup::Roles { ticketing: 0 }
);

/// Embedded: the whole process dies after the store write, before the ack,
/// and comes back. Distributed: a ticketing worker dies so, and another one
/// takes over. Either way the command was written but never announced, so
/// the notification that its announcement causes proves the redelivery.
async fn a_worker_killed_before_its_ack_leaves_one_order_and_the_outcome_is_still_announced(
    setup: Setup,
) {
    let crash = [("EVENTSYS_FAILPOINT", "worker.after_commit")];
    let mut system = System::start(setup).await;
    let doomed = if setup.is_embedded() {
        // Restarted with the failpoint armed; a create-event command would
        // trip it too, so the event is created first.
        "serve"
    } else {
        system.spawn("doomed", &["worker", "ticketing"], &crash);
        "doomed"
    };
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(10)).await;
    if setup.is_embedded() {
        system.stop("serve").await;
        system.spawn("serve", &["serve"], &crash);
        system.wait_ready().await;
    }
    let buyer = system.client("ann", &[Role::Attendee]);
    let command_id = buyer.order(&event_id, 3).await.str("command_id");

    let exit = system.wait_exit(doomed, Duration::from_secs(20)).await;
    assert!(
        exit.is_some_and(|s| !s.success()),
        "the worker should have crashed: {exit:?}"
    );
    if setup.is_embedded() {
        system.spawn("serve", &["serve"], &[]);
        system.wait_ready().await;
    } else {
        system.spawn("rescuer", &["worker", "ticketing"], &[]);
    }

    let outcome = buyer
        .wait_terminal(&command_id, Duration::from_secs(30))
        .await;
    assert_eq!(outcome["status"], "succeeded");
    let inbox = eventually(Duration::from_secs(30), 1, || async {
        let inbox = buyer.get("/v1/me/notifications").await.body;
        inbox["items"].as_array().map_or(0, Vec::len)
    })
    .await;
    assert_eq!(inbox, 1, "the redelivered command was not announced");
    let event = organizer.get(&format!("/v1/events/{event_id}")).await.body;
    assert_eq!(
        (event["sold"].as_u64(), event["remaining"].as_u64()),
        (Some(3), Some(7))
    );
    let oracle = system.oracle().await;
    assert_eq!(oracle.count("orders", "event_id", &event_id).await, 1);
    assert_eq!(oracle.count("tickets", "event_id", &event_id).await, 3);
    assert_eq!(oracle.count("notifications", "user_id", "ann").await, 1);
}
