//! Assembling the adapters the configuration asks for and running a role
//! on them until shutdown.

use std::sync::Arc;

use anyhow::{Context, bail};
use eventsys_api::AppState;
use eventsys_bus::{Bus, rabbitmq::RabbitBus};
use eventsys_messages::WorkQueue;
use eventsys_store::{Store, dynamodb::DynamoStore};
use eventsys_workers::{Deps, WorkError, WorkerOptions, retry::retry_transient, run_worker};
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    config::{Role, Settings, StoreKind},
    probes,
};

/// How long a starting process waits for the broker to come up.
const CONNECT_FOR: std::time::Duration = std::time::Duration::from_secs(60);

struct Backends {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
}

impl Backends {
    fn deps(&self) -> Deps {
        Deps {
            store: self.store.clone(),
            bus: self.bus.clone(),
        }
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
    let bus = retry_transient(CONNECT_FOR, || async {
        RabbitBus::connect(url, name).await.map_err(|e| {
            tracing::warn!(error = %e, "waiting for RabbitMQ");
            WorkError::Transient(e.to_string())
        })
    })
    .await
    .context("cannot reach RabbitMQ")?;
    let store = DynamoStore::connect(&settings.dynamo()).await;
    Ok(Backends {
        store: Arc::new(store),
        bus: Arc::new(bus),
    })
}

async fn backends(settings: &Settings, name: &str) -> anyhow::Result<Backends> {
    if settings.amqp_url.is_none() && settings.store_kind() == StoreKind::Embedded {
        bail!(
            "the embedded mode is not available in this build: set EVENTSYS_AMQP_URL and EVENTSYS_DYNAMODB_ENDPOINT"
        );
    }
    distributed(settings, name).await
}

/// The HS256 secret; required outside embedded mode.
pub fn secret(settings: &Settings) -> anyhow::Result<String> {
    match settings.jwt_secret.as_deref() {
        Some(secret) if secret.len() >= 16 => Ok(secret.to_owned()),
        Some(_) => bail!("EVENTSYS_JWT_SECRET must be at least 16 characters"),
        None => {
            bail!("set EVENTSYS_JWT_SECRET (tokens, ticket codes and cursors are signed with it)")
        }
    }
}

pub async fn init(settings: &Settings) -> anyhow::Result<()> {
    let backends = distributed(settings, "eventsys-init").await?;
    backends
        .bus
        .declare_topology()
        .await
        .context("declaring the broker topology")?;
    let store = DynamoStore::connect(&settings.dynamo()).await;
    store.create_tables().await.context("creating the tables")?;
    backends.bus.close().await;
    tracing::info!(tables = ?store.tables().all(), "broker topology and tables are in place");
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
    let secret = secret(settings)?;
    let listener = bind(settings).await?;
    let mut workers = JoinSet::new();
    for queue in WorkQueue::ALL {
        workers.spawn(run_worker(
            queue,
            backends.deps(),
            options(settings),
            shutdown.clone(),
        ));
    }
    let state = AppState::new(
        backends.store.clone(),
        backends.bus.clone(),
        secret.as_bytes(),
        shutdown,
    );
    eventsys_api::serve(listener, state, settings.grace()).await?;
    workers.join_all().await;
    backends.bus.close().await;
    tracing::info!("stopped");
    Ok(())
}

pub async fn api(settings: &Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let backends = distributed(settings, "eventsys-api").await?;
    let secret = secret(settings)?;
    let listener = bind(settings).await?;
    let state = AppState::new(
        backends.store.clone(),
        backends.bus.clone(),
        secret.as_bytes(),
        shutdown,
    );
    eventsys_api::serve(listener, state, settings.grace()).await?;
    backends.bus.close().await;
    tracing::info!("stopped");
    Ok(())
}

pub async fn worker(
    settings: &Settings,
    role: Role,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let queue = match role {
        Role::Registration => WorkQueue::Registration,
        Role::Ticketing => WorkQueue::Ticketing,
        Role::Notification => WorkQueue::Notification,
    };
    let backends = distributed(settings, &format!("eventsys-worker-{}", queue.role())).await?;
    if let Some(addr) = settings.health_addr {
        let probes = probes::serve(
            addr,
            backends.store.clone(),
            backends.bus.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            if let Err(err) = probes.await {
                tracing::error!(error = %err, "health probes stopped");
            }
        });
    }
    run_worker(queue, backends.deps(), options(settings), shutdown).await;
    backends.bus.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn bind(settings: &Settings) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(settings.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", settings.http_addr))?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    Ok(listener)
}
