//! The registration role: the life of events. Creating one checks the
//! organizer's description against the contract's limits once more (a
//! message may not have come through the API) and lays out its inventory.

use async_trait::async_trait;
use eventsys_messages::{
    Action, CommandEnvelope, CommandError, CreateEvent, Event, FieldError, Timestamp,
};
use eventsys_store::{CommandRecord, Completion, EventRecord, Finished};
use serde_json::json;

use crate::{
    Deps, WorkError,
    lifecycle::{Execute, Executed, Outcome, end_without_effect},
};

pub(crate) struct Registration;

#[async_trait]
impl Execute for Registration {
    async fn execute(&self, deps: &Deps, command: &CommandEnvelope) -> Result<Executed, WorkError> {
        match &command.action {
            Action::CreateEvent(create) => create_event(deps, command, create).await,
            other => Err(WorkError::Poison(format!(
                "{} is not a registration command",
                other.kind()
            ))),
        }
    }

    async fn recall(
        &self,
        _: &Deps,
        _: &CommandEnvelope,
        _: &CommandRecord,
    ) -> Result<Vec<Event>, WorkError> {
        Ok(Vec::new())
    }
}

async fn create_event(
    deps: &Deps,
    command: &CommandEnvelope,
    create: &CreateEvent,
) -> Result<Executed, WorkError> {
    let id = command.command_id();
    if let Err(errors) = create.spec.validate() {
        let reason = CommandError::new("validation_failed", describe(&errors));
        return end_without_effect(deps, Completion::rejected(id, reason)).await;
    }
    let now = Timestamp::now();
    let event = EventRecord {
        event_id: create.event_id,
        organizer_id: command.issuer.clone(),
        spec: create.spec.clone(),
        created_at: now,
        updated_at: now,
    };
    let done = Completion::succeeded(id, json!({ "event_id": create.event_id }));
    Ok(match deps.store.create_event(&event, &done).await? {
        Finished::Now => Executed::Now(Outcome {
            completion: done,
            events: Vec::new(),
        }),
        Finished::Already => Executed::Already,
    })
}

fn describe(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{} {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}
