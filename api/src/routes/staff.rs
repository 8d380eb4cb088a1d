//! Door staff of one event: its organizer grants, revokes and lists them.
//! A `staff` token scans and reads tickets only at events it was granted.

use axum::{
    Json,
    extract::{Path, State},
    response::{IntoResponse, Response},
};
use eventsys_messages::{Action, EventId, FieldError, StaffMember, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::events::managed_event;
use crate::{
    AppState,
    auth::{Caller, Role},
    input::{CommandHeaders, CommandRequest, path_id},
    problem::{
        BadCommand, BadJsonCommand, NotAnOrganizer, NotJson, NotTheirEvent, Problem,
        ProblemDocument, ReadProblems, WriteProblems,
    },
    submit::SubmitAnswers,
    views::PageOf,
};

/// The body of `POST /v1/events/{id}/staff`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user_id": "dan"}))]
pub struct NewStaff {
    /// The user, as their token's `sub` names them: 1 to 128 bytes, no
    /// control characters.
    user_id: String,
}

/// One member of an event's door staff.
#[derive(Serialize, ToSchema)]
pub struct StaffEntry<'a> {
    user_id: &'a UserId,
    granted_at: Timestamp,
}

/// A user id from a request, or a 422 naming `user_id`.
pub(crate) fn user_id(raw: &str) -> Result<UserId, Problem> {
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

/// Grant door staff
///
/// The event's organizer (or an admin) lets a user with the `staff` role
/// scan tickets and read them at this event.
#[utoipa::path(
    post,
    path = "/v1/events/{event_id}/staff",
    tag = "staff",
    security(("bearer" = [])),
    params(("event_id" = EventId, Path, description = "The event"), CommandHeaders),
    request_body = NewStaff,
    responses(
        SubmitAnswers,
        BadJsonCommand,
        NotAnOrganizer,
        NotTheirEvent,
        NotJson,
        (status = 422, description = "`validation_failed`: a body that breaks the schema, or not a user id; or `idempotency_key_reused`",
            body = ProblemDocument, content_type = "application/problem+json"),
        WriteProblems,
    ),
)]
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

/// Revoke door staff
///
/// The event's organizer (or an admin) takes a user's door rights at this
/// event away.
#[utoipa::path(
    delete,
    path = "/v1/events/{event_id}/staff/{user_id}",
    tag = "staff",
    security(("bearer" = [])),
    params(
        ("event_id" = EventId, Path, description = "The event"),
        ("user_id" = UserId, Path, description = "The staff member"),
        CommandHeaders,
    ),
    responses(
        SubmitAnswers,
        BadCommand,
        NotAnOrganizer,
        NotTheirEvent,
        (status = 422, description = "`validation_failed`: `user_id` is not a user id; or `idempotency_key_reused`",
            body = ProblemDocument, content_type = "application/problem+json"),
        WriteProblems,
    ),
)]
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

/// List door staff
///
/// The event's organizer (or an admin) only.
#[utoipa::path(
    get,
    path = "/v1/events/{event_id}/staff",
    tag = "staff",
    security(("bearer" = [])),
    params(("event_id" = EventId, Path, description = "The event")),
    responses(
        (status = 200, description = "The event's door staff", body = PageOf<StaffEntry<'static>>),
        NotAnOrganizer,
        NotTheirEvent,
        ReadProblems,
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
) -> Result<Response, Problem> {
    caller.require(&[Role::Organizer])?;
    let event_id: EventId = path_id(&event_id, "event")?;
    let event = managed_event(&state, &caller, event_id).await?;
    // All on one page: the list is never split.
    let staff = PageOf {
        items: event
            .staff
            .iter()
            .map(|(user_id, &granted_at)| StaffEntry {
                user_id,
                granted_at,
            })
            .collect(),
        next_cursor: None,
    };
    Ok(Json(staff).into_response())
}
