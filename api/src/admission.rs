//! Admission control: whether a replica takes on one more command, decided
//! before anything is written. Past what the workers can finish within a
//! bound, a new command gets `503` (or `429` for a user with too many
//! waiting) and a `Retry-After` from the measured drain rate; reads,
//! WebSockets and replays of accepted commands are never refused here.
//!
//! What it knows is what this replica accepted and has not yet seen end,
//! per work queue, per event and per user, and how fast those end. With
//! several API replicas behind a balancer each sheds its own share: the
//! ratio of waiting work to drain rate is the same on every replica.
//!
//! The rule, for a command bound for queue `q` (and, for an order, event `e`):
//!
//! 1. a user with `per_user` commands waiting gets `429`;
//! 2. if the oldest waiting command of `q` (of `e`, for an order) has
//!    waited longer than `max_wait`, the line is not moving: `503`;
//! 3. once the drain rate `r` of `q` is established, `503` if the waiting
//!    commands of `q` would take longer than `max_wait` to finish
//!    (`waiting ≥ r × max_wait`), or if those of `e` would take more than
//!    [`EVENT_SHARE`] of it, so that one rush leaves room for other events.
//!
//! The rate counts commands ended per second in seconds when some were
//! waiting; it is established after [`ESTABLISHED_AFTER`] such seconds
//! with an end, so that the start of a rush (nothing ended yet) is judged
//! by age alone and a burst the workers can clear is let in whole.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use axum::http::StatusCode;
use eventsys_messages::{CommandId, EventId, UserId, WorkQueue};

use crate::problem::Problem;

/// The share of the bound one event's orders may fill.
pub const EVENT_SHARE: f64 = 0.75;

/// Seconds with an end before the drain rate is trusted.
pub const ESTABLISHED_AFTER: u32 = 3;

/// A waiting command forgotten after this many times the bound: its end
/// was missed (the replica's feed was down), and a stale entry would shed
/// forever.
const FORGET_AFTER_BOUNDS: u32 = 4;

/// How often a replica that sheds says how much.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// The longest `Retry-After`, in seconds.
const LONGEST_RETRY_AFTER: f64 = 60.0;

/// When a replica stops taking on commands; typed once, in the limits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdmissionRule {
    /// How long the work already accepted may take to finish; zero turns
    /// admission control off.
    pub max_wait: Duration,
    /// Commands one user may have waiting; 0 = no limit.
    pub per_user: u32,
}

impl Default for AdmissionRule {
    fn default() -> Self {
        Self {
            max_wait: Duration::from_secs(20),
            per_user: 20,
        }
    }
}

/// Why a command was not taken on, and when to come back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shed {
    /// The user has too many commands waiting (`429`).
    UserBusy { retry_after: u32 },
    /// The queue (or the event's share of it) is full (`503`).
    Full { retry_after: u32 },
}

impl From<Shed> for Problem {
    fn from(shed: Shed) -> Self {
        let (status, code, detail, retry_after) = match shed {
            Shed::UserBusy { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_waiting",
                "you have too many commands waiting; try again once some have finished",
                retry_after,
            ),
            Shed::Full { retry_after } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "more is waiting than can be finished in time; nothing was recorded, try again after Retry-After seconds with the same Idempotency-Key",
                retry_after,
            ),
        };
        let mut problem = Problem::new(status, code, detail);
        problem.retry_after = Some(retry_after);
        problem
    }
}

/// What this replica accepted and has not yet seen end.
#[derive(Default)]
pub struct Backlog {
    rule: AdmissionRule,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    waiting: HashMap<CommandId, Entry>,
    queues: HashMap<WorkQueue, Flow>,
    /// Per event: when each of its waiting orders was accepted.
    events: HashMap<EventId, BTreeMap<u64, Instant>>,
    users: HashMap<UserId, u32>,
    reported: Option<Instant>,
}

struct Entry {
    seq: u64,
    queue: WorkQueue,
    event: Option<EventId>,
    user: UserId,
}

/// One queue's waiting commands and how fast they end.
struct Flow {
    /// When each waiting command was accepted, oldest first.
    waiting: BTreeMap<u64, Instant>,
    window_from: Instant,
    busy_at_window_start: bool,
    ended_in_window: u32,
    /// Commands ended per second while some were waiting.
    rate: f64,
    /// Seconds with an end that went into `rate`.
    samples: u32,
    shed_in_window: u32,
    /// Refused since the last report: one log line every
    /// [`REPORT_EVERY`], not one per refused request.
    shed_unreported: u64,
    /// Commands refused per second: mostly clients coming back.
    shed_rate: f64,
    /// The `Retry-After` lately given, on average.
    told: f64,
}

impl Default for Flow {
    fn default() -> Self {
        Self {
            waiting: BTreeMap::new(),
            window_from: Instant::now(),
            busy_at_window_start: false,
            ended_in_window: 0,
            rate: 0.0,
            samples: 0,
            shed_in_window: 0,
            shed_unreported: 0,
            shed_rate: 0.0,
            told: 1.0,
        }
    }
}

impl Flow {
    fn oldest(&self) -> Option<Duration> {
        self.waiting.values().next().map(Instant::elapsed)
    }

    /// The drain rate, once enough seconds back it.
    fn established_rate(&self) -> Option<f64> {
        (self.samples >= ESTABLISHED_AFTER).then_some(self.rate)
    }

    /// Closes the measuring window once it is a second old.
    fn roll(&mut self, now: Instant) {
        let elapsed = now.duration_since(self.window_from);
        if elapsed < Duration::from_secs(1) {
            return;
        }
        // A long window means nobody looked for a while: nothing to learn.
        if self.busy_at_window_start && elapsed < Duration::from_secs(3) {
            let sample = f64::from(self.ended_in_window) / elapsed.as_secs_f64();
            if self.ended_in_window > 0 {
                self.rate = if self.samples == 0 {
                    sample
                } else {
                    0.7 * self.rate + 0.3 * sample
                };
                self.samples = self.samples.saturating_add(1);
            } else if self.samples > 0 {
                // Busy and nothing ended: the workers are stuck or gone.
                self.rate *= 0.7;
            }
        }
        let shed = f64::from(self.shed_in_window) / elapsed.as_secs_f64();
        self.shed_rate = if elapsed < Duration::from_secs(3) {
            0.7 * self.shed_rate + 0.3 * shed
        } else {
            shed
        };
        self.window_from = now;
        self.ended_in_window = 0;
        self.shed_in_window = 0;
        self.busy_at_window_start = !self.waiting.is_empty();
    }

    /// Counts a refusal and says when to come back: when enough has ended
    /// that a command is let in again, and, once many are refused, late
    /// enough that the clients coming back are let in at about the rate
    /// the workers finish. Those clients number about the refusals per
    /// second times the `Retry-After` they were given; spreading them over
    /// the time the workers need for them keeps retries from costing more
    /// than the work itself.
    fn refuse(&mut self, rule: &AdmissionRule, waiting: usize) -> u32 {
        self.shed_in_window = self.shed_in_window.saturating_add(1);
        self.shed_unreported += 1;
        let bound = rule.max_wait.as_secs_f64();
        let seconds = match self.established_rate() {
            Some(rate) if rate > 0.0 => {
                let line = (waiting as f64 - rate * bound / 2.0) / rate;
                let crowd = self.shed_rate * self.told / rate;
                line.max(crowd)
            }
            _ => bound / 2.0,
        };
        let seconds = seconds.clamp(1.0, LONGEST_RETRY_AFTER).ceil();
        self.told = 0.9 * self.told + 0.1 * seconds;
        seconds as u32
    }
}

impl Backlog {
    pub fn new(rule: AdmissionRule) -> Self {
        Self {
            rule,
            inner: Mutex::default(),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // Counts stay usable whatever a panicking holder left.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes `command` on if the rule lets it in, counting it as waiting
    /// until [`Self::ended`] or [`Self::forget`].
    pub fn admit(
        &self,
        command: CommandId,
        user: &UserId,
        queue: WorkQueue,
        event: Option<EventId>,
    ) -> Result<(), Shed> {
        let rule = &self.rule;
        let mut inner = self.inner();
        let inner = &mut *inner;
        let now = Instant::now();
        let flow = inner.queues.entry(queue).or_default();
        flow.roll(now);
        if !rule.max_wait.is_zero() {
            let waiting_of_user = inner.users.get(user).copied().unwrap_or(0);
            if rule.per_user > 0 && waiting_of_user >= rule.per_user {
                return Err(Shed::UserBusy {
                    retry_after: flow.refuse(rule, waiting_of_user as usize),
                });
            }
            let bound = rule.max_wait.as_secs_f64();
            let event_line = event.and_then(|e| inner.events.get(&e));
            let oldest = match event_line {
                Some(line) => line.values().next().map(Instant::elapsed),
                None if event.is_some() => None,
                None => flow.oldest(),
            };
            let stuck = oldest.is_some_and(|age| age > rule.max_wait);
            let too_much = flow.established_rate().is_some_and(|rate| {
                let of_event = event_line.map_or(0, BTreeMap::len);
                flow.waiting.len() as f64 >= rate * bound
                    || (event.is_some() && of_event as f64 >= rate * bound * EVENT_SHARE)
            });
            if stuck || too_much {
                let waiting = flow.waiting.len();
                return Err(Shed::Full {
                    retry_after: flow.refuse(rule, waiting),
                });
            }
        }
        let seq = inner.next;
        inner.next += 1;
        flow.waiting.insert(seq, now);
        if let Some(event) = event {
            inner.events.entry(event).or_default().insert(seq, now);
        }
        *inner.users.entry(user.clone()).or_default() += 1;
        inner.waiting.insert(
            command,
            Entry {
                seq,
                queue,
                event,
                user: user.clone(),
            },
        );
        Ok(())
    }

    /// The command ended (its final status was broadcast).
    pub fn ended(&self, command: CommandId) {
        let mut inner = self.inner();
        if let Some(queue) = inner.remove(command) {
            let flow = inner.queues.entry(queue).or_default();
            flow.ended_in_window = flow.ended_in_window.saturating_add(1);
        }
    }

    /// The command was never sent (or was a replay): it waits for nothing.
    pub fn forget(&self, command: CommandId) {
        self.inner().remove(command);
    }

    /// Closes the measuring windows and forgets commands whose end was
    /// missed; called a few times a second.
    pub fn tick(&self) {
        let mut inner = self.inner();
        let now = Instant::now();
        if inner
            .reported
            .is_none_or(|at| now.duration_since(at) >= REPORT_EVERY)
        {
            inner.reported = Some(now);
            let shed: u64 = inner
                .queues
                .values_mut()
                .map(|flow| std::mem::take(&mut flow.shed_unreported))
                .sum();
            if shed > 0 {
                tracing::warn!(
                    shed,
                    waiting = inner.waiting.len(),
                    "full: new commands refused with Retry-After"
                );
            }
        }
        let forget_after = self.rule.max_wait.max(Duration::from_secs(5)) * FORGET_AFTER_BOUNDS;
        let mut missed = HashSet::new();
        for flow in inner.queues.values_mut() {
            flow.roll(now);
            for (seq, at) in &flow.waiting {
                if now.duration_since(*at) <= forget_after {
                    break;
                }
                missed.insert(*seq);
            }
        }
        if missed.is_empty() {
            return;
        }
        let commands: Vec<CommandId> = inner
            .waiting
            .iter()
            .filter(|(_, entry)| missed.contains(&entry.seq))
            .map(|(id, _)| *id)
            .collect();
        for command in commands {
            inner.remove(command);
        }
    }

    /// Whether `command` was taken on here and has not been seen to end:
    /// published with a confirm, so it is in its queue (or being worked).
    pub fn holds(&self, command: CommandId) -> bool {
        self.inner().waiting.contains_key(&command)
    }

    /// How long the slowest queue's waiting commands will take to finish
    /// at its drain rate (zero while the rate is unknown).
    pub fn longest_expected_wait(&self) -> Duration {
        let inner = self.inner();
        let seconds = inner
            .queues
            .values()
            .filter_map(|flow| {
                let rate = flow.established_rate().filter(|r| *r > 0.0)?;
                Some(flow.waiting.len() as f64 / rate)
            })
            .fold(0.0, f64::max);
        Duration::from_secs_f64(seconds.min(3600.0))
    }

    /// Commands waiting on `queue`, and its established drain rate.
    pub fn load(&self, queue: WorkQueue) -> (usize, Option<f64>) {
        let inner = self.inner();
        inner.queues.get(&queue).map_or((0, None), |flow| {
            (flow.waiting.len(), flow.established_rate())
        })
    }
}

impl Inner {
    fn remove(&mut self, command: CommandId) -> Option<WorkQueue> {
        let entry = self.waiting.remove(&command)?;
        if let Some(flow) = self.queues.get_mut(&entry.queue) {
            flow.waiting.remove(&entry.seq);
        }
        if let Some(event) = entry.event
            && let Some(line) = self.events.get_mut(&event)
        {
            line.remove(&entry.seq);
            if line.is_empty() {
                self.events.remove(&event);
            }
        }
        if let Some(count) = self.users.get_mut(&entry.user) {
            *count -= 1;
            if *count == 0 {
                self.users.remove(&entry.user);
            }
        }
        Some(entry.queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserId {
        UserId::parse(name).expect("a user id")
    }

    fn rule(max_wait_ms: u64, per_user: u32) -> AdmissionRule {
        AdmissionRule {
            max_wait: Duration::from_millis(max_wait_ms),
            per_user,
        }
    }

    /// Pretends `flow` drained `rate` commands a second for long enough.
    fn established(backlog: &Backlog, queue: WorkQueue, rate: f64) {
        let mut inner = backlog.inner();
        let flow = inner.queues.entry(queue).or_default();
        flow.rate = rate;
        flow.samples = ESTABLISHED_AFTER;
    }

    #[test]
    fn a_burst_is_let_in_whole_until_the_drain_rate_is_known() {
        let backlog = Backlog::new(rule(10_000, 0));
        for n in 0..5_000 {
            let who = user(&format!("u{n}"));
            let order = Some(EventId::generate());
            assert_eq!(
                backlog.admit(CommandId::generate(), &who, WorkQueue::Ticketing, order),
                Ok(())
            );
        }
        assert_eq!(backlog.load(WorkQueue::Ticketing), (5_000, None));
    }

    #[test]
    fn a_crowd_coming_back_is_told_to_come_back_later() {
        let backlog = Backlog::new(rule(2_000, 0));
        established(&backlog, WorkQueue::Registration, 10.0);
        for n in 0..20 {
            let who = user(&format!("u{n}"));
            let admitted =
                backlog.admit(CommandId::generate(), &who, WorkQueue::Registration, None);
            assert_eq!(admitted, Ok(()));
        }
        let refused = |backlog: &Backlog| match backlog.admit(
            CommandId::generate(),
            &user("late"),
            WorkQueue::Registration,
            None,
        ) {
            Err(Shed::Full { retry_after }) => retry_after,
            other => panic!("{other:?}"),
        };
        assert_eq!(refused(&backlog), 1, "a quiet door: the line's own time");
        // 200 refusals a second told to come back after a second: about 200
        // clients, twenty seconds of work at 10 a second.
        {
            let mut inner = backlog.inner();
            let flow = inner.queues.entry(WorkQueue::Registration).or_default();
            flow.shed_rate = 200.0;
            flow.told = 1.0;
        }
        assert_eq!(refused(&backlog), 20);
    }

    #[test]
    fn past_what_the_rate_can_finish_in_time_commands_are_shed_with_a_retry_after() {
        let backlog = Backlog::new(rule(2_000, 0));
        established(&backlog, WorkQueue::Registration, 10.0);
        let ids: Vec<CommandId> = (0..20).map(|_| CommandId::generate()).collect();
        for (n, id) in ids.iter().enumerate() {
            let who = user(&format!("u{n}"));
            assert_eq!(
                backlog.admit(*id, &who, WorkQueue::Registration, None),
                Ok(())
            );
        }
        // 20 waiting at 10 a second: two seconds of work, the bound.
        let shed = backlog.admit(
            CommandId::generate(),
            &user("late"),
            WorkQueue::Registration,
            None,
        );
        // (20 - 10 × 2 / 2) / 10 = 1 second.
        assert_eq!(shed, Err(Shed::Full { retry_after: 1 }));
        // Another queue is not full.
        assert_eq!(
            backlog.admit(
                CommandId::generate(),
                &user("late"),
                WorkQueue::Notification,
                None
            ),
            Ok(())
        );
        backlog.ended(ids[0]);
        assert_eq!(
            backlog.admit(
                CommandId::generate(),
                &user("late"),
                WorkQueue::Registration,
                None
            ),
            Ok(())
        );
    }

    #[test]
    fn one_events_rush_leaves_room_for_other_events() {
        let backlog = Backlog::new(rule(1_000, 0));
        established(&backlog, WorkQueue::Ticketing, 100.0);
        let hot = EventId::generate();
        let mut taken = 0;
        for n in 0..200 {
            let who = user(&format!("u{n}"));
            if backlog
                .admit(CommandId::generate(), &who, WorkQueue::Ticketing, Some(hot))
                .is_ok()
            {
                taken += 1;
            }
        }
        assert_eq!(taken, 75, "three quarters of 100 a second for one second");
        for n in 0..25 {
            let who = user(&format!("v{n}"));
            let other = Some(EventId::generate());
            assert_eq!(
                backlog.admit(CommandId::generate(), &who, WorkQueue::Ticketing, other),
                Ok(())
            );
        }
        assert!(
            backlog
                .admit(
                    CommandId::generate(),
                    &user("w"),
                    WorkQueue::Ticketing,
                    Some(EventId::generate())
                )
                .is_err(),
            "and the queue as a whole is full"
        );
    }

    #[test]
    fn a_line_that_does_not_move_sheds_even_before_the_rate_is_known() {
        let backlog = Backlog::new(rule(50, 0));
        let event = Some(EventId::generate());
        backlog
            .admit(
                CommandId::generate(),
                &user("a"),
                WorkQueue::Ticketing,
                event,
            )
            .unwrap();
        std::thread::sleep(Duration::from_millis(80));
        assert!(matches!(
            backlog.admit(
                CommandId::generate(),
                &user("b"),
                WorkQueue::Ticketing,
                event
            ),
            Err(Shed::Full { .. })
        ));
        // An order for another event is judged by its own line.
        assert_eq!(
            backlog.admit(
                CommandId::generate(),
                &user("b"),
                WorkQueue::Ticketing,
                Some(EventId::generate())
            ),
            Ok(())
        );
    }

    #[test]
    fn a_user_with_too_many_waiting_gets_429_and_others_do_not() {
        let backlog = Backlog::new(rule(10_000, 2));
        let ann = user("ann");
        let first = CommandId::generate();
        for id in [first, CommandId::generate()] {
            backlog
                .admit(id, &ann, WorkQueue::Notification, None)
                .unwrap();
        }
        assert!(matches!(
            backlog.admit(CommandId::generate(), &ann, WorkQueue::Notification, None),
            Err(Shed::UserBusy { .. })
        ));
        assert_eq!(
            backlog.admit(
                CommandId::generate(),
                &user("bob"),
                WorkQueue::Notification,
                None
            ),
            Ok(())
        );
        backlog.forget(first);
        assert_eq!(
            backlog.admit(CommandId::generate(), &ann, WorkQueue::Notification, None),
            Ok(())
        );
    }

    #[test]
    fn a_zero_bound_admits_everything() {
        let backlog = Backlog::new(rule(0, 1));
        established(&backlog, WorkQueue::Ticketing, 0.0);
        for _ in 0..100 {
            assert_eq!(
                backlog.admit(
                    CommandId::generate(),
                    &user("ann"),
                    WorkQueue::Ticketing,
                    None
                ),
                Ok(())
            );
        }
    }

    #[test]
    fn the_rate_is_learned_from_busy_seconds_and_falls_when_nothing_ends() {
        let mut flow = Flow::default();
        let start = Instant::now();
        flow.waiting.insert(0, start);
        flow.roll(start + Duration::from_secs(1));
        for second in 2..=4 {
            flow.ended_in_window = 50;
            flow.roll(start + Duration::from_secs(second));
        }
        assert_eq!(flow.established_rate(), Some(50.0));
        flow.roll(start + Duration::from_secs(5));
        assert_eq!(flow.established_rate(), Some(35.0));
        // An idle queue teaches nothing.
        flow.waiting.clear();
        flow.roll(start + Duration::from_secs(6));
        flow.roll(start + Duration::from_secs(7));
        assert_eq!(flow.established_rate().map(|r| r.round()), Some(25.0));
        flow.roll(start + Duration::from_secs(8));
        assert_eq!(flow.established_rate().map(|r| r.round()), Some(25.0));
    }
}
