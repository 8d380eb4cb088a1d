//! What an operator sees: every role's `/metrics` during a small flash
//! sale agrees with what the store holds, and one command's spans from the
//! API and the worker share one trace, exported over OTLP.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, body::Bytes, routing::post};
use eventsys_api::auth::Role;
use eventsys_tests::{
    Setup, System,
    client::event_body,
    eventually, on_both,
    rush::rush,
    scrape::{Samples, named_in_monitoring},
};
use serde_json::Value;

const BUYERS: usize = 30;
const SEATS: u32 = 10;

on_both!(
    every_role_counts_a_flash_sale_as_the_store_holds_it,
    Setup::Roles { ticketing: 2 }
);

async fn every_role_counts_a_flash_sale_as_the_store_holds_it(setup: Setup) {
    let mut system = System::start(setup).await;
    let sale = rush(&system, BUYERS, SEATS).await;
    let (succeeded, rejected) = (sale.count("succeeded", None), sale.count("rejected", None));
    assert_eq!(
        (succeeded, rejected),
        (SEATS as usize, BUYERS - SEATS as usize)
    );

    // A delivery is acked just after its outcome goes out: wait for the
    // last acks before reading the counters.
    let seller = match setup {
        Setup::Roles { .. } => "ticketing",
        _ => "serve",
    };
    let acked = [("queue", "eventsys.ticketing"), ("outcome", "ack")];
    let acks = eventually(Duration::from_secs(10), BUYERS as f64, || async {
        of(&system.scrape().await, seller).sum("eventsys_deliveries_total", &acked)
    })
    .await;
    assert_eq!(
        acks, BUYERS as f64,
        "one ack per order on the ticketing queue"
    );

    let scrapes = system.scrape().await;
    for (process, text) in &scrapes {
        assert!(
            text.contains("eventsys_build_info{"),
            "{process} exports no build info:\n{text}"
        );
    }
    let role = |name: &str| of(&scrapes, name);
    let all = role("");
    let (front, sellers) = match setup {
        Setup::Roles { .. } => (role("api"), role("ticketing")),
        _ => (role("serve"), role("serve")),
    };
    let order = [("command", "order.place")];
    let finished = |status: &str| {
        sellers.sum(
            "eventsys_commands_finished_total",
            &[("command", "order.place"), ("status", status)],
        )
    };

    // The store is the truth the counters must agree with.
    let oracle = system.oracle().await;
    let confirmed = oracle.count("orders", "status", "confirmed").await;
    let refused = oracle.count("orders", "status", "rejected").await;
    assert_eq!((confirmed, refused), (succeeded, rejected));
    assert_eq!(
        (
            finished("succeeded"),
            finished("rejected"),
            finished("failed")
        ),
        (confirmed as f64, refused as f64, 0.0),
        "orders by outcome, as the sellers count them"
    );
    assert_eq!(
        sellers.sum("eventsys_command_latency_seconds_count", &order),
        BUYERS as f64
    );
    assert_eq!(
        front.sum("eventsys_commands_accepted_total", &order),
        BUYERS as f64
    );
    let placed = [
        ("route", "/v1/events/{event_id}/orders"),
        ("method", "POST"),
        ("status", "202"),
    ];
    assert_eq!(
        front.sum("eventsys_http_requests_total", &placed),
        BUYERS as f64
    );
    assert_eq!(
        front.sum("eventsys_http_request_duration_seconds_count", &placed[..2]),
        BUYERS as f64
    );
    assert_eq!(
        all.sum("eventsys_deliveries_total", &[("outcome", "dead_letter")]),
        0.0
    );
    assert!(
        front.sum("eventsys_websocket_frames_total", &[("direction", "sent")]) >= BUYERS as f64
    );

    if !setup.is_embedded() {
        assert!(all.sum("eventsys_store_call_duration_seconds_count", &[]) > 0.0);
        // What the dashboard and alerts read is what the processes export.
        let exported = all.families();
        let missing: Vec<String> = named_in_monitoring()
            .into_iter()
            .filter(|name| !exported.contains(name))
            .collect();
        assert!(
            missing.is_empty(),
            "named in deploy/monitoring, never exported: {missing:?}"
        );
        for queue in [
            "eventsys.ticketing",
            "eventsys.registration",
            "eventsys.notification",
            "eventsys.webhooks",
        ] {
            assert_eq!(
                all.0
                    .iter()
                    .filter(|s| s.name == "eventsys_queue_depth" && s.labels["queue"] == queue)
                    .count(),
                if queue == "eventsys.ticketing" { 2 } else { 1 },
                "every consumer reports its queue's depth"
            );
        }
    }
}

/// The samples of every process whose name starts with `prefix`.
fn of(scrapes: &[(String, String)], prefix: &str) -> Samples {
    let texts: Vec<&str> = scrapes
        .iter()
        .filter(|(process, _)| process.starts_with(prefix))
        .map(|(_, text)| text.as_str())
        .collect();
    Samples::parse(&texts.join("\n"))
}

/// Spans as an OTLP/HTTP collector receives them (JSON encoding).
#[derive(Clone, Default)]
struct Collector {
    batches: Arc<Mutex<Vec<Value>>>,
}

impl Collector {
    /// Listens on a loopback port; returns its base URL.
    async fn start(&self) -> String {
        let batches = self.batches.clone();
        let app = Router::new().route(
            "/v1/traces",
            post(move |body: Bytes| async move {
                if let Ok(batch) = serde_json::from_slice::<Value>(&body) {
                    batches.lock().expect("the collector's lock").push(batch);
                }
                "{}"
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    /// Every span received: (service name, span name, trace id, parent span id).
    fn spans(&self) -> Vec<(String, String, String, String)> {
        let batches = self.batches.lock().expect("the collector's lock");
        let mut spans = Vec::new();
        for resource in batches.iter().flat_map(|b| list(&b["resourceSpans"])) {
            let service = list(&resource["resource"]["attributes"])
                .find(|a| a["key"] == "service.name")
                .and_then(|a| a["value"]["stringValue"].as_str())
                .unwrap_or_default()
                .to_owned();
            for span in list(&resource["scopeSpans"]).flat_map(|s| list(&s["spans"])) {
                let text = |field: &str| span[field].as_str().unwrap_or_default().to_owned();
                spans.push((
                    service.clone(),
                    text("name"),
                    text("traceId"),
                    text("parentSpanId"),
                ));
            }
        }
        spans
    }
}

fn list(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commands_spans_from_api_to_worker_to_push_share_one_trace() {
    let collector = Collector::default();
    let endpoint = collector.start().await;
    let system = System::start_with(
        Setup::Roles { ticketing: 1 },
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await;
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(5)).await;
    let buyer = system.client("traced-buyer", &[Role::Attendee]);
    let mut feed = buyer.live().await;

    // The caller's own trace: everything the order causes continues it.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let accepted = buyer
        .post_with(
            &format!("/v1/events/{event_id}/orders"),
            &serde_json::json!({ "quantity": 1 }),
            &[("traceparent", &traceparent)],
        )
        .await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    let command_id = accepted.str("command_id");
    feed.wait_for(Duration::from_secs(30), |f| {
        f["type"] == "command.updated"
            && f["command_id"] == command_id.as_str()
            && f["status"] == "succeeded"
    })
    .await
    .expect("the order succeeds");

    let wanted = [
        ("eventsys-api", "request"),
        ("eventsys-ticketing", "delivery"),
        ("eventsys-api", "push"),
    ];
    let deadline = Instant::now() + Duration::from_secs(20);
    let spans = loop {
        let spans: Vec<_> = collector
            .spans()
            .into_iter()
            .filter(|(_, _, trace, _)| trace == trace_id)
            .collect();
        let found = wanted
            .iter()
            .all(|(service, name)| spans.iter().any(|s| s.0 == *service && s.1 == *name));
        if found || Instant::now() > deadline {
            break spans;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for (service, name) in wanted {
        let span = spans
            .iter()
            .find(|s| s.0 == service && s.1 == name)
            .unwrap_or_else(|| {
                panic!("no {name} span from {service} in trace {trace_id}: {spans:?}")
            });
        assert!(
            !span.3.is_empty(),
            "the {name} span of {service} has no parent: {span:?}"
        );
    }

    // The worker's log lines about the command name it, its issuer and
    // the trace, as JSON (its output is not a terminal).
    let about = logged_about(&system, "ticketing-0", &command_id).await;
    for line in &about {
        assert_eq!(line["span"]["trace_id"], trace_id, "{line}");
        assert_eq!(line["span"]["user"], "traced-buyer", "{line}");
    }
}

/// Without an exporter or a caller's trace, the API's and the worker's log
/// lines about one command still name one trace: the one the API started.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_export_the_logs_of_api_and_worker_name_one_trace() {
    let system = System::start(Setup::Roles { ticketing: 1 }).await;
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(5)).await;
    let buyer = system.client("untraced-buyer", &[Role::Attendee]);
    let command_id = buyer.order(&event_id, 1).await.str("command_id");
    buyer
        .wait_terminal(&command_id, Duration::from_secs(30))
        .await;
    let mut traces = Vec::new();
    for process in ["api", "ticketing-0"] {
        let lines = logged_about(&system, process, &command_id).await;
        traces.extend(lines.iter().map(|line| line["span"]["trace_id"].clone()));
    }
    traces.dedup();
    assert_eq!(traces.len(), 1, "{traces:?}");
    assert_eq!(traces[0].as_str().map(str::len), Some(32), "{traces:?}");
}

/// The JSON log lines of `process` logged inside a span about `command`;
/// at least one. A worker logs what it carried out just after writing it,
/// so the lines are waited for a moment.
async fn logged_about(system: &System, process: &str, command: &str) -> Vec<Value> {
    let path = system.logs.join(format!("{process}.log"));
    let read = || {
        let log = std::fs::read_to_string(&path).expect("the process's log");
        let about: Vec<Value> = log
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["span"]["command"] == command)
            .collect();
        (about, log)
    };
    let found = eventually(Duration::from_secs(5), true, || async {
        !read().0.is_empty()
    })
    .await;
    let (about, log) = read();
    assert!(
        found,
        "no JSON log line of {process} names command {command}:\n{log}"
    );
    about
}
