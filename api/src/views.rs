//! What the API shows of stored records: the public resource shapes.

use std::collections::BTreeMap;

use eventsys_messages::{Timestamp, event::CommandUpdated};
use eventsys_store::{
    CommandRecord, EventSnapshot, NotificationRecord, OrderRecord, Page, TicketRecord,
};

use crate::signing::Cursors;
use serde::Serialize;
use serde_json::{Value, json};

/// The command document: the command's state as the WebSocket shows it,
/// plus its type, times and the ids of what it creates.
pub fn command(record: &CommandRecord) -> Value {
    #[derive(Serialize)]
    struct Document<'a> {
        #[serde(flatten)]
        state: CommandUpdated,
        #[serde(rename = "type")]
        kind: &'a str,
        submitted_at: Timestamp,
        updated_at: Timestamp,
        #[serde(flatten)]
        resources: &'a BTreeMap<String, String>,
    }
    json!(Document {
        state: record.state(),
        kind: &record.kind,
        submitted_at: record.submitted_at,
        updated_at: record.updated_at,
        resources: &record.resources,
    })
}

pub fn event(snapshot: &EventSnapshot) -> Value {
    let (event, inventory) = (&snapshot.event, &snapshot.inventory);
    let spec = &event.spec;
    let ticket_types: Vec<Value> = spec
        .ticket_types
        .iter()
        .map(|tt| {
            json!({
                "ticket_type_id": tt.ticket_type_id,
                "name": tt.name,
                "price_minor": tt.price_minor,
                "currency": tt.currency,
                "quota": tt.quota,
                "sold": inventory.type_sold(tt.ticket_type_id),
                "remaining": inventory.type_remaining(tt.ticket_type_id),
            })
        })
        .collect();
    json!({
        "event_id": event.event_id,
        "organizer_id": event.organizer_id,
        "name": spec.name,
        "description": spec.description,
        "venue": spec.venue,
        "starts_at": spec.starts_at,
        "ends_at": spec.ends_at,
        "status": spec.status,
        "capacity": spec.capacity,
        "sold": inventory.sold(),
        "remaining": inventory.remaining,
        "max_per_order": spec.max_per_order,
        "ticket_types": ticket_types,
        "created_at": event.created_at,
        "updated_at": event.updated_at,
    })
}

/// A ticket; `code` only for those allowed to see it.
pub fn ticket(ticket: &TicketRecord, code: Option<String>) -> Value {
    let mut view = json!({
        "ticket_id": ticket.ticket_id,
        "event_id": ticket.event_id,
        "order_id": ticket.order_id,
        "holder_id": ticket.holder_id,
        "ticket_type_id": ticket.ticket_type_id,
        "status": ticket.status,
        "checked_in_at": ticket.checked_in_at,
        "created_at": ticket.created_at,
    });
    if let Some(code) = code {
        view["code"] = json!(code);
    }
    view
}

pub fn order(order: &OrderRecord, tickets: Vec<Value>) -> Value {
    let mut view = json!({
        "order_id": order.order_id,
        "event_id": order.event_id,
        "buyer_id": order.buyer_id,
        "ticket_type_id": order.ticket_type_id,
        "status": order.status,
        "quantity": order.quantity,
        "created_at": order.created_at,
        "tickets": tickets,
    });
    if let Some(rejection) = &order.rejection {
        view["rejection"] = json!(rejection);
    }
    view
}

pub fn notification(n: &NotificationRecord) -> Value {
    json!(n)
}

/// A page of `list`, each item shown by `view`, its cursor sealed.
pub fn page<T>(page: Page<T>, cursors: &Cursors, list: &str, view: impl Fn(&T) -> Value) -> Value {
    let items: Vec<Value> = page.items.iter().map(view).collect();
    let next_cursor = page.next.map(|position| cursors.seal(list, &position));
    json!({ "items": items, "next_cursor": next_cursor })
}
