//! How handling a delivery can go wrong, sorted by what the runner does next.
//! Store and broker errors keep their source, so the one place that logs
//! them (the runner) shows the whole chain.

use eventsys_bus::BusError;
use eventsys_messages::{CommandError, CommandId, UserId};
use eventsys_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    /// The store failed; transient trouble is retried, anything else means
    /// the message cannot be handled.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The broker failed: always worth another try (even an unroutable
    /// event: the topology may be declared by another process any moment).
    #[error("broker: {0}")]
    Bus(#[from] BusError),
    /// Something moved under our feet; trying again will see it settled.
    #[error("{0}")]
    Changing(String),
    /// The message can never be handled (malformed, never recorded, forged):
    /// it goes to the dead-letter queue and nothing else changes.
    #[error("poison message: {0}")]
    Poison(String),
    /// The recorded command cannot be carried out: it is marked `failed`
    /// and its message goes to the dead-letter queue.
    #[error("command {command} failed: {}", reason.message)]
    Failed {
        command: CommandId,
        issuer: UserId,
        reason: CommandError,
    },
}

impl WorkError {
    /// Retried with backoff, then handed back to the queue.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Store(err) => err.is_transient(),
            Self::Bus(_) | Self::Changing(_) => true,
            Self::Poison(_) | Self::Failed { .. } => false,
        }
    }
}
