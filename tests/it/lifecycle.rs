//! The life of an event: a draft is its organizer's alone until published;
//! a cancelled event sells nothing more and admits nobody; nothing comes
//! back from cancelled.

use eventsys_api::auth::Role;
use std::time::Duration;

use eventsys_tests::{Client, Setup, System, client::event_body, eventually, on_both};
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

on_both!(
    an_organizer_revises_an_event_and_its_ticket_types,
    Setup::Serve
);

/// Capacity up and down (never below what is sold), a new paid type, a
/// type closed and reopened.
async fn an_organizer_revises_an_event_and_its_ticket_types(setup: Setup) {
    let system = System::start(setup).await;
    let organizer = system.client("olga", &[Role::Organizer]);
    let rival = system.client("rita", &[Role::Organizer]);
    let buyer = system.client("ann", &[Role::Attendee]);
    let event_id = organizer.create_event(&event_body(3)).await;
    let event = format!("/v1/events/{event_id}");
    let wait = [("prefer", "wait=20")];
    let patch = |body: serde_json::Value| {
        let (organizer, event) = (&organizer, &event);
        async move {
            organizer
                .send_with(reqwest::Method::PATCH, event, &body, &wait)
                .await
        }
    };

    let bought = buyer
        .post_with(&format!("{event}/orders"), &json!({ "quantity": 2 }), &wait)
        .await;
    assert_eq!(bought.body["status"], "succeeded", "{:?}", bought.body);

    let moved = patch(json!({ "venue": "Hall 2", "capacity": 5 })).await;
    assert_eq!(moved.body["status"], "succeeded", "{:?}", moved.body);
    assert!(
        told(&buyer, "event.updated").await,
        "the holder hears of the move"
    );
    let now = buyer.get(&event).await.body;
    assert_eq!(
        (&now["venue"], &now["capacity"], &now["remaining"]),
        (&json!("Hall 2"), &json!(5), &json!(3))
    );
    // The default type's quota was the old capacity: it still bounds it.
    let tt = now["ticket_types"][0]["ticket_type_id"]
        .as_str()
        .expect("a type")
        .to_owned();
    assert_eq!(now["ticket_types"][0]["remaining"], 1);

    let below = patch(json!({ "capacity": 1 })).await;
    assert_eq!(
        below.status, 422,
        "a quota above the capacity: {:?}",
        below.body
    );
    let hijack = rival
        .send_with(
            reqwest::Method::PATCH,
            &event,
            &json!({ "venue": "Mine" }),
            &wait,
        )
        .await;
    assert_eq!(hijack.status, 404);
    // Authorized before the body is read: a broken body tells a rival nothing.
    for (method, path) in [
        (reqwest::Method::PATCH, event.clone()),
        (reqwest::Method::POST, format!("{event}/ticket-types")),
        (reqwest::Method::POST, format!("{event}/staff")),
    ] {
        let probe = rival
            .send_with(method, &path, &json!({ "capacity": "lots" }), &wait)
            .await;
        assert_eq!(probe.status, 404, "{path}: {:?}", probe.body);
    }

    // A paid type added: ordering it makes a hold.
    let added = organizer
        .post_with(
            &format!("{event}/ticket-types"),
            &json!({ "name": "VIP", "price_minor": 5000, "currency": "EUR", "quota": 2 }),
            &wait,
        )
        .await;
    assert_eq!(added.body["status"], "succeeded", "{:?}", added.body);
    assert!(added.body["ticket_type_id"].is_string(), "{:?}", added.body);
    let held = buyer
        .post_with(
            &format!("{event}/orders"),
            &json!({ "quantity": 1, "ticket_type": "VIP" }),
            &wait,
        )
        .await;
    assert_eq!(
        held.body["result"]["order_status"], "pending_payment",
        "{:?}",
        held.body
    );

    // Closed: no more sales of it, until reopened.
    let type_path = format!("{event}/ticket-types/{tt}");
    let closed = organizer
        .send_with(
            reqwest::Method::PATCH,
            &type_path,
            &json!({ "closed": true }),
            &wait,
        )
        .await;
    assert_eq!(closed.body["status"], "succeeded", "{:?}", closed.body);
    let refused = buyer
        .post(
            &format!("{event}/orders"),
            &json!({ "quantity": 1, "ticket_type": tt }),
        )
        .await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    let reopened = organizer
        .send_with(
            reqwest::Method::PATCH,
            &type_path,
            &json!({ "closed": false }),
            &wait,
        )
        .await;
    assert_eq!(reopened.body["status"], "succeeded", "{:?}", reopened.body);
    let sold = buyer
        .post_with(
            &format!("{event}/orders"),
            &json!({ "quantity": 1, "ticket_type": tt }),
            &wait,
        )
        .await;
    assert_eq!(sold.body["status"], "succeeded", "{:?}", sold.body);
    let stats = organizer.get(&format!("{event}/stats")).await.body;
    assert_eq!(
        (&stats["sold"], &stats["held"], &stats["remaining"]),
        (&json!(3), &json!(1), &json!(1))
    );
}

/// Whether `user`'s inbox gets a notification of `kind` soon.
async fn told(user: &Client, kind: &str) -> bool {
    eventually(Duration::from_secs(15), true, || async {
        let inbox = user.get("/v1/me/notifications").await.body;
        inbox["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|n| n["kind"] == kind))
    })
    .await
}

on_both!(an_event_ends_by_itself_when_its_time_is_over, Setup::Serve);

async fn an_event_ends_by_itself_when_its_time_is_over(setup: Setup) {
    let system = System::start(setup).await;
    let organizer = system.client("olga", &[Role::Organizer]);
    let buyer = system.client("ann", &[Role::Attendee]);
    let now = jiff::Timestamp::now();
    let mut body = event_body(5);
    body["starts_at"] = json!((now - Duration::from_secs(3600)).to_string());
    body["ends_at"] = json!((now + Duration::from_secs(3)).to_string());
    let event_id = organizer.create_event(&body).await;
    let event = format!("/v1/events/{event_id}");
    let status = eventually(Duration::from_secs(30), json!("ended"), || async {
        buyer.get(&event).await.body["status"].clone()
    })
    .await;
    assert_eq!(status, "ended");
    let late = buyer
        .post(&format!("{event}/orders"), &json!({ "quantity": 1 }))
        .await;
    assert_eq!(
        (late.status, late.body["code"].as_str()),
        (409, Some("not_on_sale"))
    );
}
