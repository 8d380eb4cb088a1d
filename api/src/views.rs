//! What the API shows of stored records: one serialisable shape per
//! resource. A command's state and a notification are the very shapes the
//! WebSocket pushes (from `eventsys-messages`; an inbox entry is shown as
//! it is stored); the others are shown over REST only.
//!
//! Each shape is also its own OpenAPI schema, so the document describes
//! what is written, not a copy of it.

use std::collections::BTreeMap;

use eventsys_messages::{
    CommandError, CommandId, CommandStatus, EventId, EventStatus, NotificationId, OrderId,
    TicketId, TicketStatus, TicketTypeId, Timestamp, UserId, event::CommandUpdated,
};
use eventsys_store::{CommandRecord, EventSnapshot, OrderRecord, OrderStatus, Page, TicketRecord};
use serde::Serialize;
use utoipa::ToSchema;

use crate::signing::Cursors;

/// The command document: the command's state as the WebSocket shows it
/// (`command.updated`), plus its type, times and the ids of what it
/// creates or acts on. A staff command names two users: its `user_id` is
/// then the staff member's.
#[derive(Serialize, ToSchema)]
pub struct CommandView<'a> {
    #[serde(flatten)]
    state: CommandUpdated,
    /// The command type, e.g. `order.place`.
    #[serde(rename = "type")]
    kind: &'a str,
    submitted_at: Timestamp,
    updated_at: Timestamp,
    #[serde(flatten)]
    #[schema(value_type = CommandResources)]
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

/// `GET /v1/commands/{command_id}`: the command document and, while an
/// order waits in its event's line, its place in it.
#[derive(Serialize, ToSchema)]
pub struct CommandStanding<'a> {
    #[serde(flatten)]
    pub command: CommandView<'a>,
    /// The order's place in its event's line, 1 meaning next; only while
    /// it waits there.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub queue_position: Option<usize>,
}

/// The answer to a write, at once (`202 Accepted`): the command, where it
/// stands (a replayed `Idempotency-Key` shows where the first request's
/// command stands now), and the ids of what it creates or acts on.
#[derive(Serialize, ToSchema)]
pub struct CommandAccepted<'a> {
    command_id: CommandId,
    status: CommandStatus,
    #[serde(flatten)]
    #[schema(value_type = CommandResources)]
    resources: &'a BTreeMap<String, String>,
}

/// The 202 body of `record`.
pub fn accepted(record: &CommandRecord) -> CommandAccepted<'_> {
    CommandAccepted {
        command_id: record.command_id,
        status: record.status,
        resources: &record.resources,
    }
}

/// The ids a command names from the moment it is accepted, each under
/// the name of what it is; which appear depends on the command type.
/// Stored as a map of strings: this type only describes it.
#[derive(ToSchema)]
pub struct CommandResources {
    pub event_id: Option<EventId>,
    /// A ticket type being added.
    pub ticket_type_id: Option<TicketTypeId>,
    pub order_id: Option<OrderId>,
    pub ticket_id: Option<TicketId>,
    pub notification_id: Option<NotificationId>,
    /// The staff member being granted or revoked.
    pub user_id: Option<UserId>,
}

#[derive(Serialize, ToSchema)]
pub struct TicketTypeView<'a> {
    ticket_type_id: TicketTypeId,
    name: &'a str,
    /// The price in the currency's minor unit (cents); 0 is free.
    price_minor: u64,
    /// ISO 4217, e.g. `EUR`.
    currency: &'a str,
    quota: u32,
    sold: u32,
    remaining: u32,
    /// No longer on sale (what was sold stays); left out while on sale.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    closed: bool,
}

/// An event with its live availability.
#[derive(Serialize, ToSchema)]
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
    /// How long an order of a paid ticket type holds its seats before it
    /// must be confirmed.
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
                closed: tt.closed,
            })
            .collect(),
        created_at: event.created_at,
        updated_at: event.updated_at,
    }
}

/// A ticket; `code` only for those allowed to see it.
#[derive(Serialize, ToSchema)]
pub struct TicketView<'a> {
    ticket_id: TicketId,
    event_id: EventId,
    order_id: OrderId,
    holder_id: &'a UserId,
    ticket_type_id: TicketTypeId,
    status: TicketStatus,
    /// When it was admitted; null until then.
    checked_in_at: Option<Timestamp>,
    /// The gate that admitted it, if the door said.
    #[serde(skip_serializing_if = "Option::is_none")]
    checked_in_gate: Option<&'a str>,
    created_at: Timestamp,
    /// What its QR code carries: a compact JWS (EdDSA) that the keys of
    /// `GET /v1/events/{event_id}/verification-key` verify.
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

/// An order, with its tickets once confirmed.
#[derive(Serialize, ToSchema)]
pub struct OrderView<'a> {
    order_id: OrderId,
    event_id: EventId,
    buyer_id: &'a UserId,
    ticket_type_id: TicketTypeId,
    status: OrderStatus,
    quantity: u32,
    created_at: Timestamp,
    /// Until when a `pending_payment` order holds its seats.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<Timestamp>,
    tickets: Vec<TicketView<'a>>,
    /// Why it was rejected.
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

/// A page of a list, each item in its view.
#[derive(Serialize, ToSchema)]
pub struct PageOf<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// A page of `list`, each item shown by `view`, its cursor sealed.
pub fn page<'a, T, V>(
    page: &'a Page<T>,
    cursors: &Cursors,
    list: &str,
    view: impl Fn(&'a T) -> V,
) -> PageOf<V> {
    PageOf {
        items: page.items.iter().map(view).collect(),
        next_cursor: page
            .next
            .as_ref()
            .map(|position| cursors.seal(list, position)),
    }
}
