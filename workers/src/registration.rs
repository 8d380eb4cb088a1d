//! The registration role: the life of events. Creating one checks the
//! organizer's description against the contract's limits once more (a
//! message may not have come through the API) and lays out its inventory;
//! granting and revoking door staff is per event; the waiting list, whose
//! first in line are offered the seats that come free.

use eventsys_messages::{
    CommandEnvelope, CommandError, CommandResult, CreateEvent, Event, EventId, EventRef,
    EventStatus, FieldError, JoinWaitlist, Reason, StaffMember, Timestamp, UpdateEvent,
    event::{EventChanged, WaitlistMoved, WaitlistOffered},
    rules,
};
use eventsys_store::{
    Completion, EventRecord, Finished, Joined, Revised, Revision, StatusChange, WaitEntry,
    WaitStatus,
};

use crate::{
    Deps, WorkError,
    lifecycle::{Executed, Outcome, end_without_effect},
};

pub(crate) async fn create_event(
    deps: &Deps,
    command: &CommandEnvelope,
    create: &CreateEvent,
) -> Result<Executed, WorkError> {
    let id = command.command_id();
    if let Err(errors) = create.spec.validate() {
        let reason = CommandError::new(Reason::ValidationFailed, describe(&errors));
        return end_without_effect(deps, Completion::rejected(id, reason)).await;
    }
    let now = Timestamp::now();
    let event = EventRecord {
        event_id: create.event_id,
        organizer_id: command.issuer.clone(),
        spec: create.spec.clone(),
        staff: Default::default(),
        created_at: now,
        updated_at: now,
    };
    let created = CommandResult {
        event_id: Some(create.event_id),
        ..CommandResult::default()
    };
    let done = Completion::succeeded(id, created);
    Ok(match deps.store.create_event(&event, &done).await? {
        Finished::Now => Executed::now(Outcome {
            completion: done,
            events: Vec::new(),
        }),
        Finished::Already => Executed::Already,
    })
}

/// Changes an event's description, capacity and ticket types, as its
/// organizer asked; seats sold or held are never taken away.
pub(crate) async fn update_event(
    deps: &Deps,
    command: &CommandEnvelope,
    update: &UpdateEvent,
) -> Result<Executed, WorkError> {
    let id = command.command_id();
    let refuse = |reason: Reason, message: String| {
        end_without_effect(
            deps,
            Completion::rejected(id, CommandError::new(reason, message)),
        )
    };
    let Some(before) = deps.store.event_record(update.event_id).await? else {
        return refuse(Reason::NotFound, "the event does not exist".into()).await;
    };
    if before.spec.status == EventStatus::Cancelled {
        return refuse(Reason::Conflict, "a cancelled event does not change".into()).await;
    }
    let spec = match update.changes.apply(&before.spec) {
        Ok(spec) => spec,
        Err(error) => {
            let message = format!("{} {}", error.field, error.message);
            return refuse(Reason::ValidationFailed, message).await;
        }
    };
    if let Err(errors) = spec.validate() {
        return refuse(Reason::ValidationFailed, describe(&errors)).await;
    }
    let revision = Revision::between(&before.spec, &spec);
    let event = EventRecord {
        spec,
        updated_at: Timestamp::now(),
        ..before.clone()
    };
    let changed = CommandResult {
        event_id: Some(update.event_id),
        ..CommandResult::default()
    };
    let done = Completion::succeeded(id, changed);
    let target = EventRef {
        event_id: update.event_id,
    };
    match deps
        .store
        .revise_event(&event, before.updated_at, &revision, &done)
        .await?
    {
        Revised::Changed => {
            let mut events = recall_status(deps, &target).await?;
            // Seats added go to those waiting first.
            events.extend(offer_waiting(deps, update.event_id).await?);
            if update.changes.concerns_holders(&before.spec) {
                events.push(changed_fact(&event, done.at));
            }
            Ok(Executed::now(Outcome {
                completion: done,
                events,
            }))
        }
        Revised::Already => Ok(Executed::Already),
        Revised::NotFound => refuse(Reason::NotFound, "the event does not exist".into()).await,
        // Someone changed it meanwhile: apply these changes to that.
        Revised::Stale => Err(WorkError::Changing(format!(
            "event {} changed while being revised",
            update.event_id
        ))),
        Revised::TooFew => {
            let message = "a decrease asks for more seats than are unsold".to_owned();
            refuse(Reason::Conflict, message).await
        }
    }
}

/// Puts the issuer on the event's waiting list, then offers whatever seats
/// are free to those waiting.
pub(crate) async fn join_waitlist(
    deps: &Deps,
    command: &CommandEnvelope,
    join: &JoinWaitlist,
) -> Result<Executed, WorkError> {
    let id = command.command_id();
    let refuse = |reason: Reason, message: &str| {
        end_without_effect(
            deps,
            Completion::rejected(id, CommandError::new(reason, message)),
        )
    };
    let Some(event) = deps.store.event_record(join.event_id).await? else {
        return refuse(Reason::NotFound, "the event does not exist").await;
    };
    if let Err(reason) = rules::on_sale(&event.spec) {
        return refuse(reason, "the event is not on sale").await;
    }
    let wanted = join.ticket_type_id.to_string();
    if let Err(error) = rules::ticket_type(&event.spec, Some(&wanted)) {
        let message = format!("{} {}", error.field, error.message);
        return refuse(Reason::ValidationFailed, &message).await;
    }
    let entry = WaitEntry {
        event_id: join.event_id,
        user_id: command.issuer.clone(),
        ticket_type_id: join.ticket_type_id,
        // The command's own time: the same however often it is delivered.
        joined_at: command.occurred_at,
        status: WaitStatus::Waiting,
        offer: None,
    };
    let joined = CommandResult {
        event_id: Some(join.event_id),
        ..CommandResult::default()
    };
    let done = Completion::succeeded(id, joined);
    match deps.store.join_waitlist(&entry, &done).await? {
        Joined::Joined => Ok(Executed::now(Outcome {
            completion: done,
            events: offer_waiting(deps, join.event_id).await?,
        })),
        Joined::Already => Ok(Executed::Already),
        Joined::Waiting => refuse(Reason::Conflict, "already on the waiting list").await,
    }
}

/// Offers free seats of the event to those waiting, first in line first,
/// each a hold of its own; what it offered, and the event's availability.
/// Safe to run any number of times: an offer is made once per entry.
pub(crate) async fn offer_waiting(deps: &Deps, event_id: EventId) -> Result<Vec<Event>, WorkError> {
    let Some(event) = deps.store.event_record(event_id).await? else {
        return Ok(Vec::new());
    };
    let hold = std::time::Duration::from_secs(u64::from(event.spec.hold_seconds));
    let mut facts = Vec::new();
    while let Some(offer) = deps
        .store
        .offer_next(event_id, hold, Timestamp::now())
        .await?
    {
        facts.push(Event::WaitlistOffered(WaitlistOffered {
            order_id: offer.order_id,
            event_id,
            user_id: offer.buyer_id.clone(),
            expires_at: offer.expires_at.unwrap_or(offer.created_at),
        }));
    }
    if !facts.is_empty() {
        let offered = u32::try_from(facts.len()).unwrap_or(u32::MAX);
        facts.push(Event::WaitlistMoved(WaitlistMoved { event_id, offered }));
        facts.extend(recall_status(deps, &EventRef { event_id }).await?);
    }
    Ok(facts)
}

/// Publishes or cancels an event, as its status allows.
pub(crate) async fn change_status(
    deps: &Deps,
    command: &CommandEnvelope,
    event: &EventRef,
    to: EventStatus,
) -> Result<Executed, WorkError> {
    let id = command.command_id();
    let changed = CommandResult {
        event_id: Some(event.event_id),
        ..CommandResult::default()
    };
    let done = Completion::succeeded(id, changed);
    let refusal = match deps
        .store
        .change_event_status(event.event_id, to, &done)
        .await?
    {
        StatusChange::Changed => {
            let mut events = recall_status(deps, event).await?;
            if to == EventStatus::Cancelled
                && let Some(record) = deps.store.event_record(event.event_id).await?
            {
                events.push(changed_fact(&record, done.at));
            }
            return Ok(Executed::now(Outcome {
                completion: done,
                events,
            }));
        }
        StatusChange::Already => return Ok(Executed::Already),
        StatusChange::NotFound => CommandError::new(Reason::NotFound, "the event does not exist"),
        StatusChange::Refused(now) => CommandError::new(
            Reason::Conflict,
            format!("a {} event cannot become {}", now.as_str(), to.as_str()),
        ),
    };
    end_without_effect(deps, Completion::rejected(id, refusal)).await
}

/// What every holder of `event`'s tickets is told of it as it now is.
fn changed_fact(event: &EventRecord, at: Timestamp) -> Event {
    let spec = &event.spec;
    let (kind, message) = if spec.status == EventStatus::Cancelled {
        (
            "event.cancelled",
            format!("{} is cancelled; your tickets are void.", spec.name),
        )
    } else {
        (
            "event.updated",
            format!(
                "{} changed: it now takes place at {}, from {} to {}.",
                spec.name, spec.venue, spec.starts_at, spec.ends_at
            ),
        )
    };
    Event::EventChanged(EventChanged {
        event_id: event.event_id,
        kind: kind.to_owned(),
        message,
        at,
    })
}

/// What a finished change of an event meant, to announce it again: its
/// availability, and when `holders` were told, what they were told.
pub(crate) async fn recall_change(
    deps: &Deps,
    event: &EventRef,
    record: &eventsys_store::CommandRecord,
    holders: bool,
) -> Result<Vec<Event>, WorkError> {
    let mut events = recall_status(deps, event).await?;
    if holders
        && record.status == eventsys_messages::CommandStatus::Succeeded
        && let Some(current) = deps.store.event_record(event.event_id).await?
    {
        events.push(changed_fact(&current, record.updated_at));
    }
    Ok(events)
}

/// The event's status and availability, for its subscribers.
pub(crate) async fn recall_status(deps: &Deps, event: &EventRef) -> Result<Vec<Event>, WorkError> {
    crate::ticketing::availability(deps, event.event_id).await
}

/// Grants (`granted`) or revokes door staff at one event.
pub(crate) async fn set_staff(
    deps: &Deps,
    command: &CommandEnvelope,
    member: &StaffMember,
    granted: bool,
) -> Result<Executed, WorkError> {
    let id = command.command_id();
    let changed = CommandResult {
        event_id: Some(member.event_id),
        ..CommandResult::default()
    };
    let done = Completion::succeeded(id, changed);
    let since = granted.then(Timestamp::now);
    match deps
        .store
        .set_staff(member.event_id, &member.user_id, since, &done)
        .await?
    {
        Some(Finished::Now) => Ok(Executed::now(Outcome {
            completion: done,
            events: Vec::new(),
        })),
        Some(Finished::Already) => Ok(Executed::Already),
        None => {
            let reason = CommandError::new(Reason::NotFound, "the event does not exist");
            end_without_effect(deps, Completion::rejected(id, reason)).await
        }
    }
}

fn describe(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{} {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}
