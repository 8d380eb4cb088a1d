//! `/v1/events`: creating, listing and reading events, their life
//! (publish, cancel), and who may act on them.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use eventsys_messages::{
    Action, CreateEvent, EventChanges, EventId, EventRef, EventSpec, EventStatus, Reason,
    TicketTypeChange, TicketTypeId, TicketTypeSpec, Timestamp, UpdateEvent, rules,
    spec::{DEFAULT_HOLD_SECONDS, DEFAULT_MAX_PER_ORDER},
};
use eventsys_store::EventRecord;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    AppState,
    auth::{Caller, MaybeCaller, Role},
    input::{CommandRequest, Paging, path_id},
    problem::Problem,
    views,
};

/// The body of `POST /v1/events`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    name: String,
    #[serde(default)]
    description: String,
    venue: String,
    starts_at: Timestamp,
    ends_at: Timestamp,
    capacity: u32,
    #[serde(default)]
    ticket_types: Option<Vec<NewTicketType>>,
    #[serde(default)]
    max_per_order: Option<u32>,
    #[serde(default)]
    hold_seconds: Option<u32>,
    #[serde(default)]
    status: Option<NewStatus>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTicketType {
    name: String,
    price_minor: u64,
    currency: String,
    quota: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum NewStatus {
    Draft,
    Published,
}

impl NewEvent {
    /// The complete description: ids assigned, defaults filled in.
    fn into_spec(self) -> EventSpec {
        let ticket_types = match self.ticket_types {
            Some(types) => types
                .into_iter()
                .map(|t| TicketTypeSpec {
                    ticket_type_id: TicketTypeId::generate(),
                    name: t.name,
                    price_minor: t.price_minor,
                    currency: t.currency,
                    quota: t.quota,
                    closed: false,
                })
                .collect(),
            None => vec![TicketTypeSpec {
                ticket_type_id: TicketTypeId::generate(),
                name: "General admission".into(),
                price_minor: 0,
                currency: "EUR".into(),
                quota: self.capacity,
                closed: false,
            }],
        };
        EventSpec {
            name: self.name,
            description: self.description,
            venue: self.venue,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            capacity: self.capacity,
            max_per_order: self.max_per_order.unwrap_or(DEFAULT_MAX_PER_ORDER),
            hold_seconds: self.hold_seconds.unwrap_or(DEFAULT_HOLD_SECONDS),
            status: match self.status {
                Some(NewStatus::Draft) => EventStatus::Draft,
                _ => EventStatus::Published,
            },
            ticket_types,
        }
    }
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    request: CommandRequest,
) -> Result<Response, Problem> {
    caller.require(&[Role::Organizer])?;
    let spec = request.body::<NewEvent>()?.into_spec();
    spec.validate_setting_dates(Timestamp::now())
        .map_err(Problem::invalid)?;
    let event_id = EventId::generate();
    let action = Action::CreateEvent(CreateEvent { event_id, spec });
    state.submit(&caller, request, action).await
}

pub async fn list(State(state): State<AppState>, paging: Paging) -> Result<Json<Value>, Problem> {
    let request = paging.request(&state.cursors, "events")?;
    let page = state.store.published_events(&request).await?;
    Ok(Json(views::page(
        &page,
        &state.cursors,
        "events",
        views::event,
    )))
}

pub async fn get(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    Path(event_id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let event_id: EventId = path_id(&event_id, "event")?;
    let snapshot = state
        .reads
        .event(state.store.as_ref(), event_id)
        .await?
        .ok_or_else(|| Problem::not_found("event"))?;
    if snapshot.event.spec.status == EventStatus::Draft
        && !may_manage(caller.as_ref(), &snapshot.event.organizer_id)
    {
        return Err(Problem::not_found("event"));
    }
    Ok(Json(json!(views::event(&snapshot))))
}

/// The body of `PATCH /v1/events/{id}`: the fields to change.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventPatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    venue: Option<String>,
    #[serde(default)]
    starts_at: Option<Timestamp>,
    #[serde(default)]
    ends_at: Option<Timestamp>,
    #[serde(default)]
    capacity: Option<u32>,
    #[serde(default)]
    max_per_order: Option<u32>,
    #[serde(default)]
    hold_seconds: Option<u32>,
}

/// The body of `PATCH /v1/events/{id}/ticket-types/{type_id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketTypePatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    price_minor: Option<u64>,
    #[serde(default)]
    quota: Option<u32>,
    #[serde(default)]
    closed: Option<bool>,
}

/// `PATCH /v1/events/{id}`: name, description, venue, times, capacity up
/// or down (never below what is sold or held), per-order limit, hold time.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
    request: CommandRequest,
) -> Result<Response, Problem> {
    caller.require(&[Role::Organizer])?;
    let event_id: EventId = path_id(&event_id, "event")?;
    let event = managed_event(&state, &caller, event_id).await?;
    let patch: EventPatch = request.body()?;
    let changes = EventChanges {
        name: patch.name,
        description: patch.description,
        venue: patch.venue,
        starts_at: patch.starts_at,
        ends_at: patch.ends_at,
        capacity: patch.capacity,
        max_per_order: patch.max_per_order,
        hold_seconds: patch.hold_seconds,
        ..EventChanges::default()
    };
    revise(&state, &caller, &event, request, changes).await
}

/// `POST /v1/events/{id}/ticket-types`: one more ticket type; 202 with its
/// `ticket_type_id`.
pub async fn add_ticket_type(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
    request: CommandRequest,
) -> Result<Response, Problem> {
    caller.require(&[Role::Organizer])?;
    let event_id: EventId = path_id(&event_id, "event")?;
    let event = managed_event(&state, &caller, event_id).await?;
    let new: NewTicketType = request.body()?;
    let changes = EventChanges {
        new_ticket_types: vec![TicketTypeSpec {
            ticket_type_id: TicketTypeId::generate(),
            name: new.name,
            price_minor: new.price_minor,
            currency: new.currency,
            quota: new.quota,
            closed: false,
        }],
        ..EventChanges::default()
    };
    revise(&state, &caller, &event, request, changes).await
}

/// `PATCH /v1/events/{id}/ticket-types/{type_id}`: rename, reprice, change
/// the quota (never below what is sold or held), close or reopen.
pub async fn update_ticket_type(
    State(state): State<AppState>,
    caller: Caller,
    Path((event_id, ticket_type_id)): Path<(String, String)>,
    request: CommandRequest,
) -> Result<Response, Problem> {
    caller.require(&[Role::Organizer])?;
    let event_id: EventId = path_id(&event_id, "event")?;
    let ticket_type_id: TicketTypeId = path_id(&ticket_type_id, "ticket type")?;
    let event = managed_event(&state, &caller, event_id).await?;
    let patch: TicketTypePatch = request.body()?;
    let changes = EventChanges {
        ticket_types: vec![TicketTypeChange {
            ticket_type_id,
            name: patch.name,
            price_minor: patch.price_minor,
            quota: patch.quota,
            closed: patch.closed,
        }],
        ..EventChanges::default()
    };
    revise(&state, &caller, &event, request, changes).await
}

/// Checks `changes` against the event as it is now (already found to be
/// the caller's) and submits them; the worker checks again against the
/// event as it is then.
async fn revise(
    state: &AppState,
    caller: &Caller,
    event: &EventRecord,
    request: CommandRequest,
    changes: EventChanges,
) -> Result<Response, Problem> {
    if event.spec.status == EventStatus::Cancelled {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            Reason::Conflict.as_str(),
            "a cancelled event does not change",
        ));
    }
    let next = changes
        .apply(&event.spec)
        .map_err(|_| Problem::not_found("ticket type"))?;
    let moved = next.starts_at != event.spec.starts_at || next.ends_at != event.spec.ends_at;
    if moved {
        next.validate_setting_dates(Timestamp::now())
    } else {
        next.validate()
    }
    .map_err(Problem::invalid)?;
    let action = Action::UpdateEvent(UpdateEvent {
        event_id: event.event_id,
        changes,
    });
    state.submit(caller, request, action).await
}

/// `POST /v1/events/{id}/publish`: a draft goes on sale.
pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
    request: CommandRequest,
) -> Result<Response, Problem> {
    change_status(&state, &caller, &event_id, request, EventStatus::Published).await
}

/// `POST /v1/events/{id}/cancel`: sales stop and its tickets are void.
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
    request: CommandRequest,
) -> Result<Response, Problem> {
    change_status(&state, &caller, &event_id, request, EventStatus::Cancelled).await
}

async fn change_status(
    state: &AppState,
    caller: &Caller,
    event_id: &str,
    request: CommandRequest,
    to: EventStatus,
) -> Result<Response, Problem> {
    caller.require(&[Role::Organizer])?;
    let event_id: EventId = path_id(event_id, "event")?;
    let event = managed_event(state, caller, event_id).await?;
    rules::status_change(event.spec.status, to).map_err(|reason| {
        Problem::new(
            StatusCode::CONFLICT,
            reason.as_str(),
            format!(
                "a {} event cannot become {}",
                event.spec.status.as_str(),
                to.as_str()
            ),
        )
    })?;
    let target = EventRef { event_id };
    let action = match to {
        EventStatus::Published => Action::PublishEvent(target),
        _ => Action::CancelEvent(target),
    };
    state.submit(caller, request, action).await
}

/// `GET /v1/events/{id}/verification-key`: the public keys that verify
/// this event's ticket codes, as a JWK Set, for doors that check offline.
pub async fn verification_key(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    Path(event_id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let event_id: EventId = path_id(&event_id, "event")?;
    let visible = state.store.event_record(event_id).await?.is_some_and(|e| {
        e.spec.status != EventStatus::Draft || may_manage(caller.as_ref(), &e.organizer_id)
    });
    if !visible {
        return Err(Problem::not_found("event"));
    }
    Ok(Json(state.codes.jwks()))
}

/// The event `caller` manages; anyone else is told it does not exist.
pub async fn managed_event(
    state: &AppState,
    caller: &Caller,
    event_id: EventId,
) -> Result<EventRecord, Problem> {
    state
        .store
        .event_record(event_id)
        .await?
        .filter(|e| may_manage(Some(caller), &e.organizer_id))
        .ok_or_else(|| Problem::not_found("event"))
}

/// Who may scan tickets at `event` and see their codes: its organizer, an
/// admin, or a `staff` token granted at this event.
pub fn may_scan(caller: &Caller, event: &EventRecord) -> bool {
    may_manage(Some(caller), &event.organizer_id)
        || (caller.has(Role::Staff) && event.staff.contains_key(&caller.user))
}

/// Organizers manage their own events; admins manage all.
pub fn may_manage(caller: Option<&Caller>, organizer: &eventsys_messages::UserId) -> bool {
    caller.is_some_and(|c| c.is_admin() || (c.has(Role::Organizer) && &c.user == organizer))
}
