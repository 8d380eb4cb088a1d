//! The waiting list end to end: a sold-out event's seat that comes free is
//! offered to the first in line, as a hold of their own, before anyone
//! else may buy it; the offer is confirmed like any order.

use std::time::Duration;

use eventsys_api::auth::Role;
use eventsys_tests::{Client, Setup, System, client::event_body, eventually, on_both};
use serde_json::{Value, json};

on_both!(
    a_seat_that_comes_free_goes_to_the_first_in_line,
    Setup::Serve
);

const WAIT: [(&str, &str); 1] = [("prefer", "wait=20")];

async fn place(user: &Client, event: &str) -> Value {
    user.get(&format!("/v1/events/{event}/waitlist/me"))
        .await
        .body
}

async fn a_seat_that_comes_free_goes_to_the_first_in_line(setup: Setup) {
    let system = System::start(setup).await;
    let organizer = system.client("olga", &[Role::Organizer]);
    let event = organizer.create_event(&event_body(1)).await;
    let [ann, bob, cleo, dave] =
        ["ann", "bob", "cleo", "dave"].map(|u| system.client(u, &[Role::Attendee]));
    let bought = ann
        .post_with(
            &format!("/v1/events/{event}/orders"),
            &json!({ "quantity": 1 }),
            &WAIT,
        )
        .await;
    assert_eq!(bought.body["status"], "succeeded", "{:?}", bought.body);
    let ann_order = bought.str("order_id");

    for waiter in [&bob, &cleo] {
        let joined = waiter
            .post_raw(
                &format!("/v1/events/{event}/waitlist"),
                Vec::new(),
                "application/json",
                &WAIT,
            )
            .await;
        assert_eq!(joined.body["status"], "succeeded", "{:?}", joined.body);
    }
    assert_eq!(place(&bob, &event).await["position"], 1);
    assert_eq!(place(&cleo, &event).await["position"], 2);
    let again = bob
        .post_with(&format!("/v1/events/{event}/waitlist"), &json!({}), &WAIT)
        .await;
    assert_eq!(again.body["error"]["code"], "conflict", "{:?}", again.body);

    // Cleo watches the event: the list moving up is pushed to her.
    let mut cleo_feed = cleo.live().await;
    cleo_feed
        .send(json!({ "type": "subscribe", "event_id": event }))
        .await;
    assert!(
        cleo_feed
            .wait_for(Duration::from_secs(10), |f| f["type"] == "subscribed")
            .await
            .is_some()
    );

    // Ann cancels: the seat is Bob's to confirm, not Dave's to buy.
    let cancelled = ann
        .post_with(&format!("/v1/orders/{ann_order}/cancel"), &json!({}), &WAIT)
        .await;
    assert_eq!(
        cancelled.body["status"], "succeeded",
        "{:?}",
        cancelled.body
    );
    let offered = eventually(Duration::from_secs(15), json!("offered"), || async {
        place(&bob, &event).await["status"].clone()
    })
    .await;
    assert_eq!(offered, "offered");
    let offer = place(&bob, &event).await["offer"].clone();
    assert_eq!(offer["status"], "pending_payment", "{offer:?}");
    assert_eq!(place(&cleo, &event).await["position"], 1);
    let moved = cleo_feed
        .wait_for(Duration::from_secs(15), |f| f["type"] == "waitlist.moved")
        .await
        .expect("the list moving is pushed");
    assert_eq!(moved["offered"], 1);
    let refused = dave
        .post_with(
            &format!("/v1/events/{event}/orders"),
            &json!({ "quantity": 1 }),
            &WAIT,
        )
        .await;
    assert_eq!(
        refused.body["error"]["code"], "sold_out",
        "{:?}",
        refused.body
    );

    let order_id = offer["order_id"].as_str().expect("an order");
    let confirmed = bob
        .post_with(&format!("/v1/orders/{order_id}/confirm"), &json!({}), &WAIT)
        .await;
    assert_eq!(
        confirmed.body["status"], "succeeded",
        "{:?}",
        confirmed.body
    );
    let tickets = bob.get("/v1/me/tickets").await.body;
    assert_eq!(tickets["items"].as_array().map(Vec::len), Some(1));
    let told = eventually(Duration::from_secs(10), true, || async {
        let inbox = bob.get("/v1/me/notifications").await.body;
        inbox["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|n| n["kind"] == "waitlist.offer"))
    })
    .await;
    assert!(told, "bob is told of the offer");
    let stats = organizer
        .get(&format!("/v1/events/{event}/stats"))
        .await
        .body;
    assert_eq!(
        (&stats["sold"], &stats["held"], &stats["remaining"]),
        (&json!(1), &json!(0), &json!(0))
    );
}
