//! A group of orders for one event in one transaction: the DynamoDB side
//! of the workers' group commit.
//!
//! A group is written together when its first orders fit, as observed, in
//! the event's fullest shard: one check that the event is on sale, one that
//! nobody waits, one change of that shard's counters for all of them
//! (conditioned on the shard still holding every seat it gives), and each
//! order with its tickets and its command's completion. That keeps the
//! sharding argument of [`crate::shards`] whole: a shard only ever gives
//! seats it has, all at once or not at all.
//!
//! Everything else is placed one by one, in order, by
//! [`OrderStore::place_order`](eventsys_store::OrderStore::place_order):
//! the orders after the first that does not fit (so that the earlier orders
//! get the last seats), and the whole group when the transaction's
//! conditions fail (the counters moved, a command had finished before, an
//! order id was taken) or its answer was lost (then each order finds out on
//! its own whether it was written).
//!
//! An order that the seats left as observed cannot serve, not even all
//! shards together, is sold out without trying: seats only come back by
//! cancellations and expiries, so the refusal holds as of the moment of the
//! read, which came after the order. Two batch reads (of those orders'
//! commands and of orders under their ids) keep the answers `place_order`
//! would give first: `Already` for a command that had finished, `Duplicate`
//! for an id already taken by an active order. In a sell-out that spares
//! each of the many late orders a failing transaction and two reads.

use std::collections::{BTreeMap, HashSet};

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use eventsys_messages::{CommandId, EventId, EventStatus, OrderId, TicketTypeId};
use eventsys_store::{
    Inventory, PlaceOutcome, StoreError,
    records::{CommandRecord, Completion, OrderRecord, OrderStatus, Placement},
};

use super::{Expr, order_item, ticket_item};
use crate::{
    Built, DynamoStore, TxFailure,
    codec::{Item, from_item, s},
    shards::{HELD_ATTR, Shard, held_attr, remaining_attr, shard_key},
};

/// DynamoDB's limit of items in one transaction.
const MOST_ITEMS: usize = 100;
/// The items a group writes besides its orders: the on-sale check, the
/// waiting-list check and the shard's counters.
const GROUP_ITEMS: usize = 3;

/// Seats a group takes of one ticket type: all of them, and those of them
/// only held (orders waiting for payment).
#[derive(Default)]
struct Taken {
    seats: u32,
    held: u32,
}

/// What writing a group's head found.
pub(super) struct Together {
    /// How many of the group's first orders were placed.
    pub placed: usize,
    /// The seats left after them, as observed, if the event was on sale:
    /// no more than there are.
    pub left: Option<Inventory>,
}

impl DynamoStore {
    /// Writes the longest head of `group` that fits in one shard as one
    /// transaction (a head of one is left to the caller).
    pub(super) async fn place_together(
        &self,
        group: &[(Placement, Completion)],
    ) -> Result<Together, StoreError> {
        let nothing = Together {
            placed: 0,
            left: None,
        };
        let Some((first, _)) = group.first() else {
            return Ok(nothing);
        };
        let event_id = first.order.event_id;
        let Some((event, count)) = self.event_with_shards(event_id).await? else {
            return Ok(nothing);
        };
        let shards = self.shards(event_id, count).await?;
        let on_sale = event.spec.status == EventStatus::Published;
        let mut left = on_sale.then(|| Inventory::sum(shards.iter().map(|s| &s.counters)));
        let Some(shard) = shards.iter().max_by_key(|s| s.counters.remaining) else {
            return Ok(nothing);
        };
        let (head, taken) = fitting_head(group, shard, event_id);
        if head < 2 {
            return Ok(Together { placed: 0, left });
        }
        let mut items = vec![
            self.on_sale(event_id)?,
            self.nobody_waits(event_id)?,
            self.take_from_shard(event_id, shard.index, &taken)?,
        ];
        for (placement, done) in &group[..head] {
            items.push(self.put_order(order_item(&placement.order, shard.index)?)?);
            for ticket in &placement.tickets {
                items.push(self.put(&self.tables.tickets, ticket_item(ticket)?, "ticket_id")?);
            }
            items.push(self.completion(done)?);
        }
        match self.transact(items).await {
            Ok(()) => {
                if let Some(left) = &mut left {
                    for (placement, _) in &group[..head] {
                        let order = &placement.order;
                        let held = order.status == OrderStatus::PendingPayment;
                        left.take(order.ticket_type_id, order.quantity, held);
                    }
                }
                Ok(Together { placed: head, left })
            }
            Err(TxFailure::Conditions(_)) => Ok(Together { placed: 0, left }),
            Err(TxFailure::Store(err)) => {
                // It may have been written after all: count its seats as
                // still there, which only ever sends more orders the long way.
                tracing::warn!(%event_id, error = %err, "a group's write failed; placing its orders one by one");
                Ok(Together { placed: 0, left })
            }
        }
    }

    /// What `place_order` would answer each of `orders`, which the seats
    /// left cannot serve: `Already`, `Duplicate` or `SoldOut`.
    pub(super) async fn refusals_of(
        &self,
        orders: &[&(Placement, Completion)],
    ) -> Result<Vec<PlaceOutcome>, StoreError> {
        let key = |attr: &str, id: String| Item::from([(attr.to_owned(), s(id))]);
        let commands = orders
            .iter()
            .map(|(_, done)| key("command_id", done.command_id.to_string()))
            .collect();
        let finished: HashSet<CommandId> = self
            .batch_get(&self.tables.commands, commands)
            .await?
            .into_iter()
            .map(from_item::<CommandRecord>)
            .filter_map(Result::ok)
            .filter(|c| c.status.is_terminal())
            .map(|c| c.command_id)
            .collect();
        let ids = orders
            .iter()
            .map(|(p, _)| key("order_id", p.order.order_id.to_string()))
            .collect();
        let taken: HashSet<OrderId> = self
            .batch_get(&self.tables.orders, ids)
            .await?
            .into_iter()
            .map(from_item::<OrderRecord>)
            .filter_map(Result::ok)
            .filter(|o| o.status.is_active())
            .map(|o| o.order_id)
            .collect();
        Ok(orders
            .iter()
            .map(|(placement, done)| {
                if finished.contains(&done.command_id) {
                    PlaceOutcome::Already
                } else if taken.contains(&placement.order.order_id) {
                    PlaceOutcome::Duplicate
                } else {
                    PlaceOutcome::SoldOut
                }
            })
            .collect())
    }

    /// Writes the refusals of `group` in one transaction; `false` if any
    /// condition failed (a command had finished before) and nothing was
    /// written.
    pub(super) async fn reject_together(
        &self,
        group: &[(OrderRecord, Completion)],
    ) -> Result<bool, StoreError> {
        let mut items = Vec::with_capacity(2 * group.len());
        for (order, done) in group {
            items.extend(self.refusal(order, done)?);
        }
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(TxFailure::Conditions(_)) => Ok(false),
            Err(TxFailure::Store(err)) => Err(err),
        }
    }

    /// Takes `taken` from one shard, on condition that it has every seat.
    fn take_from_shard(
        &self,
        event_id: EventId,
        shard: u16,
        taken: &BTreeMap<TicketTypeId, Taken>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut e = Expr::default();
        let (seats, held): (u32, u32) = taken
            .values()
            .fold((0, 0), |(s, h), t| (s + t.seats, h + t.held));
        let rem = e.name("remaining");
        let all = e.value(seats);
        let mut set = vec![format!("{rem} = {rem} - {all}")];
        let mut condition = vec![format!("{rem} >= {all}")];
        let mut add = Vec::new();
        if held > 0 {
            let (name, value) = (e.name(HELD_ATTR), e.value(held));
            add.push(format!("{name} {value}"));
        }
        for (ticket_type, t) in taken {
            let (name, value) = (e.name(&remaining_attr(*ticket_type)), e.value(t.seats));
            set.push(format!("{name} = {name} - {value}"));
            condition.push(format!("{name} >= {value}"));
            if t.held > 0 {
                let (name, value) = (e.name(&held_attr(*ticket_type)), e.value(t.held));
                add.push(format!("{name} {value}"));
            }
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !add.is_empty() {
            expression.push_str(&format!(" ADD {}", add.join(", ")));
        }
        let update = Update::builder()
            .table_name(&self.tables.inventory)
            .set_key(Some(shard_key(event_id, shard)))
            .update_expression(expression)
            .condition_expression(condition.join(" AND "))
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values(Some(e.values))
            .build()
            .built()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

/// How many of `group`'s first orders `shard` serves, as observed, within
/// one transaction's items, and the seats they take by type.
fn fitting_head(
    group: &[(Placement, Completion)],
    shard: &Shard,
    event_id: EventId,
) -> (usize, BTreeMap<TicketTypeId, Taken>) {
    let mut left = shard.counters.clone();
    let mut taken: BTreeMap<TicketTypeId, Taken> = BTreeMap::new();
    let mut items = GROUP_ITEMS;
    let mut head = 0;
    for (placement, _) in group {
        let order = &placement.order;
        // An order and its completion, and its tickets.
        let needs = 2 + placement.tickets.len();
        let held = order.status == OrderStatus::PendingPayment;
        if order.event_id != event_id
            || items + needs > MOST_ITEMS
            || !left.take(order.ticket_type_id, order.quantity, held)
        {
            break;
        }
        items += needs;
        let t = taken.entry(order.ticket_type_id).or_default();
        t.seats += order.quantity;
        if held {
            t.held += order.quantity;
        }
        head += 1;
    }
    (head, taken)
}
