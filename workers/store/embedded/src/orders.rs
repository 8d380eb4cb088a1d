//! Orders, tickets and check-ins in the embedded store.

use async_trait::async_trait;
use eventsys_messages::{EventId, EventStatus, OrderId, TicketId, Timestamp, UserId};

use crate::{
    EVENTS, EmbeddedStore, HOLDS, INVENTORY, ORDERS, TICKETS, TICKETS_BY_EVENT, TICKETS_BY_HOLDER,
    WAITING, WAITLIST, commands, get, open, open_read, page, put, unavailable,
};
use eventsys_store::{
    Inventory, StoreError,
    ports::{CheckInOutcome, Finished, Joined, OrderChange, OrderStore, PlaceOutcome},
    records::{
        Completion, EventRecord, OrderRecord, OrderStatus, Page, PageRequest, Placement, Scan,
        TicketRecord, TicketStatus, WaitEntry, WaitStatus,
    },
    sortable,
};

fn holder_key(ticket: &TicketRecord) -> String {
    format!(
        "{}\0{}#{}",
        ticket.holder_id,
        sortable(ticket.created_at),
        ticket.ticket_id
    )
}

/// Keys of one holder's index entries lie in `[holder\0, holder\x01)`.
fn holder_range(holder: &UserId) -> (String, String) {
    (format!("{holder}\0"), format!("{holder}\u{1}"))
}

/// Writes new tickets with their places in the holder's and the event's
/// index.
fn write_tickets(txn: &redb::WriteTransaction, tickets: &[TicketRecord]) -> Result<(), StoreError> {
    let mut table = open(txn, TICKETS)?;
    let (mut by_holder, mut by_event) =
        (open(txn, TICKETS_BY_HOLDER)?, open(txn, TICKETS_BY_EVENT)?);
    for ticket in tickets {
        put(&mut table, &ticket.ticket_id.to_string(), ticket)?;
        put(&mut by_holder, &holder_key(ticket), &ticket.ticket_id)?;
        let at_event = format!("{}\0{}", ticket.event_id, ticket.ticket_id);
        put(&mut by_event, &at_event, &ticket.holder_id)?;
    }
    Ok(())
}

/// The first entry still waiting for `event`, if any.
fn first_waiting(
    txn: &redb::WriteTransaction,
    event: EventId,
) -> Result<Option<WaitEntry>, StoreError> {
    let (start, end) = (format!("{event}\0"), format!("{event}\u{1}"));
    let Page { items, .. } = page::<UserId>(&open(txn, WAITING)?, (&start, &end), None, 1, false)?;
    let Some((_, user)) = items.into_iter().next() else {
        return Ok(None);
    };
    get::<WaitEntry>(&open(txn, WAITLIST)?, &format!("{event}\0{user}"))
}

/// Where a held order sits in the expiry index.
fn hold_key(order: &OrderRecord) -> Option<String> {
    (order.status == OrderStatus::PendingPayment)
        .then_some(order.expires_at)
        .flatten()
        .map(|at| format!("{}#{}", sortable(at), order.order_id))
}

/// Writes `order` changed: out of the expiry index if it is no longer held.
fn rewrite_order(
    txn: &redb::WriteTransaction,
    before: &OrderRecord,
    after: &OrderRecord,
) -> Result<(), StoreError> {
    if let Some(key) = hold_key(before).filter(|_| hold_key(after).is_none()) {
        open(txn, HOLDS)?
            .remove(key.as_str())
            .map_err(unavailable)?;
    }
    put(&mut open(txn, ORDERS)?, &after.order_id.to_string(), after)
}

/// Gives `quantity` seats of `order` back for sale.
fn release(
    txn: &redb::WriteTransaction,
    order: &OrderRecord,
    quantity: u32,
    held: bool,
) -> Result<(), StoreError> {
    let mut counters = open(txn, INVENTORY)?;
    let key = order.event_id.to_string();
    let mut inventory = get::<Inventory>(&counters, &key)?
        .ok_or_else(|| StoreError::corrupt(format!("event {key} has no inventory")))?;
    inventory.release(order.ticket_type_id, quantity, held);
    put(&mut counters, &key, &inventory)
}

fn write_order(txn: &redb::WriteTransaction, order: &OrderRecord) -> Result<(), StoreError> {
    let mut orders = open(txn, ORDERS)?;
    let key = order.order_id.to_string();
    if get::<OrderRecord>(&orders, &key)?.is_some_and(|o| o.status.is_active()) {
        return Err(StoreError::rejected(format!("order {key} exists already")));
    }
    put(&mut orders, &key, order)
}

impl EmbeddedStore {
    /// Changes an order in one write, if `done`'s command is unfinished:
    /// `change` gets the order as it stands and answers it changed (written,
    /// the command finished with it) or a refusal (nothing written).
    async fn change_order<F>(
        &self,
        id: OrderId,
        done: &Completion,
        change: F,
    ) -> Result<OrderChange, StoreError>
    where
        F: Fn(
                &redb::WriteTransaction,
                &OrderRecord,
            ) -> Result<Result<OrderRecord, OrderChange>, StoreError>
            + Send
            + 'static,
    {
        let done = done.clone();
        self.write(move |txn| {
            if !commands::unfinished(txn, &done)? {
                return Ok(OrderChange::Already);
            }
            let Some(order) = get::<OrderRecord>(&open(txn, ORDERS)?, &id.to_string())? else {
                return Ok(OrderChange::NotFound);
            };
            match change(txn, &order)? {
                Ok(changed) => {
                    rewrite_order(txn, &order, &changed)?;
                    commands::finish(txn, &done)?;
                    Ok(OrderChange::Changed)
                }
                Err(refusal) => Ok(refusal),
            }
        })
        .await
    }
}

/// Writes an order and takes its seats in `txn`, on the conditions of
/// [`OrderStore::place_order`].
fn place(
    txn: &redb::WriteTransaction,
    placement: &Placement,
    done: &Completion,
) -> Result<PlaceOutcome, StoreError> {
    let order = &placement.order;
    if !commands::unfinished(txn, done)? {
        return Ok(PlaceOutcome::Already);
    }
    let on_sale = get::<EventRecord>(&open(txn, EVENTS)?, &order.event_id.to_string())?
        .is_some_and(|e| e.spec.status == EventStatus::Published);
    if !on_sale {
        return Ok(PlaceOutcome::NotOnSale);
    }
    if get::<OrderRecord>(&open(txn, ORDERS)?, &order.order_id.to_string())?
        .is_some_and(|o| o.status.is_active())
    {
        return Ok(PlaceOutcome::Duplicate);
    }
    // While anyone waits, seats go to the waiting list first.
    if first_waiting(txn, order.event_id)?.is_some() {
        return Ok(PlaceOutcome::SoldOut);
    }
    let mut counters = open(txn, INVENTORY)?;
    let key = order.event_id.to_string();
    let Some(mut inventory) = get::<Inventory>(&counters, &key)? else {
        return Ok(PlaceOutcome::NotOnSale);
    };
    let hold = order.status == OrderStatus::PendingPayment;
    if !inventory.take(order.ticket_type_id, order.quantity, hold) {
        return Ok(PlaceOutcome::SoldOut);
    }
    put(&mut counters, &key, &inventory)?;
    write_order(txn, order)?;
    if let Some(key) = hold_key(order) {
        put(&mut open(txn, HOLDS)?, &key, &order.order_id)?;
    }
    write_tickets(txn, &placement.tickets)?;
    commands::finish(txn, done)?;
    Ok(PlaceOutcome::Placed)
}

/// Writes a refused order in `txn`, unless its command finished before.
fn reject(
    txn: &redb::WriteTransaction,
    order: &OrderRecord,
    done: &Completion,
) -> Result<Finished, StoreError> {
    if !commands::unfinished(txn, done)? {
        return Ok(Finished::Already);
    }
    write_order(txn, order)?;
    commands::finish(txn, done)
}

impl EmbeddedStore {
    /// Writes each of `group` with `write_one`, all in one transaction,
    /// and answers one outcome per item: the transaction's error, if any,
    /// is each one's.
    async fn write_each<I, T>(
        &self,
        group: &[I],
        write_one: fn(&redb::WriteTransaction, &I) -> Result<T, StoreError>,
    ) -> Vec<Result<T, StoreError>>
    where
        I: Clone + Send + Sync + 'static,
        T: Send + 'static,
    {
        let items = group.to_vec();
        let written = self
            .write(move |txn| {
                items
                    .iter()
                    .map(|item| write_one(txn, item))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await;
        match written {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            Err(err) => {
                let cause = err.to_string();
                group
                    .iter()
                    .map(|_| Err(StoreError::unavailable(cause.clone())))
                    .collect()
            }
        }
    }
}

#[async_trait]
impl OrderStore for EmbeddedStore {
    async fn place_order(
        &self,
        placement: &Placement,
        done: &Completion,
    ) -> Result<PlaceOutcome, StoreError> {
        let (placement, done) = (placement.clone(), done.clone());
        self.write(move |txn| place(txn, &placement, &done)).await
    }

    /// The whole group in one transaction, each order decided in turn.
    async fn place_orders(
        &self,
        group: &[(Placement, Completion)],
    ) -> Vec<Result<PlaceOutcome, StoreError>> {
        self.write_each(group, |txn, (placement, done)| place(txn, placement, done))
            .await
    }

    async fn confirm_order(
        &self,
        id: OrderId,
        tickets: &[TicketRecord],
        now: Timestamp,
        done: &Completion,
    ) -> Result<OrderChange, StoreError> {
        let tickets = tickets.to_vec();
        self.change_order(id, done, move |txn, order| {
            if order.status != OrderStatus::PendingPayment {
                return Ok(Err(OrderChange::Refused(order.status)));
            }
            if order.expires_at.is_none_or(|at| at <= now) {
                return Ok(Err(OrderChange::Expired));
            }
            let mut counters = open(txn, INVENTORY)?;
            let key = order.event_id.to_string();
            if let Some(mut inventory) = get::<Inventory>(&counters, &key)? {
                inventory.settle(order.ticket_type_id, order.quantity);
                put(&mut counters, &key, &inventory)?;
            }
            write_tickets(txn, &tickets)?;
            Ok(Ok(OrderRecord {
                status: OrderStatus::Confirmed,
                ticket_ids: tickets.iter().map(|t| t.ticket_id).collect(),
                ..order.clone()
            }))
        })
        .await
    }

    async fn expire_order(
        &self,
        id: OrderId,
        now: Timestamp,
        done: &Completion,
    ) -> Result<OrderChange, StoreError> {
        self.change_order(id, done, move |txn, order| {
            let due = order.expires_at.is_some_and(|at| at <= now);
            if order.status != OrderStatus::PendingPayment || !due {
                return Ok(Err(OrderChange::Refused(order.status)));
            }
            release(txn, order, order.quantity, true)?;
            Ok(Ok(OrderRecord {
                status: OrderStatus::Expired,
                ..order.clone()
            }))
        })
        .await
    }

    async fn cancel_order(
        &self,
        id: OrderId,
        done: &Completion,
    ) -> Result<OrderChange, StoreError> {
        self.change_order(id, done, move |txn, order| {
            match order.status {
                OrderStatus::PendingPayment => release(txn, order, order.quantity, true)?,
                OrderStatus::Confirmed => {
                    let mut table = open(txn, TICKETS)?;
                    let mut valid = Vec::new();
                    for ticket_id in &order.ticket_ids {
                        let Some(ticket) = get::<TicketRecord>(&table, &ticket_id.to_string())?
                        else {
                            continue;
                        };
                        match ticket.status {
                            TicketStatus::Valid => valid.push(ticket),
                            TicketStatus::CheckedIn => {
                                return Ok(Err(OrderChange::Refused(order.status)));
                            }
                            TicketStatus::Cancelled => {}
                        }
                    }
                    let seats = u32::try_from(valid.len()).unwrap_or(u32::MAX);
                    for mut ticket in valid {
                        ticket.status = TicketStatus::Cancelled;
                        put(&mut table, &ticket.ticket_id.to_string(), &ticket)?;
                    }
                    release(txn, order, seats, false)?;
                }
                other => return Ok(Err(OrderChange::Refused(other))),
            }
            Ok(Ok(OrderRecord {
                status: OrderStatus::Cancelled,
                ..order.clone()
            }))
        })
        .await
    }

    async fn cancel_ticket(
        &self,
        id: TicketId,
        done: &Completion,
    ) -> Result<OrderChange, StoreError> {
        let done = done.clone();
        self.write(move |txn| {
            if !commands::unfinished(txn, &done)? {
                return Ok(OrderChange::Already);
            }
            let mut table = open(txn, TICKETS)?;
            let key = id.to_string();
            let Some(mut ticket) = get::<TicketRecord>(&table, &key)? else {
                return Ok(OrderChange::NotFound);
            };
            let order = get::<OrderRecord>(&open(txn, ORDERS)?, &ticket.order_id.to_string())?
                .ok_or_else(|| StoreError::corrupt(format!("ticket {key} has no order")))?;
            if ticket.status != TicketStatus::Valid {
                return Ok(OrderChange::Refused(order.status));
            }
            ticket.status = TicketStatus::Cancelled;
            put(&mut table, &key, &ticket)?;
            release(txn, &order, 1, false)?;
            commands::finish(txn, &done)?;
            Ok(OrderChange::Changed)
        })
        .await
    }

    async fn due_holds(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        self.read(move |txn| {
            let end = sortable(before);
            let Page { items, .. } =
                page::<OrderId>(&open_read(txn, HOLDS)?, ("", &end), None, limit, false)?;
            let orders = open_read(txn, ORDERS)?;
            let mut due = Vec::with_capacity(items.len());
            for (_, id) in items {
                due.extend(get::<OrderRecord>(&orders, &id.to_string())?);
            }
            Ok(due)
        })
        .await
    }

    async fn reject_order(
        &self,
        order: &OrderRecord,
        done: &Completion,
    ) -> Result<Finished, StoreError> {
        let (order, done) = (order.clone(), done.clone());
        self.write(move |txn| reject(txn, &order, &done)).await
    }

    /// The whole group in one transaction.
    async fn reject_orders(
        &self,
        group: &[(OrderRecord, Completion)],
    ) -> Vec<Result<Finished, StoreError>> {
        self.write_each(group, |txn, (order, done)| reject(txn, order, done))
            .await
    }

    async fn order(&self, id: OrderId) -> Result<Option<OrderRecord>, StoreError> {
        self.read(move |txn| get(&open_read(txn, ORDERS)?, &id.to_string()))
            .await
    }

    async fn ticket(&self, id: TicketId) -> Result<Option<TicketRecord>, StoreError> {
        self.read(move |txn| get(&open_read(txn, TICKETS)?, &id.to_string()))
            .await
    }

    async fn tickets(&self, ids: &[TicketId]) -> Result<Vec<TicketRecord>, StoreError> {
        let ids: std::collections::BTreeSet<TicketId> = ids.iter().copied().collect();
        self.read(move |txn| {
            let table = open_read(txn, TICKETS)?;
            let mut found: Vec<TicketRecord> = Vec::with_capacity(ids.len());
            for id in ids {
                found.extend(get::<TicketRecord>(&table, &id.to_string())?);
            }
            found.sort_by_key(|t| t.ticket_id);
            Ok(found)
        })
        .await
    }

    async fn join_waitlist(
        &self,
        entry: &WaitEntry,
        done: &Completion,
    ) -> Result<Joined, StoreError> {
        let (entry, done) = (entry.clone(), done.clone());
        self.write(move |txn| {
            if !commands::unfinished(txn, &done)? {
                return Ok(Joined::Already);
            }
            let mut entries = open(txn, WAITLIST)?;
            let key = format!("{}\0{}", entry.event_id, entry.user_id);
            if get::<WaitEntry>(&entries, &key)?.is_some_and(|e| e.status == WaitStatus::Waiting) {
                return Ok(Joined::Waiting);
            }
            put(&mut entries, &key, &entry)?;
            let at = format!("{}\0{}", entry.event_id, entry.position_key());
            put(&mut open(txn, WAITING)?, &at, &entry.user_id)?;
            commands::finish(txn, &done)?;
            Ok(Joined::Joined)
        })
        .await
    }

    async fn waitlist_entry(
        &self,
        event_id: EventId,
        user: &UserId,
    ) -> Result<Option<(WaitEntry, u32)>, StoreError> {
        let user = user.clone();
        self.read(move |txn| {
            let Some(entry) =
                get::<WaitEntry>(&open_read(txn, WAITLIST)?, &format!("{event_id}\0{user}"))?
            else {
                return Ok(None);
            };
            let start = format!("{event_id}\0");
            let mine = format!("{event_id}\0{}", entry.position_key());
            let ahead = open_read(txn, WAITING)?
                .range::<&str>(start.as_str()..mine.as_str())
                .map_err(unavailable)?
                .count();
            Ok(Some((entry, u32::try_from(ahead).unwrap_or(u32::MAX))))
        })
        .await
    }

    async fn offer_next(
        &self,
        event_id: EventId,
        hold: std::time::Duration,
        now: Timestamp,
    ) -> Result<Option<OrderRecord>, StoreError> {
        // The first one waiting, read first, then the offer written on
        // condition that the entry is still as read.
        let first = self
            .read(move |txn| {
                let (start, end) = (format!("{event_id}\0"), format!("{event_id}\u{1}"));
                let Page { items, .. } =
                    page::<UserId>(&open_read(txn, WAITING)?, (&start, &end), None, 1, false)?;
                match items.into_iter().next() {
                    Some((_, user)) => {
                        get::<WaitEntry>(&open_read(txn, WAITLIST)?, &format!("{event_id}\0{user}"))
                    }
                    None => Ok(None),
                }
            })
            .await?;
        let Some(entry) = first else {
            return Ok(None);
        };
        let order = entry.offer(hold, now);
        self.write(move |txn| {
            let mut entries = open(txn, WAITLIST)?;
            let key = format!("{event_id}\0{}", entry.user_id);
            let still = get::<WaitEntry>(&entries, &key)?;
            if still.as_ref() != Some(&entry) {
                return Ok(None);
            }
            let mut counters = open(txn, INVENTORY)?;
            let at = event_id.to_string();
            let Some(mut inventory) = get::<Inventory>(&counters, &at)? else {
                return Ok(None);
            };
            if !inventory.take(order.ticket_type_id, order.quantity, true) {
                return Ok(None);
            }
            put(&mut counters, &at, &inventory)?;
            write_order(txn, &order)?;
            if let Some(key) = hold_key(&order) {
                put(&mut open(txn, HOLDS)?, &key, &order.order_id)?;
            }
            let offered = WaitEntry {
                status: WaitStatus::Offered,
                offer: Some(order.order_id),
                ..entry.clone()
            };
            put(&mut entries, &key, &offered)?;
            open(txn, WAITING)?
                .remove(format!("{event_id}\0{}", entry.position_key()).as_str())
                .map_err(unavailable)?;
            Ok(Some(order.clone()))
        })
        .await
    }

    async fn holders(
        &self,
        event_id: EventId,
        request: &PageRequest,
    ) -> Result<Page<UserId>, StoreError> {
        let request = request.clone();
        self.read(move |txn| {
            let (start, end) = (format!("{event_id}\0"), format!("{event_id}\u{1}"));
            let Page { items, next } = page::<UserId>(
                &open_read(txn, TICKETS_BY_EVENT)?,
                (&start, &end),
                request.after.as_deref(),
                request.limit,
                false,
            )?;
            let mut holders: Vec<UserId> = items.into_iter().map(|(_, h)| h).collect();
            holders.sort();
            holders.dedup();
            Ok(Page {
                items: holders,
                next,
            })
        })
        .await
    }

    async fn tickets_of(
        &self,
        holder: &UserId,
        request: &PageRequest,
    ) -> Result<Page<TicketRecord>, StoreError> {
        let (holder, request) = (holder.clone(), request.clone());
        self.read(move |txn| {
            let (start, end) = holder_range(&holder);
            let Page { items: ids, next } = page::<TicketId>(
                &open_read(txn, TICKETS_BY_HOLDER)?,
                (&start, &end),
                request.after.as_deref(),
                request.limit,
                true,
            )?;
            let tickets = open_read(txn, TICKETS)?;
            let items = ids
                .into_iter()
                .map(|(_, id)| {
                    get::<TicketRecord>(&tickets, &id.to_string())?.ok_or_else(|| {
                        StoreError::corrupt(format!("indexed ticket {id} is missing"))
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok(Page { items, next })
        })
        .await
    }

    async fn check_in(&self, scan: &Scan, done: &Completion) -> Result<CheckInOutcome, StoreError> {
        let (scan, done) = (scan.clone(), done.clone());
        self.write(move |txn| {
            if !commands::unfinished(txn, &done)? {
                return Ok(CheckInOutcome::Already);
            }
            let event_key = scan.event_id.to_string();
            let cancelled = get::<EventRecord>(&open(txn, EVENTS)?, &event_key)?
                .is_none_or(|e| e.spec.status == EventStatus::Cancelled);
            if cancelled {
                return Ok(CheckInOutcome::NotAdmissible);
            }
            let mut tickets = open(txn, TICKETS)?;
            let key = scan.ticket_id.to_string();
            let Some(mut ticket) =
                get::<TicketRecord>(&tickets, &key)?.filter(|t| t.event_id == scan.event_id)
            else {
                return Ok(CheckInOutcome::NotAdmissible);
            };
            let outcome = match (ticket.status, ticket.checked_in_at) {
                (TicketStatus::Valid, _) => CheckInOutcome::CheckedIn,
                (TicketStatus::CheckedIn, Some(first)) if scan.offline && scan.at < first => {
                    CheckInOutcome::Earlier
                }
                _ => return Ok(CheckInOutcome::NotAdmissible),
            };
            ticket.status = TicketStatus::CheckedIn;
            ticket.checked_in_at = Some(scan.at);
            ticket.checked_in_gate = scan.gate.clone();
            put(&mut tickets, &key, &ticket)?;
            if outcome == CheckInOutcome::CheckedIn {
                let mut counters = open(txn, INVENTORY)?;
                if let Some(mut inventory) = get::<Inventory>(&counters, &event_key)? {
                    inventory.admit(ticket.ticket_type_id);
                    put(&mut counters, &event_key, &inventory)?;
                }
            }
            commands::finish(txn, &done)?;
            Ok(outcome)
        })
        .await
    }
}
