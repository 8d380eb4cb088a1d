//! How handling a delivery can go wrong, sorted by what the runner does next.

use eventsys_bus::BusError;
use eventsys_messages::{CommandError, CommandId, UserId};
use eventsys_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    /// Store or broker trouble: retried with backoff, then handed back to
    /// the queue.
    #[error("transient: {0}")]
    Transient(String),
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
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

impl From<StoreError> for WorkError {
    fn from(err: StoreError) -> Self {
        if err.is_transient() {
            Self::Transient(err.to_string())
        } else {
            Self::Poison(err.to_string())
        }
    }
}

impl From<BusError> for WorkError {
    fn from(err: BusError) -> Self {
        // Even an unroutable event is worth retrying: the topology may be
        // declared by another process any moment.
        Self::Transient(err.to_string())
    }
}
