//! The registration role: the life of events. Creating one checks the
//! organizer's description against the contract's limits once more (a
//! message may not have come through the API) and lays out its inventory;
//! granting and revoking door staff is per event.

use eventsys_messages::{
    CommandEnvelope, CommandError, CommandResult, CreateEvent, Event, EventRef, EventStatus,
    FieldError, Reason, StaffMember, Timestamp, UpdateEvent, event::EventChanged,
};
use eventsys_store::{Completion, EventRecord, Finished, Revised, Revision, StatusChange};

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
