//! A user's notification inbox.

use axum::{
    Json,
    extract::{Path, State},
    response::Response,
};
use eventsys_messages::{Action, MarkNotificationRead, NotificationId};
use serde_json::Value;

use crate::{
    AppState,
    auth::Caller,
    input::{CommandRequest, Paging, path_id},
    problem::Problem,
    views,
};

pub async fn mine(
    State(state): State<AppState>,
    caller: Caller,
    paging: Paging,
) -> Result<Json<Value>, Problem> {
    let list = format!("notifications:{}", caller.user);
    let request = paging.request(&state.cursors, &list)?;
    let page = state.store.notifications(&caller.user, &request).await?;
    Ok(Json(views::page(
        &page,
        &state.cursors,
        &list,
        std::convert::identity,
    )))
}

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
