//! Flash-sale benchmark: the same rush on the embedded adapters, on
//! RabbitMQ + the DynamoDB-compatible server in one process, and with the
//! roles in separate processes (two ticketing workers). Prints the median of
//! each figure over several rounds and its ratio to the embedded baseline,
//! measured in the same run. See BENCHMARKS.md for the method.
//!
//! Run it with `tests/scripts/bench.sh` (it starts the services and builds
//! the release binary first).

use std::time::Duration;

use eventsys_tests::{Setup, System, rush::rush};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

struct Figures {
    setup: &'static str,
    accepted_per_second: f64,
    all_accepted: f64,
    all_final: f64,
    final_per_second: f64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let rounds = setting("EVENTSYS_BENCH_ROUNDS", 3);
    let buyers = setting("EVENTSYS_BENCH_BUYERS", 200);
    let seats = u32::try_from(setting("EVENTSYS_BENCH_SEATS", 50)).unwrap_or(50);
    println!(
        "flash sale: {buyers} buyers, one ticket each, {seats} seats; median of {rounds} rounds"
    );
    let setups = [
        ("embedded", Setup::Embedded),
        ("rabbitmq+dynamodb, one process", Setup::Serve),
        (
            "rabbitmq+dynamodb, roles apart (2 ticketing)",
            Setup::Roles { ticketing: 2 },
        ),
    ];
    let mut results = Vec::new();
    for (name, setup) in setups {
        let (mut accepted, mut finals) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let system = System::start(setup).await;
            let sale = rush(&system, buyers, seats).await;
            assert_eq!(
                sale.count("succeeded", None),
                seats as usize,
                "{name}: not exactly {seats} sold"
            );
            accepted.push(sale.all_accepted.as_secs_f64());
            finals.push(sale.all_final.as_secs_f64());
            drop(system);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (all_accepted, all_final) = (median(accepted), median(finals));
        results.push(Figures {
            setup: name,
            accepted_per_second: buyers as f64 / all_accepted,
            all_accepted,
            all_final,
            final_per_second: buyers as f64 / all_final,
        });
    }
    let base_final = results[0].all_final;
    println!(
        "{:<46} {:>12} {:>12} {:>14} {:>14} {:>10}",
        "setup", "202s/s", "all 202 (s)", "all final (s)", "final/s", "x embedded"
    );
    for f in &results {
        println!(
            "{:<46} {:>12.0} {:>12.3} {:>14.3} {:>14.0} {:>10.2}",
            f.setup,
            f.accepted_per_second,
            f.all_accepted,
            f.all_final,
            f.final_per_second,
            f.all_final / base_final
        );
    }
}
