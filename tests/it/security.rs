//! The attacks a hostile client tried, each against the running system:
//! floods of writes, slow and silent connections, oversized and malformed
//! requests, aliased ids, tricky text, tokens from the wrong issuer, and a
//! chatty live connection. Each answer is a problem document (or a closed
//! connection) and changes nothing.

use std::time::Duration;

use eventsys_api::auth::Role;
use eventsys_bus::{Bus, Exchange, Message};
use eventsys_bus_rabbitmq::{EventSeal, RabbitBus};
use eventsys_messages::{
    Action, CommandEnvelope, CommandId, CommandStatus, Event, EventEnvelope, OrderId, PlaceOrder,
    TicketId, TicketTypeId, Timestamp, UserId, WorkQueue,
    event::{CommandUpdated, TicketsSold},
    topology::Principal,
};
use eventsys_tests::{Client, Setup, System, client::event_body, on_both};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// A write nobody is allowed to make land anywhere: an order for an event
/// that does not exist. It still counts against the caller's pace.
fn nowhere() -> String {
    format!("/v1/events/{}/orders", uuid::Uuid::now_v7())
}

/// How many of `n` writes in quick succession were refused for pace, with
/// `Retry-After` and a problem document each time.
async fn refused_of(client: &Client, n: usize) -> usize {
    let mut refused = 0;
    for _ in 0..n {
        let reply = client.post(&nowhere(), &json!({ "quantity": 1 })).await;
        if reply.status == 429 {
            assert_eq!(reply.body["code"], "rate_limited");
            let retry: u64 = reply.headers["retry-after"]
                .to_str()
                .ok()
                .and_then(|v| v.parse().ok())
                .expect("Retry-After in seconds");
            assert!((1..=2).contains(&retry), "Retry-After {retry}");
            refused += 1;
        } else {
            assert_eq!(reply.status, 404);
        }
    }
    refused
}

on_both!(
    a_user_writing_faster_than_a_person_is_slowed_down,
    Setup::Roles { ticketing: 1 }
);

async fn a_user_writing_faster_than_a_person_is_slowed_down(setup: Setup) {
    // One write a second, four at once.
    let system = System::start_with(setup, &[("EVENTSYS_RATE_LIMIT_PER_USER", "1")]).await;
    let organizer = system.client("olga", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(50)).await;
    let ann = system.client("ann", &[Role::Attendee]);
    let orders = format!("/v1/events/{event_id}/orders");
    let mut answers = Vec::new();
    for _ in 0..10 {
        answers.push(ann.post(&orders, &json!({ "quantity": 1 })).await);
    }
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [202, 202, 202, 202, 429, 429, 429, 429, 429, 429]);
    for accepted in &answers[..4] {
        ann.wait_terminal(&accepted.str("command_id"), Duration::from_secs(30))
            .await;
    }
    // The refused ones changed nothing: four orders, four seats.
    let event = ann.get(&format!("/v1/events/{event_id}")).await;
    assert_eq!(event.body["remaining"], 46, "{}", event.body);
    // Someone else writes on, and reads are never limited.
    let bob = system.client("bob", &[Role::Attendee]);
    assert_eq!(refused_of(&bob, 4).await, 0);
    for _ in 0..20 {
        assert_eq!(ann.get("/v1/me/tickets").await.status, 200);
    }
}

on_both!(
    one_address_writing_for_many_users_is_slowed_down,
    Setup::Roles { ticketing: 1 }
);

async fn one_address_writing_for_many_users_is_slowed_down(setup: Setup) {
    let system = System::start_with(setup, &[("EVENTSYS_RATE_LIMIT_PER_ADDR", "1")]).await;
    let clients: Vec<Client> = (0..8)
        .map(|n| system.client(&format!("user{n}"), &[Role::Attendee]))
        .collect();
    let mut refused = 0;
    for client in &clients {
        refused += refused_of(client, 1).await;
    }
    assert_eq!(refused, 4, "four at once from one address, whoever asks");
}

on_both!(
    connections_that_send_no_request_in_time_are_closed,
    Setup::Roles { ticketing: 1 }
);

/// Whether the server closes `stream` within `within`.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buffer = vec![0; 64 * 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // A response (a 408, say) may come first.
            Ok(Ok(_)) => {}
        }
    }
}

async fn connections_that_send_no_request_in_time_are_closed(setup: Setup) {
    let system = System::start_with(setup, &[("EVENTSYS_HEADER_TIMEOUT_SECONDS", "2")]).await;
    let addr = system.base_url.trim_start_matches("http://").to_owned();
    let mut silent = TcpStream::connect(&addr).await.expect("connecting");
    let mut half_sent = TcpStream::connect(&addr).await.expect("connecting");
    half_sent
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .expect("sending half a request");
    let mut idle = TcpStream::connect(&addr).await.expect("connecting");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("sending a request");
    let mut first = [0; 12];
    idle.read_exact(&mut first).await.expect("an answer");
    assert_eq!(&first, b"HTTP/1.1 200");
    for (name, stream) in [
        ("silent", &mut silent),
        ("half-sent", &mut half_sent),
        ("idle", &mut idle),
    ] {
        assert!(
            closed_by_server(stream, Duration::from_secs(8)).await,
            "the {name} connection is still open"
        );
    }
    let anyone = system.anonymous();
    assert_eq!(anyone.get("/healthz").await.status, 200);
}

on_both!(
    oversized_requests_get_a_problem_document_not_a_reset,
    Setup::Roles { ticketing: 1 }
);

async fn oversized_requests_get_a_problem_document_not_a_reset(setup: Setup) {
    let system = System::start(setup).await;
    let ann = system.client("ann", &[Role::Attendee]);
    let body = vec![b' '; 4 * 1024 * 1024];
    for _ in 0..20 {
        let reply = ann
            .post_raw(&nowhere(), body.clone(), "application/json", &[])
            .await;
        assert_eq!(
            (reply.status, reply.body["code"].as_str()),
            (413, Some("payload_too_large"))
        );
    }
    let headers: Vec<(String, String)> = (0..150)
        .map(|n| (format!("x-filler-{n}"), "x".into()))
        .collect();
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let reply = ann
        .post_with(&nowhere(), &json!({ "quantity": 1 }), &headers)
        .await;
    assert_eq!(
        (reply.status, reply.body["code"].as_str()),
        (431, Some("too_many_headers"))
    );
}

on_both!(
    hostile_requests_are_refused_and_change_nothing,
    Setup::Roles { ticketing: 1 }
);

async fn hostile_requests_are_refused_and_change_nothing(setup: Setup) {
    let system = System::start(setup).await;
    let organizer = system.client("olga", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(10)).await;
    let ann = system.client("ann", &[Role::Attendee]);
    let event = ann.get(&format!("/v1/events/{event_id}")).await;
    let ticket_type = event.body["ticket_types"][0]["ticket_type_id"]
        .as_str()
        .expect("the event's ticket type")
        .to_owned();

    // Ids in any form but the one they are written in name nothing.
    for alias in [
        event_id.to_uppercase(),
        format!("urn:uuid:{event_id}"),
        format!("{{{event_id}}}"),
        event_id.replace('-', ""),
        format!("{event_id}%2F.."),
    ] {
        let reply = ann.get(&format!("/v1/events/{alias}")).await;
        assert_eq!(reply.status, 404, "{alias} names the event");
    }
    let orders = format!("/v1/events/{event_id}/orders");
    let aliased = json!({ "ticket_type_id": ticket_type.to_uppercase(), "quantity": 1 });
    let reply = ann.post(&orders, &aliased).await;
    assert_eq!(
        reply.status, 422,
        "an uppercase ticket type id: {}",
        reply.body
    );

    // Bodies: only JSON, parsed strictly.
    let order = json!({ "quantity": 1 }).to_string().into_bytes();
    for content_type in [
        "application/evil+json",
        "text/plain",
        "application/x-www-form-urlencoded",
    ] {
        let reply = ann
            .post_raw(&orders, order.clone(), content_type, &[])
            .await;
        assert_eq!(reply.status, 415, "{content_type}");
    }
    for (body, status) in [
        (r#"{"quantity": 1, "quantity": 9}"#, 422),
        (r#"{"quantity": 1e30}"#, 422),
        (r#"{"quantity": 18446744073709551616}"#, 422),
        (r#"{"quantity": -1}"#, 422),
        (r#"{"quantity": "1"}"#, 422),
        (r#"{"quantity": 1, "price": 0}"#, 422),
        (r#"{"quantity": 1"#, 400),
        ("\u{feff}{\"quantity\": 1}", 400),
    ] {
        let reply = ann
            .post_raw(&orders, body.as_bytes().to_vec(), "application/json", &[])
            .await;
        assert_eq!(reply.status, status, "{body}: {}", reply.body);
        assert!(reply.body["code"].is_string(), "a problem document");
    }

    // What an organizer writes must be fit to show to buyers.
    let tricks: [(&str, Value); 7] = [
        ("name", json!("\u{200b}")),
        ("name", json!("\u{3164} \u{feff}")),
        ("name", json!("Concert \u{202e}tfel-ot-thgir")),
        (
            "name",
            json!("Payment failed, re-enter your card at http://pay.example"),
        ),
        ("name", json!("two\nlines")),
        ("venue", json!("Hall\u{7}")),
        ("starts_at", json!("1970-01-01T00:00:00Z")),
    ];
    for (field, value) in tricks {
        let mut body = event_body(10);
        body[field] = value.clone();
        let reply = organizer.post("/v1/events", &body).await;
        assert_eq!(reply.status, 422, "{field} = {value}: {}", reply.body);
        assert_eq!(reply.body["errors"][0]["field"], field, "{}", reply.body);
    }
    let reply = ann.get("/v1/events?cursor=AAAA.BBBB").await;
    assert_eq!(reply.status, 400, "a tampered cursor");

    // Nothing of it took: the one event, all its seats.
    let listed = ann.get("/v1/events").await;
    let listed: Vec<&Value> = listed.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["event_id"])
        .collect();
    assert_eq!(listed, [&json!(event_id)]);
    let event = ann.get(&format!("/v1/events/{event_id}")).await;
    assert_eq!(event.body["remaining"], 10);
}

on_both!(
    tokens_must_come_from_the_configured_issuer_for_this_audience,
    Setup::Roles { ticketing: 1 }
);

async fn tokens_must_come_from_the_configured_issuer_for_this_audience(setup: Setup) {
    let system = System::start_with(
        setup,
        &[
            ("EVENTSYS_JWT_ISSUER", "https://id.eventsys.test"),
            ("EVENTSYS_JWT_AUDIENCE", "eventsys-api"),
        ],
    )
    .await;
    // Signed with the right secret, but naming no issuer or audience.
    let plain = system.client("ann", &[Role::Attendee]);
    let reply = plain.get("/v1/me/tickets").await;
    assert_eq!(
        (reply.status, reply.body["code"].as_str()),
        (401, Some("unauthorized"))
    );
    // The CLI mints what the configuration asks for.
    let minted = system.run(&["token", "--sub", "ann", "--role", "attendee"], &[]);
    assert!(minted.status.success());
    let token = String::from_utf8_lossy(&minted.stdout).trim().to_owned();
    let ann = Client::new(&system.base_url, Some(token));
    assert_eq!(ann.get("/v1/me/tickets").await.status, 200);
}

on_both!(
    a_live_connection_sending_too_fast_is_closed,
    Setup::Roles { ticketing: 1 }
);

async fn a_live_connection_sending_too_fast_is_closed(setup: Setup) {
    // One message a second, four at once: the fifth in a row is one too many.
    let system = System::start_with(setup, &[("EVENTSYS_WS_MESSAGES_PER_SECOND", "1")]).await;
    let ann = system.client("ann", &[Role::Attendee]);
    let mut live = ann.live().await;
    for _ in 0..5 {
        live.send(json!({ "type": "ping" })).await;
    }
    assert_eq!(live.closed(Duration::from_secs(10)).await, Some(1008));
    // A connection at a person's pace is left alone.
    let mut calm = ann.live().await;
    for _ in 0..4 {
        calm.send(json!({ "type": "ping" })).await;
        assert_eq!(
            calm.next(Duration::from_secs(5))
                .await
                .map(|f| f["type"].clone()),
            Some(json!("pong"))
        );
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_data_directory_is_private_to_its_user() {
    use std::os::unix::fs::PermissionsExt;
    let system = System::start(Setup::Embedded).await;
    let mode = |name: &str| {
        let path = system.data_dir.join(name);
        std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(""), 0o700);
    for file in [
        "store.redb",
        "queue.redb",
        "ticket-signing-key",
        "cursor-secret",
    ] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
}

/// Facts about Ann that no role published: one unsealed, one sealed with a
/// guessed secret. Both would push a frame and put words in her inbox.
fn forgeries(event_id: &str) -> Vec<Message> {
    let ann = UserId::parse("ann").expect("a user id");
    let updated = Event::CommandUpdated(CommandUpdated {
        command_id: CommandId::generate(),
        user_id: ann.clone(),
        status: CommandStatus::Succeeded,
        result: None,
        error: None,
    });
    let sold = Event::TicketsSold(TicketsSold {
        order_id: OrderId::generate(),
        ordered_at: Timestamp::now(),
        event_id: event_id.parse().expect("an event id"),
        event_name: "Payment failed: re-enter your card at pay.example".into(),
        buyer_id: ann,
        ticket_ids: vec![TicketId::generate()],
    });
    [updated, sold]
        .into_iter()
        .map(|fact| Message::event(&EventEnvelope::keyed(uuid::Uuid::now_v7(), fact), None))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn facts_forged_on_the_broker_reach_no_inbox_and_no_live_connection() {
    let system = System::start(Setup::Roles { ticketing: 1 }).await;
    let organizer = system.client("olga", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(10)).await;
    let ann = system.client("ann", &[Role::Attendee]);
    let mut live = ann.live().await;

    // Without a seal (straight onto the exchange), and with a guessed one.
    let connection = lapin::Connection::connect(&system.amqp_url, Default::default())
        .await
        .expect("RabbitMQ");
    let channel = connection.create_channel().await.expect("a channel");
    let guessed = EventSeal::new(b"a guess at the secret, not the secret");
    let guesser = RabbitBus::connect(&system.amqp_url, "mallory", Some(guessed))
        .await
        .expect("RabbitMQ");
    for forged in forgeries(&event_id) {
        channel
            .basic_publish(
                "eventsys.events".into(),
                forged.routing_key.as_str().into(),
                Default::default(),
                &forged.body,
                lapin::BasicProperties::default(),
            )
            .await
            .expect("published")
            .await
            .expect("confirmed");
        guesser
            .publish(Exchange::Events, &forged)
            .await
            .expect("published");
    }

    // Then a genuine order: its facts travel the same queues, after the forgeries.
    let placed = ann.order(&event_id, 1).await;
    let command_id = placed.str("command_id");
    let frames = live
        .gather(Duration::from_secs(30), |frames| {
            frames
                .iter()
                .any(|f| f["type"] == "notification" && f["kind"] == "order.confirmed")
        })
        .await;
    let notified = frames
        .iter()
        .filter(|f| f["type"] == "notification")
        .count();
    assert_eq!(notified, 1, "{frames:?}");
    let updates: Vec<&Value> = frames
        .iter()
        .filter(|f| f["type"] == "command.updated")
        .collect();
    assert!(
        updates
            .iter()
            .all(|f| f["command_id"] == command_id.as_str()),
        "a forged update reached Ann: {updates:?}"
    );
    let inbox = ann.get("/v1/me/notifications").await;
    let kinds: Vec<&Value> = inbox.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| &n["kind"])
        .collect();
    assert_eq!(kinds, [&json!("order.confirmed")], "{}", inbox.body);
    let _ = connection.close(200, "done".into()).await;
    guesser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_role_holds_only_its_own_rights_on_the_broker() {
    let mut system = System::start(Setup::Roles { ticketing: 1 }).await;
    let organizer = system.client("olga", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(10)).await;

    // `eventsys init` makes a login per role on the system's vhost.
    let password = format!("login-{}", eventsys_tests::unique());
    let management = std::env::var("EVENTSYS_TEST_RABBITMQ_MANAGEMENT_URL")
        .unwrap_or_else(|_| "http://guest:guest@127.0.0.1:15672".into());
    let variables: Vec<String> = [
        "API",
        "REGISTRATION",
        "TICKETING",
        "NOTIFICATION",
        "WEBHOOKS",
        "AUTOSCALER",
    ]
    .iter()
    .map(|name| format!("EVENTSYS_BROKER_PASSWORD_{name}"))
    .collect();
    let mut env: Vec<(&str, &str)> = variables
        .iter()
        .map(|v| (v.as_str(), password.as_str()))
        .collect();
    env.push(("EVENTSYS_RABBITMQ_MANAGEMENT_URL", &management));
    let made = system.run(&["init"], &env);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let broker = system.amqp_url.clone();
    // And dead letters expire under a policy.
    let policy = {
        let url = reqwest::Url::parse(&management).expect("the management URL");
        let vhost = system
            .amqp_url
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let mut at = url.clone();
        let _ = at.set_username("");
        let _ = at.set_password(None);
        eventsys_tests::http()
            .get(format!("{at}api/policies/{vhost}/eventsys-dead-letters"))
            .basic_auth(url.username(), url.password())
            .send()
            .await
            .expect("the management API answers")
            .json::<Value>()
            .await
            .expect("a policy")
    };
    assert_eq!(
        policy["definition"]["message-ttl"],
        json!(eventsys_bus::DEAD_LETTER_RETENTION.as_millis() as u64),
        "{policy}"
    );
    let login = |principal: Principal| {
        let mut url = reqwest::Url::parse(&broker).expect("the broker URL");
        url.set_username(&principal.login()).expect("a login");
        url.set_password(Some(&password)).expect("a password");
        url.to_string()
    };

    // Every role again, each under its own login.
    let roles: [(&str, &[&str], Principal); 5] = [
        ("api", &["api"], Principal::Api),
        (
            "registration",
            &["worker", "registration"],
            Principal::Worker(WorkQueue::Registration),
        ),
        (
            "notification",
            &["worker", "notification"],
            Principal::Worker(WorkQueue::Notification),
        ),
        (
            "ticketing-0",
            &["worker", "ticketing"],
            Principal::Worker(WorkQueue::Ticketing),
        ),
        (
            "webhooks",
            &["worker", "webhooks"],
            Principal::Worker(WorkQueue::Webhooks),
        ),
    ];
    for (name, args, principal) in roles {
        system.stop(name).await;
        let url = login(principal);
        system.spawn(name, args, &[("EVENTSYS_AMQP_URL", &url)]);
    }
    system.wait_ready().await;

    // A sale goes through with those rights alone.
    let ann = system.client("ann", &[Role::Attendee]);
    let placed = ann.order(&event_id, 1).await;
    let done = ann
        .wait_terminal(&placed.str("command_id"), Duration::from_secs(30))
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let inbox = eventsys_tests::eventually(Duration::from_secs(20), 1, || async {
        let inbox = ann.get("/v1/me/notifications").await;
        inbox.body["items"].as_array().map_or(0, Vec::len)
    })
    .await;
    assert_eq!(inbox, 1, "the buyer is told");

    // The API's login publishes commands, never facts (even sealed ones),
    // and reads no work queue.
    let forged = forgeries(&event_id).remove(0);
    let api = system
        .broker_at(&login(Principal::Api))
        .await
        .expect("the API's login connects");
    assert!(api.publish(Exchange::Events, &forged).await.is_err());
    assert!(api.consume(WorkQueue::Ticketing, 1).await.is_err());
    // A notification worker's login publishes no commands.
    let notifier = system
        .broker_at(&login(Principal::Worker(WorkQueue::Notification)))
        .await
        .expect("the notification worker's login connects");
    let order = CommandEnvelope::new(
        UserId::parse("ann").expect("a user id"),
        Action::PlaceOrder(PlaceOrder {
            order_id: OrderId::generate(),
            event_id: event_id.parse().expect("an event id"),
            ticket_type_id: TicketTypeId::generate(),
            quantity: 1,
        }),
    );
    assert!(
        notifier
            .publish(Exchange::Commands, &Message::command(&order, None))
            .await
            .is_err()
    );
    assert!(notifier.consume(WorkQueue::Ticketing, 1).await.is_err());
    // The webhooks worker's login publishes nothing at all, and reads its
    // own queue only.
    let sender = system
        .broker_at(&login(Principal::Worker(WorkQueue::Webhooks)))
        .await
        .expect("the webhooks worker's login connects");
    assert!(sender.publish(Exchange::Events, &forged).await.is_err());
    assert!(
        sender
            .publish(Exchange::Commands, &Message::command(&order, None))
            .await
            .is_err()
    );
    assert!(sender.consume(WorkQueue::Notification, 1).await.is_err());
    // The autoscaler's login looks at queue depths and does nothing else.
    let autoscaler = login(Principal::Autoscaler);
    let connection = lapin::Connection::connect(&autoscaler, Default::default())
        .await
        .expect("the autoscaler's login connects");
    let channel = connection.create_channel().await.expect("a channel");
    let depth = channel
        .queue_declare(
            "eventsys.ticketing".into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .expect("a queue's depth");
    assert_eq!(depth.message_count(), 0);
    let _ = connection.close(200, "done".into()).await;
    let scaler = system
        .broker_at(&autoscaler)
        .await
        .expect("the autoscaler's login connects");
    assert!(
        scaler
            .publish(Exchange::Commands, &Message::command(&order, None))
            .await
            .is_err()
    );
    for bus in [api, notifier, sender, scaler] {
        bus.close().await;
    }
    // Logins outlive a vhost: take them away again.
    drop(system);
    for principal in Principal::ALL {
        eventsys_tests::system::rabbitmqctl_run(&["delete_user", &principal.login()]);
    }
}
