//! Tickets: my tickets, one ticket with its code, and its QR code.

use axum::{
    Json,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use eventsys_messages::{Action, TicketId, TicketRef};
use serde_json::{Value, json};

use super::{events::may_scan, orders::may_act_for};
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
    let list = format!("tickets:{}", caller.user);
    let request = paging.request(&state.cursors, &list)?;
    let page = state.store.tickets_of(&caller.user, &request).await?;
    Ok(Json(views::page(&page, &state.cursors, &list, |t| {
        views::ticket(t, Some(state.codes.of(t)))
    })))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(ticket_id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let ticket = visible_ticket(&state, &caller, &ticket_id).await?;
    let code = state.codes.of(&ticket);
    Ok(Json(json!(views::ticket(&ticket, Some(code)))))
}

/// `GET /v1/tickets/{id}/qr.svg`: the ticket's code as a QR code, for
/// whoever may see the code.
pub async fn qr(
    State(state): State<AppState>,
    caller: Caller,
    Path(ticket_id): Path<String>,
) -> Result<Response, Problem> {
    let ticket = visible_ticket(&state, &caller, &ticket_id).await?;
    let code = state.codes.of(&ticket);
    let svg = qrcode::QrCode::new(code.as_bytes())
        .map_err(|_| {
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "the code does not fit a QR code",
            )
        })?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(256, 256)
        .build();
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

/// `POST /v1/tickets/{id}/cancel`: its holder or the event's organizer
/// cancels one ticket; its seat goes back on sale.
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(ticket_id): Path<String>,
    request: CommandRequest,
) -> Result<Response, Problem> {
    let ticket_id: TicketId = path_id(&ticket_id, "ticket")?;
    let ticket = state
        .store
        .ticket(ticket_id)
        .await?
        .ok_or_else(|| Problem::not_found("ticket"))?;
    if !may_act_for(&state, &caller, &ticket.holder_id, ticket.event_id).await? {
        return Err(Problem::not_found("ticket"));
    }
    let action = Action::CancelTicket(TicketRef { ticket_id });
    state.submit(&caller, request, action).await
}

/// The ticket `raw` names, if `caller` may see it and its code: its
/// holder, or whoever may scan at its event; anyone else is told it does
/// not exist.
async fn visible_ticket(
    state: &AppState,
    caller: &Caller,
    raw: &str,
) -> Result<eventsys_store::TicketRecord, Problem> {
    let ticket_id: TicketId = path_id(raw, "ticket")?;
    let ticket = state
        .store
        .ticket(ticket_id)
        .await?
        .ok_or_else(|| Problem::not_found("ticket"))?;
    let allowed = ticket.holder_id == caller.user
        || caller.is_admin()
        || state
            .store
            .event_record(ticket.event_id)
            .await?
            .is_some_and(|event| may_scan(caller, &event));
    if !allowed {
        return Err(Problem::not_found("ticket"));
    }
    Ok(ticket)
}
