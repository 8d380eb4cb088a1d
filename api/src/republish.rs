//! The re-publisher. The API records a command as `accepted` and then
//! publishes it; if it dies in between (or the broker was lost and the
//! command could not be taken back), the command would wait forever. Every
//! API replica therefore sweeps commands that stayed `accepted` too long and
//! publishes them again, verbatim. That is safe because every effect is
//! exactly-once: a command published twice, by two replicas or because the
//! first copy was merely slow, changes nothing the second time.
//!
//! It must not become a retry storm when the system is merely slow: it
//! skips the commands this replica published and has not seen end (they
//! are in their queue), waits out the line ahead of a command before
//! calling it stale, and sends at most [`REPUBLISH_PER_SECOND`].

use std::{sync::Arc, time::Duration};

use eventsys_bus::{Bus, Exchange, Message};
use eventsys_messages::{Timestamp, trace};
use eventsys_store::Store;
use tokio_util::sync::CancellationToken;

use crate::hub::Hub;

/// Commands re-published per second, at most: a backed-up queue must not
/// be fed more of the work it is already slow with.
pub const REPUBLISH_PER_SECOND: u32 = 20;

pub async fn run_republisher(
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    hub: Arc<Hub>,
    after: Duration,
    shutdown: CancellationToken,
) {
    let every = (after / 2).max(Duration::from_secs(1));
    let batch = (REPUBLISH_PER_SECOND as f64 * every.as_secs_f64()) as u32;
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.cancelled() => return,
        }
        // A command merely queued behind a slow worker is not lost: wait
        // out the line ahead of it as well before sending it again.
        let before = Timestamp::now() - after - hub.backlog().longest_expected_wait();
        let stale = match store.stale_commands(before, batch).await {
            Ok(stale) => stale,
            Err(err) => {
                tracing::warn!(error = %err, "cannot look for stale commands");
                continue;
            }
        };
        for record in stale {
            // Published here with a confirm and not ended: it is in its queue.
            if hub.backlog().holds(record.command_id) {
                continue;
            }
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
