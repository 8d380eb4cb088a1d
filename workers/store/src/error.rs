//! What can go wrong when talking to a store, split the way callers act on it:
//! transient trouble is retried, anything else is a bug or bad data.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached, was throttled, timed out, or lacks a
    /// table; trying again later may succeed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A page cursor that this store did not produce.
    #[error("invalid page cursor")]
    BadCursor,
    /// An item that does not decode into the record it should be.
    #[error("corrupt item: {0}")]
    Corrupt(String),
    /// The store refused the request itself; retrying will not help.
    #[error("store rejected the request: {0}")]
    Rejected(String),
}

impl StoreError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}
