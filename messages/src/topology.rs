//! Names of the broker topology, fixed by the public contract, and which
//! routing keys reach which queue. Every adapter and every deployment
//! artefact takes its names from here.

/// Topic exchange for commands; routing key = command type.
pub const COMMANDS_EXCHANGE: &str = "eventsys.commands";
/// Topic exchange for what happened; routing key = event type.
pub const EVENTS_EXCHANGE: &str = "eventsys.events";
/// Where a work queue sends what it gives up on; routing key = the queue's name.
pub const DEAD_LETTER_EXCHANGE: &str = "eventsys.dead-letter";

/// Deliveries of one message before the broker dead-letters it by itself.
/// Workers give up one delivery earlier, so that they can first mark the
/// command `failed`; the broker's limit is the backstop for a message that
/// crashes its consumer every time.
pub const DELIVERY_LIMIT: u32 = 10;

/// What an API replica relays to its WebSocket clients.
pub const BROADCAST_PATTERNS: &[&str] = &[
    "command.updated",
    "event.updated",
    "notification.created",
    "ticket.checked_in",
    "waitlist.moved",
];

/// The durable work queues, one per worker role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkQueue {
    Registration,
    Ticketing,
    Notification,
    /// Deliveries to organizers' endpoints: a queue of its own, so that a
    /// slow receiver never holds up a sale.
    Webhooks,
}

impl WorkQueue {
    pub const ALL: [Self; 4] = [
        Self::Registration,
        Self::Ticketing,
        Self::Notification,
        Self::Webhooks,
    ];

    pub fn role(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::Ticketing => "ticketing",
            Self::Notification => "notification",
            Self::Webhooks => "webhooks",
        }
    }

    pub fn from_role(role: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|q| q.role() == role)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Registration => "eventsys.registration",
            Self::Ticketing => "eventsys.ticketing",
            Self::Notification => "eventsys.notification",
            Self::Webhooks => "eventsys.webhooks",
        }
    }

    pub fn dead_letter_queue(self) -> &'static str {
        match self {
            Self::Registration => "eventsys.registration.dead-letter",
            Self::Ticketing => "eventsys.ticketing.dead-letter",
            Self::Notification => "eventsys.notification.dead-letter",
            Self::Webhooks => "eventsys.webhooks.dead-letter",
        }
    }

    /// Bindings from `eventsys.commands`.
    pub fn command_patterns(self) -> &'static [&'static str] {
        match self {
            Self::Registration => &["event.*", "registration.*", "waitlist.*"],
            Self::Ticketing => &["order.*", "ticket.*"],
            Self::Notification => &["notification.*"],
            Self::Webhooks => &[],
        }
    }

    /// Bindings from `eventsys.events`: the facts this role reacts to.
    pub fn event_patterns(self) -> &'static [&'static str] {
        match self {
            Self::Registration | Self::Ticketing => &[],
            Self::Notification => &[
                "ticket.sold",
                "order.rejected",
                "order.released",
                "order.expiring",
                "waitlist.offered",
                "event.changed",
                "ticket.checked_in",
            ],
            Self::Webhooks => &[
                "ticket.sold",
                "order.rejected",
                "order.released",
                "ticket.checked_in",
                "event.changed",
            ],
        }
    }
}

/// Who talks to the broker, each under a login of its own with only the
/// rights its work needs: the API may publish commands but not facts, a
/// worker consumes its own queue and publishes facts (the ticketing worker,
/// which runs the scheduler, also commands; the webhooks worker only
/// consumes), the autoscaler only looks at queue depths. `eventsys init` and `eventsys dlq` use an administrator's
/// login.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Principal {
    Api,
    Worker(WorkQueue),
    Autoscaler,
}

/// RabbitMQ permissions on the vhost: regular expressions over the names
/// of exchanges and queues that a login may configure (declare, delete),
/// write (publish to, bind a queue to) and read (consume, bind from).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permissions {
    pub configure: String,
    pub write: String,
    pub read: String,
}

/// `name` as a regular expression that matches it literally (our names
/// hold letters, dots and hyphens only).
fn escaped(name: &str) -> String {
    name.replace('.', "\\.")
}

/// Matches exactly `names`, nothing else.
fn only(names: &[&str]) -> String {
    let names: Vec<String> = names.iter().map(|n| escaped(n)).collect();
    format!("^({})$", names.join("|"))
}

/// Matches nothing.
const NOTHING: &str = "^$";
/// The server-named queue each API replica declares for its broadcasts.
const BROADCAST_QUEUES: &str = "amq\\.gen-.*";

impl Principal {
    pub const ALL: [Self; 6] = [
        Self::Api,
        Self::Worker(WorkQueue::Registration),
        Self::Worker(WorkQueue::Ticketing),
        Self::Worker(WorkQueue::Notification),
        Self::Worker(WorkQueue::Webhooks),
        Self::Autoscaler,
    ];

    /// The login's user name, e.g. `eventsys-ticketing`.
    pub fn login(self) -> String {
        match self {
            Self::Api => "eventsys-api".to_owned(),
            Self::Worker(queue) => format!("eventsys-{}", queue.role()),
            Self::Autoscaler => "eventsys-autoscaler".to_owned(),
        }
    }

    pub fn permissions(self) -> Permissions {
        match self {
            Self::Api => Permissions {
                configure: format!("^{BROADCAST_QUEUES}$"),
                write: format!("^({}|{BROADCAST_QUEUES})$", escaped(COMMANDS_EXCHANGE)),
                read: format!("^({}|{BROADCAST_QUEUES})$", escaped(EVENTS_EXCHANGE)),
            },
            Self::Worker(queue) => Permissions {
                configure: NOTHING.to_owned(),
                write: match queue {
                    WorkQueue::Ticketing => only(&[COMMANDS_EXCHANGE, EVENTS_EXCHANGE]),
                    WorkQueue::Webhooks => NOTHING.to_owned(),
                    WorkQueue::Registration | WorkQueue::Notification => only(&[EVENTS_EXCHANGE]),
                },
                read: only(&[queue.name()]),
            },
            Self::Autoscaler => Permissions {
                configure: NOTHING.to_owned(),
                write: NOTHING.to_owned(),
                read: NOTHING.to_owned(),
            },
        }
    }
}

/// AMQP topic matching (`*` one word, `#` zero or more), for adapters that
/// route without a broker.
pub fn matches(pattern: &str, key: &str) -> bool {
    fn go(p: &[&str], k: &[&str]) -> bool {
        match (p.first(), k.first()) {
            (None, None) => true,
            (Some(&"#"), _) => go(&p[1..], k) || (!k.is_empty() && go(p, &k[1..])),
            (Some(&"*"), Some(_)) => go(&p[1..], &k[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &k[1..]),
            _ => false,
        }
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let k: Vec<&str> = key.split('.').collect();
    go(&p, &k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_patterns_match_like_rabbitmq() {
        assert!(matches("order.*", "order.place"));
        assert!(!matches("order.*", "order.place.now"));
        assert!(matches("order.#", "order.place.now"));
        assert!(matches("#", "anything.at.all"));
        assert!(matches("ticket.sold", "ticket.sold"));
        assert!(!matches("ticket.sold", "ticket.checked_in"));
        assert!(!matches("event.*", "events.create"));
    }

    #[test]
    fn roles_and_queue_names_agree() {
        for q in WorkQueue::ALL {
            assert_eq!(WorkQueue::from_role(q.role()), Some(q));
            assert_eq!(q.name(), format!("eventsys.{}", q.role()));
        }
    }
}
