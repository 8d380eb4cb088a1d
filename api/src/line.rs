//! The line buyers see in a rush: each accepted order's place among its
//! event's orders still waiting, pushed over the WebSocket while it moves
//! (`queue.position`) and readable on the command (`queue_position`), so
//! that a rush feels like a line, not a spinner.
//!
//! Admission stays first come, first served: the line only reports it. An
//! order joins when this replica accepts it and leaves when a worker starts
//! on it or it ends; its place is 1 + the orders accepted before it for the
//! same event that have not left. Each replica knows the orders it accepted
//! itself, so with several API replicas behind a balancer the place counts
//! this replica's share of the line: exact with one replica (the embedded
//! mode), an estimate otherwise.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use eventsys_messages::{CommandId, EventId, UserId};
use serde::Serialize;

/// An order this long in the line is dropped from it: its outcome was
/// missed, and a stale place is worse than none.
const LONGEST_WAIT: Duration = Duration::from_secs(600);

/// A `queue.position` frame: the order's place, 1 meaning next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Place {
    pub command_id: CommandId,
    pub event_id: EventId,
    pub position: usize,
}

struct Waiting {
    command: CommandId,
    user: UserId,
    joined: Instant,
    /// Its place when the line was last walked; counting afresh on every
    /// read would cost a walk of the line per status poll in a rush.
    place: usize,
    /// The place last pushed to its buyer.
    told: Option<usize>,
}

#[derive(Default)]
struct Lines {
    next: u64,
    by_event: HashMap<EventId, BTreeMap<u64, Waiting>>,
    by_command: HashMap<CommandId, (EventId, u64)>,
}

impl Lines {
    fn remove(&mut self, command: CommandId) {
        let Some((event, seq)) = self.by_command.remove(&command) else {
            return;
        };
        if let Some(line) = self.by_event.get_mut(&event) {
            line.remove(&seq);
            if line.is_empty() {
                self.by_event.remove(&event);
            }
        }
    }
}

#[derive(Default)]
pub struct Line {
    lines: Mutex<Lines>,
}

impl Line {
    fn lines(&self) -> MutexGuard<'_, Lines> {
        // The maps stay consistent whatever a panicking holder left.
        self.lines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Puts an accepted order at the end of its event's line.
    pub fn join(&self, event: EventId, command: CommandId, user: UserId) {
        let mut lines = self.lines();
        let seq = lines.next;
        lines.next += 1;
        lines.by_command.insert(command, (event, seq));
        let line = lines.by_event.entry(event).or_default();
        let place = line.len() + 1;
        line.insert(
            seq,
            Waiting {
                command,
                user,
                joined: Instant::now(),
                place,
                told: None,
            },
        );
    }

    /// Takes an order out of the line: a worker started on it, it ended, or
    /// it was never sent.
    pub fn leave(&self, command: CommandId) {
        self.lines().remove(command);
    }

    /// The order's place in its event's line, if it is in one, as of the
    /// last time places were told (a fraction of a second ago).
    pub fn position(&self, command: CommandId) -> Option<usize> {
        let lines = self.lines();
        let (event, seq) = lines.by_command.get(&command)?;
        Some(lines.by_event.get(event)?.get(seq)?.place)
    }

    /// The places that changed since they were last told, with whom to
    /// tell; forgets orders that waited longer than anyone should.
    pub fn moves(&self) -> Vec<(UserId, Place)> {
        let mut lines = self.lines();
        let lines = &mut *lines;
        let mut moves = Vec::new();
        let mut expired = Vec::new();
        for (event, line) in &mut lines.by_event {
            let mut position = 0;
            for waiting in line.values_mut() {
                if waiting.joined.elapsed() > LONGEST_WAIT {
                    expired.push(waiting.command);
                    continue;
                }
                position += 1;
                waiting.place = position;
                if waiting.told != Some(position) {
                    waiting.told = Some(position);
                    let place = Place {
                        command_id: waiting.command,
                        event_id: *event,
                        position,
                    };
                    moves.push((waiting.user.clone(), place));
                }
            }
        }
        for command in expired {
            lines.remove(command);
        }
        moves
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserId {
        UserId::parse(name).expect("a user id")
    }

    #[test]
    fn places_move_up_as_orders_ahead_leave_and_are_told_once() {
        let line = Line::default();
        let event = EventId::generate();
        let other = EventId::generate();
        let orders: Vec<CommandId> = (0..3).map(|_| CommandId::generate()).collect();
        for (i, command) in orders.iter().enumerate() {
            line.join(event, *command, user(&format!("buyer-{i}")));
        }
        let elsewhere = CommandId::generate();
        line.join(other, elsewhere, user("buyer-9"));

        let told: Vec<usize> = line.moves().iter().map(|(_, p)| p.position).collect();
        assert_eq!(told.len(), 4);
        assert_eq!(line.position(orders[2]), Some(3));
        assert_eq!(line.position(elsewhere), Some(1), "lines are per event");
        assert!(line.moves().is_empty(), "nothing moved, nothing told");

        line.leave(orders[0]);
        let moved = line.moves();
        let places: Vec<(String, usize)> = moved
            .iter()
            .map(|(u, p)| (u.to_string(), p.position))
            .collect();
        assert_eq!(
            places,
            vec![("buyer-1".into(), 1), ("buyer-2".into(), 2)],
            "only those who moved are told"
        );
        line.leave(orders[1]);
        line.leave(orders[2]);
        assert_eq!(line.position(orders[2]), None);
        line.leave(orders[2]);
        assert_eq!(line.position(elsewhere), Some(1));
    }
}
