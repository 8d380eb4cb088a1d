//! What happens on time by itself: a hold that was not confirmed runs out,
//! an event whose time is over ends. Scheduled, not noticed by readers:
//! [`run_scheduler`] looks every [`SWEEP_EVERY`] for what is due and issues
//! one system command each (`order.expire`, `event.end`), under an id
//! derived from what it is about, so that any number of schedulers (one
//! per ticketing worker) record it once. The workers carry them out like
//! any command; a command recorded but never published is the
//! re-publisher's business.

use std::time::Duration;

use eventsys_bus::{Exchange, Message};
use eventsys_messages::{
    Action, CommandEnvelope, CommandId, EventRef, OrderRef, Timestamp, UserId,
};
use eventsys_store::{CommandRecord, Recorded, StoreError};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{Deps, WorkError};

/// How often the scheduler looks for what is due: a hold ends, and an
/// event ends, within about this long after its time.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// What one sweep issues at most, of each kind.
const PER_SWEEP: u32 = 100;

/// Who issues the commands the system issues itself.
pub fn system_user() -> UserId {
    UserId::parse("system:eventsys").unwrap_or_else(|| unreachable!("a valid user id"))
}

/// Issues what is due every [`SWEEP_EVERY`], until `shutdown`.
pub async fn run_scheduler(deps: Deps, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(SWEEP_EVERY) => {}
        }
        let now = Timestamp::now();
        match deps.store.due_holds(now, PER_SWEEP).await {
            Ok(due) => {
                for order in due {
                    let action = Action::ExpireOrder(OrderRef {
                        order_id: order.order_id,
                    });
                    issue(&deps, order.order_id.0, action).await;
                }
            }
            Err(err) => tracing::warn!(error = %err, "cannot look for holds that ran out"),
        }
        match deps.store.due_endings(now, PER_SWEEP).await {
            Ok(due) => {
                for event in due {
                    let action = Action::EndEvent(EventRef {
                        event_id: event.event_id,
                    });
                    issue(&deps, event.event_id.0, action).await;
                }
            }
            Err(err) => tracing::warn!(error = %err, "cannot look for events that are over"),
        }
    }
}

/// Records and publishes `action` about `subject`, once whoever issues it.
async fn issue(deps: &Deps, subject: Uuid, action: Action) {
    let kind = action.kind();
    if let Err(err) = try_issue(deps, subject, action).await {
        tracing::warn!(%subject, kind, error = %err, "cannot issue yet");
    }
}

async fn try_issue(deps: &Deps, subject: Uuid, action: Action) -> Result<(), WorkError> {
    let id = CommandId(Uuid::new_v5(&subject, action.kind().as_bytes()));
    let envelope = CommandEnvelope::with_id(id, system_user(), action);
    match deps
        .store
        .record_command(&CommandRecord::accepted(&envelope), None)
        .await
    {
        Ok(Recorded::New) => {}
        // Issued before, by this or another scheduler.
        Ok(Recorded::Existing { .. }) | Err(StoreError::Rejected { .. }) => return Ok(()),
        Err(err) => return Err(err.into()),
    }
    deps.bus
        .publish(Exchange::Commands, &Message::command(&envelope, None))
        .await?;
    tracing::info!(%subject, kind = envelope.action.kind(), "issued");
    Ok(())
}
