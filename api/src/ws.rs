//! `GET /v1/ws`: a user's live view. Sends their own `command.updated` and
//! `notification` frames, and `event.updated` for the events they subscribe
//! to; takes `subscribe`, `unsubscribe` and `ping` frames.
//!
//! A connection is bounded: its messages are small and few, it follows a
//! limited number of events, its user holds a limited number of connections, and it
//! ends when its token does.

use std::collections::HashMap;

use axum::{
    extract::{
        Query, State, WebSocketUpgrade,
        ws::{CloseFrame, Message, WebSocket, rejection::WebSocketUpgradeRejection},
    },
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use eventsys_messages::{EventId, EventStatus};
use eventsys_telemetry::metrics;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;

use crate::{
    AppState,
    auth::Caller,
    hub::{Connection, Crowded},
    limits::RateLimiter,
    problem::Problem,
    routes::events::{may_manage, may_scan},
};

/// Close codes (RFC 6455).
const GOING_AWAY: u16 = 1001;
const POLICY_VIOLATION: u16 = 1008;

/// The largest message (and frame) a client may send, by default. Client
/// frames are a few dozen bytes; anything near this is abuse, and ends the
/// connection.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 16 * 1024;

pub async fn connect(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    parts: Parts,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Problem> {
    // Browsers cannot set headers on a WebSocket: accept the token in the query too.
    let caller = match state.auth.of(&parts) {
        Some(caller) => caller?,
        None => match query.get("access_token") {
            Some(token) => state.auth.verify(token)?,
            None => {
                return Err(Problem::unauthorized(
                    "pass a bearer token or ?access_token=",
                ));
            }
        },
    };
    let upgrade =
        upgrade.map_err(|e| Problem::malformed(format!("not a WebSocket handshake: {e}")))?;
    let connection = state.hub.connect(&caller.user).map_err(too_many)?;
    let most = state.limits.ws_message_bytes;
    Ok(upgrade
        // Clients send small frames: a read buffer of the usual 128 KiB,
        // zeroed on every read and held by each of thousands of
        // connections, was most of a rush's memory and a tenth of its CPU.
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(most)
        .max_frame_size(most)
        .on_upgrade(move |socket| session(state, caller, connection, socket))
        .into_response())
}

/// Retrying helps only once a connection closes, so no `Retry-After`.
fn too_many(crowded: Crowded) -> Problem {
    let (status, code) = match crowded {
        Crowded::User(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_connections"),
        Crowded::Replica(_) => (StatusCode::SERVICE_UNAVAILABLE, "server_busy"),
    };
    Problem::new(status, code, crowded.to_string())
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    Subscribe { event_id: EventId },
    Unsubscribe { event_id: EventId },
    Ping,
}

async fn session(state: AppState, caller: Caller, mut connection: Connection, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let pace = RateLimiter::per_second(state.limits.ws_messages_per_second);
    let expired = tokio::time::sleep(caller.lifetime());
    tokio::pin!(expired);
    let close = |code: u16, reason: &'static str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    metrics::websocket_opened();
    let _closed = Closed;
    loop {
        tokio::select! {
            frame = connection.frames.recv() => {
                let Some(frame) = frame else { break };
                if sink.send(Message::Text(frame.into())).await.is_err() {
                    break;
                }
                metrics::websocket_frame("sent");
            }
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(_))) if pace.check(()).is_err() => {
                    let _ = sink.send(close(POLICY_VIOLATION, "too many messages")).await;
                    break;
                }
                Some(Ok(Message::Text(text))) => {
                    let reply = answer(&state, &caller, connection.id, &text).await;
                    if sink.send(Message::Text(reply.into())).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                // Pings are answered by the protocol layer; binary frames mean nothing here.
                Some(Ok(_)) => {}
            },
            () = &mut expired => {
                let _ = sink.send(close(POLICY_VIOLATION, "token expired")).await;
                break;
            }
            () = connection.dropped.cancelled() => {
                let _ = sink.send(close(POLICY_VIOLATION, "too slow to keep up")).await;
                break;
            }
            () = state.shutdown.cancelled() => {
                let _ = sink.send(close(GOING_AWAY, "server shutting down")).await;
                break;
            }
        }
    }
}

/// Counts a session closed however it ends.
struct Closed;

impl Drop for Closed {
    fn drop(&mut self) {
        metrics::websocket_closed();
    }
}

/// What one read from a live connection takes at most; a larger message
/// takes several reads.
const READ_BUFFER_BYTES: usize = 4 * 1024;

async fn answer(state: &AppState, caller: &Caller, connection: u64, text: &str) -> String {
    match serde_json::from_str::<ClientFrame>(text) {
        Ok(ClientFrame::Subscribe { event_id }) => {
            // Only events the caller may see; whoever works the door also
            // gets the counts and every check-in.
            let event = match state.reads.event_record(state.store.as_ref(), event_id).await {
                Ok(event) => event.filter(|e| {
                    e.spec.status != EventStatus::Draft || may_manage(Some(caller), &e.organizer_id)
                }),
                Err(_) => {
                    return json!({ "type": "error", "code": "unavailable",
                        "message": "try subscribing again shortly" })
                    .to_string();
                }
            };
            let Some(event) = event else {
                return json!({ "type": "error", "code": "not_found", "event_id": event_id,
                    "message": "no such event" })
                .to_string();
            };
            let door = may_scan(caller, &event);
            if !state
                .hub
                .subscribe(&caller.user, connection, event_id, door)
            {
                let most = state.hub.limits().subscriptions_per_connection;
                return json!({ "type": "error", "code": "too_many_subscriptions",
                    "event_id": event_id,
                    "message": format!("a connection follows at most {most} events; unsubscribe from one first") })
                .to_string();
            }
            json!({ "type": "subscribed", "event_id": event_id, "door": door })
        }
        Ok(ClientFrame::Unsubscribe { event_id }) => {
            state.hub.unsubscribe(&caller.user, connection, event_id);
            json!({ "type": "unsubscribed", "event_id": event_id })
        }
        Ok(ClientFrame::Ping) => json!({ "type": "pong" }),
        Err(err) => json!({
            "type": "error",
            "code": "validation_failed",
            "message": format!("expected subscribe, unsubscribe or ping: {err}"),
        }),
    }
    .to_string()
}
