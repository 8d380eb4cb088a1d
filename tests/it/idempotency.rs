//! `Idempotency-Key`: a repeat from the same user returns the same command
//! and never does the work twice.

use std::time::Duration;

use eventsys_api::auth::Role;
use eventsys_tests::{Setup, System, client::event_body, on_both};
use futures::future::join_all;
use serde_json::json;

on_both!(
    a_repeated_key_returns_the_same_command_and_makes_one_order,
    Setup::Serve
);

async fn a_repeated_key_returns_the_same_command_and_makes_one_order(setup: Setup) {
    let mut system = System::start(setup).await;
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(100)).await;
    let ann = system.client("ann", &[Role::Attendee]);
    let path = format!("/v1/events/{event_id}/orders");
    let body = json!({ "quantity": 2 });

    let first = ann
        .post_with(&path, &body, &[("idempotency-key", "buy-1")])
        .await;
    let again = ann
        .post_with(&path, &body, &[("idempotency-key", "buy-1")])
        .await;
    assert_eq!((first.status, again.status), (202, 202));
    assert_eq!(first.str("command_id"), again.str("command_id"));
    assert_eq!(first.str("order_id"), again.str("order_id"));

    // Ten at once with another key: one command between them.
    let racing =
        join_all((0..10).map(|_| ann.post_with(&path, &body, &[("idempotency-key", "buy-2")])))
            .await;
    let ids: std::collections::BTreeSet<String> =
        racing.iter().map(|r| r.str("command_id")).collect();
    assert_eq!(ids.len(), 1, "{racing:?}");

    // The same key for a different request is refused; another user's key is theirs.
    let reused = ann
        .post_with(
            &path,
            &json!({ "quantity": 3 }),
            &[("idempotency-key", "buy-1")],
        )
        .await;
    assert_eq!(
        (reused.status, reused.body["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    let bob = system.client("bob", &[Role::Attendee]);
    let bobs = bob
        .post_with(&path, &body, &[("idempotency-key", "buy-1")])
        .await;
    assert_ne!(bobs.str("command_id"), first.str("command_id"));

    for command in [first.str("command_id"), racing[0].str("command_id")] {
        assert_eq!(
            ann.wait_terminal(&command, Duration::from_secs(20)).await["status"],
            "succeeded"
        );
    }
    bob.wait_terminal(&bobs.str("command_id"), Duration::from_secs(20))
        .await;
    let oracle = system.oracle().await;
    assert_eq!(oracle.count("orders", "buyer_id", "ann").await, 2);
    assert_eq!(oracle.count("tickets", "holder_id", "ann").await, 4);
    assert_eq!(oracle.count("orders", "buyer_id", "bob").await, 1);
}
