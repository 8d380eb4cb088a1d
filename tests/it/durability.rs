//! Invariant 3 (nothing accepted is lost) across stops, restarts and
//! crashes of the whole system.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use eventsys_api::auth::Role;
use eventsys_tests::{Client, Setup, System, client::event_body, eventually, on_both};
use futures::{StreamExt, future::join_all, stream};
use serde_json::{Value, json};

on_both!(a_restart_keeps_everything, Setup::Serve);
on_both!(
    a_crash_in_the_middle_of_a_flash_sale_loses_nothing,
    Setup::Serve
);

async fn a_restart_keeps_everything(setup: Setup) {
    let mut system = System::start(setup).await;
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(10)).await;
    let ann = system.client("ann", &[Role::Attendee]);
    let placed = ann
        .post_with(
            &format!("/v1/events/{event_id}/orders"),
            &json!({ "quantity": 2 }),
            &[("prefer", "wait=20")],
        )
        .await;
    assert_eq!(placed.body["status"], "succeeded");
    let inbox = eventually(Duration::from_secs(10), 1, || async {
        ann.get("/v1/me/notifications").await.body["items"]
            .as_array()
            .map_or(0, Vec::len)
    })
    .await;
    assert_eq!(inbox, 1);
    let reads = [
        format!("/v1/events/{event_id}"),
        format!("/v1/orders/{}", placed.str("order_id")),
        format!("/v1/commands/{}", placed.str("command_id")),
        "/v1/me/tickets".to_owned(),
        "/v1/me/notifications".to_owned(),
    ];
    let before: Vec<Value> = join_all(reads.iter().map(|p| ann.get(p)))
        .await
        .into_iter()
        .map(|r| r.body)
        .collect();

    let stopped = system.stop("serve").await;
    assert!(
        stopped.success(),
        "SIGTERM should drain and exit 0: {stopped:?}"
    );
    system.spawn("serve", &["serve"], &[]);
    system.wait_ready().await;

    let after: Vec<Value> = join_all(reads.iter().map(|p| ann.get(p)))
        .await
        .into_iter()
        .map(|r| r.body)
        .collect();
    assert_eq!(before, after);
    let more = ann
        .post_with(
            &format!("/v1/events/{event_id}/orders"),
            &json!({ "quantity": 1 }),
            &[("prefer", "wait=20")],
        )
        .await;
    assert_eq!(more.body["status"], "succeeded");
    assert_eq!(
        organizer.get(&format!("/v1/events/{event_id}")).await.body["sold"],
        3
    );
}

const SEATS: u32 = 50;
const BUYERS: usize = 200;
/// The process is killed once this many orders were accepted.
const KILL_AFTER: usize = 40;

async fn a_crash_in_the_middle_of_a_flash_sale_loses_nothing(setup: Setup) {
    let mut system = System::start(setup).await;
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(SEATS)).await;
    let buyers: Vec<Client> = (0..BUYERS)
        .map(|i| system.client(&format!("buyer-{i}"), &[Role::Attendee]))
        .collect();
    let path = format!("/v1/events/{event_id}/orders");
    let order = json!({ "quantity": 1 });

    // Everyone presses "buy"; the process is killed in the middle of it.
    let accepted_so_far = Arc::new(AtomicUsize::new(0));
    let pid = system.pid("serve");
    let killer = {
        let accepted_so_far = accepted_so_far.clone();
        tokio::spawn(async move {
            while accepted_so_far.load(Ordering::SeqCst) < KILL_AFTER {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        })
    };
    let answers = join_all(buyers.iter().map(|b| {
        let (path, order, accepted_so_far) = (&path, &order, accepted_so_far.clone());
        async move {
            let reply = b.try_post(path, order).await.filter(|r| r.status == 202)?;
            accepted_so_far.fetch_add(1, Ordering::SeqCst);
            Some(reply.str("command_id"))
        }
    }))
    .await;
    killer.await.expect("the killer ran");
    let crashed = system.wait_exit("serve", Duration::from_secs(10)).await;
    assert!(
        crashed.is_some_and(|s| !s.success()),
        "serve was not killed: {crashed:?}"
    );
    let accepted = answers.iter().flatten().count();
    eprintln!("crash: {accepted} of {BUYERS} orders accepted before SIGKILL");
    assert!(accepted >= KILL_AFTER);

    system.spawn("serve", &["serve"], &[]);
    system.wait_ready().await;

    // Every accepted order reaches a final status.
    let outcomes: Vec<Value> = stream::iter(buyers.iter().zip(&answers))
        .filter_map(|(b, id)| async move { id.as_ref().map(|id| (b, id)) })
        .map(|(b, id)| async move { b.wait_terminal(id, Duration::from_secs(60)).await })
        .buffered(8)
        .collect()
        .await;
    assert_eq!(outcomes.len(), accepted);
    assert!(
        outcomes
            .iter()
            .all(|o| o["status"] == "succeeded" || o["error"]["code"] == "sold_out"),
        "{outcomes:?}"
    );

    // Those who got no answer try again until the event is sold out.
    let retries: Vec<Value> =
        stream::iter(buyers.iter().zip(&answers).filter(|(_, a)| a.is_none()))
            .map(|(b, _)| {
                let event_id = &event_id;
                async move {
                    let id = b.order(event_id, 1).await.str("command_id");
                    b.wait_terminal(&id, Duration::from_secs(60)).await
                }
            })
            .buffered(16)
            .collect()
            .await;
    let succeeded = outcomes
        .iter()
        .chain(&retries)
        .filter(|o| o["status"] == "succeeded")
        .count();
    assert!(succeeded <= SEATS as usize);
    let event = organizer.get(&format!("/v1/events/{event_id}")).await.body;
    assert_eq!(
        (event["sold"].as_u64(), event["remaining"].as_u64()),
        (Some(50), Some(0))
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_mode_makes_its_own_secret_and_keeps_it() {
    let mut system = System::start(Setup::Embedded).await;
    system.stop("serve").await;
    let unset = [("EVENTSYS_JWT_SECRET", "")];
    system.spawn("serve", &["serve"], &unset);
    system.wait_ready().await;
    let kept = system.data_dir.join("jwt-secret");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&kept)
            .expect("a secret file")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the secret is readable by others");

    let minted = system.run(&["token", "--sub", "ann", "--role", "attendee"], &unset);
    assert!(minted.status.success());
    let token = String::from_utf8(minted.stdout)
        .expect("a token")
        .trim()
        .to_owned();
    let ann = Client::new(&system.base_url, Some(token));
    assert_eq!(ann.get("/v1/me/tickets").await.status, 200);
    // A token signed with any other secret is worthless here.
    assert_eq!(
        system
            .client("ann", &[Role::Attendee])
            .get("/v1/me/tickets")
            .await
            .status,
        401
    );

    system.stop("serve").await;
    system.spawn("serve", &["serve"], &unset);
    system.wait_ready().await;
    assert_eq!(
        ann.get("/v1/me/tickets").await.status,
        200,
        "the secret changed on restart"
    );
}

/// SIGTERM waits for open requests for `EVENTSYS_DRAIN_SECONDS` and no
/// longer: a client waiting 30 s for an outcome that cannot come (nobody
/// works the queue) does not hold the API past its drain, and the API
/// still exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_open_request_holds_shutdown_no_longer_than_the_drain() {
    let mut system = System::start_with(
        Setup::Roles { ticketing: 0 },
        &[("EVENTSYS_DRAIN_SECONDS", "2")],
    )
    .await;
    let organizer = system.client("organizer", &[Role::Organizer]);
    let event_id = organizer.create_event(&event_body(5)).await;
    let ann = system.client("ann", &[Role::Attendee]);
    let path = format!("/v1/events/{event_id}/orders");
    let one = json!({ "quantity": 1 });
    let waiting = ann.try_post_with(&path, &one, &[("prefer", "wait=30")]);
    let stop = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let asked = std::time::Instant::now();
        system.signal("api", "TERM");
        let exit = system.wait_exit("api", Duration::from_secs(25)).await;
        (exit, asked.elapsed())
    };
    let (_, (exit, took)) = tokio::join!(waiting, stop);
    let exit = exit.expect("the API exits before the waiting request would end");
    assert!(exit.success(), "{exit:?}");
    // A drain of 2 s, and the time to start and close down around it;
    // unbounded, the API would wait out the client's 30 s.
    assert!(took < Duration::from_secs(12), "stopped after {took:?}");
}
