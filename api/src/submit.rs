//! How every write becomes a command: answer a replay of its idempotency
//! key from a read, take it on only if the replica is not full (see
//! `admission`), record it as `accepted` (claiming the key in the same
//! write), publish it and wait for the broker's confirm, then answer 202,
//! or, if the client prefers to wait, the outcome.
//!
//! A write handler reads: parse, authorize, then `state.submit(...)` with
//! the action; everything else about commands happens here.

use std::time::Duration;

use aws_lc_rs::digest;
use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use eventsys_bus::{BusError, Exchange, Message};
use eventsys_messages::{Action, CommandEnvelope, Timestamp, failpoint, trace};
use eventsys_store::{CommandRecord, IdempotencyClaim, Recorded};
use eventsys_telemetry::metrics;
use tracing::Span;

use crate::{
    AppState,
    auth::Caller,
    input::{CommandRequest, idempotency_key},
    problem::Problem,
    views,
};

/// How long an `Idempotency-Key` names the same command.
const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// A command as it stood when the API answered.
pub struct Submitted {
    pub record: CommandRecord,
    /// How long the client waited for the outcome, if it did.
    pub waited: Option<Duration>,
}

impl AppState {
    /// Carries out `action` for `caller` as a command: 202, or 200 with the
    /// outcome if the client asked to wait and it came in time.
    pub async fn submit(
        &self,
        caller: &Caller,
        request: CommandRequest,
        action: Action,
    ) -> Result<Response, Problem> {
        Ok(self
            .submit_waiting(caller, request, action, None)
            .await?
            .respond())
    }

    /// Like [`Self::submit`], waiting `default_wait` for the outcome when
    /// the client states no preference; the caller shapes the answer.
    pub async fn submit_waiting(
        &self,
        caller: &Caller,
        request: CommandRequest,
        action: Action,
        default_wait: Option<Duration>,
    ) -> Result<Submitted, Problem> {
        let claim =
            idempotency_key(request.idempotency_key.as_ref())?.map(|key| IdempotencyClaim {
                key_hash: hex(&[caller.user.as_str().as_bytes(), b"\n", key.as_bytes()].concat()),
                fingerprint: hex(&request.fingerprint),
                expires_at: Timestamp::now() + IDEMPOTENCY_WINDOW,
            });
        let wait = request.wait.or(default_wait);
        // The request's own context, set where its span was made.
        let traceparent = request
            .traceparent
            .clone()
            .unwrap_or_else(trace::new_traceparent);
        let envelope = CommandEnvelope::new(caller.user.clone(), action);
        Span::current().record("command", envelope.message_id.to_string());
        let record = CommandRecord::accepted(&envelope);
        // Listen before publishing: the outcome may come back very fast.
        let finished = wait.map(|_| self.hub.wait_for(record.command_id));
        // Orders wait in their event's line, and count against its share.
        let order_event = match &envelope.action {
            Action::PlaceOrder(order) | Action::Register(order) => Some(order.event_id),
            _ => None,
        };

        let recorded = match &claim {
            // A retry learns where its command stands from a read: it is
            // never refused for load, and it writes nothing.
            Some(claim) => self.store.find_claim(claim).await?,
            None => None,
        };
        let recorded = match recorded {
            Some(replay) => replay,
            None => {
                // The door keeps working whatever is on sale elsewhere.
                if !matches!(envelope.action, Action::CheckIn(_)) {
                    let admitted = self.hub.backlog().admit(
                        record.command_id,
                        &caller.user,
                        envelope.action.queue(),
                        order_event,
                    );
                    if let Err(shed) = admitted {
                        let refused = Problem::from(shed);
                        metrics::command_refused(refused.code);
                        return Err(refused);
                    }
                }
                let recorded = self.store.record_command(&record, claim.as_ref()).await;
                if !matches!(recorded, Ok(Recorded::New)) {
                    self.hub.backlog().forget(record.command_id);
                }
                recorded?
            }
        };
        let record = match recorded {
            Recorded::New => {
                failpoint::hit(failpoint::AFTER_RECORD);
                // In line before it is sent: a worker may take it at once.
                let line = self.hub.line();
                if let Some(event) = order_event {
                    line.join(event, record.command_id, caller.user.clone());
                }
                let published = self
                    .publish(&envelope, &record, claim.as_ref(), traceparent)
                    .await;
                if published.is_err() {
                    line.leave(record.command_id);
                    self.hub.backlog().forget(record.command_id);
                }
                published?;
                metrics::command_accepted(envelope.action.kind());
                record
            }
            Recorded::Existing {
                same_request: false,
                ..
            } => {
                return Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for a different request",
                ));
            }
            Recorded::Existing {
                record: existing, ..
            } => {
                tracing::info!(command = %existing.command_id, "idempotent replay");
                *existing
            }
        };

        let Some(wait) = wait else {
            return Ok(Submitted {
                record,
                waited: None,
            });
        };
        let mut finished = match finished {
            Some(waiter) if record.command_id == envelope.command_id() => waiter,
            // A replay waits for the original command.
            _ => self.hub.wait_for(record.command_id),
        };
        if !record.status.is_terminal() {
            let _ = tokio::time::timeout(wait, finished.finished()).await;
        }
        drop(finished);
        // The store is the truth; the notice only said when to look.
        let record = self
            .store
            .command(record.command_id)
            .await?
            .unwrap_or(record);
        Ok(Submitted {
            record,
            waited: Some(wait),
        })
    }

    async fn publish(
        &self,
        envelope: &CommandEnvelope,
        record: &CommandRecord,
        claim: Option<&IdempotencyClaim>,
        traceparent: String,
    ) -> Result<(), Problem> {
        let message = Message::command(envelope, Some(traceparent));
        let Err(err) = self.bus.publish(Exchange::Commands, &message).await else {
            tracing::info!(command = %record.command_id, kind = %record.kind, user = %record.issuer, "accepted");
            return Ok(());
        };
        tracing::warn!(command = %record.command_id, error = %err, "could not publish");
        // Take the command back so that nothing is left half-way; if a worker
        // got it after all (the confirm was lost), it stands.
        match self.store.withdraw_command(record.command_id, claim).await {
            Ok(false) => Ok(()),
            Ok(true) | Err(_) => Err(match err {
                BusError::Unroutable(_) => {
                    Problem::unavailable("the broker has no route for this command yet")
                }
                _ => Problem::unavailable("the broker is unavailable; try again shortly"),
            }),
        }
    }
}

impl Submitted {
    /// 200 with the outcome if the client waited and it came, else 202.
    pub fn respond(&self) -> Response {
        let record = &self.record;
        match self.waited {
            Some(wait) if record.status.is_terminal() => {
                let mut response = Json(views::command(record)).into_response();
                applied(&mut response, wait);
                response
            }
            _ => accepted(record),
        }
    }
}

/// 202 with the command id, its status and the ids of what it creates.
pub fn accepted(record: &CommandRecord) -> Response {
    let mut response = (StatusCode::ACCEPTED, Json(views::accepted(record))).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/commands/{}", record.command_id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

pub fn applied(response: &mut Response, wait: Duration) {
    if let Ok(value) = HeaderValue::from_str(&format!("wait={}", wait.as_secs())) {
        response.headers_mut().insert("preference-applied", value);
    }
}

fn hex(data: &[u8]) -> String {
    digest::digest(&digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Submission on the embedded store and queue, called directly: what is
/// recorded, what is published, and what a replay or a reused key gets.
/// How every write is answered, for the API's document: 202 with the
/// command at once, or 200 with its outcome when the client waited.
pub struct SubmitAnswers;

impl utoipa::IntoResponses for SubmitAnswers {
    fn responses() -> crate::docs::Answers {
        use utoipa::openapi::{ObjectBuilder, Type};
        let text = || ObjectBuilder::new().schema_type(Type::String);
        let answer = |description, schema, header| {
            crate::docs::answer(description, "application/json", schema, header)
        };
        [
            (
                "202".to_owned(),
                answer(
                    "Accepted: the command is recorded and on its way; its outcome arrives on the \
                     WebSocket and at its URL",
                    "CommandAccepted",
                    Some(("Location", "The command's URL", text())),
                ),
            ),
            (
                "200".to_owned(),
                answer(
                    "Done or refused (the command's `status` and `error` say which), when the \
                     client asked to wait (`Prefer: wait=N`) and it finished in time",
                    "CommandView",
                    Some(("Preference-Applied", "`wait=N`, the wait applied", text())),
                ),
            ),
        ]
        .into_iter()
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::{body::Body, extract::FromRequest};
    use eventsys_bus::Bus;
    use eventsys_bus_embedded::EmbeddedBus;
    use eventsys_messages::{
        CommandId, CommandStatus, MarkNotificationRead, NotificationId, UserId, WorkQueue,
    };
    use eventsys_store::Store;
    use eventsys_store_embedded::EmbeddedStore;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::{auth::Role, signing::TicketCodes};

    struct Setup {
        state: AppState,
        dir: std::path::PathBuf,
    }

    impl Drop for Setup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn setup() -> Setup {
        let dir = std::env::temp_dir()
            .join("eventsys-submit")
            .join(uuid::Uuid::new_v4().simple().to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.join("store.redb")).unwrap());
        let bus: Arc<dyn Bus> = Arc::new(EmbeddedBus::open(&dir.join("queue.redb")).unwrap());
        let codes = TicketCodes::new(&TicketCodes::generate_seed().unwrap(), &[]).unwrap();
        let keys = crate::Keys {
            tokens: crate::auth::Auth::new(b"a-secret-for-tests-only"),
            codes,
            cursors: crate::signing::Cursors::new(b"another-secret-for-tests"),
        };
        let state = AppState::new(
            store,
            bus,
            keys,
            crate::limits::Limits::default(),
            CancellationToken::new(),
        );
        Setup { state, dir }
    }

    fn ann() -> Caller {
        Caller {
            user: UserId::parse("ann").unwrap(),
            roles: [Role::Attendee].into(),
            expires_at: u64::MAX,
        }
    }

    async fn request(path: &str, key: Option<&str>, body: &str) -> CommandRequest {
        let mut builder =
            axum::http::Request::post(path).header("content-type", "application/json");
        if let Some(key) = key {
            builder = builder.header("idempotency-key", key);
        }
        let request = builder.body(Body::from(body.to_owned())).unwrap();
        CommandRequest::from_request(request, &()).await.unwrap()
    }

    fn read(id: NotificationId) -> Action {
        Action::MarkNotificationRead(MarkNotificationRead {
            notification_id: id,
        })
    }

    /// The ids of the messages waiting on the notification queue.
    async fn published(bus: &dyn Bus) -> Vec<String> {
        let mut queue = bus.consume(WorkQueue::Notification, 100).await.unwrap();
        let mut ids = Vec::new();
        while let Ok(Some(delivery)) =
            tokio::time::timeout(Duration::from_millis(200), queue.next()).await
        {
            ids.push(delivery.message.message_id.clone());
            delivery.ack().await.unwrap();
        }
        queue.stop().await;
        queue.close().await;
        ids
    }

    fn command_id(response: &Response) -> CommandId {
        let location = response.headers()[header::LOCATION].to_str().unwrap();
        location.rsplit('/').next().unwrap().parse().unwrap()
    }

    #[tokio::test]
    async fn a_command_is_recorded_accepted_and_published_exactly_as_recorded() {
        let s = setup();
        let id = NotificationId::generate();
        let path = format!("/v1/me/notifications/{id}/read");
        let response = s
            .state
            .submit(&ann(), request(&path, None, "").await, read(id))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let command = command_id(&response);
        let record = s.state.store.command(command).await.unwrap().unwrap();
        assert_eq!(record.status, CommandStatus::Accepted);
        assert_eq!(record.resources["notification_id"], id.to_string());
        let mut queue = s
            .state
            .bus
            .consume(WorkQueue::Notification, 1)
            .await
            .unwrap();
        let delivery = queue.next().await.unwrap();
        assert!(record.is_recorded_as(&delivery.message.body));
        delivery.ack().await.unwrap();
        queue.stop().await;
        queue.close().await;
    }

    #[tokio::test]
    async fn a_repeated_key_names_one_command_and_a_reused_one_is_refused() {
        let s = setup();
        let id = NotificationId::generate();
        let path = format!("/v1/me/notifications/{id}/read");
        let first = s
            .state
            .submit(&ann(), request(&path, Some("k-1"), "").await, read(id))
            .await
            .unwrap();
        let again = s
            .state
            .submit(&ann(), request(&path, Some("k-1"), "").await, read(id))
            .await
            .unwrap();
        assert_eq!(command_id(&again), command_id(&first));
        assert_eq!(
            published(&*s.state.bus).await,
            [command_id(&first).to_string()]
        );

        let other = NotificationId::generate();
        let other_path = format!("/v1/me/notifications/{other}/read");
        let reused = s
            .state
            .submit(
                &ann(),
                request(&other_path, Some("k-1"), "").await,
                read(other),
            )
            .await
            .unwrap_err();
        assert_eq!(
            (reused.status, reused.code),
            (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
        );
        let bad = s
            .state
            .submit(&ann(), request(&path, Some(" "), "").await, read(id))
            .await
            .unwrap_err();
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(
            published(&*s.state.bus).await.is_empty(),
            "nothing more published"
        );
        // Another user's same key is another command.
        let bob = Caller {
            user: UserId::parse("bob").unwrap(),
            ..ann()
        };
        let theirs = s
            .state
            .submit(&bob, request(&path, Some("k-1"), "").await, read(id))
            .await
            .unwrap();
        assert_ne!(command_id(&theirs), command_id(&first));
    }
}
