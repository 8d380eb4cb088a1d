//! Probes. Liveness says the process serves requests and nothing more, so
//! that a broker or store outage never restarts every replica at once;
//! readiness says whether this replica can do useful work right now. The
//! broker is reported but does not make a replica unready: without it only
//! writes fail (503, with Retry-After), while reads and live connections
//! keep working, and a short broker blip must not take every replica out
//! of the load balancer at once.

use std::time::Duration;

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    AppState,
    problem::{ProblemDocument, RequestProblems},
};

/// How long readiness waits to learn whether the broker is there; a probe
/// must answer, whatever a reconnection is doing.
const BROKER_CHECK: Duration = Duration::from_secs(1);

/// The process serves requests.
#[derive(Serialize, ToSchema)]
pub struct Liveness {
    /// `ok`.
    #[schema(pattern = "^ok$")]
    status: &'static str,
}

/// Whether this replica can do useful work now, and what it checked.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    status: ReadyStatus,
    checks: ReadyChecks,
}

/// `ready` when the store answers and the replica is not draining.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    Ready,
    Unready,
}

/// What readiness looked at.
#[derive(Serialize, ToSchema)]
pub struct ReadyChecks {
    /// The broker answers; reported, not required: without it only writes fail.
    broker: bool,
    /// The store answers.
    store: bool,
    /// The replica is shutting down.
    draining: bool,
}

/// Liveness probe
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "Alive", body = Liveness),
        RequestProblems,
    ),
)]
pub async fn live() -> Response {
    Json(Liveness { status: "ok" }).into_response()
}

/// Readiness probe
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready: the store does not answer, or the replica is draining", body = Readiness),
        RequestProblems,
    ),
)]
pub async fn ready(State(state): State<AppState>) -> Response {
    let draining = state.shutdown.is_cancelled();
    let broker = async {
        tokio::time::timeout(BROKER_CHECK, state.bus.is_ready())
            .await
            .unwrap_or(false)
    };
    let (broker, store) = tokio::join!(broker, state.store.ping());
    let store = store.is_ok();
    let ready = store && !draining;
    let body = Json(Readiness {
        status: if ready {
            ReadyStatus::Ready
        } else {
            ReadyStatus::Unready
        },
        checks: ReadyChecks {
            broker,
            store,
            draining,
        },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body).into_response()
}

/// Prometheus metrics
///
/// The Prometheus scrape: what this process measured so far. Unauthenticated
/// like the probes, and for the same audience; the Ingress does not route it.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "The Prometheus text format, version 0.0.4", body = String,
            content_type = "text/plain; version=0.0.4; charset=utf-8"),
        (status = 404, description = "`not_found`: this process does not record metrics",
            body = ProblemDocument, content_type = "application/problem+json"),
        RequestProblems,
    ),
)]
pub async fn metrics() -> Response {
    match eventsys_telemetry::metrics::render() {
        Some(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        None => crate::problem::Problem::not_found("metrics").into_response(),
    }
}
