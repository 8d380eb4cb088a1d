//! The waiting list of an event: join it, and see your place and any
//! offer. An offer is a hold made for you, confirmed like any order.

use axum::{
    Json,
    extract::{Path, State},
    response::Response,
};
use eventsys_messages::{Action, EventId, JoinWaitlist, rules};
use eventsys_store::WaitStatus;
use serde_json::{Value, json};

use super::orders::{TicketTypeChoice, event_on_sale_for};
use crate::{
    AppState,
    auth::Caller,
    input::{CommandRequest, path_id},
    problem::Problem,
};

/// `POST /v1/events/{id}/waitlist`: join; while anyone waits, seats that
/// come free are offered to those waiting, first come first.
pub async fn join(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
    request: CommandRequest,
) -> Result<Response, Problem> {
    let event = event_on_sale_for(&state, &caller, &event_id).await?;
    // Left out, the event's only type.
    let wanted: TicketTypeChoice = request.body_or_default()?;
    let ticket_type = rules::ticket_type(&event.spec, wanted.ticket_type.as_deref())
        .map_err(|e| Problem::invalid(vec![e]))?;
    let action = Action::JoinWaitlist(JoinWaitlist {
        event_id: event.event_id,
        ticket_type_id: ticket_type.ticket_type_id,
    });
    state.submit(&caller, request, action).await
}

/// `GET /v1/events/{id}/waitlist/me`: `{"position", "status", "offer"?}`;
/// `position` counts from 1 while waiting.
pub async fn mine(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let event_id: EventId = path_id(&event_id, "event")?;
    let (entry, ahead) = state
        .store
        .waitlist_entry(event_id, &caller.user)
        .await?
        .ok_or_else(|| Problem::not_found("waiting-list entry"))?;
    let mut view = json!({
        "event_id": event_id,
        "ticket_type_id": entry.ticket_type_id,
        "joined_at": entry.joined_at,
        "status": entry.status,
    });
    match entry.status {
        WaitStatus::Waiting => view["position"] = json!(ahead + 1),
        WaitStatus::Offered => {
            if let Some(order_id) = entry.offer
                && let Some(order) = state.store.order(order_id).await?
            {
                view["offer"] = json!({
                    "order_id": order.order_id,
                    "status": order.status,
                    "expires_at": order.expires_at,
                });
            }
        }
    }
    Ok(Json(view))
}
