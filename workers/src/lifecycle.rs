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
    Action, CommandEnvelope, CommandError, CommandId, CommandStatus, Event, EventEnvelope,
    EventStatus, Reason, Timestamp, UserId, event::CommandUpdated, failpoint,
};
use eventsys_store::{Begun, CommandRecord, Completion, Finished};
use eventsys_telemetry::metrics;

use crate::{Deps, WorkError, holds, notification, registration, ticketing};

/// One delivery as the rules see it: the message as it arrived, how often
/// it arrived before, and the trace context what it sends on carries
/// (decided once, where the delivery's span is made).
#[derive(Clone, Copy)]
pub struct Work<'a> {
    pub message: &'a Message,
    pub previous_deliveries: u32,
    pub traceparent: &'a str,
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
    use Action::{
        CancelEvent, CancelOrder, CancelTicket, CheckIn, ConfirmOrder, CreateEvent, EndEvent,
        ExpireOrder, GrantStaff, JoinWaitlist, MarkNotificationRead, PlaceOrder, PublishEvent,
        Register, RevokeStaff, UpdateEvent,
    };
    match (&command.action, step) {
        (CreateEvent(create), Step::CarryOut) => {
            registration::create_event(deps, command, create).await
        }
        (PlaceOrder(order) | Register(order), Step::CarryOut) => {
            ticketing::place_order(deps, command, order).await
        }
        (PlaceOrder(order) | Register(order), Step::Recall(record)) => Ok(said_again(
            record,
            ticketing::recall_order(deps, order, record).await?,
        )),
        (ConfirmOrder(order), Step::CarryOut) => holds::confirm(deps, command, order).await,
        (ExpireOrder(order), Step::CarryOut) => holds::expire(deps, command, order).await,
        (CancelOrder(order), Step::CarryOut) => holds::cancel_order(deps, command, order).await,
        (CancelTicket(ticket), Step::CarryOut) => holds::cancel_ticket(deps, command, ticket).await,
        (
            ConfirmOrder(_) | ExpireOrder(_) | CancelOrder(_) | CancelTicket(_),
            Step::Recall(record),
        ) => Ok(said_again(
            record,
            holds::recall(deps, &command.action, record).await?,
        )),
        (CheckIn(scan), Step::CarryOut) => ticketing::admit(deps, command, scan).await,
        (CheckIn(scan), Step::Recall(record)) => Ok(said_again(
            record,
            ticketing::recall_check_in(deps, scan, record).await?,
        )),
        (MarkNotificationRead(read), Step::CarryOut) => {
            notification::mark_read(deps, command, read).await
        }
        (UpdateEvent(update), Step::CarryOut) => {
            registration::update_event(deps, command, update).await
        }
        (UpdateEvent(update), Step::Recall(record)) => {
            let changes = &update.changes;
            let told =
                changes.starts_at.is_some() || changes.ends_at.is_some() || changes.venue.is_some();
            let event = eventsys_messages::EventRef {
                event_id: update.event_id,
            };
            Ok(said_again(
                record,
                registration::recall_change(deps, &event, record, told).await?,
            ))
        }
        (PublishEvent(event), Step::CarryOut) => {
            registration::change_status(deps, command, event, EventStatus::Published).await
        }
        (CancelEvent(event), Step::CarryOut) => {
            registration::change_status(deps, command, event, EventStatus::Cancelled).await
        }
        (EndEvent(event), Step::CarryOut) => {
            registration::change_status(deps, command, event, EventStatus::Ended).await
        }
        (PublishEvent(event) | EndEvent(event), Step::Recall(record)) => Ok(said_again(
            record,
            registration::recall_status(deps, event).await?,
        )),
        (CancelEvent(event), Step::Recall(record)) => Ok(said_again(
            record,
            registration::recall_change(deps, event, record, true).await?,
        )),
        (JoinWaitlist(join), Step::CarryOut) => {
            registration::join_waitlist(deps, command, join).await
        }
        (JoinWaitlist(join), Step::Recall(record)) => Ok(said_again(
            record,
            registration::offer_waiting(deps, join.event_id).await?,
        )),
        (GrantStaff(member), Step::CarryOut) => {
            registration::set_staff(deps, command, member, true).await
        }
        (RevokeStaff(member), Step::CarryOut) => {
            registration::set_staff(deps, command, member, false).await
        }
        // Their outcome is the command update alone.
        (
            CreateEvent(_) | MarkNotificationRead(_) | GrantStaff(_) | RevokeStaff(_),
            Step::Recall(record),
        ) => Ok(said_again(record, Vec::new())),
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
    let begun = deps
        .store
        .begin_processing(id, &work.message.body, Timestamp::now())
        .await?;
    let (record, started) = match begun {
        Begun::Recorded { record, started } => (record, started),
        Begun::NotRecorded => {
            return Err(WorkError::Poison(format!(
                "command {id} was never recorded"
            )));
        }
        Begun::NotAsRecorded => {
            return Err(WorkError::Poison(format!(
                "message differs from the record of command {id}"
            )));
        }
    };
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
                let status = outcome.completion.status.as_str();
                tracing::info!(command = %id, kind = command.action.kind(), status, "carried out");
                metrics::command_finished(
                    command.action.kind(),
                    status,
                    since(record.submitted_at),
                );
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
        Finished::Now => {
            if let Ok(Some(record)) = deps.store.command(command).await {
                metrics::command_finished(
                    &record.kind,
                    done.status.as_str(),
                    since(record.submitted_at),
                );
            }
            announce(deps, work, command, vec![updated(issuer, &done)]).await
        }
        Finished::Already => Ok(()),
    }
}

/// How long ago `then` was; nothing if the clocks disagree.
fn since(then: Timestamp) -> std::time::Duration {
    std::time::Duration::try_from(Timestamp::now().duration_since(then)).unwrap_or_default()
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
        let message = Message::event(&envelope, Some(work.traceparent.to_owned()));
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

/// The lifecycle on the embedded store and queue, called directly: what
/// it writes, what it announces, and what it refuses.
#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use eventsys_bus::{Bus, Subscription};
    use eventsys_bus_embedded::EmbeddedBus;
    use eventsys_messages::{EventId, EventSpec, OrderId, PlaceOrder, TicketTypeId};
    use eventsys_store::{EventRecord, Store};
    use eventsys_store_embedded::EmbeddedStore;

    use super::*;

    struct Setup {
        deps: Deps,
        feed: Box<dyn Subscription>,
        dir: std::path::PathBuf,
    }

    impl Drop for Setup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    async fn setup() -> Setup {
        let dir = std::env::temp_dir()
            .join("eventsys-lifecycle")
            .join(uuid::Uuid::new_v4().simple().to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let store = EmbeddedStore::open(&dir.join("store.redb")).unwrap();
        let bus = EmbeddedBus::open(&dir.join("queue.redb")).unwrap();
        let feed = bus.broadcast(&["#"]).await.unwrap();
        Setup {
            deps: Deps::new(Arc::new(store), Arc::new(bus)),
            feed,
            dir,
        }
    }

    /// An event of `seats` seats, written as the registration rule would.
    async fn event(store: &dyn Store, seats: u32) -> (EventId, TicketTypeId) {
        let event_id = EventId::generate();
        let now = Timestamp::now();
        let record = EventRecord {
            event_id,
            organizer_id: UserId::parse("olga").unwrap(),
            spec: EventSpec::sample(seats, &[seats]),
            staff: Default::default(),
            created_at: now,
            updated_at: now,
        };
        let create = CommandEnvelope::new(
            UserId::parse("olga").unwrap(),
            Action::CreateEvent(eventsys_messages::CreateEvent {
                event_id,
                spec: record.spec.clone(),
            }),
        );
        let done = record_command(store, &create).await;
        store.create_event(&record, &done).await.unwrap();
        (event_id, record.spec.ticket_types[0].ticket_type_id)
    }

    /// Records `command` as the API does; returns how it would succeed.
    async fn record_command(store: &dyn Store, command: &CommandEnvelope) -> Completion {
        let record = CommandRecord::accepted(command);
        store.record_command(&record, None).await.unwrap();
        Completion::succeeded(command.command_id(), Default::default())
    }

    fn order(event_id: EventId, tt: TicketTypeId) -> CommandEnvelope {
        CommandEnvelope::new(
            UserId::parse("ann").unwrap(),
            Action::PlaceOrder(PlaceOrder {
                order_id: OrderId::generate(),
                event_id,
                ticket_type_id: tt,
                quantity: 2,
            }),
        )
    }

    fn work(message: &Message) -> Work<'_> {
        Work {
            message,
            previous_deliveries: 0,
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        }
    }

    /// The types and ids of what was announced since the last call.
    async fn announced(feed: &mut Box<dyn Subscription>) -> Vec<(String, uuid::Uuid)> {
        let mut seen = Vec::new();
        while let Ok(Some(delivery)) =
            tokio::time::timeout(Duration::from_millis(200), feed.next()).await
        {
            let envelope: EventEnvelope = serde_json::from_slice(&delivery.message.body).unwrap();
            let kind = match &envelope.event {
                Event::CommandUpdated(u) => format!("command.updated:{}", u.status.as_str()),
                other => other.kind().to_owned(),
            };
            seen.push((kind, envelope.message_id));
            delivery.ack().await.unwrap();
        }
        seen
    }

    #[tokio::test]
    async fn a_command_is_carried_out_once_and_announced_again_the_same() {
        let mut s = setup().await;
        let (event_id, tt) = event(&*s.deps.store, 5).await;
        let command = order(event_id, tt);
        record_command(&*s.deps.store, &command).await;
        let message = Message::command(&command, None);

        carry_out(&s.deps, work(&message), &command).await.unwrap();
        let first = announced(&mut s.feed).await;
        let kinds: Vec<&str> = first.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "command.updated:processing",
                "ticket.sold",
                "event.updated",
                "command.updated:succeeded"
            ]
        );
        let record = s.deps.store.command(command.command_id()).await.unwrap();
        assert_eq!(record.unwrap().status, CommandStatus::Succeeded);

        // Delivered again: nothing written, the same outcome said again.
        carry_out(&s.deps, work(&message), &command).await.unwrap();
        let again = announced(&mut s.feed).await;
        let remaining = s.deps.store.event(event_id).await.unwrap().unwrap();
        assert_eq!(remaining.inventory.remaining, 3, "two seats, taken once");
        let ids = |seen: &[(String, uuid::Uuid)]| -> Vec<uuid::Uuid> {
            seen.iter()
                .filter(|(k, _)| k == "ticket.sold" || k.ends_with(":succeeded"))
                .map(|(_, id)| *id)
                .collect()
        };
        assert_eq!(ids(&again), ids(&first));
    }

    #[tokio::test]
    async fn a_message_not_as_recorded_is_poison_and_changes_nothing() {
        let mut s = setup().await;
        let (event_id, tt) = event(&*s.deps.store, 5).await;
        let command = order(event_id, tt);
        record_command(&*s.deps.store, &command).await;
        // Same id, another quantity: a forgery.
        let mut forged = command.clone();
        if let Action::PlaceOrder(p) = &mut forged.action {
            p.quantity = 5;
        }
        let message = Message::command(&forged, None);
        let err = carry_out(&s.deps, work(&message), &forged)
            .await
            .unwrap_err();
        assert!(matches!(err, WorkError::Poison(_)), "{err}");
        // Never recorded at all.
        let stranger = order(event_id, tt);
        let message = Message::command(&stranger, None);
        let err = carry_out(&s.deps, work(&message), &stranger)
            .await
            .unwrap_err();
        assert!(matches!(err, WorkError::Poison(_)), "{err}");
        let counters = s.deps.store.event(event_id).await.unwrap().unwrap();
        assert_eq!(counters.inventory.remaining, 5);
        let kinds: Vec<String> = announced(&mut s.feed)
            .await
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert!(kinds.is_empty(), "{kinds:?}");
        let untouched = s.deps.store.command(command.command_id()).await.unwrap();
        assert_eq!(
            untouched.map(|r| r.status),
            Some(CommandStatus::Accepted),
            "a forgery does not start the command it names"
        );
    }

    #[tokio::test]
    async fn a_sold_out_order_is_rejected_and_said_so_once_per_delivery() {
        let mut s = setup().await;
        let (event_id, tt) = event(&*s.deps.store, 1).await;
        let command = order(event_id, tt);
        record_command(&*s.deps.store, &command).await;
        let message = Message::command(&command, None);
        carry_out(&s.deps, work(&message), &command).await.unwrap();
        let record = s
            .deps
            .store
            .command(command.command_id())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.status, CommandStatus::Rejected);
        assert_eq!(record.error.map(|e| e.code), Some(Reason::SoldOut));
        let kinds: Vec<String> = announced(&mut s.feed)
            .await
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            kinds,
            [
                "command.updated:processing",
                "order.rejected",
                "command.updated:rejected"
            ]
        );
    }
}
