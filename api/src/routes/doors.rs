//! The door: scanning a ticket online, uploading the scans of a door that
//! was offline, and the live count of who is in. Only the event's
//! organizer and the staff granted at it may act here.

use std::time::Duration;

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use eventsys_messages::{
    Action, CheckIn, CommandStatus, EventId, EventStatus, Reason, TicketId, Timestamp,
};
use eventsys_store::{CommandRecord, EventRecord, EventSnapshot};
use futures::future::join_all;
use serde::Deserialize;
use serde_json::{Value, json};

use super::events::may_scan;
use crate::{
    AppState,
    auth::{Caller, Role},
    input::{CommandRequest, path_id},
    problem::Problem,
    submit::{accepted, applied},
};

/// The door needs an answer now: check-ins wait this long by default.
const CHECK_IN_WAIT: Duration = Duration::from_secs(10);
/// Scans one upload may carry.
const BATCH_MAX: usize = 200;
/// How far ahead of the server's clock a door's clock may run.
const CLOCK_SKEW: Duration = Duration::from_secs(300);
const GATE_MAX: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scan {
    code: String,
    #[serde(default)]
    gate: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    #[serde(default)]
    gate: Option<String>,
    scans: Vec<OfflineScan>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfflineScan {
    code: String,
    scanned_at: Timestamp,
}

/// The event, if `caller` may act at its door.
async fn door(
    state: &AppState,
    caller: &Caller,
    event_id: EventId,
) -> Result<EventRecord, Problem> {
    let event = state
        .store
        .event_record(event_id)
        .await?
        .ok_or_else(|| Problem::not_found("event"))?;
    if !may_scan(caller, &event) {
        // A draft's existence is its organizer's business.
        if event.spec.status == EventStatus::Draft {
            return Err(Problem::not_found("event"));
        }
        return Err(Problem::forbidden(
            "only the event's organizer or its door staff may act at its door",
        ));
    }
    Ok(event)
}

fn gate(gate: Option<String>) -> Result<Option<String>, Problem> {
    match gate {
        Some(g) if g.trim().is_empty() || g.chars().count() > GATE_MAX => Err(Problem::bad_field(
            "gate",
            format!("must be 1 to {GATE_MAX} characters"),
        )),
        other => Ok(other),
    }
}

/// `POST /v1/events/{id}/checkins`: 200 admitted, 409 already checked in
/// (with the winning scan's time and gate) or cancelled, 422 forged or
/// foreign code, 202 if the answer takes longer than the wait.
pub async fn check_in(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
    request: CommandRequest,
) -> Result<Response, Problem> {
    caller.require(&[Role::Organizer, Role::Staff])?;
    let event_id: EventId = path_id(&event_id, "event")?;
    // Whoever may not work this door learns nothing about the code.
    door(&state, &caller, event_id).await?;
    let scan: Scan = request.body()?;
    let gate = gate(scan.gate)?;
    let ticket_id = state
        .codes
        .admit(&scan.code, event_id)
        .ok_or_else(invalid_code)?;
    let action = Action::CheckIn(CheckIn {
        event_id,
        ticket_id,
        gate,
        scanned_at: None,
    });
    let submitted = state
        .submit_waiting(&caller, request, action, Some(CHECK_IN_WAIT))
        .await?;
    let record = &submitted.record;
    let wait = submitted.waited.unwrap_or(CHECK_IN_WAIT);
    let result = record.result.clone().unwrap_or_default();
    let mut response = match (record.status, record.error.as_ref().map(|e| e.code)) {
        (CommandStatus::Succeeded, _) => Json(json!({
            "command_id": record.command_id,
            "ticket_id": ticket_id,
            "status": "checked_in",
            "checked_in_at": result.checked_in_at,
            "gate": result.gate,
        }))
        .into_response(),
        (CommandStatus::Rejected, Some(Reason::AlreadyCheckedIn)) => Problem::new(
            StatusCode::CONFLICT,
            Reason::AlreadyCheckedIn.as_str(),
            "this ticket was already checked in",
        )
        .with("ticket_id", ticket_id.to_string())
        .with("first_checked_in_at", json!(result.checked_in_at))
        .with("first_gate", json!(result.gate))
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

/// `POST /v1/events/{id}/checkins/batch`: the scans of a door that was
/// offline, each with its own time. Every scan becomes a check-in; when
/// they are done, each is reported against the ticket as it stands: the
/// earliest scan of a ticket is the one that `checked_in`, every other is
/// `already_checked_in` with the winning scan's time and gate, or refused
/// with its reason. Uploading the same batch again changes nothing.
pub async fn batch(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
    request: CommandRequest,
) -> Result<Json<Value>, Problem> {
    caller.require(&[Role::Organizer, Role::Staff])?;
    let event_id: EventId = path_id(&event_id, "event")?;
    door(&state, &caller, event_id).await?;
    let upload: Batch = request.body()?;
    let gate = gate(upload.gate)?;
    if upload.scans.is_empty() || upload.scans.len() > BATCH_MAX {
        return Err(Problem::bad_field(
            "scans",
            format!("must hold 1 to {BATCH_MAX} scans"),
        ));
    }
    let latest = Timestamp::now() + CLOCK_SKEW;
    let submissions = upload.scans.iter().map(|scan| {
        let (state, caller, gate) = (&state, &caller, gate.clone());
        let traceparent = request.traceparent.clone();
        async move {
            if scan.scanned_at > latest {
                return Err("invalid_scan_time");
            }
            let ticket_id = state
                .codes
                .admit(&scan.code, event_id)
                .ok_or(Reason::InvalidTicketCode.as_str())?;
            let action = Action::CheckIn(CheckIn {
                event_id,
                ticket_id,
                gate,
                scanned_at: Some(scan.scanned_at),
            });
            let request = CommandRequest::internal(traceparent);
            match state
                .submit_waiting(caller, request, action, Some(CHECK_IN_WAIT))
                .await
            {
                Ok(submitted) => Ok((ticket_id, submitted.record)),
                Err(_) => Err(Reason::InternalError.as_str()),
            }
        }
    });
    let outcomes = join_all(submissions).await;
    let ids: Vec<TicketId> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok().map(|(id, _)| *id))
        .collect();
    let tickets = state.store.tickets(&ids).await?;
    let results: Vec<Value> = outcomes
        .iter()
        .zip(&upload.scans)
        .map(|(outcome, scan)| match outcome {
            Err(refusal) => json!({ "status": refusal }),
            Ok((ticket_id, record)) => {
                let ticket = tickets.iter().find(|t| t.ticket_id == *ticket_id);
                scan_result(record, scan, &gate, ticket)
            }
        })
        .collect();
    Ok(Json(json!({ "results": results })))
}

/// One uploaded scan's result, against the ticket as it now stands.
fn scan_result(
    record: &CommandRecord,
    scan: &OfflineScan,
    gate: &Option<String>,
    ticket: Option<&eventsys_store::TicketRecord>,
) -> Value {
    let refused = record
        .error
        .as_ref()
        .map(|e| e.code)
        .filter(|code| *code != Reason::AlreadyCheckedIn);
    match (record.status, refused, ticket) {
        (CommandStatus::Accepted | CommandStatus::Processing, _, _) => {
            json!({ "status": "pending", "command_id": record.command_id })
        }
        (_, Some(reason), _) => json!({ "status": reason.as_str() }),
        (_, None, Some(t))
            if t.checked_in_at == Some(scan.scanned_at) && &t.checked_in_gate == gate =>
        {
            json!({ "status": "checked_in", "checked_in_at": t.checked_in_at, "gate": t.checked_in_gate })
        }
        (_, None, Some(t)) => json!({
            "status": Reason::AlreadyCheckedIn.as_str(),
            "checked_in_at": t.checked_in_at,
            "gate": t.checked_in_gate,
        }),
        (_, None, None) => json!({ "status": Reason::InvalidTicketCode.as_str() }),
    }
}

/// `GET /v1/events/{id}/stats`: sold, held, remaining and checked in, for
/// the whole event and per ticket type.
pub async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require(&[Role::Organizer, Role::Staff])?;
    let event_id: EventId = path_id(&event_id, "event")?;
    door(&state, &caller, event_id).await?;
    let snapshot = state
        .store
        .event(event_id)
        .await?
        .ok_or_else(|| Problem::not_found("event"))?;
    Ok(Json(counts(&snapshot)))
}

fn counts(snapshot: &EventSnapshot) -> Value {
    let counters = &snapshot.inventory;
    let types: Vec<Value> = snapshot
        .event
        .spec
        .ticket_types
        .iter()
        .map(|tt| {
            let id = tt.ticket_type_id;
            json!({
                "ticket_type_id": id,
                "sold": counters.type_sold(id),
                "held": counters.type_held(id),
                "remaining": counters.type_remaining(id),
                "checked_in": counters.type_checked_in(id),
            })
        })
        .collect();
    json!({
        "sold": counters.sold(),
        "held": counters.held,
        "remaining": counters.remaining,
        "checked_in": counters.checked_in,
        "ticket_types": types,
    })
}

fn invalid_code() -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        Reason::InvalidTicketCode.as_str(),
        "this code is not a ticket for this event",
    )
}
