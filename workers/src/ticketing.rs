//! The ticketing role: orders, tickets and check-in.
//!
//! An order is served whole or not at all: the store takes its seats under
//! a condition in the same atomic write as the order, its tickets and the
//! command's completion, so it never sells a seat it does not have nor
//! refuses one it does. The rules themselves (which type, how many, on
//! sale, admissible) are [`eventsys_messages::rules`], shared with the API.

use std::time::Duration;

use eventsys_messages::{
    CheckIn, CommandEnvelope, CommandError, CommandId, CommandResult, CommandStatus, Event,
    EventId, EventStatus, PlaceOrder, Reason, TicketId, TicketStatus, Timestamp, UserId,
    event::{Counts, EventUpdated, OrderRejected, TicketCheckedIn, TicketsSold},
    rules,
};
use eventsys_store::{
    CheckInOutcome, CommandRecord, Completion, EventSnapshot, Finished, OrderRecord, OrderStatus,
    PlaceOutcome, Placement, Scan, TicketRecord,
};

use crate::{
    Deps, WorkError,
    lifecycle::{Executed, Outcome, end_without_effect},
};

pub(crate) async fn place_order(
    deps: &Deps,
    command: &CommandEnvelope,
    p: &PlaceOrder,
) -> Result<Executed, WorkError> {
    let Some(event) = deps
        .gather
        .event_record(deps.store.as_ref(), p.event_id)
        .await?
    else {
        let reason = CommandError::new(Reason::NotFound, "the event does not exist");
        return reject(deps, command, p, String::new(), reason).await;
    };
    let name = event.spec.name.clone();
    let wanted = p.ticket_type_id.to_string();
    let checked = rules::on_sale(&event.spec)
        .map_err(|reason| CommandError::new(reason, "the event is not on sale"))
        .and_then(|()| {
            let ticket_type = rules::ticket_type(&event.spec, Some(&wanted));
            rules::quantity(&event.spec, p.quantity)
                .and(ticket_type)
                .map_err(|e| {
                    CommandError::new(
                        Reason::ValidationFailed,
                        format!("{} {}", e.field, e.message),
                    )
                })
        });
    let ticket_type = match checked {
        Ok(ticket_type) => ticket_type,
        Err(reason) => return reject(deps, command, p, name, reason).await,
    };

    let now = Timestamp::now();
    // A paid type is held until it is paid for; a free one is confirmed now.
    let (order, tickets) = if rules::is_paid(ticket_type) {
        let expires = now + Duration::from_secs(u64::from(event.spec.hold_seconds));
        let order = OrderRecord {
            status: OrderStatus::PendingPayment,
            expires_at: Some(expires),
            ..order_record(command, p, now, Ok(Vec::new()))
        };
        (order, Vec::new())
    } else {
        let tickets = issue_tickets(&command.issuer, p, now);
        let ids = tickets.iter().map(|t| t.ticket_id).collect();
        (order_record(command, p, now, Ok(ids)), tickets)
    };
    let done = Completion::succeeded(
        command.command_id(),
        CommandResult {
            order_id: Some(p.order_id),
            order_status: Some(order.status),
            expires_at: order.expires_at,
            ticket_ids: order.ticket_ids.clone(),
            ..CommandResult::default()
        },
    );
    let confirmed =
        (order.status == OrderStatus::Confirmed).then(|| order_fact(&order, name.clone()));
    let placement = Placement { order, tickets };
    let placed = deps
        .gather
        .place(&deps.store, placement, done.clone())
        .await?;
    match placed.outcome {
        PlaceOutcome::Placed => {
            let mut events: Vec<Event> = confirmed.into_iter().collect();
            events.extend(placed.counts.map(|s| counts_of(p.event_id, &s)));
            Ok(Executed::now(Outcome {
                completion: done,
                events,
            }))
        }
        PlaceOutcome::Already => Ok(Executed::Already),
        PlaceOutcome::NotOnSale => {
            let reason = CommandError::new(Reason::NotOnSale, "the event is not on sale");
            reject(deps, command, p, name, reason).await
        }
        PlaceOutcome::Duplicate => {
            let reason = CommandError::new(Reason::Conflict, "already registered for this event");
            // The order with this id is the earlier registration: leave it.
            end_without_effect(deps, Completion::rejected(command.command_id(), reason)).await
        }
        PlaceOutcome::SoldOut => {
            let message = format!("fewer than {} tickets of this type are left", p.quantity);
            let reason = CommandError::new(Reason::SoldOut, message);
            reject(deps, command, p, name, reason).await
        }
    }
}

/// What an order's outcome meant, to announce it again.
pub(crate) async fn recall_order(
    deps: &Deps,
    p: &PlaceOrder,
    record: &CommandRecord,
) -> Result<Vec<Event>, WorkError> {
    let Some(order) = deps.store.order(p.order_id).await? else {
        return Ok(Vec::new());
    };
    // The order with this id may be another command's (a registration made
    // twice): only this command's own outcome is said again.
    let ours = match record.status {
        CommandStatus::Succeeded => order.rejection.is_none(),
        CommandStatus::Rejected => order.rejection.is_some() && order.rejection == record.error,
        _ => false,
    };
    if !ours {
        return Ok(Vec::new());
    }
    let name = deps
        .store
        .event_record(p.event_id)
        .await?
        .map(|e| e.spec.name)
        .unwrap_or_default();
    Ok(vec![order_fact(&order, name)])
}

async fn reject(
    deps: &Deps,
    command: &CommandEnvelope,
    p: &PlaceOrder,
    event_name: String,
    reason: CommandError,
) -> Result<Executed, WorkError> {
    let order = order_record(command, p, Timestamp::now(), Err(reason.clone()));
    let done = Completion::rejected(command.command_id(), reason);
    let fact = order_fact(&order, event_name);
    Ok(
        match deps.gather.reject(&deps.store, order, done.clone()).await? {
            Finished::Now => Executed::now(Outcome {
                completion: done,
                events: vec![fact],
            }),
            Finished::Already => Executed::Already,
        },
    )
}

/// The tickets of an order, made when it is confirmed.
pub(crate) fn issue_tickets(holder: &UserId, p: &PlaceOrder, at: Timestamp) -> Vec<TicketRecord> {
    (0..p.quantity)
        .map(|_| TicketRecord {
            ticket_id: TicketId::generate(),
            event_id: p.event_id,
            order_id: p.order_id,
            holder_id: holder.clone(),
            ticket_type_id: p.ticket_type_id,
            status: TicketStatus::Valid,
            created_at: at,
            checked_in_at: None,
            checked_in_gate: None,
        })
        .collect()
}

/// What subscribers of an event see of it after a change of its seats.
pub(crate) async fn availability(deps: &Deps, event_id: EventId) -> Result<Vec<Event>, WorkError> {
    Ok(deps
        .store
        .event(event_id)
        .await?
        .map(|s| counts_of(event_id, &s))
        .into_iter()
        .collect())
}

fn counts_of(event_id: EventId, s: &EventSnapshot) -> Event {
    Event::EventUpdated(EventUpdated {
        event_id,
        remaining: s.inventory.remaining,
        status: s.event.spec.status,
        counts: Some(Counts {
            sold: s.inventory.sold(),
            held: s.inventory.held,
            checked_in: s.inventory.checked_in,
        }),
    })
}

/// The order `p` as it ends: confirmed with its tickets, or turned down.
fn order_record(
    command: &CommandEnvelope,
    p: &PlaceOrder,
    at: Timestamp,
    outcome: Result<Vec<TicketId>, CommandError>,
) -> OrderRecord {
    let (status, ticket_ids, rejection) = match outcome {
        Ok(tickets) => (OrderStatus::Confirmed, tickets, None),
        Err(reason) => (OrderStatus::Rejected, Vec::new(), Some(reason)),
    };
    OrderRecord {
        order_id: p.order_id,
        event_id: p.event_id,
        buyer_id: command.issuer.clone(),
        ticket_type_id: p.ticket_type_id,
        quantity: p.quantity,
        status,
        created_at: at,
        expires_at: None,
        ticket_ids,
        rejection,
    }
}

/// What an order's outcome means to the rest of the system.
pub(crate) fn order_fact(order: &OrderRecord, event_name: String) -> Event {
    match &order.rejection {
        None => Event::TicketsSold(TicketsSold {
            order_id: order.order_id,
            ordered_at: order.created_at,
            event_id: order.event_id,
            event_name,
            buyer_id: order.buyer_id.clone(),
            ticket_ids: order.ticket_ids.clone(),
        }),
        Some(reason) => Event::OrderRejected(OrderRejected {
            order_id: order.order_id,
            ordered_at: order.created_at,
            event_id: order.event_id,
            event_name,
            buyer_id: order.buyer_id.clone(),
            reason: reason.clone(),
        }),
    }
}

fn checked_in(ticket: &TicketRecord, at: Timestamp, gate: Option<String>) -> Event {
    Event::TicketCheckedIn(TicketCheckedIn {
        ticket_id: ticket.ticket_id,
        event_id: ticket.event_id,
        holder_id: ticket.holder_id.clone(),
        checked_in_at: at,
        gate,
    })
}

/// Admits a ticket at the door, once: across replicas and doors, online
/// or uploaded later from an offline door, the earliest scan wins.
pub(crate) async fn admit(
    deps: &Deps,
    command: &CommandEnvelope,
    c: &CheckIn,
) -> Result<Executed, WorkError> {
    let id = command.command_id();
    let at = c.scanned_at.unwrap_or_else(Timestamp::now);
    let ticket = deps.store.ticket(c.ticket_id).await?;
    let event_status = deps
        .store
        .event_record(c.event_id)
        .await?
        .map_or(EventStatus::Cancelled, |e| e.spec.status);
    let found = ticket.as_ref().map(|t| (t.event_id, t.status));
    let first = ticket.as_ref().and_then(|t| t.checked_in_at);
    let admissible = match rules::admission(found, c.event_id, event_status) {
        Ok(()) => Ok(()),
        Err(Reason::AlreadyCheckedIn)
            if c.scanned_at.is_some() && first.is_some_and(|f| rules::replaces(f, at)) =>
        {
            Ok(())
        }
        Err(reason) => Err(reason),
    };
    let (Ok(()), Some(ticket)) = (admissible, &ticket) else {
        let reason = admissible.err().unwrap_or(Reason::InvalidTicketCode);
        return refuse(deps, id, c, reason, ticket.as_ref(), event_status).await;
    };
    let scan = Scan {
        ticket_id: c.ticket_id,
        event_id: c.event_id,
        ticket_type_id: ticket.ticket_type_id,
        at,
        gate: c.gate.clone(),
        offline: c.scanned_at.is_some(),
    };
    let admitted = CommandResult {
        event_id: Some(c.event_id),
        ticket_id: Some(c.ticket_id),
        checked_in_at: Some(at),
        gate: c.gate.clone(),
        ..CommandResult::default()
    };
    let done = Completion::succeeded(id, admitted);
    match deps.store.check_in(&scan, &done).await? {
        CheckInOutcome::CheckedIn | CheckInOutcome::Earlier => {
            let mut events = vec![checked_in(ticket, at, c.gate.clone())];
            events.extend(availability(deps, c.event_id).await?);
            Ok(Executed::now(Outcome {
                completion: done,
                events,
            }))
        }
        CheckInOutcome::Already => Ok(Executed::Already),
        // Another scan or a cancellation got there between our read and
        // our write: look again.
        CheckInOutcome::NotAdmissible => Err(WorkError::Changing(format!(
            "ticket {} changed during check-in",
            c.ticket_id
        ))),
    }
}

/// Turns a scan away, saying why; `already_checked_in` carries the
/// winning scan's time and gate.
async fn refuse(
    deps: &Deps,
    id: CommandId,
    c: &CheckIn,
    reason: Reason,
    ticket: Option<&TicketRecord>,
    event_status: EventStatus,
) -> Result<Executed, WorkError> {
    let first = ticket.and_then(|t| t.checked_in_at);
    let message = match (reason, first) {
        (Reason::AlreadyCheckedIn, Some(first)) => {
            format!("the ticket was checked in at {first}")
        }
        (Reason::TicketCancelled, _) if event_status == EventStatus::Cancelled => {
            "the event was cancelled".to_owned()
        }
        (Reason::TicketCancelled, _) => "the ticket was cancelled".to_owned(),
        _ => "no such ticket for this event".to_owned(),
    };
    let mut done = Completion::rejected(id, CommandError::new(reason, message));
    if reason == Reason::AlreadyCheckedIn {
        done.result = Some(CommandResult {
            ticket_id: Some(c.ticket_id),
            checked_in_at: first,
            gate: ticket.and_then(|t| t.checked_in_gate.clone()),
            ..CommandResult::default()
        });
    }
    end_without_effect(deps, done).await
}

/// A check-in this command made, to announce it again.
pub(crate) async fn recall_check_in(
    deps: &Deps,
    c: &CheckIn,
    record: &CommandRecord,
) -> Result<Vec<Event>, WorkError> {
    if record.status != CommandStatus::Succeeded {
        return Ok(Vec::new());
    }
    let ticket = deps.store.ticket(c.ticket_id).await?;
    Ok(ticket
        .and_then(|t| {
            t.checked_in_at
                .map(|at| checked_in(&t, at, t.checked_in_gate.clone()))
        })
        .into_iter()
        .collect())
}
