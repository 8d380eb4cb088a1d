//! Tickets: my tickets, one ticket with its code, and check-in at the door.

use std::time::Duration;

use axum::{
    Json,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use eventsys_messages::{Action, CheckIn, CommandStatus, EventId, Reason, TicketId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::events::may_scan;
use crate::{
    AppState,
    auth::{Caller, Role},
    input::{CommandRequest, Paging, path_id},
    problem::Problem,
    submit::{accepted, applied},
    views,
};

/// The door needs an answer now: check-ins wait this long by default.
const CHECK_IN_WAIT: Duration = Duration::from_secs(10);

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scan {
    code: String,
}

/// `POST /v1/events/{id}/checkins`: 200 admitted, 409 already checked in
/// (with the first time), 422 forged or foreign code, 202 if the answer
/// takes longer than the wait.
pub async fn check_in(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
    request: CommandRequest,
) -> Result<Response, Problem> {
    caller.require(&[Role::Organizer, Role::Staff])?;
    let event_id: EventId = path_id(&event_id, "event")?;
    let scan: Scan = request.body()?;
    // A forged or foreign code is refused before anything is read.
    let ticket_id = state
        .codes
        .admit(&scan.code, event_id)
        .ok_or_else(invalid_code)?;
    let event = state
        .store
        .event_record(event_id)
        .await?
        .ok_or_else(|| Problem::not_found("event"))?;
    if !may_scan(&caller, &event) {
        return Err(Problem::forbidden(
            "only the event's organizer or its door staff may check tickets in",
        ));
    }
    let action = Action::CheckIn(CheckIn {
        event_id,
        ticket_id,
    });
    let submitted = state
        .submit_waiting(&caller, request, action, Some(CHECK_IN_WAIT))
        .await?;
    let record = &submitted.record;
    let wait = submitted.waited.unwrap_or(CHECK_IN_WAIT);
    let first = record.result.as_ref().and_then(|r| r.checked_in_at);
    let mut response = match (record.status, record.error.as_ref().map(|e| e.code)) {
        (CommandStatus::Succeeded, _) => Json(json!({
            "command_id": record.command_id,
            "ticket_id": ticket_id,
            "status": "checked_in",
            "checked_in_at": first,
        }))
        .into_response(),
        (CommandStatus::Rejected, Some(Reason::AlreadyCheckedIn)) => Problem::new(
            StatusCode::CONFLICT,
            Reason::AlreadyCheckedIn.as_str(),
            "this ticket was already checked in",
        )
        .with("ticket_id", ticket_id.to_string())
        .with("first_checked_in_at", json!(first))
        .with("command_id", record.command_id.to_string())
        .into_response(),
        (CommandStatus::Rejected, Some(Reason::TicketCancelled)) => Problem::new(
            StatusCode::CONFLICT,
            Reason::TicketCancelled.as_str(),
            "this ticket was cancelled",
        )
        .into_response(),
        (CommandStatus::Rejected, _) => invalid_code().into_response(),
        (CommandStatus::Failed, _) => Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Reason::InternalError.as_str(),
            "the check-in could not be carried out",
        )
        .into_response(),
        _ => return Ok(accepted(record)),
    };
    applied(&mut response, wait);
    Ok(response)
}

fn invalid_code() -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        Reason::InvalidTicketCode.as_str(),
        "this code is not a ticket for this event",
    )
}
