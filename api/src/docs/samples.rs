//! Every message and frame type, serialised by the very types that put
//! them on the wire, checked against the AsyncAPI document: each must be
//! there under its own name, with a schema its real JSON validates
//! against. The `match`es without a wildcard make a new variant fail to
//! compile here until it has a sample.

use eventsys_messages::{
    Action, CheckIn, CommandEnvelope, CommandError, CommandId, CommandResult, CommandStatus,
    CreateEvent, EventId, EventRef, EventSpec, EventStatus, JoinWaitlist, MarkNotificationRead,
    NotificationId, OrderId, OrderRef, OrderStatus, PlaceOrder, Reason, StaffMember, TicketId,
    TicketRef, TicketTypeId, Timestamp, UpdateEvent, UserId,
    event::{
        CommandUpdated, Counts, Event, EventChanged, EventEnvelope, EventUpdated, Notification,
        OrderExpiring, OrderRejected, OrderReleased, TicketCheckedIn, TicketsSold, WaitlistMoved,
        WaitlistOffered,
    },
    spec::EventChanges,
};
use serde_json::{Value, json};

use super::asyncapi;
use crate::{hub, line::Place, ws};

fn user() -> UserId {
    UserId::parse("alice").expect("a user id")
}

fn commands() -> Vec<Action> {
    let (event_id, order_id) = (EventId::generate(), OrderId::generate());
    let actions = vec![
        Action::CreateEvent(CreateEvent {
            event_id,
            spec: EventSpec::sample(100, &[60, 40]),
        }),
        Action::PlaceOrder(PlaceOrder {
            order_id,
            event_id,
            ticket_type_id: TicketTypeId::generate(),
            quantity: 2,
        }),
        Action::Register(PlaceOrder {
            order_id,
            event_id,
            ticket_type_id: TicketTypeId::generate(),
            quantity: 1,
        }),
        Action::ConfirmOrder(OrderRef { order_id }),
        Action::ExpireOrder(OrderRef { order_id }),
        Action::CancelOrder(OrderRef { order_id }),
        Action::CheckIn(CheckIn {
            event_id,
            ticket_id: TicketId::generate(),
            gate: Some("north".into()),
            scanned_at: Some(Timestamp::now()),
        }),
        Action::CancelTicket(TicketRef {
            ticket_id: TicketId::generate(),
        }),
        Action::MarkNotificationRead(MarkNotificationRead {
            notification_id: NotificationId::generate(),
        }),
        Action::UpdateEvent(UpdateEvent {
            event_id,
            changes: EventChanges {
                name: Some("RustConf 2030".into()),
                capacity: Some(120),
                new_ticket_types: EventSpec::sample(10, &[10]).ticket_types,
                ..EventChanges::default()
            },
        }),
        Action::PublishEvent(EventRef { event_id }),
        Action::CancelEvent(EventRef { event_id }),
        Action::EndEvent(EventRef { event_id }),
        Action::JoinWaitlist(JoinWaitlist {
            event_id,
            ticket_type_id: TicketTypeId::generate(),
        }),
        Action::GrantStaff(StaffMember {
            event_id,
            user_id: user(),
        }),
        Action::RevokeStaff(StaffMember {
            event_id,
            user_id: user(),
        }),
    ];
    for action in &actions {
        match action {
            Action::CreateEvent(_)
            | Action::PlaceOrder(_)
            | Action::Register(_)
            | Action::ConfirmOrder(_)
            | Action::ExpireOrder(_)
            | Action::CancelOrder(_)
            | Action::CheckIn(_)
            | Action::CancelTicket(_)
            | Action::MarkNotificationRead(_)
            | Action::UpdateEvent(_)
            | Action::PublishEvent(_)
            | Action::CancelEvent(_)
            | Action::EndEvent(_)
            | Action::JoinWaitlist(_)
            | Action::GrantStaff(_)
            | Action::RevokeStaff(_) => {}
        }
    }
    actions
}

fn command_updated() -> CommandUpdated {
    CommandUpdated {
        command_id: CommandId::generate(),
        user_id: user(),
        status: CommandStatus::Succeeded,
        result: Some(CommandResult {
            order_id: Some(OrderId::generate()),
            order_status: Some(OrderStatus::Confirmed),
            ticket_ids: vec![TicketId::generate()],
            ..CommandResult::default()
        }),
        error: None,
    }
}

fn event_updated() -> EventUpdated {
    EventUpdated {
        event_id: EventId::generate(),
        remaining: 98,
        status: EventStatus::Published,
        counts: Some(Counts {
            sold: 2,
            held: 0,
            checked_in: 1,
        }),
    }
}

fn notification() -> Notification {
    Notification {
        user_id: user(),
        notification_id: NotificationId::generate(),
        kind: "order.succeeded".into(),
        message: "Your 2 tickets for RustConf".into(),
        created_at: Timestamp::now(),
        read: false,
        event_id: Some(EventId::generate()),
        order_id: Some(OrderId::generate()),
        ticket_id: None,
    }
}

fn events() -> Vec<Event> {
    let (event_id, order_id, now) = (EventId::generate(), OrderId::generate(), Timestamp::now());
    let refused = CommandError::new(Reason::SoldOut, "sold out");
    let events = vec![
        Event::CommandUpdated(command_updated()),
        Event::CommandUpdated(CommandUpdated {
            status: CommandStatus::Rejected,
            result: None,
            error: Some(refused.clone()),
            ..command_updated()
        }),
        Event::EventUpdated(event_updated()),
        Event::TicketsSold(TicketsSold {
            order_id,
            ordered_at: now,
            event_id,
            event_name: "RustConf".into(),
            buyer_id: user(),
            ticket_ids: vec![TicketId::generate(), TicketId::generate()],
        }),
        Event::OrderRejected(OrderRejected {
            order_id,
            ordered_at: now,
            event_id,
            event_name: "RustConf".into(),
            buyer_id: user(),
            reason: refused,
        }),
        Event::EventChanged(EventChanged {
            event_id,
            kind: "event.cancelled".into(),
            message: "RustConf is cancelled".into(),
            at: now,
        }),
        Event::WaitlistOffered(WaitlistOffered {
            order_id,
            event_id,
            user_id: user(),
            expires_at: now,
        }),
        Event::WaitlistMoved(WaitlistMoved {
            event_id,
            offered: 1,
        }),
        Event::OrderExpiring(OrderExpiring {
            order_id,
            event_id,
            buyer_id: user(),
            quantity: 2,
            expires_at: now,
        }),
        Event::OrderReleased(OrderReleased {
            order_id,
            event_id,
            buyer_id: user(),
            status: OrderStatus::Cancelled,
            ticket_ids: vec![TicketId::generate()],
            seats: 1,
            at: now,
        }),
        Event::TicketCheckedIn(TicketCheckedIn {
            ticket_id: TicketId::generate(),
            event_id,
            holder_id: user(),
            checked_in_at: now,
            gate: Some("north".into()),
        }),
        Event::NotificationCreated(notification()),
    ];
    for event in &events {
        match event {
            Event::CommandUpdated(_)
            | Event::EventUpdated(_)
            | Event::TicketsSold(_)
            | Event::OrderRejected(_)
            | Event::EventChanged(_)
            | Event::WaitlistOffered(_)
            | Event::WaitlistMoved(_)
            | Event::OrderExpiring(_)
            | Event::OrderReleased(_)
            | Event::TicketCheckedIn(_)
            | Event::NotificationCreated(_) => {}
        }
    }
    events
}

/// Every frame the server pushes, and every answer to a client frame.
fn server_frames() -> Vec<Value> {
    let (updated, changed, note) = (command_updated(), event_updated(), notification());
    let moved = WaitlistMoved {
        event_id: EventId::generate(),
        offered: 2,
    };
    let place = Place {
        command_id: CommandId::generate(),
        event_id: EventId::generate(),
        position: 3,
    };
    let checked_in = TicketCheckedIn {
        ticket_id: TicketId::generate(),
        event_id: EventId::generate(),
        holder_id: user(),
        checked_in_at: Timestamp::now(),
        gate: Some("north".into()),
    };
    hub::every_frame(&updated, &note, &changed, &moved, &place, &checked_in)
        .into_iter()
        .chain(ws::every_reply())
        .collect()
}

fn client_frames() -> Vec<Value> {
    let event_id = EventId::generate();
    vec![
        json!({ "type": "subscribe", "event_id": event_id }),
        json!({ "type": "unsubscribe", "event_id": event_id }),
        json!({ "type": "ping" }),
    ]
}

/// Validates `sample` against message `name` of the document.
fn check(document: &Value, name: &str, sample: &Value) {
    let pointer = format!("/components/messages/{name}/payload");
    assert!(
        document.pointer(&pointer).is_some(),
        "the AsyncAPI document has no message {name}"
    );
    // The document itself is the root, so its `#/components/...`
    // references resolve as they do for any AsyncAPI reader.
    let mut root = document.clone();
    root["$ref"] = json!(format!("#{pointer}"));
    let validator = jsonschema::validator_for(&root).expect("the document's schemas compile");
    let errors: Vec<String> = validator
        .iter_errors(sample)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "a real {name} does not validate against its schema: {errors:?}\n{sample:#}"
    );
}

#[test]
fn every_message_and_frame_validates_against_its_schema() {
    let document = asyncapi::document();
    let mut checked = 0;
    for action in commands() {
        let kind = action.kind();
        let sample = serde_json::to_value(CommandEnvelope::new(user(), action))
            .expect("a command serialises");
        check(&document, &format!("command.{kind}"), &sample);
        checked += 1;
    }
    for event in events() {
        let kind = event.kind();
        let sample = serde_json::to_value(EventEnvelope::caused_by(CommandId::generate(), event))
            .expect("an event serialises");
        check(&document, &format!("event.{kind}"), &sample);
        checked += 1;
    }
    for frame in server_frames() {
        let kind = frame["type"]
            .as_str()
            .expect("a frame has a type")
            .to_owned();
        check(&document, &format!("frame.{kind}"), &frame);
        checked += 1;
    }
    for frame in client_frames() {
        let kind = frame["type"]
            .as_str()
            .expect("a frame has a type")
            .to_owned();
        check(&document, &format!("client.{kind}"), &frame);
        checked += 1;
    }
    assert_eq!(checked, 16 + 12 + 6 + 7 + 3);
}

#[test]
fn a_sample_that_breaks_its_schema_is_caught() {
    let document = asyncapi::document();
    let mut sample = serde_json::to_value(CommandEnvelope::new(
        user(),
        Action::PublishEvent(EventRef {
            event_id: EventId::generate(),
        }),
    ))
    .expect("a command serialises");
    sample["payload"]["event_id"] = json!(7);
    let root = {
        let mut root = document.clone();
        root["$ref"] = json!("#/components/messages/command.event.publish/payload");
        root
    };
    let validator = jsonschema::validator_for(&root).expect("the document's schemas compile");
    assert!(!validator.is_valid(&sample));
}

#[test]
fn every_webhook_body_validates_against_the_openapi_document() {
    let document: Value = serde_json::from_str(super::openapi_text()).expect("JSON");
    let mut root = document.clone();
    root["$ref"] = json!("#/components/schemas/WebhookPayload");
    let validator = jsonschema::validator_for(&root).expect("the document's schemas compile");
    let mut kinds = Vec::new();
    for event in events() {
        let fact = EventEnvelope::caused_by(CommandId::generate(), event);
        let Some(occurrence) = eventsys_webhooks::catalogue::Occurrence::of(&fact) else {
            continue;
        };
        let body: Value = serde_json::from_str(&occurrence.body()).expect("JSON");
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:?}\n{body:#}");
        assert!(
            document["webhooks"][occurrence.kind.as_str()].is_object(),
            "{} is not in the webhooks section",
            occurrence.kind.as_str()
        );
        kinds.push(occurrence.kind.as_str());
    }
    assert_eq!(kinds.len(), 5, "{kinds:?}");
}
