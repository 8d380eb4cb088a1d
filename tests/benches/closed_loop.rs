//! Closed-loop benchmark: C clients, each sending its next order only when
//! the last one is final (`Prefer: wait`), N orders in all against fewer
//! seats than N, so that the sale ends sold out. The shape the peers were
//! measured in, so that the figures compare directly. Prints a table and
//! one JSON line per setup: completed orders/s, latency percentiles, CPU
//! seconds of the system's processes and CPU per completed order, and the
//! exactness checks (sold = seats, every order final).
//!
//! Run it with `tests/scripts/bench.sh` (services, release binary, rate
//! limits off); `EVENTSYS_BENCH_CLIENTS`, `EVENTSYS_BENCH_ORDERS` and
//! `EVENTSYS_BENCH_DISTRIBUTED_ORDERS` size it.

use std::time::{Duration, Instant};

use eventsys_api::auth::Role;
use eventsys_tests::{Client, Setup, System, client::event_body};
use futures::future::join_all;
use serde_json::json;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds (user + system) a process has used so far, from `/proc`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which may hold spaces, in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after ')'.
    let per_second = 100.0; // USER_HZ on Linux
    (ticks(11).unwrap_or(0.0) + ticks(12).unwrap_or(0.0)) / per_second
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// One client's orders: each sent when the last is final.
async fn buyer(client: Client, path: String, orders: usize) -> Vec<(f64, String)> {
    let mut results = Vec::with_capacity(orders);
    for _ in 0..orders {
        let started = Instant::now();
        let reply = client
            .post_with(&path, &json!({ "quantity": 1 }), &[("prefer", "wait=30")])
            .await;
        let status = match reply.status {
            200 => reply.body["status"].as_str().unwrap_or("?").to_owned(),
            202 => client
                .wait_terminal(&reply.str("command_id"), Duration::from_secs(120))
                .await["status"]
                .as_str()
                .unwrap_or("?")
                .to_owned(),
            other => format!("http {other}"),
        };
        results.push((started.elapsed().as_secs_f64() * 1000.0, status));
    }
    results
}

struct Run {
    setup: &'static str,
    orders: usize,
    seats: u32,
    seconds: f64,
    latencies: Vec<f64>,
    succeeded: usize,
    sold_out: usize,
    other: usize,
    cpu: f64,
}

async fn run(name: &'static str, setup: Setup, clients: usize, orders: usize) -> Run {
    let mut system = System::start(setup).await;
    let seats = u32::try_from(orders * 3 / 4).unwrap_or(u32::MAX);
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(seats)).await;
    let path = format!("/v1/events/{event_id}/orders");
    let pids: Vec<u32> = system.names().iter().map(|n| system.pid(n)).collect();
    let cpu_before: f64 = pids.iter().map(|p| cpu_seconds(*p)).sum();
    let started = Instant::now();
    let per_client = orders / clients;
    let results = join_all((0..clients).map(|i| {
        let client = system.client(&format!("buyer-{i}"), &[Role::Attendee]);
        buyer(client, path.clone(), per_client)
    }))
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = pids.iter().map(|p| cpu_seconds(*p)).sum::<f64>() - cpu_before;
    let all: Vec<(f64, String)> = results.into_iter().flatten().collect();
    let mut latencies: Vec<f64> = all.iter().map(|(ms, _)| *ms).collect();
    latencies.sort_by(f64::total_cmp);
    let count = |status: &str| all.iter().filter(|(_, s)| s == status).count();
    let (succeeded, sold_out) = (count("succeeded"), count("rejected"));
    Run {
        setup: name,
        orders: all.len(),
        seats,
        seconds,
        latencies,
        succeeded,
        sold_out,
        other: all.len() - succeeded - sold_out,
        cpu,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let clients = setting("EVENTSYS_BENCH_CLIENTS", 16);
    let embedded = setting("EVENTSYS_BENCH_ORDERS", 2_000);
    let distributed = setting("EVENTSYS_BENCH_DISTRIBUTED_ORDERS", 160);
    println!(
        "closed loop: {clients} clients, each ordering one ticket when its last order is final; \
         seats = 3/4 of the orders; rate limits off"
    );
    let runs = [
        run("embedded", Setup::Embedded, clients, embedded).await,
        run(
            "rabbitmq+dynamodb, roles apart",
            Setup::Roles { ticketing: 1 },
            clients,
            distributed,
        )
        .await,
    ];
    println!(
        "{:<32} {:>7} {:>10} {:>9} {:>9} {:>9} {:>11} {:>13} {:>9}",
        "setup",
        "orders",
        "final/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "CPU s",
        "CPU ms/order",
        "exact"
    );
    for r in &runs {
        let exact = r.succeeded == r.seats as usize && r.other == 0;
        println!(
            "{:<32} {:>7} {:>10.1} {:>9.1} {:>9.1} {:>9.1} {:>11.2} {:>13.2} {:>9}",
            r.setup,
            r.orders,
            r.orders as f64 / r.seconds,
            percentile(&r.latencies, 50.0),
            percentile(&r.latencies, 95.0),
            percentile(&r.latencies, 99.0),
            r.cpu,
            r.cpu * 1000.0 / r.orders as f64,
            if exact { "yes" } else { "NO" }
        );
    }
    for r in &runs {
        println!(
            "{}",
            json!({
                "scenario": "closed-loop",
                "setup": r.setup,
                "clients": clients,
                "orders": r.orders,
                "seats": r.seats,
                "seconds": r.seconds,
                "completed_per_second": r.orders as f64 / r.seconds,
                "p50_ms": percentile(&r.latencies, 50.0),
                "p95_ms": percentile(&r.latencies, 95.0),
                "p99_ms": percentile(&r.latencies, 99.0),
                "succeeded": r.succeeded,
                "sold_out": r.sold_out,
                "not_final": r.other,
                "oversold": r.succeeded.saturating_sub(r.seats as usize),
                "cpu_seconds": r.cpu,
                "cpu_ms_per_order": r.cpu * 1000.0 / r.orders as f64,
            })
        );
    }
}
