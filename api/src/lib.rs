//! The REST ingress and WebSocket broadcaster of eventsys.
//!
//! Thin by design: it authenticates, validates, records each write as an
//! `accepted` command, publishes it with a broker confirm and answers 202.
//! Reads come from the store, shared when a crowd asks the same thing at
//! once ([`reads`]). Business rules live in the workers.

pub mod admission;
pub mod auth;
pub mod docs;
pub mod hub;
pub mod input;
pub mod limits;
pub mod line;
pub mod problem;
pub mod reads;
pub mod republish;
pub mod routes;
pub mod server;
pub mod signing;
pub mod submit;
pub mod views;
pub mod web;
pub mod ws;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{MatchedPath, Request},
    http::StatusCode,
    middleware::{self, Next},
    response::Response,
    routing::{get, post},
};
use eventsys_bus::Bus;
use eventsys_store::Store;
use eventsys_telemetry::{metrics, trace};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, field::Empty};

use crate::{
    auth::Auth,
    hub::Hub,
    limits::{Limits, WriteRates},
    problem::Problem,
    signing::{Cursors, TicketCodes},
};

/// Everything a request handler may use.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    pub auth: Arc<Auth>,
    pub hub: Arc<Hub>,
    pub codes: Arc<TicketCodes>,
    pub cursors: Arc<Cursors>,
    pub limits: Limits,
    pub rates: Arc<WriteRates>,
    pub reads: Arc<reads::Reads>,
    /// Cancelled when the process starts draining.
    pub shutdown: CancellationToken,
    /// Whether `POST /v1/dev/token` mints tokens (see [`web`]).
    pub dev_sign_in: bool,
}

/// What the API signs and checks with: each from its own secret, so that
/// one leaking or rotating leaves the others alone.
pub struct Keys {
    pub tokens: Auth,
    pub codes: TicketCodes,
    pub cursors: Cursors,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        keys: Keys,
        limits: Limits,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            store,
            bus,
            auth: Arc::new(keys.tokens),
            hub: Arc::new(Hub::new(limits.hub, limits.admission)),
            codes: Arc::new(keys.codes),
            cursors: Arc::new(keys.cursors),
            rates: Arc::new(WriteRates::new(&limits)),
            reads: Arc::default(),
            limits,
            shutdown,
            dev_sign_in: false,
        }
    }

    /// Turns the development sign-in on or off.
    pub fn with_dev_sign_in(self, on: bool) -> Self {
        Self {
            dev_sign_in: on,
            ..self
        }
    }
}

pub fn router(state: AppState) -> Router {
    use routes::{
        commands, doors, events, health, notifications, orders, staff, tickets, waitlist, webhooks,
    };
    Router::new()
        .route("/v1/events", post(events::create).get(events::list))
        .route(
            "/v1/events/{event_id}",
            get(events::get).patch(events::update),
        )
        .route(
            "/v1/events/{event_id}/ticket-types",
            post(events::add_ticket_type),
        )
        .route(
            "/v1/events/{event_id}/ticket-types/{ticket_type_id}",
            axum::routing::patch(events::update_ticket_type),
        )
        .route("/v1/events/{event_id}/orders", post(orders::place))
        .route(
            "/v1/events/{event_id}/registrations",
            post(orders::register),
        )
        .route("/v1/events/{event_id}/checkins", post(doors::check_in))
        .route("/v1/events/{event_id}/checkins/batch", post(doors::batch))
        .route("/v1/events/{event_id}/stats", get(doors::stats))
        .route("/v1/orders/{order_id}", get(orders::get))
        .route("/v1/orders/{order_id}/confirm", post(orders::confirm))
        .route("/v1/orders/{order_id}/cancel", post(orders::cancel))
        .route("/v1/tickets/{ticket_id}/cancel", post(tickets::cancel))
        .route("/v1/tickets/{ticket_id}", get(tickets::get))
        .route("/v1/tickets/{ticket_id}/qr.svg", get(tickets::qr))
        .route("/v1/events/{event_id}/waitlist", post(waitlist::join))
        .route("/v1/events/{event_id}/waitlist/me", get(waitlist::mine))
        .route("/v1/events/{event_id}/publish", post(events::publish))
        .route("/v1/events/{event_id}/cancel", post(events::cancel))
        .route(
            "/v1/events/{event_id}/staff",
            post(staff::grant).get(staff::list),
        )
        .route(
            "/v1/events/{event_id}/staff/{user_id}",
            axum::routing::delete(staff::revoke),
        )
        .route(
            "/v1/events/{event_id}/verification-key",
            get(events::verification_key),
        )
        .route("/v1/me/tickets", get(tickets::mine))
        .route("/v1/me/notifications", get(notifications::mine))
        .route(
            "/v1/me/notifications/{notification_id}/read",
            post(notifications::mark_read),
        )
        .route("/v1/webhooks", post(webhooks::add).get(webhooks::list))
        .route(
            "/v1/webhooks/{webhook_id}",
            axum::routing::delete(webhooks::remove),
        )
        .route(
            "/v1/webhooks/{webhook_id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route(
            "/v1/webhooks/{webhook_id}/deliveries",
            get(webhooks::deliveries),
        )
        .route(
            "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/replay",
            post(webhooks::replay),
        )
        .route("/v1/commands/{command_id}", get(commands::get))
        .route("/v1/ws", get(ws::connect))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(health::metrics))
        .route("/", get(web::index))
        .route("/app.js", get(web::script))
        .route("/app.css", get(web::style))
        .route("/v1/dev/token", post(web::dev_token))
        .route("/openapi.json", get(docs::openapi_json))
        .route("/docs", get(docs::page))
        .fallback(|| async { Problem::not_found("resource") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this resource does not take that method",
            )
        })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limits::limit_writes,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::identify,
        ))
        .layer(middleware::from_fn(limits::bound_requests))
        .layer(middleware::from_fn(observe))
        .with_state(state)
}

/// Every request runs in a span that continues the caller's trace (its
/// `traceparent`, if any), and is counted and timed by route template.
async fn observe(mut request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let traceparent = request
        .headers()
        .get("traceparent")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let span = tracing::info_span!(
        "request",
        method = %method,
        route = %route,
        command = Empty,
        user = Empty,
        trace_id = Empty,
    );
    trace::follow(&span, traceparent.as_deref());
    let own = trace::traceparent(&span, traceparent.as_deref());
    span.record("trace_id", eventsys_messages::trace::trace_id(&own));
    // Decided once: what the request sends on (its commands) continues this
    // context, the one its log lines name, whether a caller sent one or not.
    if let Ok(value) = own.parse() {
        request.headers_mut().insert("traceparent", value);
    }
    let started = std::time::Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let (status, took) = (response.status(), started.elapsed());
    metrics::http_request(method.to_string(), route, status.as_u16(), took);
    let _in = span.enter();
    let millis = took.as_millis();
    // A 503 is load being shed or a dependency away, both logged where
    // they are known once, not once per refused request.
    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        tracing::warn!(%method, %path, status = status.as_u16(), millis, "request");
    } else {
        tracing::debug!(%method, %path, status = status.as_u16(), millis, "request");
    }
    response
}

/// How the API serves and stops.
#[derive(Clone, Copy, Debug)]
pub struct ServeOptions {
    /// How long the API keeps serving after turning unready, so that load
    /// balancers notice first.
    pub grace: Duration,
    /// Commands `accepted` for longer than this are published again.
    pub republish_after: Duration,
    /// How long open requests may take to finish once the API stops
    /// taking connections; what is still open then is closed.
    pub drain: Duration,
}

/// Serves the API, its broadcaster and the re-publisher on `listener` until
/// `state.shutdown`; then stops taking connections after the grace period
/// and lets open requests finish, for at most `options.drain`.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    options: ServeOptions,
) -> std::io::Result<()> {
    for shed in [
        admission::Shed::UserBusy { retry_after: 0 },
        admission::Shed::Full { retry_after: 0 },
    ] {
        metrics::may_refuse(Problem::from(shed).code);
    }
    let broadcaster = tokio::spawn(hub::run_broadcaster(
        state.bus.clone(),
        state.hub.clone(),
        state.shutdown.clone(),
    ));
    let republisher = tokio::spawn(republish::run_republisher(
        state.store.clone(),
        state.bus.clone(),
        state.hub.clone(),
        options.republish_after,
        state.shutdown.clone(),
    ));
    let shutdown = state.shutdown.clone();
    let limits = state.limits;
    let app = router(state);
    let stop = async move {
        shutdown.cancelled().await;
        tokio::time::sleep(options.grace).await;
    };
    server::serve_http(listener, app, &limits, stop, options.drain).await;
    let _ = tokio::join!(broadcaster, republisher);
    Ok(())
}
