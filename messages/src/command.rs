//! Commands: what a user asked for, as the API accepted it.
//!
//! A command's envelope is published on `eventsys.commands` with its `type`
//! as the routing key, and its `message_id` is the command id, so that any
//! redelivery or verbatim republication names the same command.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    SCHEMA_VERSION, Timestamp,
    ids::{CommandId, EventId, NotificationId, OrderId, TicketId, TicketTypeId, UserId},
    spec::EventSpec,
    topology::WorkQueue,
};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CommandEnvelope {
    pub message_id: CommandId,
    pub version: u16,
    pub occurred_at: Timestamp,
    /// Who asked; the owner of the command and of whatever it creates.
    pub issuer: UserId,
    #[serde(flatten)]
    pub action: Action,
}

impl CommandEnvelope {
    pub fn new(issuer: UserId, action: Action) -> Self {
        Self::with_id(CommandId::generate(), issuer, action)
    }

    /// A command whose id the issuer chose: the system names a command it
    /// may issue from several places (a hold's expiry) after what it is
    /// about, so that it is recorded once.
    pub fn with_id(id: CommandId, issuer: UserId, action: Action) -> Self {
        Self {
            message_id: id,
            version: SCHEMA_VERSION,
            occurred_at: Timestamp::now(),
            issuer,
            action,
        }
    }

    pub fn command_id(&self) -> CommandId {
        self.message_id
    }

    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings, numbers and maps with string keys always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Everything a user can ask eventsys to do. The serde name is the command
/// type and the routing key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", content = "payload")]
pub enum Action {
    #[serde(rename = "event.create")]
    CreateEvent(CreateEvent),
    #[serde(rename = "order.place")]
    PlaceOrder(PlaceOrder),
    /// A free registration (RSVP): one order of one ticket, at most one per
    /// user and event (its order id is derived from both).
    #[serde(rename = "registration.create")]
    Register(PlaceOrder),
    #[serde(rename = "order.confirm")]
    ConfirmOrder(OrderRef),
    /// Issued by the system when a hold runs out.
    #[serde(rename = "order.expire")]
    ExpireOrder(OrderRef),
    #[serde(rename = "order.cancel")]
    CancelOrder(OrderRef),
    #[serde(rename = "ticket.checkin")]
    CheckIn(CheckIn),
    #[serde(rename = "ticket.cancel")]
    CancelTicket(TicketRef),
    #[serde(rename = "notification.read")]
    MarkNotificationRead(MarkNotificationRead),
    #[serde(rename = "event.update")]
    UpdateEvent(UpdateEvent),
    #[serde(rename = "event.publish")]
    PublishEvent(EventRef),
    #[serde(rename = "event.cancel")]
    CancelEvent(EventRef),
    /// Issued by the system when an event's time is over.
    #[serde(rename = "event.end")]
    EndEvent(EventRef),
    /// Join the waiting list of a sold-out event (or ticket type).
    #[serde(rename = "waitlist.join")]
    JoinWaitlist(JoinWaitlist),
    #[serde(rename = "event.grant_staff")]
    GrantStaff(StaffMember),
    #[serde(rename = "event.revoke_staff")]
    RevokeStaff(StaffMember),
}

impl Action {
    /// The command type, which is also its routing key.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CreateEvent(_) => "event.create",
            Self::PlaceOrder(_) => "order.place",
            Self::Register(_) => "registration.create",
            Self::ConfirmOrder(_) => "order.confirm",
            Self::ExpireOrder(_) => "order.expire",
            Self::CancelOrder(_) => "order.cancel",
            Self::CheckIn(_) => "ticket.checkin",
            Self::CancelTicket(_) => "ticket.cancel",
            Self::MarkNotificationRead(_) => "notification.read",
            Self::UpdateEvent(_) => "event.update",
            Self::PublishEvent(_) => "event.publish",
            Self::CancelEvent(_) => "event.cancel",
            Self::EndEvent(_) => "event.end",
            Self::JoinWaitlist(_) => "waitlist.join",
            Self::GrantStaff(_) => "event.grant_staff",
            Self::RevokeStaff(_) => "event.revoke_staff",
        }
    }

    /// The ids of what this command creates or acts on, by name, as the
    /// 202 answer and the command document report them.
    pub fn resources(&self) -> std::collections::BTreeMap<String, String> {
        let named = |pairs: &[(&str, String)]| {
            pairs
                .iter()
                .map(|(name, id)| ((*name).to_owned(), id.clone()))
                .collect()
        };
        match self {
            Self::CreateEvent(c) => named(&[("event_id", c.event_id.to_string())]),
            Self::PublishEvent(e) | Self::CancelEvent(e) | Self::EndEvent(e) => {
                named(&[("event_id", e.event_id.to_string())])
            }
            Self::UpdateEvent(u) => match u.changes.new_ticket_types.as_slice() {
                [added] => named(&[
                    ("event_id", u.event_id.to_string()),
                    ("ticket_type_id", added.ticket_type_id.to_string()),
                ]),
                _ => named(&[("event_id", u.event_id.to_string())]),
            },
            Self::PlaceOrder(p) | Self::Register(p) => {
                named(&[("order_id", p.order_id.to_string())])
            }
            Self::ConfirmOrder(o) | Self::ExpireOrder(o) | Self::CancelOrder(o) => {
                named(&[("order_id", o.order_id.to_string())])
            }
            Self::CheckIn(c) => named(&[("ticket_id", c.ticket_id.to_string())]),
            Self::CancelTicket(t) => named(&[("ticket_id", t.ticket_id.to_string())]),
            Self::MarkNotificationRead(m) => {
                named(&[("notification_id", m.notification_id.to_string())])
            }
            Self::JoinWaitlist(j) => named(&[("event_id", j.event_id.to_string())]),
            Self::GrantStaff(s) | Self::RevokeStaff(s) => named(&[
                ("event_id", s.event_id.to_string()),
                ("user_id", s.user_id.to_string()),
            ]),
        }
    }

    /// The worker role that carries this command out.
    pub fn queue(&self) -> WorkQueue {
        match self {
            Self::CreateEvent(_)
            | Self::UpdateEvent(_)
            | Self::PublishEvent(_)
            | Self::CancelEvent(_)
            | Self::EndEvent(_)
            | Self::Register(_)
            | Self::JoinWaitlist(_)
            | Self::GrantStaff(_)
            | Self::RevokeStaff(_) => WorkQueue::Registration,
            Self::PlaceOrder(_)
            | Self::ConfirmOrder(_)
            | Self::ExpireOrder(_)
            | Self::CancelOrder(_)
            | Self::CheckIn(_)
            | Self::CancelTicket(_) => WorkQueue::Ticketing,
            Self::MarkNotificationRead(_) => WorkQueue::Notification,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateEvent {
    pub event_id: EventId,
    pub spec: EventSpec,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlaceOrder {
    pub order_id: OrderId,
    pub event_id: EventId,
    pub ticket_type_id: TicketTypeId,
    pub quantity: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckIn {
    pub event_id: EventId,
    pub ticket_id: TicketId,
    /// The door that scanned, if it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    /// When an offline door scanned; `None`: now, online. The earliest
    /// scan of a ticket wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scanned_at: Option<Timestamp>,
}

/// An organizer's changes to an event and its ticket types.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UpdateEvent {
    pub event_id: EventId,
    pub changes: crate::spec::EventChanges,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JoinWaitlist {
    pub event_id: EventId,
    pub ticket_type_id: TicketTypeId,
}

/// A command about one order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrderRef {
    pub order_id: OrderId,
}

/// A command about one ticket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TicketRef {
    pub ticket_id: TicketId,
}

/// A command about one whole event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventRef {
    pub event_id: EventId,
}

/// Door staff of one event: granted by its organizer, for that event only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StaffMember {
    pub event_id: EventId,
    pub user_id: UserId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MarkNotificationRead {
    pub notification_id: NotificationId,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Action> {
        vec![
            Action::PlaceOrder(PlaceOrder {
                order_id: OrderId::generate(),
                event_id: EventId::generate(),
                ticket_type_id: TicketTypeId::generate(),
                quantity: 2,
            }),
            Action::CheckIn(CheckIn {
                event_id: EventId::generate(),
                ticket_id: TicketId::generate(),
                gate: Some("north".into()),
                scanned_at: None,
            }),
            Action::MarkNotificationRead(MarkNotificationRead {
                notification_id: NotificationId::generate(),
            }),
            Action::PublishEvent(EventRef {
                event_id: EventId::generate(),
            }),
            Action::CancelEvent(EventRef {
                event_id: EventId::generate(),
            }),
            Action::GrantStaff(StaffMember {
                event_id: EventId::generate(),
                user_id: UserId::parse("sam").unwrap(),
            }),
            Action::RevokeStaff(StaffMember {
                event_id: EventId::generate(),
                user_id: UserId::parse("sam").unwrap(),
            }),
        ]
    }

    #[test]
    fn an_envelope_is_flat_json_with_type_and_payload() {
        for action in samples() {
            let env = CommandEnvelope::new(UserId::parse("u1").unwrap(), action);
            let json: serde_json::Value = serde_json::from_slice(&env.to_json()).unwrap();
            assert_eq!(json["type"], env.action.kind());
            assert_eq!(json["message_id"], env.message_id.to_string());
            assert_eq!(json["version"], SCHEMA_VERSION);
            assert!(json["payload"].is_object());
            let back: CommandEnvelope = serde_json::from_value(json).unwrap();
            assert_eq!(back, env);
        }
    }

    #[test]
    fn every_command_is_routed_to_the_queue_that_handles_it() {
        for action in samples() {
            assert!(
                action
                    .queue()
                    .command_patterns()
                    .iter()
                    .any(|p| crate::topology::matches(p, action.kind())),
                "{} is not bound to {:?}",
                action.kind(),
                action.queue()
            );
        }
    }

    #[test]
    fn an_unknown_type_is_an_error_not_a_guess() {
        let json = r#"{"message_id":"0190e5c2-7d0e-7000-8000-000000000000","version":1,
            "occurred_at":"2026-01-01T00:00:00Z","issuer":"u","type":"order.steal","payload":{}}"#;
        assert!(serde_json::from_str::<CommandEnvelope>(json).is_err());
    }
}
