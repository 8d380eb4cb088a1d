//! What the API shows of stored records: one serialisable shape per
//! resource. A command's state and a notification are the very shapes the
//! WebSocket pushes (from `eventsys-messages`; an inbox entry is shown as
//! it is stored); the others are shown over REST only.

use std::collections::BTreeMap;

use eventsys_messages::{
    CommandError, EventId, EventStatus, OrderId, TicketId, TicketStatus, TicketTypeId, Timestamp,
    UserId, event::CommandUpdated,
};
use eventsys_store::{CommandRecord, EventSnapshot, OrderRecord, OrderStatus, Page, TicketRecord};
use serde::Serialize;
use serde_json::{Value, json};

use crate::signing::Cursors;

/// The command document: the command's state as the WebSocket shows it,
/// plus its type, times and the ids of what it creates.
#[derive(Serialize)]
pub struct CommandView<'a> {
    #[serde(flatten)]
    state: CommandUpdated,
    #[serde(rename = "type")]
    kind: &'a str,
    submitted_at: Timestamp,
    updated_at: Timestamp,
    #[serde(flatten)]
    resources: &'a BTreeMap<String, String>,
}

pub fn command(record: &CommandRecord) -> CommandView<'_> {
    CommandView {
        state: record.state(),
        kind: &record.kind,
        submitted_at: record.submitted_at,
        updated_at: record.updated_at,
        resources: &record.resources,
    }
}

#[derive(Serialize)]
pub struct TicketTypeView<'a> {
    ticket_type_id: TicketTypeId,
    name: &'a str,
    price_minor: u64,
    currency: &'a str,
    quota: u32,
    sold: u32,
    remaining: u32,
}

#[derive(Serialize)]
pub struct EventView<'a> {
    event_id: EventId,
    organizer_id: &'a UserId,
    name: &'a str,
    description: &'a str,
    venue: &'a str,
    starts_at: Timestamp,
    ends_at: Timestamp,
    status: EventStatus,
    capacity: u32,
    sold: u32,
    remaining: u32,
    max_per_order: u32,
    hold_seconds: u32,
    ticket_types: Vec<TicketTypeView<'a>>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

pub fn event(snapshot: &EventSnapshot) -> EventView<'_> {
    let (event, counters) = (&snapshot.event, &snapshot.inventory);
    let spec = &event.spec;
    EventView {
        event_id: event.event_id,
        organizer_id: &event.organizer_id,
        name: &spec.name,
        description: &spec.description,
        venue: &spec.venue,
        starts_at: spec.starts_at,
        ends_at: spec.ends_at,
        status: spec.status,
        capacity: spec.capacity,
        sold: counters.sold(),
        remaining: counters.remaining,
        max_per_order: spec.max_per_order,
        hold_seconds: spec.hold_seconds,
        ticket_types: spec
            .ticket_types
            .iter()
            .map(|tt| TicketTypeView {
                ticket_type_id: tt.ticket_type_id,
                name: &tt.name,
                price_minor: tt.price_minor,
                currency: &tt.currency,
                quota: tt.quota,
                sold: counters.type_sold(tt.ticket_type_id),
                remaining: counters.type_remaining(tt.ticket_type_id),
            })
            .collect(),
        created_at: event.created_at,
        updated_at: event.updated_at,
    }
}

/// A ticket; `code` only for those allowed to see it.
#[derive(Serialize)]
pub struct TicketView<'a> {
    ticket_id: TicketId,
    event_id: EventId,
    order_id: OrderId,
    holder_id: &'a UserId,
    ticket_type_id: TicketTypeId,
    status: TicketStatus,
    checked_in_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checked_in_gate: Option<&'a str>,
    created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<String>,
}

pub fn ticket(ticket: &TicketRecord, code: Option<String>) -> TicketView<'_> {
    TicketView {
        ticket_id: ticket.ticket_id,
        event_id: ticket.event_id,
        order_id: ticket.order_id,
        holder_id: &ticket.holder_id,
        ticket_type_id: ticket.ticket_type_id,
        status: ticket.status,
        checked_in_at: ticket.checked_in_at,
        checked_in_gate: ticket.checked_in_gate.as_deref(),
        created_at: ticket.created_at,
        code,
    }
}

#[derive(Serialize)]
pub struct OrderView<'a> {
    order_id: OrderId,
    event_id: EventId,
    buyer_id: &'a UserId,
    ticket_type_id: TicketTypeId,
    status: OrderStatus,
    quantity: u32,
    created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<Timestamp>,
    tickets: Vec<TicketView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rejection: Option<&'a CommandError>,
}

pub fn order<'a>(order: &'a OrderRecord, tickets: Vec<TicketView<'a>>) -> OrderView<'a> {
    OrderView {
        order_id: order.order_id,
        event_id: order.event_id,
        buyer_id: &order.buyer_id,
        ticket_type_id: order.ticket_type_id,
        status: order.status,
        quantity: order.quantity,
        created_at: order.created_at,
        expires_at: order.expires_at,
        tickets,
        rejection: order.rejection.as_ref(),
    }
}

/// A page of `list`, each item shown by `view`, its cursor sealed.
pub fn page<'a, T, V: Serialize + 'a>(
    page: &'a Page<T>,
    cursors: &Cursors,
    list: &str,
    view: impl Fn(&'a T) -> V,
) -> Value {
    let items: Vec<V> = page.items.iter().map(view).collect();
    let next_cursor = page
        .next
        .as_ref()
        .map(|position| cursors.seal(list, position));
    json!({ "items": items, "next_cursor": next_cursor })
}
