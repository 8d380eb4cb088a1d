//! The wire contract that every part of eventsys shares.
//!
//! Commands travel from the API to the workers on `eventsys.commands`; events
//! travel from the workers to everyone else on `eventsys.events`. Both are
//! JSON envelopes with a `message_id`, a `type`, a schema `version` and an
//! `occurred_at`. This crate defines those envelopes, their payloads, the
//! identifiers they carry, the input limits both sides enforce, and the names
//! of the broker topology. It knows nothing about transports or storage.

pub mod command;
pub mod event;
pub mod failpoint;
pub mod ids;
pub mod report;
pub mod rules;
pub mod spec;
pub mod status;
pub mod topology;
pub mod trace;

pub use command::{
    Action, CheckIn, CommandEnvelope, CreateEvent, EventRef, JoinWaitlist, MarkNotificationRead,
    OrderRef, PlaceOrder, StaffMember, TicketRef, UpdateEvent,
};
pub use event::{Event, EventEnvelope, Notification};
pub use ids::{
    CommandId, EventId, NotificationId, OrderId, TicketId, TicketTypeId, UserId, WebhookId,
};
pub use spec::{
    DeliveryStatus, EventChanges, EventSpec, EventStatus, FieldError, OrderStatus, TicketStatus,
    TicketTypeChange, TicketTypeSpec, WaitStatus, WebhookType,
};
pub use status::{CommandError, CommandResult, CommandStatus, Reason};
pub use topology::WorkQueue;

/// The schema version written into every envelope this build produces.
///
/// Consumers accept any version up to this one; a newer version means the
/// message comes from a newer build and is dead-lettered rather than guessed at.
pub const SCHEMA_VERSION: u16 = 1;

/// Timestamps on the wire: RFC 3339, UTC.
pub type Timestamp = jiff::Timestamp;
