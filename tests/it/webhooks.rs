//! Webhooks end to end, with real HTTP receivers on loopback: deliveries
//! verify under the endpoint's secret (both secrets while it rotates),
//! come in the order things happened, each occurrence once unless retried
//! (same `webhook-id`, a higher attempt), a receiver answering 500 gets
//! retries, an endpoint that was down catches up in order, one given up
//! on is delivered by a replay, and the log shows all of it; all of this
//! with two replicas of the webhooks role. Endpoints on private networks
//! are refused unless the deployment allows them.

use std::time::Duration;

use eventsys_api::auth::Role;
use eventsys_tests::{
    Setup, System,
    client::{Client, event_body},
    on_both,
    receiver::{Received, Receiver},
};
use serde_json::{Value, json};

const WAIT: [(&str, &str); 1] = [("prefer", "wait=20")];
/// Loopback receivers, and retries quick enough for a test.
const TEST_WEBHOOKS: [(&str, &str); 2] = [
    ("EVENTSYS_WEBHOOKS_ALLOW_PRIVATE_NETWORKS", "true"),
    ("EVENTSYS_WEBHOOKS_FIRST_RETRY_MS", "100"),
];

on_both!(
    deliveries_are_signed_in_order_retried_and_logged,
    Setup::Roles { ticketing: 1 }
);
on_both!(
    a_delivery_given_up_on_is_delivered_by_a_replay,
    Setup::Serve
);
on_both!(endpoints_on_private_networks_are_refused, Setup::Serve);

async fn add_webhook(organizer: &Client, body: Value) -> (String, String) {
    let added = organizer.post("/v1/webhooks", &body).await;
    assert_eq!(added.status, 201, "{:?}", added.body);
    let secret = added.str("secret");
    assert!(secret.starts_with("whsec_"), "{secret}");
    (added.str("webhook_id"), secret)
}

async fn buy_one(buyer: &Client, event_id: &str) -> Value {
    let bought = buyer
        .post_with(
            &format!("/v1/events/{event_id}/orders"),
            &json!({ "quantity": 1 }),
            &WAIT,
        )
        .await;
    assert_eq!(bought.body["status"], "succeeded", "{:?}", bought.body);
    bought.body["result"].clone()
}

async fn log_of(organizer: &Client, webhook_id: &str) -> Vec<Value> {
    let log = organizer
        .get(&format!("/v1/webhooks/{webhook_id}/deliveries"))
        .await;
    assert_eq!(log.status, 200, "{:?}", log.body);
    log.body["items"].as_array().cloned().unwrap_or_default()
}

/// The requests that were answered 2xx.
fn accepted(got: &[Received]) -> Vec<&Received> {
    got.iter().filter(|r| r.answered < 300).collect()
}

async fn deliveries_are_signed_in_order_retried_and_logged(setup: Setup) {
    let mut system = System::start_with(setup, &TEST_WEBHOOKS).await;
    if !setup.is_embedded() {
        // Two replicas of the webhooks role: each endpoint still has one
        // sender, so nothing is sent twice or out of order.
        system.spawn("webhooks-2", &["worker", "webhooks"], &[]);
    }
    let organizer = system.client("olga", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(10)).await;

    // One endpoint for this event that fails its first two requests; one
    // for every event of hers that is down for now.
    let flaky = Receiver::start().await;
    flaky.answer_first(&[500, 500]);
    let (flaky_id, old_secret) = add_webhook(
        &organizer,
        json!({
            "url": flaky.url,
            "event_id": event_id,
            "types": ["order.succeeded", "order.cancelled", "ticket.checked_in"],
        }),
    )
    .await;
    let down_port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().expect("its address").port()
    };
    let (down_id, down_secret) = add_webhook(
        &organizer,
        json!({
            "url": format!("http://127.0.0.1:{down_port}/hooks"),
            "types": ["order.succeeded"],
        }),
    )
    .await;

    // No one else sees, replays or removes her endpoints.
    let other = system.client("otto", &[Role::Organizer]);
    let deliveries = format!("/v1/webhooks/{flaky_id}/deliveries");
    assert_eq!(other.get(&deliveries).await.status, 404);
    assert_eq!(
        other
            .delete_with(&format!("/v1/webhooks/{flaky_id}"), &[])
            .await
            .status,
        404
    );
    let attendee = system.client("ann", &[Role::Attendee]);
    assert_eq!(attendee.get(&deliveries).await.status, 403);
    let listed = organizer.get("/v1/webhooks").await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(2));
    assert!(listed.body["items"][0].get("secret").is_none());

    // Three sales, one cancelled, then the secret rotates and a ticket is
    // checked in.
    let mut orders = Vec::new();
    for _ in 0..3 {
        orders.push(buy_one(&attendee, &event_id).await);
    }
    let cancelled = attendee
        .post_with(
            &format!(
                "/v1/orders/{}/cancel",
                orders[0]["order_id"].as_str().unwrap_or_default()
            ),
            &json!({}),
            &WAIT,
        )
        .await;
    assert_eq!(
        cancelled.body["status"], "succeeded",
        "{:?}",
        cancelled.body
    );
    // Everything so far has arrived before the secret rotates.
    flaky.wait_for(2 + 4, Duration::from_secs(30)).await;
    let rotated = organizer
        .post(
            &format!("/v1/webhooks/{flaky_id}/rotate-secret"),
            &json!({}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let new_secret = rotated.str("secret");
    let ticket_id = orders[1]["ticket_ids"][0].as_str().unwrap_or_default();
    let ticket = attendee.get(&format!("/v1/tickets/{ticket_id}")).await;
    let scanned = organizer
        .post(
            &format!("/v1/events/{event_id}/checkins"),
            &json!({ "code": ticket.str("code"), "gate": "A" }),
        )
        .await;
    assert_eq!(scanned.status, 200, "{:?}", scanned.body);

    // Two refusals, then five deliveries, in the order things happened.
    let got = flaky.wait_for(2 + 5, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got_all = flaky.received();
    assert_eq!(got_all.len(), 7, "nothing more arrives: {got_all:#?}");
    let first_three: Vec<(u64, u32, u16)> = got[..3]
        .iter()
        .map(|r| (r.sequence(), r.attempt(), r.answered))
        .collect();
    assert_eq!(first_three, [(1, 1, 500), (1, 2, 500), (1, 3, 204)]);
    assert_eq!(
        got[0].id(),
        got[2].id(),
        "a retry carries the same webhook-id"
    );
    let delivered = accepted(&got);
    let order: Vec<(u64, String)> = delivered.iter().map(|r| (r.sequence(), r.kind())).collect();
    assert_eq!(
        order,
        [
            (1, "order.succeeded".to_owned()),
            (2, "order.succeeded".to_owned()),
            (3, "order.succeeded".to_owned()),
            (4, "order.cancelled".to_owned()),
            (5, "ticket.checked_in".to_owned()),
        ]
    );
    let mut ids: Vec<&str> = delivered.iter().map(|r| r.id()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 5, "each occurrence once");
    for request in &delivered[..4] {
        assert!(request.verifies_with(&old_secret), "{request:?}");
        assert!(!request.verifies_with(&new_secret));
    }
    // While the secret rotates, both sign.
    assert!(delivered[4].verifies_with(&new_secret));
    assert!(delivered[4].verifies_with(&old_secret));
    assert_eq!(
        delivered[0].payload()["data"]["order_id"],
        orders[0]["order_id"]
    );
    assert_eq!(delivered[4].payload()["data"]["gate"], "A");

    // The log, newest first.
    let log = log_of(&organizer, &flaky_id).await;
    let logged: Vec<(u64, &str, u64)> = log
        .iter()
        .map(|d| {
            (
                d["delivery_id"].as_u64().unwrap_or_default(),
                d["status"].as_str().unwrap_or_default(),
                d["attempts"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        logged,
        [
            (5, "delivered", 1),
            (4, "delivered", 1),
            (3, "delivered", 1),
            (2, "delivered", 1),
            (1, "delivered", 3),
        ]
    );
    assert_eq!(log[4]["last_response"], 204);
    assert_eq!(log[4]["message_id"], got[0].id());

    // A replay sends delivery 2 again, marked as the same occurrence.
    let replayed = organizer
        .post(&format!("{deliveries}/2/replay"), &json!({}))
        .await;
    assert_eq!(replayed.status, 202, "{:?}", replayed.body);
    assert_eq!(replayed.body["replays"], 1);
    let got = flaky.wait_for(8, Duration::from_secs(30)).await;
    assert_eq!(got[7].id(), delivered[1].id());
    assert_eq!(got[7].sequence(), 2);
    assert_eq!(
        organizer
            .post(&format!("{deliveries}/99/replay"), &json!({}))
            .await
            .status,
        404
    );

    // The endpoint that was down: its first delivery has failed (no
    // connection) at least once; it comes up and catches up, in order.
    let mut waited = 0;
    loop {
        let log = log_of(&organizer, &down_id).await;
        let first = log.last().cloned().unwrap_or_default();
        if log.len() == 3 && first["attempts"].as_u64().unwrap_or_default() >= 1 {
            assert_eq!(first["status"], "pending");
            assert!(first["last_error"].is_string(), "{first}");
            break;
        }
        waited += 1;
        assert!(waited < 200, "never attempted: {log:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let back = Receiver::start_on(down_port).await;
    let caught_up = back.wait_for(3, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(back.received().len(), 3, "each once");
    let sequences: Vec<u64> = caught_up.iter().map(Received::sequence).collect();
    assert_eq!(sequences, [1, 2, 3]);
    assert!(caught_up.iter().all(|r| r.verifies_with(&down_secret)));

    // Removed: nothing more is sent to it.
    let removed = organizer
        .delete_with(&format!("/v1/webhooks/{down_id}"), &[])
        .await;
    assert_eq!(removed.status, 204);
    buy_one(&attendee, &event_id).await;
    flaky.wait_for(9, Duration::from_secs(30)).await;
    assert_eq!(back.received().len(), 3);
}

async fn a_delivery_given_up_on_is_delivered_by_a_replay(setup: Setup) {
    let env = [
        TEST_WEBHOOKS[0],
        TEST_WEBHOOKS[1],
        ("EVENTSYS_WEBHOOKS_RETRY_FOR_SECONDS", "2"),
    ];
    let system = System::start_with(setup, &env).await;
    let organizer = system.client("olga", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(10)).await;
    let receiver = Receiver::start().await;
    receiver.answer_first(&[500; 200]);
    let (webhook_id, secret) = add_webhook(
        &organizer,
        json!({ "url": receiver.url, "types": ["order.succeeded"] }),
    )
    .await;
    let attendee = system.client("ann", &[Role::Attendee]);
    buy_one(&attendee, &event_id).await;

    // Retried for two seconds, then given up on.
    let mut waited = 0;
    let failed = loop {
        let log = log_of(&organizer, &webhook_id).await;
        if log.first().is_some_and(|d| d["status"] == "failed") {
            break log[0].clone();
        }
        waited += 1;
        assert!(waited < 200, "never given up on: {log:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let attempts = failed["attempts"].as_u64().unwrap_or_default();
    assert!(attempts >= 3, "{failed}");
    assert_eq!(failed["last_response"], 500);
    assert_eq!(receiver.received().len() as u64, attempts);

    // The receiver is mended; a replay delivers it, once, as the same
    // occurrence, signed as before.
    receiver.mend();
    let replay = organizer
        .post(
            &format!("/v1/webhooks/{webhook_id}/deliveries/1/replay"),
            &json!({}),
        )
        .await;
    assert_eq!(replay.status, 202, "{:?}", replay.body);
    let count = attempts as usize + 1;
    let got = receiver.wait_for(count, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.received().len(), count, "once");
    let last = &got[count - 1];
    assert_eq!((last.answered, last.id()), (204, got[0].id()));
    assert!(last.verifies_with(&secret));
    let log = log_of(&organizer, &webhook_id).await;
    assert_eq!(
        (&log[0]["status"], &log[0]["replays"], &log[0]["attempts"]),
        (&json!("delivered"), &json!(1), &json!(attempts + 1))
    );
}

async fn endpoints_on_private_networks_are_refused(setup: Setup) {
    let system = System::start(setup).await;
    let organizer = system.client("olga", &[Role::Organizer]);
    for url in [
        "http://127.0.0.1:8080/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.7/hooks",
        "http://localhost/hooks",
        "ftp://hooks.example.com/",
        "https://user:pw@hooks.example.com/",
    ] {
        let refused = organizer
            .post(
                "/v1/webhooks",
                &json!({ "url": url, "types": ["order.succeeded"] }),
            )
            .await;
        assert_eq!(refused.status, 422, "{url}: {:?}", refused.body);
        assert_eq!(refused.body["errors"][0]["field"], "url", "{url}");
    }
    let no_types = organizer
        .post(
            "/v1/webhooks",
            &json!({ "url": "https://hooks.example.com/", "types": ["order.shipped"] }),
        )
        .await;
    assert_eq!(no_types.status, 422, "{:?}", no_types.body);
    // A caller who may not add one learns nothing about the URL.
    let attendee = system.client("ann", &[Role::Attendee]);
    let forbidden = attendee
        .post(
            "/v1/webhooks",
            &json!({ "url": "http://127.0.0.1/", "types": ["order.succeeded"] }),
        )
        .await;
    assert_eq!(forbidden.status, 403);
    let listed = organizer.get("/v1/webhooks").await;
    assert_eq!(listed.body["items"], json!([]));
}
