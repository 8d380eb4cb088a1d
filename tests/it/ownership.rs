//! Invariant 5: nobody sees or changes what is not theirs.

use std::time::Duration;

use eventsys_api::auth::Role;
use eventsys_tests::{Setup, System, client::event_body, on_both};
use serde_json::json;

on_both!(
    orders_tickets_commands_and_notifications_belong_to_their_user,
    Setup::Serve
);

async fn orders_tickets_commands_and_notifications_belong_to_their_user(setup: Setup) {
    let system = System::start(setup).await;
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(10)).await;
    let (ann, bob) = (
        system.client("ann", &[Role::Attendee]),
        system.client("bob", &[Role::Attendee]),
    );
    let mut feed = ann.live().await;
    let placed = ann
        .post_with(
            &format!("/v1/events/{event_id}/orders"),
            &json!({ "quantity": 1 }),
            &[("prefer", "wait=20")],
        )
        .await;
    let (command_id, order_id) = (placed.str("command_id"), placed.str("order_id"));
    let ticket_id = placed.body["result"]["ticket_ids"][0]
        .as_str()
        .expect("a ticket")
        .to_owned();
    let notification = feed
        .wait_for(Duration::from_secs(10), |f| f["type"] == "notification")
        .await
        .expect("ann is notified");

    for path in [
        format!("/v1/orders/{order_id}"),
        format!("/v1/commands/{command_id}"),
        format!("/v1/tickets/{ticket_id}"),
    ] {
        assert_eq!(ann.get(&path).await.status, 200, "{path}");
        assert_eq!(bob.get(&path).await.status, 404, "bob sees {path}");
    }
    assert_eq!(bob.get("/v1/me/tickets").await.body["items"], json!([]));
    assert_eq!(
        bob.get("/v1/me/notifications").await.body["items"],
        json!([])
    );

    // Bob cannot mark Ann's notification read.
    let id = notification["notification_id"].as_str().expect("an id");
    let marked = bob
        .post_with(
            &format!("/v1/me/notifications/{id}/read"),
            &json!({}),
            &[("prefer", "wait=10")],
        )
        .await;
    assert_eq!(
        marked.body["error"]["code"], "not_found",
        "{:?}",
        marked.body
    );
    let inbox = ann.get("/v1/me/notifications").await.body;
    assert_eq!(inbox["items"][0]["read"], false);
    let marked = ann
        .post_with(
            &format!("/v1/me/notifications/{id}/read"),
            &json!({}),
            &[("prefer", "wait=10")],
        )
        .await;
    assert_eq!(marked.body["status"], "succeeded", "{:?}", marked.body);
    assert_eq!(
        ann.get("/v1/me/notifications").await.body["items"][0]["read"],
        true
    );

    // A draft is its organizer's alone.
    let mut draft = event_body(5);
    draft["status"] = json!("draft");
    let draft_id = organizer.create_event(&draft).await;
    let rival = system.client("rival", &[Role::Organizer]);
    assert_eq!(
        organizer
            .get(&format!("/v1/events/{draft_id}"))
            .await
            .status,
        200
    );
    assert_eq!(
        rival.get(&format!("/v1/events/{draft_id}")).await.status,
        404
    );
    assert_eq!(
        system
            .anonymous()
            .get(&format!("/v1/events/{draft_id}"))
            .await
            .status,
        404
    );
    let listed = system.anonymous().get("/v1/events").await.body;
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["event_id"].as_str())
        .collect();
    assert_eq!(ids, [event_id.as_str()]);
}
