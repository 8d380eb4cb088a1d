//! Closed-loop benchmark: C clients, each sending its next order only when
//! the last one is final (`Prefer: wait`), N orders in all against fewer
//! seats than N, so that the sale ends sold out. The shape the peers were
//! measured in, so that the figures compare directly. Prints a table and
//! one JSON line per setup: completed orders/s, latency percentiles, CPU
//! seconds of the system's processes and CPU per completed order, and the
//! exactness checks (sold = seats, every order final). Beside them, the
//! store's ceiling, 16 writers at a time on the same server: single
//! conditional `PutItem`s with the adapter's client settings, and the write
//! that records a command today (a one-item transaction), so that the
//! distributed figure reads as a ratio to what its store can do at all.
//!
//! Run it with `tests/scripts/bench.sh` (services, release binary, rate
//! limits off); `EVENTSYS_BENCH_CLIENTS`, `EVENTSYS_BENCH_ORDERS` and
//! `EVENTSYS_BENCH_DISTRIBUTED_ORDERS` size it.

use std::time::{Duration, Instant};

use eventsys_api::auth::Role;
use eventsys_messages::{CommandId, CommandStatus, Timestamp, UserId};
use eventsys_store::{CommandLog, CommandRecord};
use eventsys_store_dynamodb::DynamoStore;
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

/// Writes per second that `writers` concurrent tasks, each running `write`
/// again as soon as it is done, get through in `period`.
async fn rate<F, Fut>(writers: usize, period: Duration, write: F) -> f64
where
    F: Fn(u64) -> Fut + Clone,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    let counts = join_all((0..writers).map(|w| {
        let write = write.clone();
        async move {
            let mut written = 0_u32;
            let mut n = (w as u64) << 32;
            while started.elapsed() < period {
                n += 1;
                if write(n).await {
                    written += 1;
                }
            }
            written
        }
    }))
    .await;
    f64::from(counts.iter().sum::<u32>()) / started.elapsed().as_secs_f64()
}

/// Single conditional `PutItem`s per second on `system`'s commands table,
/// with the adapter's client settings.
async fn put_ceiling(system: &System, writers: usize, period: Duration) -> f64 {
    use aws_sdk_dynamodb::types::AttributeValue;
    let config = system.store_config();
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(config.endpoint.clone().unwrap_or_default())
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local", "local", None, None, "bench",
        ))
        .region(aws_config::Region::new("us-east-1"))
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&shared);
    let table = format!("{}commands", config.table_prefix);
    rate(writers, period, move |n| {
        let (client, table) = (client.clone(), table.clone());
        async move {
            client
                .put_item()
                .table_name(table)
                .item("command_id", AttributeValue::S(format!("ceiling-{n}")))
                .item("status", AttributeValue::S("accepted".into()))
                .condition_expression("attribute_not_exists(command_id)")
                .send()
                .await
                .is_ok()
        }
    })
    .await
}

/// Commands recorded per second through the store port, as the API
/// records them.
async fn store_ceiling(system: &System, writers: usize, period: Duration) -> f64 {
    let store = std::sync::Arc::new(DynamoStore::connect(&system.store_config()).await);
    rate(writers, period, move |_| {
        let store = store.clone();
        async move {
            let id = CommandId::generate();
            let now = Timestamp::now();
            let record = CommandRecord {
                command_id: id,
                kind: "order.place".into(),
                issuer: UserId::parse("ceiling").expect("a user id"),
                status: CommandStatus::Accepted,
                submitted_at: now,
                updated_at: now,
                resources: Default::default(),
                result: None,
                error: None,
                message: format!(r#"{{"message_id":"{id}"}}"#),
            };
            store.record_command(&record, None).await.is_ok()
        }
    })
    .await
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
    // A fresh system, so that its tables are as small as the sale's were.
    let (ceiling, recorded) = {
        let system = System::start(Setup::Roles { ticketing: 1 }).await;
        let period = Duration::from_secs(5);
        (
            put_ceiling(&system, 16, period).await,
            store_ceiling(&system, 16, period).await,
        )
    };
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
    let distributed_rate = runs[1].orders as f64 / runs[1].seconds;
    println!(
        "store ceiling: {ceiling:.0} conditional PutItems/s ({recorded:.0} commands recorded/s \
         as the API records them); distributed completed orders/s = {:.3} x the ceiling",
        distributed_rate / ceiling
    );
    println!(
        "{}",
        json!({ "scenario": "store-ceiling", "put_items_per_second": ceiling,
                "commands_recorded_per_second": recorded,
                "distributed_completed_ratio": distributed_rate / ceiling })
    );
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
