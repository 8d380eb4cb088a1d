//! Configuration, typed once: every setting is an environment variable,
//! mirrored by a `--flag`. `eventsys --help` lists them all.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};
use eventsys_api::{admission::AdmissionRule, hub::HubLimits, limits::Limits};
use eventsys_messages::{WorkQueue, topology::Principal};
use eventsys_store_dynamodb::DynamoConfig;
use eventsys_webhooks::retry::RetryPolicy;
use eventsys_workers::webhooks::DispatchOptions;

#[derive(Parser, Debug)]
#[command(
    name = "eventsys",
    version,
    about = "Event ticketing: REST + WebSocket API and its workers"
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Every role in one process: embedded unless a broker and store are configured.
    Serve,
    /// The REST ingress and WebSocket broadcaster.
    Api,
    /// One worker role.
    Worker {
        #[arg(value_enum)]
        role: Role,
    },
    /// Create the broker topology and the DynamoDB tables (idempotent).
    Init,
    /// Print a signed token for local use.
    Token {
        /// The user id (`sub` claim).
        #[arg(long)]
        sub: String,
        /// A role to grant; repeat for several.
        #[arg(long = "role", value_enum, required = true)]
        roles: Vec<TokenRole>,
        /// Validity in hours.
        #[arg(long, default_value_t = 24)]
        hours: u64,
    },
    /// Inspect or replay what the workers dead-lettered.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
    /// Print what the WebSocket pushes, one JSON frame per line, until interrupted.
    Watch {
        /// The API's WebSocket, e.g. ws://127.0.0.1:8080/v1/ws
        #[arg(long, default_value = "ws://127.0.0.1:8080/v1/ws")]
        url: String,
        /// The bearer token to connect with.
        #[arg(long, env = "TOKEN", hide_env_values = true)]
        token: String,
        /// An event to follow (its counts and status); repeat for several.
        #[arg(long = "event")]
        events: Vec<String>,
    },
    /// Exit 0 if an HTTP GET of URL answers 2xx (a health check for images without curl).
    Probe {
        /// e.g. http://127.0.0.1:8080/readyz
        url: String,
    },
}

impl Command {
    /// What this process is, as metrics and traces name it.
    pub fn role(&self) -> &'static str {
        match self {
            Self::Serve => "serve",
            Self::Api => "api",
            Self::Worker { role } => crate::roles::queue_of(*role).role(),
            Self::Init => "init",
            Self::Token { .. } => "token",
            Self::Dlq { .. } => "dlq",
            Self::Probe { .. } => "probe",
            Self::Watch { .. } => "watch",
        }
    }

    /// Whether this process serves for long, and so is scraped.
    pub fn serves(&self) -> bool {
        matches!(self, Self::Serve | Self::Api | Self::Worker { .. })
    }
}

#[derive(Subcommand, Debug)]
pub enum DlqAction {
    /// Print every dead letter: queue, message id, type, command status.
    List {
        /// Only this role's dead-letter queue.
        #[arg(long, value_enum)]
        role: Option<Role>,
    },
    /// Publish dead letters again (reopening failed commands) and remove them.
    Replay {
        /// Only this role's dead-letter queue.
        #[arg(long, value_enum)]
        role: Option<Role>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Registration,
    Ticketing,
    Notification,
    Webhooks,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum TokenRole {
    Organizer,
    Attendee,
    Staff,
    Admin,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Embedded,
    Dynamodb,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct Settings {
    /// Where the API listens.
    #[arg(
        long,
        env = "EVENTSYS_HTTP_ADDR",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub http_addr: SocketAddr,
    /// RabbitMQ URL; unset means the embedded queue.
    #[arg(long, env = "EVENTSYS_AMQP_URL", hide_env_values = true, global = true)]
    pub amqp_url: Option<String>,
    /// DynamoDB endpoint override, for DynamoDB-compatible local servers.
    #[arg(long, env = "EVENTSYS_DYNAMODB_ENDPOINT", global = true)]
    pub dynamodb_endpoint: Option<String>,
    /// `embedded` or `dynamodb`; default: `dynamodb` when an endpoint is set.
    #[arg(long, env = "EVENTSYS_STORE", value_enum, global = true)]
    pub store: Option<StoreKind>,
    /// Prefix of every table name, so that several deployments can share one server.
    #[arg(
        long,
        env = "EVENTSYS_TABLE_PREFIX",
        default_value = "eventsys_",
        global = true
    )]
    pub table_prefix: String,
    /// DynamoDB: an event's counters get one item (partition) per this many
    /// seats, up to 16, so that a rush spreads its writes.
    #[arg(
        long,
        env = "EVENTSYS_DYNAMODB_SEATS_PER_SHARD",
        default_value_t = 1_000,
        value_parser = clap::value_parser!(u32).range(1..),
        global = true
    )]
    pub dynamodb_seats_per_shard: u32,
    /// HS256 secret for tokens (and for minting them with `eventsys token`).
    #[arg(
        long,
        env = "EVENTSYS_JWT_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub jwt_secret: Option<String>,
    /// An identity provider's public key (PEM, RSA or Ed25519): tokens it
    /// signs with RS256 or EdDSA are accepted too.
    #[arg(long, env = "EVENTSYS_JWT_PUBLIC_KEY_FILE", global = true)]
    pub jwt_public_key_file: Option<PathBuf>,
    /// The `iss` every token must name; unset: not checked.
    #[arg(long, env = "EVENTSYS_JWT_ISSUER", global = true)]
    pub jwt_issuer: Option<String>,
    /// The `aud` every token must name; unset: not checked.
    #[arg(long, env = "EVENTSYS_JWT_AUDIENCE", global = true)]
    pub jwt_audience: Option<String>,
    /// RabbitMQ's management API (`http://ADMIN:PASSWORD@HOST:15672`): with
    /// it, `eventsys init` makes a login per role with only that role's
    /// rights, for each `EVENTSYS_BROKER_PASSWORD_*` set.
    #[arg(
        long,
        env = "EVENTSYS_RABBITMQ_MANAGEMENT_URL",
        hide_env_values = true,
        global = true
    )]
    pub rabbitmq_management_url: Option<String>,
    /// Password of the API's broker login (`eventsys-api`), for `eventsys init`.
    #[arg(
        long,
        env = "EVENTSYS_BROKER_PASSWORD_API",
        hide_env_values = true,
        global = true
    )]
    pub broker_password_api: Option<String>,
    /// Password of the registration worker's login (`eventsys-registration`).
    #[arg(
        long,
        env = "EVENTSYS_BROKER_PASSWORD_REGISTRATION",
        hide_env_values = true,
        global = true
    )]
    pub broker_password_registration: Option<String>,
    /// Password of the ticketing worker's login (`eventsys-ticketing`).
    #[arg(
        long,
        env = "EVENTSYS_BROKER_PASSWORD_TICKETING",
        hide_env_values = true,
        global = true
    )]
    pub broker_password_ticketing: Option<String>,
    /// Password of the notification worker's login (`eventsys-notification`).
    #[arg(
        long,
        env = "EVENTSYS_BROKER_PASSWORD_NOTIFICATION",
        hide_env_values = true,
        global = true
    )]
    pub broker_password_notification: Option<String>,
    /// Password of the webhooks worker's login (`eventsys-webhooks`).
    #[arg(
        long,
        env = "EVENTSYS_BROKER_PASSWORD_WEBHOOKS",
        hide_env_values = true,
        global = true
    )]
    pub broker_password_webhooks: Option<String>,
    /// Password of the autoscaler's login (`eventsys-autoscaler`), which
    /// may only look at queue depths.
    #[arg(
        long,
        env = "EVENTSYS_BROKER_PASSWORD_AUTOSCALER",
        hide_env_values = true,
        global = true
    )]
    pub broker_password_autoscaler: Option<String>,
    /// Secret that seals the facts workers publish on the broker
    /// (`eventsys.events`); every role on RabbitMQ needs the same one.
    #[arg(
        long,
        env = "EVENTSYS_EVENT_SEAL_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub event_seal_secret: Option<String>,
    /// Secret that seals list cursors (at least 16 characters); every API
    /// replica needs the same one.
    #[arg(
        long,
        env = "EVENTSYS_CURSOR_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub cursor_secret: Option<String>,
    /// Ed25519 key that signs ticket codes: 32 random bytes, base64
    /// (`head -c 32 /dev/urandom | base64`). Not the token secret.
    #[arg(
        long,
        env = "EVENTSYS_TICKET_SIGNING_KEY",
        hide_env_values = true,
        global = true
    )]
    pub ticket_signing_key: Option<String>,
    /// Public keys (base64url, as the verification-key JWK Set shows them)
    /// of signing keys retired by a rotation: the codes they signed still
    /// admit. Comma-separated.
    #[arg(
        long,
        env = "EVENTSYS_TICKET_RETIRED_KEYS",
        value_delimiter = ',',
        global = true
    )]
    pub ticket_retired_keys: Vec<String>,
    /// Where the embedded store and queue keep their files.
    #[arg(
        long,
        env = "EVENTSYS_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Deliveries each worker handles at once.
    #[arg(long, env = "EVENTSYS_PREFETCH", default_value_t = 32, global = true)]
    pub prefetch: u16,
    /// Where a worker serves `/healthz`, `/readyz` and `/metrics`; unset: nowhere.
    #[arg(long, env = "EVENTSYS_HEALTH_ADDR", global = true)]
    pub health_addr: Option<SocketAddr>,
    /// Seconds a draining process waits for in-flight work.
    #[arg(
        long,
        env = "EVENTSYS_DRAIN_SECONDS",
        default_value_t = 20,
        global = true
    )]
    pub drain_seconds: u64,
    /// Seconds the API keeps serving after turning unready, for load
    /// balancers to notice.
    #[arg(
        long,
        env = "EVENTSYS_SHUTDOWN_GRACE_SECONDS",
        default_value_t = 0,
        global = true
    )]
    pub shutdown_grace_seconds: u64,
    /// Seconds a command may stay `accepted` before the API publishes it again.
    #[arg(
        long,
        env = "EVENTSYS_REPUBLISH_AFTER_SECONDS",
        default_value_t = 30,
        global = true
    )]
    pub republish_after_seconds: u64,
    /// Sustained writes per second per user (bursts of four seconds' worth
    /// pass); 0 turns the limit off.
    #[arg(
        long,
        env = "EVENTSYS_RATE_LIMIT_PER_USER",
        default_value_t = Limits::default().writes_per_user,
        global = true
    )]
    pub rate_limit_per_user: u32,
    /// Sustained writes per second per client address; 0 turns it off.
    #[arg(
        long,
        env = "EVENTSYS_RATE_LIMIT_PER_ADDR",
        default_value_t = Limits::default().writes_per_addr,
        global = true
    )]
    pub rate_limit_per_addr: u32,
    /// Seconds of work a replica may hold accepted and unfinished before a
    /// new command gets `503` with a `Retry-After`; 0 turns admission
    /// control off.
    #[arg(
        long,
        env = "EVENTSYS_ADMISSION_MAX_WAIT_SECONDS",
        default_value_t = Limits::default().admission.max_wait.as_secs(),
        global = true
    )]
    pub admission_max_wait_seconds: u64,
    /// Commands one user may have waiting at once (more get `429`); 0
    /// turns the limit off.
    #[arg(
        long,
        env = "EVENTSYS_ADMISSION_PER_USER",
        default_value_t = Limits::default().admission.per_user,
        global = true
    )]
    pub admission_per_user: u32,
    /// Live (WebSocket) connections one user may hold on one replica.
    #[arg(
        long,
        env = "EVENTSYS_WS_CONNECTIONS_PER_USER",
        default_value_t = Limits::default().hub.connections_per_user,
        global = true
    )]
    pub ws_connections_per_user: usize,
    /// Live connections one replica holds in all.
    #[arg(
        long,
        env = "EVENTSYS_WS_CONNECTIONS",
        default_value_t = Limits::default().hub.connections,
        global = true
    )]
    pub ws_connections: usize,
    /// Events one live connection may follow.
    #[arg(
        long,
        env = "EVENTSYS_WS_SUBSCRIPTIONS",
        default_value_t = Limits::default().hub.subscriptions_per_connection,
        global = true
    )]
    pub ws_subscriptions: usize,
    /// Messages per second a live connection may send (bursts of four
    /// seconds' worth pass); more closes it.
    #[arg(
        long,
        env = "EVENTSYS_WS_MESSAGES_PER_SECOND",
        default_value_t = Limits::default().ws_messages_per_second,
        global = true
    )]
    pub ws_messages_per_second: u32,
    /// The largest message (and frame) a live connection may send, in bytes.
    #[arg(
        long,
        env = "EVENTSYS_WS_MAX_MESSAGE_BYTES",
        default_value_t = Limits::default().ws_message_bytes,
        global = true
    )]
    pub ws_max_message_bytes: usize,
    /// Open HTTP connections per API replica.
    #[arg(
        long,
        env = "EVENTSYS_MAX_CONNECTIONS",
        default_value_t = Limits::default().connections,
        global = true
    )]
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers, and that a
    /// kept-alive connection may sit idle.
    #[arg(
        long,
        env = "EVENTSYS_HEADER_TIMEOUT_SECONDS",
        default_value_t = Limits::default().header_timeout.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    pub header_timeout_seconds: u64,
    /// Log lines as `text` or `json`; default: text on a terminal, JSON
    /// otherwise. The filter is `RUST_LOG`.
    #[arg(long, env = "EVENTSYS_LOG_FORMAT", value_enum, global = true)]
    pub log_format: Option<LogFormat>,
    /// Seconds a worker's consumer may show no progress before its
    /// `/healthz` fails and the orchestrator restarts it.
    #[arg(
        long,
        env = "EVENTSYS_LIVENESS_SECONDS",
        default_value_t = 120,
        global = true
    )]
    pub liveness_seconds: u64,
    /// Let webhook endpoints resolve to loopback or private addresses
    /// (tests, a compose file on one host).
    #[arg(
        long,
        env = "EVENTSYS_WEBHOOKS_ALLOW_PRIVATE_NETWORKS",
        default_value_t = false,
        action = clap::ArgAction::Set,
        global = true
    )]
    pub webhooks_allow_private_networks: bool,
    /// Milliseconds before a failed webhook delivery is first tried
    /// again; each next wait doubles, up to two hours.
    #[arg(
        long,
        env = "EVENTSYS_WEBHOOKS_FIRST_RETRY_MS",
        default_value_t = 5_000,
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    pub webhooks_first_retry_ms: u64,
    /// Seconds a webhook delivery is retried for before it is given up
    /// on (until replayed).
    #[arg(
        long,
        env = "EVENTSYS_WEBHOOKS_RETRY_FOR_SECONDS",
        default_value_t = 24 * 60 * 60,
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    pub webhooks_retry_for_seconds: u64,
    /// Whether the web page's development sign-in mints tokens for any
    /// user named: on in embedded mode, off in a distributed deployment,
    /// unless set.
    #[arg(long, env = "EVENTSYS_DEV_SIGN_IN", action = clap::ArgAction::Set, global = true)]
    pub dev_sign_in: Option<bool>,
}

impl Settings {
    pub fn dispatch(&self) -> DispatchOptions {
        DispatchOptions {
            allow_private: self.webhooks_allow_private_networks,
            retry: RetryPolicy {
                first_delay: Duration::from_millis(self.webhooks_first_retry_ms),
                retry_for: Duration::from_secs(self.webhooks_retry_for_seconds),
                ..RetryPolicy::default()
            },
            ..DispatchOptions::default()
        }
    }

    pub fn store_kind(&self) -> StoreKind {
        self.store.unwrap_or(if self.dynamodb_endpoint.is_some() {
            StoreKind::Dynamodb
        } else {
            StoreKind::Embedded
        })
    }

    pub fn dynamo(&self) -> DynamoConfig {
        // A local server takes any credentials; only when none are set up
        // do we supply dummies (and so never probe instance metadata).
        let has_credentials = [
            "AWS_ACCESS_KEY_ID",
            "AWS_PROFILE",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
        ]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
        DynamoConfig {
            endpoint: self.dynamodb_endpoint.clone(),
            table_prefix: self.table_prefix.clone(),
            local_credentials: self.dynamodb_endpoint.is_some() && !has_credentials,
            seats_per_shard: self.dynamodb_seats_per_shard,
        }
    }

    pub fn drain(&self) -> Duration {
        Duration::from_secs(self.drain_seconds)
    }

    pub fn liveness(&self) -> Duration {
        Duration::from_secs(self.liveness_seconds.max(1))
    }

    /// The broker logins `eventsys init` makes: those given a password.
    pub fn broker_logins(&self) -> Vec<(Principal, String)> {
        [
            (Principal::Api, &self.broker_password_api),
            (
                Principal::Worker(WorkQueue::Registration),
                &self.broker_password_registration,
            ),
            (
                Principal::Worker(WorkQueue::Ticketing),
                &self.broker_password_ticketing,
            ),
            (
                Principal::Worker(WorkQueue::Notification),
                &self.broker_password_notification,
            ),
            (
                Principal::Worker(WorkQueue::Webhooks),
                &self.broker_password_webhooks,
            ),
            (Principal::Autoscaler, &self.broker_password_autoscaler),
        ]
        .into_iter()
        .filter_map(|(principal, password)| Some((principal, password.clone()?)))
        .collect()
    }

    pub fn limits(&self) -> Limits {
        Limits {
            writes_per_user: self.rate_limit_per_user,
            writes_per_addr: self.rate_limit_per_addr,
            admission: AdmissionRule {
                max_wait: Duration::from_secs(self.admission_max_wait_seconds),
                per_user: self.admission_per_user,
            },
            hub: HubLimits {
                connections_per_user: self.ws_connections_per_user,
                connections: self.ws_connections,
                subscriptions_per_connection: self.ws_subscriptions,
            },
            ws_messages_per_second: self.ws_messages_per_second,
            ws_message_bytes: self.ws_max_message_bytes,
            connections: self.max_connections,
            header_timeout: Duration::from_secs(self.header_timeout_seconds),
            private_webhooks: self.webhooks_allow_private_networks,
        }
    }

    pub fn serving(&self) -> eventsys_api::ServeOptions {
        eventsys_api::ServeOptions {
            grace: Duration::from_secs(self.shutdown_grace_seconds),
            republish_after: Duration::from_secs(self.republish_after_seconds.max(1)),
            drain: self.drain(),
        }
    }
}

#[cfg(test)]
/// Every environment variable the binary reads (besides the AWS SDK's own).
pub fn environment_variables() -> Vec<String> {
    use clap::CommandFactory;
    let mut names: Vec<String> = Cli::command()
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect();
    names.extend(["RUST_LOG".to_owned(), "EVENTSYS_FAILPOINT".to_owned()]);
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_documented_variable_is_read() {
        let vars = environment_variables();
        for documented in [
            "EVENTSYS_HTTP_ADDR",
            "EVENTSYS_AMQP_URL",
            "EVENTSYS_DYNAMODB_ENDPOINT",
            "EVENTSYS_STORE",
            "EVENTSYS_TABLE_PREFIX",
            "EVENTSYS_JWT_SECRET",
            "EVENTSYS_DATA_DIR",
            "RUST_LOG",
        ] {
            assert!(
                vars.iter().any(|v| v == documented),
                "{documented} is not read"
            );
        }
    }

    /// Every `EVENTSYS_*` name that a deployment artefact sets.
    fn names_set_in(path: &std::path::Path, found: &mut std::collections::BTreeSet<String>) {
        if path.is_dir() {
            for entry in std::fs::read_dir(path).unwrap() {
                names_set_in(&entry.unwrap().path(), found);
            }
            return;
        }
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("EVENTSYS_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            found.insert(name.trim_end_matches('_').to_owned());
            rest = &rest[at + name.len().max(1)..];
        }
    }

    #[test]
    fn the_deployments_set_only_variables_the_binary_reads() {
        let top = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut set = std::collections::BTreeSet::new();
        for artefact in ["k8s", "docker-compose.yml", "deploy/Dockerfile"] {
            names_set_in(&top.join(artefact), &mut set);
        }
        assert!(set.len() >= 8, "too few variables found: {set:?}");
        let read = environment_variables();
        let unknown: Vec<&String> = set.iter().filter(|n| !read.contains(n)).collect();
        assert!(unknown.is_empty(), "set but never read: {unknown:?}");
    }
}
