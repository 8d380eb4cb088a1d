//! The webhooks role: owes each fact to the organizer's endpoints that
//! asked for it, and sends what is owed, endpoint by endpoint, in order
//! ([`dispatch`]).
//!
//! A fact becomes one occurrence, owed once per endpoint however often the
//! fact is delivered; owing is all this role does on the queue, so a slow
//! or absent receiver never holds up a delivery, let alone a sale.

mod dispatch;

use std::{
    collections::{HashMap, HashSet},
    sync::{Mutex, MutexGuard, PoisonError},
};

use eventsys_messages::{EventEnvelope, EventId, Timestamp, UserId, WebhookId};
use eventsys_store::{DeliveryRecord, WebhookRecord};
use eventsys_webhooks::catalogue::Occurrence;
use tokio::sync::Notify;

use crate::{Deps, WorkError};

pub use dispatch::{DispatchOptions, run_dispatcher};

/// Organizers remembered per event: they never change.
const ORGANIZERS_KEPT: usize = 10_000;

/// What the role's consumer and its dispatcher share in one process.
#[derive(Default)]
pub(crate) struct Shared {
    organizers: Mutex<HashMap<EventId, UserId>>,
    /// Endpoints just owed something, to be sent to without waiting for
    /// the next sweep.
    woken: Mutex<HashSet<WebhookId>>,
    wake: Notify,
}

impl Shared {
    fn woken_set(&self) -> MutexGuard<'_, HashSet<WebhookId>> {
        self.woken.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn organizers(&self) -> MutexGuard<'_, HashMap<EventId, UserId>> {
        self.organizers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn wake(&self, id: WebhookId) {
        self.woken_set().insert(id);
        self.wake.notify_one();
    }

    /// The endpoints woken since last asked; waits for one.
    async fn woken(&self) -> Vec<WebhookId> {
        loop {
            let woken: Vec<WebhookId> = self.woken_set().drain().collect();
            if !woken.is_empty() {
                return woken;
            }
            self.wake.notified().await;
        }
    }
}

/// Owes the occurrence a fact is to every endpoint that wants it.
pub(crate) async fn on_event(deps: &Deps, envelope: &EventEnvelope) -> Result<(), WorkError> {
    let Some(occurrence) = Occurrence::of(envelope) else {
        return Ok(());
    };
    let Some(organizer) = organizer_of(deps, occurrence.event_id()).await? else {
        tracing::warn!(event = %occurrence.event_id(), "a fact about an unknown event");
        return Ok(());
    };
    let body = occurrence.body();
    let now = Timestamp::now();
    for webhook in deps.store.webhooks_of(&organizer).await? {
        if !wants(&webhook, &occurrence) {
            continue;
        }
        let delivery = DeliveryRecord::owed(
            webhook.webhook_id,
            occurrence.id,
            occurrence.kind.as_str(),
            body.clone(),
            now,
        );
        // Owed before (a fact delivered again): nothing more to do, the
        // dispatcher already knows of it.
        if let Some(sequence) = deps.store.owe(&delivery).await? {
            tracing::debug!(webhook = %webhook.webhook_id, sequence, kind = occurrence.kind.as_str(), "owed");
            deps.webhooks.wake(webhook.webhook_id);
        }
    }
    Ok(())
}

/// Whether an endpoint asked for this occurrence: its event (or all), its
/// type, and only what happened since it was added.
fn wants(webhook: &WebhookRecord, occurrence: &Occurrence) -> bool {
    webhook
        .event_id
        .is_none_or(|event| event == occurrence.event_id())
        && webhook
            .types
            .iter()
            .any(|kind| kind == occurrence.kind.as_str())
        && occurrence.timestamp >= webhook.created_at
}

async fn organizer_of(deps: &Deps, event: EventId) -> Result<Option<UserId>, WorkError> {
    if let Some(organizer) = deps.webhooks.organizers().get(&event) {
        return Ok(Some(organizer.clone()));
    }
    let Some(record) = deps.store.event_record(event).await? else {
        return Ok(None);
    };
    let mut organizers = deps.webhooks.organizers();
    if organizers.len() >= ORGANIZERS_KEPT {
        organizers.clear();
    }
    organizers.insert(event, record.organizer_id.clone());
    Ok(Some(record.organizer_id))
}
