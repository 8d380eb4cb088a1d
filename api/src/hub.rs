//! The broadcaster: this replica's fan-out of events to its own WebSocket
//! connections and to requests waiting for a command (`Prefer: wait`).
//!
//! Each API replica consumes `eventsys.events` through its own exclusive
//! queue ([`run_broadcaster`]) and hands every event to the [`Hub`], which
//! knows only the connections of this replica. A client whose buffer is
//! full is dropped rather than allowed to slow anyone else down, and
//! [`HubLimits`] bound what one user, and everyone together, may hold open.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use eventsys_bus::Bus;
use eventsys_messages::{
    CommandId, Event, EventEnvelope, EventId, Notification, TicketId, Timestamp, UserId,
    event::{CommandUpdated, EventUpdated, WaitlistMoved},
    topology::BROADCAST_PATTERNS,
};
use eventsys_telemetry::{metrics, trace};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{
    admission::{AdmissionRule, Backlog},
    line::{Line, Place},
};

/// Frames buffered per connection before it counts as too slow.
const CLIENT_BUFFER: usize = 256;

pub type ConnectionId = u64;

/// What one replica holds open at most.
#[derive(Clone, Copy, Debug)]
pub struct HubLimits {
    pub connections_per_user: usize,
    pub connections: usize,
    pub subscriptions_per_connection: usize,
}

impl Default for HubLimits {
    fn default() -> Self {
        Self {
            connections_per_user: 16,
            connections: 10_000,
            subscriptions_per_connection: 100,
        }
    }
}

/// Why the hub will not take one more connection.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Crowded {
    #[error("this user already has {0} live connections open")]
    User(usize),
    #[error("this server already holds {0} live connections")]
    Replica(usize),
}

/// A request waiting for its command to finish. Dropping it (the answer
/// went out, or the request failed on the way) leaves the hub, so no
/// waiter outlives its request.
pub struct Waiter {
    finished: Option<oneshot::Receiver<()>>,
    command: CommandId,
    hub: Arc<Hub>,
}

impl Waiter {
    /// Resolves when the command reaches a terminal status (`true`), or
    /// when the hub can no longer tell (`false`).
    pub async fn finished(&mut self) -> bool {
        match self.finished.as_mut() {
            Some(finished) => finished.await.is_ok(),
            None => false,
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        // Close our end first, so that the hub sees it closed.
        self.finished = None;
        self.hub.stop_waiting(self.command);
    }
}

/// A live connection as the hub sees it. Dropping it leaves the hub, so a
/// connection whose upgrade never completes still gives its place back.
pub struct Connection {
    pub id: ConnectionId,
    pub frames: mpsc::Receiver<String>,
    /// Cancelled when the hub drops the connection for being too slow.
    pub dropped: CancellationToken,
    user: UserId,
    hub: Arc<Hub>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.hub.disconnect(&self.user, self.id);
    }
}

struct Client {
    frames: mpsc::Sender<String>,
    dropped: CancellationToken,
    subscriptions: HashSet<EventId>,
    /// The subscribed events whose door this client may work (organizer,
    /// granted staff): it also sees their counts and every check-in.
    doors: HashSet<EventId>,
}

#[derive(Default)]
struct Routes {
    by_user: HashMap<UserId, HashMap<ConnectionId, Client>>,
    /// Connections across every user.
    open: usize,
    by_event: HashMap<EventId, HashSet<(UserId, ConnectionId)>>,
    waiters: HashMap<CommandId, Vec<oneshot::Sender<()>>>,
}

#[derive(Default)]
pub struct Hub {
    routes: Mutex<Routes>,
    next_id: AtomicU64,
    limits: HubLimits,
    line: Line,
    backlog: Backlog,
}

/// How often waiting buyers hear their place in the line, when it moved.
pub const PLACES_EVERY: Duration = Duration::from_millis(500);

impl Hub {
    fn routes(&self) -> MutexGuard<'_, Routes> {
        // A panic while holding the lock leaves routes that are still sound.
        self.routes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn new(limits: HubLimits, admission: AdmissionRule) -> Self {
        Self {
            limits,
            backlog: Backlog::new(admission),
            ..Self::default()
        }
    }

    /// Opens a connection for `user`, unless they, or this replica, already
    /// hold as many as allowed.
    pub fn connect(self: &Arc<Self>, user: &UserId) -> Result<Connection, Crowded> {
        let mut routes = self.routes();
        let mine = routes.by_user.get(user).map_or(0, HashMap::len);
        if mine >= self.limits.connections_per_user {
            return Err(Crowded::User(mine));
        }
        if routes.open >= self.limits.connections {
            return Err(Crowded::Replica(routes.open));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(CLIENT_BUFFER);
        let dropped = CancellationToken::new();
        let client = Client {
            frames: tx,
            dropped: dropped.clone(),
            subscriptions: HashSet::new(),
            doors: HashSet::new(),
        };
        routes
            .by_user
            .entry(user.clone())
            .or_default()
            .insert(id, client);
        routes.open += 1;
        Ok(Connection {
            id,
            frames: rx,
            dropped,
            user: user.clone(),
            hub: Arc::clone(self),
        })
    }

    fn disconnect(&self, user: &UserId, id: ConnectionId) {
        remove(&mut self.routes(), user, id);
    }

    /// Subscribes a connection to an event; `door` when its user may work
    /// the event's door. False when the connection already follows as many
    /// events as it may (or is gone).
    pub fn subscribe(&self, user: &UserId, id: ConnectionId, event: EventId, door: bool) -> bool {
        let mut routes = self.routes();
        let Some(client) = routes.by_user.get_mut(user).and_then(|c| c.get_mut(&id)) else {
            return false;
        };
        let full = client.subscriptions.len() >= self.limits.subscriptions_per_connection;
        if full && !client.subscriptions.contains(&event) {
            return false;
        }
        client.subscriptions.insert(event);
        if door {
            client.doors.insert(event);
        } else {
            client.doors.remove(&event);
        }
        routes
            .by_event
            .entry(event)
            .or_default()
            .insert((user.clone(), id));
        true
    }

    pub fn limits(&self) -> HubLimits {
        self.limits
    }

    pub fn unsubscribe(&self, user: &UserId, id: ConnectionId, event: EventId) {
        let mut routes = self.routes();
        if let Some(client) = routes.by_user.get_mut(user).and_then(|c| c.get_mut(&id)) {
            client.subscriptions.remove(&event);
            client.doors.remove(&event);
        }
        unlink(&mut routes, event, user, id);
    }

    /// Resolves when `command` reaches a terminal status (as far as this
    /// replica hears of it).
    pub fn wait_for(self: &Arc<Self>, command: CommandId) -> Waiter {
        let (tx, rx) = oneshot::channel();
        self.routes().waiters.entry(command).or_default().push(tx);
        Waiter {
            finished: Some(rx),
            command,
            hub: self.clone(),
        }
    }

    /// Forgets waiters whose requests gave up.
    fn stop_waiting(&self, command: CommandId) {
        let mut routes = self.routes();
        if let Some(waiters) = routes.waiters.get_mut(&command) {
            waiters.retain(|w| !w.is_closed());
            if waiters.is_empty() {
                routes.waiters.remove(&command);
            }
        }
    }

    pub fn connections(&self) -> usize {
        self.routes().open
    }

    /// What this replica accepted and has not seen end, for admission.
    pub fn backlog(&self) -> &Backlog {
        &self.backlog
    }

    /// The line of accepted orders this replica keeps (see [`Line`]).
    pub fn line(&self) -> &Line {
        &self.line
    }

    /// Pushes each waiting order's place to its buyer, where it moved.
    pub fn tell_places(&self) {
        let moves = self.line.moves();
        if moves.is_empty() {
            return;
        }
        let mut routes = self.routes();
        for (user, place) in &moves {
            let frame = Frame::QueuePosition(place).to_text();
            send_to_user(&mut routes, user, &frame);
        }
    }

    /// Routes one event to whoever should see it.
    pub fn dispatch(&self, envelope: &EventEnvelope) {
        let mut routes = self.routes();
        match &envelope.event {
            Event::CommandUpdated(update) => {
                // A worker has it: it is no longer waiting in line.
                self.line.leave(update.command_id);
                let frame = Frame::CommandUpdated(update).to_text();
                send_to_user(&mut routes, &update.user_id, &frame);
                if update.status.is_terminal() {
                    self.backlog.ended(update.command_id);
                    for waiter in routes
                        .waiters
                        .remove(&update.command_id)
                        .unwrap_or_default()
                    {
                        let _ = waiter.send(());
                    }
                }
            }
            Event::NotificationCreated(n) => {
                let frame = Frame::Notification(n).to_text();
                send_to_user(&mut routes, &n.user_id, &frame);
            }
            Event::EventUpdated(update) => {
                let full = Frame::EventUpdated(update).to_text();
                let public = Frame::EventUpdated(&EventUpdated {
                    counts: None,
                    ..update.clone()
                })
                .to_text();
                for (user, id, door) in subscribers(&routes, update.event_id) {
                    send(&mut routes, &user, id, if door { &full } else { &public });
                }
            }
            Event::WaitlistMoved(moved) => {
                let frame = Frame::WaitlistMoved(moved).to_text();
                for (user, id, _) in subscribers(&routes, moved.event_id) {
                    send(&mut routes, &user, id, &frame);
                }
            }
            Event::TicketCheckedIn(admitted) => {
                let frame = Frame::CheckedIn(admitted.into()).to_text();
                for (user, id, door) in subscribers(&routes, admitted.event_id) {
                    if door {
                        send(&mut routes, &user, id, &frame);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Who is subscribed to `event`, and whether each may work its door.
fn subscribers(routes: &Routes, event: EventId) -> Vec<(UserId, ConnectionId, bool)> {
    routes
        .by_event
        .get(&event)
        .into_iter()
        .flatten()
        .map(|(user, id)| {
            let door = routes
                .by_user
                .get(user)
                .and_then(|c| c.get(id))
                .is_some_and(|c| c.doors.contains(&event));
            (user.clone(), *id, door)
        })
        .collect()
}

/// A check-in as the event's doors see it: no holder.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct CheckedInFrame<'a> {
    ticket_id: TicketId,
    event_id: EventId,
    checked_in_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    gate: Option<&'a str>,
}

impl<'a> From<&'a eventsys_messages::event::TicketCheckedIn> for CheckedInFrame<'a> {
    fn from(admitted: &'a eventsys_messages::event::TicketCheckedIn) -> Self {
        Self {
            ticket_id: admitted.ticket_id,
            event_id: admitted.event_id,
            checked_in_at: admitted.checked_in_at,
            gate: admitted.gate.as_deref(),
        }
    }
}

/// What a WebSocket client receives: the messages' own shapes, tagged
/// with the frame's `type`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(tag = "type")]
pub(crate) enum Frame<'a> {
    #[serde(rename = "command.updated")]
    CommandUpdated(&'a CommandUpdated),
    #[serde(rename = "notification")]
    Notification(&'a Notification),
    #[serde(rename = "event.updated")]
    EventUpdated(&'a EventUpdated),
    #[serde(rename = "ticket.checked_in")]
    CheckedIn(CheckedInFrame<'a>),
    #[serde(rename = "waitlist.moved")]
    WaitlistMoved(&'a WaitlistMoved),
    #[serde(rename = "queue.position")]
    QueuePosition(&'a Place),
}

impl Frame<'_> {
    fn to_text(&self) -> String {
        // Structs of ids, strings, numbers and enums always serialize.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// One frame of every type, as clients receive them (for the AsyncAPI
/// document's test).
#[cfg(test)]
pub(crate) fn every_frame(
    updated: &CommandUpdated,
    note: &Notification,
    changed: &EventUpdated,
    moved: &WaitlistMoved,
    place: &Place,
    checked_in: &eventsys_messages::event::TicketCheckedIn,
) -> Vec<serde_json::Value> {
    let frames = [
        Frame::CommandUpdated(updated),
        Frame::Notification(note),
        Frame::EventUpdated(changed),
        Frame::CheckedIn(checked_in.into()),
        Frame::WaitlistMoved(moved),
        Frame::QueuePosition(place),
    ];
    frames
        .iter()
        .map(|frame| {
            match frame {
                Frame::CommandUpdated(_)
                | Frame::Notification(_)
                | Frame::EventUpdated(_)
                | Frame::CheckedIn(_)
                | Frame::WaitlistMoved(_)
                | Frame::QueuePosition(_) => {}
            }
            serde_json::from_str(&frame.to_text()).unwrap_or_default()
        })
        .collect()
}

fn send_to_user(routes: &mut Routes, user: &UserId, frame: &str) {
    let ids: Vec<ConnectionId> = routes
        .by_user
        .get(user)
        .map(|c| c.keys().copied().collect())
        .unwrap_or_default();
    for id in ids {
        send(routes, user, id, frame);
    }
}

fn send(routes: &mut Routes, user: &UserId, id: ConnectionId, frame: &str) {
    let Some(client) = routes.by_user.get(user).and_then(|c| c.get(&id)) else {
        return;
    };
    if let Err(err) = client.frames.try_send(frame.to_owned()) {
        if matches!(err, mpsc::error::TrySendError::Full(_)) {
            metrics::websocket_frame("dropped");
            tracing::info!(%user, connection = id, "dropping a client that does not keep up");
        }
        remove(routes, user, id);
    }
}

fn remove(routes: &mut Routes, user: &UserId, id: ConnectionId) {
    let Some(clients) = routes.by_user.get_mut(user) else {
        return;
    };
    let Some(client) = clients.remove(&id) else {
        return;
    };
    if clients.is_empty() {
        routes.by_user.remove(user);
    }
    routes.open -= 1;
    client.dropped.cancel();
    for event in client.subscriptions {
        unlink(routes, event, user, id);
    }
}

fn unlink(routes: &mut Routes, event: EventId, user: &UserId, id: ConnectionId) {
    if let Some(subscribers) = routes.by_event.get_mut(&event) {
        subscribers.remove(&(user.clone(), id));
        if subscribers.is_empty() {
            routes.by_event.remove(&event);
        }
    }
}

/// Feeds the hub from this replica's own queue on `eventsys.events` until
/// `shutdown`, subscribing again whenever the broker goes away; tells
/// waiting buyers their place in line every [`PLACES_EVERY`].
pub async fn run_broadcaster(bus: Arc<dyn Bus>, hub: Arc<Hub>, shutdown: CancellationToken) {
    let places = {
        let (hub, shutdown) = (hub.clone(), shutdown.clone());
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(PLACES_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = ticks.tick() => {
                        hub.tell_places();
                        hub.backlog.tick();
                    }
                }
            }
        })
    };
    follow_events(bus, &hub, &shutdown).await;
    let _ = places.await;
}

async fn follow_events(bus: Arc<dyn Bus>, hub: &Hub, shutdown: &CancellationToken) {
    let mut pause = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        let mut feed = match bus.broadcast(BROADCAST_PATTERNS).await {
            Ok(feed) => feed,
            Err(err) => {
                tracing::warn!(error = %err, "cannot follow events; retrying");
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = shutdown.cancelled() => {}
                }
                pause = (pause * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        pause = Duration::from_millis(100);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                delivery = feed.next() => {
                    let Some(delivery) = delivery else {
                        tracing::warn!("event feed ended; following again");
                        break;
                    };
                    // The last hop of a command's trace: pushing its outcome.
                    let push = tracing::info_span!("push", kind = %delivery.message.routing_key);
                    trace::follow(&push, delivery.message.traceparent.as_deref());
                    push.in_scope(|| match serde_json::from_slice::<EventEnvelope>(&delivery.message.body) {
                        Ok(envelope) => hub.dispatch(&envelope),
                        Err(err) => tracing::debug!(error = %err, "ignoring an event this build does not know"),
                    });
                    let _ = delivery.ack().await;
                }
            }
        }
        feed.close().await;
    }
}

#[cfg(test)]
mod tests {
    use eventsys_messages::CommandStatus;

    use super::*;

    fn connect(hub: &Arc<Hub>, user: &UserId) -> Connection {
        hub.connect(user).expect("room for one more")
    }

    #[tokio::test]
    async fn a_waiter_leaves_the_hub_when_its_request_ends_however_it_ends() {
        let hub = Arc::new(Hub::default());
        let ann = UserId::parse("ann").unwrap();
        let (command, finished) = updated(&ann, CommandStatus::Succeeded);
        let mut waiting = hub.wait_for(command);
        let failed_on_the_way = hub.wait_for(CommandId::generate());
        assert_eq!(hub.routes().waiters.len(), 2);
        drop(failed_on_the_way);
        assert_eq!(hub.routes().waiters.len(), 1);
        hub.dispatch(&finished);
        let told = tokio::time::timeout(Duration::from_secs(1), waiting.finished()).await;
        assert_eq!(told, Ok(true), "told when it finished");
        drop(waiting);
        assert!(hub.routes().waiters.is_empty());
    }

    fn updated(user: &UserId, status: CommandStatus) -> (CommandId, EventEnvelope) {
        let command = CommandId::generate();
        let event = Event::CommandUpdated(CommandUpdated {
            command_id: command,
            user_id: user.clone(),
            status,
            result: None,
            error: None,
        });
        (command, EventEnvelope::caused_by(command, event))
    }

    #[tokio::test]
    async fn a_command_update_reaches_its_users_connections_and_nobody_elses() {
        let hub = Arc::new(Hub::default());
        let (ann, bob) = (UserId::parse("ann").unwrap(), UserId::parse("bob").unwrap());
        let (mut a1, mut a2, mut b) = (
            connect(&hub, &ann),
            connect(&hub, &ann),
            connect(&hub, &bob),
        );
        let (command, envelope) = updated(&ann, CommandStatus::Succeeded);
        let mut waiter = hub.wait_for(command);
        hub.dispatch(&envelope);
        for conn in [&mut a1, &mut a2] {
            let frame: serde_json::Value =
                serde_json::from_str(&conn.frames.recv().await.unwrap()).unwrap();
            assert_eq!(frame["command_id"], command.to_string());
            assert_eq!(frame["status"], "succeeded");
        }
        assert!(b.frames.try_recv().is_err());
        assert!(waiter.finished().await);
    }

    #[tokio::test]
    async fn a_client_that_does_not_read_is_dropped() {
        let hub = Arc::new(Hub::default());
        let ann = UserId::parse("ann").unwrap();
        let conn = connect(&hub, &ann);
        for _ in 0..=CLIENT_BUFFER {
            hub.dispatch(&updated(&ann, CommandStatus::Processing).1);
        }
        assert!(conn.dropped.is_cancelled());
        assert_eq!(hub.connections(), 0);
    }

    #[test]
    fn a_user_at_their_limit_is_refused_until_one_of_theirs_closes() {
        let limits = HubLimits {
            connections_per_user: 2,
            connections: 3,
            ..HubLimits::default()
        };
        let hub = Arc::new(Hub::new(limits, AdmissionRule::default()));
        let (ann, bob, cy) = (
            UserId::parse("ann").unwrap(),
            UserId::parse("bob").unwrap(),
            UserId::parse("cy").unwrap(),
        );
        let first = connect(&hub, &ann);
        let _second = connect(&hub, &ann);
        assert_eq!(hub.connect(&ann).err(), Some(Crowded::User(2)));
        let _bob = connect(&hub, &bob);
        assert_eq!(hub.connect(&cy).err(), Some(Crowded::Replica(3)));
        drop(first);
        assert_eq!(hub.connections(), 2);
        assert!(hub.connect(&ann).is_ok());
    }

    #[test]
    fn a_connection_follows_at_most_its_share_of_events() {
        let limits = HubLimits {
            subscriptions_per_connection: 2,
            ..HubLimits::default()
        };
        let hub = Arc::new(Hub::new(limits, AdmissionRule::default()));
        let ann = UserId::parse("ann").unwrap();
        let conn = connect(&hub, &ann);
        let events: Vec<EventId> = (0..3).map(|_| EventId::generate()).collect();
        assert!(hub.subscribe(&ann, conn.id, events[0], false));
        assert!(hub.subscribe(&ann, conn.id, events[1], false));
        assert!(!hub.subscribe(&ann, conn.id, events[2], false));
        // Subscribing again to one it follows is not one more.
        assert!(hub.subscribe(&ann, conn.id, events[1], true));
        hub.unsubscribe(&ann, conn.id, events[0]);
        assert!(hub.subscribe(&ann, conn.id, events[2], false));
    }
}
