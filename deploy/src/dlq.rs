//! `eventsys dlq list|replay`: what the workers gave up on, and sending it
//! back once its cause is fixed.
//!
//! Listing holds every dead letter unsettled while it reads them, then lets
//! go, so they all stay where they were. Replaying publishes a dead letter
//! again (a `failed` command is first reopened, which is safe: a failure
//! never wrote an effect) and removes it; what cannot be replayed (garbage,
//! messages never recorded) stays.

use std::time::Duration;

use anyhow::Context;
use eventsys_bus::{Delivery, Exchange, Message};
use eventsys_messages::{CommandEnvelope, EventEnvelope, WorkQueue};

use crate::{
    config::{DlqAction, Settings},
    roles,
};

/// Dead letters read per queue, at most, in one invocation.
const AT_MOST: u16 = 1000;

pub async fn dlq(settings: &Settings, action: DlqAction) -> anyhow::Result<()> {
    let (role, replay) = match action {
        DlqAction::List { role } => (role, false),
        DlqAction::Replay { role } => (role, true),
    };
    let backends = roles::backends(settings, "eventsys-dlq")
        .await
        .context("(in embedded mode, stop `eventsys serve` first: it holds the data directory)")?;
    let queues: Vec<WorkQueue> = match role {
        Some(role) => vec![roles::queue_of(role)],
        None => WorkQueue::ALL.to_vec(),
    };
    for queue in queues {
        let mut dead = backends.bus.consume_dead_letters(queue, AT_MOST).await?;
        let (mut kept, mut replayed): (Vec<Delivery>, usize) = (Vec::new(), 0);
        while let Ok(Some(delivery)) =
            tokio::time::timeout(Duration::from_millis(500), dead.next()).await
        {
            let body = &delivery.message.body;
            let command = serde_json::from_slice::<CommandEnvelope>(body).ok();
            let record = match &command {
                Some(command) => backends.store.command(command.command_id()).await?,
                None => None,
            };
            let status = record.as_ref().map_or("unrecorded", |r| r.status.as_str());
            let event = serde_json::from_slice::<EventEnvelope>(body).ok();
            let is_event = event.is_some();
            // Dead-lettering may rewrite the routing key: the type is in the body.
            let kind = match (&command, &event) {
                (Some(c), _) => c.action.kind().to_owned(),
                (_, Some(e)) => e.event.kind().to_owned(),
                _ => delivery.message.routing_key.clone(),
            };
            if !replay {
                println!(
                    "{}\t{}\t{}\t{}",
                    queue.dead_letter_queue(),
                    delivery.message.message_id,
                    kind,
                    if is_event { "event" } else { status }
                );
                kept.push(delivery);
                continue;
            }
            // Only the command exactly as recorded, or an event, goes back.
            let exchange = match (&record, is_event) {
                (Some(r), _) if r.is_recorded_as(body) => Exchange::Commands,
                (_, true) => Exchange::Events,
                _ => {
                    kept.push(delivery);
                    continue;
                }
            };
            if let Some(record) = &record {
                backends.store.reopen_command(record.command_id).await?;
            }
            let message = Message {
                routing_key: kind,
                ..delivery.message.clone()
            };
            backends.bus.publish(exchange, &message).await?;
            delivery.ack().await?;
            replayed += 1;
        }
        dead.stop().await;
        let left = kept.len();
        // Unsettled, they return to the dead-letter queue.
        drop(kept);
        dead.close().await;
        if replay {
            println!(
                "{}: {replayed} replayed, {left} left",
                queue.dead_letter_queue()
            );
        }
    }
    backends.bus.close().await;
    Ok(())
}
