//! `GET /v1/commands/{id}`: where a command stands.

use axum::{
    Json,
    extract::{Path, State},
};
use eventsys_messages::CommandId;
use serde_json::{Value, json};

use crate::{AppState, auth::Caller, input::path_id, problem::Problem, views};

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(command_id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let command_id: CommandId = path_id(&command_id, "command")?;
    let record = state
        .store
        .command(command_id)
        .await?
        .filter(|r| r.issuer == caller.user || caller.is_admin())
        .ok_or_else(|| Problem::not_found("command"))?;
    Ok(Json(json!(views::command(&record))))
}
