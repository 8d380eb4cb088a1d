//! The storage port of eventsys and its adapters.
//!
//! Workers and the API see the store only through the repository traits in
//! [`ports`]. Each operation that changes state takes the [`Completion`] of
//! the command causing it and applies both in one atomic write, guarded by
//! the command still being unfinished: that is what makes every effect happen
//! exactly once however often a command is delivered. Capacity is likewise a
//! condition inside that write, never a read followed by a write.
//!
//! Adapters: [`dynamodb`] (conditional writes and `TransactWriteItems`) and
//! [`embedded`] (redb, one file, serializable write transactions).

pub mod dynamodb;
pub mod embedded;
mod error;
pub mod inventory;
pub mod ports;
pub mod records;

pub use error::StoreError;
pub use inventory::{Inventory, Shard, TypeSlice};
pub use ports::{
    CheckInOutcome, CommandLog, EventStore, Finished, NotificationStore, OrderStore, PlaceOutcome,
    Recorded, Store,
};
pub use records::*;

/// A fixed-width rendering of a timestamp, so that keys sort by time.
pub(crate) fn sortable(at: eventsys_messages::Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}
