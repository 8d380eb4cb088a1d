//! How an event's counters are laid out in DynamoDB, and why selling from
//! them is exact.
//!
//! DynamoDB serves about a thousand writes a second per partition, and every
//! order writes the counters it takes seats from. So a big event's capacity,
//! and each ticket type's quota, is split over `shards` items with partition
//! keys of their own (`{event_id}#{index}`); the count is decided here, from
//! the capacity and [`crate::DynamoConfig::seats_per_shard`], once, when the
//! event is created, and kept on the event's item.
//!
//! Why this never oversells and never refuses a seat it has:
//! - an order takes all its seats from **one** shard, in the same
//!   transaction that writes the order, under the condition that this shard
//!   has them (`remaining >= q` and the type's `remaining >= q`): each shard
//!   on its own can never go below zero, so neither can their sum;
//! - when no single shard can serve an order but all of them together could,
//!   the leftovers are moved into one shard by a transfer conditioned on
//!   every donor still holding exactly what was observed, so a seat is moved
//!   whole or not at all and never counted twice;
//! - each failed condition means some other order or transfer succeeded, so
//!   the retries are bounded by the work others got done.
//!
//! Near the end of a sale an event therefore collapses to one hot shard,
//! exactly when little is left to fight over.

use std::collections::BTreeMap;

use eventsys_messages::{EventId, EventSpec, TicketTypeId};
use eventsys_store::{Inventory, StoreError, TypeSlice};

use crate::codec::{Item, n, number, s};

/// An event's counters are split over at most this many items.
pub const MAX_SHARDS: u16 = 16;
/// Seats per shard when the configuration does not say: far below what one
/// partition absorbs in a rush, far above what a small event needs.
pub const DEFAULT_SEATS_PER_SHARD: u32 = 1_000;

/// One item of an event's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u16,
    pub counters: Inventory,
}

/// How many shards an event of `capacity` seats gets.
pub fn shard_count(capacity: u32, seats_per_shard: u32) -> u16 {
    let wanted = capacity.div_ceil(seats_per_shard.max(1)).max(1);
    u16::try_from(wanted).unwrap_or(u16::MAX).min(MAX_SHARDS)
}

/// A new event's counters spread evenly over `shards` items.
pub fn split(spec: &EventSpec, shards: u16) -> Vec<Shard> {
    let whole = Inventory::initial(spec);
    let shards = shards.max(1);
    let share = |total: u32, i: u16| {
        let parts = u32::from(shards);
        total / parts + u32::from(u32::from(i) < total % parts)
    };
    (0..shards)
        .map(|i| Shard {
            index: i,
            counters: Inventory {
                capacity: share(whole.capacity, i),
                remaining: share(whole.capacity, i),
                held: 0,
                checked_in: 0,
                types: whole
                    .types
                    .iter()
                    .map(|(tt, slice)| {
                        let quota = share(slice.quota, i);
                        (
                            *tt,
                            TypeSlice {
                                quota,
                                remaining: quota,
                                held: 0,
                                checked_in: 0,
                            },
                        )
                    })
                    .collect(),
            },
        })
        .collect()
}

/// Where to take an order's seats from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    Shard(u16),
    /// No shard can serve it alone, but together they can.
    Consolidate {
        into: u16,
    },
    SoldOut,
}

/// Picks the first shard, from `start` on, that can serve the order alone.
/// Starting at a random shard spreads concurrent orders over the shards.
pub fn choose(shards: &[Shard], ticket_type: TicketTypeId, quantity: u32, start: usize) -> Choice {
    let n = shards.len();
    if let Some(shard) = (0..n)
        .map(|k| &shards[(start + k) % n])
        .find(|s| s.counters.can_serve(ticket_type, quantity))
    {
        return Choice::Shard(shard.index);
    }
    let total = Inventory::sum(shards.iter().map(|s| &s.counters));
    match shards
        .iter()
        .max_by_key(|s| (s.counters.remaining, std::cmp::Reverse(s.index)))
    {
        Some(fullest) if total.type_remaining(ticket_type) >= quantity => Choice::Consolidate {
            into: fullest.index,
        },
        _ => Choice::SoldOut,
    }
}

/// Per-type counters of a shard live in attributes named by the type id.
pub fn quota_attr(tt: TicketTypeId) -> String {
    format!("q_{tt}")
}

pub fn remaining_attr(tt: TicketTypeId) -> String {
    format!("r_{tt}")
}

/// Admissions are counted on shard 0 only: doors scan far below what one
/// partition absorbs, and the count is then one read.
pub const CHECKED_IN_ATTR: &str = "checked_in";

pub fn checked_in_attr(tt: TicketTypeId) -> String {
    format!("c_{tt}")
}

/// Seats in holds: on the shard the hold took them from.
pub const HELD_ATTR: &str = "held";

pub fn held_attr(tt: TicketTypeId) -> String {
    format!("h_{tt}")
}

/// A counter that starts missing (added on first use).
fn count(item: &Item, name: &str) -> Result<u32, StoreError> {
    if item.contains_key(name) {
        number(item, name)
    } else {
        Ok(0)
    }
}

pub fn shard_key(event_id: EventId, index: u16) -> Item {
    [("shard_id".to_owned(), s(format!("{event_id}#{index}")))].into()
}

pub fn shard_item(event_id: EventId, shard: &Shard) -> Item {
    let mut item = shard_key(event_id, shard.index);
    item.insert("event_id".into(), s(event_id.to_string()));
    item.insert("index".into(), n(shard.index));
    item.insert("capacity".into(), n(shard.counters.capacity));
    item.insert("remaining".into(), n(shard.counters.remaining));
    for (tt, slice) in &shard.counters.types {
        item.insert(quota_attr(*tt), n(slice.quota));
        item.insert(remaining_attr(*tt), n(slice.remaining));
    }
    item
}

pub fn shard_from_item(item: &Item) -> Result<Shard, StoreError> {
    let index = number(item, "index")?;
    let mut types: BTreeMap<TicketTypeId, TypeSlice> = BTreeMap::new();
    for name in item.keys() {
        if let Some(raw) = name.strip_prefix("q_") {
            let tt: TicketTypeId = raw
                .parse()
                .map_err(|_| StoreError::corrupt(format!("bad ticket type attribute {name}")))?;
            types.insert(
                tt,
                TypeSlice {
                    quota: number(item, name)?,
                    remaining: number(item, &remaining_attr(tt))?,
                    held: count(item, &held_attr(tt))?,
                    checked_in: count(item, &checked_in_attr(tt))?,
                },
            );
        }
    }
    Ok(Shard {
        index: u16::try_from(index)
            .map_err(|_| StoreError::corrupt(format!("shard index {index}")))?,
        counters: Inventory {
            capacity: number(item, "capacity")?,
            remaining: number(item, "remaining")?,
            held: count(item, HELD_ATTR)?,
            checked_in: count(item, CHECKED_IN_ATTR)?,
            types,
        },
    })
}

/// The shards of one event from their items, in index order.
pub fn shards_from_items(items: &[Item]) -> Result<Vec<Shard>, StoreError> {
    let mut shards = items
        .iter()
        .map(shard_from_item)
        .collect::<Result<Vec<_>, _>>()?;
    shards.sort_by_key(|s| s.index);
    Ok(shards)
}

/// The event-wide counters the port reports.
pub fn total(shards: &[Shard]) -> Inventory {
    Inventory::sum(shards.iter().map(|s| &s.counters))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(capacity: u32, quotas: &[u32]) -> EventSpec {
        EventSpec::sample(capacity, quotas)
    }

    fn shard(index: u16, remaining: u32, types: &[(TicketTypeId, u32)]) -> Shard {
        Shard {
            index,
            counters: Inventory {
                capacity: 10,
                remaining,
                held: 0,
                checked_in: 0,
                types: types
                    .iter()
                    .map(|&(tt, r)| {
                        (
                            tt,
                            TypeSlice {
                                quota: 10,
                                remaining: r,
                                held: 0,
                                checked_in: 0,
                            },
                        )
                    })
                    .collect(),
            },
        }
    }

    #[test]
    fn a_split_keeps_every_seat_and_every_quota() {
        let s = spec(1_001, &[1_001, 7]);
        let shards = split(&s, 4);
        assert_eq!(shards.len(), 4);
        let whole = total(&shards);
        assert_eq!((whole.capacity, whole.remaining), (1_001, 1_001));
        assert_eq!(whole.type_quota(s.ticket_types[0].ticket_type_id), 1_001);
        assert_eq!(whole.type_quota(s.ticket_types[1].ticket_type_id), 7);
        let caps: Vec<u32> = shards.iter().map(|s| s.counters.capacity).collect();
        assert_eq!(caps, [251, 250, 250, 250]);
    }

    #[test]
    fn small_events_get_one_shard_and_huge_ones_a_bounded_number() {
        let per = DEFAULT_SEATS_PER_SHARD;
        assert_eq!(shard_count(50, per), 1);
        assert_eq!(shard_count(1_000, per), 1);
        assert_eq!(shard_count(1_001, per), 2);
        assert_eq!(shard_count(1_000_000, per), MAX_SHARDS);
        assert_eq!(shard_count(50, 13), 4);
        assert_eq!(shard_count(50, 0), MAX_SHARDS);
    }

    #[test]
    fn an_order_goes_to_the_first_shard_from_the_start_that_can_serve_it() {
        let tt = TicketTypeId::generate();
        let shards = [
            shard(0, 5, &[(tt, 5)]),
            shard(1, 1, &[(tt, 1)]),
            shard(2, 5, &[(tt, 5)]),
        ];
        assert_eq!(choose(&shards, tt, 2, 0), Choice::Shard(0));
        assert_eq!(choose(&shards, tt, 2, 1), Choice::Shard(2));
        assert_eq!(choose(&shards, tt, 1, 1), Choice::Shard(1));
        assert_eq!(choose(&shards, tt, 2, 5), Choice::Shard(2));
    }

    #[test]
    fn seats_spread_over_shards_are_consolidated_rather_than_refused() {
        let tt = TicketTypeId::generate();
        let shards = [shard(0, 1, &[(tt, 1)]), shard(1, 2, &[(tt, 2)])];
        assert_eq!(choose(&shards, tt, 3, 0), Choice::Consolidate { into: 1 });
        assert_eq!(choose(&shards, tt, 4, 0), Choice::SoldOut);
    }

    #[test]
    fn a_type_quota_stranded_in_a_full_shard_is_consolidated() {
        let (a, b) = (TicketTypeId::generate(), TicketTypeId::generate());
        // Shard 0 has A's quota but no seats; shard 1 has a seat but no A quota.
        let shards = [
            shard(0, 0, &[(a, 1), (b, 0)]),
            shard(1, 1, &[(a, 0), (b, 1)]),
        ];
        assert_eq!(choose(&shards, a, 1, 0), Choice::Consolidate { into: 1 });
        assert_eq!(choose(&shards, b, 1, 0), Choice::Shard(1));
    }

    #[test]
    fn nothing_left_is_sold_out() {
        let tt = TicketTypeId::generate();
        assert_eq!(
            choose(&[shard(0, 0, &[(tt, 0)])], tt, 1, 0),
            Choice::SoldOut
        );
        assert_eq!(choose(&[], tt, 1, 0), Choice::SoldOut);
        let unknown = TicketTypeId::generate();
        assert_eq!(
            choose(&[shard(0, 5, &[(tt, 5)])], unknown, 1, 0),
            Choice::SoldOut
        );
    }
}
