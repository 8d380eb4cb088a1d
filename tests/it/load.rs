//! A small run of each load scenario, asserting what must hold at any
//! size: every order answered, every accepted order final, nothing
//! oversold, the event's own count equal to the orders that succeeded.
//! Speed is the benchmark's business, not these tests'.

use std::time::Duration;

use eventsys_tests::{Setup, System, on_both, scenario};

fn exact(figures: &scenario::Figures) {
    let line = figures.json();
    assert_eq!(figures.accepted, figures.offered, "{line}");
    assert_eq!(figures.lost, 0, "{line}");
    assert_eq!(figures.oversold, 0, "{line}");
    assert_eq!(figures.completed, figures.accepted, "{line}");
}

async fn flash_sale(setup: Setup) {
    let mut system = System::start(setup).await;
    let figures = scenario::flash_sale(&mut system, "smoke", 60, 10).await;
    exact(&figures);
    assert_eq!(
        (figures.succeeded, figures.rejected),
        (10, 50),
        "{}",
        figures.json()
    );
    assert_eq!(figures.extra["event_sold"], 10);
}
on_both!(flash_sale, Setup::Roles { ticketing: 2 });

async fn closed_loop(setup: Setup) {
    let mut system = System::start(setup).await;
    let figures = scenario::closed_loop(&mut system, "smoke", 4, 24).await;
    exact(&figures);
    assert_eq!(
        (figures.succeeded, figures.rejected),
        (18, 6),
        "{}",
        figures.json()
    );
    assert_eq!(figures.extra["event_sold"], 18);
}
on_both!(closed_loop, Setup::Roles { ticketing: 1 });

async fn steady(setup: Setup) {
    let mut system = System::start(setup).await;
    let figures = scenario::steady(&mut system, "smoke", 40, Duration::from_secs(2)).await;
    let line = figures.json();
    // Two of every ten requests buy.
    assert_eq!(figures.offered, 16, "{line}");
    exact(&figures);
    assert_eq!(figures.extra["server_errors"], 0, "{line}");
}
on_both!(steady, Setup::Serve);

async fn fanout(setup: Setup) {
    let mut system = System::start(setup).await;
    let figures = scenario::fanout(&mut system, "smoke", 20, 5).await;
    let line = figures.json();
    exact(&figures);
    assert_eq!(figures.succeeded, 5, "{line}");
    assert_eq!(figures.extra["followers"], 20, "{line}");
    assert_eq!(figures.extra["updates_not_heard"], 0, "{line}");
    assert_eq!(figures.extra["event_updated_ms"]["count"], 100, "{line}");
}
on_both!(fanout, Setup::Serve);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_store_ceiling_is_measured_on_the_store_under_test() {
    let system = System::start(Setup::Roles { ticketing: 1 }).await;
    let rate = scenario::store_ceiling(&system, 2, Duration::from_millis(500)).await;
    assert!(rate > 0.0, "no conditional write got through");
}
