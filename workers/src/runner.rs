//! The consume loop of a worker role: takes deliveries from the role's
//! queue, hands each to the business rules, and settles it.
//!
//! | outcome | delivery |
//! |---|---|
//! | carried out, rejected, or found finished before | ack |
//! | transient trouble, still failing after retries | handed back to the queue |
//! | poison (garbage, forged, never recorded) | dead-lettered, nothing else changes |
//! | the recorded command cannot be carried out | command `failed`, dead-lettered |
//!
//! A delivery that has come back `DELIVERY_LIMIT - 1` times is given up on
//! before it is handled again, so that a message that crashes its worker
//! cannot do so forever.
//!
//! Each delivery is handled inside a span that continues the message's
//! trace and names its command, issuer and trace id on every log line.

use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use eventsys_bus::{Delivery, Message, Subscription};
use eventsys_messages::{
    CommandEnvelope, CommandError, CommandId, EventEnvelope, Reason, SCHEMA_VERSION, UserId,
    WorkQueue, report::Chain, topology::DELIVERY_LIMIT,
};
use eventsys_telemetry::{metrics, trace};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{Instrument, field::Empty};

use crate::{
    Deps, WorkError,
    heartbeat::Heartbeat,
    lifecycle::{self, Work},
    notification,
    retry::{RETRY_FOR, retry_transient},
    webhooks,
};

#[derive(Clone, Copy, Debug)]
pub struct WorkerOptions {
    /// Deliveries in flight at once per worker.
    pub prefetch: u16,
    /// How long shutdown waits for in-flight deliveries.
    pub drain_timeout: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            prefetch: 32,
            drain_timeout: Duration::from_secs(20),
        }
    }
}

/// How often an idle consumer says it is alive, and its queue is sampled.
const BEAT_EVERY: Duration = Duration::from_secs(5);

/// Consumes `queue` until `shutdown`; consumes again whenever the broker
/// goes away. On shutdown: stop taking deliveries, let those in flight
/// finish (up to the drain timeout), settle them, then let go. `heartbeat`
/// hears from the loop whenever it makes progress, and from no one when it
/// is stuck.
pub async fn run_worker(
    queue: WorkQueue,
    deps: Deps,
    options: WorkerOptions,
    heartbeat: Heartbeat,
    shutdown: CancellationToken,
) {
    metrics::consuming(queue.name());
    // Sampled beside the loop, not in it: a broker that is slow to answer
    // must not hold up the consumer it would report on.
    tokio::spawn(sample_depth(queue, deps.clone(), shutdown.clone()));
    let in_flight = TaskTracker::new();
    let mut beat = tokio::time::interval(BEAT_EVERY);
    let mut pause = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        let mut subscription = match deps.bus.consume(queue, options.prefetch).await {
            Ok(subscription) => subscription,
            Err(err) => {
                // Waiting for the broker is not being stuck: a restart would
                // not bring it back sooner, and readiness already says so.
                heartbeat.beat();
                metrics::broker_error("consume");
                tracing::warn!(queue = queue.name(), error = %err, "cannot consume; retrying");
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = shutdown.cancelled() => {}
                }
                pause = (pause * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        pause = Duration::from_millis(100);
        tracing::info!(
            queue = queue.name(),
            prefetch = options.prefetch,
            "consuming"
        );
        loop {
            match next_delivery(&mut *subscription, queue, &heartbeat, &mut beat, &shutdown).await {
                Next::Delivery(delivery) => {
                    heartbeat.beat();
                    let (deps, heartbeat) = (deps.clone(), heartbeat.clone());
                    in_flight.spawn(async move {
                        let _in_flight = heartbeat.handling();
                        settle(&deps, queue, delivery).await
                    });
                }
                Next::Ended => {
                    tracing::warn!(queue = queue.name(), "subscription ended; consuming again");
                    break;
                }
                Next::Shutdown => break,
            }
        }
        if shutdown.is_cancelled() {
            subscription.stop().await;
            in_flight.close();
            if tokio::time::timeout(options.drain_timeout, in_flight.wait())
                .await
                .is_err()
            {
                tracing::warn!(
                    queue = queue.name(),
                    "in-flight deliveries did not finish; the broker will redeliver them"
                );
            }
        }
        subscription.close().await;
    }
    tracing::info!(queue = queue.name(), "stopped consuming");
}

/// Reports how many messages wait in `queue`, where the adapter can tell.
async fn sample_depth(queue: WorkQueue, deps: Deps, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(BEAT_EVERY);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        if let Ok(Some(ready)) = deps.bus.depth(queue).await {
            metrics::queue_depth(queue.name(), ready);
        }
    }
}

enum Next {
    Delivery(Delivery),
    Ended,
    Shutdown,
}

/// Waits for the next delivery, beating every [`BEAT_EVERY`] meanwhile.
/// The wait is never dropped for a beat: taking a delivery is not
/// cancel-safe on every adapter (the embedded queue leases the message in a
/// write), and a lease taken by an abandoned wait would hold its message
/// until the process ends.
async fn next_delivery(
    subscription: &mut dyn Subscription,
    queue: WorkQueue,
    heartbeat: &Heartbeat,
    beat: &mut tokio::time::Interval,
    shutdown: &CancellationToken,
) -> Next {
    let next = subscription.next();
    tokio::pin!(next);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Next::Shutdown,
            _ = beat.tick() => {
                heartbeat.beat();
                metrics::consumer_stalled(queue.name(), heartbeat.stalled_for());
            }
            delivery = &mut next => return delivery.map_or(Next::Ended, Next::Delivery),
        }
    }
}

async fn settle(deps: &Deps, queue: WorkQueue, delivery: Delivery) {
    let message = &delivery.message;
    let span = tracing::info_span!(
        "delivery",
        queue = queue.name(),
        message = %message.message_id,
        command = Empty,
        user = Empty,
        trace_id = Empty,
    );
    trace::follow(&span, message.traceparent.as_deref());
    let own = trace::traceparent(&span, message.traceparent.as_deref());
    span.record("trace_id", eventsys_messages::trace::trace_id(&own));
    let started = Instant::now();
    let outcome = settle_in_span(deps, queue, delivery, &own)
        .instrument(span)
        .await;
    metrics::delivery_settled(queue.name(), outcome, started.elapsed());
}

/// Handles and settles one delivery, sending on the trace `traceparent`
/// names; returns how it was settled.
async fn settle_in_span(
    deps: &Deps,
    queue: WorkQueue,
    delivery: Delivery,
    traceparent: &str,
) -> &'static str {
    // The delivery is settled (moved) below while the work may still be
    // needed to mark its command failed.
    let message = delivery.message.clone();
    let work = Work {
        message: &message,
        previous_deliveries: delivery.previous_deliveries,
        traceparent,
    };
    if work.previous_deliveries > 0 {
        metrics::redelivered(queue.name());
    }
    let result = if work.previous_deliveries + 1 >= DELIVERY_LIMIT {
        give_up(deps, work).await
    } else {
        let attempts = AtomicU32::new(0);
        retry_transient(RETRY_FOR, || {
            if attempts.fetch_add(1, Ordering::Relaxed) > 0 {
                metrics::delivery_retried(queue.name());
            }
            handle(deps, queue, work)
        })
        .await
    };
    let id = &work.message.message_id;
    // The one place a delivery's trouble is logged, with its whole cause.
    let (outcome, settled) = match result {
        Ok(()) => ("ack", delivery.ack().await),
        Err(err) if err.is_transient() => {
            tracing::warn!(message = %id, error = %Chain(&err), "handing back after retries");
            ("hand_back", delivery.hand_back().await)
        }
        Err(WorkError::Failed {
            command,
            issuer,
            reason,
        }) => {
            tracing::warn!(%command, reason = %reason.message, "command failed; dead-lettering");
            let failed = retry_transient(RETRY_FOR, || {
                lifecycle::fail(deps, work, command, &issuer, reason.clone())
            })
            .await;
            match failed {
                Ok(()) => ("dead_letter", delivery.dead_letter().await),
                Err(err) => {
                    tracing::warn!(%command, error = %Chain(&err), "could not mark failed; handing back");
                    ("hand_back", delivery.hand_back().await)
                }
            }
        }
        Err(err) => {
            tracing::warn!(message = %id, error = %Chain(&err), "dead-lettering");
            ("dead_letter", delivery.dead_letter().await)
        }
    };
    if let Err(err) = settled {
        metrics::broker_error("settle");
        // The broker will deliver it again; every handler is idempotent.
        tracing::warn!(message = %id, error = %Chain(&err), "could not settle delivery");
        return "unsettled";
    }
    outcome
}

/// Handles one message once.
async fn handle(deps: &Deps, queue: WorkQueue, work: Work<'_>) -> Result<(), WorkError> {
    let incoming = decode(work.message);
    if let Incoming::Command(command) = &incoming {
        let span = tracing::Span::current();
        span.record("command", command.message_id.to_string());
        span.record("user", command.issuer.as_str());
    }
    match incoming {
        Incoming::Command(command) if command.action.queue() == queue => {
            lifecycle::carry_out(deps, work, &command).await
        }
        Incoming::Command(command) => Err(WorkError::Poison(format!(
            "{} does not belong on {}",
            command.action.kind(),
            queue.name()
        ))),
        Incoming::Event(event) if queue == WorkQueue::Notification => {
            notification::on_event(deps, work, &event).await
        }
        Incoming::Event(event) if queue == WorkQueue::Webhooks => {
            webhooks::on_event(deps, &event).await
        }
        Incoming::Event(event) => Err(WorkError::Poison(format!(
            "{} does not belong on {}",
            event.event.kind(),
            queue.name()
        ))),
        Incoming::Undecodable(reason) => match recorded_command(deps, work.message).await? {
            Some((command, issuer)) => Err(WorkError::Failed {
                command,
                issuer,
                reason: CommandError::new(Reason::Unprocessable, reason),
            }),
            None => Err(WorkError::Poison(reason)),
        },
    }
}

/// Stops trying a message that keeps coming back.
async fn give_up(deps: &Deps, work: Work<'_>) -> Result<(), WorkError> {
    let reason = format!("gave up after {DELIVERY_LIMIT} deliveries");
    match recorded_command(deps, work.message).await? {
        Some((command, issuer)) => Err(WorkError::Failed {
            command,
            issuer,
            reason: CommandError::new(Reason::GaveUp, reason),
        }),
        None => Err(WorkError::Poison(reason)),
    }
}

/// The recorded command this message is, byte for byte, if any: only then
/// may its failure fail the command.
async fn recorded_command(
    deps: &Deps,
    message: &Message,
) -> Result<Option<(CommandId, UserId)>, WorkError> {
    let Ok(id) = message.message_id.parse::<CommandId>() else {
        return Ok(None);
    };
    Ok(deps
        .store
        .command(id)
        .await?
        .filter(|record| record.is_recorded_as(&message.body))
        .map(|record| (id, record.issuer)))
}

enum Incoming {
    Command(CommandEnvelope),
    Event(EventEnvelope),
    Undecodable(String),
}

fn decode(message: &Message) -> Incoming {
    let value: serde_json::Value = match serde_json::from_slice(&message.body) {
        Ok(value) => value,
        Err(err) => return Incoming::Undecodable(format!("not JSON: {err}")),
    };
    let version = value
        .get("version")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    if version == 0 || version > u64::from(SCHEMA_VERSION) {
        return Incoming::Undecodable(format!("unsupported schema version {version}"));
    }
    match serde_json::from_value::<CommandEnvelope>(value.clone()) {
        Ok(command) => Incoming::Command(command),
        Err(as_command) => match serde_json::from_value::<EventEnvelope>(value) {
            Ok(event) => Incoming::Event(event),
            Err(_) => {
                Incoming::Undecodable(format!("not a command this build knows: {as_command}"))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> Message {
        Message {
            routing_key: "order.place".into(),
            message_id: "x".into(),
            body: body.as_bytes().to_vec(),
            traceparent: None,
        }
    }

    #[test]
    fn garbage_and_future_versions_are_undecodable() {
        assert!(matches!(
            decode(&message("{not json")),
            Incoming::Undecodable(_)
        ));
        assert!(
            matches!(decode(&message(r#"{"version": 99}"#)), Incoming::Undecodable(r) if r.contains("99"))
        );
        assert!(matches!(
            decode(&message(
                r#"{"version": 1, "type": "order.place", "payload": {}}"#
            )),
            Incoming::Undecodable(_)
        ));
    }
}
