//! The life of an event: a draft is its organizer's alone until published;
//! a cancelled event sells nothing more and admits nobody; nothing comes
//! back from cancelled.

use eventsys_api::auth::Role;
use eventsys_tests::{Setup, System, client::event_body, on_both};
use serde_json::json;

on_both!(an_event_goes_from_draft_to_sale_to_cancelled, Setup::Serve);

async fn an_event_goes_from_draft_to_sale_to_cancelled(setup: Setup) {
    let system = System::start(setup).await;
    let organizer = system.client("olga", &[Role::Organizer]);
    let rival = system.client("rita", &[Role::Organizer]);
    let buyer = system.client("ann", &[Role::Attendee]);
    let mut draft = event_body(10);
    draft["status"] = json!("draft");
    let event_id = organizer.create_event(&draft).await;
    let event = format!("/v1/events/{event_id}");
    let wait = [("prefer", "wait=20")];

    // A draft: nobody else sees it, nobody buys it.
    assert_eq!(buyer.get(&event).await.status, 404);
    let early = buyer
        .post(&format!("{event}/orders"), &json!({ "quantity": 1 }))
        .await;
    assert_eq!(early.status, 404, "{:?}", early.body);
    let hijack = rival.post(&format!("{event}/publish"), &json!({})).await;
    assert_eq!(hijack.status, 404, "{:?}", hijack.body);

    // Published: listed and on sale.
    let published = organizer
        .post_with(&format!("{event}/publish"), &json!({}), &wait)
        .await;
    assert_eq!(
        published.body["status"], "succeeded",
        "{:?}",
        published.body
    );
    assert_eq!(buyer.get(&event).await.body["status"], "published");
    let listing = buyer.get("/v1/events").await.body;
    assert!(
        listing["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|e| e["event_id"] == event_id.as_str())
    );
    let again = organizer
        .post(&format!("{event}/publish"), &json!({}))
        .await;
    assert_eq!(
        (again.status, again.body["code"].as_str()),
        (409, Some("conflict"))
    );
    let bought = buyer
        .post_with(&format!("{event}/orders"), &json!({ "quantity": 1 }), &wait)
        .await;
    assert_eq!(bought.body["status"], "succeeded", "{:?}", bought.body);
    let ticket_id = bought.body["result"]["ticket_ids"][0]
        .as_str()
        .expect("a ticket")
        .to_owned();
    let code = buyer
        .get(&format!("/v1/tickets/{ticket_id}"))
        .await
        .str("code");

    // Cancelled: no more sales, the ticket no longer admits, no way back.
    let cancelled = organizer
        .post_with(&format!("{event}/cancel"), &json!({}), &wait)
        .await;
    assert_eq!(
        cancelled.body["status"], "succeeded",
        "{:?}",
        cancelled.body
    );
    assert_eq!(buyer.get(&event).await.body["status"], "cancelled");
    let late = buyer
        .post(&format!("{event}/orders"), &json!({ "quantity": 1 }))
        .await;
    assert_eq!(
        (late.status, late.body["code"].as_str()),
        (409, Some("not_on_sale"))
    );
    let scan = organizer
        .post(&format!("{event}/checkins"), &json!({ "code": code }))
        .await;
    assert_eq!(
        (scan.status, scan.body["code"].as_str()),
        (409, Some("ticket_cancelled")),
        "{:?}",
        scan.body
    );
    let revive = organizer
        .post(&format!("{event}/publish"), &json!({}))
        .await;
    assert_eq!(revive.status, 409);
    let listing = buyer.get("/v1/events").await.body;
    assert!(
        listing["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|e| e["event_id"] != event_id.as_str())
    );
}
