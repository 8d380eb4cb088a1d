//! The registration role: the life of events. Creating one checks the
//! organizer's description against the contract's limits once more (a
//! message may not have come through the API) and lays out its inventory;
//! granting and revoking door staff is per event.

use eventsys_messages::{
    CommandEnvelope, CommandError, CommandResult, CreateEvent, Event, EventRef, EventStatus,
    FieldError, Reason, StaffMember, Timestamp, event::EventUpdated,
};
use eventsys_store::{Completion, EventRecord, Finished, StatusChange};

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
            return Ok(Executed::now(Outcome {
                completion: done,
                events: recall_status(deps, event).await?,
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

/// The event's status and availability, for its subscribers.
pub(crate) async fn recall_status(deps: &Deps, event: &EventRef) -> Result<Vec<Event>, WorkError> {
    Ok(deps
        .store
        .event(event.event_id)
        .await?
        .map(|s| {
            Event::EventUpdated(EventUpdated {
                event_id: event.event_id,
                remaining: s.inventory.remaining,
                status: s.event.spec.status,
            })
        })
        .into_iter()
        .collect())
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
