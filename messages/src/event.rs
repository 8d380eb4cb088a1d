//! Events: what happened, published by the workers on `eventsys.events`.
//!
//! An event caused by a command gets a message id derived from the command
//! id and the fact it states, so a worker that announces the same outcome
//! twice (after a redelivery) publishes the same message twice, and consumers
//! can tell.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    SCHEMA_VERSION, Timestamp,
    ids::{CommandId, EventId, NotificationId, OrderId, TicketId, UserId},
    spec::EventStatus,
    status::{CommandError, CommandResult, CommandStatus},
};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventEnvelope {
    pub message_id: Uuid,
    pub version: u16,
    pub occurred_at: Timestamp,
    #[serde(flatten)]
    pub event: Event,
}

impl EventEnvelope {
    /// An event caused by `command`; its id is a function of both.
    pub fn caused_by(command: CommandId, event: Event) -> Self {
        let fact = match &event {
            Event::CommandUpdated(u) => format!("command.updated:{}", u.status.as_str()),
            // One command may make several offers: each is its own fact.
            Event::WaitlistOffered(o) => format!("waitlist.offered:{}", o.order_id),
            other => other.kind().to_owned(),
        };
        Self {
            message_id: Uuid::new_v5(&command.0, fact.as_bytes()),
            version: SCHEMA_VERSION,
            occurred_at: Timestamp::now(),
            event,
        }
    }

    /// An event that no command caused; `key` must name the fact uniquely.
    pub fn keyed(key: Uuid, event: Event) -> Self {
        Self {
            message_id: Uuid::new_v5(&key, event.kind().as_bytes()),
            version: SCHEMA_VERSION,
            occurred_at: Timestamp::now(),
            event,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", content = "payload")]
pub enum Event {
    #[serde(rename = "command.updated")]
    CommandUpdated(CommandUpdated),
    #[serde(rename = "event.updated")]
    EventUpdated(EventUpdated),
    #[serde(rename = "ticket.sold")]
    TicketsSold(TicketsSold),
    #[serde(rename = "order.rejected")]
    OrderRejected(OrderRejected),
    /// An event's time or place changed, or it was cancelled: every holder
    /// is told.
    #[serde(rename = "event.changed")]
    EventChanged(EventChanged),
    /// A seat was offered to someone waiting: a hold made for them.
    #[serde(rename = "waitlist.offered")]
    WaitlistOffered(WaitlistOffered),
    /// The waiting list moved up: those waiting may read their new place.
    #[serde(rename = "waitlist.moved")]
    WaitlistMoved(WaitlistMoved),
    /// A hold runs out soon: its buyer is reminded to confirm it.
    #[serde(rename = "order.expiring")]
    OrderExpiring(OrderExpiring),
    /// A hold ran out, or an order or ticket was cancelled: seats are back.
    #[serde(rename = "order.released")]
    OrderReleased(OrderReleased),
    #[serde(rename = "ticket.checked_in")]
    TicketCheckedIn(TicketCheckedIn),
    #[serde(rename = "notification.created")]
    NotificationCreated(Notification),
}

impl Event {
    /// The event type, which is also its routing key.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CommandUpdated(_) => "command.updated",
            Self::EventUpdated(_) => "event.updated",
            Self::TicketsSold(_) => "ticket.sold",
            Self::OrderRejected(_) => "order.rejected",
            Self::OrderReleased(_) => "order.released",
            Self::EventChanged(_) => "event.changed",
            Self::OrderExpiring(_) => "order.expiring",
            Self::WaitlistOffered(_) => "waitlist.offered",
            Self::WaitlistMoved(_) => "waitlist.moved",
            Self::TicketCheckedIn(_) => "ticket.checked_in",
            Self::NotificationCreated(_) => "notification.created",
        }
    }
}

/// A command changed status. Goes to every connection of `user_id`; the
/// one shape of a command's state, which the API's command document
/// extends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CommandUpdated {
    pub command_id: CommandId,
    pub user_id: UserId,
    pub status: CommandStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<CommandResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CommandError>,
}

/// An event's availability or status changed. Goes to its subscribers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventUpdated {
    pub event_id: EventId,
    pub remaining: u32,
    pub status: EventStatus,
    /// The counts its organizer and door staff see live; left out for
    /// anyone else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
}

/// An event's counts, as its stats show them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Counts {
    pub sold: u32,
    pub held: u32,
    pub checked_in: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TicketsSold {
    pub order_id: OrderId,
    /// When the order was placed; the same however often the fact is announced.
    pub ordered_at: Timestamp,
    pub event_id: EventId,
    pub event_name: String,
    pub buyer_id: UserId,
    pub ticket_ids: Vec<TicketId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrderRejected {
    pub order_id: OrderId,
    pub ordered_at: Timestamp,
    pub event_id: EventId,
    pub event_name: String,
    pub buyer_id: UserId,
    pub reason: CommandError,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WaitlistOffered {
    pub order_id: OrderId,
    pub event_id: EventId,
    pub user_id: UserId,
    pub expires_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WaitlistMoved {
    pub event_id: EventId,
    /// Offers just made: everyone still waiting moved up this many places.
    pub offered: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrderExpiring {
    pub order_id: OrderId,
    pub event_id: EventId,
    pub buyer_id: UserId,
    pub quantity: u32,
    pub expires_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventChanged {
    pub event_id: EventId,
    /// `event.updated` or `event.cancelled`: the kind of the notifications.
    pub kind: String,
    /// What every holder is told.
    pub message: String,
    /// When it changed; the same however often the fact is announced.
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrderReleased {
    pub order_id: OrderId,
    pub event_id: EventId,
    pub buyer_id: UserId,
    /// `expired` or `cancelled`.
    pub status: crate::OrderStatus,
    /// The tickets cancelled, when only some of the order's were.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ticket_ids: Vec<TicketId>,
    pub seats: u32,
    /// When it happened; the same however often the fact is announced.
    pub at: Timestamp,
}

impl OrderReleased {
    /// What happened, as people and webhooks are told: `order.expired`,
    /// `order.cancelled`, or `ticket.cancelled` when only some of the
    /// order's tickets were.
    pub fn kind(&self) -> &'static str {
        match (self.status, self.ticket_ids.is_empty()) {
            (crate::OrderStatus::Expired, _) => "order.expired",
            (_, true) => "order.cancelled",
            (_, false) => "ticket.cancelled",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TicketCheckedIn {
    pub ticket_id: TicketId,
    pub event_id: EventId,
    pub holder_id: UserId,
    pub checked_in_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
}

/// An entry of `user_id`'s inbox: the one shape of a notification, as the
/// store keeps it, the API lists it, and `notification.created` (pushed to
/// the user's connections) carries it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    pub user_id: UserId,
    pub notification_id: NotificationId,
    pub kind: String,
    pub message: String,
    pub created_at: Timestamp,
    #[serde(default)]
    pub read: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<EventId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<TicketId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn updated(status: CommandStatus) -> Event {
        Event::CommandUpdated(CommandUpdated {
            command_id: CommandId::generate(),
            user_id: UserId::parse("u").unwrap(),
            status,
            result: None,
            error: None,
        })
    }

    #[test]
    fn announcing_the_same_outcome_twice_yields_the_same_message_id() {
        let cmd = CommandId::generate();
        let a = EventEnvelope::caused_by(cmd, updated(CommandStatus::Succeeded));
        let b = EventEnvelope::caused_by(cmd, updated(CommandStatus::Succeeded));
        let c = EventEnvelope::caused_by(cmd, updated(CommandStatus::Processing));
        assert_eq!(a.message_id, b.message_id);
        assert_ne!(a.message_id, c.message_id);
    }

    #[test]
    fn an_event_envelope_round_trips() {
        let env = EventEnvelope::caused_by(CommandId::generate(), updated(CommandStatus::Rejected));
        let json: serde_json::Value = serde_json::from_slice(&env.to_json()).unwrap();
        assert_eq!(json["type"], "command.updated");
        assert_eq!(json["payload"]["status"], "rejected");
        assert_eq!(serde_json::from_value::<EventEnvelope>(json).unwrap(), env);
    }
}
