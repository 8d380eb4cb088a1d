//! The catalogue of what eventsys measures, and the Prometheus recorder
//! that serves it on `GET /metrics`.
//!
//! Every name is here once; the code records through the functions below,
//! and `deploy/monitoring` (dashboard and alerts) names nothing else. Labels
//! take values from closed sets (routes as templates, command types, queue
//! names, outcomes), never ids, so that a series count stays bounded.

use std::{sync::OnceLock, time::Duration};

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "eventsys_http_requests_total";
pub const HTTP_DURATION: &str = "eventsys_http_request_duration_seconds";
pub const COMMANDS_ACCEPTED: &str = "eventsys_commands_accepted_total";
pub const COMMANDS_REFUSED: &str = "eventsys_commands_refused_total";
pub const COMMANDS_FINISHED: &str = "eventsys_commands_finished_total";
pub const COMMAND_LATENCY: &str = "eventsys_command_latency_seconds";
pub const DELIVERIES: &str = "eventsys_deliveries_total";
pub const DELIVERY_DURATION: &str = "eventsys_delivery_duration_seconds";
pub const DELIVERY_RETRIES: &str = "eventsys_delivery_retries_total";
pub const REDELIVERIES: &str = "eventsys_redeliveries_total";
pub const QUEUE_DEPTH: &str = "eventsys_queue_depth";
pub const CONSUMER_STALLED: &str = "eventsys_consumer_stalled_seconds";
pub const WEBSOCKET_CONNECTIONS: &str = "eventsys_websocket_connections";
pub const WEBSOCKET_FRAMES: &str = "eventsys_websocket_frames_total";
pub const STORE_CALL_DURATION: &str = "eventsys_store_call_duration_seconds";
pub const STORE_ERRORS: &str = "eventsys_store_errors_total";
pub const STORE_CONCURRENCY: &str = "eventsys_store_concurrency_limit";
pub const BROKER_PUBLISH_DURATION: &str = "eventsys_broker_publish_duration_seconds";
pub const BROKER_ERRORS: &str = "eventsys_broker_errors_total";
pub const WEBHOOK_ATTEMPTS: &str = "eventsys_webhook_attempts_total";
pub const BUILD_INFO: &str = "eventsys_build_info";

/// Every name above, for checks that the dashboard and alerts name only
/// what is exported.
pub const ALL: &[&str] = &[
    HTTP_REQUESTS,
    HTTP_DURATION,
    COMMANDS_ACCEPTED,
    COMMANDS_REFUSED,
    COMMANDS_FINISHED,
    COMMAND_LATENCY,
    DELIVERIES,
    DELIVERY_DURATION,
    DELIVERY_RETRIES,
    REDELIVERIES,
    QUEUE_DEPTH,
    CONSUMER_STALLED,
    WEBSOCKET_CONNECTIONS,
    WEBSOCKET_FRAMES,
    STORE_CALL_DURATION,
    STORE_ERRORS,
    STORE_CONCURRENCY,
    BROKER_PUBLISH_DURATION,
    BROKER_ERRORS,
    WEBHOOK_ATTEMPTS,
    BUILD_INFO,
];

/// The `kind` label of [`STORE_ERRORS`].
const STORE_ERROR_KINDS: &[&str] = &["throttled", "unavailable", "rejected", "missing_table"];

/// The `operation` label of [`BROKER_ERRORS`].
const BROKER_OPERATIONS: &[&str] = &["publish", "consume", "settle"];

/// Histogram buckets in seconds: from a fast store call to a sale's queue.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The recorder of this process, once installed.
static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder; `role` labels every series. Call
/// once, from `main`, inside the runtime: it keeps its histograms trimmed
/// from a task of its own.
pub fn install(role: &'static str) -> Result<(), BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets(BUCKETS)?
        .add_global_label("role", role)
        .install_recorder()?;
    describe();
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    // Errors show as zero before the first one, so that rates and alerts
    // on them have a series to read.
    for kind in STORE_ERROR_KINDS {
        counter!(STORE_ERRORS, "kind" => *kind).absolute(0);
    }
    for operation in BROKER_OPERATIONS {
        counter!(BROKER_ERRORS, "operation" => *operation).absolute(0);
    }
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let _ = RECORDER.set(handle);
    Ok(())
}

/// Everything measured so far, in the Prometheus text format; `None` when
/// no recorder was installed.
pub fn render() -> Option<String> {
    RECORDER.get().map(PrometheusHandle::render)
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route template and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request, by method and route template"
    );
    describe_counter!(
        COMMANDS_ACCEPTED,
        "Commands recorded and published (answered 202), by type"
    );
    describe_counter!(
        COMMANDS_REFUSED,
        "Writes refused before recording because the replica was overloaded, by reason"
    );
    describe_counter!(
        COMMANDS_FINISHED,
        "Commands that reached a terminal status in this process, by type and status"
    );
    describe_histogram!(
        COMMAND_LATENCY,
        Unit::Seconds,
        "From acceptance to terminal status, by type"
    );
    describe_counter!(
        DELIVERIES,
        "Deliveries settled, by queue and outcome (ack, hand_back, dead_letter)"
    );
    describe_histogram!(
        DELIVERY_DURATION,
        Unit::Seconds,
        "Time from taking a delivery to settling it, by queue"
    );
    describe_counter!(
        DELIVERY_RETRIES,
        "Transient failures retried in place while handling a delivery, by queue"
    );
    describe_counter!(
        REDELIVERIES,
        "Deliveries that had been delivered before, by queue"
    );
    describe_gauge!(
        QUEUE_DEPTH,
        "Messages ready in a work queue, as its consumer last saw it"
    );
    describe_gauge!(
        CONSUMER_STALLED,
        Unit::Seconds,
        "How long the consumer has shown no progress (its loop not turning, or its deliveries not settling), by queue"
    );
    describe_gauge!(WEBSOCKET_CONNECTIONS, "Open WebSocket connections");
    describe_counter!(
        WEBSOCKET_FRAMES,
        "WebSocket frames, by direction (sent, dropped)"
    );
    describe_histogram!(
        STORE_CALL_DURATION,
        Unit::Seconds,
        "Time a store call took once it was sent"
    );
    describe_counter!(
        STORE_ERRORS,
        "Store calls that failed, by kind (throttled, unavailable, rejected)"
    );
    describe_gauge!(
        STORE_CONCURRENCY,
        "Store calls this process lets be in flight at once"
    );
    describe_histogram!(
        BROKER_PUBLISH_DURATION,
        Unit::Seconds,
        "Time from publishing to the broker's confirm, by exchange"
    );
    describe_counter!(BROKER_ERRORS, "Broker operations that failed, by operation");
    describe_counter!(
        WEBHOOK_ATTEMPTS,
        "Attempts to deliver to webhook endpoints, by outcome"
    );
    describe_gauge!(BUILD_INFO, "1, labelled with the running version");
}

pub fn http_request(method: String, route: String, status: u16, took: Duration) {
    counter!(HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    histogram!(HTTP_DURATION, "method" => method, "route" => route).record(took.as_secs_f64());
}

pub fn command_accepted(command: &'static str) {
    counter!(COMMANDS_ACCEPTED, "command" => command).increment(1);
}

/// `reason` may be counted by [`command_refused`]: it shows as zero until then.
pub fn may_refuse(reason: &'static str) {
    counter!(COMMANDS_REFUSED, "reason" => reason).absolute(0);
}

pub fn command_refused(reason: &'static str) {
    counter!(COMMANDS_REFUSED, "reason" => reason).increment(1);
}

/// A command reached `status` here, `since` its acceptance.
pub fn command_finished(command: &str, status: &'static str, since: Duration) {
    let command = command.to_owned();
    counter!(COMMANDS_FINISHED, "command" => command.clone(), "status" => status).increment(1);
    histogram!(COMMAND_LATENCY, "command" => command).record(since.as_secs_f64());
}

/// A consumer of `queue` starts: its outcomes show as zero until they
/// happen, dead letters above all.
pub fn consuming(queue: &'static str) {
    for outcome in ["ack", "hand_back", "dead_letter", "unsettled"] {
        counter!(DELIVERIES, "queue" => queue, "outcome" => outcome).absolute(0);
    }
    counter!(DELIVERY_RETRIES, "queue" => queue).absolute(0);
    counter!(REDELIVERIES, "queue" => queue).absolute(0);
}

pub fn delivery_settled(queue: &'static str, outcome: &'static str, took: Duration) {
    counter!(DELIVERIES, "queue" => queue, "outcome" => outcome).increment(1);
    histogram!(DELIVERY_DURATION, "queue" => queue).record(took.as_secs_f64());
}

/// The outcomes of [`webhook_attempt`]: shown as zero from the start.
const WEBHOOK_OUTCOMES: &[&str] = &["delivered", "refused", "unreached", "given_up"];

/// A process starts sending webhooks.
pub fn sending_webhooks() {
    for outcome in WEBHOOK_OUTCOMES {
        counter!(WEBHOOK_ATTEMPTS, "outcome" => *outcome).absolute(0);
    }
}

/// An attempt to deliver to an endpoint: `delivered`, `refused` (a non-2xx
/// answer), `unreached` (no answer), or `given_up` (its last, failed).
pub fn webhook_attempt(outcome: &'static str) {
    counter!(WEBHOOK_ATTEMPTS, "outcome" => outcome).increment(1);
}

pub fn delivery_retried(queue: &'static str) {
    counter!(DELIVERY_RETRIES, "queue" => queue).increment(1);
}

pub fn redelivered(queue: &'static str) {
    counter!(REDELIVERIES, "queue" => queue).increment(1);
}

pub fn queue_depth(queue: &'static str, ready: u32) {
    gauge!(QUEUE_DEPTH, "queue" => queue).set(f64::from(ready));
}

pub fn consumer_stalled(queue: &'static str, stalled: Duration) {
    gauge!(CONSUMER_STALLED, "queue" => queue).set(stalled.as_secs_f64());
}

pub fn websocket_opened() {
    gauge!(WEBSOCKET_CONNECTIONS).increment(1.0);
}

pub fn websocket_closed() {
    gauge!(WEBSOCKET_CONNECTIONS).decrement(1.0);
}

/// A frame `sent` to a client, or `dropped` because it could not keep up.
pub fn websocket_frame(direction: &'static str) {
    counter!(WEBSOCKET_FRAMES, "direction" => direction).increment(1);
}

pub fn store_call(took: Duration) {
    histogram!(STORE_CALL_DURATION).record(took.as_secs_f64());
}

pub fn store_error(kind: &'static str) {
    counter!(STORE_ERRORS, "kind" => kind).increment(1);
}

pub fn store_concurrency(limit: usize) {
    gauge!(STORE_CONCURRENCY).set(limit as f64);
}

pub fn broker_published(exchange: &'static str, took: Duration) {
    histogram!(BROKER_PUBLISH_DURATION, "exchange" => exchange).record(took.as_secs_f64());
}

pub fn broker_error(operation: &'static str) {
    counter!(BROKER_ERRORS, "operation" => operation).increment(1);
}
