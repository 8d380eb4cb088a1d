//! The waiting list of an event: join it, and see your place and any
//! offer. An offer is a hold made for you, confirmed like any order.

use axum::{
    Json,
    extract::{Path, State},
    response::Response,
};
use eventsys_messages::{
    Action, EventId, JoinWaitlist, OrderId, OrderStatus, TicketTypeId, Timestamp, rules,
};
use eventsys_store::WaitStatus;
use serde::Serialize;
use utoipa::ToSchema;

use super::orders::{TicketTypeChoice, event_on_sale_for};
use crate::{
    AppState,
    auth::Caller,
    input::{CommandHeaders, CommandRequest, path_id},
    problem::{
        BadJsonCommand, NoVisibleEvent, NotAnAttendee, Problem, ProblemDocument, ReadProblems,
        WriteProblems,
    },
    submit::SubmitAnswers,
};

/// The caller's place in an event's waiting list.
#[derive(Serialize, ToSchema)]
pub struct WaitlistEntry {
    event_id: EventId,
    ticket_type_id: TicketTypeId,
    joined_at: Timestamp,
    status: WaitStatus,
    /// Counting from 1; only while waiting.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    position: Option<u32>,
    /// The hold made for the caller; only once offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    offer: Option<Offer>,
}

/// A seat offered from the waiting list: an order, confirmed like any
/// other before it expires.
#[derive(Serialize, ToSchema)]
pub struct Offer {
    order_id: OrderId,
    status: OrderStatus,
    /// Until when the hold lasts.
    expires_at: Option<Timestamp>,
}

/// Join the waiting list
///
/// `POST /v1/events/{id}/waitlist`: join; while anyone waits, seats that
/// come free are offered to those waiting, first come first. Needs the
/// `attendee` role. The body may be left out when the event has one
/// ticket type on sale.
#[utoipa::path(
    post,
    path = "/v1/events/{event_id}/waitlist",
    tag = "waitlist",
    security(("bearer" = [])),
    params(("event_id" = EventId, Path, description = "The event"), CommandHeaders),
    request_body(
        content = Option<TicketTypeChoice>,
        content_type = "application/json",
        description = "May be left out when the event has one ticket type on sale",
    ),
    responses(
        SubmitAnswers,
        BadJsonCommand,
        NotAnAttendee,
        NoVisibleEvent,
        (status = 409, description = "`not_on_sale`: the event is a draft, cancelled or over",
            body = ProblemDocument, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: a body not sent as JSON",
            body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: no such ticket type, a closed one, or none named where the event has several; or `idempotency_key_reused`",
            body = ProblemDocument, content_type = "application/problem+json"),
        WriteProblems,
    ),
)]
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

/// My place in the waiting list
///
/// `GET /v1/events/{id}/waitlist/me`: `{"position", "status", "offer"?}`;
/// `position` counts from 1 while waiting.
#[utoipa::path(
    get,
    path = "/v1/events/{event_id}/waitlist/me",
    tag = "waitlist",
    security(("bearer" = [])),
    params(("event_id" = EventId, Path, description = "The event")),
    responses(
        (status = 200, description = "The caller's entry", body = WaitlistEntry),
        (status = 404, description = "`not_found`: the caller is not on this event's list (or no such event)",
            body = ProblemDocument, content_type = "application/problem+json"),
        ReadProblems,
    ),
)]
pub async fn mine(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
) -> Result<Json<WaitlistEntry>, Problem> {
    let event_id: EventId = path_id(&event_id, "event")?;
    let (entry, ahead) = state
        .store
        .waitlist_entry(event_id, &caller.user)
        .await?
        .ok_or_else(|| Problem::not_found("waiting-list entry"))?;
    let mut view = WaitlistEntry {
        event_id,
        ticket_type_id: entry.ticket_type_id,
        joined_at: entry.joined_at,
        status: entry.status,
        position: None,
        offer: None,
    };
    match entry.status {
        WaitStatus::Waiting => view.position = Some(ahead + 1),
        WaitStatus::Offered => {
            if let Some(order_id) = entry.offer
                && let Some(order) = state.store.order(order_id).await?
            {
                view.offer = Some(Offer {
                    order_id: order.order_id,
                    status: order.status,
                    expires_at: order.expires_at,
                });
            }
        }
    }
    Ok(Json(view))
}
