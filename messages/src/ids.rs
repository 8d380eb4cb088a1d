//! Identifiers. Every resource id is a UUIDv7 (time-ordered, so it also sorts
//! by creation time); a user id is whatever the token's `sub` claim says.

use std::{borrow::Cow, fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{ObjectBuilder, RefOr, Schema, Type},
};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
        #[serde(transparent)]
        // What `canonical` reads back: the one written form.
        #[schema(pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
        pub struct $name(pub Uuid);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }

        impl $name {
            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = NotAnId;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                canonical(s).map(Self)
            }
        }
    };
}

/// Text that is not an id in its one written form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotAnId;

impl fmt::Display for NotAnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an id: ids are lowercase, hyphenated UUIDs")
    }
}

impl std::error::Error for NotAnId {}

/// An id in the one form ids are written in (lowercase and hyphenated, as
/// they are displayed), so that no two strings name the same resource:
/// `urn:uuid:`, braces, capitals and bare hex are refused.
fn canonical(s: &str) -> Result<Uuid, NotAnId> {
    let lowercase = s
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-');
    if s.len() != 36 || !lowercase {
        return Err(NotAnId);
    }
    Uuid::try_parse(s).map_err(|_| NotAnId)
}

uuid_id!(
    /// One command, from its acceptance by the API to its terminal status.
    /// A command's envelope uses the command id as its `message_id`.
    CommandId
);
uuid_id!(
    /// An event that people attend (not to be confused with a broker event).
    EventId
);
uuid_id!(
    /// One kind of ticket of an event, with its own price and quota.
    TicketTypeId
);
uuid_id!(
    /// An attendee's order of one or more tickets.
    OrderId
);
uuid_id!(
    /// One admission to one event.
    TicketId
);
uuid_id!(
    /// One message in a user's notification inbox.
    NotificationId
);
uuid_id!(
    /// An organizer's webhook endpoint.
    WebhookId
);

impl OrderId {
    /// The one registration of `user` at `event`: the same id however
    /// often they register.
    pub fn registration(event: EventId, user: &UserId) -> Self {
        Self(Uuid::new_v5(&event.0, user.as_str().as_bytes()))
    }
}

/// A user, as named by the `sub` claim of their token.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// The longest user id accepted, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Accepts a non-empty id of at most [`Self::MAX_LEN`] bytes without
    /// control characters.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok =
            !raw.is_empty() && raw.len() <= Self::MAX_LEN && !raw.chars().any(char::is_control);
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Described by hand: the derived schema would not carry the limits of
/// [`UserId::parse`]. The length is counted in bytes there, so `maxLength`
/// (in characters) is a bound every valid id meets, not the exact rule.
impl PartialSchema for UserId {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(Self::MAX_LEN))
            .description(Some(
                "A user, as named by the `sub` claim of their token: 1 to 128 bytes, \
                 no control characters.",
            ))
            .into()
    }
}

impl ToSchema for UserId {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("UserId")
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_json_as_plain_strings() {
        let id = OrderId::generate();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<OrderId>(&json).unwrap(), id);
    }

    #[test]
    fn user_ids_must_be_short_printable_and_non_empty() {
        assert!(UserId::parse("alice").is_some());
        assert!(UserId::parse("").is_none());
        assert!(UserId::parse("a\nb").is_none());
        assert!(UserId::parse(&"x".repeat(UserId::MAX_LEN + 1)).is_none());
    }

    proptest::proptest! {
        #[test]
        fn an_id_reads_back_in_its_written_form_and_no_other(
            bytes in proptest::prelude::any::<[u8; 16]>(),
            form in 0..4_usize,
        ) {
            let id = EventId(Uuid::from_bytes(bytes));
            let written = id.to_string();
            proptest::prop_assert_eq!(written.parse::<EventId>(), Ok(id));
            let alias = match form {
                0 => written.to_uppercase(),
                1 => format!("urn:uuid:{written}"),
                2 => format!("{{{written}}}"),
                _ => id.0.simple().to_string(),
            };
            if alias != written {
                proptest::prop_assert!(alias.parse::<EventId>().is_err(), "{alias}");
            }
        }

        #[test]
        fn no_text_names_an_id_it_does_not_spell(text in "\\PC{0,40}|[0-9a-fA-F-]{30,40}") {
            if let Ok(id) = text.parse::<TicketId>() {
                proptest::prop_assert_eq!(id.to_string(), text);
            }
        }
    }
}
