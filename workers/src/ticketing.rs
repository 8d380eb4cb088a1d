//! The ticketing role: orders, tickets and check-in.
//!
//! An order is served whole or not at all: the store takes its seats under
//! a condition in the same atomic write as the order, its tickets and the
//! command's completion, so it never sells a seat it does not have nor
//! refuses one it does.

use async_trait::async_trait;
use eventsys_messages::{
    Action, CheckIn, CommandEnvelope, CommandError, CommandStatus, Event, EventStatus, PlaceOrder,
    TicketId, Timestamp,
    event::{EventUpdated, OrderRejected, TicketCheckedIn, TicketsSold},
};
use eventsys_store::{
    CheckInOutcome, CommandRecord, Completion, Finished, OrderRecord, OrderStatus, PlaceOutcome,
    Placement, TicketRecord, TicketStatus,
};
use serde_json::json;

use crate::{
    Deps, WorkError,
    lifecycle::{Execute, Executed, Outcome, end_without_effect},
};

pub(crate) struct Ticketing;

#[async_trait]
impl Execute for Ticketing {
    async fn execute(&self, deps: &Deps, command: &CommandEnvelope) -> Result<Executed, WorkError> {
        match &command.action {
            Action::PlaceOrder(order) => place_order(deps, command, order).await,
            Action::CheckIn(check_in) => admit(deps, command, check_in).await,
            other => Err(WorkError::Poison(format!(
                "{} is not a ticketing command",
                other.kind()
            ))),
        }
    }

    async fn recall(
        &self,
        deps: &Deps,
        command: &CommandEnvelope,
        record: &CommandRecord,
    ) -> Result<Vec<Event>, WorkError> {
        match &command.action {
            Action::PlaceOrder(p) => {
                let Some(order) = deps.store.order(p.order_id).await? else {
                    return Ok(Vec::new());
                };
                let name = deps
                    .store
                    .event(p.event_id)
                    .await?
                    .map(|s| s.event.spec.name)
                    .unwrap_or_default();
                Ok(vec![order_fact(&order, name)])
            }
            Action::CheckIn(c) if record.status == CommandStatus::Succeeded => {
                let ticket = deps.store.ticket(c.ticket_id).await?;
                Ok(ticket
                    .and_then(|t| t.checked_in_at.map(|at| checked_in(&t, at)))
                    .into_iter()
                    .collect())
            }
            _ => Ok(Vec::new()),
        }
    }
}

async fn place_order(
    deps: &Deps,
    command: &CommandEnvelope,
    p: &PlaceOrder,
) -> Result<Executed, WorkError> {
    let Some(event) = deps.store.event_record(p.event_id).await? else {
        return reject(
            deps,
            command,
            p,
            String::new(),
            "not_found",
            "the event does not exist",
        )
        .await;
    };
    let name = event.spec.name.clone();
    if event.spec.status != EventStatus::Published {
        return reject(
            deps,
            command,
            p,
            name,
            "not_on_sale",
            "the event is not on sale",
        )
        .await;
    }
    if event.spec.ticket_type(p.ticket_type_id).is_none() {
        return reject(
            deps,
            command,
            p,
            name,
            "validation_failed",
            "the event has no such ticket type",
        )
        .await;
    }
    if !(1..=event.spec.max_per_order).contains(&p.quantity) {
        let message = format!(
            "quantity must be between 1 and {}",
            event.spec.max_per_order
        );
        return reject(deps, command, p, name, "validation_failed", &message).await;
    }

    let now = Timestamp::now();
    let tickets: Vec<TicketRecord> = (0..p.quantity)
        .map(|_| TicketRecord {
            ticket_id: TicketId::generate(),
            event_id: p.event_id,
            order_id: p.order_id,
            holder_id: command.issuer.clone(),
            ticket_type_id: p.ticket_type_id,
            status: TicketStatus::Valid,
            created_at: now,
            checked_in_at: None,
        })
        .collect();
    let ticket_ids: Vec<TicketId> = tickets.iter().map(|t| t.ticket_id).collect();
    let order = OrderRecord {
        order_id: p.order_id,
        event_id: p.event_id,
        buyer_id: command.issuer.clone(),
        ticket_type_id: p.ticket_type_id,
        quantity: p.quantity,
        status: OrderStatus::Confirmed,
        created_at: now,
        ticket_ids: ticket_ids.clone(),
        rejection: None,
    };
    let done = Completion::succeeded(
        command.command_id(),
        json!({ "order_id": p.order_id, "ticket_ids": ticket_ids }),
    );

    let placement = Placement { order, tickets };
    match deps.store.place_order(&placement, &done).await? {
        PlaceOutcome::Placed => {
            let remaining = deps
                .store
                .event(p.event_id)
                .await?
                .map_or(0, |s| s.inventory.remaining);
            let events = vec![
                order_fact(&placement.order, name),
                Event::EventUpdated(EventUpdated {
                    event_id: p.event_id,
                    remaining,
                    status: EventStatus::Published,
                }),
            ];
            Ok(Executed::Now(Outcome {
                completion: done,
                events,
            }))
        }
        PlaceOutcome::Already => Ok(Executed::Already),
        PlaceOutcome::NotOnSale => {
            reject(
                deps,
                command,
                p,
                name,
                "not_on_sale",
                "the event is not on sale",
            )
            .await
        }
        PlaceOutcome::SoldOut => {
            let message = format!("fewer than {} tickets of this type are left", p.quantity);
            reject(deps, command, p, name, "sold_out", &message).await
        }
    }
}

async fn reject(
    deps: &Deps,
    command: &CommandEnvelope,
    p: &PlaceOrder,
    event_name: String,
    code: &str,
    message: &str,
) -> Result<Executed, WorkError> {
    let reason = CommandError::new(code, message);
    let order = OrderRecord {
        order_id: p.order_id,
        event_id: p.event_id,
        buyer_id: command.issuer.clone(),
        ticket_type_id: p.ticket_type_id,
        quantity: p.quantity,
        status: OrderStatus::Rejected,
        created_at: Timestamp::now(),
        ticket_ids: Vec::new(),
        rejection: Some(reason.clone()),
    };
    let done = Completion::rejected(command.command_id(), reason);
    Ok(match deps.store.reject_order(&order, &done).await? {
        Finished::Now => Executed::Now(Outcome {
            completion: done,
            events: vec![order_fact(&order, event_name)],
        }),
        Finished::Already => Executed::Already,
    })
}

/// What an order's outcome means to the rest of the system.
fn order_fact(order: &OrderRecord, event_name: String) -> Event {
    match order.status {
        OrderStatus::Confirmed => Event::TicketsSold(TicketsSold {
            order_id: order.order_id,
            ordered_at: order.created_at,
            event_id: order.event_id,
            event_name,
            buyer_id: order.buyer_id.clone(),
            ticket_ids: order.ticket_ids.clone(),
        }),
        OrderStatus::Rejected => Event::OrderRejected(OrderRejected {
            order_id: order.order_id,
            ordered_at: order.created_at,
            event_id: order.event_id,
            event_name,
            buyer_id: order.buyer_id.clone(),
            reason: order
                .rejection
                .clone()
                .unwrap_or_else(|| CommandError::new("rejected", "the order was turned down")),
        }),
    }
}

fn checked_in(ticket: &TicketRecord, at: Timestamp) -> Event {
    Event::TicketCheckedIn(TicketCheckedIn {
        ticket_id: ticket.ticket_id,
        event_id: ticket.event_id,
        holder_id: ticket.holder_id.clone(),
        checked_in_at: at,
    })
}

/// Admits a ticket at the door, once: the first scan wins, across replicas.
async fn admit(deps: &Deps, command: &CommandEnvelope, c: &CheckIn) -> Result<Executed, WorkError> {
    let id = command.command_id();
    let at = Timestamp::now();
    let done = Completion::succeeded(
        id,
        json!({ "ticket_id": c.ticket_id, "event_id": c.event_id, "checked_in_at": at }),
    );
    match deps
        .store
        .check_in(c.ticket_id, c.event_id, at, &done)
        .await?
    {
        CheckInOutcome::CheckedIn => {
            let ticket = deps.store.ticket(c.ticket_id).await?;
            let events = ticket.iter().map(|t| checked_in(t, at)).collect();
            Ok(Executed::Now(Outcome {
                completion: done,
                events,
            }))
        }
        CheckInOutcome::Already => Ok(Executed::Already),
        CheckInOutcome::NotAdmissible => {
            let ticket = deps.store.ticket(c.ticket_id).await?;
            let done = match ticket {
                Some(t) if t.event_id == c.event_id && t.status == TicketStatus::CheckedIn => {
                    let first = t.checked_in_at;
                    let message = match first {
                        Some(first) => format!("the ticket was checked in at {first}"),
                        None => "the ticket was checked in before".to_owned(),
                    };
                    Completion {
                        result: Some(json!({ "ticket_id": c.ticket_id, "checked_in_at": first })),
                        ..Completion::rejected(id, CommandError::new("already_checked_in", message))
                    }
                }
                Some(t) if t.event_id == c.event_id && t.status == TicketStatus::Cancelled => {
                    Completion::rejected(
                        id,
                        CommandError::new("ticket_cancelled", "the ticket was cancelled"),
                    )
                }
                Some(t) if t.event_id == c.event_id => {
                    return Err(WorkError::Transient(format!(
                        "ticket {} changed during check-in",
                        c.ticket_id
                    )));
                }
                _ => Completion::rejected(
                    id,
                    CommandError::new("invalid_ticket_code", "no such ticket for this event"),
                ),
            };
            end_without_effect(deps, done).await
        }
    }
}
