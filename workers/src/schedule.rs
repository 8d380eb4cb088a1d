//! What happens on time by itself: a hold's buyer is reminded before it
//! runs out, a hold that was not confirmed runs out, an event whose time is
//! over ends, and what is past its retention is forgotten. Scheduled, not noticed by readers:
//! [`run_scheduler`] looks every [`SWEEP_EVERY`] for what is due and issues
//! one system command each (`order.expire`, `event.end`), under an id
//! derived from what it is about, so that any number of schedulers (one
//! per ticketing worker) record it once. The workers carry them out like
//! any command; a command recorded but never published is the
//! re-publisher's business.

use std::{collections::HashSet, time::Duration};

use eventsys_bus::{Exchange, Message};
use eventsys_messages::{
    Action, CommandEnvelope, CommandId, Event, EventEnvelope, EventRef, OrderId, OrderRef,
    Timestamp, UserId, event::OrderExpiring,
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
/// How often what is past its retention is forgotten, and how much at once.
const FORGET_EVERY: Duration = Duration::from_secs(60);
const FORGET_AT_ONCE: u32 = 1_000;

/// Who issues the commands the system issues itself.
pub fn system_user() -> UserId {
    UserId::parse("system:eventsys").unwrap_or_else(|| unreachable!("a valid user id"))
}

/// A hold's buyer is reminded this long before it runs out (or, for a
/// short hold, when a quarter of it is left).
pub const REMIND_AHEAD: Duration = Duration::from_secs(120);

/// Issues what is due every [`SWEEP_EVERY`], until `shutdown`.
pub async fn run_scheduler(deps: Deps, shutdown: CancellationToken) {
    let mut reminded: HashSet<OrderId> = HashSet::new();
    let mut forgotten_at = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(SWEEP_EVERY) => {}
        }
        let now = Timestamp::now();
        if forgotten_at.elapsed() >= FORGET_EVERY {
            forgotten_at = tokio::time::Instant::now();
            match deps.store.forget_expired(now, FORGET_AT_ONCE).await {
                Ok(0) => {}
                Ok(gone) => tracing::info!(gone, "forgot what is past its retention"),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot forget what is past its retention")
                }
            }
            match deps
                .bus
                .forget_expired_dead_letters(now, FORGET_AT_ONCE)
                .await
            {
                Ok(0) => {}
                Ok(gone) => tracing::info!(gone, "forgot dead letters past their retention"),
                Err(err) => tracing::warn!(error = %err, "cannot forget old dead letters"),
            }
        }
        remind(&deps, now, &mut reminded).await;
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

/// Reminds the buyers of holds that run out soon, once per scheduler.
async fn remind(deps: &Deps, now: Timestamp, reminded: &mut HashSet<OrderId>) {
    let soon = match deps.store.due_holds(now + REMIND_AHEAD, PER_SWEEP).await {
        Ok(soon) => soon,
        Err(err) => {
            tracing::warn!(error = %err, "cannot look for holds that run out soon");
            return;
        }
    };
    reminded.retain(|id| soon.iter().any(|o| o.order_id == *id));
    for order in soon {
        let Some(expires_at) = order.expires_at else {
            continue;
        };
        if !reminder_due(order.created_at, expires_at, now) || reminded.contains(&order.order_id) {
            continue;
        }
        let fact = EventEnvelope::keyed(
            order.order_id.0,
            Event::OrderExpiring(OrderExpiring {
                order_id: order.order_id,
                event_id: order.event_id,
                buyer_id: order.buyer_id.clone(),
                quantity: order.quantity,
                expires_at,
            }),
        );
        match deps
            .bus
            .publish(Exchange::Events, &Message::event(&fact, None))
            .await
        {
            Ok(()) => {
                reminded.insert(order.order_id);
            }
            Err(err) => tracing::warn!(order = %order.order_id, error = %err, "cannot remind yet"),
        }
    }
}

/// Whether a hold from `created` to `expires` should be reminded of at
/// `now`: within [`REMIND_AHEAD`] of its end, or within its last quarter
/// for a short hold, but never fewer than two sweeps before it ends.
fn reminder_due(created: Timestamp, expires: Timestamp, now: Timestamp) -> bool {
    let left = expires.duration_since(now);
    let quarter = expires.duration_since(created) / 4;
    let ahead = jiff::SignedDuration::try_from(REMIND_AHEAD).unwrap_or_default();
    let floor = jiff::SignedDuration::try_from(2 * SWEEP_EVERY).unwrap_or_default();
    left.is_positive() && left <= quarter.max(floor).min(ahead)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_900_000_000 + seconds).unwrap()
    }

    #[test]
    fn a_long_hold_is_reminded_two_minutes_before_it_ends() {
        let (created, expires) = (at(0), at(900));
        assert!(!reminder_due(created, expires, at(700)));
        assert!(reminder_due(created, expires, at(781)));
        assert!(reminder_due(created, expires, at(899)));
        assert!(!reminder_due(created, expires, at(900)), "over is over");
    }

    #[test]
    fn a_short_hold_is_reminded_in_its_last_quarter_or_two_sweeps() {
        assert!(!reminder_due(at(0), at(60), at(40)));
        assert!(reminder_due(at(0), at(60), at(46)));
        assert!(
            reminder_due(at(0), at(4), at(2)),
            "never fewer than two sweeps"
        );
    }
}
