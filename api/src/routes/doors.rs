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
    Action, CheckIn, CommandId, CommandStatus, EventId, EventStatus, Reason, TicketId,
    TicketTypeId, Timestamp,
};
use eventsys_store::{CommandRecord, EventRecord, EventSnapshot, TicketRecord};
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::events::may_scan;
use crate::{
    AppState,
    auth::{Caller, Role},
    input::{CommandHeaders, CommandRequest, path_id},
    problem::{
        NoVisibleEvent, NotAtTheDoor, NotJson, Problem, ProblemDocument, ReadProblems,
        WriteProblems,
    },
    submit::{accepted, applied},
    views::CommandAccepted,
};

/// The door needs an answer now: check-ins wait this long by default.
const CHECK_IN_WAIT: Duration = Duration::from_secs(10);
/// Scans one upload may carry.
const BATCH_MAX: usize = 200;
/// How far ahead of the server's clock a door's clock may run.
const CLOCK_SKEW: Duration = Duration::from_secs(300);
const GATE_MAX: usize = 100;

/// The body of a check-in: one scan at the door.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "eyJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiJ9.eyJ0aWNrZXRfaWQiOiIuLi4ifQ.c2lnbmF0dXJl", "gate": "north"}))]
pub struct Scan {
    /// The ticket's code, as its QR code carries it.
    code: String,
    /// The door that scanned, 1 to 100 characters.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    gate: Option<String>,
}

/// The body of a batch upload: what a door scanned while it was offline.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"gate": "north", "scans": [{"code": "eyJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiJ9.eyJ0aWNrZXRfaWQiOiIuLi4ifQ.c2lnbmF0dXJl", "scanned_at": "2030-06-01T09:12:00Z"}]}))]
pub struct Batch {
    /// The door that scanned them, 1 to 100 characters.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    gate: Option<String>,
    /// 1 to 200 scans.
    #[schema(min_items = 1, max_items = 200)]
    scans: Vec<OfflineScan>,
}

/// One scan of an offline door.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfflineScan {
    /// The ticket's code, as its QR code carries it.
    code: String,
    /// When the door scanned it, by its own clock: at most five minutes
    /// ahead of the server's.
    scanned_at: Timestamp,
}

/// A ticket admitted at the door.
#[derive(Serialize, ToSchema)]
pub struct Admitted {
    command_id: CommandId,
    ticket_id: TicketId,
    /// `checked_in`.
    #[schema(pattern = "^checked_in$")]
    status: &'static str,
    checked_in_at: Option<Timestamp>,
    /// The gate that admitted it, if the door said.
    gate: Option<String>,
}

/// What became of each uploaded scan, in the order they were sent.
#[derive(Serialize, ToSchema)]
pub struct BatchResults {
    results: Vec<ScanResult>,
}

/// What became of one uploaded scan.
#[derive(Serialize, ToSchema)]
pub struct ScanResult {
    status: ScanStatus,
    /// The check-in still under way, for `pending`.
    #[serde(skip_serializing_if = "Option::is_none")]
    command_id: Option<CommandId>,
    /// For `checked_in` and `already_checked_in`: when the ticket was
    /// admitted, by this scan or by the earliest one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Timestamp>)]
    checked_in_at: Option<Option<Timestamp>>,
    /// For `checked_in` and `already_checked_in`: the gate of that scan,
    /// if its door said.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    gate: Option<Option<String>>,
}

impl ScanResult {
    fn of(status: ScanStatus) -> Self {
        Self {
            status,
            command_id: None,
            checked_in_at: None,
            gate: None,
        }
    }

    /// With the check-in that stands on `ticket`: its time and gate are
    /// shown even when unknown (null).
    fn against(status: ScanStatus, ticket: &TicketRecord) -> Self {
        Self {
            checked_in_at: Some(ticket.checked_in_at),
            gate: Some(ticket.checked_in_gate.clone()),
            ..Self::of(status)
        }
    }
}

/// How a scan ended: the door's own outcomes, or the reason a check-in
/// was refused (`already_checked_in`, `invalid_ticket_code`,
/// `ticket_cancelled`, `internal_error`, ...).
#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ScanStatus {
    Door(ScanOutcome),
    Refused(Reason),
}

/// `checked_in`: admitted by this scan; `pending`: the check-in did not
/// finish in time (follow `command_id`); `invalid_scan_time`: scanned
/// in the future.
#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScanOutcome {
    CheckedIn,
    Pending,
    InvalidScanTime,
}

/// Sold, held, remaining and checked in, for the whole event.
#[derive(Serialize, ToSchema)]
pub struct EventStats {
    sold: u32,
    held: u32,
    remaining: u32,
    checked_in: u32,
    ticket_types: Vec<TicketTypeStats>,
}

/// Sold, held, remaining and checked in, for one ticket type.
#[derive(Serialize, ToSchema)]
pub struct TicketTypeStats {
    ticket_type_id: TicketTypeId,
    sold: u32,
    held: u32,
    remaining: u32,
    checked_in: u32,
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

/// Check a ticket in
///
/// `POST /v1/events/{id}/checkins`: 200 admitted, 409 already checked in
/// (with the winning scan's time and gate) or cancelled, 422 forged or
/// foreign code, 202 if the answer takes longer than the wait (10 seconds
/// unless `Prefer: wait=N` says otherwise). The event's organizer and its
/// door staff only.
#[utoipa::path(
    post,
    path = "/v1/events/{event_id}/checkins",
    tag = "doors",
    security(("bearer" = [])),
    params(("event_id" = EventId, Path, description = "The event"), CommandHeaders),
    request_body = Scan,
    responses(
        (status = 200, description = "Admitted", body = Admitted,
            headers(("Preference-Applied" = String, description = "How long the answer was waited for"))),
        (status = 202, description = "The check-in did not finish within the wait; follow the command", body = CommandAccepted<'static>,
            headers(("Location" = String, description = "The command's URL"))),
        (status = 400, description = "`malformed_request`: the body is not JSON, or could not be read; or `validation_failed`: a bad `gate` or Idempotency-Key",
            body = ProblemDocument, content_type = "application/problem+json"),
        NotAtTheDoor,
        NoVisibleEvent,
        (status = 409, description = "`already_checked_in`: admitted before (the problem names `ticket_id`, `first_checked_in_at`, `first_gate` and `command_id`); or `ticket_cancelled`",
            body = ProblemDocument, content_type = "application/problem+json"),
        NotJson,
        (status = 422, description = "`invalid_ticket_code`: not a genuine code of this event's; `validation_failed`: a body that breaks the schema; or `idempotency_key_reused`",
            body = ProblemDocument, content_type = "application/problem+json"),
        WriteProblems,
        (status = 500, description = "`internal_error`: the store failed on our side, or the check-in could not be carried out",
            body = ProblemDocument, content_type = "application/problem+json"),
    ),
)]
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
        (CommandStatus::Succeeded, _) => Json(Admitted {
            command_id: record.command_id,
            ticket_id,
            status: "checked_in",
            checked_in_at: result.checked_in_at,
            gate: result.gate,
        })
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

/// Upload an offline door's scans
///
/// `POST /v1/events/{id}/checkins/batch`: the scans of a door that was
/// offline, each with its own time. Every scan becomes a check-in; when
/// they are done, each is reported against the ticket as it stands: the
/// earliest scan of a ticket is the one that `checked_in`, every other is
/// `already_checked_in` with the winning scan's time and gate, or refused
/// with its reason. Uploading the same batch again changes nothing. The
/// event's organizer and its door staff only.
#[utoipa::path(
    post,
    path = "/v1/events/{event_id}/checkins/batch",
    tag = "doors",
    security(("bearer" = [])),
    params(("event_id" = EventId, Path, description = "The event")),
    request_body = Batch,
    responses(
        (status = 200, description = "One result per scan", body = BatchResults),
        (status = 400, description = "`malformed_request`: the body is not JSON, or could not be read; or `validation_failed`: a bad `gate`, or not 1 to 200 scans",
            body = ProblemDocument, content_type = "application/problem+json"),
        NotAtTheDoor,
        NoVisibleEvent,
        NotJson,
        (status = 422, description = "`validation_failed`: a body that breaks the schema",
            body = ProblemDocument, content_type = "application/problem+json"),
        WriteProblems,
    ),
)]
pub async fn batch(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
    request: CommandRequest,
) -> Result<Json<BatchResults>, Problem> {
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
                return Err(ScanStatus::Door(ScanOutcome::InvalidScanTime));
            }
            let ticket_id = state
                .codes
                .admit(&scan.code, event_id)
                .ok_or(ScanStatus::Refused(Reason::InvalidTicketCode))?;
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
                Err(_) => Err(ScanStatus::Refused(Reason::InternalError)),
            }
        }
    });
    let outcomes = join_all(submissions).await;
    let ids: Vec<TicketId> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok().map(|(id, _)| *id))
        .collect();
    let tickets = state.store.tickets(&ids).await?;
    let results = outcomes
        .iter()
        .zip(&upload.scans)
        .map(|(outcome, scan)| match outcome {
            Err(refusal) => ScanResult::of(*refusal),
            Ok((ticket_id, record)) => {
                let ticket = tickets.iter().find(|t| t.ticket_id == *ticket_id);
                scan_result(record, scan, &gate, ticket)
            }
        })
        .collect();
    Ok(Json(BatchResults { results }))
}

/// One uploaded scan's result, against the ticket as it now stands.
fn scan_result(
    record: &CommandRecord,
    scan: &OfflineScan,
    gate: &Option<String>,
    ticket: Option<&TicketRecord>,
) -> ScanResult {
    let refused = record
        .error
        .as_ref()
        .map(|e| e.code)
        .filter(|code| *code != Reason::AlreadyCheckedIn);
    match (record.status, refused, ticket) {
        (CommandStatus::Accepted | CommandStatus::Processing, _, _) => ScanResult {
            command_id: Some(record.command_id),
            ..ScanResult::of(ScanStatus::Door(ScanOutcome::Pending))
        },
        (_, Some(reason), _) => ScanResult::of(ScanStatus::Refused(reason)),
        (_, None, Some(t))
            if t.checked_in_at == Some(scan.scanned_at) && &t.checked_in_gate == gate =>
        {
            ScanResult::against(ScanStatus::Door(ScanOutcome::CheckedIn), t)
        }
        (_, None, Some(t)) => ScanResult::against(ScanStatus::Refused(Reason::AlreadyCheckedIn), t),
        (_, None, None) => ScanResult::of(ScanStatus::Refused(Reason::InvalidTicketCode)),
    }
}

/// The event's counts
///
/// `GET /v1/events/{id}/stats`: sold, held, remaining and checked in, for
/// the whole event and per ticket type. The event's organizer and its
/// door staff only.
#[utoipa::path(
    get,
    path = "/v1/events/{event_id}/stats",
    tag = "doors",
    security(("bearer" = [])),
    params(("event_id" = EventId, Path, description = "The event")),
    responses(
        (status = 200, description = "The counts", body = EventStats),
        NotAtTheDoor,
        NoVisibleEvent,
        ReadProblems,
    ),
)]
pub async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
) -> Result<Json<EventStats>, Problem> {
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

fn counts(snapshot: &EventSnapshot) -> EventStats {
    let counters = &snapshot.inventory;
    let ticket_types = snapshot
        .event
        .spec
        .ticket_types
        .iter()
        .map(|tt| {
            let id = tt.ticket_type_id;
            TicketTypeStats {
                ticket_type_id: id,
                sold: counters.type_sold(id),
                held: counters.type_held(id),
                remaining: counters.type_remaining(id),
                checked_in: counters.type_checked_in(id),
            }
        })
        .collect();
    EventStats {
        sold: counters.sold(),
        held: counters.held,
        remaining: counters.remaining,
        checked_in: counters.checked_in,
        ticket_types,
    }
}

fn invalid_code() -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        Reason::InvalidTicketCode.as_str(),
        "this code is not a ticket for this event",
    )
}
