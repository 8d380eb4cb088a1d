//! Sending what endpoints are owed. Each endpoint has one sender at a
//! time across every replica (a lease in the store), which sends its
//! deliveries strictly in sequence order: a delivery that fails holds
//! back those after it until it succeeds or is given up on, so that a
//! receiver sees an order's cancellation after its sale.
//!
//! Endpoints are taken up when this process owes them something and, at
//! every sweep, from the store's list of endpoints owed anything: after a
//! restart, after another replica went away, when a retry falls due.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use eventsys_messages::{Timestamp, WebhookId};
use eventsys_store::{DeliveryRecord, DeliveryStatus, StoreError, WebhookRecord};
use eventsys_telemetry::metrics;
use eventsys_webhooks::{
    retry::RetryPolicy,
    send::{ANSWER_WITHIN, Answer, Outgoing, Sender},
    signature::Secret,
};
use tokio::task::JoinHandle;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::Deps;

#[derive(Clone, Copy, Debug)]
pub struct DispatchOptions {
    /// Let endpoints resolve to loopback and private addresses.
    pub allow_private: bool,
    pub retry: RetryPolicy,
    /// How often the store's list of endpoints owed something is read
    /// while it has any; when it comes back empty the wait doubles, up to
    /// [`IDLE_SWEEP`], so that an idle replica costs the store next to
    /// nothing.
    pub sweep_every: Duration,
}

impl Default for DispatchOptions {
    fn default() -> Self {
        Self {
            allow_private: false,
            retry: RetryPolicy::default(),
            sweep_every: Duration::from_secs(1),
        }
    }
}

/// How long a sender's right to an endpoint lasts unless renewed; it is
/// renewed at half-time, so another replica takes over within this much
/// of a sender's going away.
const LEASE: Duration = Duration::from_secs(30);
/// Endpoints sent to at once by one process.
const AT_ONCE: usize = 256;
/// The longest wait between two sweeps of an idle replica: how long a
/// replay made through another process, or the endpoints of a replica that
/// went away, may wait to be taken up. What this process owes itself is
/// sent at once.
const IDLE_SWEEP: Duration = Duration::from_secs(10);

/// Sends what endpoints are owed until `shutdown`.
pub async fn run_dispatcher(deps: Deps, options: DispatchOptions, shutdown: CancellationToken) {
    let holder = uuid::Uuid::new_v4().to_string();
    let senders = TaskTracker::new();
    let mut sending: HashMap<WebhookId, JoinHandle<()>> = HashMap::new();
    // The first sweep at once: what was owed before a restart. Each empty
    // sweep doubles the wait for the next; anything owed brings it back.
    let mut wait = options.sweep_every;
    let mut sweep_at = tokio::time::Instant::now();
    tracing::info!(%holder, "sending webhooks");
    metrics::sending_webhooks();
    loop {
        let due = tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep_until(sweep_at) => {
                let listed = deps.store.owing_webhooks(AT_ONCE as u32).await;
                wait = match &listed {
                    Ok(due) if due.is_empty() => (wait * 2).min(IDLE_SWEEP),
                    _ => options.sweep_every,
                };
                sweep_at = tokio::time::Instant::now() + wait;
                match listed {
                    Ok(due) => due,
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot list the endpoints owed something");
                        continue;
                    }
                }
            }
            woken = deps.webhooks.woken() => {
                wait = options.sweep_every;
                sweep_at = sweep_at.min(tokio::time::Instant::now() + wait);
                woken
            }
        };
        sending.retain(|_, sender| !sender.is_finished());
        for id in due {
            if sending.len() >= AT_ONCE {
                break;
            }
            sending.entry(id).or_insert_with(|| {
                senders.spawn(send_to(
                    deps.clone(),
                    id,
                    holder.clone(),
                    options,
                    shutdown.clone(),
                ))
            });
        }
    }
    // An attempt under way is let finish, so that its outcome is written;
    // the leases of the rest run out and another replica takes over.
    senders.close();
    if tokio::time::timeout(ANSWER_WITHIN + Duration::from_secs(2), senders.wait())
        .await
        .is_err()
    {
        tracing::warn!("webhook attempts still under way at shutdown; they will be retried");
    }
}

/// Sends to one endpoint while it is owed something and this process
/// holds it.
async fn send_to(
    deps: Deps,
    id: WebhookId,
    holder: String,
    options: DispatchOptions,
    shutdown: CancellationToken,
) {
    let mut sending = Sending {
        deps,
        id,
        holder,
        options,
        sender: Sender::new(options.allow_private),
        leased_until: None,
    };
    while !shutdown.is_cancelled() {
        match sending.step(&shutdown).await {
            Ok(Step::Again) => {}
            Ok(Step::Done) => return,
            Err(err) => {
                // The sweep takes the endpoint up again.
                tracing::warn!(webhook = %id, error = %err, "cannot send webhooks for now");
                return;
            }
        }
    }
}

enum Step {
    Again,
    Done,
}

struct Sending {
    deps: Deps,
    id: WebhookId,
    holder: String,
    options: DispatchOptions,
    sender: Sender,
    leased_until: Option<Instant>,
}

impl Sending {
    async fn step(&mut self, shutdown: &CancellationToken) -> Result<Step, StoreError> {
        if !self.hold().await? {
            return Ok(Step::Done);
        }
        let store = self.deps.store.clone();
        let Some(webhook) = store.webhook(self.id).await? else {
            return Ok(Step::Done);
        };
        let Some(delivery) = store.next_owed(self.id).await? else {
            if store
                .settle_webhook(self.id, &self.holder, webhook.mark)
                .await?
            {
                return Ok(Step::Done);
            }
            // Owed something meanwhile, or the lease was lost: take it
            // again before sending anything.
            self.leased_until = None;
            return Ok(Step::Again);
        };
        let now = Timestamp::now();
        let due = delivery.next_attempt_at.unwrap_or(now);
        if due > now {
            // Looked at again every sweep meanwhile: a replay may owe an
            // earlier delivery, or the endpoint may go.
            let wait = Duration::try_from(due.duration_since(now))
                .unwrap_or_default()
                .min(self.options.sweep_every);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.cancelled() => {}
            }
            return Ok(Step::Again);
        }
        self.attempt(&webhook, delivery).await?;
        Ok(Step::Again)
    }

    /// Takes or renews the lease when it is half gone; `false` when
    /// another replica holds the endpoint.
    async fn hold(&mut self) -> Result<bool, StoreError> {
        if self
            .leased_until
            .is_some_and(|until| until > Instant::now() + LEASE / 2)
        {
            return Ok(true);
        }
        let now = Timestamp::now();
        let until = now
            .checked_add(jiff::SignedDuration::try_from(LEASE).unwrap_or_default())
            .unwrap_or(now);
        let held = self
            .deps
            .store
            .lease_webhook(self.id, &self.holder, now, until)
            .await?;
        self.leased_until = held.then(|| Instant::now() + LEASE);
        Ok(held)
    }

    async fn attempt(
        &mut self,
        webhook: &WebhookRecord,
        delivery: DeliveryRecord,
    ) -> Result<(), StoreError> {
        let now = Timestamp::now();
        let secrets: Vec<Secret> = webhook
            .secrets
            .iter()
            .filter(|secret| secret.until.is_none_or(|until| until > now))
            .filter_map(|secret| Secret::parse(&secret.secret).ok())
            .collect();
        let message_id = format!("msg_{}", delivery.occurrence_id);
        let attempt = delivery.attempts + 1;
        let answer = self
            .sender
            .send(&Outgoing {
                url: &webhook.url,
                message_id: &message_id,
                body: delivery.body.as_bytes(),
                secrets: &secrets,
                sequence: delivery.sequence,
                attempt,
                timestamp: now.as_second(),
            })
            .await;
        let answered = Timestamp::now();
        let mut next = DeliveryRecord {
            attempts: attempt,
            last_attempt_at: Some(answered),
            ..delivery
        };
        let outcome = match &answer {
            Answer::Accepted(_) => "delivered",
            Answer::Refused(_) => "refused",
            Answer::Unreached(_) => "unreached",
        };
        match answer {
            Answer::Accepted(status) => {
                next.status = DeliveryStatus::Delivered;
                next.next_attempt_at = None;
                next.last_response = Some(status);
                next.last_error = None;
            }
            Answer::Refused(status) => {
                next.last_response = Some(status);
                next.last_error = None;
                self.schedule_retry(&mut next, answered);
            }
            Answer::Unreached(why) => {
                next.last_response = None;
                next.last_error = Some(why);
                self.schedule_retry(&mut next, answered);
            }
        }
        metrics::webhook_attempt(if next.status == DeliveryStatus::Failed {
            "given_up"
        } else {
            outcome
        });
        tracing::info!(
            webhook = %self.id,
            sequence = next.sequence,
            attempt,
            status = ?next.status,
            response = next.last_response,
            error = next.last_error.as_deref(),
            "webhook attempt"
        );
        // `false`: no longer owed (a replay raced it); the next step reads
        // what is.
        self.deps.store.record_attempt(&next).await?;
        Ok(())
    }

    fn schedule_retry(&self, delivery: &mut DeliveryRecord, now: Timestamp) {
        match self
            .options
            .retry
            .next_attempt(delivery.attempts, delivery.owed_since(), now)
        {
            Some(at) => delivery.next_attempt_at = Some(at),
            None => {
                delivery.status = DeliveryStatus::Failed;
                delivery.next_attempt_at = None;
            }
        }
    }
}
