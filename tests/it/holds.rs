//! Paid tickets: an order is a hold until it is confirmed, and a hold that
//! is not confirmed in time ends by itself, its seats back on sale;
//! cancelling gives seats back too. Never oversold, nothing stranded.

use std::time::Duration;

use eventsys_api::auth::Role;
use eventsys_tests::{Client, Setup, System, client::event_body, eventually, on_both};
use serde_json::{Value, json};

on_both!(a_hold_is_confirmed_or_runs_out_on_time, Setup::Serve);

const WAIT: [(&str, &str); 1] = [("prefer", "wait=20")];

async fn order(buyer: &Client, event: &str, quantity: u32) -> Value {
    buyer
        .post_with(
            &format!("/v1/events/{event}/orders"),
            &json!({ "quantity": quantity }),
            &WAIT,
        )
        .await
        .body
}

/// (sold, held, remaining) as the organizer's stats show them.
async fn seats(organizer: &Client, event: &str) -> (u64, u64, u64) {
    let stats = organizer
        .get(&format!("/v1/events/{event}/stats"))
        .await
        .body;
    let n = |k: &str| stats[k].as_u64().unwrap_or(u64::MAX);
    (n("sold"), n("held"), n("remaining"))
}

async fn a_hold_is_confirmed_or_runs_out_on_time(setup: Setup) {
    let system = System::start(setup).await;
    let organizer = system.client("olga", &[Role::Organizer]);
    let mut body = event_body(3);
    // Long enough for a loaded test machine to confirm in time, short
    // enough to watch a hold run out.
    body["hold_seconds"] = json!(15);
    body["ticket_types"] = json!([
        { "name": "Standard", "price_minor": 2500, "currency": "EUR", "quota": 3 }
    ]);
    let event = organizer.create_event(&body).await;
    let (ann, bob, cleo) = (
        system.client("ann", &[Role::Attendee]),
        system.client("bob", &[Role::Attendee]),
        system.client("cleo", &[Role::Attendee]),
    );

    // Ann's order holds two seats: not sold, not for sale either.
    let held = order(&ann, &event, 2).await;
    assert_eq!(held["status"], "succeeded", "{held:?}");
    assert_eq!(held["result"]["order_status"], "pending_payment");
    assert!(held["result"]["expires_at"].is_string());
    let ann_order = held["result"]["order_id"]
        .as_str()
        .expect("an order")
        .to_owned();
    assert_eq!(seats(&organizer, &event).await, (0, 2, 1));
    let refused = order(&bob, &event, 2).await;
    assert_eq!(refused["error"]["code"], "sold_out", "{refused:?}");

    // Confirmed in time: the held seats are sold, and tickets exist.
    let confirmed = ann
        .post_with(
            &format!("/v1/orders/{ann_order}/confirm"),
            &json!({}),
            &WAIT,
        )
        .await;
    assert_eq!(
        confirmed.body["status"], "succeeded",
        "{:?}",
        confirmed.body
    );
    let mine = ann.get(&format!("/v1/orders/{ann_order}")).await.body;
    assert_eq!(mine["status"], "confirmed");
    assert_eq!(mine["tickets"].as_array().map(Vec::len), Some(2));
    assert_eq!(seats(&organizer, &event).await, (2, 0, 1));

    // Cleo's hold is never confirmed: it ends by itself, on time.
    let cleo_order = order(&cleo, &event, 1).await["result"]["order_id"]
        .as_str()
        .expect("an order")
        .to_owned();
    assert_eq!(seats(&organizer, &event).await, (2, 1, 0));
    let path = format!("/v1/orders/{cleo_order}");
    let status = eventually(Duration::from_secs(45), json!("expired"), || async {
        cleo.get(&path).await.body["status"].clone()
    })
    .await;
    assert_eq!(status, "expired");
    assert_eq!(seats(&organizer, &event).await, (2, 0, 1));
    let late = cleo
        .post_with(&format!("{path}/confirm"), &json!({}), &WAIT)
        .await;
    assert_eq!(
        late.body["error"]["code"], "hold_expired",
        "{:?}",
        late.body
    );
    let told = eventually(Duration::from_secs(10), true, || async {
        let inbox = cleo.get("/v1/me/notifications").await.body;
        inbox["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|n| n["kind"] == "order.expired"))
    })
    .await;
    assert!(told, "cleo is told her hold ran out");

    // Cancelling gives seats back: one ticket, then the whole order; only
    // its buyer or the organizer may.
    let ticket = mine["tickets"][0]["ticket_id"].as_str().expect("a ticket");
    assert_eq!(
        bob.post(&format!("/v1/tickets/{ticket}/cancel"), &json!({}))
            .await
            .status,
        404
    );
    let one = ann
        .post_with(&format!("/v1/tickets/{ticket}/cancel"), &json!({}), &WAIT)
        .await;
    assert_eq!(one.body["status"], "succeeded", "{:?}", one.body);
    assert_eq!(seats(&organizer, &event).await, (1, 0, 2));
    let whole = organizer
        .post_with(&format!("/v1/orders/{ann_order}/cancel"), &json!({}), &WAIT)
        .await;
    assert_eq!(whole.body["status"], "succeeded", "{:?}", whole.body);
    assert_eq!(seats(&organizer, &event).await, (0, 0, 3));
    let after = ann.get(&format!("/v1/orders/{ann_order}")).await.body;
    assert_eq!(after["status"], "cancelled");
    assert!(
        after["tickets"]
            .as_array()
            .expect("tickets")
            .iter()
            .all(|t| t["status"] == "cancelled")
    );
}
