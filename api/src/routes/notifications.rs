//! A user's notification inbox.

use axum::{
    Json,
    extract::{Path, State},
    response::{IntoResponse, Response},
};
use eventsys_messages::{Action, MarkNotificationRead, Notification, NotificationId};

use crate::{
    AppState,
    auth::Caller,
    input::{CommandHeaders, CommandRequest, Paging, path_id},
    problem::{
        BadCommand, BadPage, KeyReused, Problem, ProblemDocument, ReadProblems, WriteProblems,
    },
    submit::SubmitAnswers,
    views::{self, PageOf},
};

/// List my notifications
///
/// The caller's inbox, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/me/notifications",
    tag = "notifications",
    security(("bearer" = [])),
    params(Paging),
    responses(
        (status = 200, description = "A page of the caller's inbox", body = PageOf<Notification>),
        BadPage,
        ReadProblems,
    ),
)]
pub async fn mine(
    State(state): State<AppState>,
    caller: Caller,
    paging: Paging,
) -> Result<Response, Problem> {
    let list = format!("notifications:{}", caller.user);
    let request = paging.request(&state.cursors, &list)?;
    let page = state.store.notifications(&caller.user, &request).await?;
    let inbox = views::page(&page, &state.cursors, &list, std::convert::identity);
    Ok(Json(inbox).into_response())
}

/// Mark a notification read
///
/// Marking one that is not the caller's, or that does not exist, changes
/// nothing.
#[utoipa::path(
    post,
    path = "/v1/me/notifications/{notification_id}/read",
    tag = "notifications",
    security(("bearer" = [])),
    params(("notification_id" = NotificationId, Path, description = "The notification"), CommandHeaders),
    responses(
        SubmitAnswers,
        BadCommand,
        (status = 404, description = "`not_found`: not a notification id",
            body = ProblemDocument, content_type = "application/problem+json"),
        KeyReused,
        WriteProblems,
    ),
)]
pub async fn mark_read(
    State(state): State<AppState>,
    caller: Caller,
    Path(notification_id): Path<String>,
    request: CommandRequest,
) -> Result<Response, Problem> {
    let notification_id: NotificationId = path_id(&notification_id, "notification")?;
    let action = Action::MarkNotificationRead(MarkNotificationRead { notification_id });
    state.submit(&caller, request, action).await
}
