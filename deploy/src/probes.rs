//! Health endpoints of a worker process, for orchestrators: `/healthz`
//! (the process runs) and `/readyz` (it reaches broker and store and is not
//! draining).

use std::{net::SocketAddr, sync::Arc};

use axum::{Json, Router, http::StatusCode, routing::get};
use eventsys_bus::Bus;
use eventsys_store::Store;
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub async fn serve(
    addr: SocketAddr,
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let draining = shutdown.clone();
    let app = Router::new()
        .route("/healthz", get(|| async { Json(json!({ "status": "ok" })) }))
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
        );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving health probes");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
