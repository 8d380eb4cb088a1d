//! The life of one command inside a worker, the same for every role:
//!
//! 1. it must have been recorded by the API, exactly as delivered: anything
//!    else is a forgery or garbage and is dead-lettered without effect;
//! 2. it moves from `accepted` to `processing` (announced once);
//! 3. its rule carries it out, writing effect and terminal status in one
//!    conditional store write;
//! 4. the outcome is announced on `eventsys.events`.
//!
//! If the command had already finished (a redelivery, a republication), step
//! 3 writes nothing and step 4 announces the recorded outcome again, so a
//! crash between writing and announcing loses no announcement.
//!
//! [`act`] is the one place that knows which rule carries out which command
//! and what its outcome means to everyone else when it is announced again.

use eventsys_bus::{Exchange, Message};
use eventsys_messages::{
    Action, CommandEnvelope, CommandError, CommandId, CommandStatus, Event, EventEnvelope, Reason,
    Timestamp, UserId, event::CommandUpdated, failpoint, trace,
};
use eventsys_store::{CommandRecord, Completion, Finished};

use crate::{Deps, WorkError, notification, registration, ticketing};

/// One delivery as the rules see it: the message as it arrived, and how
/// often it arrived before.
#[derive(Clone, Copy)]
pub struct Work<'a> {
    pub message: &'a Message,
    pub previous_deliveries: u32,
}

impl Work<'_> {
    pub fn traceparent(&self) -> Option<&str> {
        self.message.traceparent.as_deref()
    }
}

/// A command carried out now: how it ended and what to announce.
pub(crate) struct Outcome {
    pub completion: Completion,
    pub events: Vec<Event>,
}

pub(crate) enum Executed {
    Now(Box<Outcome>),
    /// The store found the command finished before; nothing was written.
    Already,
}

impl Executed {
    pub(crate) fn now(outcome: Outcome) -> Self {
        Self::Now(Box::new(outcome))
    }
}

/// What [`act`] is asked to do.
enum Step<'a> {
    CarryOut,
    /// Say again what the finished command `record` meant.
    Recall(&'a CommandRecord),
}

async fn act(
    deps: &Deps,
    command: &CommandEnvelope,
    step: Step<'_>,
) -> Result<Executed, WorkError> {
    use Action::{CheckIn, CreateEvent, MarkNotificationRead, PlaceOrder};
    match (&command.action, step) {
        (CreateEvent(create), Step::CarryOut) => {
            registration::create_event(deps, command, create).await
        }
        (PlaceOrder(order), Step::CarryOut) => ticketing::place_order(deps, command, order).await,
        (PlaceOrder(order), Step::Recall(record)) => Ok(said_again(
            record,
            ticketing::recall_order(deps, order).await?,
        )),
        (CheckIn(scan), Step::CarryOut) => ticketing::admit(deps, command, scan).await,
        (CheckIn(scan), Step::Recall(record)) => Ok(said_again(
            record,
            ticketing::recall_check_in(deps, scan, record).await?,
        )),
        (MarkNotificationRead(read), Step::CarryOut) => {
            notification::mark_read(deps, command, read).await
        }
        // Their outcome is the command update alone.
        (CreateEvent(_) | MarkNotificationRead(_), Step::Recall(record)) => {
            Ok(said_again(record, Vec::new()))
        }
    }
}

/// A finished command's outcome, as it was recorded, with its facts.
fn said_again(record: &CommandRecord, events: Vec<Event>) -> Executed {
    Executed::now(Outcome {
        completion: Completion::from(record),
        events,
    })
}

pub(crate) async fn carry_out(
    deps: &Deps,
    work: Work<'_>,
    command: &CommandEnvelope,
) -> Result<(), WorkError> {
    let id = command.command_id();
    let Some((record, started)) = deps.store.begin_processing(id, Timestamp::now()).await? else {
        return Err(WorkError::Poison(format!(
            "command {id} was never recorded"
        )));
    };
    if !record.is_recorded_as(&work.message.body) {
        return Err(WorkError::Poison(format!(
            "message differs from the record of command {id}"
        )));
    }
    let executed = if record.status.is_terminal() {
        tracing::info!(command = %id, status = record.status.as_str(), "already finished; announcing again");
        act(deps, command, Step::Recall(&record)).await?
    } else {
        if started {
            let processing = CommandUpdated {
                command_id: id,
                user_id: record.issuer.clone(),
                status: CommandStatus::Processing,
                result: None,
                error: None,
            };
            announce(deps, work, id, vec![Event::CommandUpdated(processing)]).await?;
        }
        match act(deps, command, Step::CarryOut).await {
            Ok(Executed::Now(outcome)) => {
                failpoint::hit(failpoint::AFTER_COMMIT);
                tracing::info!(command = %id, kind = command.action.kind(), status = outcome.completion.status.as_str(), "carried out");
                Executed::Now(outcome)
            }
            Ok(Executed::Already) => {
                let record = deps
                    .store
                    .command(id)
                    .await?
                    .ok_or_else(|| WorkError::Changing(format!("command {id} vanished")))?;
                act(deps, command, Step::Recall(&record)).await?
            }
            // The command as recorded cannot be carried out by this build.
            Err(err) if !err.is_transient() => {
                return Err(WorkError::Failed {
                    command: id,
                    issuer: command.issuer.clone(),
                    reason: CommandError::new(Reason::InternalError, err.to_string()),
                });
            }
            Err(err) => return Err(err),
        }
    };
    match executed {
        Executed::Now(outcome) => {
            let mut events = outcome.events;
            events.push(updated(&command.issuer, &outcome.completion));
            announce(deps, work, id, events).await
        }
        Executed::Already => Ok(()),
    }
}

/// Marks a command `failed` (if it is not finished yet) and says so.
pub(crate) async fn fail(
    deps: &Deps,
    work: Work<'_>,
    command: CommandId,
    issuer: &UserId,
    reason: CommandError,
) -> Result<(), WorkError> {
    let done = Completion::failed(command, reason);
    match deps.store.finish_command(&done).await? {
        Finished::Now => announce(deps, work, command, vec![updated(issuer, &done)]).await,
        Finished::Already => Ok(()),
    }
}

fn updated(issuer: &UserId, done: &Completion) -> Event {
    Event::CommandUpdated(done.state(issuer))
}

/// Publishes facts caused by `cause`; their message ids derive from it, so
/// announcing twice publishes the same messages twice.
async fn announce(
    deps: &Deps,
    work: Work<'_>,
    cause: CommandId,
    events: Vec<Event>,
) -> Result<(), WorkError> {
    for event in events {
        let envelope = EventEnvelope::caused_by(cause, event);
        let message = Message::event(&envelope, Some(trace::child_of(work.traceparent())));
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
        Finished::Now => Executed::now(Outcome {
            completion: done,
            events: Vec::new(),
        }),
        Finished::Already => Executed::Already,
    })
}
