//! What the API shows of stored records: the public resource shapes.

use eventsys_messages::EventId;
use eventsys_store::{
    CommandRecord, EventSnapshot, NotificationRecord, OrderRecord, Page, TicketRecord,
};

use crate::signing::Cursors;
use serde_json::{Value, json};

pub fn command(record: &CommandRecord) -> Value {
    let mut doc = json!({
        "command_id": record.command_id,
        "type": record.kind,
        "status": record.status,
        "submitted_at": record.submitted_at,
        "updated_at": record.updated_at,
    });
    for (key, value) in &record.resources {
        doc[key] = json!(value);
    }
    if let Some(result) = &record.result {
        doc["result"] = result.clone();
    }
    if let Some(error) = &record.error {
        doc["error"] = json!(error);
    }
    doc
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
    let mut view = json!({
        "notification_id": n.notification_id,
        "kind": n.kind,
        "message": n.message,
        "created_at": n.created_at,
        "read": n.read,
    });
    for (key, id) in [
        ("event_id", n.event_id.map(|i: EventId| i.to_string())),
        ("order_id", n.order_id.map(|i| i.to_string())),
        ("ticket_id", n.ticket_id.map(|i| i.to_string())),
    ] {
        if let Some(id) = id {
            view[key] = json!(id);
        }
    }
    view
}

/// A page of `list`, each item shown by `view`, its cursor sealed.
pub fn page<T>(page: Page<T>, cursors: &Cursors, list: &str, view: impl Fn(&T) -> Value) -> Value {
    let items: Vec<Value> = page.items.iter().map(view).collect();
    let next_cursor = page.next.map(|position| cursors.seal(list, &position));
    json!({ "items": items, "next_cursor": next_cursor })
}
