//! The life of one command inside a worker, the same for every role:
//!
//! 1. it must have been recorded by the API, exactly as delivered: anything
//!    else is a forgery or garbage and is dead-lettered without effect;
//! 2. it moves from `accepted` to `processing` (announced once);
//! 3. the role carries it out, writing effect and terminal status in one
//!    conditional store write;
//! 4. the outcome is announced on `eventsys.events`.
//!
//! If the command had already finished (a redelivery, a republication), step
//! 3 writes nothing and step 4 announces the recorded outcome again, so a
//! crash between writing and announcing loses no announcement.

use async_trait::async_trait;
use eventsys_bus::{Exchange, Message};
use eventsys_messages::{
    CommandEnvelope, CommandError, CommandId, CommandStatus, Event, EventEnvelope, Timestamp,
    UserId, event::CommandUpdated, failpoint, trace,
};
use eventsys_store::{CommandRecord, Completion, Finished};

use crate::{Deps, WorkError};

/// A command carried out now: how it ended and what to announce.
pub(crate) struct Outcome {
    pub completion: Completion,
    pub events: Vec<Event>,
}

pub(crate) enum Executed {
    Now(Outcome),
    /// The store found the command finished before; nothing was written.
    Already,
}

/// One role's way of carrying out its commands.
#[async_trait]
pub(crate) trait Execute: Send + Sync {
    async fn execute(&self, deps: &Deps, command: &CommandEnvelope) -> Result<Executed, WorkError>;

    /// What to announce again for a command that finished before.
    async fn recall(
        &self,
        deps: &Deps,
        command: &CommandEnvelope,
        record: &CommandRecord,
    ) -> Result<Vec<Event>, WorkError>;
}

pub(crate) async fn carry_out(
    deps: &Deps,
    role: &dyn Execute,
    command: &CommandEnvelope,
    traceparent: Option<&str>,
) -> Result<(), WorkError> {
    let id = command.command_id();
    let Some((record, started)) = deps.store.begin_processing(id, Timestamp::now()).await? else {
        return Err(WorkError::Poison(format!(
            "command {id} was never recorded"
        )));
    };
    let recorded: CommandEnvelope = serde_json::from_str(&record.message)
        .map_err(|e| WorkError::Poison(format!("record of command {id} does not decode: {e}")))?;
    if &recorded != command {
        return Err(WorkError::Poison(format!(
            "message differs from the record of command {id}"
        )));
    }
    if record.status.is_terminal() {
        tracing::info!(command = %id, status = record.status.as_str(), "already finished; announcing again");
        return recall(deps, role, command, &record, traceparent).await;
    }
    if started {
        let processing = CommandUpdated {
            command_id: id,
            user_id: record.issuer.clone(),
            status: CommandStatus::Processing,
            result: None,
            error: None,
        };
        announce(
            deps,
            id,
            vec![Event::CommandUpdated(processing)],
            traceparent,
        )
        .await?;
    }
    match role.execute(deps, command).await {
        Ok(Executed::Now(outcome)) => {
            failpoint::hit(failpoint::AFTER_COMMIT);
            tracing::info!(command = %id, kind = command.action.kind(), status = outcome.completion.status.as_str(), "carried out");
            let mut events = outcome.events;
            events.push(updated(&command.issuer, &outcome.completion));
            announce(deps, id, events, traceparent).await
        }
        Ok(Executed::Already) => {
            let record = deps
                .store
                .command(id)
                .await?
                .ok_or_else(|| WorkError::Transient(format!("command {id} vanished")))?;
            recall(deps, role, command, &record, traceparent).await
        }
        // The command as recorded cannot be carried out by this build.
        Err(WorkError::Poison(reason)) => Err(WorkError::Failed {
            command: id,
            issuer: command.issuer.clone(),
            reason: CommandError::new("internal_error", reason),
        }),
        Err(err) => Err(err),
    }
}

async fn recall(
    deps: &Deps,
    role: &dyn Execute,
    command: &CommandEnvelope,
    record: &CommandRecord,
    traceparent: Option<&str>,
) -> Result<(), WorkError> {
    let mut events = role.recall(deps, command, record).await?;
    events.push(Event::CommandUpdated(CommandUpdated {
        command_id: record.command_id,
        user_id: record.issuer.clone(),
        status: record.status,
        result: record.result.clone(),
        error: record.error.clone(),
    }));
    announce(deps, record.command_id, events, traceparent).await
}

/// Marks a command `failed` (if it is not finished yet) and says so.
pub(crate) async fn fail(
    deps: &Deps,
    command: CommandId,
    issuer: &UserId,
    reason: CommandError,
    traceparent: Option<&str>,
) -> Result<(), WorkError> {
    let done = Completion::failed(command, reason);
    match deps.store.finish_command(&done).await? {
        Finished::Now => announce(deps, command, vec![updated(issuer, &done)], traceparent).await,
        Finished::Already => Ok(()),
    }
}

fn updated(issuer: &UserId, done: &Completion) -> Event {
    Event::CommandUpdated(CommandUpdated {
        command_id: done.command_id,
        user_id: issuer.clone(),
        status: done.status,
        result: done.result.clone(),
        error: done.error.clone(),
    })
}

/// Publishes facts caused by `cause`; their message ids derive from it, so
/// announcing twice publishes the same messages twice.
pub(crate) async fn announce(
    deps: &Deps,
    cause: CommandId,
    events: Vec<Event>,
    traceparent: Option<&str>,
) -> Result<(), WorkError> {
    for event in events {
        let envelope = EventEnvelope::caused_by(cause, event);
        let message = Message::event(&envelope, Some(trace::child_of(traceparent)));
        deps.bus.publish(Exchange::Events, &message).await?;
    }
    Ok(())
}

/// Ends a command without any effect (a rejection decided before writing).
pub(crate) async fn end_without_effect(
    deps: &Deps,
    done: Completion,
) -> Result<Executed, WorkError> {
    Ok(match deps.store.finish_command(&done).await? {
        Finished::Now => Executed::Now(Outcome {
            completion: done,
            events: Vec::new(),
        }),
        Finished::Already => Executed::Already,
    })
}
