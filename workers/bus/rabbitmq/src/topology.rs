//! Declares the contract's topology: two topic exchanges, a dead-letter
//! exchange, and per role a quorum work queue with its dead-letter queue.
//! A login with only its own rights (see `Principal`) may not declare it:
//! then it checks that `eventsys init` did, without changing anything.

use eventsys_messages::{
    WorkQueue,
    topology::{COMMANDS_EXCHANGE, DEAD_LETTER_EXCHANGE, DELIVERY_LIMIT, EVENTS_EXCHANGE},
};
use lapin::{
    Channel, Connection, ErrorKind, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    protocol::{AMQPErrorKind, AMQPSoftError},
    types::{AMQPValue, FieldTable, LongString},
};

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

/// Declares the topology, or, where this login may not, checks that it is
/// in place.
pub(super) async fn declare(connection: &Connection) -> lapin::Result<()> {
    let channel = connection.create_channel().await?;
    match declare_all(&channel).await {
        Ok(()) => channel.close(200, "topology declared".into()).await,
        Err(err) if is_access_refused(&err) => {
            // The broker closed that channel; look on a fresh one.
            let channel = connection.create_channel().await?;
            check_all(&channel).await?;
            channel.close(200, "topology checked".into()).await
        }
        Err(err) => Err(err),
    }
}

fn is_access_refused(err: &lapin::Error) -> bool {
    matches!(err.kind(), ErrorKind::ProtocolError(e)
        if matches!(e.kind(), AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED)))
}

/// Passive declarations: they need no rights, and fail if anything is missing.
async fn check_all(channel: &Channel) -> lapin::Result<()> {
    let exchange = ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    for name in [COMMANDS_EXCHANGE, EVENTS_EXCHANGE, DEAD_LETTER_EXCHANGE] {
        channel
            .exchange_declare(
                name.into(),
                ExchangeKind::Topic,
                exchange,
                FieldTable::default(),
            )
            .await?;
    }
    let queue = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    for work in WorkQueue::ALL {
        for name in [work.name(), work.dead_letter_queue()] {
            channel
                .queue_declare(name.into(), queue, FieldTable::default())
                .await?;
        }
    }
    Ok(())
}

async fn declare_all(channel: &Channel) -> lapin::Result<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    for exchange in [COMMANDS_EXCHANGE, EVENTS_EXCHANGE] {
        channel
            .exchange_declare(
                exchange.into(),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await?;
    }
    channel
        .exchange_declare(
            DEAD_LETTER_EXCHANGE.into(),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        )
        .await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    for queue in WorkQueue::ALL {
        // Quorum queues: replicated, and they count deliveries per message.
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), text("quorum"));
        channel
            .queue_declare(queue.dead_letter_queue().into(), durable, args.clone())
            .await?;
        channel
            .queue_bind(
                queue.dead_letter_queue().into(),
                DEAD_LETTER_EXCHANGE.into(),
                queue.name().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        args.insert("x-dead-letter-exchange".into(), text(DEAD_LETTER_EXCHANGE));
        args.insert("x-dead-letter-routing-key".into(), text(queue.name()));
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongUInt(DELIVERY_LIMIT),
        );
        channel
            .queue_declare(queue.name().into(), durable, args)
            .await?;
        let bindings = queue
            .command_patterns()
            .iter()
            .map(|p| (COMMANDS_EXCHANGE, *p))
            .chain(queue.event_patterns().iter().map(|p| (EVENTS_EXCHANGE, *p)));
        for (exchange, pattern) in bindings {
            channel
                .queue_bind(
                    queue.name().into(),
                    exchange.into(),
                    pattern.into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
    }
    Ok(())
}
