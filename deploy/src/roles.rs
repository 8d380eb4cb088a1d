//! Assembling the adapters the configuration asks for and running a role
//! on them until shutdown.

use std::{path::Path, sync::Arc};

use anyhow::{Context, bail};
use eventsys_api::{
    AppState, Keys,
    auth::{Auth, TokenKeys},
    signing::{Cursors, TicketCodes},
};
use eventsys_bus::Bus;
use eventsys_bus_embedded::EmbeddedBus;
use eventsys_bus_rabbitmq::{EventSeal, RabbitBus};
use eventsys_messages::WorkQueue;
use eventsys_store::Store;
use eventsys_store_dynamodb::DynamoStore;
use eventsys_store_embedded::EmbeddedStore;
use eventsys_workers::{
    Deps, Heartbeat, WorkError, WorkerOptions, retry::retry_transient, run_worker,
    schedule::run_scheduler, webhooks::run_dispatcher,
};
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    config::{Role, Settings, StoreKind},
    probes,
};

/// How long a starting process waits for the broker to come up.
const CONNECT_FOR: std::time::Duration = std::time::Duration::from_secs(60);

pub(crate) struct Backends {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    /// One for the whole process: the roles it runs share what they
    /// gather, and the webhooks consumer wakes this process's dispatcher.
    deps: Deps,
}

impl Backends {
    fn new(store: Arc<dyn Store>, bus: Arc<dyn Bus>) -> Self {
        let deps = Deps::new(store.clone(), bus.clone());
        Self { store, bus, deps }
    }

    fn deps(&self) -> Deps {
        self.deps.clone()
    }
}

/// RabbitMQ and DynamoDB, as every role of a distributed deployment uses them.
async fn distributed(settings: &Settings, name: &str) -> anyhow::Result<Backends> {
    let Some(url) = settings.amqp_url.as_deref() else {
        bail!(
            "separate roles share work through RabbitMQ: set EVENTSYS_AMQP_URL (or run `eventsys serve`)"
        );
    };
    if settings.store_kind() != StoreKind::Dynamodb {
        bail!(
            "separate roles share one store: set EVENTSYS_STORE=dynamodb or EVENTSYS_DYNAMODB_ENDPOINT"
        );
    }
    let seal = event_seal(settings)?;
    let store = DynamoStore::connect(&settings.dynamo()).await;
    check_store(&store, settings).await?;
    let bus = connect_rabbitmq(url, name, Some(seal)).await?;
    Ok(Backends::new(Arc::new(store), Arc::new(bus)))
}

/// Fails at start, saying what to do, when the store cannot serve this
/// role (no credentials, tables not made yet); waits for one that is only
/// unreachable, as for the broker.
async fn check_store(store: &DynamoStore, settings: &Settings) -> anyhow::Result<()> {
    retry_transient(CONNECT_FOR, || async {
        store.check().await.map_err(|e| {
            if e.is_transient() {
                tracing::warn!(error = %e, "waiting for DynamoDB");
            }
            WorkError::Store(e)
        })
    })
    .await
    .map_err(|e| match e {
        WorkError::Store(e) => anyhow::Error::new(e),
        other => anyhow::Error::new(other),
    })
    .with_context(|| {
        let at = settings
            .dynamodb_endpoint
            .as_deref()
            .unwrap_or("its AWS region");
        format!("DynamoDB at {at} cannot serve eventsys")
    })
}

/// Whatever the configuration asks for: RabbitMQ or the embedded queue,
/// DynamoDB or the embedded store.
pub(crate) async fn backends(settings: &Settings, name: &str) -> anyhow::Result<Backends> {
    let store: Arc<dyn Store> = match settings.store_kind() {
        StoreKind::Dynamodb => Arc::new(DynamoStore::connect(&settings.dynamo()).await),
        StoreKind::Embedded => {
            let path = data_dir(settings)?.join("store.redb");
            let store = EmbeddedStore::open(&path)
                .with_context(|| format!("opening {}", path.display()))?;
            private(&path)?;
            Arc::new(store)
        }
    };
    let bus: Arc<dyn Bus> = match settings.amqp_url.as_deref() {
        Some(url) => Arc::new(connect_rabbitmq(url, name, Some(event_seal(settings)?)).await?),
        None => {
            let path = data_dir(settings)?.join("queue.redb");
            let bus =
                EmbeddedBus::open(&path).with_context(|| format!("opening {}", path.display()))?;
            private(&path)?;
            Arc::new(bus)
        }
    };
    Ok(Backends::new(store, bus))
}

/// What seals the facts on `eventsys.events`: every role on RabbitMQ needs
/// the same secret.
fn event_seal(settings: &Settings) -> anyhow::Result<EventSeal> {
    match settings.event_seal_secret.as_deref() {
        Some(secret) if secret.len() >= 16 => Ok(EventSeal::new(secret.as_bytes())),
        Some(_) => bail!("EVENTSYS_EVENT_SEAL_SECRET must be at least 16 characters"),
        None => bail!(
            "set EVENTSYS_EVENT_SEAL_SECRET, the same random secret (at least 16 characters) \
             for every role: facts on the broker are sealed with it"
        ),
    }
}

async fn connect_rabbitmq(
    url: &str,
    name: &str,
    seal: Option<EventSeal>,
) -> anyhow::Result<RabbitBus> {
    retry_transient(CONNECT_FOR, || async {
        RabbitBus::connect(url, name, seal.clone())
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "waiting for RabbitMQ");
                WorkError::Bus(e)
            })
    })
    .await
    .with_context(|| {
        format!(
            "cannot reach RabbitMQ at {} (EVENTSYS_AMQP_URL)",
            broker_address(url)
        )
    })
}

/// Where `url` points, without its login.
fn broker_address(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    host.split('/').next().unwrap_or(host)
}

fn embedded(settings: &Settings) -> bool {
    settings.amqp_url.is_none() && settings.store_kind() == StoreKind::Embedded
}

/// The data directory, made private to this user when we create it: it
/// holds every order and the keys.
fn data_dir(settings: &Settings) -> anyhow::Result<&Path> {
    let dir = settings.data_dir.as_path();
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("creating the data directory {}", dir.display()))?;
    Ok(dir)
}

/// Makes a file we keep readable and writable by this user only.
fn private(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("making {} private", path.display()))?;
    }
    Ok(())
}

/// What checks tokens (and mints them, given the HS256 secret). The secret
/// is required outside embedded mode unless an identity provider's public
/// key is configured; embedded mode makes one on first start and keeps it
/// in the data directory.
pub fn tokens(settings: &Settings) -> anyhow::Result<Auth> {
    let public_key_pem = match &settings.jwt_public_key_file {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        }
        None => None,
    };
    let secret = match (&settings.jwt_secret, &public_key_pem) {
        (None, Some(_)) => None,
        _ => Some(secret(
            settings,
            settings.jwt_secret.as_deref(),
            "EVENTSYS_JWT_SECRET",
            "jwt-secret",
        )?),
    };
    Auth::configured(TokenKeys {
        secret: secret.map(String::into_bytes),
        public_key_pem,
        issuer: settings.jwt_issuer.clone(),
        audience: settings.jwt_audience.clone(),
    })
    .context("EVENTSYS_JWT_PUBLIC_KEY_FILE")
}

/// Every key the API signs and checks with, each from its own secret.
fn keys(settings: &Settings) -> anyhow::Result<Keys> {
    let cursors = secret(
        settings,
        settings.cursor_secret.as_deref(),
        "EVENTSYS_CURSOR_SECRET",
        "cursor-secret",
    )?;
    Ok(Keys {
        tokens: tokens(settings)?,
        codes: ticket_codes(settings)?,
        cursors: Cursors::new(cursors.as_bytes()),
    })
}

/// The secret `configured` in `variable`, at least 16 characters. Required
/// outside embedded mode; embedded mode makes one on first start and keeps
/// it in the data directory as `file`.
fn secret(
    settings: &Settings,
    configured: Option<&str>,
    variable: &str,
    file: &str,
) -> anyhow::Result<String> {
    match configured {
        Some(secret) if secret.len() >= 16 => Ok(secret.to_owned()),
        Some(_) => bail!("{variable} must be at least 16 characters"),
        None if embedded(settings) => kept(data_dir(settings)?, file, || {
            Ok(format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ))
        }),
        None => bail!("set {variable} to a random secret of at least 16 characters"),
    }
}

/// What signs and verifies ticket codes. The key is required outside
/// embedded mode; embedded mode makes one on first start and keeps it in
/// the data directory.
fn ticket_codes(settings: &Settings) -> anyhow::Result<TicketCodes> {
    let seed = match settings.ticket_signing_key.as_deref() {
        Some(seed) => seed.to_owned(),
        None if embedded(settings) => kept(data_dir(settings)?, "ticket-signing-key", || {
            Ok(TicketCodes::generate_seed()?)
        })?,
        None => bail!(
            "set EVENTSYS_TICKET_SIGNING_KEY to 32 random bytes, base64 \
             (`head -c 32 /dev/urandom | base64`): it signs ticket codes"
        ),
    };
    TicketCodes::new(&seed, &settings.ticket_retired_keys)
        .context("EVENTSYS_TICKET_SIGNING_KEY or EVENTSYS_TICKET_RETIRED_KEYS")
}

/// The secret kept in `dir/name`, made by `make` (and kept, readable by
/// this user only) on first use.
fn kept(
    dir: &Path,
    name: &str,
    make: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<String> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(secret) if secret.trim().len() >= 16 => return Ok(secret.trim().to_owned()),
        Ok(_) => bail!(
            "{} is too short; delete it to have a new one made",
            path.display()
        ),
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            return Err(err).with_context(|| format!("reading {}", path.display()));
        }
        Err(_) => {}
    }
    let secret = make()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut file, secret.as_bytes())?;
    tracing::info!(path = %path.display(), "generated a secret");
    Ok(secret)
}

/// Creates what the configured adapters need and exits; idempotent.
pub async fn init(settings: &Settings) -> anyhow::Result<()> {
    if let Some(url) = settings.amqp_url.as_deref() {
        let bus = connect_rabbitmq(url, "eventsys-init", None).await?;
        bus.declare_topology()
            .await
            .context("declaring the broker topology")?;
        bus.close().await;
        tracing::info!("broker topology is in place");
        let logins = settings.broker_logins();
        match settings.rabbitmq_management_url.as_deref() {
            Some(management) => crate::management::set_up(management, url, &logins).await?,
            None if !logins.is_empty() => {
                bail!("broker logins need EVENTSYS_RABBITMQ_MANAGEMENT_URL: AMQP cannot make users")
            }
            None => tracing::warn!(
                "without EVENTSYS_RABBITMQ_MANAGEMENT_URL, every role shares one broker login \
                 and dead letters are kept until replayed"
            ),
        }
    }
    match settings.store_kind() {
        StoreKind::Dynamodb => {
            let store = DynamoStore::connect(&settings.dynamo()).await;
            store.create_tables().await.context("creating the tables")?;
            tracing::info!(tables = ?store.tables().all(), "tables are in place");
        }
        StoreKind::Embedded => {
            backends(settings, "eventsys-init").await?;
            tracing::info!(data = %settings.data_dir.display(), "embedded store and queue are in place");
        }
    }
    Ok(())
}

fn options(settings: &Settings) -> WorkerOptions {
    WorkerOptions {
        prefetch: settings.prefetch,
        drain_timeout: settings.drain(),
    }
}

pub async fn serve(settings: &Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let backends = backends(settings, "eventsys-serve").await?;
    let keys = keys(settings)?;
    let listener = bind(settings).await?;
    if embedded(settings) {
        tracing::info!(
            data = %settings.data_dir.display(),
            "embedded mode: store and queue live in the data directory; \
             mint a token with `eventsys token --sub alice --role organizer --role attendee`"
        );
    }
    let mut workers = JoinSet::new();
    workers.spawn(run_scheduler(backends.deps(), shutdown.clone()));
    workers.spawn(run_dispatcher(
        backends.deps(),
        settings.dispatch(),
        shutdown.clone(),
    ));
    for queue in WorkQueue::ALL {
        workers.spawn(run_worker(
            queue,
            backends.deps(),
            options(settings),
            Heartbeat::default(),
            shutdown.clone(),
        ));
    }
    let state = AppState::new(
        backends.store.clone(),
        backends.bus.clone(),
        keys,
        settings.limits(),
        shutdown,
    )
    .with_dev_sign_in(settings.dev_sign_in.unwrap_or(embedded(settings)));
    eventsys_api::serve(listener, state, settings.serving()).await?;
    workers.join_all().await;
    backends.bus.close().await;
    tracing::info!("stopped");
    Ok(())
}

pub async fn api(settings: &Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    // Settings first: a bad secret is reported before any connection.
    let keys = keys(settings)?;
    let backends = distributed(settings, "eventsys-api").await?;
    let listener = bind(settings).await?;
    let state = AppState::new(
        backends.store.clone(),
        backends.bus.clone(),
        keys,
        settings.limits(),
        shutdown,
    )
    .with_dev_sign_in(settings.dev_sign_in.unwrap_or(false));
    eventsys_api::serve(listener, state, settings.serving()).await?;
    backends.bus.close().await;
    tracing::info!("stopped");
    Ok(())
}

pub async fn worker(
    settings: &Settings,
    role: Role,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let queue = queue_of(role);
    let backends = distributed(settings, &format!("eventsys-worker-{}", queue.role())).await?;
    let heartbeat = Heartbeat::default();
    if let Some(addr) = settings.health_addr {
        let probes = probes::serve(
            addr,
            backends.store.clone(),
            backends.bus.clone(),
            probes::Liveness {
                heartbeat: heartbeat.clone(),
                limit: settings.liveness(),
            },
            shutdown.clone(),
        );
        tokio::spawn(async move {
            if let Err(err) = probes.await {
                tracing::error!(error = %err, "health probes stopped");
            }
        });
    }
    // Whoever sells also sees that holds and events end on time.
    let scheduler = (queue == WorkQueue::Ticketing)
        .then(|| tokio::spawn(run_scheduler(backends.deps(), shutdown.clone())));
    // Whoever owes webhooks also sends them.
    let dispatcher = (queue == WorkQueue::Webhooks).then(|| {
        tokio::spawn(run_dispatcher(
            backends.deps(),
            settings.dispatch(),
            shutdown.clone(),
        ))
    });
    run_worker(
        queue,
        backends.deps(),
        options(settings),
        heartbeat,
        shutdown,
    )
    .await;
    for task in [scheduler, dispatcher].into_iter().flatten() {
        let _ = task.await;
    }
    backends.bus.close().await;
    tracing::info!("stopped");
    Ok(())
}

pub(crate) fn queue_of(role: Role) -> WorkQueue {
    match role {
        Role::Registration => WorkQueue::Registration,
        Role::Ticketing => WorkQueue::Ticketing,
        Role::Notification => WorkQueue::Notification,
        Role::Webhooks => WorkQueue::Webhooks,
    }
}

/// Connections the kernel may hold for the API before it accepts them. A
/// sale opens thousands in the same second; with the usual 1,024 the rest
/// of the crowd waits out a SYN retry (1 s, then 3 s) before it is even
/// heard. The kernel caps it at `net.core.somaxconn`.
const ACCEPT_BACKLOG: u32 = 8192;

async fn bind(settings: &Settings) -> anyhow::Result<TcpListener> {
    let addr = settings.http_addr;
    let listen = || -> std::io::Result<TcpListener> {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        // A restarted replica may listen while the old one's connections
        // linger in TIME_WAIT.
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(ACCEPT_BACKLOG)
    };
    let listener = listen().with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::broker_address;

    #[test]
    fn a_broker_address_is_shown_without_its_login() {
        let url = "amqps://eventsys-api:secret@mq.internal:5671/%2f";
        assert_eq!(broker_address(url), "mq.internal:5671");
        assert_eq!(broker_address("amqp://127.0.0.1:5672"), "127.0.0.1:5672");
    }
}
