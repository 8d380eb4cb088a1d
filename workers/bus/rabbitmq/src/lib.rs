//! The RabbitMQ adapter (AMQP 0-9-1 through lapin).
//!
//! One connection per process, one confirm-mode channel for publishing,
//! one channel per subscription. A broken connection is replaced on next
//! use; every new connection declares the whole topology first (or, on a
//! login that may not, checks it is there), so a process with the rights
//! never depends on someone else having run `eventsys init`.
//! Facts published to `eventsys.events` are sealed ([`EventSeal`]); one
//! that arrives unsealed is dropped.

mod seal;
mod topology;

pub use seal::EventSeal;

use std::sync::Arc;

use async_trait::async_trait;
use eventsys_messages::{WorkQueue, topology::EVENTS_EXCHANGE};
use eventsys_telemetry::metrics;
use futures::StreamExt;
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer,
    options::{
        BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
        BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, QueueBindOptions,
        QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable, LongString, ShortString},
};
use tokio::sync::{Mutex, Semaphore};

use eventsys_bus::{Acker, Bus, BusError, Delivery, Exchange, Message, Subscription};

/// Publishes awaiting their confirm at once, per process. Enough to keep
/// the channel busy; small enough that a stalled broker pushes back quickly.
const CONFIRM_WINDOW: usize = 512;
/// How long (re)connecting, declaring the topology included, may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long a publish may wait for the broker's confirm.
const CONFIRM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub struct RabbitBus {
    url: String,
    name: String,
    /// Without it, this process neither publishes nor receives facts.
    seal: Option<Arc<EventSeal>>,
    link: Mutex<Option<Arc<Link>>>,
    window: Semaphore,
}

struct Link {
    connection: Connection,
    publisher: Channel,
}

impl Link {
    async fn open(url: &str, name: &str) -> lapin::Result<Self> {
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        let connection = Connection::connect(url, properties).await?;
        topology::declare(&connection).await?;
        let publisher = connection.create_channel().await?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self {
            connection,
            publisher,
        })
    }

    fn is_usable(&self) -> bool {
        self.connection.status().connected() && self.publisher.status().connected()
    }
}

/// Text that is not an AMQP URL.
#[derive(Debug, thiserror::Error)]
#[error("not an AMQP URL: {0}")]
pub struct BadUrl(String);

/// The vhost `url` names, decoded as the broker reads it (`%2f` is `/`).
pub fn vhost(url: &str) -> Result<String, BadUrl> {
    url.parse::<lapin::uri::AMQPUri>()
        .map(|uri| uri.vhost)
        .map_err(BadUrl)
}

fn unavailable(err: lapin::Error) -> BusError {
    BusError::unavailable_because("RabbitMQ failed", err)
}

impl RabbitBus {
    /// Connects (and declares the topology); `name` shows in the broker's
    /// connection list. Facts are published and received under `seal`.
    pub async fn connect(url: &str, name: &str, seal: Option<EventSeal>) -> Result<Self, BusError> {
        let bus = Self {
            url: url.to_owned(),
            name: name.to_owned(),
            seal: seal.map(Arc::new),
            link: Mutex::new(None),
            window: Semaphore::new(CONFIRM_WINDOW),
        };
        bus.link().await?;
        Ok(bus)
    }

    /// Drops `link` if it is still the current one, so that the next call
    /// connects afresh.
    async fn forget(&self, link: &Arc<Link>) {
        let mut current = self.link.lock().await;
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, link)) {
            *current = None;
        }
    }

    /// A new channel on the current link (connecting first if needed).
    async fn channel(&self) -> Result<Channel, BusError> {
        let link = self.link().await?;
        link.connection.create_channel().await.map_err(unavailable)
    }

    /// A competing consumer of the queue named `queue`, with manual acks.
    async fn consume_queue(
        &self,
        queue: &str,
        prefetch: u16,
    ) -> Result<Box<dyn Subscription>, BusError> {
        let channel = self.channel().await?;
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await
            .map_err(unavailable)?;
        subscribe(channel, queue.into(), true, self.seal.clone()).await
    }

    /// Publishes `message` and waits for the broker to confirm it.
    async fn send(&self, exchange: Exchange, message: &Message) -> Result<(), BusError> {
        let _slot = self
            .window
            .acquire()
            .await
            .map_err(|_| BusError::unavailable("publisher closed"))?;
        let seal = match (exchange, &self.seal) {
            (Exchange::Events, Some(seal)) => Some(seal.seal(message)),
            (Exchange::Events, None) => {
                return Err(BusError::unavailable(
                    "facts are published sealed, and this process has no seal",
                ));
            }
            _ => None,
        };
        let link = self.link().await?;
        let confirmed = async {
            let confirm = link
                .publisher
                .basic_publish(
                    exchange.name().into(),
                    message.routing_key.as_str().into(),
                    // A command no queue would take comes back instead of being
                    // confirmed and silently dropped. Events are facts: whether
                    // anybody listens is not the publisher's concern.
                    BasicPublishOptions {
                        mandatory: exchange == Exchange::Commands,
                        ..Default::default()
                    },
                    &message.body,
                    properties(message, seal),
                )
                .await?;
            confirm.await
        };
        let confirmation = match tokio::time::timeout(CONFIRM_TIMEOUT, confirmed).await {
            Ok(Ok(confirmation)) => confirmation,
            Ok(Err(err)) => {
                self.forget(&link).await;
                return Err(unavailable(err));
            }
            Err(_) => {
                // A broker that stopped answering: start afresh next time.
                self.forget(&link).await;
                return Err(BusError::unavailable("no publisher confirm in time"));
            }
        };
        match confirmation {
            Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
            Confirmation::Ack(Some(_)) => Err(BusError::Unroutable(message.routing_key.clone())),
            Confirmation::Nack(_) => Err(BusError::Refused),
        }
    }

    async fn link(&self) -> Result<Arc<Link>, BusError> {
        let mut current = self.link.lock().await;
        if let Some(link) = current.as_ref().filter(|l| l.is_usable()) {
            return Ok(link.clone());
        }
        // A broker that accepts connections but never answers must not hang
        // every caller behind this lock.
        let opened = tokio::time::timeout(CONNECT_TIMEOUT, Link::open(&self.url, &self.name))
            .await
            .map_err(|_| BusError::unavailable("connecting to RabbitMQ timed out"))?;
        let link = Arc::new(opened.map_err(unavailable)?);
        tracing::info!(connection = %self.name, "connected to RabbitMQ");
        *current = Some(link.clone());
        Ok(link)
    }
}

fn properties(message: &Message, seal: Option<String>) -> BasicProperties {
    let mut headers = FieldTable::default();
    if let Some(seal) = seal {
        headers.insert(seal::HEADER.into(), AMQPValue::LongString(seal.into()));
    }
    if let Some(traceparent) = &message.traceparent {
        headers.insert(
            "traceparent".into(),
            AMQPValue::LongString(LongString::from(traceparent.as_str())),
        );
    }
    BasicProperties::default()
        .with_delivery_mode(2) // persistent
        .with_content_type("application/json".into())
        .with_message_id(message.message_id.as_str().into())
        .with_type(message.routing_key.as_str().into())
        .with_headers(headers)
}

#[async_trait]
impl Bus for RabbitBus {
    async fn declare_topology(&self) -> Result<(), BusError> {
        // Every new link declares the topology; make sure there is one.
        self.link().await.map(|_| ())
    }

    async fn publish(&self, exchange: Exchange, message: &Message) -> Result<(), BusError> {
        let started = std::time::Instant::now();
        let published = self.send(exchange, message).await;
        match &published {
            Ok(()) => metrics::broker_published(exchange.name(), started.elapsed()),
            Err(_) => metrics::broker_error("publish"),
        }
        published
    }

    async fn consume(
        &self,
        queue: WorkQueue,
        prefetch: u16,
    ) -> Result<Box<dyn Subscription>, BusError> {
        self.consume_queue(queue.name(), prefetch).await
    }

    async fn consume_dead_letters(
        &self,
        queue: WorkQueue,
        prefetch: u16,
    ) -> Result<Box<dyn Subscription>, BusError> {
        self.consume_queue(queue.dead_letter_queue(), prefetch)
            .await
    }

    async fn broadcast(&self, patterns: &[&str]) -> Result<Box<dyn Subscription>, BusError> {
        let channel = self.channel().await?;
        // Server-named, exclusive, auto-delete: this replica's alone, gone with it.
        let queue = channel
            .queue_declare(
                ShortString::from(""),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        for pattern in patterns {
            channel
                .queue_bind(
                    queue.name().clone(),
                    EVENTS_EXCHANGE.into(),
                    (*pattern).into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(unavailable)?;
        }
        // Live updates are worth nothing once stale: no acks, no redelivery.
        subscribe(channel, queue.name().clone(), false, self.seal.clone()).await
    }

    async fn is_ready(&self) -> bool {
        self.link().await.is_ok()
    }

    async fn depth(&self, queue: WorkQueue) -> Result<Option<u32>, BusError> {
        // Only over a link that is up: reporting never reconnects, and so
        // never queues up behind (or ahead of) the consumer doing so.
        let current = self.link.lock().await.clone();
        let Some(link) = current.filter(|l| l.is_usable()) else {
            return Ok(None);
        };
        // A channel of its own: a passive declaration of a missing queue
        // closes the channel it is made on.
        let channel = link
            .connection
            .create_channel()
            .await
            .map_err(unavailable)?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let declared = channel
            .queue_declare(queue.name().into(), passive, FieldTable::default())
            .await;
        let _ = channel.close(200, "depth read".into()).await;
        Ok(Some(declared.map_err(unavailable)?.message_count()))
    }

    async fn close(&self) {
        if let Some(link) = self.link.lock().await.take() {
            let _ = link.connection.close(200, "shutting down".into()).await;
        }
    }
}

/// Starts a consumer on `channel`; without `acks` the broker counts each
/// delivery settled as it sends it.
async fn subscribe(
    channel: Channel,
    queue: ShortString,
    acks: bool,
    seal: Option<Arc<EventSeal>>,
) -> Result<Box<dyn Subscription>, BusError> {
    let options = BasicConsumeOptions {
        no_ack: !acks,
        ..Default::default()
    };
    let consumer = channel
        .basic_consume(queue, ShortString::from(""), options, FieldTable::default())
        .await
        .map_err(unavailable)?;
    Ok(Box::new(RabbitSubscription {
        channel,
        consumer,
        acks,
        seal,
    }))
}

struct RabbitSubscription {
    channel: Channel,
    consumer: Consumer,
    /// False for `no_ack` consumers, whose deliveries must not be settled.
    acks: bool,
    seal: Option<Arc<EventSeal>>,
}

impl RabbitSubscription {
    /// Whether `message` carries a seal of ours.
    fn is_sealed(&self, message: &Message, seal: Option<&str>) -> bool {
        match (&self.seal, seal) {
            (Some(key), Some(seal)) => key.verify(message, seal),
            _ => false,
        }
    }
}

#[async_trait]
impl Subscription for RabbitSubscription {
    async fn next(&mut self) -> Option<Delivery> {
        loop {
            let delivery = match self.consumer.next().await? {
                Ok(delivery) => delivery,
                Err(err) => {
                    tracing::warn!(error = %err, "subscription ended");
                    return None;
                }
            };
            let fact = delivery.exchange.as_str() == EVENTS_EXCHANGE;
            let seal = text_header(&delivery, seal::HEADER);
            let delivery = into_delivery(delivery, self.acks);
            if fact && !self.is_sealed(&delivery.message, seal.as_deref()) {
                tracing::warn!(
                    message_id = %delivery.message.message_id,
                    routing_key = %delivery.message.routing_key,
                    "dropped a fact without a valid seal"
                );
                // A forgery is not worth keeping, nor replaying: gone.
                let _ = delivery.ack().await;
                continue;
            }
            return Some(delivery);
        }
    }

    async fn stop(&mut self) {
        let _ = self
            .channel
            .basic_cancel(self.consumer.tag(), BasicCancelOptions::default())
            .await;
    }

    async fn close(self: Box<Self>) {
        // Cancelled first (by `stop`): closing a quorum-queue channel right
        // after acking can otherwise hand a few acked messages out again.
        let _ = self.channel.close(200, "done".into()).await;
    }
}

/// A header's text, if the delivery carries it as text.
fn text_header(delivery: &lapin::message::Delivery, name: &str) -> Option<String> {
    match delivery.properties.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongString(v) => Some(v.to_string()),
        _ => None,
    }
}

fn into_delivery(delivery: lapin::message::Delivery, acks: bool) -> Delivery {
    let traceparent = text_header(&delivery, "traceparent");
    let headers = delivery.properties.headers().as_ref();
    let header = |name: &str| headers.and_then(|h| h.inner().get(name));
    // Quorum queues count earlier deliveries; elsewhere we only know "again".
    let previous = match header("x-delivery-count") {
        Some(AMQPValue::LongLongInt(n)) => u32::try_from(*n).unwrap_or(u32::MAX),
        Some(AMQPValue::LongInt(n)) => u32::try_from(*n).unwrap_or(u32::MAX),
        Some(AMQPValue::LongUInt(n)) => *n,
        _ => u32::from(delivery.redelivered),
    };
    let message = Message {
        routing_key: delivery.routing_key.to_string(),
        message_id: delivery
            .properties
            .message_id()
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        body: delivery.data,
        traceparent,
    };
    let acker: Box<dyn Acker> = if acks {
        Box::new(RabbitAcker(delivery.acker))
    } else {
        Box::new(AutoAcked)
    };
    Delivery::new(message, previous, acker)
}

/// Settles nothing: the broker considered the delivery settled on sending.
struct AutoAcked;

#[async_trait]
impl Acker for AutoAcked {
    async fn ack(&self) -> Result<(), BusError> {
        Ok(())
    }

    async fn reject(&self, _requeue: bool) -> Result<(), BusError> {
        Ok(())
    }
}

struct RabbitAcker(lapin::Acker);

#[async_trait]
impl Acker for RabbitAcker {
    async fn ack(&self) -> Result<(), BusError> {
        self.0
            .ack(BasicAckOptions::default())
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn reject(&self, requeue: bool) -> Result<(), BusError> {
        self.0
            .nack(BasicNackOptions {
                requeue,
                multiple: false,
            })
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vhost_is_read_from_the_url() {
        assert_eq!(vhost("amqp://u:p@h:5672/%2f").unwrap(), "/");
        assert_eq!(vhost("amqp://u:p@h:5672").unwrap(), "/");
        assert_eq!(vhost("amqp://h/sales%20eu").unwrap(), "sales eu");
    }
}
