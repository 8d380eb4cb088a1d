//! What one client may hold of a server: connections per user, the size of
//! what it sends, and a connection no longer than its token.

use std::time::Duration;

use eventsys_api::{auth::Role, ws::MAX_CLIENT_MESSAGE_BYTES};
use eventsys_tests::{Setup, System, on_both};
use serde_json::json;

/// The default cap on one user's live connections.
const CONNECTIONS_PER_USER: usize = 16;

on_both!(
    a_user_holds_a_bounded_number_of_live_connections,
    Setup::Roles { ticketing: 1 }
);

async fn a_user_holds_a_bounded_number_of_live_connections(setup: Setup) {
    let system = System::start(setup).await;
    let ann = system.client("ann", &[Role::Attendee]);
    let mut open = Vec::new();
    for _ in 0..CONNECTIONS_PER_USER {
        open.push(ann.live().await);
    }
    assert_eq!(ann.try_live().await.err(), Some(429), "one past the cap");
    // Someone else is not held back by Ann's connections.
    let bob = system.client("bob", &[Role::Attendee]);
    let mut bobs = bob.live().await;
    bobs.send(json!({ "type": "ping" })).await;
    assert_eq!(
        bobs.next(Duration::from_secs(5))
            .await
            .map(|f| f["type"].clone()),
        Some(json!("pong"))
    );
    // Closing one gives its place back.
    drop(open.remove(0));
    let mut again = None;
    for _ in 0..50 {
        if let Ok(live) = ann.try_live().await {
            again = Some(live);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "a closed connection's place is given back");
    assert_eq!(
        ann.try_live().await.err(),
        Some(429),
        "and the cap holds again"
    );
}

on_both!(
    a_client_sending_an_oversized_message_is_cut_off,
    Setup::Roles { ticketing: 1 }
);

async fn a_client_sending_an_oversized_message_is_cut_off(setup: Setup) {
    let system = System::start(setup).await;
    let ann = system.client("ann", &[Role::Attendee]);
    let mut live = ann.live().await;
    let padding = "x".repeat(MAX_CLIENT_MESSAGE_BYTES + 1);
    live.send_text(format!(r#"{{"type":"ping","pad":"{padding}"}}"#))
        .await;
    assert!(
        live.closed(Duration::from_secs(10)).await.is_some(),
        "the connection ends"
    );
    // The server is unharmed, and the cut-off connection's place is free.
    let mut next = ann.live().await;
    next.send(json!({ "type": "ping" })).await;
    assert_eq!(
        next.next(Duration::from_secs(5))
            .await
            .map(|f| f["type"].clone()),
        Some(json!("pong"))
    );
}

on_both!(
    a_live_connection_ends_when_its_token_does,
    Setup::Roles { ticketing: 1 }
);

async fn a_live_connection_ends_when_its_token_does(setup: Setup) {
    let system = System::start(setup).await;
    let brief = system.client_for("ann", &[Role::Attendee], Duration::from_secs(2));
    let mut live = brief.live().await;
    live.send(json!({ "type": "ping" })).await;
    assert!(
        live.next(Duration::from_secs(1)).await.is_some(),
        "open at first"
    );
    // 1008: policy violation, with the reason "token expired".
    assert_eq!(live.closed(Duration::from_secs(10)).await, Some(1008));
}
