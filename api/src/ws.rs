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
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    AppState,
    auth::Caller,
    hub::{Connection, Crowded},
    limits::RateLimiter,
    problem::{Problem, ProblemDocument, RequestProblems},
    routes::events::{may_manage, may_scan},
};

/// Close codes (RFC 6455).
const GOING_AWAY: u16 = 1001;
const POLICY_VIOLATION: u16 = 1008;

/// The largest message (and frame) a client may send, by default. Client
/// frames are a few dozen bytes; anything near this is abuse, and ends the
/// connection.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 16 * 1024;

/// Open the live connection
///
/// A WebSocket (RFC 6455) that pushes the caller's own `command.updated`,
/// `notification` and `queue.position` frames, and `event.updated`,
/// `ticket.checked_in` and `waitlist.moved` for the events it subscribes
/// to; it takes `subscribe`, `unsubscribe` and `ping` frames. It ends
/// when the token does. Browsers, which cannot set headers on a
/// WebSocket, pass the token as `access_token`.
#[utoipa::path(
    get,
    path = "/v1/ws",
    tag = "realtime",
    security(("bearer" = [])),
    params(
        ("access_token" = Option<String>, Query,
            description = "The bearer token, for clients that cannot send an Authorization header"),
    ),
    responses(
        (status = 101, description = "Switching Protocols: the WebSocket is open"),
        (status = 400, description = "`malformed_request`: not a WebSocket handshake",
            body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no token (header or `access_token`), or one that is not valid",
            body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "`too_many_connections`: the caller holds as many live connections as a user may",
            body = ProblemDocument, content_type = "application/problem+json"),
        (status = 503, description = "`server_busy`: this replica holds as many live connections as it may",
            body = ProblemDocument, content_type = "application/problem+json"),
        RequestProblems,
    ),
)]
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

/// What a client sends on the live connection, as JSON text frames.
#[derive(Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Follow an event the caller may see: answered `subscribed`, with
    /// `door` saying whether its counts and check-ins come too.
    Subscribe { event_id: EventId },
    /// Stop following it: answered `unsubscribed`.
    Unsubscribe { event_id: EventId },
    /// Answered `pong`.
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
    let reply = match serde_json::from_str::<ClientFrame>(text) {
        Ok(ClientFrame::Subscribe { event_id }) => {
            subscribe(state, caller, connection, event_id).await
        }
        Ok(ClientFrame::Unsubscribe { event_id }) => {
            state.hub.unsubscribe(&caller.user, connection, event_id);
            Reply::Unsubscribed { event_id }
        }
        Ok(ClientFrame::Ping) => Reply::Pong,
        Err(err) => Reply::Error {
            code: ReplyError::ValidationFailed,
            event_id: None,
            message: format!("expected subscribe, unsubscribe or ping: {err}"),
        },
    };
    // Ids, strings and flags always serialize.
    serde_json::to_string(&reply).unwrap_or_default()
}

/// Follows `event_id` on `connection`, if the caller may see it.
async fn subscribe(state: &AppState, caller: &Caller, connection: u64, event_id: EventId) -> Reply {
    // Only events the caller may see; whoever works the door also gets the
    // counts and every check-in.
    let event = match state
        .reads
        .event_record(state.store.as_ref(), event_id)
        .await
    {
        Ok(event) => event.filter(|e| {
            e.spec.status != EventStatus::Draft || may_manage(Some(caller), &e.organizer_id)
        }),
        Err(_) => {
            return Reply::Error {
                code: ReplyError::Unavailable,
                event_id: None,
                message: "try subscribing again shortly".into(),
            };
        }
    };
    let Some(event) = event else {
        return Reply::Error {
            code: ReplyError::NotFound,
            event_id: Some(event_id),
            message: "no such event".into(),
        };
    };
    let door = may_scan(caller, &event);
    if !state
        .hub
        .subscribe(&caller.user, connection, event_id, door)
    {
        let most = state.hub.limits().subscriptions_per_connection;
        return Reply::Error {
            code: ReplyError::TooManySubscriptions,
            event_id: Some(event_id),
            message: format!(
                "a connection follows at most {most} events; unsubscribe from one first"
            ),
        };
    }
    Reply::Subscribed { event_id, door }
}

/// The server's answer to a client frame, on the same connection.
#[derive(Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// Now following the event; with `door`, its counts and check-ins too.
    Subscribed { event_id: EventId, door: bool },
    /// No longer following it.
    Unsubscribed { event_id: EventId },
    /// The answer to `ping`.
    Pong,
    /// The frame was not acted on.
    Error {
        code: ReplyError,
        /// The event a `subscribe` named, when that is what failed.
        #[serde(skip_serializing_if = "Option::is_none")]
        event_id: Option<EventId>,
        message: String,
    },
}

/// Why a client frame was not acted on: `unavailable` (try again
/// shortly), `not_found` (no such event the caller may see),
/// `too_many_subscriptions`, or `validation_failed` (not a frame this
/// server takes).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplyError {
    Unavailable,
    NotFound,
    TooManySubscriptions,
    ValidationFailed,
}

/// One reply of every kind, as clients receive them (for the AsyncAPI
/// document's test).
#[cfg(test)]
pub(crate) fn every_reply() -> Vec<serde_json::Value> {
    let event_id = EventId::generate();
    let error = |code, event_id| Reply::Error {
        code,
        event_id,
        message: "a sentence for people".into(),
    };
    let replies = [
        Reply::Subscribed {
            event_id,
            door: true,
        },
        Reply::Unsubscribed { event_id },
        Reply::Pong,
        error(ReplyError::Unavailable, None),
        error(ReplyError::NotFound, Some(event_id)),
        error(ReplyError::TooManySubscriptions, Some(event_id)),
        error(ReplyError::ValidationFailed, None),
    ];
    replies
        .iter()
        .map(|reply| {
            // A new kind of reply does not compile here until it has a sample.
            match reply {
                Reply::Subscribed { .. }
                | Reply::Unsubscribed { .. }
                | Reply::Pong
                | Reply::Error {
                    code:
                        ReplyError::Unavailable
                        | ReplyError::NotFound
                        | ReplyError::TooManySubscriptions
                        | ReplyError::ValidationFailed,
                    ..
                } => {}
            }
            serde_json::to_value(reply).unwrap_or_default()
        })
        .collect()
}
