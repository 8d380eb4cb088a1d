//! A running eventsys deployment made of real processes.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use eventsys_api::auth::{Auth, Role};
use eventsys_messages::UserId;

use crate::{Client, Services, unique};

/// How the roles are spread over processes.
#[derive(Clone, Copy, Debug)]
pub enum Layout {
    /// `eventsys serve`: every role in one process.
    OneProcess,
    /// `eventsys api` plus one process per worker role, `ticketing` of them
    /// for the ticketing role.
    Distributed { ticketing: usize },
}

pub struct Process {
    pub name: String,
    child: Child,
}

pub struct System {
    pub base_url: String,
    pub secret: String,
    pub amqp_url: String,
    pub table_prefix: String,
    pub dynamodb: String,
    pub logs: PathBuf,
    vhost: Vhost,
    processes: Vec<Process>,
}

impl System {
    pub async fn start(layout: Layout) -> Self {
        let services = Services::from_env();
        let id = unique();
        let vhost = Vhost::create(&format!("eventsys-test-{}-{id}", services.run));
        let logs = std::env::temp_dir()
            .join("eventsys-tests")
            .join(&services.run)
            .join(&id);
        std::fs::create_dir_all(&logs).expect("creating the log directory");
        let port = free_port();
        let mut system = Self {
            base_url: format!("http://127.0.0.1:{port}"),
            secret: format!("test-secret-{id}-0123456789"),
            amqp_url: format!("{}/{}", services.amqp, vhost.name),
            table_prefix: format!("t{}_{id}_", services.run.replace('-', "_")),
            dynamodb: services.dynamodb,
            logs,
            vhost,
            processes: Vec::new(),
        };
        eprintln!("system logs: {}", system.logs.display());
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
        match layout {
            Layout::OneProcess => system.spawn("serve", &["serve"], &[]),
            Layout::Distributed { ticketing } => {
                system.spawn("api", &["api"], &[]);
                system.spawn("registration", &["worker", "registration"], &[]);
                system.spawn("notification", &["worker", "notification"], &[]);
                for i in 0..ticketing {
                    system.spawn(&format!("ticketing-{i}"), &["worker", "ticketing"], &[]);
                }
            }
        }
        system.wait_ready().await;
        system
    }

    fn command(&self, args: &[&str], extra: &[(&str, &str)]) -> Command {
        let mut command = Command::new(binary());
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "info,eventsys_workers=debug")
            .env(
                "EVENTSYS_HTTP_ADDR",
                self.base_url.trim_start_matches("http://"),
            )
            .env("EVENTSYS_AMQP_URL", &self.amqp_url)
            .env("EVENTSYS_DYNAMODB_ENDPOINT", &self.dynamodb)
            .env("EVENTSYS_TABLE_PREFIX", &self.table_prefix)
            .env("EVENTSYS_JWT_SECRET", &self.secret)
            .env("EVENTSYS_DRAIN_SECONDS", "5");
        for (key, value) in extra {
            command.env(key, value);
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

    /// Starts one more process; `name` identifies it for [`Self::kill`].
    pub fn spawn(&mut self, name: &str, args: &[&str], extra: &[(&str, &str)]) {
        let child = self
            .command(args, extra)
            .stdin(Stdio::null())
            .stdout(self.log_file(name))
            .stderr(self.log_file(name))
            .spawn()
            .expect("starting eventsys");
        self.processes.push(Process {
            name: name.to_owned(),
            child,
        });
    }

    /// Waits until the API answers ready.
    pub async fn wait_ready(&self) {
        let http = reqwest::Client::new();
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
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no process named {name}"))
    }

    /// A client acting as `user` with `roles`.
    pub fn client(&self, user: &str, roles: &[Role]) -> Client {
        let user = UserId::parse(user).expect("a valid user id");
        let token = Auth::new(self.secret.as_bytes()).mint(&user, roles, Duration::from_secs(3600));
        Client::new(&self.base_url, Some(token))
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
        let _ = &self.vhost;
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
    let ctl =
        std::env::var("EVENTSYS_TEST_RABBITMQCTL").unwrap_or_else(|_| "rabbitmqctl".to_owned());
    let output = Command::new(&ctl)
        .args(["eval", erlang])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {ctl}: {e}"));
    assert!(
        output.status.success(),
        "{ctl} eval failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
