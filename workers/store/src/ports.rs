//! The repositories: what workers and the API may ask of a store.
//!
//! Every operation that carries out a command takes that command's
//! [`Completion`] and writes it in the same atomic step as the effect, on the
//! condition that the command has not finished yet. An adapter that cannot
//! keep that promise is not an adapter of this port.

use async_trait::async_trait;
use eventsys_messages::{
    CommandId, EventId, EventStatus, NotificationId, OrderId, OrderStatus, TicketId, Timestamp,
    UserId, WebhookId,
};

use crate::{
    StoreError,
    records::{
        CommandRecord, Completion, DeliveryRecord, EventRecord, EventSnapshot, IdempotencyClaim,
        NotificationRecord, OrderRecord, Page, PageRequest, Placement, Revision, Scan,
        SigningSecret, TicketRecord, WaitEntry, WebhookRecord,
    },
};

/// The outcome of recording a new command.
#[derive(Clone, Debug, PartialEq)]
pub enum Recorded {
    New,
    /// The idempotency key was claimed before, by this command; `same_request`
    /// tells whether the earlier request was the same as this one.
    Existing {
        record: Box<CommandRecord>,
        same_request: bool,
    },
}

/// What beginning to process a delivered command found.
#[derive(Clone, Debug, PartialEq)]
pub enum Begun {
    /// No command has this id.
    NotRecorded,
    /// A command has this id, but the delivery is not that command exactly
    /// as recorded (a forgery, or garbage): nothing was changed.
    NotAsRecorded,
    /// The command as it now stands; `started` says whether this call moved
    /// it from `accepted` to `processing`.
    Recorded {
        record: Box<CommandRecord>,
        started: bool,
    },
}

/// The outcome of finishing a command, with or without an effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finished {
    Now,
    /// It had finished before: nothing was written.
    Already,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaceOutcome {
    Placed,
    Already,
    /// The event is not (or no longer) on sale.
    NotOnSale,
    /// Fewer seats of the type, or of the event, are left than the order asks.
    SoldOut,
    /// Another command placed an order with this id before (one
    /// registration per user and event has an id derived from both).
    Duplicate,
}

/// What asking an order, or one of its tickets, to change found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderChange {
    Changed,
    /// The command had finished before: nothing was written.
    Already,
    NotFound,
    /// The order (or ticket) is in a state that does not allow it: the
    /// order's status is this.
    Refused(OrderStatus),
    /// A hold confirmed after it ran out.
    Expired,
}

/// What revising an event found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revised {
    Changed,
    /// The command had finished before: nothing was written.
    Already,
    NotFound,
    /// The event changed since it was read: read it again.
    Stale,
    /// A decrease asks for more unsold seats than there are (of the
    /// capacity, or of a type's quota).
    TooFew,
}

/// What joining a waiting list found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Joined {
    Joined,
    /// The command had finished before: nothing was written.
    Already,
    /// They are on the list already.
    Waiting,
}

/// What asking an event to change status found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusChange {
    Changed,
    /// The command had finished before: nothing was written.
    Already,
    NotFound,
    /// The event is in this status, which may not become the one asked.
    Refused(EventStatus),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckInOutcome {
    CheckedIn,
    /// The ticket was checked in by a later scan; this earlier one takes
    /// its place (the count is unchanged).
    Earlier,
    Already,
    /// The ticket is not a valid ticket of this event; read it to learn why.
    NotAdmissible,
}

#[async_trait]
pub trait CommandLog: Send + Sync {
    /// Records an `accepted` command, claiming its idempotency key if any.
    async fn record_command(
        &self,
        record: &CommandRecord,
        claim: Option<&IdempotencyClaim>,
    ) -> Result<Recorded, StoreError>;

    /// What an idempotency key already names, read without writing: a
    /// [`Recorded::Existing`] if the key is claimed within its window. A
    /// client that retries learns where its command stands from this alone.
    async fn find_claim(&self, claim: &IdempotencyClaim) -> Result<Option<Recorded>, StoreError>;

    /// Takes back a command that could not be published, with its claim,
    /// if nobody has started on it. Returns whether nothing of it is left
    /// (also when it was never there, or a retry finds its own first try
    /// done); `false` means someone started on it and it stands.
    async fn withdraw_command(
        &self,
        id: CommandId,
        claim: Option<&IdempotencyClaim>,
    ) -> Result<bool, StoreError>;

    async fn command(&self, id: CommandId) -> Result<Option<CommandRecord>, StoreError>;

    /// Moves an `accepted` command to `processing`, on condition that
    /// `message` is the command exactly as recorded (see
    /// [`CommandRecord::is_recorded_as`]): a delivery that is not changes
    /// nothing.
    async fn begin_processing(
        &self,
        id: CommandId,
        message: &[u8],
        at: Timestamp,
    ) -> Result<Begun, StoreError>;

    /// Ends a command that has no effect to write (a rejection, a failure).
    async fn finish_command(&self, done: &Completion) -> Result<Finished, StoreError>;

    /// Commands that became `accepted` (submitted, or reopened) before
    /// `before`, oldest first: recorded, but perhaps never published.
    async fn stale_commands(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<CommandRecord>, StoreError>;

    /// Takes a `failed` command back to `accepted`, so that it can be
    /// carried out again (a failure never wrote an effect); returns whether
    /// it was failed.
    async fn reopen_command(&self, id: CommandId) -> Result<bool, StoreError>;

    /// Forgets what is past its retention as of `now`: commands finished
    /// more than [`crate::records::COMMAND_RETENTION`] ago and idempotency
    /// claims past their window, at most `limit` of each. Returns how many
    /// went. A store with its own expiry (DynamoDB's TTL) has nothing to do.
    async fn forget_expired(&self, now: Timestamp, limit: u32) -> Result<u32, StoreError>;
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Writes a new event with its counters, nothing sold.
    async fn create_event(
        &self,
        event: &EventRecord,
        done: &Completion,
    ) -> Result<Finished, StoreError>;

    /// Published events whose `ends_at` passed before `before`, soonest
    /// first.
    async fn due_endings(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<EventRecord>, StoreError>;

    /// Replaces the event's record with `event` (as read when its
    /// `updated_at` was `seen`), and moves its counters by `revision`; a
    /// decrease only ever takes seats that are neither sold nor held.
    async fn revise_event(
        &self,
        event: &EventRecord,
        seen: Timestamp,
        revision: &Revision,
        done: &Completion,
    ) -> Result<Revised, StoreError>;

    /// Moves the event to `to`, on condition that its status is one of
    /// `to.reached_from()`; a published event is listed, any other not.
    async fn change_event_status(
        &self,
        event_id: EventId,
        to: EventStatus,
        done: &Completion,
    ) -> Result<StatusChange, StoreError>;

    /// Grants `user` door staff at the event (`Some(since)`), or revokes it
    /// (`None`); `None` back if there is no such event.
    async fn set_staff(
        &self,
        event_id: EventId,
        user: &UserId,
        granted: Option<Timestamp>,
        done: &Completion,
    ) -> Result<Option<Finished>, StoreError>;

    /// The event alone, without its inventory.
    async fn event_record(&self, id: EventId) -> Result<Option<EventRecord>, StoreError>;

    /// The event with an atomic snapshot of its inventory.
    async fn event(&self, id: EventId) -> Result<Option<EventSnapshot>, StoreError>;

    /// Published events by start time, with their inventory.
    async fn published_events(&self, page: &PageRequest)
    -> Result<Page<EventSnapshot>, StoreError>;
}

#[async_trait]
pub trait OrderStore: Send + Sync {
    /// Writes an order and takes its seats, all at once, on condition that
    /// the event is published and has the seats: the whole order or
    /// nothing, never a seat it does not have, never a refusal while it has
    /// them. A `confirmed` order's tickets are written with it; a
    /// `pending_payment` order only holds its seats until its `expires_at`.
    async fn place_order(
        &self,
        placement: &Placement,
        done: &Completion,
    ) -> Result<PlaceOutcome, StoreError>;

    /// Places the orders of `group`, all for one event and in the order
    /// they came, with the outcome [`Self::place_order`] would give each one
    /// after another: in particular, when seats run short, the earlier ones
    /// get them. An adapter may write them together; this one writes them
    /// one by one.
    async fn place_orders(
        &self,
        group: &[(Placement, Completion)],
    ) -> Vec<Result<PlaceOutcome, StoreError>> {
        let mut outcomes = Vec::with_capacity(group.len());
        for (placement, done) in group {
            outcomes.push(self.place_order(placement, done).await);
        }
        outcomes
    }

    /// Confirms a `pending_payment` order before it runs out (`now` before
    /// its `expires_at`): its held seats become sold and `tickets` are
    /// written. Against its expiry, exactly one of the two wins.
    async fn confirm_order(
        &self,
        id: OrderId,
        tickets: &[TicketRecord],
        now: Timestamp,
        done: &Completion,
    ) -> Result<OrderChange, StoreError>;

    /// Ends a hold that ran out (`expires_at` not after `now`); its seats
    /// come back for sale.
    async fn expire_order(
        &self,
        id: OrderId,
        now: Timestamp,
        done: &Completion,
    ) -> Result<OrderChange, StoreError>;

    /// Cancels a held or confirmed order whole; its seats come back and a
    /// confirmed order's tickets are cancelled (refused if one was already
    /// checked in).
    async fn cancel_order(&self, id: OrderId, done: &Completion)
    -> Result<OrderChange, StoreError>;

    /// Cancels one valid ticket; its seat comes back.
    async fn cancel_ticket(
        &self,
        id: TicketId,
        done: &Completion,
    ) -> Result<OrderChange, StoreError>;

    /// Holds that ran out before `before`, soonest first.
    async fn due_holds(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<OrderRecord>, StoreError>;

    /// Writes an order that was turned down, so that it can be read back.
    async fn reject_order(
        &self,
        order: &OrderRecord,
        done: &Completion,
    ) -> Result<Finished, StoreError>;

    /// Writes the refusals of `group`, each with the outcome
    /// [`Self::reject_order`] would give it; an adapter may write them
    /// together, this one writes them one by one.
    async fn reject_orders(
        &self,
        group: &[(OrderRecord, Completion)],
    ) -> Vec<Result<Finished, StoreError>> {
        let mut outcomes = Vec::with_capacity(group.len());
        for (order, done) in group {
            outcomes.push(self.reject_order(order, done).await);
        }
        outcomes
    }

    async fn order(&self, id: OrderId) -> Result<Option<OrderRecord>, StoreError>;

    async fn ticket(&self, id: TicketId) -> Result<Option<TicketRecord>, StoreError>;

    /// The tickets of `ids` that exist, each once, by id.
    async fn tickets(&self, ids: &[TicketId]) -> Result<Vec<TicketRecord>, StoreError>;

    /// Who holds tickets of the event, a page at a time; a holder may be on
    /// more than one page.
    async fn holders(
        &self,
        event_id: EventId,
        page: &PageRequest,
    ) -> Result<Page<UserId>, StoreError>;

    /// Puts `entry` at the end of its event's waiting list, unless its user
    /// is waiting already. While anyone waits for an event, its seats are
    /// not for public sale: released seats go to the list first.
    async fn join_waitlist(
        &self,
        entry: &WaitEntry,
        done: &Completion,
    ) -> Result<Joined, StoreError>;

    /// A user's entry in an event's waiting list, and how many wait before
    /// them.
    async fn waitlist_entry(
        &self,
        event_id: EventId,
        user: &UserId,
    ) -> Result<Option<(WaitEntry, u32)>, StoreError>;

    /// Offers a seat to the first one waiting: their offer (see
    /// [`WaitEntry::offer`], a hold of one seat until `now + hold`) is
    /// written, its seat held and their entry marked offered, all at once,
    /// on condition that they still wait and the seat is there. `None` when
    /// nobody waits or no seat is free.
    async fn offer_next(
        &self,
        event_id: EventId,
        hold: std::time::Duration,
        now: Timestamp,
    ) -> Result<Option<OrderRecord>, StoreError>;

    /// A holder's tickets, newest first.
    async fn tickets_of(
        &self,
        holder: &UserId,
        page: &PageRequest,
    ) -> Result<Page<TicketRecord>, StoreError>;

    /// Admits a valid ticket of the scan's event once, unless the event was
    /// cancelled, and counts it; an offline scan earlier than the one
    /// recorded takes its place.
    async fn check_in(&self, scan: &Scan, done: &Completion) -> Result<CheckInOutcome, StoreError>;
}

#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// Stores a notification unless one with its id exists; returns whether
    /// it was new.
    async fn add_notification(&self, notification: &NotificationRecord)
    -> Result<bool, StoreError>;

    /// Stores those of `batch` whose ids are not stored yet, in as few
    /// writes as the store allows; returns the ids that were new.
    async fn add_notifications(
        &self,
        batch: &[NotificationRecord],
    ) -> Result<Vec<NotificationId>, StoreError>;

    /// A user's notifications, newest first.
    async fn notifications(
        &self,
        user: &UserId,
        page: &PageRequest,
    ) -> Result<Page<NotificationRecord>, StoreError>;

    /// Marks one of `user`'s notifications read; `None` if they have no such
    /// notification.
    async fn mark_read(
        &self,
        user: &UserId,
        id: NotificationId,
        done: &Completion,
    ) -> Result<Option<Finished>, StoreError>;
}

/// Organizers' webhook endpoints, and what each is owed, in order.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn add_webhook(&self, webhook: &WebhookRecord) -> Result<(), StoreError>;

    async fn webhook(&self, id: WebhookId) -> Result<Option<WebhookRecord>, StoreError>;

    /// An organizer's endpoints, in the order they were added.
    async fn webhooks_of(&self, organizer: &UserId) -> Result<Vec<WebhookRecord>, StoreError>;

    /// Replaces an endpoint's secrets (a rotation); `false` if it is gone.
    async fn set_secrets(
        &self,
        id: WebhookId,
        secrets: &[SigningSecret],
    ) -> Result<bool, StoreError>;

    /// Removes an endpoint; nothing more is owed to it. `false` if there
    /// was none.
    async fn remove_webhook(&self, id: WebhookId) -> Result<bool, StoreError>;

    /// Owes `delivery` to its endpoint, once per occurrence: it takes the
    /// endpoint's next sequence number, which is returned. `None`: the
    /// occurrence was owed before, or the endpoint is gone.
    async fn owe(&self, delivery: &DeliveryRecord) -> Result<Option<u64>, StoreError>;

    /// An endpoint's deliveries, newest first.
    async fn deliveries(
        &self,
        id: WebhookId,
        page: &PageRequest,
    ) -> Result<Page<DeliveryRecord>, StoreError>;

    async fn delivery(
        &self,
        id: WebhookId,
        sequence: u64,
    ) -> Result<Option<DeliveryRecord>, StoreError>;

    /// The first delivery still owed, by sequence: what is sent next.
    async fn next_owed(&self, id: WebhookId) -> Result<Option<DeliveryRecord>, StoreError>;

    /// Writes an attempt's outcome: `delivery` as it now stands. `false`
    /// if no such delivery is owed.
    async fn record_attempt(&self, delivery: &DeliveryRecord) -> Result<bool, StoreError>;

    /// Owes a delivery again, from `at`, counted as a replay; `false` if
    /// there is no such delivery.
    async fn replay(&self, id: WebhookId, sequence: u64, at: Timestamp)
    -> Result<bool, StoreError>;

    /// Endpoints that are owed something, for dispatchers to take up; at
    /// most `limit`. An endpoint stays listed until it is settled.
    async fn owing_webhooks(&self, limit: u32) -> Result<Vec<WebhookId>, StoreError>;

    /// Gives `holder` the sole right to send to `id` until `until`, or
    /// extends it: `false` while another holder's right runs (as of
    /// `now`), or if the endpoint is gone. One sender per endpoint keeps
    /// its deliveries in order and each sent once.
    async fn lease_webhook(
        &self,
        id: WebhookId,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Takes `id` off the owing list and ends `holder`'s lease, provided
    /// nothing was owed to it since its [`WebhookRecord::mark`] was
    /// `seen`. `false`: something was (or the lease was lost), so look
    /// again.
    async fn settle_webhook(
        &self,
        id: WebhookId,
        holder: &str,
        seen: u64,
    ) -> Result<bool, StoreError>;
}

/// Everything a store offers.
#[async_trait]
pub trait Store: CommandLog + EventStore + OrderStore + NotificationStore + WebhookStore {
    /// Whether the store answers at all, for readiness probes.
    async fn ping(&self) -> Result<(), StoreError>;
}
