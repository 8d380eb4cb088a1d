//! The store port's contract: every `Store` method called directly, its
//! return values, conditions, idempotence and "already done" cases pinned,
//! on each adapter. The embedded store runs in a temporary directory; the
//! DynamoDB adapter against the DynamoDB-compatible server the test script
//! starts, under a table prefix of its own. Anything one adapter does and
//! the other does not is a failure here, not a surprise in production.

// A store call that fails here is the finding itself.
#![allow(clippy::unwrap_used)]

mod commands;
mod events;
mod migrations;
mod notifications;
mod orders;
mod waitlist;
mod webhooks;

use std::{path::PathBuf, sync::Arc};

use eventsys_messages::{
    CommandId, CommandResult, CommandStatus, EventId, EventSpec, Timestamp, UserId,
};
use eventsys_store::{CommandRecord, Completion, EventRecord, Store};
use eventsys_store_dynamodb::{DynamoConfig, DynamoStore};
use eventsys_store_embedded::EmbeddedStore;
use eventsys_tests::{Services, unique};

/// Seats per counter item on DynamoDB in these tests: small, so that even
/// small events are spread over several items and the contract covers it.
const SEATS_PER_SHARD: u32 = 3;

/// One store under test, and what to remove when done.
pub struct Subject {
    pub store: Arc<dyn Store>,
    dir: Option<PathBuf>,
}

impl Drop for Subject {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub async fn embedded() -> Subject {
    let dir = std::env::temp_dir()
        .join("eventsys-store-contract")
        .join(unique());
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let store = EmbeddedStore::open(&dir.join("store.redb")).expect("opening the store");
    Subject {
        store: Arc::new(store),
        dir: Some(dir),
    }
}

pub async fn dynamodb() -> Subject {
    let services = Services::from_env();
    let config = DynamoConfig {
        endpoint: Some(services.dynamodb),
        table_prefix: format!("c{}_{}_", services.run.replace('-', "_"), unique()),
        local_credentials: true,
        seats_per_shard: SEATS_PER_SHARD,
    };
    let store = DynamoStore::connect(&config).await;
    store.create_tables().await.expect("creating the tables");
    Subject {
        store: Arc::new(store),
        dir: None,
    }
}

/// Declares each contract clause once and runs it on both adapters.
#[macro_export]
macro_rules! contract {
    ($($clause:ident),+ $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $clause() {
                    super::$clause(&*$crate::embedded().await.store).await;
                }
            )+
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $clause() {
                    super::$clause(&*$crate::dynamodb().await.store).await;
                }
            )+
        }
    };
}

pub fn user(name: &str) -> UserId {
    UserId::parse(name).expect("a user id")
}

/// An `accepted` command of `issuer`, submitted at `at`, not yet recorded.
pub fn command_at(issuer: &str, at: Timestamp) -> CommandRecord {
    let id = CommandId::generate();
    CommandRecord {
        command_id: id,
        kind: "order.place".into(),
        issuer: user(issuer),
        status: CommandStatus::Accepted,
        submitted_at: at,
        updated_at: at,
        resources: Default::default(),
        result: None,
        error: None,
        message: format!(r#"{{"message_id":"{id}"}}"#),
    }
}

/// Records a fresh command of `issuer` and returns how it succeeds.
pub async fn recorded(store: &dyn Store, issuer: &str) -> Completion {
    let record = command_at(issuer, Timestamp::now());
    store
        .record_command(&record, None)
        .await
        .expect("recording a command");
    Completion::succeeded(record.command_id, CommandResult::default())
}

/// A published event of `capacity` seats with ticket types of `quotas`.
pub fn event(capacity: u32, quotas: &[u32]) -> EventRecord {
    let now = Timestamp::now();
    EventRecord {
        event_id: EventId::generate(),
        organizer_id: user("olga"),
        spec: EventSpec::sample(capacity, quotas),
        staff: Default::default(),
        created_at: now,
        updated_at: now,
    }
}

/// Writes `event` through the port, as the registration worker does.
pub async fn created(store: &dyn Store, event: &EventRecord) {
    let done = recorded(store, "olga").await;
    store
        .create_event(event, &done)
        .await
        .expect("creating an event");
}
