//! The `webhooks` section of the OpenAPI document: what the platform
//! sends to organizers' endpoints, one entry per type, with the Standard
//! Webhooks headers and the body's schema. utoipa builds no such section,
//! so it is built here from the same types and added to the document's
//! text.

use std::collections::BTreeMap;

use eventsys_messages::WebhookType;
use utoipa::openapi::{
    ContentBuilder, Ref, Required,
    path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem},
    request_body::RequestBodyBuilder,
    response::ResponseBuilder,
    schema::{ObjectBuilder, Type},
};

/// The headers every delivery carries.
const HEADERS: [(&str, &str); 5] = [
    (
        "webhook-id",
        "`msg_` and the occurrence's id: the same on every retry and replay, so that a receiver handles an occurrence once",
    ),
    (
        "webhook-timestamp",
        "Seconds since the epoch when this attempt was signed; refuse one more than five minutes from your clock",
    ),
    (
        "webhook-signature",
        "`v1,` and the base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}` under the endpoint's secret (the key after `whsec_`, base64-decoded); while a secret rotates, one such signature per secret, space separated",
    ),
    (
        "eventsys-sequence",
        "The delivery's place in the endpoint's order, from 1: deliveries arrive in this order",
    ),
    (
        "eventsys-attempt",
        "1 for the first attempt; more for a retry or a replay",
    ),
];

/// What each type is about.
fn about(kind: WebhookType) -> &'static str {
    match kind {
        WebhookType::OrderSucceeded => "An order was confirmed, with its tickets",
        WebhookType::OrderRejected => "An order was refused, with the reason",
        WebhookType::OrderCancelled => "An order was cancelled; its seats went back on sale",
        WebhookType::OrderExpired => "A hold ran out unconfirmed; its seats went back on sale",
        WebhookType::TicketCancelled => "Some tickets of an order were cancelled",
        WebhookType::TicketCheckedIn => "A ticket was checked in at a door",
        WebhookType::EventUpdated => "An event's details changed",
        WebhookType::EventCancelled => "An event was cancelled",
    }
}

/// One entry per type an endpoint may choose.
pub fn section() -> BTreeMap<&'static str, PathItem> {
    WebhookType::ALL
        .into_iter()
        .map(|kind| (kind.as_str(), delivery(kind)))
        .collect()
}

fn delivery(kind: WebhookType) -> PathItem {
    let headers = HEADERS.map(|(name, about)| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::True)
            .description(Some(about))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build()
    });
    let body = RequestBodyBuilder::new()
        .required(Some(Required::True))
        .description(Some(format!(
            "`{{\"type\": \"{}\", \"timestamp\", \"data\"}}`",
            kind.as_str()
        )))
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("WebhookPayload")))
                .build(),
        )
        .build();
    let operation = OperationBuilder::new()
        .summary(Some(about(kind)))
        .description(Some(
            "POSTed to every endpoint of the event's organizer that chose this type. \
             Answer 2xx within 10 s; anything else is retried with exponential backoff \
             (from 5 s, doubling, up to 2 h apart) for 24 h, and later deliveries to the \
             endpoint wait meanwhile, so that they keep their order.",
        ))
        .operation_id(Some(format!("webhook_{}", kind.as_str().replace('.', "_"))))
        .tag("webhooks")
        .parameters(Some(headers))
        .request_body(Some(body))
        .response(
            "2XX",
            ResponseBuilder::new().description("Received; the delivery is done"),
        )
        .build();
    PathItem::new(HttpMethod::Post, operation)
}

/// `document` (pretty JSON of one object) with the section added at its
/// end, in the same layout.
pub fn added_to(document: &str) -> String {
    let section = serde_json::to_string_pretty(&section())
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
        .replace('\n', "\n  ");
    let open = document.trim_end().strip_suffix('}').unwrap_or(document);
    format!("{},\n  \"webhooks\": {section}\n}}", open.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_is_described_with_its_headers_and_body() {
        let document: serde_json::Value =
            serde_json::from_str(&added_to("{\n  \"openapi\": \"3.1.0\"\n}")).expect("JSON");
        assert_eq!(document["openapi"], "3.1.0");
        let section = document["webhooks"].as_object().expect("a section");
        assert_eq!(section.len(), WebhookType::ALL.len());
        let sale = &section["order.succeeded"]["post"];
        assert_eq!(sale["parameters"].as_array().map(Vec::len), Some(5));
        assert_eq!(
            sale["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/WebhookPayload"
        );
    }
}
