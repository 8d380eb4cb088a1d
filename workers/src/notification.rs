//! The notification role: turns what happened into entries in people's
//! inboxes, and pushes each new entry live; also marks entries read.
//!
//! A notification's id is derived from the fact it reports, so the same
//! fact delivered twice fills one inbox entry.

use eventsys_bus::{Exchange, Message};
use eventsys_messages::{
    CommandEnvelope, CommandError, CommandResult, Event, EventEnvelope, MarkNotificationRead,
    NotificationId, Reason, Timestamp, event::EventChanged,
};
use eventsys_store::{Completion, Finished, NotificationRecord, PageRequest};

use crate::{
    Deps, WorkError,
    lifecycle::{Executed, Outcome, Work, end_without_effect},
};

pub(crate) async fn mark_read(
    deps: &Deps,
    command: &CommandEnvelope,
    read: &MarkNotificationRead,
) -> Result<Executed, WorkError> {
    let id = command.command_id();
    let marked = CommandResult {
        notification_id: Some(read.notification_id),
        ..CommandResult::default()
    };
    let done = Completion::succeeded(id, marked);
    match deps
        .store
        .mark_read(&command.issuer, read.notification_id, &done)
        .await?
    {
        Some(Finished::Now) => Ok(Executed::now(Outcome {
            completion: done,
            events: Vec::new(),
        })),
        Some(Finished::Already) => Ok(Executed::Already),
        None => {
            let reason = CommandError::new(Reason::NotFound, "no such notification");
            end_without_effect(deps, Completion::rejected(id, reason)).await
        }
    }
}

/// Holders told per batch when an event changes.
const FAN_OUT_PAGE: u32 = 500;

/// Stores the notification a fact calls for, if any, and pushes it; a
/// change of an event is told to every holder.
pub(crate) async fn on_event(
    deps: &Deps,
    work: Work<'_>,
    envelope: &EventEnvelope,
) -> Result<(), WorkError> {
    if let Event::EventChanged(changed) = &envelope.event {
        return tell_holders(deps, work, envelope.message_id, changed).await;
    }
    let Some(notification) = notification_for(envelope) else {
        return Ok(());
    };
    if !deps
        .gather
        .notify(&deps.store, notification.clone())
        .await?
    {
        tracing::debug!(notification = %notification.notification_id, "already in the inbox");
    }
    // Pushed even when it was stored before: the earlier push may not have
    // happened. Clients see the same notification id twice at worst.
    let created = EventEnvelope::keyed(
        notification.notification_id.0,
        Event::NotificationCreated(notification),
    );
    let message = Message::event(&created, Some(work.traceparent.to_owned()));
    deps.bus.publish(Exchange::Events, &message).await?;
    Ok(())
}

/// Tells every holder of the event's tickets, a page of holders at a
/// time, in batched writes; handled again (a redelivery), it stores only
/// what is missing and pushes only that.
async fn tell_holders(
    deps: &Deps,
    work: Work<'_>,
    fact: uuid::Uuid,
    changed: &EventChanged,
) -> Result<(), WorkError> {
    let mut page = PageRequest {
        limit: FAN_OUT_PAGE,
        after: None,
    };
    let mut told = 0usize;
    loop {
        let holders = deps.store.holders(changed.event_id, &page).await?;
        let batch: Vec<NotificationRecord> = holders
            .items
            .iter()
            .map(|holder| NotificationRecord {
                user_id: holder.clone(),
                notification_id: notification_id(
                    uuid::Uuid::new_v5(&fact, holder.as_str().as_bytes()),
                    changed.at,
                ),
                kind: changed.kind.clone(),
                message: changed.message.clone(),
                created_at: changed.at,
                read: false,
                event_id: Some(changed.event_id),
                order_id: None,
                ticket_id: None,
            })
            .collect();
        let added = deps.store.add_notifications(&batch).await?;
        told += added.len();
        for notification in batch
            .into_iter()
            .filter(|n| added.contains(&n.notification_id))
        {
            let created = EventEnvelope::keyed(
                notification.notification_id.0,
                Event::NotificationCreated(notification),
            );
            let message = Message::event(&created, Some(work.traceparent.to_owned()));
            deps.bus.publish(Exchange::Events, &message).await?;
        }
        match holders.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    tracing::info!(event = %changed.event_id, kind = %changed.kind, told, "holders told");
    Ok(())
}

/// The inbox entry a fact calls for.
fn notification_for(envelope: &EventEnvelope) -> Option<NotificationRecord> {
    // The fact's own time, not the envelope's: a fact announced again must
    // make the very same notification.
    let at = match &envelope.event {
        Event::TicketsSold(sold) => sold.ordered_at,
        Event::OrderRejected(rejected) => rejected.ordered_at,
        Event::TicketCheckedIn(admitted) => admitted.checked_in_at,
        Event::OrderReleased(released) => released.at,
        Event::OrderExpiring(expiring) => expiring.expires_at,
        Event::WaitlistOffered(offered) => offered.expires_at,
        _ => return None,
    };
    let base = |user_id, kind: &str, message: String| NotificationRecord {
        user_id,
        notification_id: notification_id(envelope.message_id, at),
        kind: kind.to_owned(),
        message,
        created_at: at,
        read: false,
        event_id: None,
        order_id: None,
        ticket_id: None,
    };
    match &envelope.event {
        Event::TicketsSold(sold) => {
            let count = sold.ticket_ids.len();
            let tickets = if count == 1 {
                "1 ticket".to_owned()
            } else {
                format!("{count} tickets")
            };
            Some(NotificationRecord {
                event_id: Some(sold.event_id),
                order_id: Some(sold.order_id),
                ..base(
                    sold.buyer_id.clone(),
                    "order.confirmed",
                    format!(
                        "Your order of {tickets} for “{}” is confirmed.",
                        sold.event_name
                    ),
                )
            })
        }
        Event::OrderRejected(rejected) => Some(NotificationRecord {
            event_id: Some(rejected.event_id),
            order_id: Some(rejected.order_id),
            ..base(
                rejected.buyer_id.clone(),
                "order.rejected",
                format!(
                    "Your order for {} could not be completed: {}.",
                    if rejected.event_name.is_empty() {
                        "the event".to_owned()
                    } else {
                        format!("“{}”", rejected.event_name)
                    },
                    rejected.reason.message
                ),
            )
        }),
        Event::OrderReleased(released) => {
            let kind = released.kind();
            let message = match kind {
                "order.expired" => {
                    "Your hold ran out before it was paid; its seats are back on sale."
                }
                "order.cancelled" => "Your order was cancelled.",
                _ => "Your ticket was cancelled.",
            }
            .to_owned();
            Some(NotificationRecord {
                event_id: Some(released.event_id),
                order_id: Some(released.order_id),
                ticket_id: released.ticket_ids.first().copied(),
                ..base(released.buyer_id.clone(), kind, message)
            })
        }
        Event::WaitlistOffered(offered) => Some(NotificationRecord {
            event_id: Some(offered.event_id),
            order_id: Some(offered.order_id),
            ..base(
                offered.user_id.clone(),
                "waitlist.offer",
                format!(
                    "A seat you waited for is yours until {}: confirm it to get your ticket.",
                    offered.expires_at
                ),
            )
        }),
        Event::OrderExpiring(expiring) => Some(NotificationRecord {
            event_id: Some(expiring.event_id),
            order_id: Some(expiring.order_id),
            ..base(
                expiring.buyer_id.clone(),
                "order.expiring",
                format!(
                    "Your hold on {} ends at {}: confirm it before then.",
                    if expiring.quantity == 1 {
                        "1 ticket".to_owned()
                    } else {
                        format!("{} tickets", expiring.quantity)
                    },
                    expiring.expires_at
                ),
            )
        }),
        Event::TicketCheckedIn(admitted) => Some(NotificationRecord {
            event_id: Some(admitted.event_id),
            ticket_id: Some(admitted.ticket_id),
            ..base(
                admitted.holder_id.clone(),
                "ticket.checked_in",
                format!(
                    "Welcome! Your ticket was checked in at {}.",
                    admitted.checked_in_at
                ),
            )
        }),
        _ => None,
    }
}

/// A UUIDv7 with the fact's time and bits of the fact's id: the same fact
/// always gives the same notification id, and ids still sort by time.
fn notification_id(fact: uuid::Uuid, at: Timestamp) -> NotificationId {
    let millis = u64::try_from(at.as_millisecond()).unwrap_or(0);
    let source = fact.as_bytes();
    let mut tail = [0u8; 10];
    tail.copy_from_slice(&source[6..16]);
    NotificationId(uuid::Builder::from_unix_timestamp_millis(millis, &tail).into_uuid())
}

#[cfg(test)]
mod tests {
    use eventsys_messages::{CommandId, EventId, OrderId, TicketId, UserId, event::TicketsSold};

    use super::*;

    fn sold() -> EventEnvelope {
        EventEnvelope::caused_by(
            CommandId::generate(),
            Event::TicketsSold(TicketsSold {
                order_id: OrderId::generate(),
                ordered_at: Timestamp::now(),
                event_id: EventId::generate(),
                event_name: "RustConf".into(),
                buyer_id: UserId::parse("ann").unwrap(),
                ticket_ids: vec![TicketId::generate(), TicketId::generate()],
            }),
        )
    }

    #[test]
    fn the_same_fact_always_makes_the_same_notification() {
        let fact = sold();
        let a = notification_for(&fact).unwrap();
        // Announced again later: same message id, a later envelope time.
        let mut again = fact.clone();
        again.occurred_at += std::time::Duration::from_secs(5);
        let b = notification_for(&again).unwrap();
        assert_eq!(a.notification_id, b.notification_id);
        assert_ne!(
            a.notification_id,
            notification_for(&sold()).unwrap().notification_id
        );
        assert_eq!(a.user_id.as_str(), "ann");
        assert_eq!(
            a.message,
            "Your order of 2 tickets for “RustConf” is confirmed."
        );
        assert_eq!(a.notification_id.0.get_version_num(), 7);
    }
}
