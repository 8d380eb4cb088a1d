//! Where a command stands, and why it ended the way it did.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    Timestamp,
    ids::{EventId, NotificationId, OrderId, TicketId},
};

/// The life of a command: `accepted` by the API, `processing` in a worker,
/// then one terminal status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommandStatus {
    Accepted,
    Processing,
    /// The effect happened.
    Succeeded,
    /// A business rule said no (sold out, not on sale, already checked in...).
    Rejected,
    /// The command could not be carried out (malformed, or gave up after retries).
    Failed,
}

impl CommandStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Rejected | Self::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Accepted,
            Self::Processing,
            Self::Succeeded,
            Self::Rejected,
            Self::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

/// Why a command was rejected or failed, as a stable machine code that the
/// workers decide, the store keeps, and the API and WebSocket report as is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The input breaks a rule of the contract.
    ValidationFailed,
    /// What the command is about does not exist (for its issuer).
    NotFound,
    /// The event is not on sale: a draft, or cancelled.
    NotOnSale,
    /// Fewer seats are left than the order asks for.
    SoldOut,
    /// The ticket was admitted before.
    AlreadyCheckedIn,
    /// The ticket was cancelled.
    TicketCancelled,
    /// The code is not a ticket of this event.
    InvalidTicketCode,
    /// The resource is not in a state that allows this (e.g. publishing a
    /// cancelled event).
    Conflict,
    /// A hold was confirmed too late.
    HoldExpired,
    /// The message could not be read (failed).
    Unprocessable,
    /// The message kept failing (failed).
    GaveUp,
    /// This build cannot carry the recorded command out (failed).
    InternalError,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ValidationFailed => "validation_failed",
            Self::NotFound => "not_found",
            Self::NotOnSale => "not_on_sale",
            Self::SoldOut => "sold_out",
            Self::AlreadyCheckedIn => "already_checked_in",
            Self::TicketCancelled => "ticket_cancelled",
            Self::InvalidTicketCode => "invalid_ticket_code",
            Self::Conflict => "conflict",
            Self::HoldExpired => "hold_expired",
            Self::Unprocessable => "unprocessable",
            Self::GaveUp => "gave_up",
            Self::InternalError => "internal_error",
        }
    }
}

/// Why a command was rejected or failed: a stable machine `code` and a
/// sentence for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CommandError {
    pub code: Reason,
    pub message: String,
}

impl CommandError {
    pub fn new(code: Reason, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// What a command produced: the ids of what it created or touched, and
/// when. Each command fills in the fields it has.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CommandResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<EventId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
    /// Where the order stands once the command is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_status: Option<crate::OrderStatus>,
    /// Until when a hold blocks its seats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ticket_ids: Vec<TicketId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<TicketId>,
    /// A check-in's time, or for `already_checked_in` the first one's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_in_at: Option<Timestamp>,
    /// The gate of that check-in, if it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_id: Option<NotificationId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_match_their_json_form() {
        for s in [
            CommandStatus::Accepted,
            CommandStatus::Processing,
            CommandStatus::Succeeded,
            CommandStatus::Rejected,
            CommandStatus::Failed,
        ] {
            let json = serde_json::to_value(s).unwrap();
            assert_eq!(json, s.as_str());
            assert_eq!(CommandStatus::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn reason_codes_match_their_json_form() {
        for r in [Reason::SoldOut, Reason::AlreadyCheckedIn, Reason::GaveUp] {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
    }
}
