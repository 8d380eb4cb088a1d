//! Invariant 4: a ticket is admitted once. The second scan of a code is
//! refused with the time of the first, across worker replicas; a forged or
//! foreign code is refused without touching the store.

use eventsys_api::auth::Role;
use eventsys_tests::{Setup, System, client::Client, client::event_body, on_both};
use futures::future::join_all;
use serde_json::json;

async fn buy_one(buyer: &Client, event_id: &str) -> (String, String) {
    let bought = buyer
        .post_with(
            &format!("/v1/events/{event_id}/orders"),
            &json!({ "quantity": 1 }),
            &[("prefer", "wait=20")],
        )
        .await;
    assert_eq!(bought.body["status"], "succeeded", "{:?}", bought.body);
    let ticket_id = bought.body["result"]["ticket_ids"][0]
        .as_str()
        .expect("a ticket")
        .to_owned();
    let ticket = buyer.get(&format!("/v1/tickets/{ticket_id}")).await;
    assert_eq!(ticket.status, 200);
    (ticket_id, ticket.str("code"))
}

on_both!(
    a_ticket_is_admitted_once_across_replicas,
    Setup::Roles { ticketing: 2 }
);

async fn a_ticket_is_admitted_once_across_replicas(setup: Setup) {
    let mut system = System::start(setup).await;
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(10)).await;
    let other_event = organizer.create_event(&event_body(10)).await;
    let buyer = system.client("ann", &[Role::Attendee]);
    let (ticket_id, code) = buy_one(&buyer, &event_id).await;
    let (_, foreign_code) = buy_one(&buyer, &other_event).await;

    // Eight doors scan the same code at the same moment.
    let doors: Vec<Client> = (0..8)
        .map(|i| system.client(&format!("door-{i}"), &[Role::Staff]))
        .collect();
    let path = format!("/v1/events/{event_id}/checkins");
    let scan = json!({ "code": code });
    let scans = join_all(doors.iter().map(|d| d.post(&path, &scan))).await;
    let admitted: Vec<_> = scans.iter().filter(|s| s.status == 200).collect();
    let refused: Vec<_> = scans.iter().filter(|s| s.status == 409).collect();
    assert_eq!((admitted.len(), refused.len()), (1, 7), "{scans:?}");
    let first = &admitted[0].body["checked_in_at"];
    for refusal in &refused {
        assert_eq!(refusal.body["code"], "already_checked_in");
        assert_eq!(&refusal.body["first_checked_in_at"], first);
    }
    let ticket = buyer.get(&format!("/v1/tickets/{ticket_id}")).await.body;
    assert_eq!(
        (&ticket["status"], &ticket["checked_in_at"]),
        (&json!("checked_in"), first)
    );

    // Forged and foreign codes are refused at the API: no command is recorded.
    let forged = format!("{}A", &code[..code.len() - 1]);
    let forged = if forged == code {
        format!("{}B", &code[..code.len() - 1])
    } else {
        forged
    };
    for bad in [forged.as_str(), foreign_code.as_str(), "not-a-code"] {
        let scan = doors[0].post(&path, &json!({ "code": bad })).await;
        assert_eq!(
            (scan.status, scan.body["code"].as_str()),
            (422, Some("invalid_ticket_code")),
            "{bad}"
        );
    }

    // Only the organizer and staff may scan, and a stranger learns nothing
    // of a code: genuine or forged, the answer is the same refusal.
    let stranger = system.client("mallory", &[Role::Attendee]);
    for probe in [code.as_str(), forged.as_str()] {
        assert_eq!(
            stranger.post(&path, &json!({ "code": probe })).await.status,
            403
        );
    }

    // Two events, two orders, eight scans: nothing else was ever recorded.
    assert_eq!(system.oracle().await.all("commands").await, 12);
}
