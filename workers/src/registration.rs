//! The registration role: the life of events. Creating one checks the
//! organizer's description against the contract's limits once more (a
//! message may not have come through the API) and lays out its inventory;
//! granting and revoking door staff is per event.

use eventsys_messages::{
    CommandEnvelope, CommandError, CommandResult, CreateEvent, FieldError, Reason, StaffMember,
    Timestamp,
};
use eventsys_store::{Completion, EventRecord, Finished};

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
