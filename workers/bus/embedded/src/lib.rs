//! The embedded adapter: a durable queue inside the process, in one redb
//! file, with the semantics the workers rely on from RabbitMQ:
//!
//! - a publish returns once the message is on disk (the "confirm");
//! - each work queue hands a message to one consumer at a time and keeps it
//!   until it is acknowledged; a message handed back, or left unsettled when
//!   its handler went away or the process died, is delivered again, with a
//!   count of earlier deliveries;
//! - a dead-lettered message moves to the queue's dead-letter table, and is
//!   forgotten after [`DEAD_LETTER_RETENTION`];
//! - events fan out to this process's broadcast subscribers (live only).
//!
//! Only publishes are written durably. Losing a settlement in a crash means
//! delivering a message once more, which every consumer already tolerates.

use std::{
    collections::HashSet,
    path::Path,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use async_trait::async_trait;
use eventsys_group_commit::Committer;
use eventsys_messages::{Timestamp, WorkQueue, topology};
use redb::{Database, ReadableTable, TableDefinition};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, watch};

use eventsys_bus::{
    Acker, Bus, BusError, DEAD_LETTER_RETENTION, Delivery, Exchange, Message, Subscription,
};

/// (earlier deliveries, routing key, message id, traceparent, body)
type Stored = (u32, &'static str, &'static str, &'static str, &'static [u8]);
type Def = TableDefinition<'static, u64, Stored>;

/// `(forget at, in ms since the epoch; sequence)` of every dead letter, to
/// the name of the dead-letter table that holds it.
const DEAD_LETTERS_BY_EXPIRY: TableDefinition<'static, (u64, u64), &'static str> =
    TableDefinition::new("dead_letters_by_expiry");

fn epoch_millis(at: Timestamp) -> u64 {
    u64::try_from(at.as_millisecond()).unwrap_or(0)
}

/// Live events buffered per broadcast subscriber before it starts missing some.
const BROADCAST_BUFFER: usize = 4096;

fn unavailable(err: impl Into<eventsys_bus::Cause>) -> BusError {
    BusError::unavailable_because("the embedded queue failed", err)
}

struct Queue {
    work: WorkQueue,
    table: Def,
    /// Where dead letters go; `None` for a dead-letter queue itself.
    dead: Option<Arc<Queue>>,
    next_seq: AtomicU64,
    /// Messages handed out and not yet settled.
    leased: Mutex<HashSet<u64>>,
    /// Bumped on every arrival, so that idle consumers wake up.
    arrivals: watch::Sender<u64>,
}

impl Queue {
    fn leased(&self) -> MutexGuard<'_, HashSet<u64>> {
        self.leased
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wake(&self) {
        self.arrivals.send_modify(|n| *n = n.wrapping_add(1));
    }
}

pub struct EmbeddedBus {
    db: Arc<Database>,
    /// Every write goes through it (publishes, leases, settlements), so
    /// that concurrent ones share a commit.
    committer: Committer,
    queues: Vec<Arc<Queue>>,
    events: broadcast::Sender<Arc<Message>>,
}

impl EmbeddedBus {
    /// Opens (or creates) the queue file at `path`. Whatever was published
    /// and not acknowledged before is delivered again.
    pub fn open(path: &Path) -> Result<Self, BusError> {
        let db = Database::create(path).map_err(unavailable)?;
        let txn = db.begin_write().map_err(unavailable)?;
        let mut queues = Vec::new();
        for work in WorkQueue::ALL {
            let (table, dead) = (Def::new(work.name()), Def::new(work.dead_letter_queue()));
            // Dead letters keep their sequence number: both tables count on.
            let next = {
                let last = |def: Def| -> Result<u64, BusError> {
                    let t = txn.open_table(def).map_err(unavailable)?;
                    Ok(t.last().map_err(unavailable)?.map_or(0, |(k, _)| k.value()))
                };
                last(table)?.max(last(dead)?) + 1
            };
            let queue = |table, dead| Queue {
                work,
                table,
                dead,
                next_seq: AtomicU64::new(next),
                leased: Mutex::new(HashSet::new()),
                arrivals: watch::channel(0).0,
            };
            queues.push(Arc::new(queue(table, Some(Arc::new(queue(dead, None))))));
        }
        txn.commit().map_err(unavailable)?;
        let db = Arc::new(db);
        let committer = Committer::start(db.clone(), "queue").map_err(unavailable)?;
        Ok(Self {
            db,
            committer,
            queues,
            events: broadcast::channel(BROADCAST_BUFFER).0,
        })
    }

    fn queue(&self, work: WorkQueue) -> Arc<Queue> {
        // Every WorkQueue has its queue, created in `open`.
        self.queues
            .iter()
            .find(|q| q.work == work)
            .cloned()
            .unwrap_or_else(|| unreachable!("queue {} was opened", work.name()))
    }
}

fn message_of(
    (_, routing_key, message_id, traceparent, body): (u32, &str, &str, &str, &[u8]),
) -> Message {
    Message {
        routing_key: routing_key.to_owned(),
        message_id: message_id.to_owned(),
        body: body.to_vec(),
        traceparent: (!traceparent.is_empty()).then(|| traceparent.to_owned()),
    }
}

/// Which durable queues a message published to `exchange` lands in.
fn routes(exchange: Exchange, work: WorkQueue) -> &'static [&'static str] {
    match exchange {
        Exchange::Commands => work.command_patterns(),
        Exchange::Events => work.event_patterns(),
    }
}

#[async_trait]
impl Bus for EmbeddedBus {
    async fn declare_topology(&self) -> Result<(), BusError> {
        Ok(())
    }

    async fn publish(&self, exchange: Exchange, message: &Message) -> Result<(), BusError> {
        let targets: Vec<Arc<Queue>> = self
            .queues
            .iter()
            .filter(|q| {
                routes(exchange, q.work)
                    .iter()
                    .any(|p| topology::matches(p, &message.routing_key))
            })
            .cloned()
            .collect();
        if exchange == Exchange::Commands && targets.is_empty() {
            return Err(BusError::Unroutable(message.routing_key.clone()));
        }
        if !targets.is_empty() {
            let (message, queues) = (message.clone(), targets.clone());
            self.committer
                .write(move |txn| {
                    for queue in &queues {
                        let mut table = txn.open_table(queue.table).map_err(unavailable)?;
                        let seq = queue.next_seq.fetch_add(1, Ordering::Relaxed);
                        let stored = (
                            0u32,
                            message.routing_key.as_str(),
                            message.message_id.as_str(),
                            message.traceparent.as_deref().unwrap_or(""),
                            message.body.as_slice(),
                        );
                        table.insert(seq, stored).map_err(unavailable)?;
                    }
                    Ok(())
                })
                .await
                .map_err(unavailable)??;
            targets.iter().for_each(|q| q.wake());
        }
        if exchange == Exchange::Events {
            // Nobody listening is fine: events are facts, not requests.
            let _ = self.events.send(Arc::new(message.clone()));
        }
        Ok(())
    }

    async fn consume(
        &self,
        work: WorkQueue,
        prefetch: u16,
    ) -> Result<Box<dyn Subscription>, BusError> {
        let queue = self.queue(work);
        Ok(Box::new(QueueSubscription {
            committer: self.committer.clone(),
            arrivals: queue.arrivals.subscribe(),
            queue,
            permits: Arc::new(Semaphore::new(usize::from(prefetch.max(1)))),
        }))
    }

    async fn consume_dead_letters(
        &self,
        work: WorkQueue,
        prefetch: u16,
    ) -> Result<Box<dyn Subscription>, BusError> {
        let queue = self.queue(work);
        let dead = queue.dead.clone().unwrap_or(queue);
        Ok(Box::new(QueueSubscription {
            committer: self.committer.clone(),
            arrivals: dead.arrivals.subscribe(),
            queue: dead,
            permits: Arc::new(Semaphore::new(usize::from(prefetch.max(1)))),
        }))
    }

    async fn broadcast(&self, patterns: &[&str]) -> Result<Box<dyn Subscription>, BusError> {
        Ok(Box::new(BroadcastSubscription {
            events: self.events.subscribe(),
            patterns: patterns.iter().map(|p| (*p).to_owned()).collect(),
        }))
    }

    async fn is_ready(&self) -> bool {
        true
    }

    async fn forget_expired_dead_letters(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<u32, BusError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_write().map_err(unavailable)?;
            let mut forgotten = 0;
            {
                let mut index = txn
                    .open_table(DEAD_LETTERS_BY_EXPIRY)
                    .map_err(unavailable)?;
                let due = index
                    .range(..(epoch_millis(now), 0))
                    .map_err(unavailable)?
                    .take(limit as usize)
                    .map(|entry| entry.map(|(k, v)| (k.value(), v.value().to_owned())))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(unavailable)?;
                for (key, name) in due {
                    index.remove(key).map_err(unavailable)?;
                    // A dead letter replayed since is simply no longer there.
                    let Some(work) = WorkQueue::ALL
                        .into_iter()
                        .find(|w| w.dead_letter_queue() == name)
                    else {
                        continue;
                    };
                    let mut dead = txn
                        .open_table(Def::new(work.dead_letter_queue()))
                        .map_err(unavailable)?;
                    if dead.remove(key.1).map_err(unavailable)?.is_some() {
                        forgotten += 1;
                    }
                }
            }
            txn.commit().map_err(unavailable)?;
            Ok(forgotten)
        })
        .await
        .map_err(unavailable)?
    }
}

struct QueueSubscription {
    committer: Committer,
    queue: Arc<Queue>,
    arrivals: watch::Receiver<u64>,
    /// One per unsettled delivery: the prefetch limit.
    permits: Arc<Semaphore>,
}

/// Leases the oldest message nobody holds, counting the delivery, in a
/// write shared with whatever else is being committed.
///
/// The lease is taken in the queue's `leased` set inside the write, so that
/// another lease in the same commit passes it over. A write that runs again
/// (its batch failed) first gives back what its earlier run took, and a
/// lease whose commit failed is given back here: nothing stays leased that
/// nobody was handed.
async fn lease_next(
    committer: &Committer,
    queue: &Arc<Queue>,
) -> Result<Option<(u64, Message, u32)>, BusError> {
    let taken: Arc<Mutex<Option<u64>>> = Arc::default();
    let (queue_in, taken_in) = (queue.clone(), taken.clone());
    let leased = committer
        .write_lazily(move |txn| {
            let mut leased = queue_in.leased();
            let mut mine = taken_in.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(earlier) = mine.take() {
                leased.remove(&earlier);
            }
            let mut table = txn.open_table(queue_in.table).map_err(unavailable)?;
            let mut found = None;
            for entry in table.iter().map_err(unavailable)? {
                let (seq, value) = entry.map_err(unavailable)?;
                if !leased.contains(&seq.value()) {
                    let value = value.value();
                    found = Some((seq.value(), message_of(value), value.0));
                    break;
                }
            }
            if let Some((seq, message, previous)) = &found {
                let stored = (
                    previous + 1,
                    message.routing_key.as_str(),
                    message.message_id.as_str(),
                    message.traceparent.as_deref().unwrap_or(""),
                    message.body.as_slice(),
                );
                table.insert(*seq, stored).map_err(unavailable)?;
                leased.insert(*seq);
                *mine = Some(*seq);
            }
            Ok(found)
        })
        .await;
    let outcome = leased.map_err(unavailable).and_then(|found| found);
    if outcome.is_err()
        && let Some(seq) = taken.lock().unwrap_or_else(|p| p.into_inner()).take()
    {
        queue.leased().remove(&seq);
    }
    outcome
}

#[async_trait]
impl Subscription for QueueSubscription {
    async fn next(&mut self) -> Option<Delivery> {
        let permit = self.permits.clone().acquire_owned().await.ok()?;
        loop {
            self.arrivals.borrow_and_update();
            match lease_next(&self.committer, &self.queue).await {
                Ok(Some((seq, message, previous))) => {
                    let acker = QueueAcker {
                        committer: self.committer.clone(),
                        queue: self.queue.clone(),
                        seq,
                        settled: AtomicBool::new(false),
                        _permit: permit,
                    };
                    return Some(Delivery::new(message, previous, Box::new(acker)));
                }
                Ok(None) => {
                    if self.arrivals.changed().await.is_err() {
                        return None;
                    }
                }
                Err(err) => {
                    tracing::error!(error = %err, "embedded queue failed; ending subscription");
                    return None;
                }
            }
        }
    }

    async fn stop(&mut self) {
        self.permits.close();
    }

    /// Unsettled deliveries keep their leases until their ackers settle or
    /// drop: nothing to do here.
    async fn close(self: Box<Self>) {}
}

struct QueueAcker {
    committer: Committer,
    queue: Arc<Queue>,
    seq: u64,
    settled: AtomicBool,
    _permit: OwnedSemaphorePermit,
}

impl QueueAcker {
    /// Removes the message from its queue, into the dead-letter table if asked.
    async fn remove(&self, to_dead_letters: bool) -> Result<(), BusError> {
        let (queue, seq) = (self.queue.clone(), self.seq);
        self.committer
            .write_lazily(move |txn| {
                let mut table = txn.open_table(queue.table).map_err(unavailable)?;
                let removed = table.remove(seq).map_err(unavailable)?;
                if let (true, Some(value), Some(dead)) = (to_dead_letters, removed, &queue.dead) {
                    let mut table = txn.open_table(dead.table).map_err(unavailable)?;
                    table.insert(seq, value.value()).map_err(unavailable)?;
                    let forget = epoch_millis(Timestamp::now() + DEAD_LETTER_RETENTION);
                    txn.open_table(DEAD_LETTERS_BY_EXPIRY)
                        .map_err(unavailable)?
                        .insert((forget, seq), dead.work.dead_letter_queue())
                        .map_err(unavailable)?;
                }
                Ok(())
            })
            .await
            .map_err(unavailable)??;
        // Only now: a lease taken meanwhile must not find the message free.
        self.queue.leased().remove(&seq);
        Ok(())
    }

    fn release(&self) {
        self.queue.leased().remove(&self.seq);
        self.queue.wake();
    }
}

#[async_trait]
impl Acker for QueueAcker {
    async fn ack(&self) -> Result<(), BusError> {
        self.settled.store(true, Ordering::SeqCst);
        self.remove(false).await
    }

    async fn reject(&self, requeue: bool) -> Result<(), BusError> {
        self.settled.store(true, Ordering::SeqCst);
        if requeue {
            self.release();
            Ok(())
        } else {
            self.remove(true).await
        }
    }
}

impl Drop for QueueAcker {
    /// A delivery dropped unsettled (its handler went away) goes back to the
    /// queue, as it would when a RabbitMQ channel closes.
    fn drop(&mut self) {
        if !self.settled.load(Ordering::SeqCst) {
            self.release();
        }
    }
}

struct BroadcastSubscription {
    events: broadcast::Receiver<Arc<Message>>,
    patterns: Vec<String>,
}

struct Settled;

#[async_trait]
impl Acker for Settled {
    async fn ack(&self) -> Result<(), BusError> {
        Ok(())
    }

    async fn reject(&self, _requeue: bool) -> Result<(), BusError> {
        Ok(())
    }
}

#[async_trait]
impl Subscription for BroadcastSubscription {
    async fn next(&mut self) -> Option<Delivery> {
        loop {
            match self.events.recv().await {
                Ok(message)
                    if self
                        .patterns
                        .iter()
                        .any(|p| topology::matches(p, &message.routing_key)) =>
                {
                    return Some(Delivery::new((*message).clone(), 0, Box::new(Settled)));
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "a broadcast subscriber fell behind");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    async fn stop(&mut self) {}

    async fn close(self: Box<Self>) {}
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_dead_letter_is_kept_for_its_retention_then_forgotten() {
        let dir = std::env::temp_dir().join(format!(
            "eventsys-bus-{}-{}",
            std::process::id(),
            epoch_millis(Timestamp::now())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let bus = EmbeddedBus::open(&dir.join("queue.redb")).unwrap();
        let message = Message {
            routing_key: "order.place".into(),
            message_id: "m1".into(),
            body: b"{}".to_vec(),
            traceparent: None,
        };
        bus.publish(Exchange::Commands, &message).await.unwrap();
        let mut work = bus.consume(WorkQueue::Ticketing, 1).await.unwrap();
        work.next().await.unwrap().dead_letter().await.unwrap();
        let now = Timestamp::now();
        let soon = now + Duration::from_secs(3600);
        assert_eq!(bus.forget_expired_dead_letters(soon, 100).await.unwrap(), 0);
        let later = now + DEAD_LETTER_RETENTION + Duration::from_secs(60);
        assert_eq!(
            bus.forget_expired_dead_letters(later, 100).await.unwrap(),
            1
        );
        assert_eq!(
            bus.forget_expired_dead_letters(later, 100).await.unwrap(),
            0
        );
        let mut dead = bus
            .consume_dead_letters(WorkQueue::Ticketing, 1)
            .await
            .unwrap();
        let left = tokio::time::timeout(Duration::from_millis(300), dead.next()).await;
        assert!(left.is_err(), "nothing is left");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
