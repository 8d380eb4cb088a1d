//! Door staff of one event: its organizer grants, revokes and lists them.
//! A `staff` token scans and reads tickets only at events it was granted.

use axum::{
    Json,
    extract::{Path, State},
    response::Response,
};
use eventsys_messages::{Action, EventId, FieldError, StaffMember, UserId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::events::managed_event;
use crate::{
    AppState,
    auth::{Caller, Role},
    input::{CommandRequest, path_id},
    problem::Problem,
};

/// The body of `POST /v1/events/{id}/staff`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewStaff {
    user_id: String,
}

fn user_id(raw: &str) -> Result<UserId, Problem> {
    UserId::parse(raw).ok_or_else(|| {
        Problem::invalid(vec![FieldError::new(
            "user_id",
            format!(
                "must be 1 to {} characters without control characters",
                UserId::MAX_LEN
            ),
        )])
    })
}

pub async fn grant(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
    request: CommandRequest,
) -> Result<Response, Problem> {
    caller.require(&[Role::Organizer])?;
    let event_id: EventId = path_id(&event_id, "event")?;
    managed_event(&state, &caller, event_id).await?;
    let user_id = user_id(&request.body::<NewStaff>()?.user_id)?;
    let action = Action::GrantStaff(StaffMember { event_id, user_id });
    state.submit(&caller, request, action).await
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path((event_id, user)): Path<(String, String)>,
    request: CommandRequest,
) -> Result<Response, Problem> {
    caller.require(&[Role::Organizer])?;
    let event_id: EventId = path_id(&event_id, "event")?;
    managed_event(&state, &caller, event_id).await?;
    let user_id = user_id(&user)?;
    let action = Action::RevokeStaff(StaffMember { event_id, user_id });
    state.submit(&caller, request, action).await
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require(&[Role::Organizer])?;
    let event_id: EventId = path_id(&event_id, "event")?;
    let event = managed_event(&state, &caller, event_id).await?;
    let items: Vec<Value> = event
        .staff
        .iter()
        .map(|(user_id, since)| json!({ "user_id": user_id, "granted_at": since }))
        .collect();
    Ok(Json(json!({ "items": items, "next_cursor": null })))
}
