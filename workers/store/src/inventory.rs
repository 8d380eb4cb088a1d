//! How an event's seats are laid out in the store.
//!
//! A hot event's inventory must not be one item that every order fights
//! over: DynamoDB serves about a thousand writes a second per partition. So
//! the capacity, and each ticket type's quota, is split over `shards` items
//! with their own partition keys. An order takes all its seats from one
//! shard, under a condition on that shard alone; shards that run dry hand
//! their leftovers to another shard (see the ticketing worker).

use std::collections::BTreeMap;

use eventsys_messages::{EventSpec, TicketTypeId, spec::INVENTORY_SHARDS_MAX};
use serde::{Deserialize, Serialize};

/// One ticket type's part of a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeSlice {
    pub quota: u32,
    pub remaining: u32,
}

/// One item of an event's inventory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u16,
    pub capacity: u32,
    pub remaining: u32,
    pub types: BTreeMap<TicketTypeId, TypeSlice>,
}

impl Shard {
    /// Whether this shard alone can serve `quantity` seats of `ticket_type`.
    pub fn can_serve(&self, ticket_type: TicketTypeId, quantity: u32) -> bool {
        self.remaining >= quantity
            && self
                .types
                .get(&ticket_type)
                .is_some_and(|slice| slice.remaining >= quantity)
    }
}

/// All shards of one event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    pub shards: Vec<Shard>,
}

impl Inventory {
    /// Seats per shard the default layout aims for: far below what one
    /// partition can absorb during a rush, far above what a small event needs.
    const SEATS_PER_SHARD: u32 = 1_000;

    /// How many shards an event gets when its organizer does not say.
    pub fn default_shards(capacity: u32) -> u16 {
        let wanted = capacity.div_ceil(Self::SEATS_PER_SHARD).max(1);
        u16::try_from(wanted)
            .unwrap_or(u16::MAX)
            .min(INVENTORY_SHARDS_MAX)
    }

    /// The initial inventory: capacity and quotas spread evenly over `shards`.
    pub fn split(spec: &EventSpec, shards: u16) -> Self {
        let shards = shards.max(1);
        let share = |total: u32, i: u16| {
            let parts = u32::from(shards);
            total / parts + u32::from(u32::from(i) < total % parts)
        };
        Self {
            shards: (0..shards)
                .map(|i| Shard {
                    index: i,
                    capacity: share(spec.capacity, i),
                    remaining: share(spec.capacity, i),
                    types: spec
                        .ticket_types
                        .iter()
                        .map(|tt| {
                            let quota = share(tt.quota, i);
                            (
                                tt.ticket_type_id,
                                TypeSlice {
                                    quota,
                                    remaining: quota,
                                },
                            )
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    pub fn capacity(&self) -> u32 {
        self.shards.iter().map(|s| s.capacity).sum()
    }

    pub fn remaining(&self) -> u32 {
        self.shards.iter().map(|s| s.remaining).sum()
    }

    pub fn sold(&self) -> u32 {
        self.capacity() - self.remaining()
    }

    pub fn type_quota(&self, ticket_type: TicketTypeId) -> u32 {
        self.slices(ticket_type).map(|s| s.quota).sum()
    }

    /// What can still be sold of one type: bounded by its own quota and by
    /// the seats left overall.
    pub fn type_remaining(&self, ticket_type: TicketTypeId) -> u32 {
        let own: u32 = self.slices(ticket_type).map(|s| s.remaining).sum();
        own.min(self.remaining())
    }

    pub fn type_sold(&self, ticket_type: TicketTypeId) -> u32 {
        self.slices(ticket_type)
            .map(|s| s.quota - s.remaining)
            .sum()
    }

    fn slices(&self, ticket_type: TicketTypeId) -> impl Iterator<Item = &TypeSlice> {
        self.shards
            .iter()
            .filter_map(move |s| s.types.get(&ticket_type))
    }
}

#[cfg(test)]
mod tests {
    use eventsys_messages::{EventStatus, TicketTypeSpec};

    use super::*;

    fn spec(capacity: u32, quotas: &[u32]) -> EventSpec {
        EventSpec {
            name: "n".into(),
            description: String::new(),
            venue: "v".into(),
            starts_at: "2030-01-01T18:00:00Z".parse().unwrap(),
            ends_at: "2030-01-01T22:00:00Z".parse().unwrap(),
            capacity,
            max_per_order: 10,
            status: EventStatus::Published,
            ticket_types: quotas
                .iter()
                .map(|&quota| TicketTypeSpec {
                    ticket_type_id: TicketTypeId::generate(),
                    name: format!("t{quota}"),
                    price_minor: 0,
                    currency: "EUR".into(),
                    quota,
                })
                .collect(),
            inventory_shards: None,
        }
    }

    #[test]
    fn a_split_keeps_every_seat_and_every_quota() {
        let s = spec(1_001, &[1_001, 7]);
        let inv = Inventory::split(&s, 4);
        assert_eq!(inv.shards.len(), 4);
        assert_eq!(inv.capacity(), 1_001);
        assert_eq!(inv.remaining(), 1_001);
        assert_eq!(inv.type_quota(s.ticket_types[0].ticket_type_id), 1_001);
        assert_eq!(inv.type_quota(s.ticket_types[1].ticket_type_id), 7);
        let caps: Vec<u32> = inv.shards.iter().map(|s| s.capacity).collect();
        assert_eq!(caps, [251, 250, 250, 250]);
    }

    #[test]
    fn a_type_cannot_sell_more_than_the_seats_left() {
        let s = spec(10, &[10, 10]);
        let mut inv = Inventory::split(&s, 1);
        let (a, b) = (
            s.ticket_types[0].ticket_type_id,
            s.ticket_types[1].ticket_type_id,
        );
        inv.shards[0].remaining = 3;
        inv.shards[0].types.get_mut(&a).unwrap().remaining = 3;
        assert_eq!(inv.type_remaining(a), 3);
        assert_eq!(inv.type_remaining(b), 3);
        assert_eq!(inv.type_sold(a), 7);
        assert!(inv.shards[0].can_serve(b, 3));
        assert!(!inv.shards[0].can_serve(b, 4));
    }

    #[test]
    fn small_events_get_one_shard_and_huge_ones_a_bounded_number() {
        assert_eq!(Inventory::default_shards(50), 1);
        assert_eq!(Inventory::default_shards(1_000), 1);
        assert_eq!(Inventory::default_shards(1_001), 2);
        assert_eq!(Inventory::default_shards(1_000_000), INVENTORY_SHARDS_MAX);
    }
}
