//! Health endpoints of a worker process, for orchestrators: `/healthz`
//! (the consumer makes progress: see [`Heartbeat`]), `/readyz` (it reaches
//! broker and store and is not draining), and the `/metrics` scrape.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{Json, Router, http::StatusCode, routing::get};
use eventsys_bus::Bus;
use eventsys_store::Store;
use eventsys_workers::Heartbeat;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// How long the consumer may show no progress before the process counts
/// as stuck.
pub struct Liveness {
    pub heartbeat: Heartbeat,
    pub limit: Duration,
}

pub async fn serve(
    addr: SocketAddr,
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    liveness: Liveness,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let draining = shutdown.clone();
    let app = Router::new()
        .route(
            "/healthz",
            get(move || async move {
                let stalled = liveness.heartbeat.stalled_for();
                let live = stalled <= liveness.limit;
                let status = if live { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
                let body = json!({
                    "status": if live { "ok" } else { "stuck" },
                    "stalled_seconds": stalled.as_secs(),
                });
                (status, Json(body))
            }),
        )
        .route(
            "/readyz",
            get(move || async move {
                let (broker, store) = tokio::join!(bus.is_ready(), store.ping());
                let draining = draining.is_cancelled();
                let ready = broker && store.is_ok() && !draining;
                let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
                let checks = json!({ "broker": broker, "store": store.is_ok(), "draining": draining });
                (status, Json(json!({ "status": if ready { "ready" } else { "unready" }, "checks": checks })))
            }),
        )
        .route("/metrics", get(eventsys_api::routes::health::metrics));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving health probes and metrics");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
