//! Invariant 1 (never oversold) under the rush it exists for: 200 buyers
//! press "buy" at the same moment for 50 seats.

use eventsys_tests::{
    Setup, System, on_both,
    rush::{Rush, rush},
};
use futures::{StreamExt, stream};

const BUYERS: usize = 200;
const SEATS: u32 = 50;

on_both!(two_hundred_buyers_get_exactly_fifty_seats, Setup::Serve);

async fn two_hundred_buyers_get_exactly_fifty_seats(setup: Setup) {
    flash_sale(setup, &[]).await;
}

/// DynamoDB spreads a big event's counters over partitions; 13 seats per
/// shard makes this small sale a 4-shard one, with two workers competing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_inventory_split_over_four_shards_sells_exactly_fifty_seats() {
    let shards = [("EVENTSYS_DYNAMODB_SEATS_PER_SHARD", "13")];
    let (mut system, event_id) = flash_sale(Setup::Roles { ticketing: 2 }, &shards).await;
    let oracle = system.oracle().await;
    assert_eq!(oracle.count("inventory", "event_id", &event_id).await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_ticketing_workers_competing_sell_exactly_fifty_seats() {
    flash_sale(Setup::Roles { ticketing: 2 }, &[]).await;
}

/// Runs the sale and checks its outcome; returns the system and the event.
async fn flash_sale(setup: Setup, env: &[(&str, &str)]) -> (System, String) {
    let mut system = System::start_with(setup, env).await;
    let rush = rush(&system, BUYERS, SEATS).await;
    eprintln!(
        "flash sale {setup:?} {env:?}: {BUYERS} orders accepted in {:?}, all final in {:?}",
        rush.all_accepted, rush.all_final
    );
    let (succeeded, sold_out) = (
        rush.count("succeeded", None),
        rush.count("rejected", Some("sold_out")),
    );
    assert_eq!(
        (succeeded, sold_out),
        (SEATS as usize, BUYERS - SEATS as usize)
    );
    let Rush {
        event_id,
        organizer,
        buyers,
        ..
    } = rush;

    let event = organizer.get(&format!("/v1/events/{event_id}")).await.body;
    assert_eq!(
        (event["sold"].as_u64(), event["remaining"].as_u64()),
        (Some(50), Some(0))
    );

    // The tickets as their holders see them, and as the store holds them.
    let held: Vec<usize> = stream::iter(&buyers)
        .map(|b| async move {
            let mine = b.get("/v1/me/tickets").await;
            assert_eq!(mine.status, 200, "{:?}", mine.body);
            mine.body["items"].as_array().map_or(0, Vec::len)
        })
        .buffered(8)
        .collect()
        .await;
    assert_eq!(held.iter().sum::<usize>(), SEATS as usize);
    assert!(
        held.iter().all(|&n| n <= 1),
        "someone holds two tickets: {held:?}"
    );
    let oracle = system.oracle().await;
    assert_eq!(
        oracle.count("tickets", "event_id", &event_id).await,
        SEATS as usize
    );
    assert_eq!(
        oracle.count("orders", "status", "confirmed").await,
        SEATS as usize
    );
    assert_eq!(
        oracle.count("orders", "status", "rejected").await,
        BUYERS - SEATS as usize
    );
    (system, event_id)
}
