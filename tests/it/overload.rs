//! Past its capacity the system sheds load at the door: a new command gets
//! `503` with a `Retry-After` before anything is written, while reads and
//! replays of accepted commands keep working; and a rush past capacity,
//! with every buyer retrying under its own key, loses nothing, oversells
//! nothing and leaves no buyer without its outcome.

use std::time::Duration;

use eventsys_api::auth::Role;
use eventsys_tests::{Setup, System, client::event_body, on_both, overload};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

/// A bound of one second of work, so that a line that does not move is
/// full quickly.
const ONE_SECOND: [(&str, &str); 1] = [("EVENTSYS_ADMISSION_MAX_WAIT_SECONDS", "1")];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_line_that_does_not_move_sheds_new_orders_and_still_answers_replays() {
    let mut system = System::start_with(Setup::Roles { ticketing: 0 }, &ONE_SECOND).await;
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(10)).await;
    let ann = system.client("ann", &[Role::Attendee]);
    let bob = system.client("bob", &[Role::Attendee]);
    let path = format!("/v1/events/{event_id}/orders");
    let one = json!({ "quantity": 1 });

    let first = ann
        .post_with(&path, &one, &[("idempotency-key", "ann-1")])
        .await;
    assert_eq!(first.status, 202, "{:?}", first.body);
    // Nobody works the queue: after a second the oldest order has waited
    // longer than the bound.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let shed = bob
        .post_with(&path, &one, &[("idempotency-key", "bob-1")])
        .await;
    assert_eq!(shed.status, 503, "{:?}", shed.body);
    assert_eq!(shed.body["code"], "overloaded");
    let retry_after: u64 = shed.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");

    // A replay is answered, from what was recorded, however full it is.
    let replay = ann
        .post_with(&path, &one, &[("idempotency-key", "ann-1")])
        .await;
    assert_eq!(replay.status, 202, "{:?}", replay.body);
    assert_eq!(replay.str("command_id"), first.str("command_id"));
    // Reads keep working.
    let event = bob.get(&format!("/v1/events/{event_id}")).await;
    assert_eq!(event.status, 200);

    // The line moves again once a worker takes it; the refused order was
    // never recorded, so the same key now places it.
    system.spawn("ticketing-0", &["worker", "ticketing"], &[]);
    let done = ann.wait_terminal(&first.str("command_id"), WAIT).await;
    assert_eq!(done["status"], "succeeded", "{done:?}");
    // The API learns of the end from the broker, a moment after the store
    // shows it: like any client, bob comes back after Retry-After.
    let mut again = bob
        .post_with(&path, &one, &[("idempotency-key", "bob-1")])
        .await;
    for _ in 0..10 {
        if again.status != 503 {
            break;
        }
        assert_eq!(again.body["code"], "overloaded");
        tokio::time::sleep(Duration::from_secs(1)).await;
        again = bob
            .post_with(&path, &one, &[("idempotency-key", "bob-1")])
            .await;
    }
    assert_eq!(again.status, 202, "{:?}", again.body);
    let done = bob.wait_terminal(&again.str("command_id"), WAIT).await;
    assert_eq!(done["status"], "succeeded", "{done:?}");

    let oracle = system.oracle().await;
    assert_eq!(
        oracle.count("orders", "event_id", &event_id).await,
        2,
        "one order each, and nothing for the refused try"
    );
}

/// A short rush at twice a small capacity, under a one-second bound so
/// that it sheds; asserts only what must hold, never speed.
async fn a_rush_past_capacity_loses_nothing_and_every_buyer_learns_its_outcome(setup: Setup) {
    let mut system = System::start_with(setup, &ONE_SECOND).await;
    let plan = overload::Plan {
        capacity: if setup.is_embedded() { 60.0 } else { 8.0 },
        warm: Duration::from_secs(1),
        rush: Duration::from_secs(3),
        after: Duration::from_secs(2),
        patience: Duration::from_secs(90),
    };
    let figures = overload::overload(&mut system, "smoke", plan).await;
    let line = figures.json();
    eprintln!("{line}");
    assert_eq!(figures.lost, 0, "{line}");
    assert_eq!(figures.oversold, 0, "{line}");
    assert_eq!(figures.extra["unlearned"], 0, "{line}");
    assert_eq!(figures.extra["refused"], 0, "{line}");
    assert_eq!(figures.extra["server_errors"], 0, "{line}");
    assert_eq!(figures.accepted, figures.offered, "{line}");
    assert_eq!(figures.completed, figures.accepted, "{line}");
    assert_eq!(figures.extra["event_sold"], figures.succeeded, "{line}");
}
on_both!(
    a_rush_past_capacity_loses_nothing_and_every_buyer_learns_its_outcome,
    Setup::Roles { ticketing: 1 }
);
