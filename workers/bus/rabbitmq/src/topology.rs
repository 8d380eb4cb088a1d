//! Declares the contract's topology: two topic exchanges, a dead-letter
//! exchange, and per role a quorum work queue with its dead-letter queue.

use eventsys_messages::{
    WorkQueue,
    topology::{COMMANDS_EXCHANGE, DEAD_LETTER_EXCHANGE, DELIVERY_LIMIT, EVENTS_EXCHANGE},
};
use lapin::{
    Channel, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, LongString},
};

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

pub(super) async fn declare(channel: &Channel) -> lapin::Result<()> {
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
