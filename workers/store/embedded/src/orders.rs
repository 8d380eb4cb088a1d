//! Orders, tickets and check-ins in the embedded store.

use async_trait::async_trait;
use eventsys_messages::{EventId, EventStatus, OrderId, TicketId, Timestamp, UserId};

use crate::{
    EVENTS, EmbeddedStore, INVENTORY, ORDERS, TICKETS, TICKETS_BY_HOLDER, commands,
    events::shard_key, get, open, open_read, page, put,
};
use eventsys_store::{
    Shard, StoreError,
    ports::{CheckInOutcome, Finished, OrderStore, PlaceOutcome},
    records::{
        Completion, EventRecord, OrderRecord, Page, PageRequest, Placement, TicketRecord,
        TicketStatus,
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

fn write_order(txn: &redb::WriteTransaction, order: &OrderRecord) -> Result<(), StoreError> {
    let mut orders = open(txn, ORDERS)?;
    let key = order.order_id.to_string();
    if get::<OrderRecord>(&orders, &key)?.is_some() {
        return Err(StoreError::Rejected(format!("order {key} exists already")));
    }
    put(&mut orders, &key, order)
}

#[async_trait]
impl OrderStore for EmbeddedStore {
    async fn place_order(
        &self,
        placement: &Placement,
        done: &Completion,
    ) -> Result<PlaceOutcome, StoreError> {
        let (placement, done) = (placement.clone(), done.clone());
        self.write(move |txn| {
            let order = &placement.order;
            if !commands::unfinished(txn, &done)? {
                return Ok(PlaceOutcome::Already);
            }
            let on_sale = get::<EventRecord>(&open(txn, EVENTS)?, &order.event_id.to_string())?
                .is_some_and(|e| e.spec.status == EventStatus::Published);
            if !on_sale {
                return Ok(PlaceOutcome::NotOnSale);
            }
            let mut shards = open(txn, INVENTORY)?;
            let key = shard_key(order.event_id, placement.shard);
            let Some(mut shard) = get::<Shard>(&shards, &key)? else {
                return Ok(PlaceOutcome::ShardShort);
            };
            if !shard.can_serve(order.ticket_type_id, order.quantity) {
                return Ok(PlaceOutcome::ShardShort);
            }
            shard.remaining -= order.quantity;
            if let Some(slice) = shard.types.get_mut(&order.ticket_type_id) {
                slice.remaining -= order.quantity;
            }
            put(&mut shards, &key, &shard)?;
            write_order(txn, order)?;
            let (mut tickets, mut by_holder) = (open(txn, TICKETS)?, open(txn, TICKETS_BY_HOLDER)?);
            for ticket in &placement.tickets {
                put(&mut tickets, &ticket.ticket_id.to_string(), ticket)?;
                put(&mut by_holder, &holder_key(ticket), &ticket.ticket_id)?;
            }
            commands::finish(txn, &done)?;
            Ok(PlaceOutcome::Placed)
        })
        .await
    }

    async fn consolidate_shards(
        &self,
        event_id: EventId,
        donors: &[Shard],
        into: u16,
    ) -> Result<bool, StoreError> {
        let donors = donors.to_vec();
        self.write(move |txn| {
            let mut shards = open(txn, INVENTORY)?;
            let target_key = shard_key(event_id, into);
            let Some(mut target) = get::<Shard>(&shards, &target_key)? else {
                return Err(StoreError::Rejected(format!(
                    "event {event_id} has no shard {into}"
                )));
            };
            for seen in donors.iter().filter(|d| d.index != into) {
                let key = shard_key(event_id, seen.index);
                let Some(mut donor) = get::<Shard>(&shards, &key)? else {
                    return Ok(false);
                };
                // What was observed must still be what is there.
                let unchanged = donor.remaining == seen.remaining
                    && seen.types.iter().all(|(tt, s)| {
                        donor.types.get(tt).map(|d| d.remaining) == Some(s.remaining)
                    });
                if !unchanged {
                    return Ok(false);
                }
                target.capacity += donor.remaining;
                target.remaining += donor.remaining;
                donor.capacity -= donor.remaining;
                donor.remaining = 0;
                for (tt, slice) in &mut donor.types {
                    let moved = slice.remaining;
                    let into = target
                        .types
                        .entry(*tt)
                        .or_insert(eventsys_store::TypeSlice {
                            quota: 0,
                            remaining: 0,
                        });
                    into.quota += moved;
                    into.remaining += moved;
                    slice.quota -= moved;
                    slice.remaining = 0;
                }
                put(&mut shards, &key, &donor)?;
            }
            put(&mut shards, &target_key, &target)?;
            Ok(true)
        })
        .await
    }

    async fn reject_order(
        &self,
        order: &OrderRecord,
        done: &Completion,
    ) -> Result<Finished, StoreError> {
        let (order, done) = (order.clone(), done.clone());
        self.write(move |txn| {
            if !commands::unfinished(txn, &done)? {
                return Ok(Finished::Already);
            }
            write_order(txn, &order)?;
            commands::finish(txn, &done)
        })
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
        let ids = ids.to_vec();
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
                        StoreError::Corrupt(format!("indexed ticket {id} is missing"))
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok(Page { items, next })
        })
        .await
    }

    async fn check_in(
        &self,
        ticket_id: TicketId,
        event_id: EventId,
        at: Timestamp,
        done: &Completion,
    ) -> Result<CheckInOutcome, StoreError> {
        let done = done.clone();
        self.write(move |txn| {
            if !commands::unfinished(txn, &done)? {
                return Ok(CheckInOutcome::Already);
            }
            let mut tickets = open(txn, TICKETS)?;
            let key = ticket_id.to_string();
            match get::<TicketRecord>(&tickets, &key)? {
                Some(mut ticket)
                    if ticket.event_id == event_id && ticket.status == TicketStatus::Valid =>
                {
                    ticket.status = TicketStatus::CheckedIn;
                    ticket.checked_in_at = Some(at);
                    put(&mut tickets, &key, &ticket)?;
                    commands::finish(txn, &done)?;
                    Ok(CheckInOutcome::CheckedIn)
                }
                _ => Ok(CheckInOutcome::NotAdmissible),
            }
        })
        .await
    }
}
