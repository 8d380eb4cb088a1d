//! The AsyncAPI 3.0 document of what travels outside HTTP: the commands
//! and events on the broker, and the WebSocket frames both ways. Built
//! from the same type descriptions the OpenAPI document uses, so a message
//! or frame type exists here exactly when it exists in the code.

use eventsys_messages::{
    CommandEnvelope, EventEnvelope,
    topology::{self, BROADCAST_PATTERNS, COMMANDS_EXCHANGE, EVENTS_EXCHANGE, WorkQueue},
};
use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use crate::{hub, ws};

#[derive(OpenApi)]
#[openapi(components(schemas(CommandEnvelope, EventEnvelope, hub::Frame<'static>, ws::ClientFrame, ws::Reply)))]
struct Shapes;

/// The kinds of message, each under its own family prefix in
/// `components.messages`.
const FAMILIES: [(&str, &str, &str); 5] = [
    (
        "command",
        "CommandEnvelope",
        "A command, as the API publishes it",
    ),
    (
        "event",
        "EventEnvelope",
        "What happened, as a worker publishes it",
    ),
    ("frame", "Frame", "A frame the server pushes"),
    // Answers to a client's own frames share the push channel.
    ("frame", "Reply", "The server's answer to a client frame"),
    ("client", "ClientFrame", "A frame a client sends"),
];

/// The document, as committed next to the OpenAPI one.
pub fn document() -> Value {
    let schemas = serde_json::to_value(Shapes::openapi().components)
        .map(|components| components["schemas"].clone())
        .unwrap_or_default();
    let mut messages = Map::new();
    for (family, shape, about) in FAMILIES {
        for kind in types_of(&schemas, &schemas[shape]) {
            messages.insert(format!("{family}.{kind}"), message(&kind, shape, about));
        }
    }
    let family = |prefix: &str, wanted: &dyn Fn(&str) -> bool| -> Value {
        Value::Object(
            messages
                .keys()
                .filter_map(|key| {
                    let kind = key.strip_prefix(prefix)?.strip_prefix('.')?;
                    wanted(kind).then(|| {
                        (
                            key.clone(),
                            json!({ "$ref": format!("#/components/messages/{key}") }),
                        )
                    })
                })
                .collect(),
        )
    };
    let mut channels = Map::new();
    let mut operations = Map::new();
    channels.insert(
        "commands".into(),
        exchange(
            COMMANDS_EXCHANGE,
            "Commands; the routing key is the command type.",
            family("command", &|_| true),
        ),
    );
    channels.insert(
        "events".into(),
        exchange(
            EVENTS_EXCHANGE,
            "What happened; the routing key is the event type.",
            family("event", &|_| true),
        ),
    );
    operations.insert(
        "publishCommand".into(),
        operation(
            "send",
            "commands",
            "The API publishes each accepted command, persistent, with a publisher confirm.",
        ),
    );
    operations.insert(
        "publishEvent".into(),
        operation("send", "events", "Workers announce what a command did."),
    );
    for queue in WorkQueue::ALL {
        let role = queue.role();
        let commands = family("command", &|kind| routed(queue.command_patterns(), kind));
        let events = family("event", &|kind| routed(queue.event_patterns(), kind));
        let mut both = commands.as_object().cloned().unwrap_or_default();
        both.extend(events.as_object().cloned().unwrap_or_default());
        channels.insert(
            role.into(),
            json!({
                "address": queue.name(),
                "description": format!(
                    "The {role} workers' durable quorum queue; what they give up on goes to `{}`.",
                    queue.dead_letter_queue()
                ),
                "messages": both,
                "bindings": { "amqp": {
                    "is": "queue",
                    "queue": { "name": queue.name(), "durable": true, "exclusive": false, "autoDelete": false },
                }},
            }),
        );
        operations.insert(
            format!("consume{}", capitalised(role)),
            operation(
                "receive",
                role,
                "At least once; each effect happens exactly once.",
            ),
        );
    }
    channels.insert(
        "broadcast".into(),
        json!({
            "address": null,
            "description": "Each API replica's own exclusive queue on `eventsys.events`, relayed to its WebSocket clients.",
            "messages": family("event", &|kind| routed(BROADCAST_PATTERNS, kind)),
            "bindings": { "amqp": { "is": "queue", "queue": { "exclusive": true, "durable": false, "autoDelete": true } } },
        }),
    );
    operations.insert(
        "relayEvents".into(),
        operation(
            "receive",
            "broadcast",
            "An API replica relays these to the connections they concern.",
        ),
    );
    let mut live = family("frame", &|_| true)
        .as_object()
        .cloned()
        .unwrap_or_default();
    live.extend(
        family("client", &|_| true)
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    channels.insert(
        "live".into(),
        json!({
            "address": "/v1/ws",
            "servers": [{ "$ref": "#/servers/api" }],
            "description": "One JSON object per text frame, each with its `type`. Authenticate with the bearer token (header, or `access_token` query parameter for browsers).",
            "messages": live,
        }),
    );
    operations.insert("push".into(), with_messages(operation("send", "live", "The server pushes status changes, notifications and the counts of subscribed events."), "live", &messages, "frame"));
    operations.insert(
        "listen".into(),
        with_messages(
            operation(
                "receive",
                "live",
                "The server takes subscriptions and pings.",
            ),
            "live",
            &messages,
            "client",
        ),
    );
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "eventsys messages",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Commands and events on RabbitMQ, and the WebSocket frames of `/v1/ws`. \
                Broker messages are persistent JSON carrying `message_id`, `type`, schema `version` and \
                `occurred_at`, with the W3C `traceparent` in the AMQP headers.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "broker": { "host": "localhost:5672", "protocol": "amqp", "description": "RabbitMQ" },
            "api": { "host": "localhost:8080", "protocol": "ws", "description": "The API's WebSocket" },
        },
        "channels": channels,
        "operations": operations,
        "components": { "messages": messages, "schemas": schemas },
    })
}

/// One message: the family's shape, with its `type` pinned to `kind`.
fn message(kind: &str, shape: &str, about: &str) -> Value {
    json!({
        "name": kind,
        "title": kind,
        "summary": about,
        "payload": { "allOf": [
            { "$ref": format!("#/components/schemas/{shape}") },
            { "type": "object", "required": ["type"], "properties": { "type": { "const": kind } } },
        ]},
    })
}

fn exchange(name: &str, description: &str, messages: Value) -> Value {
    json!({
        "address": name,
        "description": description,
        "messages": messages,
        "bindings": { "amqp": { "is": "routingKey", "exchange": { "name": name, "type": "topic", "durable": true, "autoDelete": false } } },
    })
}

fn operation(action: &str, channel: &str, description: &str) -> Value {
    json!({ "action": action, "channel": { "$ref": format!("#/channels/{channel}") }, "description": description })
}

fn with_messages(
    mut operation: Value,
    channel: &str,
    messages: &Map<String, Value>,
    prefix: &str,
) -> Value {
    operation["messages"] = messages
        .keys()
        .filter(|key| key.starts_with(&format!("{prefix}.")))
        .map(|key| json!({ "$ref": format!("#/channels/{channel}/messages/{key}") }))
        .collect();
    operation
}

/// The values a schema allows for its `type` property, through references
/// and combinations: the message types of a tagged enum.
fn types_of(schemas: &Value, schema: &Value) -> Vec<String> {
    let mut found = Vec::new();
    collect_types(schemas, schema, 0, &mut found);
    found.dedup();
    found
}

fn collect_types(schemas: &Value, schema: &Value, depth: usize, found: &mut Vec<String>) {
    if depth > 8 {
        return;
    }
    if let Some(name) = schema["$ref"].as_str().and_then(|r| r.rsplit('/').next()) {
        collect_types(schemas, &schemas[name], depth + 1, found);
        return;
    }
    let tag = &schema["properties"]["type"];
    for value in tag["enum"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(tag.get("const"))
    {
        if let Some(kind) = value.as_str() {
            found.push(kind.to_owned());
        }
    }
    for combination in ["allOf", "oneOf", "anyOf"] {
        for part in schema[combination].as_array().into_iter().flatten() {
            collect_types(schemas, part, depth + 1, found);
        }
    }
}

/// Whether any of a queue's binding patterns takes `key`.
fn routed(patterns: &[&str], key: &str) -> bool {
    patterns
        .iter()
        .any(|pattern| topology::matches(pattern, key))
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
