//! The WebSocket: a user sees their own commands move, on every connection
//! they have, and never anyone else's; subscribers see availability change.

use std::time::Duration;

use eventsys_api::auth::Role;
use eventsys_tests::{Setup, System, client::event_body, on_both};
use futures::StreamExt;
use serde_json::{Value, json};

/// Generous: the machine may be busy with other tests.
const WAIT: Duration = Duration::from_secs(30);

fn mentions(frames: &[Value], command_id: &str) -> bool {
    frames.iter().any(|f| f["command_id"] == command_id)
}

on_both!(
    a_client_sees_its_own_updates_and_never_another_users,
    Setup::Roles { ticketing: 1 }
);

async fn a_client_sees_its_own_updates_and_never_another_users(setup: Setup) {
    let system = System::start(setup).await;
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(10)).await;
    let (ann, bob) = (
        system.client("ann", &[Role::Attendee]),
        system.client("bob", &[Role::Attendee]),
    );
    let (mut ann_phone, mut ann_laptop, mut bob_feed) =
        (ann.live().await, ann.live().await, bob.live().await);
    ann_phone
        .send(json!({ "type": "subscribe", "event_id": event_id }))
        .await;
    let subscribed = ann_phone
        .next(Duration::from_secs(5))
        .await
        .expect("an answer");
    assert_eq!(subscribed["type"], "subscribed");

    let command_id = ann.order(&event_id, 2).await.str("command_id");
    let final_update = |f: &Value, id: &str| {
        f["type"] == "command.updated" && f["command_id"] == id && f["status"] == "succeeded"
    };
    let phone = ann_phone
        .gather(WAIT, |fs| {
            fs.iter().any(|f| final_update(f, &command_id))
                && fs
                    .iter()
                    .any(|f| f["type"] == "notification" && f["kind"] == "order.confirmed")
                && fs
                    .iter()
                    .any(|f| f["type"] == "event.updated" && f["remaining"] == 8)
        })
        .await;
    let statuses: Vec<&str> = phone
        .iter()
        .filter(|f| f["type"] == "command.updated" && f["command_id"] == command_id.as_str())
        .filter_map(|f| f["status"].as_str())
        .collect();
    assert_eq!(statuses, ["processing", "succeeded"], "{phone:?}");
    let done = phone
        .iter()
        .find(|f| final_update(f, &command_id))
        .expect("the final update");
    assert_eq!(
        done["result"]["ticket_ids"].as_array().map(Vec::len),
        Some(2)
    );
    assert!(
        phone
            .iter()
            .any(|f| f["type"] == "notification" && f["kind"] == "order.confirmed"),
        "{phone:?}"
    );
    assert!(
        phone
            .iter()
            .any(|f| f["type"] == "event.updated" && f["remaining"] == 8),
        "{phone:?}"
    );
    // Every connection of the user hears about it.
    let laptop = ann_laptop
        .gather(WAIT, |fs| fs.iter().any(|f| final_update(f, &command_id)))
        .await;
    assert!(mentions(&laptop, &command_id));

    // Bob hears nothing of Ann's command, and Ann nothing of Bob's.
    let bobs = bob.order(&event_id, 1).await.str("command_id");
    let mut bob_frames = bob_feed
        .gather(WAIT, |fs| fs.iter().any(|f| final_update(f, &bobs)))
        .await;
    let mut ann_after = ann_phone
        .gather(WAIT, |fs| {
            fs.iter()
                .any(|f| f["type"] == "event.updated" && f["remaining"] == 7)
        })
        .await;
    // Anything misrouted would arrive right behind.
    bob_frames.extend(bob_feed.collect(Duration::from_millis(500)).await);
    ann_after.extend(ann_phone.collect(Duration::from_millis(500)).await);
    assert!(!mentions(&bob_frames, &command_id), "{bob_frames:?}");
    assert!(mentions(&bob_frames, &bobs));
    assert!(
        !bob_frames.iter().any(|f| f["type"] == "event.updated"),
        "bob did not subscribe"
    );
    assert!(!mentions(&ann_after, &bobs), "{ann_after:?}");
    assert!(
        ann_after
            .iter()
            .any(|f| f["type"] == "event.updated" && f["remaining"] == 7)
    );

    // Pings are answered; nonsense gets an error frame, not a disconnect.
    ann_phone.send(json!({ "type": "ping" })).await;
    assert_eq!(
        ann_phone.next(Duration::from_secs(2)).await.expect("pong")["type"],
        "pong"
    );
    ann_phone.send(json!({ "type": "dance" })).await;
    assert_eq!(
        ann_phone.next(Duration::from_secs(2)).await.expect("error")["type"],
        "error"
    );
}

on_both!(
    a_browser_authenticates_in_the_query_and_nobody_gets_in_without_a_token,
    Setup::Serve
);

async fn a_browser_authenticates_in_the_query_and_nobody_gets_in_without_a_token(setup: Setup) {
    let system = System::start(setup).await;
    let ann = system.client("ann", &[Role::Attendee]);
    let ws = system.base_url.replacen("http://", "ws://", 1);
    let token = ann.token().expect("a token");
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("{ws}/v1/ws?access_token={token}"))
            .await
            .expect("the token in the query is accepted");
    use futures::SinkExt;
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text(
            r#"{"type":"ping"}"#.into(),
        ))
        .await
        .expect("sent");
    let pong = tokio::time::timeout(Duration::from_secs(2), socket.next()).await;
    assert!(matches!(pong, Ok(Some(Ok(_)))));

    for url in [
        format!("{ws}/v1/ws"),
        format!("{ws}/v1/ws?access_token=forged"),
    ] {
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 401)
            }
            other => panic!("expected 401, got {other:?}"),
        }
    }
}

on_both!(a_door_sees_every_check_in_and_the_counts_live, Setup::Serve);

/// Door staff subscribed to their event see each check-in and the counts
/// as they change; a buyer subscribed to it sees availability only; an
/// event nobody may see cannot be subscribed to.
async fn a_door_sees_every_check_in_and_the_counts_live(setup: Setup) {
    let system = System::start(setup).await;
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(10)).await;
    organizer.grant_staff(&event_id, "door-a").await;
    let (door, ann) = (
        system.client("door-a", &[Role::Staff]),
        system.client("ann", &[Role::Attendee]),
    );
    let (mut gate, mut public) = (door.live().await, ann.live().await);
    for feed in [&mut gate, &mut public] {
        feed.send(json!({ "type": "subscribe", "event_id": event_id }))
            .await;
    }
    let subscribed = |f: &Value| f["type"] == "subscribed";
    let gate_ok = gate.wait_for(WAIT, subscribed).await.expect("subscribed");
    assert_eq!(gate_ok["door"], true);
    let public_ok = public.wait_for(WAIT, subscribed).await.expect("subscribed");
    assert_eq!(public_ok["door"], false);

    let bought = ann
        .post_with(
            &format!("/v1/events/{event_id}/orders"),
            &json!({ "quantity": 1 }),
            &[("prefer", "wait=20")],
        )
        .await;
    let ticket_id = bought.body["result"]["ticket_ids"][0]
        .as_str()
        .expect("a ticket")
        .to_owned();
    let code = ann
        .get(&format!("/v1/tickets/{ticket_id}"))
        .await
        .str("code");
    let scanned = door
        .post(
            &format!("/v1/events/{event_id}/checkins"),
            &json!({ "code": code, "gate": "north" }),
        )
        .await;
    assert_eq!(scanned.status, 200, "{:?}", scanned.body);

    let at_gate = gate
        .gather(WAIT, |fs| {
            fs.iter().any(|f| f["type"] == "ticket.checked_in")
                && fs
                    .iter()
                    .any(|f| f["type"] == "event.updated" && f["counts"]["checked_in"] == 1)
        })
        .await;
    let check_in = at_gate
        .iter()
        .find(|f| f["type"] == "ticket.checked_in")
        .expect("the gate sees the check-in");
    assert_eq!(
        (&check_in["ticket_id"], &check_in["gate"]),
        (&json!(ticket_id), &json!("north"))
    );
    assert!(check_in.get("holder_id").is_none(), "no holder at the door");

    let seen = public.collect(Duration::from_secs(2)).await;
    assert!(
        seen.iter()
            .any(|f| f["type"] == "event.updated" && f["remaining"] == 9),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .all(|f| f["type"] != "ticket.checked_in" && f.get("counts").is_none()),
        "a buyer sees no counts nor check-ins: {seen:?}"
    );

    public
        .send(json!({ "type": "subscribe", "event_id": uuid::Uuid::now_v7() }))
        .await;
    let refused = public
        .wait_for(WAIT, |f| f["type"] == "error")
        .await
        .expect("an answer");
    assert_eq!(refused["code"], "not_found");
}

/// With no ticketing worker running, orders wait in line: each buyer reads
/// their place on the command and hears it pushed; once a worker comes,
/// the line moves and empties.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waiting_order_shows_its_place_in_line_until_it_is_served() {
    let mut system = System::start(Setup::Roles { ticketing: 0 }).await;
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(10)).await;
    let buyers: Vec<_> = ["ann", "bob", "cid"]
        .iter()
        .map(|name| system.client(name, &[Role::Attendee]))
        .collect();
    let mut cid_feed = buyers[2].live().await;
    let mut commands = Vec::new();
    for buyer in &buyers {
        commands.push(buyer.order(&event_id, 1).await.str("command_id"));
    }
    for (place, (buyer, command)) in buyers.iter().zip(&commands).enumerate() {
        let reply = buyer.get(&format!("/v1/commands/{command}")).await;
        assert_eq!(reply.body["status"], "accepted", "{:?}", reply.body);
        assert_eq!(reply.body["queue_position"], place + 1, "{:?}", reply.body);
    }
    let told = cid_feed
        .wait_for(WAIT, |f| {
            f["type"] == "queue.position" && f["command_id"] == commands[2].as_str()
        })
        .await
        .expect("cid hears their place");
    assert_eq!(told["position"], 3);
    assert_eq!(told["event_id"], event_id.as_str());

    system.spawn("ticketing-0", &["worker", "ticketing"], &[]);
    for (buyer, command) in buyers.iter().zip(&commands) {
        let done = buyer.wait_terminal(command, WAIT).await;
        assert_eq!(done["status"], "succeeded", "{done:?}");
        assert!(done.get("queue_position").is_none(), "{done:?}");
    }
}
