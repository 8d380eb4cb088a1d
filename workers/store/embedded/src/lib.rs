//! The embedded adapter: one redb file, for running everything in one
//! process with nothing to install.
//!
//! redb runs one write transaction at a time and each is serializable, so
//! every condition the port promises (the command still unfinished, the
//! shard still holding the seats, the ticket still valid) is checked and
//! acted on inside one transaction, and nothing can interleave. Records are
//! stored as JSON; keys are strings chosen to sort the way lists are read.

mod commands;
mod events;
mod notifications;
mod orders;
mod webhooks;

use std::{path::Path, sync::Arc};

use async_trait::async_trait;
use eventsys_group_commit::Committer;
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, Table, TableDefinition,
    WriteTransaction,
};
use serde::{Serialize, de::DeserializeOwned};

use eventsys_store::{StoreError, ports::Store, records::Page};

type Def = TableDefinition<'static, &'static str, &'static [u8]>;

const COMMANDS: Def = TableDefinition::new("commands");
/// `{submitted_at}#{command_id}` of `accepted` commands, for re-publishing.
const PENDING: Def = TableDefinition::new("pending_commands");
const CLAIMS: Def = TableDefinition::new("idempotency");
/// `{forget_at}#{command_id}` of finished commands, to forget them in time.
const FORGETTING: Def = TableDefinition::new("commands_by_expiry");
/// `{expires_at}#{key_hash}` of idempotency claims.
const CLAIMS_EXPIRING: Def = TableDefinition::new("idempotency_by_expiry");
const EVENTS: Def = TableDefinition::new("events");
/// `{starts_at}#{event_id}` of published events, for the listing.
const LISTING: Def = TableDefinition::new("events_by_start");
/// `{ends_at}#{event_id}` of published events, to end them on time.
const ENDINGS: Def = TableDefinition::new("events_by_end");
/// `{event_id}`: one event's counters (one record: redb has no hot
/// partitions to spread writes over).
const INVENTORY: Def = TableDefinition::new("inventory");
const ORDERS: Def = TableDefinition::new("orders");
/// `{expires_at}#{order_id}` of `pending_payment` orders, for expiry.
const HOLDS: Def = TableDefinition::new("holds");
const TICKETS: Def = TableDefinition::new("tickets");
/// `{holder}\0{created_at}#{ticket_id}`.
const TICKETS_BY_HOLDER: Def = TableDefinition::new("tickets_by_holder");
/// `{event_id}\0{ticket_id}`: whom to tell when an event changes.
const TICKETS_BY_EVENT: Def = TableDefinition::new("tickets_by_event");
/// `{event_id}\0{user}`: one waiting-list entry per user and event.
const WAITLIST: Def = TableDefinition::new("waitlist");
/// `{event_id}\0{position_key}` of those still waiting, in list order.
const WAITING: Def = TableDefinition::new("waitlist_order");
/// `{user}\0{notification_id}`.
const NOTIFICATIONS: Def = TableDefinition::new("notifications");
const WEBHOOKS: Def = TableDefinition::new("webhooks");
/// `{organizer}\0{webhook_id}` (UUIDv7: in the order they were added).
const WEBHOOKS_BY_ORGANIZER: Def = TableDefinition::new("webhooks_by_organizer");
/// `{webhook_id}\0{sequence, 20 digits}`: an endpoint's deliveries in order.
const DELIVERIES: Def = TableDefinition::new("webhook_deliveries");
/// `{webhook_id}\0{occurrence_id}`: each occurrence owed once per endpoint.
const OCCURRENCES: Def = TableDefinition::new("webhook_occurrences");
/// The keys of `webhook_deliveries` still owed, in the same order.
const OWED: Def = TableDefinition::new("webhook_deliveries_owed");
/// The ids of endpoints owed something, until a dispatcher settles them.
const OWING: Def = TableDefinition::new("webhooks_owing");
/// `webhook_id` → who sends to it, and until when.
const LEASES: Def = TableDefinition::new("webhook_leases");

const ALL: [Def; 24] = [
    COMMANDS,
    PENDING,
    CLAIMS,
    FORGETTING,
    CLAIMS_EXPIRING,
    EVENTS,
    LISTING,
    ENDINGS,
    INVENTORY,
    ORDERS,
    HOLDS,
    TICKETS,
    TICKETS_BY_HOLDER,
    TICKETS_BY_EVENT,
    WAITLIST,
    WAITING,
    NOTIFICATIONS,
    WEBHOOKS,
    WEBHOOKS_BY_ORGANIZER,
    DELIVERIES,
    OCCURRENCES,
    OWED,
    OWING,
    LEASES,
];

#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    /// Every write goes through it, so that concurrent ones share a commit.
    committer: Committer,
}

fn unavailable(err: impl Into<eventsys_store::Cause>) -> StoreError {
    StoreError::unavailable("the embedded store failed").because(err)
}

impl EmbeddedStore {
    /// Opens (or creates) the store file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(unavailable)?;
        let txn = db.begin_write().map_err(unavailable)?;
        for table in ALL {
            txn.open_table(table).map_err(unavailable)?;
        }
        txn.commit().map_err(unavailable)?;
        let db = Arc::new(db);
        let committer = Committer::start(db.clone(), "store").map_err(unavailable)?;
        Ok(Self { db, committer })
    }

    /// Runs `work` in a durable write transaction, shared with the writes
    /// that arrive at the same time (see [`Committer`]); `work` may run
    /// more than once, and only the run that commits counts.
    async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        self.committer.write(work).await.map_err(unavailable)?
    }

    /// Like [`Self::write`], for writes whose loss in a crash is harmless.
    async fn write_lazily<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        self.committer
            .write_lazily(work)
            .await
            .map_err(unavailable)?
    }

    /// Runs `work` on a consistent snapshot.
    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read().map_err(unavailable)?;
            work(&txn)
        })
        .await
        .map_err(unavailable)?
    }
}

fn get<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match table.get(key).map_err(unavailable)? {
        Some(value) => serde_json::from_slice(value.value())
            .map(Some)
            .map_err(|e| StoreError::corrupt(format!("{key}: {e}"))),
        None => Ok(None),
    }
}

fn put<T: Serialize>(
    table: &mut Table<'_, &'static str, &'static [u8]>,
    key: &str,
    value: &T,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(value).map_err(|e| StoreError::rejected(e.to_string()))?;
    table.insert(key, bytes.as_slice()).map_err(unavailable)?;
    Ok(())
}

fn open<'t>(
    txn: &'t WriteTransaction,
    table: Def,
) -> Result<Table<'t, &'static str, &'static [u8]>, StoreError> {
    txn.open_table(table).map_err(unavailable)
}

fn open_read(
    txn: &ReadTransaction,
    table: Def,
) -> Result<redb::ReadOnlyTable<&'static str, &'static [u8]>, StoreError> {
    txn.open_table(table).map_err(unavailable)
}

/// Reads a page of `table` between `start` and `end` (exclusive), after
/// `position` if given, in ascending or descending key order. The position
/// of a page is its last key.
fn page<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    (start, end): (&str, &str),
    position: Option<&str>,
    limit: u32,
    newest_first: bool,
) -> Result<Page<(String, T)>, StoreError> {
    use std::ops::Bound::{Excluded, Included};
    let (low, high) = match (position, newest_first) {
        (Some(p), true) => (Included(start), Excluded(p)),
        (Some(p), false) => (Excluded(p), Excluded(end)),
        (None, _) => (Included(start), Excluded(end)),
    };
    if position.is_some_and(|p| p < start || p > end) {
        return Err(StoreError::BadCursor);
    }
    let range = table.range::<&str>((low, high)).map_err(unavailable)?;
    let mut entries: Box<dyn Iterator<Item = _>> = if newest_first {
        Box::new(range.rev())
    } else {
        Box::new(range)
    };
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut items = Vec::new();
    for entry in entries.by_ref().take(limit) {
        let (key, value) = entry.map_err(unavailable)?;
        let record = serde_json::from_slice(value.value())
            .map_err(|e| StoreError::corrupt(e.to_string()))?;
        items.push((key.value().to_owned(), record));
    }
    let more = entries.next().is_some();
    let next = if more {
        items.last().map(|(k, _)| k.clone())
    } else {
        None
    };
    Ok(Page { items, next })
}

/// A page of records newest first from `table` between `start` and `end`,
/// as [`page`] reads it, without the keys.
fn newest_first<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    range: (&str, &str),
    request: &eventsys_store::PageRequest,
) -> Result<Page<T>, StoreError> {
    let Page { items, next } =
        page::<T>(table, range, request.after.as_deref(), request.limit, true)?;
    Ok(Page {
        items: items.into_iter().map(|(_, record)| record).collect(),
        next,
    })
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|txn| open_read(txn, COMMANDS).map(|_| ())).await
    }
}
