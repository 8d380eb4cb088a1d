//! `/v1/events`: creating, listing and reading events, their life
//! (publish, cancel), and who may act on them.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use eventsys_messages::{
    Action, CreateEvent, EventChanges, EventId, EventRef, EventSpec, EventStatus, Reason,
    TicketTypeChange, TicketTypeId, TicketTypeSpec, Timestamp, UpdateEvent, rules,
    spec::{DEFAULT_HOLD_SECONDS, DEFAULT_MAX_PER_ORDER},
};
use eventsys_store::EventRecord;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::{
    AppState,
    auth::{Caller, MaybeCaller, Role},
    input::{CommandHeaders, CommandRequest, Paging, path_id},
    problem::{
        BadCommand, BadJsonCommand, BadPage, EventCancelled, KeyReused, NoVisibleEvent,
        NotAnOrganizer, NotJson, NotTheirEvent, Problem, ProblemDocument, PublicReadProblems,
        WriteProblems,
    },
    submit::SubmitAnswers,
    views::{self, EventView, PageOf},
};

/// The body of `POST /v1/events`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "RustConf", "description": "Two days of talks.", "venue": "Hall 1", "starts_at": "2030-06-01T09:00:00Z", "ends_at": "2030-06-02T18:00:00Z", "capacity": 300, "ticket_types": [{"name": "Standard", "price_minor": 0, "currency": "EUR", "quota": 250}, {"name": "Supporter", "price_minor": 9900, "currency": "EUR", "quota": 50}], "max_per_order": 4, "hold_seconds": 900, "status": "draft"}))]
pub struct NewEvent {
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// Up to 5000 characters, several lines allowed.
    #[serde(default)]
    #[schema(max_length = 5000)]
    description: String,
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    venue: String,
    /// At most a day in the past.
    starts_at: Timestamp,
    /// After `starts_at`, in the future, within ten years.
    ends_at: Timestamp,
    /// Seats in all, 1 to 1000000.
    #[schema(minimum = 1, maximum = 1_000_000)]
    capacity: u32,
    /// 1 to 20 types with distinct names, each with a quota up to the
    /// capacity; left out, one free "General admission" type of the
    /// whole capacity.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 20)]
    ticket_types: Option<Vec<NewTicketType>>,
    /// Tickets one order may take, 1 to 50; left out, 10.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 50)]
    max_per_order: Option<u32>,
    /// How long an order of a paid type holds its seats, 1 to 86400 seconds;
    /// left out, 900.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 86_400)]
    hold_seconds: Option<u32>,
    /// Left out, `published`.
    #[serde(default)]
    status: Option<NewStatus>,
}

/// One ticket type of a new event, or one added to an event
/// (`POST /v1/events/{event_id}/ticket-types`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Student", "price_minor": 1500, "currency": "EUR", "quota": 40}))]
pub struct NewTicketType {
    /// 1 to 200 characters, unique within the event.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// The price in the currency's minor unit (cents), up to 10^11; 0 is free.
    #[schema(maximum = 100_000_000_000_i64)]
    price_minor: u64,
    /// ISO 4217, e.g. `EUR`.
    #[schema(pattern = "^[A-Z]{3}$")]
    currency: String,
    /// Seats of this type, 1 to the event's capacity.
    #[schema(minimum = 1, maximum = 1_000_000)]
    quota: u32,
}

/// Whether a new event goes on sale at once.
#[derive(Deserialize, ToSchema)]
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

/// Create an event
///
/// Needs the `organizer` role. The event is the caller's; its id is in
/// the answer (`event_id`).
#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "events",
    security(("bearer" = [])),
    params(CommandHeaders),
    request_body = NewEvent,
    responses(
        SubmitAnswers,
        BadJsonCommand,
        NotAnOrganizer,
        NotJson,
        (status = 422, description = "`validation_failed`: the event breaks a rule, each field named in `errors`; or `idempotency_key_reused`",
            body = ProblemDocument, content_type = "application/problem+json"),
        WriteProblems,
    ),
)]
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

/// List published events
///
/// Anyone may list them, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "events",
    security(()),
    params(Paging),
    responses(
        (status = 200, description = "A page of published events", body = PageOf<EventView<'static>>),
        BadPage,
        PublicReadProblems,
    ),
)]
pub async fn list(State(state): State<AppState>, paging: Paging) -> Result<Response, Problem> {
    let request = paging.request(&state.cursors, "events")?;
    let page = state.store.published_events(&request).await?;
    Ok(Json(views::page(&page, &state.cursors, "events", views::event)).into_response())
}

/// Read an event
///
/// A draft is shown to its organizer (and admins) only; to anyone else it
/// does not exist.
#[utoipa::path(
    get,
    path = "/v1/events/{event_id}",
    tag = "events",
    security((), ("bearer" = [])),
    params(("event_id" = EventId, Path, description = "The event")),
    responses(
        (status = 200, description = "The event and its availability", body = EventView<'static>),
        (status = 401, description = "`unauthorized`: a bearer token that is not valid",
            body = ProblemDocument, content_type = "application/problem+json"),
        NoVisibleEvent,
        PublicReadProblems,
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    Path(event_id): Path<String>,
) -> Result<Response, Problem> {
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
    Ok(Json(views::event(&snapshot)).into_response())
}

/// The body of `PATCH /v1/events/{id}`: the fields to change; each left
/// out (or null) stays as it is. The event as changed must keep the rules
/// of a new one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"venue": "Hall 2", "capacity": 350}))]
pub struct EventPatch {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 5000)]
    description: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    venue: Option<String>,
    #[serde(default)]
    starts_at: Option<Timestamp>,
    #[serde(default)]
    ends_at: Option<Timestamp>,
    /// Never below what is sold or held.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1_000_000)]
    capacity: Option<u32>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 50)]
    max_per_order: Option<u32>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 86_400)]
    hold_seconds: Option<u32>,
}

/// The body of `PATCH /v1/events/{id}/ticket-types/{type_id}`: the fields
/// to change; each left out (or null) stays as it is.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"price_minor": 1200, "quota": 60}))]
pub struct TicketTypePatch {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    #[serde(default)]
    #[schema(maximum = 100_000_000_000_i64)]
    price_minor: Option<u64>,
    /// Never below what is sold or held.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1_000_000)]
    quota: Option<u32>,
    /// Closed, it is no longer on sale; what was sold stays.
    #[serde(default)]
    closed: Option<bool>,
}

/// Change an event
///
/// `PATCH /v1/events/{id}`: name, description, venue, times, capacity up
/// or down (never below what is sold or held), per-order limit, hold time.
/// Its organizer (or an admin) only.
#[utoipa::path(
    patch,
    path = "/v1/events/{event_id}",
    tag = "events",
    security(("bearer" = [])),
    params(("event_id" = EventId, Path, description = "The event"), CommandHeaders),
    request_body(content(
        (EventPatch = "application/json"),
        (EventPatch = "application/merge-patch+json"),
    )),
    responses(
        SubmitAnswers,
        BadJsonCommand,
        NotAnOrganizer,
        NotTheirEvent,
        EventCancelled,
        NotJson,
        (status = 422, description = "`validation_failed`: the event as changed breaks a rule, each field named in `errors`; or `idempotency_key_reused`",
            body = ProblemDocument, content_type = "application/problem+json"),
        WriteProblems,
    ),
)]
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

/// Add a ticket type
///
/// `POST /v1/events/{id}/ticket-types`: one more ticket type; 202 with its
/// `ticket_type_id`. Its organizer (or an admin) only.
#[utoipa::path(
    post,
    path = "/v1/events/{event_id}/ticket-types",
    tag = "events",
    security(("bearer" = [])),
    params(("event_id" = EventId, Path, description = "The event"), CommandHeaders),
    request_body = NewTicketType,
    responses(
        SubmitAnswers,
        BadJsonCommand,
        NotAnOrganizer,
        NotTheirEvent,
        EventCancelled,
        NotJson,
        (status = 422, description = "`validation_failed`: the event with this type breaks a rule, each field named in `errors`; or `idempotency_key_reused`",
            body = ProblemDocument, content_type = "application/problem+json"),
        WriteProblems,
    ),
)]
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

/// Change a ticket type
///
/// `PATCH /v1/events/{id}/ticket-types/{type_id}`: rename, reprice, change
/// the quota (never below what is sold or held), close or reopen. Its
/// event's organizer (or an admin) only.
#[utoipa::path(
    patch,
    path = "/v1/events/{event_id}/ticket-types/{ticket_type_id}",
    tag = "events",
    security(("bearer" = [])),
    params(
        ("event_id" = EventId, Path, description = "The event"),
        ("ticket_type_id" = TicketTypeId, Path, description = "One of its ticket types"),
        CommandHeaders,
    ),
    request_body(content(
        (TicketTypePatch = "application/json"),
        (TicketTypePatch = "application/merge-patch+json"),
    )),
    responses(
        SubmitAnswers,
        BadJsonCommand,
        NotAnOrganizer,
        (status = 404, description = "`not_found`: no such event of the caller's, or no such ticket type of it",
            body = ProblemDocument, content_type = "application/problem+json"),
        EventCancelled,
        NotJson,
        (status = 422, description = "`validation_failed`: the event as changed breaks a rule, each field named in `errors`; or `idempotency_key_reused`",
            body = ProblemDocument, content_type = "application/problem+json"),
        WriteProblems,
    ),
)]
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

/// Publish a draft
///
/// `POST /v1/events/{id}/publish`: a draft goes on sale. Its organizer
/// (or an admin) only.
#[utoipa::path(
    post,
    path = "/v1/events/{event_id}/publish",
    tag = "events",
    security(("bearer" = [])),
    params(("event_id" = EventId, Path, description = "The event"), CommandHeaders),
    responses(
        SubmitAnswers,
        BadCommand,
        NotAnOrganizer,
        NotTheirEvent,
        (status = 409, description = "`conflict`: only a draft is published",
            body = ProblemDocument, content_type = "application/problem+json"),
        KeyReused,
        WriteProblems,
    ),
)]
pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
    request: CommandRequest,
) -> Result<Response, Problem> {
    change_status(&state, &caller, &event_id, request, EventStatus::Published).await
}

/// Cancel an event
///
/// `POST /v1/events/{id}/cancel`: sales stop and its tickets are void.
/// Its organizer (or an admin) only.
#[utoipa::path(
    post,
    path = "/v1/events/{event_id}/cancel",
    tag = "events",
    security(("bearer" = [])),
    params(("event_id" = EventId, Path, description = "The event"), CommandHeaders),
    responses(
        SubmitAnswers,
        BadCommand,
        NotAnOrganizer,
        NotTheirEvent,
        (status = 409, description = "`conflict`: the event is already cancelled, or has ended",
            body = ProblemDocument, content_type = "application/problem+json"),
        KeyReused,
        WriteProblems,
    ),
)]
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

/// The keys that verify ticket codes
///
/// `GET /v1/events/{id}/verification-key`: the public keys that verify
/// this event's ticket codes, as a JWK Set, for doors that check offline.
#[utoipa::path(
    get,
    path = "/v1/events/{event_id}/verification-key",
    tag = "events",
    security((), ("bearer" = [])),
    params(("event_id" = EventId, Path, description = "The event")),
    responses(
        (status = 200, description = "A JWK Set (RFC 7517, RFC 8037): the signing key first, then retired ones",
            body = JwkSet),
        (status = 401, description = "`unauthorized`: a bearer token that is not valid",
            body = ProblemDocument, content_type = "application/problem+json"),
        NoVisibleEvent,
        PublicReadProblems,
    ),
)]
pub async fn verification_key(
    State(state): State<AppState>,
    MaybeCaller(caller): MaybeCaller,
    Path(event_id): Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    let event_id: EventId = path_id(&event_id, "event")?;
    let visible = state.store.event_record(event_id).await?.is_some_and(|e| {
        e.spec.status != EventStatus::Draft || may_manage(caller.as_ref(), &e.organizer_id)
    });
    if !visible {
        return Err(Problem::not_found("event"));
    }
    Ok(Json(state.codes.jwks()))
}

/// A JWK Set, as `TicketCodes::jwks` writes it; this type only describes it.
#[derive(ToSchema)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

/// An Ed25519 public key that verifies ticket codes.
#[derive(ToSchema)]
pub struct Jwk {
    /// `OKP`.
    #[schema(pattern = "^OKP$")]
    pub kty: String,
    /// `Ed25519`.
    #[schema(pattern = "^Ed25519$")]
    pub crv: String,
    /// `EdDSA`.
    #[schema(pattern = "^EdDSA$")]
    pub alg: String,
    /// `sig`.
    #[schema(rename = "use", pattern = "^sig$")]
    pub usage: String,
    /// The key's id, as the `kid` of the codes it signed.
    pub kid: String,
    /// The public key, base64url without padding.
    pub x: String,
    /// The same as `x`.
    pub public_key: String,
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
