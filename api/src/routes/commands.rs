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

use crate::{
    AppState,
    auth::Caller,
    input::path_id,
    problem::{Problem, ProblemDocument, ReadProblems},
    views::{self, CommandStanding},
};

/// Where a command stands
///
/// The issuer's (or an admin's) command: its status, result or error,
/// and while an order waits in line, its place; `Retry-After` says when to
/// look again while it is not finished.
#[utoipa::path(
    get,
    path = "/v1/commands/{command_id}",
    tag = "commands",
    security(("bearer" = [])),
    params(("command_id" = CommandId, Path, description = "The command")),
    responses(
        (status = 200, description = "The command document", body = CommandStanding<'static>,
            headers(("Retry-After" = u32, description = "While the command is not finished: seconds until it is worth asking again"))),
        (status = 404, description = "`not_found`: no such command of the caller's",
            body = ProblemDocument, content_type = "application/problem+json"),
        ReadProblems,
    ),
)]
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
    let mut queue_position = None;
    let mut look_again = None;
    if record.status == CommandStatus::Accepted
        && let Some(place) = state.hub.line().position(command_id)
    {
        queue_position = Some(place);
        let (_, rate) = state.hub.backlog().load(WorkQueue::Ticketing);
        look_again = Some(rate.map_or(1.0, |rate| place as f64 / rate.max(1.0)));
    } else if !record.status.is_terminal() {
        look_again = Some(1.0);
    }
    // Through a JSON value: a staff command's `user_id` is both its
    // issuer's and the staff member's, and the value keeps one, the latter.
    let body = json!(CommandStanding {
        command: views::command(&record),
        queue_position,
    });
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
