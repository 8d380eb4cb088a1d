//! What can go wrong when talking to a store, split the way callers act on it:
//! transient trouble is retried, anything else is a bug or bad data. Each
//! error keeps the adapter's own error as its source, so the edge that logs
//! it shows the whole chain.

/// The underlying error of an adapter (SDK, database, codec).
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached, was throttled, timed out, or lacks a
    /// table; trying again later may succeed.
    #[error("store unavailable: {context}")]
    Unavailable {
        context: String,
        #[source]
        source: Option<Cause>,
    },
    /// A page cursor that this store did not produce.
    #[error("invalid page cursor")]
    BadCursor,
    /// An item that does not decode into the record it should be.
    #[error("corrupt item: {context}")]
    Corrupt {
        context: String,
        #[source]
        source: Option<Cause>,
    },
    /// The store refused the request itself; retrying will not help.
    #[error("store rejected the request: {context}")]
    Rejected {
        context: String,
        #[source]
        source: Option<Cause>,
    },
}

impl StoreError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    pub fn unavailable(context: impl Into<String>) -> Self {
        Self::Unavailable {
            context: context.into(),
            source: None,
        }
    }

    pub fn corrupt(context: impl Into<String>) -> Self {
        Self::Corrupt {
            context: context.into(),
            source: None,
        }
    }

    pub fn rejected(context: impl Into<String>) -> Self {
        Self::Rejected {
            context: context.into(),
            source: None,
        }
    }

    /// The same error, caused by `source`.
    pub fn because(mut self, cause: impl Into<Cause>) -> Self {
        match &mut self {
            Self::Unavailable { source, .. }
            | Self::Corrupt { source, .. }
            | Self::Rejected { source, .. } => *source = Some(cause.into()),
            Self::BadCursor => {}
        }
        self
    }
}
