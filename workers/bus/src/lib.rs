//! The message bus port of eventsys and its adapters.
//!
//! The port is what the API and the workers need from a broker, no more:
//! publish with a confirm, consume a work queue with manual acks (ack,
//! dead-letter, or hand back), and a per-replica fan-out of events. Delivery
//! is at least once; exactly-once effects are the store's business.
//!
//! This crate is the port alone; each adapter is a crate of its own beside
//! it (`eventsys-bus-rabbitmq`, `eventsys-bus-embedded`, a durable
//! in-process queue), so that nothing that uses the port compiles a broker
//! client.

use async_trait::async_trait;
use eventsys_messages::{
    CommandEnvelope, EventEnvelope, WorkQueue,
    topology::{COMMANDS_EXCHANGE, EVENTS_EXCHANGE},
};

/// The underlying error of an adapter (client library, database).
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The broker cannot be reached or dropped the connection.
    #[error("broker unavailable: {context}")]
    Unavailable {
        context: String,
        #[source]
        source: Option<Cause>,
    },
    /// No queue is bound for this routing key: the topology is missing.
    #[error("no queue takes messages routed `{0}` (run `eventsys init`)")]
    Unroutable(String),
    /// The broker refused to take responsibility for the message.
    #[error("broker refused the message")]
    Refused,
}

impl BusError {
    pub fn unavailable(context: impl Into<String>) -> Self {
        Self::Unavailable {
            context: context.into(),
            source: None,
        }
    }

    /// The broker is unavailable because of `cause`.
    pub fn unavailable_because(context: impl Into<String>, cause: impl Into<Cause>) -> Self {
        Self::Unavailable {
            context: context.into(),
            source: Some(cause.into()),
        }
    }
}

/// The two exchanges of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exchange {
    Commands,
    Events,
}

impl Exchange {
    pub fn name(self) -> &'static str {
        match self {
            Self::Commands => COMMANDS_EXCHANGE,
            Self::Events => EVENTS_EXCHANGE,
        }
    }
}

/// A message as it travels: routing key, id, JSON body, trace context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub routing_key: String,
    pub message_id: String,
    pub body: Vec<u8>,
    /// W3C trace context, carried in the `traceparent` header.
    pub traceparent: Option<String>,
}

impl Message {
    pub fn command(envelope: &CommandEnvelope, traceparent: Option<String>) -> Self {
        Self {
            routing_key: envelope.action.kind().to_owned(),
            message_id: envelope.message_id.to_string(),
            body: envelope.to_json(),
            traceparent,
        }
    }

    pub fn event(envelope: &EventEnvelope, traceparent: Option<String>) -> Self {
        Self {
            routing_key: envelope.event.kind().to_owned(),
            message_id: envelope.message_id.to_string(),
            body: envelope.to_json(),
            traceparent,
        }
    }
}

/// How a consumer settles one delivery.
#[async_trait]
pub trait Acker: Send + Sync {
    async fn ack(&self) -> Result<(), BusError>;
    /// `requeue = false` sends the message to the dead-letter queue.
    async fn reject(&self, requeue: bool) -> Result<(), BusError>;
}

/// One message handed to a consumer, to be settled exactly once.
pub struct Delivery {
    pub message: Message,
    /// How many times the broker delivered this message before (0 the first time).
    pub previous_deliveries: u32,
    acker: Box<dyn Acker>,
}

impl Delivery {
    pub fn new(message: Message, previous_deliveries: u32, acker: Box<dyn Acker>) -> Self {
        Self {
            message,
            previous_deliveries,
            acker,
        }
    }

    /// Done: the broker forgets the message.
    pub async fn ack(self) -> Result<(), BusError> {
        self.acker.ack().await
    }

    /// Cannot be handled, now or ever: to the dead-letter queue.
    pub async fn dead_letter(self) -> Result<(), BusError> {
        self.acker.reject(false).await
    }

    /// Not now: back to the queue for another consumer or a later try.
    pub async fn hand_back(self) -> Result<(), BusError> {
        self.acker.reject(true).await
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("message", &self.message)
            .field("previous_deliveries", &self.previous_deliveries)
            .finish_non_exhaustive()
    }
}

/// A stream of deliveries from one queue.
#[async_trait]
pub trait Subscription: Send {
    /// The next delivery; `None` once the subscription has ended (the
    /// connection dropped, or it was cancelled).
    async fn next(&mut self) -> Option<Delivery>;

    /// Stops new deliveries; those already handed out can still be settled.
    async fn stop(&mut self);

    /// Lets go of the subscription; whatever is still unsettled returns to
    /// its queue. Call [`Self::stop`] first and settle what you can, so that
    /// nothing is handed out twice for no reason.
    async fn close(self: Box<Self>);
}

/// How long a dead letter is kept for inspection and replay.
pub const DEAD_LETTER_RETENTION: std::time::Duration =
    std::time::Duration::from_secs(14 * 24 * 3600);

#[async_trait]
pub trait Bus: Send + Sync {
    /// Creates exchanges, queues and bindings if they are missing.
    async fn declare_topology(&self) -> Result<(), BusError>;

    /// Publishes and returns once the broker has confirmed it holds the
    /// message (for durable queues: on disk).
    async fn publish(&self, exchange: Exchange, message: &Message) -> Result<(), BusError>;

    /// Competing consumer on a work queue; at most `prefetch` unsettled
    /// deliveries at a time.
    async fn consume(
        &self,
        queue: WorkQueue,
        prefetch: u16,
    ) -> Result<Box<dyn Subscription>, BusError>;

    /// A consumer of a work queue's dead letters, for inspection and replay.
    async fn consume_dead_letters(
        &self,
        queue: WorkQueue,
        prefetch: u16,
    ) -> Result<Box<dyn Subscription>, BusError>;

    /// This replica's own feed of the events matching `patterns`; it is not
    /// shared with any other replica and vanishes with it.
    async fn broadcast(&self, patterns: &[&str]) -> Result<Box<dyn Subscription>, BusError>;

    /// Whether the broker is reachable right now, for readiness probes.
    async fn is_ready(&self) -> bool;

    /// Messages ready in `queue`, where the adapter can tell.
    async fn depth(&self, _queue: WorkQueue) -> Result<Option<u32>, BusError> {
        Ok(None)
    }

    /// Forgets dead letters kept longer than [`DEAD_LETTER_RETENTION`] as of
    /// `now`, at most `limit`; returns how many went. A broker that expires
    /// them itself (RabbitMQ, under the policy `eventsys init` sets) has
    /// nothing to do.
    async fn forget_expired_dead_letters(
        &self,
        _now: eventsys_messages::Timestamp,
        _limit: u32,
    ) -> Result<u32, BusError> {
        Ok(0)
    }

    /// Lets go of the broker; unsettled deliveries return to their queues.
    async fn close(&self) {}
}
