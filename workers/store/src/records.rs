//! The records the store keeps, as every adapter reads and writes them.

use std::collections::BTreeMap;

use eventsys_messages::event::CommandUpdated;
use eventsys_messages::{
    CommandEnvelope, CommandError, CommandId, CommandResult, CommandStatus, EventId, EventSpec,
    OrderId, TicketId, TicketTypeId, Timestamp, UserId,
};
pub use eventsys_messages::{DeliveryStatus, OrderStatus, TicketStatus, WaitStatus};
use serde::{Deserialize, Serialize};

use crate::inventory::Inventory;

/// A command as the API accepted it, and how it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandRecord {
    pub command_id: CommandId,
    /// The command type, e.g. `order.place`.
    #[serde(rename = "type")]
    pub kind: String,
    pub issuer: UserId,
    pub status: CommandStatus,
    pub submitted_at: Timestamp,
    pub updated_at: Timestamp,
    /// Ids of the resources the command creates, known at acceptance
    /// (`order_id`, `event_id`, ...), returned with the 202.
    #[serde(default)]
    pub resources: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<CommandResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CommandError>,
    /// The envelope exactly as published, so it can be published again.
    pub message: String,
}

impl CommandRecord {
    /// A command as the API accepts it: recorded exactly as it will be
    /// published, with the ids of what it creates.
    pub fn accepted(envelope: &CommandEnvelope) -> Self {
        Self {
            command_id: envelope.command_id(),
            kind: envelope.action.kind().to_owned(),
            issuer: envelope.issuer.clone(),
            status: CommandStatus::Accepted,
            submitted_at: envelope.occurred_at,
            updated_at: envelope.occurred_at,
            resources: envelope.action.resources(),
            result: None,
            error: None,
            message: String::from_utf8_lossy(&envelope.to_json()).into_owned(),
        }
    }

    /// Whether an effect may still be written for this command.
    pub fn is_unfinished(&self) -> bool {
        matches!(
            self.status,
            CommandStatus::Accepted | CommandStatus::Processing
        )
    }

    /// Where the command stands, in the shape every channel shows it.
    pub fn state(&self) -> CommandUpdated {
        CommandUpdated {
            command_id: self.command_id,
            user_id: self.issuer.clone(),
            status: self.status,
            result: self.result.clone(),
            error: self.error.clone(),
        }
    }

    /// Whether `body` is this command exactly as it was recorded: only
    /// then may a delivery act as, fail, or replay this command.
    pub fn is_recorded_as(&self, body: &[u8]) -> bool {
        self.message.as_bytes() == body
    }

    /// Applies a completion (the caller checked [`Self::is_unfinished`]).
    pub fn complete(&mut self, done: &Completion) {
        self.status = done.status;
        self.updated_at = done.at;
        if done.result.is_some() {
            self.result = done.result.clone();
        }
        if done.error.is_some() {
            self.error = done.error.clone();
        }
    }
}

/// How long a finished command is kept (its status answers
/// `GET /v1/commands/{id}` until then); the store forgets it afterwards.
pub const COMMAND_RETENTION: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// An `Idempotency-Key` claimed by a user for one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyClaim {
    /// A digest of the user and their key; the key itself is never stored.
    pub key_hash: String,
    /// A digest of the request, to tell a replay from a reuse of the key.
    pub fingerprint: String,
    pub expires_at: Timestamp,
}

/// How a command ends: written together with its effect, or alone.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    pub command_id: CommandId,
    pub status: CommandStatus,
    pub result: Option<CommandResult>,
    pub error: Option<CommandError>,
    pub at: Timestamp,
}

impl From<&CommandRecord> for Completion {
    /// How a finished command ended, as recorded.
    fn from(record: &CommandRecord) -> Self {
        Self {
            command_id: record.command_id,
            status: record.status,
            result: record.result.clone(),
            error: record.error.clone(),
            at: record.updated_at,
        }
    }
}

impl Completion {
    /// When the command this completion ends may be forgotten.
    pub fn forget_at(&self) -> Timestamp {
        self.at + COMMAND_RETENTION
    }

    /// Where the command stands once this completion is written.
    pub fn state(&self, issuer: &UserId) -> CommandUpdated {
        CommandUpdated {
            command_id: self.command_id,
            user_id: issuer.clone(),
            status: self.status,
            result: self.result.clone(),
            error: self.error.clone(),
        }
    }

    pub fn succeeded(command_id: CommandId, result: CommandResult) -> Self {
        Self {
            command_id,
            status: CommandStatus::Succeeded,
            result: Some(result),
            error: None,
            at: Timestamp::now(),
        }
    }

    pub fn rejected(command_id: CommandId, error: CommandError) -> Self {
        Self::ended(command_id, CommandStatus::Rejected, error)
    }

    pub fn failed(command_id: CommandId, error: CommandError) -> Self {
        Self::ended(command_id, CommandStatus::Failed, error)
    }

    fn ended(command_id: CommandId, status: CommandStatus, error: CommandError) -> Self {
        Self {
            command_id,
            status,
            result: None,
            error: Some(error),
            at: Timestamp::now(),
        }
    }
}

/// An event as its organizer described it, plus what the system tracks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub event_id: EventId,
    pub organizer_id: UserId,
    #[serde(flatten)]
    pub spec: EventSpec,
    /// Door staff granted for this event, and since when.
    #[serde(default)]
    pub staff: BTreeMap<UserId, Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// How an event's counters move when it is revised: seats, and each
/// type's quota, added (or, negative, taken away); a new type appears with
/// its whole quota.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revision {
    pub capacity: i64,
    pub quotas: BTreeMap<TicketTypeId, i64>,
}

impl Revision {
    /// What turns the counters of `before` into those of `after`.
    pub fn between(before: &EventSpec, after: &EventSpec) -> Self {
        let quota = |spec: &EventSpec, tt: TicketTypeId| {
            spec.ticket_type(tt).map_or(0, |t| i64::from(t.quota))
        };
        Self {
            capacity: i64::from(after.capacity) - i64::from(before.capacity),
            quotas: after
                .ticket_types
                .iter()
                .map(|t| {
                    (
                        t.ticket_type_id,
                        quota(after, t.ticket_type_id) - quota(before, t.ticket_type_id),
                    )
                })
                .filter(|(_, delta)| *delta != 0)
                .collect(),
        }
    }
}

/// An event with its current inventory, as readers see it.
#[derive(Clone, Debug, PartialEq)]
pub struct EventSnapshot {
    pub event: EventRecord,
    pub inventory: Inventory,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderRecord {
    pub order_id: OrderId,
    pub event_id: EventId,
    pub buyer_id: UserId,
    pub ticket_type_id: TicketTypeId,
    pub quantity: u32,
    pub status: OrderStatus,
    pub created_at: Timestamp,
    /// Until when a `pending_payment` order holds its seats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(default)]
    pub ticket_ids: Vec<TicketId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection: Option<CommandError>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TicketRecord {
    pub ticket_id: TicketId,
    pub event_id: EventId,
    pub order_id: OrderId,
    pub holder_id: UserId,
    pub ticket_type_id: TicketTypeId,
    pub status: TicketStatus,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_in_at: Option<Timestamp>,
    /// The gate of the winning scan, if it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_in_gate: Option<String>,
}

/// One scan of a ticket at a door, as a check-in writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan {
    pub ticket_id: TicketId,
    pub event_id: EventId,
    /// The ticket's type, whose checked-in count the scan may raise.
    pub ticket_type_id: TicketTypeId,
    pub at: Timestamp,
    pub gate: Option<String>,
    /// Scanned by a door that was offline: it may replace a later scan.
    /// An online scan is stamped when handled, and handling order is not
    /// scanning order, so it only ever admits a valid ticket.
    pub offline: bool,
}

/// A confirmed order and its tickets, to be written at once with the seats
/// they take.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    pub order: OrderRecord,
    pub tickets: Vec<TicketRecord>,
}

/// An inbox entry is stored in its public shape.
pub type NotificationRecord = eventsys_messages::Notification;

/// One place in an event's waiting list: one per user and event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WaitEntry {
    pub event_id: EventId,
    pub user_id: UserId,
    pub ticket_type_id: TicketTypeId,
    /// The list's order: first come, first offered.
    pub joined_at: Timestamp,
    pub status: WaitStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<OrderId>,
}

impl WaitEntry {
    /// Its place in the list: by time of joining, then by user.
    pub fn position_key(&self) -> String {
        format!("{}#{}", crate::sortable(self.joined_at), self.user_id)
    }

    /// The hold this entry is offered: one seat of its type until
    /// `now + hold`, under an id derived from the entry, so that making
    /// the offer twice makes one.
    pub fn offer(&self, hold: std::time::Duration, now: Timestamp) -> OrderRecord {
        let name = format!("offer#{}", self.position_key());
        OrderRecord {
            order_id: OrderId(uuid::Uuid::new_v5(&self.event_id.0, name.as_bytes())),
            event_id: self.event_id,
            buyer_id: self.user_id.clone(),
            ticket_type_id: self.ticket_type_id,
            quantity: 1,
            status: OrderStatus::PendingPayment,
            created_at: now,
            expires_at: Some(now + hold),
            ticket_ids: Vec::new(),
            rejection: None,
        }
    }
}

/// Which page of a list to read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    /// A position returned as [`Page::next`] by the same adapter.
    pub after: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<String>,
}

/// An organizer's webhook endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookRecord {
    pub webhook_id: eventsys_messages::WebhookId,
    pub organizer_id: UserId,
    pub url: String,
    /// Only this event's occurrences; `None`: every event of the organizer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<EventId>,
    /// The occurrence types it receives.
    pub types: Vec<String>,
    /// The secrets that sign its deliveries, newest first; a replaced one
    /// signs too until its `until`, so that receivers can rotate.
    pub secrets: Vec<SigningSecret>,
    pub created_at: Timestamp,
    /// The sequence number its next delivery gets; the first is 1.
    pub next_sequence: u64,
    /// Moves on each time something is owed to it (a delivery, a replay),
    /// so that a dispatcher settles it only if nothing came in meanwhile.
    #[serde(default)]
    pub mark: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SigningSecret {
    /// `whsec_` and the key in base64.
    pub secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
}

/// One occurrence owed, or sent, to one endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub webhook_id: eventsys_messages::WebhookId,
    /// Its place in the endpoint's order; given by the store when owed.
    pub sequence: u64,
    /// The occurrence (its fact's message id): owed once per endpoint.
    pub occurrence_id: uuid::Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    /// The body sent, exactly.
    pub body: String,
    pub created_at: Timestamp,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// When to try next, while pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<Timestamp>,
    /// The status the endpoint last answered with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_response: Option<u16>,
    /// Why the last attempt failed, when it got no answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// How often it was owed again on request.
    #[serde(default)]
    pub replays: u32,
    /// When it was last owed again on request: its retries run for a
    /// while from then (from `created_at` before any replay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed_at: Option<Timestamp>,
}

impl DeliveryRecord {
    /// A delivery of an occurrence, owed from `at`, not yet numbered.
    pub fn owed(
        webhook_id: eventsys_messages::WebhookId,
        occurrence_id: uuid::Uuid,
        kind: &str,
        body: String,
        at: Timestamp,
    ) -> Self {
        Self {
            webhook_id,
            sequence: 0,
            occurrence_id,
            kind: kind.to_owned(),
            body,
            created_at: at,
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: Some(at),
            last_attempt_at: None,
            last_response: None,
            last_error: None,
            replays: 0,
            replayed_at: None,
        }
    }

    /// Since when it has been owed: its retry window starts there.
    pub fn owed_since(&self) -> Timestamp {
        self.replayed_at.unwrap_or(self.created_at)
    }
}
