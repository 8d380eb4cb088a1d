//! Buying tickets: `POST /v1/events/{id}/orders` and `GET /v1/orders/{id}`.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use eventsys_messages::{
    Action, EventId, EventStatus, OrderId, OrderRef, PlaceOrder, Reason, rules,
};
use eventsys_store::EventRecord;
use serde::Deserialize;
use utoipa::ToSchema;

use super::events::may_manage;
use crate::{
    AppState,
    auth::{Caller, Role},
    input::{CommandHeaders, CommandRequest, path_id},
    problem::{
        BadCommand, BadJsonCommand, KeyReused, NoVisibleEvent, NotAnAttendee, NotJson, Problem,
        ProblemDocument, ReadProblems, WriteProblems,
    },
    submit::SubmitAnswers,
    views::{self, OrderView},
};

/// The body of `POST /v1/events/{id}/orders`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"quantity": 2}))]
pub struct NewOrder {
    /// A ticket type's id or name; optional when the event has one type
    /// on sale. Also accepted as `ticket_type_id`.
    #[serde(default, alias = "ticket_type_id")]
    ticket_type: Option<String>,
    /// 1 to the event's `max_per_order`.
    #[schema(minimum = 1, maximum = 50)]
    quantity: u32,
}

/// Order tickets
///
/// Needs the `attendee` role. Paid tickets are held until the order is
/// confirmed (`POST /v1/orders/{order_id}/confirm`) or the hold runs out;
/// free ones are the buyer's at once. The order's id is in the answer
/// (`order_id`); whether it got its seats comes with the outcome.
#[utoipa::path(
    post,
    path = "/v1/events/{event_id}/orders",
    tag = "orders",
    security(("bearer" = [])),
    params(("event_id" = EventId, Path, description = "The event"), CommandHeaders),
    request_body = NewOrder,
    responses(
        SubmitAnswers,
        BadJsonCommand,
        NotAnAttendee,
        NoVisibleEvent,
        (status = 409, description = "`not_on_sale`: the event is a draft, cancelled or over",
            body = ProblemDocument, content_type = "application/problem+json"),
        NotJson,
        (status = 422, description = "`validation_failed`: no such ticket type (or none named where the event has several, or a closed one), or a quantity out of range; or `idempotency_key_reused`",
            body = ProblemDocument, content_type = "application/problem+json"),
        WriteProblems,
    ),
)]
pub async fn place(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
    request: CommandRequest,
) -> Result<Response, Problem> {
    let event = event_on_sale_for(&state, &caller, &event_id).await?;
    let order: NewOrder = request.body()?;
    let ticket_type = rules::ticket_type(&event.spec, order.ticket_type.as_deref())
        .map_err(|e| Problem::invalid(vec![e]))?;
    rules::quantity(&event.spec, order.quantity).map_err(|e| Problem::invalid(vec![e]))?;
    let action = Action::PlaceOrder(PlaceOrder {
        order_id: OrderId::generate(),
        event_id: event.event_id,
        ticket_type_id: ticket_type.ticket_type_id,
        quantity: order.quantity,
    });
    state.submit(&caller, request, action).await
}

/// Read an order
///
/// Its buyer's (or an admin's), with its tickets and their codes.
#[utoipa::path(
    get,
    path = "/v1/orders/{order_id}",
    tag = "orders",
    security(("bearer" = [])),
    params(("order_id" = OrderId, Path, description = "The order")),
    responses(
        (status = 200, description = "The order", body = OrderView<'static>),
        (status = 404, description = "`not_found`: no such order of the caller's",
            body = ProblemDocument, content_type = "application/problem+json"),
        ReadProblems,
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(order_id): Path<String>,
) -> Result<Response, Problem> {
    let order_id: OrderId = path_id(&order_id, "order")?;
    // Someone else's order does not exist, as far as the caller can tell.
    let order = state
        .store
        .order(order_id)
        .await?
        .filter(|o| o.buyer_id == caller.user || caller.is_admin())
        .ok_or_else(|| Problem::not_found("order"))?;
    let tickets = state.store.tickets(&order.ticket_ids).await?;
    let tickets = tickets
        .iter()
        .map(|t| views::ticket(t, Some(state.codes.of(t))))
        .collect();
    Ok(Json(views::order(&order, tickets)).into_response())
}

/// The body of a registration or a waiting-list entry, which may be empty.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketTypeChoice {
    /// A ticket type's id or name; left out, the rules pick one. Also
    /// accepted as `ticket_type_id`.
    #[serde(default, alias = "ticket_type_id")]
    pub ticket_type: Option<String>,
}

/// Register for free
///
/// `POST /v1/events/{id}/registrations`: a free registration (RSVP), one
/// per user and event, through the same inventory as orders; cancelled
/// like any order. Needs the `attendee` role. The body may be left out:
/// the event's first free ticket type is taken.
#[utoipa::path(
    post,
    path = "/v1/events/{event_id}/registrations",
    tag = "orders",
    security(("bearer" = [])),
    params(("event_id" = EventId, Path, description = "The event"), CommandHeaders),
    request_body(
        content = Option<TicketTypeChoice>,
        content_type = "application/json",
        description = "May be left out: the event's first free ticket type is taken",
    ),
    responses(
        SubmitAnswers,
        BadJsonCommand,
        NotAnAttendee,
        NoVisibleEvent,
        (status = 409, description = "`not_on_sale`: the event is a draft, cancelled or over; or `conflict`: the caller is registered already (its `order_id` is a member of the problem)",
            body = ProblemDocument, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: a body not sent as JSON",
            body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: no such ticket type, a paid or closed one, or the event has no free one; or `idempotency_key_reused`",
            body = ProblemDocument, content_type = "application/problem+json"),
        WriteProblems,
    ),
)]
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
    request: CommandRequest,
) -> Result<Response, Problem> {
    let event = event_on_sale_for(&state, &caller, &event_id).await?;
    let event_id = event.event_id;
    // Left out, the event's first free type.
    let wanted: TicketTypeChoice = request.body_or_default()?;
    let ticket_type = rules::registration_type(&event.spec, wanted.ticket_type.as_deref())
        .map_err(|e| Problem::invalid(vec![e]))?;
    let order_id = OrderId::registration(event_id, &caller.user);
    let active = state.store.order(order_id).await?;
    if active.is_some_and(|o| o.status.is_active()) {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            Reason::Conflict.as_str(),
            "you are already registered for this event",
        )
        .with("order_id", order_id.to_string()));
    }
    let action = Action::Register(PlaceOrder {
        order_id,
        event_id,
        ticket_type_id: ticket_type.ticket_type_id,
        quantity: 1,
    });
    state.submit(&caller, request, action).await
}

/// The event an attendee buys, registers or waits for: `caller` must be
/// an attendee, and the event one they may see (drafts are their
/// organizer's) and on sale. Checked before the body is read, so that a
/// body error tells a stranger nothing about a draft.
pub async fn event_on_sale_for(
    state: &AppState,
    caller: &Caller,
    event_id: &str,
) -> Result<EventRecord, Problem> {
    caller.require(&[Role::Attendee])?;
    let event_id: EventId = path_id(event_id, "event")?;
    let event = state
        .reads
        .event_record(state.store.as_ref(), event_id)
        .await?
        .filter(|e| {
            e.spec.status != EventStatus::Draft || may_manage(Some(caller), &e.organizer_id)
        })
        .ok_or_else(|| Problem::not_found("event"))?;
    rules::on_sale(&event.spec).map_err(|reason| {
        Problem::new(
            StatusCode::CONFLICT,
            reason.as_str(),
            "the event is not on sale",
        )
    })?;
    Ok(event)
}

/// Confirm an order
///
/// `POST /v1/orders/{id}/confirm`: its buyer (or a payment callback with
/// an admin token) turns a hold into tickets; `hold_expired` if too late.
#[utoipa::path(
    post,
    path = "/v1/orders/{order_id}/confirm",
    tag = "orders",
    security(("bearer" = [])),
    params(("order_id" = OrderId, Path, description = "The order"), CommandHeaders),
    responses(
        SubmitAnswers,
        BadCommand,
        (status = 404, description = "`not_found`: no such order of the caller's",
            body = ProblemDocument, content_type = "application/problem+json"),
        KeyReused,
        WriteProblems,
    ),
)]
pub async fn confirm(
    State(state): State<AppState>,
    caller: Caller,
    Path(order_id): Path<String>,
    request: CommandRequest,
) -> Result<Response, Problem> {
    let order_id: OrderId = path_id(&order_id, "order")?;
    state
        .store
        .order(order_id)
        .await?
        .filter(|o| o.buyer_id == caller.user || caller.is_admin())
        .ok_or_else(|| Problem::not_found("order"))?;
    let action = Action::ConfirmOrder(OrderRef { order_id });
    state.submit(&caller, request, action).await
}

/// Cancel an order
///
/// `POST /v1/orders/{id}/cancel`: its buyer or the event's organizer
/// cancels the whole order; its seats go back on sale.
#[utoipa::path(
    post,
    path = "/v1/orders/{order_id}/cancel",
    tag = "orders",
    security(("bearer" = [])),
    params(("order_id" = OrderId, Path, description = "The order"), CommandHeaders),
    responses(
        SubmitAnswers,
        BadCommand,
        (status = 404, description = "`not_found`: no such order the caller may cancel",
            body = ProblemDocument, content_type = "application/problem+json"),
        KeyReused,
        WriteProblems,
    ),
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(order_id): Path<String>,
    request: CommandRequest,
) -> Result<Response, Problem> {
    let order_id: OrderId = path_id(&order_id, "order")?;
    let order = state
        .store
        .order(order_id)
        .await?
        .ok_or_else(|| Problem::not_found("order"))?;
    if !may_act_for(&state, &caller, &order.buyer_id, order.event_id).await? {
        return Err(Problem::not_found("order"));
    }
    let action = Action::CancelOrder(OrderRef { order_id });
    state.submit(&caller, request, action).await
}

/// Whether `caller` may cancel what `owner` bought at `event_id`: the
/// owner, the event's organizer, or an admin.
pub async fn may_act_for(
    state: &AppState,
    caller: &Caller,
    owner: &eventsys_messages::UserId,
    event_id: EventId,
) -> Result<bool, Problem> {
    if *owner == caller.user || caller.is_admin() {
        return Ok(true);
    }
    Ok(state
        .store
        .event_record(event_id)
        .await?
        .is_some_and(|e| may_manage(Some(caller), &e.organizer_id)))
}
