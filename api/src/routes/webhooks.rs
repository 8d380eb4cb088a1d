//! An organizer's webhook endpoints: added, listed, removed, their secret
//! rotated, their delivery log read and a delivery replayed.
//!
//! These are settings, not commands: each is written to the store at once,
//! so that the secret is shown in the answer that makes it (and never
//! again), and an endpoint hears of what happens from the moment it is
//! answered. What endpoints hear of is decided by the webhooks worker.

use std::time::Duration;

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use eventsys_messages::{DeliveryStatus, EventId, FieldError, Timestamp, WebhookId, WebhookType};
use eventsys_store::{DeliveryRecord, SigningSecret, WebhookRecord};
use eventsys_webhooks::{destination, signature::Secret};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::events::may_manage;
use crate::{
    AppState,
    auth::{Caller, Role},
    input::{CommandRequest, Paging, path_id},
    problem::{
        BadPage, NotAnOrganizer, NotJson, NotTheirWebhook, Problem, ProblemDocument, ReadProblems,
        WriteProblems,
    },
    views::{self, PageOf},
};

/// Endpoints one organizer may have.
pub const WEBHOOKS_PER_ORGANIZER: usize = 20;
/// How long a replaced secret still signs, so that receivers can switch.
const OLD_SECRET_SIGNS_FOR: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);
/// How long the endpoint's name may take to resolve when it is added.
const RESOLVE_WITHIN: Duration = Duration::from_secs(5);

/// The body of `POST /v1/webhooks`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://hooks.example.com/eventsys", "types": ["order.succeeded", "ticket.checked_in"]}))]
pub struct NewWebhook {
    /// Where deliveries are POSTed: an http(s) URL without credentials, at
    /// most 2,000 characters, that resolves to public addresses only.
    #[schema(max_length = 2000)]
    url: String,
    /// Only this event's occurrences (an event of the caller's); left out,
    /// those of every event of theirs.
    #[serde(default)]
    event_id: Option<EventId>,
    /// What it hears of.
    #[schema(min_items = 1, max_items = 8)]
    types: Vec<WebhookType>,
}

/// An endpoint.
#[derive(Serialize, ToSchema)]
pub struct WebhookView {
    webhook_id: WebhookId,
    url: String,
    /// Left out: every event of the organizer's.
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<EventId>,
    #[schema(value_type = Vec<WebhookType>)]
    types: Vec<String>,
    created_at: Timestamp,
    /// `whsec_` and the key in base64: shown once, when the endpoint is
    /// added or its secret rotated. Deliveries are signed with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl WebhookView {
    fn of(webhook: &WebhookRecord) -> Self {
        Self {
            webhook_id: webhook.webhook_id,
            url: webhook.url.clone(),
            event_id: webhook.event_id,
            types: webhook.types.clone(),
            created_at: webhook.created_at,
            secret: None,
        }
    }
}

/// One delivery of one occurrence to an endpoint.
#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    /// Its place in the endpoint's order, from 1; also sent as the
    /// `eventsys-sequence` header.
    delivery_id: u64,
    /// The `webhook-id` header: the same on every attempt and replay.
    message_id: String,
    #[serde(rename = "type")]
    #[schema(value_type = WebhookType)]
    kind: String,
    status: DeliveryStatus,
    attempts: u32,
    replays: u32,
    created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_attempt_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_attempt_at: Option<Timestamp>,
    /// The status the endpoint last answered with.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_response: Option<u16>,
    /// Why the last attempt got no answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    /// The body sent, exactly: `{"type", "timestamp", "data"}`.
    #[schema(value_type = Object)]
    payload: Box<RawValue>,
}

impl DeliveryView {
    fn of(delivery: &DeliveryRecord) -> Self {
        Self {
            delivery_id: delivery.sequence,
            message_id: format!("msg_{}", delivery.occurrence_id),
            kind: delivery.kind.clone(),
            status: delivery.status,
            attempts: delivery.attempts,
            replays: delivery.replays,
            created_at: delivery.created_at,
            next_attempt_at: delivery.next_attempt_at,
            last_attempt_at: delivery.last_attempt_at,
            last_response: delivery.last_response,
            last_error: delivery.last_error.clone(),
            // Stored as sent, so always JSON; `null` rather than fail a log.
            payload: RawValue::from_string(delivery.body.clone())
                .unwrap_or_else(|_| RawValue::NULL.to_owned()),
        }
    }
}

/// The endpoint, if the caller manages it.
async fn managed_webhook(
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
) -> Result<WebhookRecord, Problem> {
    let id: WebhookId = path_id(raw_id, "webhook")?;
    state
        .store
        .webhook(id)
        .await?
        .filter(|webhook| may_manage(Some(caller), &webhook.organizer_id))
        .ok_or_else(|| Problem::not_found("webhook"))
}

fn generated_secret() -> Result<String, Problem> {
    Secret::generate()
        .map(|secret| secret.expose())
        .map_err(|_| Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "try again"))
}

/// Checks a new endpoint's URL, types and event.
async fn checked(
    state: &AppState,
    caller: &Caller,
    new: &NewWebhook,
) -> Result<Vec<String>, Problem> {
    let mut errors = Vec::new();
    let resolved = tokio::time::timeout(
        RESOLVE_WITHIN,
        destination::resolve(&new.url, state.limits.private_webhooks),
    )
    .await
    .unwrap_or(Err(destination::Refusal::Unresolved));
    if let Err(refusal) = resolved {
        errors.push(FieldError::new("url", refusal.to_string()));
    }
    let mut types: Vec<String> = Vec::new();
    for kind in &new.types {
        if !types.iter().any(|t| t == kind.as_str()) {
            types.push(kind.as_str().to_owned());
        }
    }
    if types.is_empty() {
        errors.push(FieldError::new("types", "must name at least one type"));
    }
    if new.types.len() > WebhookType::ALL.len() {
        errors.push(FieldError::new(
            "types",
            format!("names at most {} types", WebhookType::ALL.len()),
        ));
    }
    if let Some(event) = new.event_id {
        let theirs = state
            .store
            .event_record(event)
            .await?
            .is_some_and(|e| may_manage(Some(caller), &e.organizer_id));
        if !theirs {
            errors.push(FieldError::new("event_id", "is not an event of yours"));
        }
    }
    if errors.is_empty() {
        Ok(types)
    } else {
        Err(Problem::invalid(errors))
    }
}

/// Add a webhook endpoint
///
/// An organizer's endpoint for one of their events, or for all of them.
/// Deliveries follow the Standard Webhooks conventions: a POST of
/// `{"type", "timestamp", "data"}` with `webhook-id`, `webhook-timestamp`
/// and `webhook-signature` (`v1,` and the base64 HMAC-SHA256 of
/// `{webhook-id}.{webhook-timestamp}.{body}` under the secret answered
/// here, once). Each endpoint gets its deliveries in order, numbered in
/// `eventsys-sequence`; a retry carries the same `webhook-id` and a higher
/// `eventsys-attempt`. A delivery not answered 2xx is retried with
/// exponential backoff for a day.
#[utoipa::path(
    post,
    path = "/v1/webhooks",
    tag = "webhooks",
    security(("bearer" = [])),
    request_body = NewWebhook,
    responses(
        (status = 201, description = "Added; the answer shows its secret, once", body = WebhookView),
        (status = 400, description = "`malformed_request`: the body is not JSON, or could not be read",
            body = ProblemDocument, content_type = "application/problem+json"),
        NotAnOrganizer,
        (status = 409, description = "`limit_reached`: the caller has 20 endpoints already",
            body = ProblemDocument, content_type = "application/problem+json"),
        NotJson,
        (status = 422, description = "`validation_failed`: a body that breaks the schema; a URL that is not http(s), carries credentials, does not resolve or resolves to a loopback, private or link-local address; or an event that is not the caller's",
            body = ProblemDocument, content_type = "application/problem+json"),
        WriteProblems,
    ),
)]
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    request: CommandRequest,
) -> Result<Response, Problem> {
    caller.require(&[Role::Organizer])?;
    let new = request.body::<NewWebhook>()?;
    let types = checked(&state, &caller, &new).await?;
    if state.store.webhooks_of(&caller.user).await?.len() >= WEBHOOKS_PER_ORGANIZER {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "limit_reached",
            format!("an organizer has at most {WEBHOOKS_PER_ORGANIZER} endpoints"),
        ));
    }
    let secret = generated_secret()?;
    let webhook = WebhookRecord {
        webhook_id: WebhookId::generate(),
        organizer_id: caller.user.clone(),
        url: new.url,
        event_id: new.event_id,
        types,
        secrets: vec![SigningSecret {
            secret: secret.clone(),
            until: None,
        }],
        created_at: Timestamp::now(),
        next_sequence: 1,
        mark: 0,
    };
    state.store.add_webhook(&webhook).await?;
    let view = WebhookView {
        secret: Some(secret),
        ..WebhookView::of(&webhook)
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// List my webhook endpoints
///
/// All of the caller's endpoints, on one page, in the order they were
/// added; secrets are not shown.
#[utoipa::path(
    get,
    path = "/v1/webhooks",
    tag = "webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's endpoints", body = PageOf<WebhookView>),
        NotAnOrganizer,
        ReadProblems,
    ),
)]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response, Problem> {
    caller.require(&[Role::Organizer])?;
    let webhooks = state.store.webhooks_of(&caller.user).await?;
    let page = PageOf {
        items: webhooks.iter().map(WebhookView::of).collect(),
        next_cursor: None,
    };
    Ok(Json(page).into_response())
}

/// Remove a webhook endpoint
///
/// Nothing more is delivered to it, retries included.
#[utoipa::path(
    delete,
    path = "/v1/webhooks/{webhook_id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("webhook_id" = WebhookId, Path, description = "The endpoint")),
    responses(
        (status = 204, description = "Removed"),
        NotAnOrganizer,
        NotTheirWebhook,
        WriteProblems,
    ),
)]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(webhook_id): Path<String>,
) -> Result<Response, Problem> {
    caller.require(&[Role::Organizer])?;
    let webhook = managed_webhook(&state, &caller, &webhook_id).await?;
    if !state.store.remove_webhook(webhook.webhook_id).await? {
        return Err(Problem::not_found("webhook"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Rotate a webhook endpoint's secret
///
/// Answers a new secret, once. For the next 24 hours deliveries are signed
/// with both, so that the receiver can switch without losing any.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{webhook_id}/rotate-secret",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("webhook_id" = WebhookId, Path, description = "The endpoint")),
    responses(
        (status = 200, description = "The endpoint, with its new secret", body = WebhookView),
        NotAnOrganizer,
        NotTheirWebhook,
        WriteProblems,
    ),
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(webhook_id): Path<String>,
) -> Result<Response, Problem> {
    caller.require(&[Role::Organizer])?;
    let webhook = managed_webhook(&state, &caller, &webhook_id).await?;
    let now = Timestamp::now();
    let secret = generated_secret()?;
    let mut secrets = vec![SigningSecret {
        secret: secret.clone(),
        until: None,
    }];
    // The one in force signs a day more; those already replaced keep
    // their end, and those past it go.
    secrets.extend(
        webhook
            .secrets
            .iter()
            .filter(|old| old.until.is_none_or(|until| until > now))
            .map(|old| SigningSecret {
                secret: old.secret.clone(),
                until: Some(old.until.unwrap_or(now + OLD_SECRET_SIGNS_FOR)),
            }),
    );
    if !state
        .store
        .set_secrets(webhook.webhook_id, &secrets)
        .await?
    {
        return Err(Problem::not_found("webhook"));
    }
    let view = WebhookView {
        secret: Some(secret),
        ..WebhookView::of(&webhook)
    };
    Ok(Json(view).into_response())
}

/// List a webhook endpoint's deliveries
///
/// Newest first, with each one's attempts, last answer and the body sent.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{webhook_id}/deliveries",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("webhook_id" = WebhookId, Path, description = "The endpoint"), Paging),
    responses(
        (status = 200, description = "A page of the endpoint's deliveries", body = PageOf<DeliveryView>),
        BadPage,
        NotAnOrganizer,
        NotTheirWebhook,
        ReadProblems,
    ),
)]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(webhook_id): Path<String>,
    paging: Paging,
) -> Result<Response, Problem> {
    caller.require(&[Role::Organizer])?;
    let webhook = managed_webhook(&state, &caller, &webhook_id).await?;
    let list = format!("deliveries:{}", webhook.webhook_id);
    let request = paging.request(&state.cursors, &list)?;
    let page = state.store.deliveries(webhook.webhook_id, &request).await?;
    let log = views::page(&page, &state.cursors, &list, DeliveryView::of);
    Ok(Json(log).into_response())
}

/// Replay a delivery
///
/// Owes the delivery to the endpoint again, whatever became of it: with
/// the same `webhook-id`, so that a receiver that had it already can tell.
/// It is sent in its place in the endpoint's order, its retries running
/// for a day from now.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/replay",
    tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("webhook_id" = WebhookId, Path, description = "The endpoint"),
        ("delivery_id" = u64, Path, description = "The delivery, as the log numbers it", minimum = 1),
    ),
    responses(
        (status = 202, description = "Owed again; the delivery as it now stands", body = DeliveryView),
        NotAnOrganizer,
        (status = 404, description = "`not_found`: no such endpoint of the caller's, or no such delivery",
            body = ProblemDocument, content_type = "application/problem+json"),
        WriteProblems,
    ),
)]
pub async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path((webhook_id, delivery_id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    caller.require(&[Role::Organizer])?;
    let webhook = managed_webhook(&state, &caller, &webhook_id).await?;
    let sequence: u64 = path_id(&delivery_id, "delivery")?;
    let id = webhook.webhook_id;
    if !state.store.replay(id, sequence, Timestamp::now()).await? {
        return Err(Problem::not_found("delivery"));
    }
    let delivery = state
        .store
        .delivery(id, sequence)
        .await?
        .ok_or_else(|| Problem::not_found("delivery"))?;
    Ok((StatusCode::ACCEPTED, Json(DeliveryView::of(&delivery))).into_response())
}
