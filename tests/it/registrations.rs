//! Free registration (RSVP): one per user and event, through the same
//! inventory as orders, cancellable; a paid ticket type is ordered, not
//! registered for.

use eventsys_api::auth::Role;
use eventsys_tests::{Setup, System, client::event_body, on_both};
use futures::future::join_all;
use serde_json::json;

on_both!(a_user_registers_once_and_may_cancel, Setup::Serve);

async fn a_user_registers_once_and_may_cancel(setup: Setup) {
    let system = System::start(setup).await;
    let organizer = system.client("olga", &[Role::Organizer]);
    let event = organizer.create_event(&event_body(2)).await;
    let path = format!("/v1/events/{event}/registrations");
    let wait = [("prefer", "wait=20")];
    let (ann, bob, cleo) = (
        system.client("ann", &[Role::Attendee]),
        system.client("bob", &[Role::Attendee]),
        system.client("cleo", &[Role::Attendee]),
    );

    // An empty body registers for the free type.
    let first = ann
        .post_raw(&path, Vec::new(), "application/json", &wait)
        .await;
    assert_eq!(first.body["status"], "succeeded", "{:?}", first.body);
    let ann_order = first.str("order_id");
    let again = ann.post(&path, &json!({})).await;
    assert_eq!(
        (again.status, again.body["code"].as_str()),
        (409, Some("conflict"))
    );

    // Bob presses twice at once: one registration, one refusal.
    let empty = json!({});
    let twice = join_all((0..2).map(|_| bob.post_with(&path, &empty, &wait))).await;
    let statuses: Vec<_> = twice
        .iter()
        .map(|r| {
            r.body["status"]
                .as_str()
                .or(r.body["code"].as_str())
                .unwrap_or("?")
                .to_owned()
        })
        .collect();
    assert!(
        statuses.contains(&"succeeded".to_owned())
            && statuses
                .iter()
                .all(|s| ["succeeded", "rejected", "conflict"].contains(&s.as_str())),
        "{statuses:?}"
    );
    let bobs = bob.get("/v1/me/tickets").await.body;
    assert_eq!(bobs["items"].as_array().map(Vec::len), Some(1));

    // Full: the next one is turned away, until Ann cancels.
    let full = cleo.post_with(&path, &json!({}), &wait).await;
    assert_eq!(full.body["error"]["code"], "sold_out", "{:?}", full.body);
    let cancelled = ann
        .post_with(&format!("/v1/orders/{ann_order}/cancel"), &json!({}), &wait)
        .await;
    assert_eq!(
        cancelled.body["status"], "succeeded",
        "{:?}",
        cancelled.body
    );
    let seat = cleo.post_with(&path, &json!({}), &wait).await;
    assert_eq!(seat.body["status"], "succeeded", "{:?}", seat.body);
    let counted = organizer.get(&format!("/v1/events/{event}")).await.body;
    assert_eq!(
        (&counted["sold"], &counted["remaining"]),
        (&json!(2), &json!(0))
    );

    // A paid type is bought, not registered for.
    let mut paid = event_body(5);
    paid["ticket_types"] = json!([
        { "name": "Standard", "price_minor": 900, "currency": "EUR", "quota": 5 }
    ]);
    let paid = organizer.create_event(&paid).await;
    let refused = ann
        .post(&format!("/v1/events/{paid}/registrations"), &json!({}))
        .await;
    assert_eq!(
        (refused.status, refused.body["errors"][0]["field"].as_str()),
        (422, Some("ticket_type")),
        "{:?}",
        refused.body
    );
}
