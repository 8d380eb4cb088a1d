//! Where a command stands, and why it ended the way it did.

use serde::{Deserialize, Serialize};

/// The life of a command: `accepted` by the API, `processing` in a worker,
/// then one terminal status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

/// Why a command was rejected or failed: a stable machine `code` and a
/// sentence for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandError {
    pub code: String,
    pub message: String,
}

impl CommandError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
        }
    }
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
}
