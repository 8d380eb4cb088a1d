//! An order after it is placed: a hold confirmed (what a payment
//! provider's callback asks) or run out, an order or a single ticket
//! cancelled. Against its expiry, a confirmation has exactly one winner:
//! both are conditional writes on the order still being a hold.
//!
//! Expiry is scheduled, not noticed by readers: see [`crate::schedule`].

use eventsys_messages::{
    Action, CommandEnvelope, CommandError, CommandId, CommandResult, CommandStatus, Event, OrderId,
    OrderRef, OrderStatus, PlaceOrder, Reason, TicketRef, Timestamp, event::OrderReleased,
};
use eventsys_store::{CommandRecord, Completion, OrderChange, OrderRecord};

use crate::{
    Deps, WorkError,
    lifecycle::{Executed, Outcome, end_without_effect},
    ticketing::{availability, issue_tickets, order_fact},
};

pub(crate) async fn confirm(
    deps: &Deps,
    command: &CommandEnvelope,
    o: &OrderRef,
) -> Result<Executed, WorkError> {
    let id = command.command_id();
    let Some(order) = deps.store.order(o.order_id).await? else {
        return refuse(deps, id, OrderChange::NotFound).await;
    };
    let now = Timestamp::now();
    let tickets = issue_tickets(&order.buyer_id, &placed(&order), now);
    let ticket_ids: Vec<_> = tickets.iter().map(|t| t.ticket_id).collect();
    let confirmed = CommandResult {
        order_id: Some(order.order_id),
        order_status: Some(OrderStatus::Confirmed),
        ticket_ids: ticket_ids.clone(),
        ..CommandResult::default()
    };
    let done = Completion::succeeded(id, confirmed);
    match deps
        .store
        .confirm_order(o.order_id, &tickets, now, &done)
        .await?
    {
        OrderChange::Changed => {
            let sold = OrderRecord {
                status: OrderStatus::Confirmed,
                ticket_ids,
                ..order
            };
            Ok(Executed::now(Outcome {
                events: confirmed_facts(deps, &sold).await?,
                completion: done,
            }))
        }
        OrderChange::Already => Ok(Executed::Already),
        refusal => refuse(deps, id, refusal).await,
    }
}

/// What a confirmed order means to everyone: sold tickets, fewer held.
async fn confirmed_facts(deps: &Deps, order: &OrderRecord) -> Result<Vec<Event>, WorkError> {
    let name = deps
        .store
        .event_record(order.event_id)
        .await?
        .map(|e| e.spec.name)
        .unwrap_or_default();
    let mut events = vec![order_fact(order, name)];
    events.extend(availability(deps, order.event_id).await?);
    Ok(events)
}

pub(crate) async fn expire(
    deps: &Deps,
    command: &CommandEnvelope,
    o: &OrderRef,
) -> Result<Executed, WorkError> {
    let id = command.command_id();
    let done = Completion::succeeded(id, ended(o.order_id, OrderStatus::Expired));
    match deps
        .store
        .expire_order(o.order_id, Timestamp::now(), &done)
        .await?
    {
        OrderChange::Changed => released_now(deps, done, o.order_id, Vec::new()).await,
        OrderChange::Already => Ok(Executed::Already),
        refusal => refuse(deps, id, refusal).await,
    }
}

pub(crate) async fn cancel_order(
    deps: &Deps,
    command: &CommandEnvelope,
    o: &OrderRef,
) -> Result<Executed, WorkError> {
    let id = command.command_id();
    let done = Completion::succeeded(id, ended(o.order_id, OrderStatus::Cancelled));
    match deps.store.cancel_order(o.order_id, &done).await? {
        OrderChange::Changed => released_now(deps, done, o.order_id, Vec::new()).await,
        OrderChange::Already => Ok(Executed::Already),
        refusal => refuse(deps, id, refusal).await,
    }
}

pub(crate) async fn cancel_ticket(
    deps: &Deps,
    command: &CommandEnvelope,
    t: &TicketRef,
) -> Result<Executed, WorkError> {
    let id = command.command_id();
    let Some(ticket) = deps.store.ticket(t.ticket_id).await? else {
        return refuse(deps, id, OrderChange::NotFound).await;
    };
    let cancelled = CommandResult {
        order_id: Some(ticket.order_id),
        ticket_id: Some(t.ticket_id),
        ..CommandResult::default()
    };
    let done = Completion::succeeded(id, cancelled);
    match deps.store.cancel_ticket(t.ticket_id, &done).await? {
        OrderChange::Changed => released_now(deps, done, ticket.order_id, vec![t.ticket_id]).await,
        OrderChange::Already => Ok(Executed::Already),
        refusal => refuse(deps, id, refusal).await,
    }
}

/// What a finished order command meant, to announce it again.
pub(crate) async fn recall(
    deps: &Deps,
    action: &Action,
    record: &CommandRecord,
) -> Result<Vec<Event>, WorkError> {
    if record.status != CommandStatus::Succeeded {
        return Ok(Vec::new());
    }
    let result = record.result.clone().unwrap_or_default();
    let order = match result.order_id {
        Some(id) => deps.store.order(id).await?,
        None => None,
    };
    let Some(order) = order else {
        return Ok(Vec::new());
    };
    match action {
        Action::ConfirmOrder(_) => confirmed_facts(deps, &order).await,
        _ => {
            let tickets = result.ticket_id.into_iter().collect();
            released_facts(deps, &order, tickets, record.updated_at).await
        }
    }
}

fn ended(order_id: OrderId, status: OrderStatus) -> CommandResult {
    CommandResult {
        order_id: Some(order_id),
        order_status: Some(status),
        ..CommandResult::default()
    }
}

async fn released_now(
    deps: &Deps,
    done: Completion,
    order_id: OrderId,
    tickets: Vec<eventsys_messages::TicketId>,
) -> Result<Executed, WorkError> {
    let Some(order) = deps.store.order(order_id).await? else {
        return Err(WorkError::Changing(format!("order {order_id} vanished")));
    };
    Ok(Executed::now(Outcome {
        events: released_facts(deps, &order, tickets, done.at).await?,
        completion: done,
    }))
}

/// Seats back for sale: the buyer is told, subscribers see them.
async fn released_facts(
    deps: &Deps,
    order: &OrderRecord,
    tickets: Vec<eventsys_messages::TicketId>,
    at: Timestamp,
) -> Result<Vec<Event>, WorkError> {
    let seats = if tickets.is_empty() {
        order.quantity
    } else {
        u32::try_from(tickets.len()).unwrap_or(u32::MAX)
    };
    let status = match order.status {
        OrderStatus::Expired => OrderStatus::Expired,
        _ => OrderStatus::Cancelled,
    };
    let mut events = vec![Event::OrderReleased(OrderReleased {
        order_id: order.order_id,
        event_id: order.event_id,
        buyer_id: order.buyer_id.clone(),
        status,
        ticket_ids: tickets,
        seats,
        at,
    })];
    events.extend(availability(deps, order.event_id).await?);
    // Seats released go to those waiting first.
    events.extend(crate::registration::offer_waiting(deps, order.event_id).await?);
    Ok(events)
}

/// Says no to an order command, with the reason the store gave.
async fn refuse(deps: &Deps, id: CommandId, refusal: OrderChange) -> Result<Executed, WorkError> {
    let reason = match refusal {
        OrderChange::NotFound => CommandError::new(Reason::NotFound, "no such order or ticket"),
        OrderChange::Expired | OrderChange::Refused(OrderStatus::Expired) => {
            CommandError::new(Reason::HoldExpired, "the hold ran out")
        }
        OrderChange::Refused(status) => CommandError::new(
            Reason::Conflict,
            format!("the order is {}", status.as_str()),
        ),
        OrderChange::Changed | OrderChange::Already => {
            return Err(WorkError::Changing(format!(
                "command {id}: an order change answered {refusal:?} as a refusal"
            )));
        }
    };
    end_without_effect(deps, Completion::rejected(id, reason)).await
}

/// The order as it was placed, to make its tickets from.
fn placed(order: &OrderRecord) -> PlaceOrder {
    PlaceOrder {
        order_id: order.order_id,
        event_id: order.event_id,
        ticket_type_id: order.ticket_type_id,
        quantity: order.quantity,
    }
}
