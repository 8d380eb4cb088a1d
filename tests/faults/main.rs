//! Fault tests: a steady stream of orders while one thing goes wrong, then
//! every promise checked with exact counts. They restart the machine's
//! RabbitMQ and freeze the DynamoDB-compatible server, so they run one at a
//! time and alone (`tests/scripts/test.sh` runs them after everything else).
//! Each writes a row of the table in RELIABILITY.md to the run's report file.

use std::{
    io::Write,
    sync::Arc,
    time::{Duration, Instant},
};

use eventsys_api::auth::Role;
use eventsys_tests::{
    Client, Setup, System,
    client::event_body,
    load::{self, Attempt, Report},
    system::rabbitmqctl_run,
};

/// Orders per second, for how long, and seats for them: bounded by what a
/// single-threaded DynamoDB emulator serves (see RELIABILITY.md).
const RATE: u32 = 15;
const SECONDS: u64 = 14;
const CAPACITY: u32 = 150;

struct Stage {
    system: System,
    admin: Client,
    event_id: String,
    buyers: Arc<Vec<Client>>,
}

impl Stage {
    async fn new(setup: Setup) -> Self {
        // Quick re-publishing, so that a test need not wait long for it.
        let system = System::start_with(setup, &[("EVENTSYS_REPUBLISH_AFTER_SECONDS", "3")]).await;
        let organizer = system.client("organizer", &[Role::Organizer]);
        let event_id = organizer.create_event(&event_body(CAPACITY)).await;
        let buyers = (0..20)
            .map(|i| system.client(&format!("buyer-{i}"), &[Role::Attendee]))
            .collect();
        Self {
            admin: system.client("auditor", &[Role::Admin]),
            system,
            event_id,
            buyers: Arc::new(buyers),
        }
    }

    fn load(&self) -> tokio::task::JoinHandle<Vec<Attempt>> {
        tokio::spawn(load::orders(
            self.buyers.clone(),
            self.event_id.clone(),
            RATE,
            Duration::from_secs(SECONDS),
        ))
    }

    async fn finish(
        mut self,
        fault: &str,
        load: tokio::task::JoinHandle<Vec<Attempt>>,
        fault_over: Instant,
    ) -> Report {
        let attempts = load.await.expect("the load ran");
        let report = load::check(
            &mut self.system,
            &self.admin,
            &self.event_id,
            CAPACITY,
            &attempts,
            fault_over,
        )
        .await;
        record(fault, &report);
        report.assert_kept();
        report
    }
}

/// Appends a row to the run's reliability table.
fn record(fault: &str, report: &Report) {
    let run = std::env::var("EVENTSYS_TEST_RUN").unwrap_or_else(|_| "local".into());
    let dir = std::env::temp_dir().join("eventsys-tests").join(run);
    let _ = std::fs::create_dir_all(&dir);
    let row = format!("{}\n", report.row(fault));
    eprint!("{row}");
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("reliability.md"))
    {
        let _ = file.write_all(row.as_bytes());
    }
}

async fn pause(seconds: u64) {
    tokio::time::sleep(Duration::from_secs(seconds)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_only_ticketing_worker_killed_mid_stream() {
    let mut stage = Stage::new(Setup::Roles { ticketing: 1 }).await;
    let load = stage.load();
    pause(4).await;
    stage.system.kill("ticketing-0");
    pause(3).await;
    stage
        .system
        .spawn("ticketing-0", &["worker", "ticketing"], &[]);
    stage
        .finish(
            "kill -9 the only ticketing worker, restart it 3 s later",
            load,
            Instant::now(),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_of_two_ticketing_workers_killed_mid_stream() {
    let mut stage = Stage::new(Setup::Roles { ticketing: 2 }).await;
    let load = stage.load();
    pause(4).await;
    stage.system.kill("ticketing-0");
    stage
        .finish("kill -9 one of two ticketing workers", load, Instant::now())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rabbitmq_restarted_mid_stream() {
    let stage = Stage::new(Setup::Roles { ticketing: 2 }).await;
    let load = stage.load();
    pause(4).await;
    rabbitmqctl_run(&["stop_app"]);
    pause(2).await;
    // Only writes need the broker: the API stays ready and reads work.
    let ready = stage.admin.get("/readyz").await;
    assert_eq!(ready.status, 200, "{:?}", ready.body);
    assert_eq!(ready.body["checks"]["broker"], false, "{:?}", ready.body);
    let event = stage
        .admin
        .get(&format!("/v1/events/{}", stage.event_id))
        .await;
    assert_eq!(event.status, 200, "{:?}", event.body);
    pause(2).await;
    rabbitmqctl_run(&["start_app"]);
    rabbitmqctl_run(&["await_startup"]);
    let report = stage
        .finish(
            "RabbitMQ stopped for 4 s (stop_app / start_app)",
            load,
            Instant::now(),
        )
        .await;
    // While the broker was away, the API said so, and recorded nothing.
    assert!(
        report.refusals.iter().all(|s| *s == 503),
        "{:?}",
        report.refusals
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_store_frozen_mid_stream() {
    let pid = std::env::var("EVENTSYS_TEST_MOTO_PID")
        .expect("EVENTSYS_TEST_MOTO_PID names the DynamoDB-compatible server (tests/scripts/test.sh sets it)");
    let signal = |name: &str| {
        let sent = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status();
        assert!(sent.is_ok_and(|s| s.success()), "cannot signal the store");
    };
    let stage = Stage::new(Setup::Roles { ticketing: 2 }).await;
    let load = stage.load();
    pause(4).await;
    signal("STOP");
    pause(6).await;
    signal("CONT");
    stage
        .finish(
            "DynamoDB-compatible server frozen for 6 s (SIGSTOP / SIGCONT)",
            load,
            Instant::now(),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_killed_between_recording_and_publishing() {
    let mut stage = Stage::new(Setup::Roles { ticketing: 1 }).await;
    // The next API dies right after recording its first command.
    stage.system.stop("api").await;
    stage.system.spawn(
        "api",
        &["api"],
        &[("EVENTSYS_FAILPOINT", "api.after_record")],
    );
    stage.system.wait_ready().await;
    let load = stage.load();
    let died = stage.system.wait_exit("api", Duration::from_secs(20)).await;
    assert!(
        died.is_some_and(|s| !s.success()),
        "the API should have died: {died:?}"
    );
    pause(2).await;
    stage.system.spawn("api", &["api"], &[]);
    stage.system.wait_ready().await;
    let report = stage
        .finish(
            "API killed after recording, before publishing; restarted 2 s later",
            load,
            Instant::now(),
        )
        .await;
    // The order recorded by the dying API was carried out by the re-publisher,
    // though nobody got an answer for it.
    assert!(report.unanswered >= 1, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_role_terminated_mid_stream() {
    let mut stage = Stage::new(Setup::Roles { ticketing: 2 }).await;
    let load = stage.load();
    pause(4).await;
    let names = stage.system.names();
    let started = Instant::now();
    for name in &names {
        stage.system.signal(name, "TERM");
    }
    for name in &names {
        let exit = stage.system.wait_exit(name, Duration::from_secs(30)).await;
        assert!(
            exit.is_some_and(|s| s.success()),
            "{name} did not drain and exit 0: {exit:?}"
        );
    }
    let drained = started.elapsed();
    eprintln!("every role drained and exited 0 within {drained:?}");
    assert!(
        drained < Duration::from_secs(15),
        "draining took {drained:?}"
    );
    for name in &names {
        let args: Vec<&str> = match name.as_str() {
            "api" => vec!["api"],
            worker => vec!["worker", worker.split('-').next().unwrap_or(worker)],
        };
        stage.system.spawn(name, &args, &[]);
    }
    stage.system.wait_ready().await;
    stage
        .finish("SIGTERM to every role, restart them", load, Instant::now())
        .await;
}
