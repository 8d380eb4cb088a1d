//! The running API keeps the contract it publishes: a schema-driven tester
//! reads `/openapi.json` from the live system, sends requests generated
//! from it to every operation (valid ones, and ones that break the schema),
//! and fails on any answer whose status the document does not list for
//! that operation, whose body does not validate against the documented
//! schema, or that is a 5xx; input the schema forbids must be refused,
//! and so must a secured operation called without a valid token. Path ids name real resources made first, so
//! that the answers checked are mostly found ones, not 404s.

use std::{path::PathBuf, time::Duration};

use eventsys_api::auth::Role;
use eventsys_tests::{Client, Setup, System, client::event_body, on_both, receiver::Receiver};

on_both!(the_api_answers_as_its_openapi_document_says, Setup::Serve);

async fn the_api_answers_as_its_openapi_document_says(setup: Setup) {
    // Generated writes come as fast as the tester can send them.
    let system = System::start_with(
        setup,
        &[
            ("EVENTSYS_RATE_LIMIT_PER_USER", "0"),
            ("EVENTSYS_RATE_LIMIT_PER_ADDR", "0"),
            // The seeded webhook endpoint listens on loopback.
            ("EVENTSYS_WEBHOOKS_ALLOW_PRIVATE_NETWORKS", "true"),
        ],
    )
    .await;
    let receiver = Receiver::start().await;
    let client = system.client("contract", &[Role::Organizer, Role::Attendee, Role::Staff]);
    let token = client.token().expect("a client with a token").to_owned();
    let seeded = seed(&client, &receiver).await;
    let tester = std::env::var("EVENTSYS_TEST_SCHEMATHESIS")
        .expect("EVENTSYS_TEST_SCHEMATHESIS names the tester; tests/scripts/test.sh installs it");
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contract/schemathesis.toml");
    let report = system.logs.join("contract-junit.xml");
    let output = tokio::process::Command::new(tester)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{}/openapi.json", system.base_url))
        .arg("--report")
        .arg("junit")
        .arg("--report-junit-path")
        .arg(&report)
        .env("EVENTSYS_CONTRACT_TOKEN", &token)
        .envs(seeded)
        // Its example database stays out of the working tree.
        .env(
            "HYPOTHESIS_STORAGE_DIRECTORY",
            system.logs.join("hypothesis"),
        )
        .current_dir(&system.logs)
        .kill_on_drop(true)
        .output()
        .await
        .expect("the tester runs");
    let printed = String::from_utf8_lossy(&output.stdout);
    println!("{printed}");
    assert!(
        output.status.success(),
        "the API broke its OpenAPI contract ({}; report in {}):\n{printed}\n{}",
        output.status,
        report.display(),
        String::from_utf8_lossy(&output.stderr),
    );
}

/// An event with door staff, an order with its tickets, a notification and
/// a webhook delivery, named by the variables `contract/schemathesis.toml`
/// reads.
async fn seed(client: &Client, receiver: &Receiver) -> Vec<(&'static str, String)> {
    let event_id = client.create_event(&event_body(10)).await;
    let webhook = client
        .post(
            "/v1/webhooks",
            &serde_json::json!({ "url": receiver.url, "types": ["order.succeeded"] }),
        )
        .await;
    assert_eq!(webhook.status, 201, "{:?}", webhook.body);
    let webhook_id = webhook.str("webhook_id");
    client.grant_staff(&event_id, "contract-door").await;
    let event = client.get(&format!("/v1/events/{event_id}")).await;
    let ticket_type_id = event.body["ticket_types"][0]["ticket_type_id"]
        .as_str()
        .expect("a ticket type")
        .to_owned();
    let placed = client.order(&event_id, 2).await;
    let command_id = placed.str("command_id");
    let done = client
        .wait_terminal(&command_id, Duration::from_secs(20))
        .await;
    assert_eq!(done["status"], "succeeded", "{done:?}");
    let order_id = placed.str("order_id");
    let order = client.get(&format!("/v1/orders/{order_id}")).await;
    let ticket_id = order.body["tickets"][0]["ticket_id"]
        .as_str()
        .expect("a ticket")
        .to_owned();
    // The notification worker tells the buyer shortly after.
    let mut notification_id = String::new();
    for _ in 0..200 {
        let inbox = client.get("/v1/me/notifications").await;
        if let Some(id) = inbox.body["items"][0]["notification_id"].as_str() {
            notification_id = id.to_owned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!notification_id.is_empty(), "the order was never notified");
    receiver.wait_for(1, Duration::from_secs(20)).await;
    vec![
        ("EVENTSYS_CONTRACT_EVENT_ID", event_id),
        ("EVENTSYS_CONTRACT_TICKET_TYPE_ID", ticket_type_id),
        ("EVENTSYS_CONTRACT_ORDER_ID", order_id),
        ("EVENTSYS_CONTRACT_TICKET_ID", ticket_id),
        ("EVENTSYS_CONTRACT_COMMAND_ID", command_id),
        ("EVENTSYS_CONTRACT_NOTIFICATION_ID", notification_id),
        ("EVENTSYS_CONTRACT_USER_ID", "contract-door".to_owned()),
        ("EVENTSYS_CONTRACT_WEBHOOK_ID", webhook_id),
        ("EVENTSYS_CONTRACT_DELIVERY_ID", "1".to_owned()),
    ]
}
