//! Turning records into DynamoDB items and back, and page positions into
//! opaque strings.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Serialize, de::DeserializeOwned};
use serde_dynamo::aws_sdk_dynamodb_1 as dynamo;

use eventsys_store::StoreError;

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn to_item<T: Serialize>(record: &T) -> Result<Item, StoreError> {
    dynamo::to_item(record).map_err(|e| StoreError::rejected("cannot encode an item").because(e))
}

pub(super) fn to_value<T: Serialize>(value: &T) -> Result<AttributeValue, StoreError> {
    dynamo::to_attribute_value(value)
        .map_err(|e| StoreError::rejected("cannot encode a value").because(e))
}

pub(super) fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    dynamo::from_item(item).map_err(|e| StoreError::corrupt("an item does not decode").because(e))
}

pub(super) fn number(item: &Item, name: &str) -> Result<u32, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(raw)) => raw
            .parse()
            .map_err(|_| StoreError::corrupt(format!("{name} is not a count: {raw}"))),
        _ => Err(StoreError::corrupt(format!("{name} is missing"))),
    }
}

pub(super) fn string<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(raw)) => Ok(raw),
        _ => Err(StoreError::corrupt(format!("{name} is missing"))),
    }
}

/// A page position (a `LastEvaluatedKey` of string attributes) as a string.
pub(super) fn encode_position(key: &Item) -> Result<String, StoreError> {
    let plain: HashMap<&str, &str> = key
        .iter()
        .map(|(k, v)| match v {
            AttributeValue::S(s) => Ok((k.as_str(), s.as_str())),
            _ => Err(StoreError::corrupt(format!(
                "key attribute {k} is not a string"
            ))),
        })
        .collect::<Result<_, _>>()?;
    serde_json::to_string(&plain).map_err(|e| StoreError::corrupt("a page position").because(e))
}

pub(super) fn decode_position(raw: &str) -> Result<Item, StoreError> {
    let plain: HashMap<String, String> =
        serde_json::from_str(raw).map_err(|_| StoreError::BadCursor)?;
    Ok(plain.into_iter().map(|(k, v)| (k, s(v))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_timestamps_sort_by_time() {
        use eventsys_messages::Timestamp;
        use eventsys_store::sortable;
        let a: Timestamp = "2030-01-01T10:00:00Z".parse().unwrap();
        let b: Timestamp = "2030-01-01T10:00:00.5Z".parse().unwrap();
        assert!(sortable(a) < sortable(b));
        assert_eq!(sortable(a).len(), sortable(b).len());
    }

    #[test]
    fn positions_round_trip_and_garbage_is_a_bad_cursor() {
        let key: Item = [("user_id".to_owned(), s("u")), ("sk".to_owned(), s("x#1"))].into();
        let raw = encode_position(&key).unwrap();
        assert_eq!(decode_position(&raw).unwrap(), key);
        assert!(matches!(
            decode_position("nope"),
            Err(StoreError::BadCursor)
        ));
    }
}
