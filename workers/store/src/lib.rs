//! The storage port of eventsys and its adapters.
//!
//! Workers and the API see the store only through the repository traits in
//! [`ports`]. Each operation that changes state takes the [`Completion`] of
//! the command causing it and applies both in one atomic write, guarded by
//! the command still being unfinished: that is what makes every effect happen
//! exactly once however often a command is delivered. Capacity is likewise a
//! condition inside that write, never a read followed by a write.
//!
//! This crate is the port alone: traits, records and errors, no storage
//! technology. Each adapter is a crate of its own beside it
//! (`eventsys-store-dynamodb`, `eventsys-store-embedded`), so that nothing
//! that uses the port compiles a database client.

mod error;
mod flights;
pub mod inventory;
pub mod ports;
pub mod records;

pub use error::{Cause, StoreError};
pub use flights::SharedReads;
pub use inventory::{Inventory, TypeSlice};
pub use ports::{
    Begun, CheckInOutcome, CommandLog, EventStore, Finished, Joined, NotificationStore,
    OrderChange, OrderStore, PlaceOutcome, Recorded, Revised, StatusChange, Store, WebhookStore,
};
pub use records::*;

/// A fixed-width rendering of a timestamp, so that keys sort by time; every
/// adapter builds its time-ordered keys from it.
pub fn sortable(at: eventsys_messages::Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}
