//! The re-publisher. The API records a command as `accepted` and then
//! publishes it; if it dies in between (or the broker was lost and the
//! command could not be taken back), the command would wait forever. Every
//! API replica therefore sweeps commands that stayed `accepted` too long and
//! publishes them again, verbatim. That is safe because every effect is
//! exactly-once: a command published twice, by two replicas or because the
//! first copy was merely slow, changes nothing the second time.

use std::{sync::Arc, time::Duration};

use eventsys_bus::{Bus, Exchange, Message};
use eventsys_messages::{Timestamp, trace};
use eventsys_store::Store;
use tokio_util::sync::CancellationToken;

/// Commands re-published per sweep, at most.
const BATCH: u32 = 100;

pub async fn run_republisher(
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    after: Duration,
    shutdown: CancellationToken,
) {
    let every = (after / 2).max(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.cancelled() => return,
        }
        let before = Timestamp::now() - after;
        let stale = match store.stale_commands(before, BATCH).await {
            Ok(stale) => stale,
            Err(err) => {
                tracing::warn!(error = %err, "cannot look for stale commands");
                continue;
            }
        };
        for record in stale {
            let message = Message {
                routing_key: record.kind.clone(),
                message_id: record.command_id.to_string(),
                body: record.message.clone().into_bytes(),
                traceparent: Some(trace::new_traceparent()),
            };
            match bus.publish(Exchange::Commands, &message).await {
                Ok(()) => {
                    tracing::warn!(command = %record.command_id, "re-published a command that stayed accepted")
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot re-publish; trying again later");
                    break;
                }
            }
        }
    }
}
