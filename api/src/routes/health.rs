//! Probes. Liveness says the process serves requests and nothing more, so
//! that a broker or store outage never restarts every replica at once;
//! readiness says whether this replica can do useful work right now.

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::AppState;

pub async fn live() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

pub async fn ready(State(state): State<AppState>) -> Response {
    let draining = state.shutdown.is_cancelled();
    let (broker, store) = tokio::join!(state.bus.is_ready(), state.store.ping());
    let store = store.is_ok();
    let ready = broker && store && !draining;
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
