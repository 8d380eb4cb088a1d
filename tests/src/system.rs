//! A running eventsys deployment made of real processes.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use eventsys_api::auth::{Auth, Role};
use eventsys_messages::UserId;

use crate::{Client, Services, oracle::Oracle, unique};

/// The ticket-signing key of distributed test systems (embedded ones make
/// their own): 32 bytes, base64.
const CURSOR_SECRET: &str = "cursors-are-sealed-with-this-one";
const EVENT_SEAL_SECRET: &str = "facts-on-the-broker-are-sealed-with-this";
pub const TICKET_SIGNING_KEY: &str = "Z+QCRxnKZgzRF+rCnzJJwv3NYlthg8nv8KwXjW6itbw=";

/// Which adapters the system runs on, and how its roles are spread over
/// processes.
#[derive(Clone, Copy, Debug)]
pub enum Setup {
    /// `eventsys serve` on its embedded store and queue.
    Embedded,
    /// `eventsys serve` on RabbitMQ and the DynamoDB-compatible server.
    Serve,
    /// `eventsys api` and one process per worker role (`ticketing` of them
    /// for the ticketing role), on RabbitMQ and the DynamoDB-compatible server.
    Roles { ticketing: usize },
}

impl Setup {
    pub fn is_embedded(self) -> bool {
        matches!(self, Setup::Embedded)
    }
}

pub struct Process {
    pub name: String,
    child: Child,
    /// Where its `/metrics` is scraped.
    metrics_url: String,
}

pub struct System {
    pub setup: Setup,
    pub base_url: String,
    pub secret: String,
    /// RabbitMQ URL of this system's own vhost (distributed setups).
    pub amqp_url: String,
    pub table_prefix: String,
    pub dynamodb: String,
    /// Where the embedded store and queue live (embedded setup).
    pub data_dir: PathBuf,
    pub logs: PathBuf,
    vhost: Option<Vhost>,
    processes: Vec<Process>,
    /// Settings every process of this system gets.
    env: Vec<(String, String)>,
}

impl System {
    pub async fn start(setup: Setup) -> Self {
        Self::start_with(setup, &[]).await
    }

    /// Like [`Self::start`], with extra settings for every process.
    pub async fn start_with(setup: Setup, env: &[(&str, &str)]) -> Self {
        let services = Services::from_env();
        let id = unique();
        let logs = std::env::temp_dir()
            .join("eventsys-tests")
            .join(&services.run)
            .join(&id);
        std::fs::create_dir_all(&logs).expect("creating the log directory");
        let vhost = (!setup.is_embedded())
            .then(|| Vhost::create(&format!("eventsys-test-{}-{id}", services.run)));
        let port = free_port();
        let mut system = Self {
            setup,
            base_url: format!("http://127.0.0.1:{port}"),
            secret: format!("test-secret-{id}-0123456789"),
            amqp_url: vhost
                .as_ref()
                .map(|v| format!("{}/{}", services.amqp, v.name))
                .unwrap_or_default(),
            table_prefix: format!("t{}_{id}_", services.run.replace('-', "_")),
            dynamodb: services.dynamodb,
            data_dir: logs.join("data"),
            logs,
            vhost,
            processes: Vec::new(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        eprintln!("system logs: {}", system.logs.display());
        if !setup.is_embedded() {
            let status = system
                .command(&["init"], &[])
                .stdout(Stdio::null())
                .stderr(system.log_file("init"))
                .status()
                .expect("running eventsys init");
            assert!(
                status.success(),
                "eventsys init failed; see {}",
                system.logs.display()
            );
        }
        match setup {
            Setup::Embedded | Setup::Serve => system.spawn("serve", &["serve"], &[]),
            Setup::Roles { ticketing } => {
                system.spawn("api", &["api"], &[]);
                system.spawn("registration", &["worker", "registration"], &[]);
                system.spawn("notification", &["worker", "notification"], &[]);
                system.spawn("webhooks", &["worker", "webhooks"], &[]);
                for i in 0..ticketing {
                    system.spawn(&format!("ticketing-{i}"), &["worker", "ticketing"], &[]);
                }
            }
        }
        system.wait_ready().await;
        system
    }

    /// Like the command [`Self::spawn`] runs, for one-off invocations such
    /// as `eventsys token`.
    pub fn run(&self, args: &[&str], extra: &[(&str, &str)]) -> std::process::Output {
        self.command(args, extra)
            .output()
            .expect("running eventsys")
    }

    fn command(&self, args: &[&str], extra: &[(&str, &str)]) -> Command {
        self.with_extra(self.base_command(args), extra)
    }

    /// The binary with `args` and the settings of this system's setup.
    fn base_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary());
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env(
                "RUST_LOG",
                std::env::var("EVENTSYS_TEST_RUST_LOG")
                    .unwrap_or_else(|_| "info,eventsys_workers=debug".into()),
            )
            .env(
                "EVENTSYS_HTTP_ADDR",
                self.base_url.trim_start_matches("http://"),
            )
            .env("EVENTSYS_JWT_SECRET", &self.secret)
            .env("EVENTSYS_DRAIN_SECONDS", "5")
            // Tests drive many writes from one address; the limits have
            // their own tests, which set them.
            .env("EVENTSYS_RATE_LIMIT_PER_USER", "0")
            .env("EVENTSYS_RATE_LIMIT_PER_ADDR", "0")
            .env("EVENTSYS_WS_MESSAGES_PER_SECOND", "1000");
        if self.setup.is_embedded() {
            command.env("EVENTSYS_DATA_DIR", &self.data_dir);
        } else {
            command
                .env("EVENTSYS_TICKET_SIGNING_KEY", TICKET_SIGNING_KEY)
                .env("EVENTSYS_CURSOR_SECRET", CURSOR_SECRET)
                .env("EVENTSYS_EVENT_SEAL_SECRET", EVENT_SEAL_SECRET)
                .env("EVENTSYS_AMQP_URL", &self.amqp_url)
                .env("EVENTSYS_DYNAMODB_ENDPOINT", &self.dynamodb)
                .env("EVENTSYS_TABLE_PREFIX", &self.table_prefix);
        }
        command
    }

    /// Applies this system's common settings, then `extra`; an empty value
    /// unsets a variable.
    fn with_extra(&self, mut command: Command, extra: &[(&str, &str)]) -> Command {
        let common = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        for (key, value) in common.chain(extra.iter().copied()) {
            if value.is_empty() {
                command.env_remove(key);
            } else {
                command.env(key, value);
            }
        }
        command
    }

    fn log_file(&self, name: &str) -> std::fs::File {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{name}.log")))
            .expect("opening a log file")
    }

    /// Starts one more process; `name` identifies it for [`Self::kill`] (the
    /// latest one of that name). An empty value in `extra` unsets a variable.
    pub fn spawn(&mut self, name: &str, args: &[&str], extra: &[(&str, &str)]) {
        // A worker serves its probes and metrics on a port of its own; the
        // API and `serve` on the API's.
        let probes =
            (args.first() == Some(&"worker")).then(|| format!("127.0.0.1:{}", free_port()));
        let metrics_url = match &probes {
            Some(addr) => format!("http://{addr}/metrics"),
            None => format!("{}/metrics", self.base_url),
        };
        let mut command = self.base_command(args);
        if let Some(addr) = &probes {
            command.env("EVENTSYS_HEALTH_ADDR", addr);
        }
        let child = self
            .with_extra(command, extra)
            .stdin(Stdio::null())
            .stdout(self.log_file(name))
            .stderr(self.log_file(name))
            .spawn()
            .expect("starting eventsys");
        self.processes.push(Process {
            name: name.to_owned(),
            child,
            metrics_url,
        });
    }

    /// What every running process exports on `/metrics`, by process name.
    pub async fn scrape(&self) -> Vec<(String, String)> {
        let http = crate::http();
        let mut scrapes = Vec::new();
        for process in &self.processes {
            let reply = http
                .get(&process.metrics_url)
                .send()
                .await
                .unwrap_or_else(|e| panic!("scraping {}: {e}", process.name));
            assert_eq!(reply.status(), 200, "scraping {}", process.name);
            let text = reply.text().await.expect("a metrics page");
            scrapes.push((process.name.clone(), text));
        }
        scrapes
    }

    /// Waits until the API answers ready.
    pub async fn wait_ready(&self) {
        let http = crate::http();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = http
                .get(format!("{}/readyz", self.base_url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not ready after 30 s; see {}",
                self.logs.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills a process with SIGKILL, as a crash would.
    pub fn kill(&mut self, name: &str) {
        let process = self.process(name);
        let _ = process.child.kill();
        let _ = process.child.wait();
    }

    /// Waits for a process to exit by itself; returns whether it succeeded.
    pub async fn wait_exit(
        &mut self,
        name: &str,
        within: Duration,
    ) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.process(name).child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn process(&mut self, name: &str) -> &mut Process {
        self.processes
            .iter_mut()
            .rev()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no process named {name}"))
    }

    pub fn pid(&mut self, name: &str) -> u32 {
        self.process(name).child.id()
    }

    /// Sends `signal` (`TERM`, `KILL`, `STOP`, ...) to a process.
    pub fn signal(&mut self, name: &str, signal: &str) {
        let pid = self.pid(name).to_string();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status();
        assert!(sent.is_ok_and(|s| s.success()), "could not signal {name}");
    }

    /// The names of every process started, in order.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for p in &self.processes {
            if !names.contains(&p.name) {
                names.push(p.name.clone());
            }
        }
        names
    }

    /// Sends SIGTERM and waits for the process to drain and exit.
    pub async fn stop(&mut self, name: &str) -> std::process::ExitStatus {
        self.signal(name, "TERM");
        self.wait_exit(name, Duration::from_secs(30))
            .await
            .unwrap_or_else(|| {
                panic!(
                    "{name} did not stop within 30 s; see {}",
                    self.logs.display()
                )
            })
    }

    /// How a test reaches this system's DynamoDB tables itself.
    /// A connection to this system's broker, as a role would have it:
    /// facts it publishes are sealed like the workers' own.
    pub async fn broker(&self) -> eventsys_bus_rabbitmq::RabbitBus {
        self.broker_at(&self.amqp_url).await.expect("RabbitMQ")
    }

    /// Like [`Self::broker`], under the login `url` names.
    pub async fn broker_at(
        &self,
        url: &str,
    ) -> Result<eventsys_bus_rabbitmq::RabbitBus, eventsys_bus::BusError> {
        let seal = eventsys_bus_rabbitmq::EventSeal::new(EVENT_SEAL_SECRET.as_bytes());
        eventsys_bus_rabbitmq::RabbitBus::connect(url, "tests", Some(seal)).await
    }

    /// Requests the DynamoDB-compatible server has served so far, from its
    /// request log (`EVENTSYS_TEST_MOTO_LOG`, set by the test and bench
    /// scripts; every test run shares it, so only a benchmark running alone
    /// reads it as its own); `None` on the embedded store or without the log.
    pub fn store_calls(&self) -> Option<u64> {
        if self.setup.is_embedded() {
            return None;
        }
        let log = std::fs::read_to_string(std::env::var("EVENTSYS_TEST_MOTO_LOG").ok()?).ok()?;
        Some(log.matches("\"POST / HTTP").count() as u64)
    }

    pub fn store_config(&self) -> eventsys_store_dynamodb::DynamoConfig {
        eventsys_store_dynamodb::DynamoConfig {
            endpoint: Some(self.dynamodb.clone()),
            table_prefix: self.table_prefix.clone(),
            local_credentials: true,
            ..Default::default()
        }
    }

    /// Counts what the store really holds. An embedded store is read from
    /// its file, which its process holds exclusively: every process is
    /// stopped first.
    pub async fn oracle(&mut self) -> Oracle {
        if self.setup.is_embedded() {
            let names: Vec<String> = self.processes.iter().map(|p| p.name.clone()).collect();
            for name in names {
                if self
                    .process(&name)
                    .child
                    .try_wait()
                    .ok()
                    .flatten()
                    .is_none()
                {
                    self.stop(&name).await;
                }
            }
            Oracle::embedded(self.data_dir.join("store.redb"))
        } else {
            Oracle::dynamodb(&self.dynamodb, &self.table_prefix)
        }
    }

    /// A client acting as `user` with `roles`.
    pub fn client(&self, user: &str, roles: &[Role]) -> Client {
        self.client_for(user, roles, Duration::from_secs(3600))
    }

    /// A client whose token runs out after `lifetime`.
    pub fn client_for(&self, user: &str, roles: &[Role], lifetime: Duration) -> Client {
        let user = UserId::parse(user).expect("a valid user id");
        let token = Auth::new(self.secret.as_bytes())
            .mint(&user, roles, lifetime)
            .expect("an HS256 token");
        Client::new(&self.base_url, Some(token))
    }

    /// `count` clients, users `{prefix}-{i}`, sharing one connection pool
    /// as a crowd behind one load balancer would.
    pub fn crowd(&self, prefix: &str, count: usize, roles: &[Role]) -> Vec<Client> {
        let first = self.anonymous();
        let auth = Auth::new(self.secret.as_bytes());
        (0..count)
            .map(|i| {
                let user = UserId::parse(&format!("{prefix}-{i}")).expect("a valid user id");
                let token = auth
                    .mint(&user, roles, Duration::from_secs(3600))
                    .expect("an HS256 token");
                first.acting_as(token)
            })
            .collect()
    }

    /// A client without a token.
    pub fn anonymous(&self) -> Client {
        Client::new(&self.base_url, None)
    }
}

impl Drop for System {
    fn drop(&mut self) {
        for process in &mut self.processes {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
        self.vhost.take();
    }
}

/// The `eventsys` binary built next to this test binary.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test binary> -> target/<profile>/eventsys
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("a target directory");
    let binary = dir.join("eventsys");
    assert!(
        binary.exists(),
        "{} is missing: build it first (cargo build -p eventsys)",
        binary.display()
    );
    binary
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A RabbitMQ vhost of this test alone, removed when dropped. The contract
/// fixes exchange and queue names, so isolation needs a vhost per test.
struct Vhost {
    name: String,
}

impl Vhost {
    fn create(name: &str) -> Self {
        rabbitmqctl(&format!(
            "rabbit_vhost:add(<<\"{name}\">>, <<\"eventsys-tests\">>), \
             rabbit_auth_backend_internal:set_permissions(<<\"guest\">>, <<\"{name}\">>, \
             <<\".*\">>, <<\".*\">>, <<\".*\">>, <<\"eventsys-tests\">>)."
        ));
        Self {
            name: name.to_owned(),
        }
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        rabbitmqctl(&format!(
            "rabbit_vhost:delete(<<\"{}\">>, <<\"eventsys-tests\">>).",
            self.name
        ));
    }
}

fn rabbitmqctl(erlang: &str) {
    rabbitmqctl_run(&["eval", erlang]);
}

/// Runs `rabbitmqctl` (or `EVENTSYS_TEST_RABBITMQCTL`) with `args`.
pub fn rabbitmqctl_run(args: &[&str]) {
    let ctl =
        std::env::var("EVENTSYS_TEST_RABBITMQCTL").unwrap_or_else(|_| "rabbitmqctl".to_owned());
    let output = Command::new(&ctl)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {ctl}: {e}"));
    assert!(
        output.status.success(),
        "{ctl} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
