//! What is left of an event: its capacity and each ticket type's quota, and
//! how much of each remains.
//!
//! This is the port's view, the same for every adapter. How an adapter lays
//! the counters out (one record, or several items spread over partitions)
//! is its own decision and stays behind the port.

use std::collections::BTreeMap;

use eventsys_messages::{EventSpec, TicketTypeId};
use serde::{Deserialize, Serialize};

/// One ticket type's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeSlice {
    pub quota: u32,
    pub remaining: u32,
    /// Seats of this type in holds waiting for payment.
    #[serde(default)]
    pub held: u32,
    /// Tickets of this type admitted at the door.
    #[serde(default)]
    pub checked_in: u32,
}

/// An event's counters: two levels, the capacity and each type's quota;
/// a seat sold takes one from both.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub capacity: u32,
    pub remaining: u32,
    /// Seats in holds waiting for payment: neither sold nor for sale.
    #[serde(default)]
    pub held: u32,
    /// Tickets admitted at the door.
    #[serde(default)]
    pub checked_in: u32,
    pub types: BTreeMap<TicketTypeId, TypeSlice>,
}

impl Inventory {
    /// A new event's counters: nothing sold.
    pub fn initial(spec: &EventSpec) -> Self {
        Self {
            capacity: spec.capacity,
            remaining: spec.capacity,
            held: 0,
            checked_in: 0,
            types: spec
                .ticket_types
                .iter()
                .map(|tt| {
                    let slice = TypeSlice {
                        quota: tt.quota,
                        remaining: tt.quota,
                        held: 0,
                        checked_in: 0,
                    };
                    (tt.ticket_type_id, slice)
                })
                .collect(),
        }
    }

    /// The counters of several parts, added up.
    pub fn sum<'a>(parts: impl IntoIterator<Item = &'a Inventory>) -> Self {
        let mut total = Self::default();
        for part in parts {
            total.capacity += part.capacity;
            total.remaining += part.remaining;
            total.held += part.held;
            total.checked_in += part.checked_in;
            for (tt, slice) in &part.types {
                let sum = total.types.entry(*tt).or_default();
                sum.quota += slice.quota;
                sum.remaining += slice.remaining;
                sum.held += slice.held;
                sum.checked_in += slice.checked_in;
            }
        }
        total
    }

    /// Whether these counters alone can serve `quantity` seats of `ticket_type`.
    pub fn can_serve(&self, ticket_type: TicketTypeId, quantity: u32) -> bool {
        self.remaining >= quantity
            && self
                .types
                .get(&ticket_type)
                .is_some_and(|slice| slice.remaining >= quantity)
    }

    /// Takes `quantity` seats of `ticket_type`, if they are there: sold,
    /// or only held when `hold`.
    pub fn take(&mut self, ticket_type: TicketTypeId, quantity: u32, hold: bool) -> bool {
        if !self.can_serve(ticket_type, quantity) {
            return false;
        }
        let held = if hold { quantity } else { 0 };
        self.remaining -= quantity;
        self.held += held;
        if let Some(slice) = self.types.get_mut(&ticket_type) {
            slice.remaining -= quantity;
            slice.held += held;
        }
        true
    }

    /// Held seats become sold.
    pub fn settle(&mut self, ticket_type: TicketTypeId, quantity: u32) {
        self.held = self.held.saturating_sub(quantity);
        if let Some(slice) = self.types.get_mut(&ticket_type) {
            slice.held = slice.held.saturating_sub(quantity);
        }
    }

    /// Seats come back for sale: from a hold (`held`) or a sale.
    pub fn release(&mut self, ticket_type: TicketTypeId, quantity: u32, held: bool) {
        if held {
            self.settle(ticket_type, quantity);
        }
        self.remaining += quantity;
        if let Some(slice) = self.types.get_mut(&ticket_type) {
            slice.remaining += quantity;
        }
    }

    /// Applies a revision, if there are enough unsold seats for each
    /// decrease; changes nothing otherwise.
    pub fn revise(&mut self, revision: &crate::Revision) -> bool {
        let fits = |remaining: u32, delta: i64| i64::from(remaining) + delta >= 0;
        let types_fit = revision
            .quotas
            .iter()
            .all(|(tt, delta)| fits(self.types.get(tt).map_or(0, |s| s.remaining), *delta));
        if !fits(self.remaining, revision.capacity) || !types_fit {
            return false;
        }
        let shift = |value: u32, delta: i64| u32::try_from(i64::from(value) + delta).unwrap_or(0);
        self.capacity = shift(self.capacity, revision.capacity);
        self.remaining = shift(self.remaining, revision.capacity);
        for (tt, delta) in &revision.quotas {
            let slice = self.types.entry(*tt).or_default();
            slice.quota = shift(slice.quota, *delta);
            slice.remaining = shift(slice.remaining, *delta);
        }
        true
    }

    /// Counts one admission of a ticket of `ticket_type`.
    pub fn admit(&mut self, ticket_type: TicketTypeId) {
        self.checked_in += 1;
        self.types.entry(ticket_type).or_default().checked_in += 1;
    }

    pub fn type_checked_in(&self, ticket_type: TicketTypeId) -> u32 {
        self.types.get(&ticket_type).map_or(0, |s| s.checked_in)
    }

    pub fn sold(&self) -> u32 {
        self.capacity - self.remaining - self.held
    }

    pub fn type_quota(&self, ticket_type: TicketTypeId) -> u32 {
        self.types.get(&ticket_type).map_or(0, |s| s.quota)
    }

    /// What can still be sold of one type: bounded by its own quota and by
    /// the seats left overall.
    pub fn type_remaining(&self, ticket_type: TicketTypeId) -> u32 {
        self.types
            .get(&ticket_type)
            .map_or(0, |s| s.remaining.min(self.remaining))
    }

    pub fn type_sold(&self, ticket_type: TicketTypeId) -> u32 {
        self.types
            .get(&ticket_type)
            .map_or(0, |s| s.quota - s.remaining - s.held)
    }

    pub fn type_held(&self, ticket_type: TicketTypeId) -> u32 {
        self.types.get(&ticket_type).map_or(0, |s| s.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(capacity: u32, quotas: &[u32]) -> EventSpec {
        EventSpec::sample(capacity, quotas)
    }

    #[test]
    fn a_type_cannot_sell_more_than_the_seats_left() {
        let s = spec(10, &[10, 10]);
        let (a, b) = (
            s.ticket_types[0].ticket_type_id,
            s.ticket_types[1].ticket_type_id,
        );
        let mut inv = Inventory::initial(&s);
        assert!(inv.take(a, 7, false));
        assert_eq!(inv.type_remaining(a), 3);
        assert_eq!(inv.type_remaining(b), 3);
        assert_eq!(inv.type_sold(a), 7);
        assert_eq!(inv.sold(), 7);
        assert!(inv.can_serve(b, 3));
        assert!(!inv.take(b, 4, false));
        assert_eq!(inv.remaining, 3, "a refused take changes nothing");
    }

    #[test]
    fn parts_add_up_to_the_whole() {
        let s = spec(10, &[6]);
        let tt = s.ticket_types[0].ticket_type_id;
        let (mut a, b) = (Inventory::initial(&s), Inventory::initial(&s));
        assert!(a.take(tt, 2, false));
        let total = Inventory::sum([&a, &b]);
        assert_eq!((total.capacity, total.remaining), (20, 18));
        assert_eq!((total.type_quota(tt), total.type_sold(tt)), (12, 2));
        assert_eq!(total.type_remaining(TicketTypeId::generate()), 0);
    }
}
