//! The API's description of itself: the OpenAPI document, built from the
//! handlers' annotations and the types they read and write (so it cannot
//! describe an API that is not there), and the `/docs` page that renders
//! it from inside the binary, with nothing fetched from elsewhere.

pub mod asyncapi;
pub mod deliveries;
pub mod postman;
#[cfg(test)]
mod samples;

use std::sync::OnceLock;

use axum::{
    http::header,
    response::{IntoResponse, Response},
};
use utoipa::{
    Modify, OpenApi,
    openapi::{
        ContentBuilder, HeaderBuilder, ObjectBuilder, Ref, RefOr,
        response::{Response as Answer, ResponseBuilder},
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

use crate::routes::{
    commands, doors, events, health, notifications, orders, staff, tickets, waitlist, webhooks,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "eventsys",
        description = "Event ticketing: organizers publish events, attendees register or buy \
            tickets, door staff check them in. Every write is a command: it is answered \
            `202 Accepted` with a command document at once, and its outcome arrives on the \
            WebSocket `/v1/ws` (or at `GET /v1/commands/{command_id}`). Errors are RFC 9457 \
            problem documents with a stable `code`.",
    ),
    paths(
        events::create,
        events::list,
        events::get,
        events::update,
        events::add_ticket_type,
        events::update_ticket_type,
        events::publish,
        events::cancel,
        events::verification_key,
        orders::place,
        orders::register,
        orders::get,
        orders::confirm,
        orders::cancel,
        tickets::get,
        tickets::cancel,
        tickets::qr,
        tickets::mine,
        doors::check_in,
        doors::batch,
        doors::stats,
        staff::grant,
        staff::list,
        staff::revoke,
        waitlist::join,
        waitlist::mine,
        notifications::mine,
        notifications::mark_read,
        webhooks::add,
        webhooks::list,
        webhooks::remove,
        webhooks::rotate_secret,
        webhooks::deliveries,
        webhooks::replay,
        commands::get,
        crate::ws::connect,
        health::live,
        health::ready,
        health::metrics,
        crate::web::dev_token,
        openapi_json,
        page,
    ),
    // Answers shared by many operations refer to these by name.
    components(schemas(crate::views::CommandAccepted<'static>, crate::views::CommandView<'static>, crate::problem::ProblemDocument, eventsys_webhooks::catalogue::Occurrence)),
    modifiers(&BearerTokens),
    tags(
        (name = "events", description = "Events and their ticket types, as their organizer runs them"),
        (name = "orders", description = "Buying and registering, holds and their confirmation"),
        (name = "tickets", description = "Tickets, their signed codes and QR codes"),
        (name = "doors", description = "Check-in at the door, one scan or a batch of offline scans"),
        (name = "staff", description = "Who may check tickets in at an event's doors"),
        (name = "waitlist", description = "The waiting list of a sold-out event"),
        (name = "notifications", description = "A user's inbox"),
        (name = "webhooks", description = "An organizer's endpoints, signed deliveries to them, their log and replay"),
        (name = "commands", description = "What became of a write"),
        (name = "realtime", description = "The WebSocket"),
        (name = "operations", description = "Probes, metrics and this documentation"),
    ),
)]
struct Document;

/// Tokens are JWTs (HS256) carrying `sub` and `roles`; see `eventsys token`.
struct BearerTokens;

impl Modify for BearerTokens {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Answers by status, as operations that share them list them.
pub(crate) type Answers = std::collections::BTreeMap<String, RefOr<Answer>>;

/// One documented answer: a body of the named schema as `media_type`,
/// and the header it carries, if any, with its schema.
pub(crate) fn answer(
    description: &str,
    media_type: &str,
    schema: &str,
    header: Option<(&str, &str, ObjectBuilder)>,
) -> RefOr<Answer> {
    let body = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(schema)))
        .build();
    let mut answer = ResponseBuilder::new()
        .description(description)
        .content(media_type, body);
    if let Some((name, about, schema)) = header {
        let header = HeaderBuilder::new()
            .schema(schema)
            .description(Some(about))
            .build();
        answer = answer.header(name, header);
    }
    answer.build().into()
}

/// The OpenAPI 3.1 document of this API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    Document::openapi()
}

/// The document as it is served and committed: pretty JSON, one trailing
/// newline.
pub fn openapi_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let text = openapi()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        let mut text = deliveries::added_to(&text);
        text.push('\n');
        text
    })
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)),
)]
pub async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], openapi_text()).into_response()
}

/// A page that renders this document; it needs nothing but this server.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "operations",
    security(()),
    responses((status = 200, description = "The documentation page", content_type = "text/html", body = String)),
)]
pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'",
            ),
        ],
        include_str!("docs/page.html"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use eventsys_messages::WebhookType;
    use eventsys_messages::spec::{
        CAPACITY_MAX, DESCRIPTION_MAX, HOLD_SECONDS_MAX, MAX_PER_ORDER_LIMIT, NAME_MAX,
        PRICE_MINOR_MAX, TICKET_TYPES_MAX, VENUE_MAX,
    };
    use serde_json::Value;

    /// The schema attributes can only hold literals: each must be the limit
    /// the API enforces.
    #[test]
    fn the_documented_limits_are_the_enforced_ones() {
        let document: Value =
            serde_json::from_str(super::openapi_text()).expect("the document is JSON");
        let limits: [(&str, &str, &str, u64); 19] = [
            ("NewEvent", "name", "maxLength", NAME_MAX as u64),
            ("NewEvent", "venue", "maxLength", VENUE_MAX as u64),
            (
                "NewEvent",
                "description",
                "maxLength",
                DESCRIPTION_MAX as u64,
            ),
            ("NewEvent", "capacity", "maximum", CAPACITY_MAX.into()),
            (
                "NewEvent",
                "ticket_types",
                "maxItems",
                TICKET_TYPES_MAX as u64,
            ),
            (
                "NewEvent",
                "max_per_order",
                "maximum",
                MAX_PER_ORDER_LIMIT.into(),
            ),
            (
                "NewEvent",
                "hold_seconds",
                "maximum",
                HOLD_SECONDS_MAX.into(),
            ),
            ("NewTicketType", "name", "maxLength", NAME_MAX as u64),
            ("NewTicketType", "price_minor", "maximum", PRICE_MINOR_MAX),
            ("NewTicketType", "quota", "maximum", CAPACITY_MAX.into()),
            ("EventPatch", "name", "maxLength", NAME_MAX as u64),
            (
                "EventPatch",
                "description",
                "maxLength",
                DESCRIPTION_MAX as u64,
            ),
            ("EventPatch", "capacity", "maximum", CAPACITY_MAX.into()),
            (
                "EventPatch",
                "hold_seconds",
                "maximum",
                HOLD_SECONDS_MAX.into(),
            ),
            ("TicketTypePatch", "price_minor", "maximum", PRICE_MINOR_MAX),
            (
                "NewOrder",
                "quantity",
                "maximum",
                MAX_PER_ORDER_LIMIT.into(),
            ),
            (
                "NewWebhook",
                "types",
                "maxItems",
                WebhookType::ALL.len() as u64,
            ),
            (
                "NewWebhook",
                "url",
                "maxLength",
                eventsys_webhooks::destination::URL_MAX as u64,
            ),
            (
                "DevSignIn",
                "roles",
                "maxItems",
                crate::web::DEV_ROLES_MAX as u64,
            ),
        ];
        for (schema, field, keyword, limit) in limits {
            let documented =
                &document["components"]["schemas"][schema]["properties"][field][keyword];
            assert_eq!(
                documented.as_u64(),
                Some(limit),
                "{schema}.{field} {keyword}"
            );
        }
    }
}
