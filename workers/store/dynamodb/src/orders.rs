//! Orders, tickets and check-ins on DynamoDB.

mod groups;

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem, Update};
use eventsys_messages::{EventId, EventStatus, OrderId, TicketId, TicketTypeId, Timestamp, UserId};

use crate::{
    Built, DynamoStore, TxFailure, classify,
    codec::{Item, from_item, n, number, s, to_item, to_value},
    limit::Limited,
    schema::{BY_EVENT_INDEX, BY_HOLDER_INDEX, HOLDS, WAITING_INDEX},
    shards::{
        CHECKED_IN_ATTR, Choice, HELD_ATTR, Shard, checked_in_attr, choose, held_attr, quota_attr,
        remaining_attr, shard_key,
    },
};
use eventsys_store::{
    StoreError,
    ports::{CheckInOutcome, Finished, Joined, OrderChange, OrderStore, PlaceOutcome},
    records::{
        Completion, OrderRecord, OrderStatus, Page, PageRequest, Placement, Scan, TicketRecord,
        TicketStatus, WaitEntry, WaitStatus,
    },
    sortable,
};

fn ticket_item(ticket: &TicketRecord) -> Result<Item, StoreError> {
    let mut item = to_item(ticket)?;
    item.insert(
        "holder_sort".into(),
        s(format!(
            "{}#{}",
            sortable(ticket.created_at),
            ticket.ticket_id
        )),
    );
    Ok(item)
}

/// Builds an update of named attributes with `#a0`, `:v0` placeholders.
#[derive(Default)]
struct Expr {
    names: HashMap<String, String>,
    values: Item,
}

impl Expr {
    fn name(&mut self, attr: &str) -> String {
        let key = format!("#a{}", self.names.len());
        self.names.insert(key.clone(), attr.to_owned());
        key
    }

    fn value(&mut self, value: u32) -> String {
        self.signed(i64::from(value))
    }

    fn signed(&mut self, value: i64) -> String {
        let key = format!(":v{}", self.values.len());
        self.values.insert(key.clone(), n(value));
        key
    }
}

impl DynamoStore {
    fn put(
        &self,
        table: &str,
        item: Item,
        key_attr: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(table)
                    .set_item(Some(item))
                    .condition_expression(format!("attribute_not_exists({key_attr})"))
                    .build()
                    .built()?,
            )
            .build())
    }

    /// Writes an order, unless an active one (held or confirmed) has its
    /// id: a registration may be placed again after it ended.
    fn put_order(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.tables.orders)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(order_id) OR NOT (#s IN (:pending, :confirmed))",
            )
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":pending", s(OrderStatus::PendingPayment.as_str()))
            .expression_attribute_values(":confirmed", s(OrderStatus::Confirmed.as_str()))
            .build()
            .built()?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The check that an order's event is on sale, inside its transaction.
    fn on_sale(&self, event_id: EventId) -> Result<TransactWriteItem, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.tables.events)
            .key("event_id", s(event_id.to_string()))
            .condition_expression("#s = :published")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":published", s(EventStatus::Published.as_str()))
            .build()
            .built()?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// A turned-down order and its command's completion, written together.
    fn refusal(
        &self,
        order: &OrderRecord,
        done: &Completion,
    ) -> Result<[TransactWriteItem; 2], StoreError> {
        Ok([self.put_order(to_item(order)?)?, self.completion(done)?])
    }

    /// Moves seats of one type within one shard: `to_sale` more (or fewer)
    /// for sale, `to_hold` more (or fewer) held. Taking seats from sale is
    /// conditioned on the shard having them.
    fn shift_seats(
        &self,
        event_id: EventId,
        shard: u16,
        ticket_type: TicketTypeId,
        to_sale: i64,
        to_hold: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut e = Expr::default();
        let mut update = Update::builder()
            .table_name(&self.tables.inventory)
            .set_key(Some(shard_key(event_id, shard)));
        let mut expression = String::new();
        if to_sale != 0 {
            let (rem, rem_tt) = (e.name("remaining"), e.name(&remaining_attr(ticket_type)));
            let delta = e.signed(to_sale);
            expression.push_str(&format!(
                "SET {rem} = {rem} + {delta}, {rem_tt} = {rem_tt} + {delta} "
            ));
            if to_sale < 0 {
                let need = e.signed(-to_sale);
                update =
                    update.condition_expression(format!("{rem} >= {need} AND {rem_tt} >= {need}"));
            }
        }
        if to_hold != 0 {
            let (held, held_tt) = (e.name(HELD_ATTR), e.name(&held_attr(ticket_type)));
            let delta = e.signed(to_hold);
            expression.push_str(&format!("ADD {held} {delta}, {held_tt} {delta}"));
        }
        let update = update
            .update_expression(expression.trim_end())
            .set_expression_attribute_names(Some(e.names))
            .set_expression_attribute_values(Some(e.values))
            .build()
            .built()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

impl DynamoStore {
    /// An order and the shard its seats came from.
    async fn order_with_shard(
        &self,
        id: OrderId,
    ) -> Result<Option<(OrderRecord, u16)>, StoreError> {
        let Some(item) = self
            .get_item(&self.tables.orders, "order_id", id.to_string())
            .await?
        else {
            return Ok(None);
        };
        let shard = match item.get(SHARD_ATTR) {
            Some(_) => u16::try_from(number(&item, SHARD_ATTR)?)
                .map_err(|_| StoreError::corrupt(format!("order {id}: bad shard")))?,
            None => 0,
        };
        Ok(Some((from_item(item)?, shard)))
    }

    /// A refusal decided from a read, unless the command had finished
    /// before.
    async fn refused(
        &self,
        done: &Completion,
        refusal: OrderChange,
    ) -> Result<OrderChange, StoreError> {
        self.unless_done(done, refusal, OrderChange::Already).await
    }

    /// Runs an order's change, its first item being the order's own
    /// conditional update; when that condition fails, says why from the
    /// order as it now stands.
    async fn order_change(
        &self,
        items: Vec<TransactWriteItem>,
        id: OrderId,
        now: Timestamp,
    ) -> Result<OrderChange, StoreError> {
        match self.transact(items).await {
            Ok(()) => Ok(OrderChange::Changed),
            Err(TxFailure::Conditions(c)) if TxFailure::failed_at(&c, -1) => {
                Ok(OrderChange::Already)
            }
            Err(TxFailure::Conditions(c)) if TxFailure::failed_at(&c, 0) => {
                Ok(match self.order(id).await? {
                    None => OrderChange::NotFound,
                    Some(o)
                        if o.status == OrderStatus::PendingPayment
                            && o.expires_at.is_none_or(|at| at <= now) =>
                    {
                        OrderChange::Expired
                    }
                    Some(o) => OrderChange::Refused(o.status),
                })
            }
            // A ticket was checked in or cancelled meanwhile.
            Err(TxFailure::Conditions(_)) => Ok(match self.order(id).await? {
                Some(o) => OrderChange::Refused(o.status),
                None => OrderChange::NotFound,
            }),
            Err(TxFailure::Store(e)) => Err(e),
        }
    }

    fn cancel_ticket_item(&self, id: TicketId) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.tables.tickets)
            .key("ticket_id", s(id.to_string()))
            .update_expression("SET #s = :cancelled")
            .condition_expression("#s = :valid")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":cancelled", s(TicketStatus::Cancelled.as_str()))
            .expression_attribute_values(":valid", s(TicketStatus::Valid.as_str()))
            .build()
            .built()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

/// How many wait for an event: an item beside its counters.
fn waiting_key(event_id: EventId) -> Item {
    [("shard_id".to_owned(), s(format!("{event_id}#waitlist")))].into()
}

impl DynamoStore {
    /// A condition that nobody waits for the event (public sale is open).
    fn nobody_waits(&self, event_id: EventId) -> Result<TransactWriteItem, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.tables.inventory)
            .set_key(Some(waiting_key(event_id)))
            .condition_expression("attribute_not_exists(waiting) OR waiting <= :zero")
            .expression_attribute_values(":zero", n(0))
            .build()
            .built()?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// One more (or fewer) waiting for the event.
    fn count_waiting(
        &self,
        event_id: EventId,
        delta: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.tables.inventory)
            .set_key(Some(waiting_key(event_id)))
            .update_expression("ADD waiting :d")
            .expression_attribute_values(":d", n(delta))
            .build()
            .built()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The first one still waiting for the event.
    async fn first_waiting(&self, event_id: EventId) -> Result<Option<WaitEntry>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.tables.waitlist)
            .index_name(WAITING_INDEX)
            .key_condition_expression("waiting_event = :e")
            .expression_attribute_values(":e", s(event_id.to_string()))
            .limit(1)
            .send()
            .limited(&self.limit)
            .await
            .map_err(classify)?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .next()
            .map(from_item)
            .transpose()
    }
}

/// A waiting-list entry as stored: while waiting, in the `waiting` index.
fn entry_item(entry: &WaitEntry) -> Result<Item, StoreError> {
    let mut item = to_item(entry)?;
    if entry.status == WaitStatus::Waiting {
        item.insert("waiting_event".into(), s(entry.event_id.to_string()));
        item.insert("position".into(), s(entry.position_key()));
    }
    Ok(item)
}

/// An order as stored: the record, the shard its seats came from, and
/// while it is a hold, its place in the expiry index.
fn order_item(order: &OrderRecord, shard: u16) -> Result<Item, StoreError> {
    let mut item = to_item(order)?;
    item.insert(SHARD_ATTR.into(), n(shard));
    if let (OrderStatus::PendingPayment, Some(expires)) = (order.status, order.expires_at) {
        item.insert(
            HOLDS.hash.into(),
            s(HOLDS.key(order.order_id.0.as_bytes()[15])),
        );
        item.insert(
            HOLDS.range.into(),
            s(format!("{}#{}", sortable(expires), order.order_id)),
        );
        item.insert(EXPIRES_SORT_ATTR.into(), s(sortable(expires)));
    }
    Ok(item)
}

/// The shard an order's seats came from.
const SHARD_ATTR: &str = "shard";
/// A hold's expiry, sortable, for conditions.
const EXPIRES_SORT_ATTR: &str = "expires_sort";

impl DynamoStore {
    /// One way of writing a check-in: `first` admits a valid ticket and
    /// counts it; otherwise the scan replaces a later one. `None` when the
    /// ticket's condition failed.
    async fn admit(
        &self,
        scan: &Scan,
        done: &Completion,
        first: bool,
    ) -> Result<Option<CheckInOutcome>, StoreError> {
        let sort = sortable(scan.at);
        let mut admit = Update::builder()
            .table_name(&self.tables.tickets)
            .key("ticket_id", s(scan.ticket_id.to_string()))
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":checked_in", s(TicketStatus::CheckedIn.as_str()))
            .expression_attribute_values(":event", s(scan.event_id.to_string()))
            .expression_attribute_values(":at", s(scan.at.to_string()))
            .expression_attribute_values(":sort", s(sort));
        admit = if first {
            admit
                .condition_expression("#s = :valid AND event_id = :event")
                .expression_attribute_values(":valid", s(TicketStatus::Valid.as_str()))
        } else {
            admit.condition_expression(
                "#s = :checked_in AND event_id = :event AND checked_in_sort > :sort",
            )
        };
        admit = match &scan.gate {
            Some(gate) => admit
                .update_expression(
                    "SET #s = :checked_in, checked_in_at = :at, checked_in_sort = :sort, \
                     checked_in_gate = :gate",
                )
                .expression_attribute_values(":gate", s(gate)),
            None => admit.update_expression(
                "SET #s = :checked_in, checked_in_at = :at, checked_in_sort = :sort \
                 REMOVE checked_in_gate",
            ),
        };
        let not_cancelled = ConditionCheck::builder()
            .table_name(&self.tables.events)
            .key("event_id", s(scan.event_id.to_string()))
            .condition_expression("#s <> :cancelled")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":cancelled", s(EventStatus::Cancelled.as_str()))
            .build()
            .built()?;
        let mut items = vec![
            TransactWriteItem::builder()
                .update(admit.build().built()?)
                .build(),
            TransactWriteItem::builder()
                .condition_check(not_cancelled)
                .build(),
        ];
        if first {
            let mut e = Expr::default();
            let (all, of_type) = (
                e.name(CHECKED_IN_ATTR),
                e.name(&checked_in_attr(scan.ticket_type_id)),
            );
            let one = e.value(1);
            let count = Update::builder()
                .table_name(&self.tables.inventory)
                .set_key(Some(shard_key(scan.event_id, 0)))
                .update_expression(format!("ADD {all} {one}, {of_type} {one}"))
                .condition_expression("attribute_exists(shard_id)")
                .set_expression_attribute_names(Some(e.names))
                .set_expression_attribute_values(Some(e.values))
                .build()
                .built()?;
            items.push(TransactWriteItem::builder().update(count).build());
        }
        items.push(self.completion(done)?);
        match self.transact(items).await {
            Ok(()) => Ok(Some(if first {
                CheckInOutcome::CheckedIn
            } else {
                CheckInOutcome::Earlier
            })),
            Err(TxFailure::Conditions(c)) if TxFailure::failed_at(&c, -1) => {
                Ok(Some(CheckInOutcome::Already))
            }
            Err(TxFailure::Conditions(c)) if TxFailure::failed_at(&c, 0) => Ok(None),
            Err(TxFailure::Conditions(_)) => Ok(Some(CheckInOutcome::NotAdmissible)),
            Err(TxFailure::Store(e)) => Err(e),
        }
    }

    /// Writes the order against one shard: `None` if that shard is short.
    async fn place_in_shard(
        &self,
        placement: &Placement,
        shard: u16,
        done: &Completion,
    ) -> Result<Option<PlaceOutcome>, StoreError> {
        let order = &placement.order;
        let mut items = vec![
            self.on_sale(order.event_id)?,
            self.nobody_waits(order.event_id)?,
            self.shift_seats(
                order.event_id,
                shard,
                order.ticket_type_id,
                -i64::from(order.quantity),
                if order.status == OrderStatus::PendingPayment {
                    i64::from(order.quantity)
                } else {
                    0
                },
            )?,
            self.put_order(order_item(order, shard)?)?,
        ];
        for ticket in &placement.tickets {
            items.push(self.put(&self.tables.tickets, ticket_item(ticket)?, "ticket_id")?);
        }
        items.push(self.completion(done)?);
        match self.transact(items).await {
            Ok(()) => Ok(Some(PlaceOutcome::Placed)),
            Err(TxFailure::Store(e)) => Err(e),
            Err(TxFailure::Conditions(c)) if TxFailure::failed_at(&c, -1) => {
                Ok(Some(PlaceOutcome::Already))
            }
            Err(TxFailure::Conditions(c)) if TxFailure::failed_at(&c, 0) => {
                Ok(Some(PlaceOutcome::NotOnSale))
            }
            // Seats go to the waiting list first.
            Err(TxFailure::Conditions(c)) if TxFailure::failed_at(&c, 1) => {
                Ok(Some(PlaceOutcome::SoldOut))
            }
            Err(TxFailure::Conditions(c)) if TxFailure::failed_at(&c, 3) => {
                Ok(Some(PlaceOutcome::Duplicate))
            }
            Err(TxFailure::Conditions(c)) if TxFailure::failed_at(&c, 2) => Ok(None),
            Err(TxFailure::Conditions(_)) => Err(StoreError::rejected(format!(
                "order {} or one of its tickets exists already",
                order.order_id
            ))),
        }
    }

    /// Moves everything left in `donors` (as observed) into shard `into`;
    /// changes nothing if any donor changed meanwhile.
    pub(crate) async fn consolidate(
        &self,
        event_id: EventId,
        donors: &[Shard],
        into: u16,
    ) -> Result<(), StoreError> {
        let mut items = Vec::new();
        let (mut moved_seats, mut moved_types) = (0u32, HashMap::new());
        for donor in donors.iter().filter(|d| d.index != into) {
            let left = &donor.counters;
            if left.remaining == 0 && left.types.values().all(|t| t.remaining == 0) {
                continue;
            }
            let mut e = Expr::default();
            let (cap, rem) = (e.name("capacity"), e.name("remaining"));
            let (seen, zero) = (e.value(left.remaining), e.value(0));
            let mut set = vec![format!("{cap} = {cap} - {seen}"), format!("{rem} = {zero}")];
            let mut cond = vec![format!("{rem} = {seen}")];
            for (tt, slice) in &left.types {
                let (q, r) = (e.name(&quota_attr(*tt)), e.name(&remaining_attr(*tt)));
                let seen_tt = e.value(slice.remaining);
                set.push(format!("{q} = {q} - {seen_tt}"));
                set.push(format!("{r} = {zero}"));
                cond.push(format!("{r} = {seen_tt}"));
                *moved_types.entry(*tt).or_insert(0u32) += slice.remaining;
            }
            moved_seats += left.remaining;
            items.push(
                TransactWriteItem::builder()
                    .update(
                        Update::builder()
                            .table_name(&self.tables.inventory)
                            .set_key(Some(shard_key(event_id, donor.index)))
                            .update_expression(format!("SET {}", set.join(", ")))
                            .condition_expression(cond.join(" AND "))
                            .set_expression_attribute_names(Some(e.names))
                            .set_expression_attribute_values(Some(e.values))
                            .build()
                            .built()?,
                    )
                    .build(),
            );
        }
        if items.is_empty() {
            return Ok(());
        }
        let mut e = Expr::default();
        let (cap, rem) = (e.name("capacity"), e.name("remaining"));
        let seats = e.value(moved_seats);
        let mut set = vec![
            format!("{cap} = {cap} + {seats}"),
            format!("{rem} = {rem} + {seats}"),
        ];
        for (tt, amount) in moved_types {
            let (q, r) = (e.name(&quota_attr(tt)), e.name(&remaining_attr(tt)));
            let v = e.value(amount);
            set.push(format!("{q} = {q} + {v}"));
            set.push(format!("{r} = {r} + {v}"));
        }
        items.push(
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&self.tables.inventory)
                        .set_key(Some(shard_key(event_id, into)))
                        .update_expression(format!("SET {}", set.join(", ")))
                        .condition_expression("attribute_exists(shard_id)")
                        .set_expression_attribute_names(Some(e.names))
                        .set_expression_attribute_values(Some(e.values))
                        .build()
                        .built()?,
                )
                .build(),
        );
        match self.transact(items).await {
            // A donor changed: someone sold from it; the caller looks again.
            Ok(()) | Err(TxFailure::Conditions(_)) => Ok(()),
            Err(TxFailure::Store(e)) => Err(e),
        }
    }
}

#[async_trait]
impl OrderStore for DynamoStore {
    /// Writes the group's head in one transaction where it can, refuses
    /// what the seats left as observed cannot serve, and places the rest one
    /// by one, in order (see [`groups`]).
    async fn place_orders(
        &self,
        group: &[(Placement, Completion)],
    ) -> Vec<Result<PlaceOutcome, StoreError>> {
        let groups::Together { placed, mut left } =
            self.place_together(group).await.unwrap_or_else(|err| {
                tracing::warn!(error = %err, "could not read a group's counters; placing its orders one by one");
                groups::Together {
                    placed: 0,
                    left: None,
                }
            });
        let mut outcomes: Vec<Option<Result<PlaceOutcome, StoreError>>> = (0..placed)
            .map(|_| Some(Ok(PlaceOutcome::Placed)))
            .collect();
        let mut refused = Vec::new();
        for (i, (placement, done)) in group.iter().enumerate().skip(placed) {
            let order = &placement.order;
            if left
                .as_ref()
                .is_some_and(|l| !l.can_serve(order.ticket_type_id, order.quantity))
            {
                refused.push(i);
                outcomes.push(None);
                continue;
            }
            let outcome = self.place_order(placement, done).await;
            if let (Ok(PlaceOutcome::Placed), Some(left)) = (&outcome, &mut left) {
                let held = order.status == OrderStatus::PendingPayment;
                left.take(order.ticket_type_id, order.quantity, held);
            }
            outcomes.push(Some(outcome));
        }
        if !refused.is_empty() {
            let orders: Vec<_> = refused.iter().map(|&i| &group[i]).collect();
            match self.refusals_of(&orders).await {
                Ok(decided) => {
                    for (&i, outcome) in refused.iter().zip(decided) {
                        outcomes[i] = Some(Ok(outcome));
                    }
                }
                // Without the reads, each finds out the long way.
                Err(_) => {
                    for &i in &refused {
                        let (placement, done) = &group[i];
                        outcomes[i] = Some(self.place_order(placement, done).await);
                    }
                }
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(StoreError::unavailable("an order was not decided"))))
            .collect()
    }

    /// Refusals of one event in one transaction each fifty (two items
    /// apiece); one by one where a command had finished before.
    async fn reject_orders(
        &self,
        group: &[(OrderRecord, Completion)],
    ) -> Vec<Result<Finished, StoreError>> {
        let mut outcomes = Vec::with_capacity(group.len());
        for chunk in group.chunks(50) {
            if chunk.len() > 1 && matches!(self.reject_together(chunk).await, Ok(true)) {
                outcomes.extend(chunk.iter().map(|_| Ok(Finished::Now)));
                continue;
            }
            for (order, done) in chunk {
                outcomes.push(self.reject_order(order, done).await);
            }
        }
        outcomes
    }

    /// Tries a shard picked from the order id first, without reading the
    /// counters; only when that shard is short does it read them all and
    /// choose (see [`eventsys_store::shards`] for why this is exact).
    async fn place_order(
        &self,
        placement: &Placement,
        done: &Completion,
    ) -> Result<PlaceOutcome, StoreError> {
        let order = &placement.order;
        let Some((_, count)) = self.event_with_shards(order.event_id).await? else {
            return Ok(PlaceOutcome::NotOnSale);
        };
        let start = usize::from(order.order_id.0.as_bytes()[15]);
        let mut choice = Choice::Shard(u16::try_from(start % usize::from(count)).unwrap_or(0));
        let mut seen = Vec::new();
        // Each failed try means another order took the seats we saw; bounded,
        // because every such failure is some other order's success.
        for _ in 0..(2 * count + 4) {
            match choice {
                Choice::Shard(index) => {
                    if let Some(outcome) = self.place_in_shard(placement, index, done).await? {
                        return Ok(outcome);
                    }
                }
                Choice::Consolidate { into } => {
                    self.consolidate(order.event_id, &seen, into).await?;
                }
                Choice::SoldOut => return Ok(PlaceOutcome::SoldOut),
            }
            seen = self.shards(order.event_id, count).await?;
            choice = choose(&seen, order.ticket_type_id, order.quantity, start);
        }
        Err(StoreError::unavailable(format!(
            "the counters of event {} kept changing",
            order.event_id
        )))
    }

    async fn confirm_order(
        &self,
        id: OrderId,
        tickets: &[TicketRecord],
        now: Timestamp,
        done: &Completion,
    ) -> Result<OrderChange, StoreError> {
        let Some((order, shard)) = self.order_with_shard(id).await? else {
            return self.refused(done, OrderChange::NotFound).await;
        };
        if order.status != OrderStatus::PendingPayment {
            return self.refused(done, OrderChange::Refused(order.status)).await;
        }
        if order.expires_at.is_none_or(|at| at <= now) {
            return self.refused(done, OrderChange::Expired).await;
        }
        let ids: Vec<TicketId> = tickets.iter().map(|t| t.ticket_id).collect();
        let confirm = Update::builder()
            .table_name(&self.tables.orders)
            .key("order_id", s(id.to_string()))
            .update_expression("SET #s = :confirmed, ticket_ids = :ids REMOVE hold_key, hold_sort")
            .condition_expression("#s = :pending AND expires_sort > :now")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":confirmed", s(OrderStatus::Confirmed.as_str()))
            .expression_attribute_values(":pending", s(OrderStatus::PendingPayment.as_str()))
            .expression_attribute_values(":now", s(sortable(now)))
            .expression_attribute_values(":ids", to_value(&ids)?)
            .build()
            .built()?;
        let quantity = i64::from(order.quantity);
        let mut items = vec![
            TransactWriteItem::builder().update(confirm).build(),
            self.shift_seats(order.event_id, shard, order.ticket_type_id, 0, -quantity)?,
        ];
        for ticket in tickets {
            items.push(self.put(&self.tables.tickets, ticket_item(ticket)?, "ticket_id")?);
        }
        items.push(self.completion(done)?);
        self.order_change(items, id, now).await
    }

    async fn expire_order(
        &self,
        id: OrderId,
        now: Timestamp,
        done: &Completion,
    ) -> Result<OrderChange, StoreError> {
        let Some((order, shard)) = self.order_with_shard(id).await? else {
            return self.refused(done, OrderChange::NotFound).await;
        };
        let due = order.expires_at.is_some_and(|at| at <= now);
        if order.status != OrderStatus::PendingPayment || !due {
            return self.refused(done, OrderChange::Refused(order.status)).await;
        }
        let expire = Update::builder()
            .table_name(&self.tables.orders)
            .key("order_id", s(id.to_string()))
            .update_expression("SET #s = :expired REMOVE hold_key, hold_sort")
            .condition_expression("#s = :pending AND expires_sort <= :now")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":expired", s(OrderStatus::Expired.as_str()))
            .expression_attribute_values(":pending", s(OrderStatus::PendingPayment.as_str()))
            .expression_attribute_values(":now", s(sortable(now)))
            .build()
            .built()?;
        let quantity = i64::from(order.quantity);
        let items = vec![
            TransactWriteItem::builder().update(expire).build(),
            self.shift_seats(
                order.event_id,
                shard,
                order.ticket_type_id,
                quantity,
                -quantity,
            )?,
            self.completion(done)?,
        ];
        self.order_change(items, id, now).await
    }

    async fn cancel_order(
        &self,
        id: OrderId,
        done: &Completion,
    ) -> Result<OrderChange, StoreError> {
        let Some((order, shard)) = self.order_with_shard(id).await? else {
            return self.refused(done, OrderChange::NotFound).await;
        };
        let (from, to_sale, to_hold, mut items) = match order.status {
            OrderStatus::PendingPayment => {
                let q = i64::from(order.quantity);
                (order.status, q, -q, Vec::new())
            }
            OrderStatus::Confirmed => {
                let tickets = self.tickets(&order.ticket_ids).await?;
                if tickets.iter().any(|t| t.status == TicketStatus::CheckedIn) {
                    return self.refused(done, OrderChange::Refused(order.status)).await;
                }
                let mut items = Vec::new();
                for ticket in tickets.iter().filter(|t| t.status == TicketStatus::Valid) {
                    items.push(self.cancel_ticket_item(ticket.ticket_id)?);
                }
                let seats = i64::try_from(items.len()).unwrap_or(i64::MAX);
                (order.status, seats, 0, items)
            }
            other => return self.refused(done, OrderChange::Refused(other)).await,
        };
        let cancel = Update::builder()
            .table_name(&self.tables.orders)
            .key("order_id", s(id.to_string()))
            .update_expression("SET #s = :cancelled REMOVE hold_key, hold_sort")
            .condition_expression("#s = :from")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":cancelled", s(OrderStatus::Cancelled.as_str()))
            .expression_attribute_values(":from", s(from.as_str()))
            .build()
            .built()?;
        items.insert(0, TransactWriteItem::builder().update(cancel).build());
        if to_sale != 0 || to_hold != 0 {
            items.push(self.shift_seats(
                order.event_id,
                shard,
                order.ticket_type_id,
                to_sale,
                to_hold,
            )?);
        }
        items.push(self.completion(done)?);
        self.order_change(items, id, Timestamp::now()).await
    }

    async fn cancel_ticket(
        &self,
        id: TicketId,
        done: &Completion,
    ) -> Result<OrderChange, StoreError> {
        let Some(ticket) = self.ticket(id).await? else {
            return self.refused(done, OrderChange::NotFound).await;
        };
        let Some((order, shard)) = self.order_with_shard(ticket.order_id).await? else {
            return Err(StoreError::corrupt(format!("ticket {id} has no order")));
        };
        if ticket.status != TicketStatus::Valid {
            return self.refused(done, OrderChange::Refused(order.status)).await;
        }
        let items = vec![
            self.cancel_ticket_item(id)?,
            self.shift_seats(order.event_id, shard, order.ticket_type_id, 1, 0)?,
            self.completion(done)?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(OrderChange::Changed),
            Err(TxFailure::Conditions(c)) if TxFailure::failed_at(&c, -1) => {
                Ok(OrderChange::Already)
            }
            // Checked in or cancelled meanwhile.
            Err(TxFailure::Conditions(_)) => Ok(OrderChange::Refused(order.status)),
            Err(TxFailure::Store(e)) => Err(e),
        }
    }

    async fn due_holds(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        self.due(&self.tables.orders, &HOLDS, before, limit).await
    }

    async fn reject_order(
        &self,
        order: &OrderRecord,
        done: &Completion,
    ) -> Result<Finished, StoreError> {
        let items = self.refusal(order, done)?.into();
        self.effect(items, || format!("order {} exists already", order.order_id))
            .await
    }

    async fn order(&self, id: OrderId) -> Result<Option<OrderRecord>, StoreError> {
        self.get_record(&self.tables.orders, "order_id", id.to_string())
            .await
    }

    async fn ticket(&self, id: TicketId) -> Result<Option<TicketRecord>, StoreError> {
        self.get_record(&self.tables.tickets, "ticket_id", id.to_string())
            .await
    }

    async fn tickets(&self, ids: &[TicketId]) -> Result<Vec<TicketRecord>, StoreError> {
        // A batch read refuses a key named twice.
        let ids: std::collections::BTreeSet<&TicketId> = ids.iter().collect();
        let keys = ids
            .iter()
            .map(|id| [("ticket_id".to_owned(), s(id.to_string()))].into())
            .collect();
        let mut tickets: Vec<TicketRecord> = self
            .batch_get(&self.tables.tickets, keys)
            .await?
            .into_iter()
            .map(from_item)
            .collect::<Result<_, _>>()?;
        tickets.sort_by_key(|t| t.ticket_id);
        Ok(tickets)
    }

    async fn join_waitlist(
        &self,
        entry: &WaitEntry,
        done: &Completion,
    ) -> Result<Joined, StoreError> {
        let put = Put::builder()
            .table_name(&self.tables.waitlist)
            .set_item(Some(entry_item(entry)?))
            .condition_expression("attribute_not_exists(user_id) OR #s <> :waiting")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":waiting", s("waiting"))
            .build()
            .built()?;
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            self.count_waiting(entry.event_id, 1)?,
            self.completion(done)?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(Joined::Joined),
            Err(TxFailure::Conditions(c)) if TxFailure::failed_at(&c, -1) => Ok(Joined::Already),
            Err(TxFailure::Conditions(_)) => Ok(Joined::Waiting),
            Err(TxFailure::Store(e)) => Err(e),
        }
    }

    async fn waitlist_entry(
        &self,
        event_id: EventId,
        user: &UserId,
    ) -> Result<Option<(WaitEntry, u32)>, StoreError> {
        let got = self
            .client
            .get_item()
            .table_name(&self.tables.waitlist)
            .key("event_id", s(event_id.to_string()))
            .key("user_id", s(user.as_str()))
            .consistent_read(true)
            .send()
            .limited(&self.limit)
            .await
            .map_err(classify)?;
        let Some(entry) = got.item.map(from_item::<WaitEntry>).transpose()? else {
            return Ok(None);
        };
        if entry.status != WaitStatus::Waiting {
            return Ok(Some((entry, 0)));
        }
        let mut ahead = 0u32;
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.tables.waitlist)
                .index_name(WAITING_INDEX)
                .key_condition_expression("waiting_event = :e AND #p < :mine")
                .expression_attribute_names("#p", "position")
                .expression_attribute_values(":e", s(event_id.to_string()))
                .expression_attribute_values(":mine", s(entry.position_key()))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .limited(&self.limit)
                .await
                .map_err(classify)?;
            ahead += u32::try_from(out.count).unwrap_or(0);
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(Some((entry, ahead)))
    }

    async fn offer_next(
        &self,
        event_id: EventId,
        hold: std::time::Duration,
        now: Timestamp,
    ) -> Result<Option<OrderRecord>, StoreError> {
        let Some((_, count)) = self.event_with_shards(event_id).await? else {
            return Ok(None);
        };
        // Each failed try means another offer or sale changed what we saw.
        for _ in 0..(2 * count + 4) {
            let Some(entry) = self.first_waiting(event_id).await? else {
                return Ok(None);
            };
            let shards = self.shards(event_id, count).await?;
            let shard = match choose(&shards, entry.ticket_type_id, 1, 0) {
                Choice::Shard(shard) => shard,
                Choice::Consolidate { into } => {
                    self.consolidate(event_id, &shards, into).await?;
                    continue;
                }
                Choice::SoldOut => return Ok(None),
            };
            let order = entry.offer(hold, now);
            let offered = WaitEntry {
                status: WaitStatus::Offered,
                offer: Some(order.order_id),
                ..entry.clone()
            };
            let mark = Put::builder()
                .table_name(&self.tables.waitlist)
                .set_item(Some(entry_item(&offered)?))
                .condition_expression("#s = :waiting AND joined_at = :joined")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":waiting", s("waiting"))
                .expression_attribute_values(":joined", s(entry.joined_at.to_string()))
                .build()
                .built()?;
            let items = vec![
                TransactWriteItem::builder().put(mark).build(),
                self.shift_seats(event_id, shard, order.ticket_type_id, -1, 1)?,
                self.put_order(order_item(&order, shard)?)?,
                self.count_waiting(event_id, -1)?,
            ];
            match self.transact(items).await {
                Ok(()) => return Ok(Some(order)),
                Err(TxFailure::Conditions(_)) => {}
                Err(TxFailure::Store(e)) => return Err(e),
            }
        }
        Err(StoreError::unavailable(format!(
            "the waiting list of event {event_id} kept changing"
        )))
    }

    async fn holders(
        &self,
        event_id: EventId,
        page: &PageRequest,
    ) -> Result<Page<UserId>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.tables.tickets)
            .index_name(BY_EVENT_INDEX)
            .key_condition_expression("event_id = :e")
            .expression_attribute_values(":e", s(event_id.to_string()));
        let Page { items, next } = self.query_page::<TicketRecord>(query, page).await?;
        let mut holders: Vec<UserId> = items.into_iter().map(|t| t.holder_id).collect();
        holders.sort();
        holders.dedup();
        Ok(Page {
            items: holders,
            next,
        })
    }

    async fn tickets_of(
        &self,
        holder: &UserId,
        page: &PageRequest,
    ) -> Result<Page<TicketRecord>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.tables.tickets)
            .index_name(BY_HOLDER_INDEX)
            .key_condition_expression("holder_id = :h")
            .expression_attribute_values(":h", s(holder.as_str()))
            .scan_index_forward(false);
        self.query_page(query, page).await
    }

    async fn check_in(&self, scan: &Scan, done: &Completion) -> Result<CheckInOutcome, StoreError> {
        // A valid ticket is admitted and counted; failing that, a scan
        // earlier than the one recorded takes its place, uncounted.
        match self.admit(scan, done, true).await? {
            Some(outcome) => Ok(outcome),
            None if scan.offline => Ok(self
                .admit(scan, done, false)
                .await?
                .unwrap_or(CheckInOutcome::NotAdmissible)),
            None => Ok(CheckInOutcome::NotAdmissible),
        }
    }
}
