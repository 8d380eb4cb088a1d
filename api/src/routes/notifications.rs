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
    problem::{Problem, ProblemDocument, ReadProblems, WriteProblems},
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
        (status = 400, description = "`validation_failed`: a `limit` out of range, or a `cursor` this list did not give out; or `malformed_request`: a query string that cannot be read",
            body = ProblemDocument, content_type = "application/problem+json"),
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
        (status = 400, description = "`malformed_request`: the body could not be read; or `validation_failed`: a bad Idempotency-Key",
            body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: not a notification id",
            body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`",
            body = ProblemDocument, content_type = "application/problem+json"),
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
