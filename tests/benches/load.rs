//! The load generator: runs the scenarios of [`eventsys_tests::scenario`]
//! against the real binary, on the embedded adapters and with the roles as
//! separate processes on RabbitMQ and the DynamoDB-compatible server, and
//! prints a table and one JSON line per scenario and setup.
//!
//! `cargo bench -p eventsys-tests --bench load -- [SCENARIO...]` with
//! scenarios among `store-ceiling`, `flash-sale`, `closed-loop`, `steady`,
//! `fanout` and `overload` (all by default); `tests/scripts/bench.sh` starts the
//! services and builds the release binary first. Sizes come from
//! `EVENTSYS_BENCH_*` (see [`Sizes`]). Rate limits are off; everything else
//! is as deployed: fsync'd, publisher confirms on. See BENCHMARKS.md.

use std::time::Duration;

use eventsys_tests::{
    Setup, System, overload,
    scenario::{self, Figures},
};
use serde_json::json;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(format!("EVENTSYS_BENCH_{name}"))
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How big each scenario is, per setup.
struct Sizes {
    buyers: usize,
    seats: u32,
    clients: usize,
    orders: usize,
    rate: u32,
    seconds: u64,
    followers: usize,
    fanout_orders: usize,
    rush_seconds: u64,
}

impl Sizes {
    fn of(distributed: bool) -> Self {
        // The emulated store slows down as its tables grow (it copies them
        // for every transaction): a distributed rush is kept short enough
        // that what it measures is the system, not the emulator's crawl.
        let (prefix, buyers, orders, rate, followers, rush) = if distributed {
            ("DISTRIBUTED_", 500, 160, 100, 2_000, 15)
        } else {
            ("", 5_000, 2_000, 500, 10_000, 60)
        };
        let buyers = setting(&format!("{prefix}BUYERS"), buyers);
        Self {
            buyers,
            seats: u32::try_from(setting(&format!("{prefix}SEATS"), buyers / 10)).unwrap_or(1),
            clients: setting("CLIENTS", 16),
            orders: setting(&format!("{prefix}ORDERS"), orders),
            rate: u32::try_from(setting(&format!("{prefix}RATE"), rate)).unwrap_or(1),
            seconds: setting("SECONDS", 20) as u64,
            followers: setting(&format!("{prefix}FOLLOWERS"), followers),
            fanout_orders: setting("FANOUT_ORDERS", 100),
            rush_seconds: setting(&format!("{prefix}RUSH_SECONDS"), rush) as u64,
        }
    }
}

/// Enough room for every connection a scenario opens.
const ROOMY: [(&str, &str); 2] = [
    ("EVENTSYS_MAX_CONNECTIONS", "19000"),
    ("EVENTSYS_WS_CONNECTIONS", "19000"),
];

async fn run(scenario: &str, name: &str, setup: Setup) -> Figures {
    let sizes = Sizes::of(!setup.is_embedded());
    let mut system = System::start_with(setup, &ROOMY).await;
    let figures = match scenario {
        "flash-sale" => scenario::flash_sale(&mut system, name, sizes.buyers, sizes.seats).await,
        "closed-loop" => {
            scenario::closed_loop(&mut system, name, sizes.clients, sizes.orders).await
        }
        "steady" => {
            let period = Duration::from_secs(sizes.seconds);
            scenario::steady(&mut system, name, sizes.rate, period).await
        }
        "fanout" => scenario::fanout(&mut system, name, sizes.followers, sizes.fanout_orders).await,
        "overload" => {
            // Capacity measured on the same system first, closed loop.
            let capacity = scenario::closed_loop(&mut system, name, sizes.clients, sizes.orders)
                .await
                .completed_per_second();
            let plan = overload::Plan {
                capacity,
                warm: Duration::from_secs(5),
                rush: Duration::from_secs(sizes.rush_seconds),
                after: Duration::from_secs(30),
                patience: Duration::from_secs(600),
            };
            overload::overload(&mut system, name, plan).await
        }
        other => panic!("no scenario {other}"),
    };
    drop(system);
    tokio::time::sleep(Duration::from_millis(500)).await;
    figures
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let all = [
        "store-ceiling",
        "flash-sale",
        "closed-loop",
        "steady",
        "fanout",
        "overload",
    ];
    let asked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| all.contains(&a.as_str()))
        .collect();
    let chosen: Vec<&str> = if asked.is_empty() {
        all.to_vec()
    } else {
        asked.iter().map(String::as_str).collect()
    };
    println!("load: {}; rate limits off", chosen.join(", "));

    // The store's ceiling on fresh tables, first, so that each distributed
    // figure reads as a ratio to it.
    let ceiling = {
        let system = System::start(Setup::Roles { ticketing: 1 }).await;
        scenario::store_ceiling(&system, 16, Duration::from_secs(5)).await
    };
    println!(
        "store-ceiling: {ceiling:.0} single conditional writes/s (16 writers, 5 s)\n{}",
        json!({ "scenario": "store-ceiling", "conditional_writes_per_second": ceiling })
    );

    let setups = [
        ("embedded", Setup::Embedded),
        (
            "rabbitmq+dynamodb, roles apart",
            Setup::Roles { ticketing: 1 },
        ),
    ];
    for scenario in chosen.iter().filter(|s| **s != "store-ceiling") {
        let mut runs = Vec::new();
        for (name, setup) in setups {
            let mut figures = run(scenario, name, setup).await;
            if !setup.is_embedded() && ceiling > 0.0 {
                let ratio = figures.completed_per_second() / ceiling;
                figures.extra.insert(
                    "completed_per_second_over_store_ceiling".into(),
                    json!(ratio),
                );
            }
            runs.push(figures);
        }
        println!();
        scenario::print(&runs);
        let base = runs[0].completed_per_second();
        for r in &runs[1..] {
            println!(
                "{scenario}: {} completes {:.3}x the embedded rate and {:.3}x the store ceiling",
                r.setup,
                r.completed_per_second() / base.max(f64::MIN_POSITIVE),
                r.completed_per_second() / ceiling.max(f64::MIN_POSITIVE)
            );
        }
    }
}
