//! `GET /v1/commands/{id}`: where a command stands, and while an order
//! waits, its place in line and, in `Retry-After`, when to look again: in
//! a rush, clients polling every half second would cost more than the
//! orders they wait for.

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use eventsys_messages::{CommandId, CommandStatus, WorkQueue};
use serde_json::json;

use crate::{AppState, auth::Caller, input::path_id, problem::Problem, views};

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(command_id): Path<String>,
) -> Result<Response, Problem> {
    let command_id: CommandId = path_id(&command_id, "command")?;
    let record = state
        .reads
        .command(state.store.as_ref(), command_id)
        .await?
        .filter(|r| r.issuer == caller.user || caller.is_admin())
        .ok_or_else(|| Problem::not_found("command"))?;
    let mut body = json!(views::command(&record));
    let mut look_again = None;
    if record.status == CommandStatus::Accepted
        && let Some(place) = state.hub.line().position(command_id)
    {
        body["queue_position"] = place.into();
        let (_, rate) = state.hub.backlog().load(WorkQueue::Ticketing);
        look_again = Some(rate.map_or(1.0, |rate| place as f64 / rate.max(1.0)));
    } else if !record.status.is_terminal() {
        look_again = Some(1.0);
    }
    let mut response = Json(body).into_response();
    if let Some(seconds) = look_again {
        let seconds = seconds.clamp(1.0, LOOK_AGAIN_AT_MOST).ceil() as u32;
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    Ok(response)
}

/// The longest a waiting command's `Retry-After` asks a poller to wait.
const LOOK_AGAIN_AT_MOST: f64 = 10.0;
