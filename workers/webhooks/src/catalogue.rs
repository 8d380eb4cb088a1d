//! Which facts an organizer's endpoint hears of, under which type, with
//! which data. A fact on the broker becomes at most one occurrence; its
//! id is the fact's message id, so a fact announced twice is one
//! occurrence, delivered once per endpoint.

use eventsys_messages::{
    CommandError, Event, EventEnvelope, EventId, OrderId, TicketId, Timestamp, UserId, WebhookType,
};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// One thing that happened at an event, as endpoints receive it: the body
/// of a delivery.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[schema(as = WebhookPayload)]
pub struct Occurrence {
    /// The fact's message id: one occurrence per fact.
    #[serde(skip)]
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: WebhookType,
    pub timestamp: Timestamp,
    pub data: Data,
}

/// What an occurrence is about; every kind names its event.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
#[schema(as = WebhookData)]
pub enum Data {
    Order {
        event_id: EventId,
        order_id: OrderId,
        buyer_id: UserId,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        ticket_ids: Vec<TicketId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        seats: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<CommandError>,
    },
    CheckIn {
        event_id: EventId,
        ticket_id: TicketId,
        holder_id: UserId,
        checked_in_at: Timestamp,
        #[serde(skip_serializing_if = "Option::is_none")]
        gate: Option<String>,
    },
    Event {
        event_id: EventId,
        message: String,
    },
}

impl Occurrence {
    /// The occurrence a fact is, if endpoints hear of it.
    pub fn of(fact: &EventEnvelope) -> Option<Self> {
        let (kind, timestamp, data) = match &fact.event {
            Event::TicketsSold(sold) => (
                WebhookType::OrderSucceeded,
                fact.occurred_at,
                Data::Order {
                    event_id: sold.event_id,
                    order_id: sold.order_id,
                    buyer_id: sold.buyer_id.clone(),
                    ticket_ids: sold.ticket_ids.clone(),
                    seats: None,
                    reason: None,
                },
            ),
            Event::OrderRejected(rejected) => (
                WebhookType::OrderRejected,
                fact.occurred_at,
                Data::Order {
                    event_id: rejected.event_id,
                    order_id: rejected.order_id,
                    buyer_id: rejected.buyer_id.clone(),
                    ticket_ids: Vec::new(),
                    seats: None,
                    reason: Some(rejected.reason.clone()),
                },
            ),
            Event::OrderReleased(released) => (
                WebhookType::parse(released.kind())?,
                released.at,
                Data::Order {
                    event_id: released.event_id,
                    order_id: released.order_id,
                    buyer_id: released.buyer_id.clone(),
                    ticket_ids: released.ticket_ids.clone(),
                    seats: Some(released.seats),
                    reason: None,
                },
            ),
            Event::TicketCheckedIn(admitted) => (
                WebhookType::TicketCheckedIn,
                admitted.checked_in_at,
                Data::CheckIn {
                    event_id: admitted.event_id,
                    ticket_id: admitted.ticket_id,
                    holder_id: admitted.holder_id.clone(),
                    checked_in_at: admitted.checked_in_at,
                    gate: admitted.gate.clone(),
                },
            ),
            Event::EventChanged(changed) => (
                WebhookType::parse(&changed.kind)?,
                changed.at,
                Data::Event {
                    event_id: changed.event_id,
                    message: changed.message.clone(),
                },
            ),
            Event::CommandUpdated(_)
            | Event::EventUpdated(_)
            | Event::WaitlistOffered(_)
            | Event::WaitlistMoved(_)
            | Event::OrderExpiring(_)
            | Event::NotificationCreated(_) => return None,
        };
        Some(Self {
            id: fact.message_id,
            kind,
            timestamp,
            data,
        })
    }

    pub fn event_id(&self) -> EventId {
        match &self.data {
            Data::Order { event_id, .. }
            | Data::CheckIn { event_id, .. }
            | Data::Event { event_id, .. } => *event_id,
        }
    }

    /// The body of a delivery: `{"type", "timestamp", "data"}`.
    pub fn body(&self) -> String {
        // Ids, strings, numbers and timestamps always serialise.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use eventsys_messages::{
        CommandId, OrderStatus,
        event::{EventChanged, OrderReleased, TicketsSold},
    };
    use serde_json::{Value, json};

    use super::*;

    fn buyer() -> UserId {
        UserId::parse("alice").expect("a user id")
    }

    #[test]
    fn a_sale_is_an_order_that_succeeded_with_its_tickets() {
        let (event_id, order_id, ticket) = (
            EventId::generate(),
            OrderId::generate(),
            TicketId::generate(),
        );
        let fact = EventEnvelope::caused_by(
            CommandId::generate(),
            Event::TicketsSold(TicketsSold {
                order_id,
                ordered_at: Timestamp::now(),
                event_id,
                event_name: "RustConf".into(),
                buyer_id: buyer(),
                ticket_ids: vec![ticket],
            }),
        );
        let occurrence = Occurrence::of(&fact).expect("endpoints hear of a sale");
        assert_eq!(occurrence.id, fact.message_id);
        assert_eq!(occurrence.event_id(), event_id);
        let body: Value = serde_json::from_str(&occurrence.body()).expect("JSON");
        assert_eq!(body["type"], "order.succeeded");
        assert_eq!(
            body["data"],
            json!({ "event_id": event_id, "order_id": order_id, "buyer_id": "alice", "ticket_ids": [ticket] })
        );
        assert!(body["timestamp"].is_string());
    }

    #[test]
    fn a_release_is_named_by_what_was_released() {
        let released = |status, ticket_ids: Vec<TicketId>| {
            let fact = EventEnvelope::caused_by(
                CommandId::generate(),
                Event::OrderReleased(OrderReleased {
                    order_id: OrderId::generate(),
                    event_id: EventId::generate(),
                    buyer_id: buyer(),
                    status,
                    ticket_ids,
                    seats: 1,
                    at: Timestamp::now(),
                }),
            );
            Occurrence::of(&fact).map(|o| o.kind.as_str())
        };
        assert_eq!(
            released(OrderStatus::Expired, vec![]),
            Some("order.expired")
        );
        assert_eq!(
            released(OrderStatus::Cancelled, vec![]),
            Some("order.cancelled")
        );
        assert_eq!(
            released(OrderStatus::Cancelled, vec![TicketId::generate()]),
            Some("ticket.cancelled")
        );
    }

    #[test]
    fn an_event_change_is_told_by_its_kind_and_private_facts_are_not() {
        let changed = |kind: &str| {
            Occurrence::of(&EventEnvelope::caused_by(
                CommandId::generate(),
                Event::EventChanged(EventChanged {
                    event_id: EventId::generate(),
                    kind: kind.into(),
                    message: "Moved to Hall 2".into(),
                    at: Timestamp::now(),
                }),
            ))
            .map(|o| o.kind.as_str())
        };
        assert_eq!(changed("event.updated"), Some("event.updated"));
        assert_eq!(changed("event.cancelled"), Some("event.cancelled"));
        assert_eq!(changed("event.renamed"), None);
        let waiting = EventEnvelope::caused_by(
            CommandId::generate(),
            Event::WaitlistMoved(eventsys_messages::event::WaitlistMoved {
                event_id: EventId::generate(),
                offered: 1,
            }),
        );
        assert_eq!(Occurrence::of(&waiting), None);
    }
}
