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
use serde_json::json;

use crate::AppState;

/// How long readiness waits to learn whether the broker is there; a probe
/// must answer, whatever a reconnection is doing.
const BROKER_CHECK: Duration = Duration::from_secs(1);

pub async fn live() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

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
    let body = Json(json!({
        "status": if ready { "ready" } else { "unready" },
        "checks": { "broker": broker, "store": store, "draining": draining },
    }));
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body).into_response()
}

/// The Prometheus scrape: what this process measured so far. Unauthenticated
/// like the probes, and for the same audience; the Ingress does not route it.
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
