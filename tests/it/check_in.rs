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
on_both!(
    a_door_verifies_a_code_offline_with_the_published_key,
    Setup::Serve
);
on_both!(staff_act_only_at_the_events_they_were_granted, Setup::Serve);
on_both!(
    an_offline_door_uploads_its_scans_and_the_earliest_scan_wins,
    Setup::Serve
);

/// A door that lost the network uploads its scans in one batch: each is
/// reported against the ticket as it stands, the earliest scan of a ticket
/// wins over a later online one, and the counts stay exact however often
/// the batch is uploaded.
async fn an_offline_door_uploads_its_scans_and_the_earliest_scan_wins(setup: Setup) {
    let system = System::start(setup).await;
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(10)).await;
    let buyer = system.client("ann", &[Role::Attendee]);
    let mut tickets = Vec::new();
    for _ in 0..3 {
        tickets.push(buy_one(&buyer, &event_id).await);
    }
    let (online, offline) = (
        system.client("door-a", &[Role::Staff]),
        system.client("door-b", &[Role::Staff]),
    );
    organizer.grant_staff(&event_id, "door-a").await;
    organizer.grant_staff(&event_id, "door-b").await;
    let event = format!("/v1/events/{event_id}");

    // Door A is online and scans ticket 0 now.
    let now = jiff::Timestamp::now().as_second();
    let at = |s: i64| jiff::Timestamp::from_second(s).expect("a time").to_string();
    let scanned = online
        .post(
            &format!("{event}/checkins"),
            &json!({ "code": tickets[0].1, "gate": "A" }),
        )
        .await;
    assert_eq!(scanned.status, 200, "{:?}", scanned.body);

    // Door B was offline for the last ten minutes.
    let batch = json!({
        "gate": "B",
        "scans": [
            { "code": tickets[0].1, "scanned_at": at(now - 600) },
            { "code": tickets[1].1, "scanned_at": at(now - 540) },
            { "code": tickets[1].1, "scanned_at": at(now - 480) },
            { "code": format!("{}x", tickets[2].1), "scanned_at": at(now - 420) },
            { "code": tickets[2].1, "scanned_at": at(now + 3600) },
        ]
    });
    let expected = json!([
        { "status": "checked_in", "checked_in_at": at(now - 600), "gate": "B" },
        { "status": "checked_in", "checked_in_at": at(now - 540), "gate": "B" },
        { "status": "already_checked_in", "checked_in_at": at(now - 540), "gate": "B" },
        { "status": "invalid_ticket_code" },
        { "status": "invalid_scan_time" },
    ]);
    for upload in 0..2 {
        let reply = offline
            .post(&format!("{event}/checkins/batch"), &batch)
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        assert_eq!(reply.body["results"], expected, "upload {upload}");
    }

    // The earlier offline scan stands over the later online one.
    let first = buyer.get(&format!("/v1/tickets/{}", tickets[0].0)).await;
    assert_eq!(
        (&first.body["checked_in_at"], &first.body["checked_in_gate"]),
        (&json!(at(now - 600)), &json!("B"))
    );
    let again = online
        .post(
            &format!("{event}/checkins"),
            &json!({ "code": tickets[0].1 }),
        )
        .await;
    assert_eq!(
        (
            again.status,
            &again.body["first_checked_in_at"],
            &again.body["first_gate"]
        ),
        (409, &json!(at(now - 600)), &json!("B"))
    );

    let stats = organizer.get(&format!("{event}/stats")).await;
    assert_eq!(stats.status, 200, "{:?}", stats.body);
    assert_eq!(
        (
            &stats.body["sold"],
            &stats.body["remaining"],
            &stats.body["checked_in"]
        ),
        (&json!(3), &json!(7), &json!(2))
    );
    assert_eq!(stats.body["ticket_types"][0]["checked_in"], 2);
    let stranger = system.client("mallory", &[Role::Staff]);
    assert_eq!(stranger.get(&format!("{event}/stats")).await.status, 403);
    assert_eq!(
        stranger
            .post(&format!("{event}/checkins/batch"), &batch)
            .await
            .status,
        403
    );
}

/// A `staff` token scans and reads tickets at the events its organizer
/// granted it, and nowhere else; a revoked grant ends at once.
async fn staff_act_only_at_the_events_they_were_granted(setup: Setup) {
    let system = System::start(setup).await;
    let organizer = system.client("organizer", &[Role::Organizer]);
    let rival = system.client("rival", &[Role::Organizer]);
    let ours = organizer.create_event(&event_body(10)).await;
    let theirs = rival.create_event(&event_body(10)).await;
    let buyer = system.client("ann", &[Role::Attendee]);
    let (our_ticket, our_code) = buy_one(&buyer, &ours).await;
    let (their_ticket, their_code) = buy_one(&buyer, &theirs).await;
    let sam = system.client("sam", &[Role::Staff]);
    let scan = |event: &str, code: &str| {
        let (path, body) = (
            format!("/v1/events/{event}/checkins"),
            json!({ "code": code }),
        );
        let sam = &sam;
        async move { sam.post(&path, &body).await.status }
    };

    // Before any grant, a staff token is nobody's door.
    assert_eq!(scan(&ours, &our_code).await, 403);
    assert_eq!(
        sam.get(&format!("/v1/tickets/{our_ticket}")).await.status,
        404
    );

    // Another organizer cannot grant at our event, nor list its staff.
    let staff_path = format!("/v1/events/{ours}/staff");
    let hijack = rival.post(&staff_path, &json!({ "user_id": "sam" })).await;
    assert_eq!(hijack.status, 404, "{:?}", hijack.body);
    assert_eq!(rival.get(&staff_path).await.status, 404);

    organizer.grant_staff(&ours, "sam").await;
    let listed = organizer.get(&staff_path).await;
    assert_eq!(
        listed.body["items"][0]["user_id"], "sam",
        "{:?}",
        listed.body
    );
    assert_eq!(
        sam.get(&format!("/v1/tickets/{our_ticket}")).await.status,
        200
    );
    assert_eq!(scan(&ours, &our_code).await, 200);
    // Granted at ours, not at theirs.
    assert_eq!(scan(&theirs, &their_code).await, 403);
    assert_eq!(
        sam.get(&format!("/v1/tickets/{their_ticket}")).await.status,
        404
    );

    let revoked = organizer
        .delete_with(&format!("{staff_path}/sam"), &[("prefer", "wait=20")])
        .await;
    assert_eq!(revoked.body["status"], "succeeded", "{:?}", revoked.body);
    assert_eq!(scan(&ours, &our_code).await, 403);
    assert_eq!(organizer.get(&staff_path).await.body["items"], json!([]));
}

/// A ticket's code is a compact JWS that the event's JWK Set verifies,
/// with no call to the API; its QR code is there for its holder only.
async fn a_door_verifies_a_code_offline_with_the_published_key(setup: Setup) {
    use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};

    let system = System::start(setup).await;
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(10)).await;
    let buyer = system.client("ann", &[Role::Attendee]);
    let (ticket_id, code) = buy_one(&buyer, &event_id).await;

    let anyone = system.anonymous();
    let jwks = anyone
        .get(&format!("/v1/events/{event_id}/verification-key"))
        .await;
    assert_eq!(jwks.status, 200, "{:?}", jwks.body);
    let parts: Vec<&str> = code.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWS: {code}");
    let header: serde_json::Value =
        serde_json::from_slice(&B64.decode(parts[0]).expect("base64url")).expect("JSON");
    let claims: serde_json::Value =
        serde_json::from_slice(&B64.decode(parts[1]).expect("base64url")).expect("JSON");
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(
        (&claims["ticket_id"], &claims["event_id"]),
        (&json!(ticket_id), &json!(event_id))
    );
    let key = jwks.body["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the code's key is published");
    assert_eq!(
        (&key["kty"], &key["crv"]),
        (&json!("OKP"), &json!("Ed25519"))
    );
    let x = B64
        .decode(key["x"].as_str().expect("x"))
        .expect("base64url");
    let signed = format!("{}.{}", parts[0], parts[1]);
    let signature = B64.decode(parts[2]).expect("base64url");
    UnparsedPublicKey::new(&ED25519, &x)
        .verify(signed.as_bytes(), &signature)
        .expect("the code verifies offline");
    // A code altered by one claim no longer does.
    let forged_claims = B64.encode(
        serde_json::to_vec(&json!({ "ticket_id": ticket_id, "event_id": event_id, "iat": 0 }))
            .expect("JSON"),
    );
    let forged = format!("{}.{forged_claims}", parts[0]);
    assert!(
        UnparsedPublicKey::new(&ED25519, &x)
            .verify(forged.as_bytes(), &signature)
            .is_err()
    );

    let qr = buyer.get(&format!("/v1/tickets/{ticket_id}/qr.svg")).await;
    assert_eq!(
        (qr.status, qr.headers["content-type"].to_str().ok()),
        (200, Some("image/svg+xml"))
    );
    let stranger = system.client("mallory", &[Role::Attendee]);
    assert_eq!(
        stranger
            .get(&format!("/v1/tickets/{ticket_id}/qr.svg"))
            .await
            .status,
        404
    );
    assert_eq!(
        anyone
            .get(&format!(
                "/v1/events/{}/verification-key",
                uuid::Uuid::now_v7()
            ))
            .await
            .status,
        404
    );
}

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
    for i in 0..8 {
        organizer.grant_staff(&event_id, &format!("door-{i}")).await;
    }
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
    // Nor does door staff of other events, whatever the body holds.
    let other_door = system.client("door-elsewhere", &[Role::Staff]);
    for body in [
        json!({ "code": code }),
        json!({ "code": forged }),
        json!({ "code": 7 }),
        json!({}),
    ] {
        let scan = other_door.post(&path, &body).await;
        assert_eq!(
            (scan.status, scan.body["code"].as_str()),
            (403, Some("forbidden")),
            "{body}"
        );
        let batch = other_door
            .post(&format!("{path}/batch"), &json!({ "scans": body }))
            .await;
        assert_eq!(batch.status, 403, "{body}");
    }

    // Two events, two orders, eight grants, eight scans: nothing else was
    // ever recorded.
    assert_eq!(system.oracle().await.all("commands").await, 20);
}
