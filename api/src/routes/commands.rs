//! `GET /v1/commands/{id}`: where a command stands, and while an order
//! waits, its place in line.

use axum::{
    Json,
    extract::{Path, State},
};
use eventsys_messages::{CommandId, CommandStatus};
use serde_json::{Value, json};

use crate::{AppState, auth::Caller, input::path_id, problem::Problem, views};

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(command_id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let command_id: CommandId = path_id(&command_id, "command")?;
    let record = state
        .reads
        .command(state.store.as_ref(), command_id)
        .await?
        .filter(|r| r.issuer == caller.user || caller.is_admin())
        .ok_or_else(|| Problem::not_found("command"))?;
    let mut body = json!(views::command(&record));
    if record.status == CommandStatus::Accepted
        && let Some(place) = state.hub.line().position(command_id)
    {
        body["queue_position"] = place.into();
    }
    Ok(Json(body))
}
