//! What an organizer asks for when creating an event, and the limits of the
//! public contract that both the API (to answer 422 at once) and the workers
//! (to refuse a bad message that bypassed the API) enforce.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{Timestamp, ids::TicketTypeId};

pub const NAME_MAX: usize = 200;
pub const VENUE_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 5_000;
pub const CAPACITY_MAX: u32 = 1_000_000;
pub const TICKET_TYPES_MAX: usize = 20;
/// The per-order maximum when the organizer does not set one.
pub const DEFAULT_MAX_PER_ORDER: u32 = 10;
/// An order's tickets are written in one store transaction with a few other
/// items; 50 keeps that well inside DynamoDB's 100-item limit.
pub const MAX_PER_ORDER_LIMIT: u32 = 50;
pub const PRICE_MINOR_MAX: u64 = 100_000_000_000;
/// How long a hold blocks its seats when the organizer does not say.
pub const DEFAULT_HOLD_SECONDS: u32 = 900;
pub const HOLD_SECONDS_MAX: u32 = 86_400;

fn default_hold_seconds() -> u32 {
    DEFAULT_HOLD_SECONDS
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Visible to its organizer only.
    Draft,
    /// Listed and on sale.
    Published,
    Cancelled,
    /// Its `ends_at` passed: no longer listed or on sale.
    Ended,
}

impl EventStatus {
    /// The statuses an event may move to `self` from: a draft is
    /// published; a draft or a published event is cancelled; a published
    /// event ends when its time is over; nothing comes back from cancelled
    /// or ended.
    pub fn reached_from(self) -> &'static [EventStatus] {
        match self {
            Self::Draft => &[],
            Self::Published => &[Self::Draft],
            Self::Cancelled => &[Self::Draft, Self::Published],
            Self::Ended => &[Self::Published],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Published => "published",
            Self::Cancelled => "cancelled",
            Self::Ended => "ended",
        }
    }
}

/// Where an order stands: a paid order is a hold until confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Seats held until `expires_at`, waiting for payment.
    PendingPayment,
    Confirmed,
    Rejected,
    /// The hold ran out before it was confirmed.
    Expired,
    Cancelled,
}

impl OrderStatus {
    /// Whether the order holds or owns seats; an order that does not
    /// (turned down, run out, cancelled) may be placed again under its id
    /// (a registration after a refusal or a cancellation).
    pub fn is_active(self) -> bool {
        matches!(self, Self::PendingPayment | Self::Confirmed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingPayment => "pending_payment",
            Self::Confirmed => "confirmed",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Where someone stands in an event's waiting list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaitStatus {
    Waiting,
    /// A seat was offered: a hold made for them (`offer`).
    Offered,
}

/// Where a webhook delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Owed: not yet answered with a 2xx.
    Pending,
    Delivered,
    /// Given up on after its last retry; a replay owes it again.
    Failed,
}

/// What an organizer's webhook endpoint may hear of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum WebhookType {
    #[serde(rename = "order.succeeded")]
    OrderSucceeded,
    #[serde(rename = "order.rejected")]
    OrderRejected,
    #[serde(rename = "order.cancelled")]
    OrderCancelled,
    #[serde(rename = "order.expired")]
    OrderExpired,
    #[serde(rename = "ticket.cancelled")]
    TicketCancelled,
    #[serde(rename = "ticket.checked_in")]
    TicketCheckedIn,
    #[serde(rename = "event.updated")]
    EventUpdated,
    #[serde(rename = "event.cancelled")]
    EventCancelled,
}

impl WebhookType {
    pub const ALL: [Self; 8] = [
        Self::OrderSucceeded,
        Self::OrderRejected,
        Self::OrderCancelled,
        Self::OrderExpired,
        Self::TicketCancelled,
        Self::TicketCheckedIn,
        Self::EventUpdated,
        Self::EventCancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderSucceeded => "order.succeeded",
            Self::OrderRejected => "order.rejected",
            Self::OrderCancelled => "order.cancelled",
            Self::OrderExpired => "order.expired",
            Self::TicketCancelled => "ticket.cancelled",
            Self::TicketCheckedIn => "ticket.checked_in",
            Self::EventUpdated => "event.updated",
            Self::EventCancelled => "event.cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// Where a ticket stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    Valid,
    CheckedIn,
    Cancelled,
}

impl TicketStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::CheckedIn => "checked_in",
            Self::Cancelled => "cancelled",
        }
    }
}

/// A complete event description, defaults filled in and ids assigned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventSpec {
    pub name: String,
    pub description: String,
    pub venue: String,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub capacity: u32,
    pub max_per_order: u32,
    /// How long an order of a paid ticket type holds its seats before it
    /// must be confirmed.
    #[serde(default = "default_hold_seconds")]
    pub hold_seconds: u32,
    pub status: EventStatus,
    pub ticket_types: Vec<TicketTypeSpec>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TicketTypeSpec {
    pub ticket_type_id: TicketTypeId,
    pub name: String,
    pub price_minor: u64,
    pub currency: String,
    pub quota: u32,
    /// No longer on sale; what was sold stays.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closed: bool,
}

/// What an organizer changes of an event: each field given replaces the
/// current one; ticket types are changed by id, or added.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_order: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ticket_types: Vec<TicketTypeChange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new_ticket_types: Vec<TicketTypeSpec>,
}

/// A change of one ticket type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TicketTypeChange {
    pub ticket_type_id: TicketTypeId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_minor: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<bool>,
}

impl EventChanges {
    /// Whether people holding tickets must hear of it: the time or the
    /// place changed.
    pub fn concerns_holders(&self, before: &EventSpec) -> bool {
        self.starts_at.is_some_and(|t| t != before.starts_at)
            || self.ends_at.is_some_and(|t| t != before.ends_at)
            || self.venue.as_ref().is_some_and(|v| *v != before.venue)
    }

    /// `spec` with these changes; `None` names a ticket type it lacks.
    pub fn apply(&self, spec: &EventSpec) -> Result<EventSpec, FieldError> {
        let mut next = spec.clone();
        let set = |field: &mut String, value: &Option<String>| {
            if let Some(value) = value {
                field.clone_from(value);
            }
        };
        set(&mut next.name, &self.name);
        set(&mut next.description, &self.description);
        set(&mut next.venue, &self.venue);
        next.starts_at = self.starts_at.unwrap_or(next.starts_at);
        next.ends_at = self.ends_at.unwrap_or(next.ends_at);
        next.capacity = self.capacity.unwrap_or(next.capacity);
        next.max_per_order = self.max_per_order.unwrap_or(next.max_per_order);
        next.hold_seconds = self.hold_seconds.unwrap_or(next.hold_seconds);
        for (i, change) in self.ticket_types.iter().enumerate() {
            let tt = next
                .ticket_types
                .iter_mut()
                .find(|t| t.ticket_type_id == change.ticket_type_id)
                .ok_or_else(|| {
                    FieldError::new(
                        format!("ticket_types[{i}].ticket_type_id"),
                        "is not a ticket type of this event",
                    )
                })?;
            set(&mut tt.name, &change.name);
            tt.price_minor = change.price_minor.unwrap_or(tt.price_minor);
            tt.quota = change.quota.unwrap_or(tt.quota);
            tt.closed = change.closed.unwrap_or(tt.closed);
        }
        next.ticket_types
            .extend(self.new_ticket_types.iter().cloned());
        Ok(next)
    }
}

/// One reason why one field of the input is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// JSON path of the field, e.g. `ticket_types[1].quota`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl EventSpec {
    /// A small valid published event on 2030-06-01, 18:00 to 23:00 UTC, for
    /// examples and tests: `capacity`
    /// seats and one free ticket type (`type 0`, `type 1`, ...) per quota.
    pub fn sample(capacity: u32, quotas: &[u32]) -> Self {
        Self {
            name: "RustConf".into(),
            description: String::new(),
            venue: "Hall 1".into(),
            starts_at: Timestamp::from_second(1_906_567_200).unwrap_or_default(),
            ends_at: Timestamp::from_second(1_906_585_200).unwrap_or_default(),
            capacity,
            max_per_order: DEFAULT_MAX_PER_ORDER,
            hold_seconds: DEFAULT_HOLD_SECONDS,
            status: EventStatus::Published,
            ticket_types: quotas
                .iter()
                .enumerate()
                .map(|(i, &quota)| TicketTypeSpec {
                    ticket_type_id: TicketTypeId::generate(),
                    name: format!("type {i}"),
                    price_minor: 0,
                    currency: "EUR".into(),
                    quota,
                    closed: false,
                })
                .collect(),
        }
    }

    /// Every limit of the contract, reported all at once.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        text("name", &self.name, 1, NAME_MAX, &mut errors);
        text("venue", &self.venue, 1, VENUE_MAX, &mut errors);
        paragraphs("description", &self.description, &mut errors);
        if self.ends_at <= self.starts_at {
            errors.push(FieldError::new("ends_at", "must be after starts_at"));
        }
        if !(1..=CAPACITY_MAX).contains(&self.capacity) {
            errors.push(FieldError::new(
                "capacity",
                format!("must be between 1 and {CAPACITY_MAX}"),
            ));
        }
        if !(1..=MAX_PER_ORDER_LIMIT).contains(&self.max_per_order) {
            errors.push(FieldError::new(
                "max_per_order",
                format!("must be between 1 and {MAX_PER_ORDER_LIMIT}"),
            ));
        }
        if !(1..=HOLD_SECONDS_MAX).contains(&self.hold_seconds) {
            errors.push(FieldError::new(
                "hold_seconds",
                format!("must be between 1 and {HOLD_SECONDS_MAX}"),
            ));
        }
        if matches!(self.status, EventStatus::Cancelled | EventStatus::Ended) {
            errors.push(FieldError::new("status", "must be draft or published"));
        }
        if self.ticket_types.is_empty() || self.ticket_types.len() > TICKET_TYPES_MAX {
            errors.push(FieldError::new(
                "ticket_types",
                format!("must hold between 1 and {TICKET_TYPES_MAX} ticket types"),
            ));
        }
        for (i, tt) in self.ticket_types.iter().enumerate() {
            let at = |f: &str| format!("ticket_types[{i}].{f}");
            text(&at("name"), &tt.name, 1, NAME_MAX, &mut errors);
            if self.ticket_types[..i]
                .iter()
                .any(|other| other.name == tt.name)
            {
                errors.push(FieldError::new(
                    at("name"),
                    "is used by another ticket type",
                ));
            }
            if tt.price_minor > PRICE_MINOR_MAX {
                errors.push(FieldError::new(
                    at("price_minor"),
                    format!("must be at most {PRICE_MINOR_MAX}"),
                ));
            }
            if !is_currency_code(&tt.currency) {
                errors.push(FieldError::new(
                    at("currency"),
                    "must be an ISO 4217 code such as EUR",
                ));
            }
            // A quota is judged against a valid capacity only: the default
            // ticket type takes the capacity as its quota, and a bad
            // capacity must not show up again as a quota nobody sent.
            if !(1..=CAPACITY_MAX).contains(&self.capacity) {
                continue;
            }
            if !(1..=CAPACITY_MAX).contains(&tt.quota) {
                errors.push(FieldError::new(
                    at("quota"),
                    format!("must be between 1 and {CAPACITY_MAX}"),
                ));
            } else if tt.quota > self.capacity {
                errors.push(FieldError::new(at("quota"), "must not exceed the capacity"));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Dates a person could mean, judged when they are set: an event may
    /// have begun a day ago at most, must not be over already, and ends
    /// within ten years (a zero or year-9999 date is a slip, not a plan).
    pub fn check_dates(&self, now: Timestamp) -> Result<(), Vec<FieldError>> {
        let day = jiff::SignedDuration::from_hours(24);
        let mut errors = Vec::new();
        if self.starts_at < now - day {
            errors.push(FieldError::new(
                "starts_at",
                "must not be more than a day in the past",
            ));
        }
        if self.ends_at <= now {
            errors.push(FieldError::new("ends_at", "must be in the future"));
        } else if self.ends_at > now + day * 3653 {
            errors.push(FieldError::new(
                "ends_at",
                "must be within ten years from now",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// [`Self::validate`], and the dates as [`Self::check_dates`] judges
    /// them at `now`, for a spec whose dates are being set: every error at once.
    pub fn validate_setting_dates(&self, now: Timestamp) -> Result<(), Vec<FieldError>> {
        let mut errors = self.validate().err().unwrap_or_default();
        errors.extend(self.check_dates(now).err().unwrap_or_default());
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    pub fn ticket_type(&self, id: TicketTypeId) -> Option<&TicketTypeSpec> {
        self.ticket_types.iter().find(|tt| tt.ticket_type_id == id)
    }
}

/// Characters that reorder text around them (bidirectional controls):
/// they make what a reader sees differ from what is stored.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that take no space on screen: a name made only of them
/// looks empty.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{180E}'
            | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202F}' | '\u{205F}'..='\u{206F}'
            | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
            | '\u{E0000}'..='\u{E01EF}')
}

/// Whether organizer-written text is fit to show to others: no control
/// characters (line breaks and tabs only where `multiline`), no bidi
/// controls, and, for a one-line name, no link posing as a message from us.
fn text_problem(value: &str, multiline: bool) -> Option<&'static str> {
    if value.chars().any(is_bidi_control) {
        return Some("must not contain bidirectional control characters");
    }
    let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
    if value.chars().any(|c| c.is_control() && !allowed(c)) {
        return Some(if multiline {
            "must not contain control characters other than line breaks and tabs"
        } else {
            "must be one line without control characters"
        });
    }
    let lower = value.to_ascii_lowercase();
    if !multiline && (lower.contains("://") || lower.contains("www.")) {
        return Some("must not contain a link; put links in the description");
    }
    None
}

/// One line of text, such as a name.
fn text(field: &str, value: &str, min: usize, max: usize, errors: &mut Vec<FieldError>) {
    checked_text(field, value, min, max, false, errors);
}

/// Free text of several lines: the description.
fn paragraphs(field: &str, value: &str, errors: &mut Vec<FieldError>) {
    checked_text(field, value, 0, DESCRIPTION_MAX, true, errors);
}

fn checked_text(
    field: &str,
    value: &str,
    min: usize,
    max: usize,
    multiline: bool,
    errors: &mut Vec<FieldError>,
) {
    let chars = value.chars().count();
    if min > 0 && value.chars().all(is_invisible) {
        errors.push(FieldError::new(field, "must not be empty"));
    } else if let Some(problem) = text_problem(value, multiline) {
        errors.push(FieldError::new(field, problem));
    } else if chars > max {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    } else if chars < min {
        errors.push(FieldError::new(
            field,
            format!("must be at least {min} characters"),
        ));
    }
}

fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_visible_line_without_tricks() {
        let named = |name: &str| {
            let mut s = EventSpec::sample(10, &[10]);
            s.name = name.to_owned();
            s.validate().err().map(|e| e[0].message.clone())
        };
        assert_eq!(named("Rust Nation 2030 – Día 1 🎉"), None);
        assert!(named("\u{200B}").is_some(), "only a zero-width space");
        assert!(
            named(" \u{3164}\u{FEFF} ").is_some(),
            "only invisible characters"
        );
        assert!(named("Concert\u{202E}lanigiro").is_some(), "bidi override");
        assert!(named("Two\nlines").is_some());
        assert!(named("Payment failed, re-enter your card at http://evil.example").is_some());
        let mut s = EventSpec::sample(10, &[10]);
        s.description = "Line one.\n\tLine two: https://example.org".into();
        assert_eq!(s.validate(), Ok(()));
        s.description = "bell\u{7}".into();
        assert!(s.validate().is_err());
    }

    #[test]
    fn dates_must_be_ones_a_person_means() {
        let now: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        let at = |start: &str, end: &str| {
            let mut s = EventSpec::sample(10, &[10]);
            s.starts_at = start.parse().unwrap();
            s.ends_at = end.parse().unwrap();
            s.check_dates(now).is_ok()
        };
        assert!(at("2030-02-01T18:00:00Z", "2030-02-01T22:00:00Z"));
        assert!(
            at("2029-12-31T12:00:00Z", "2030-01-02T00:00:00Z"),
            "running now"
        );
        assert!(!at("1970-01-01T00:00:00Z", "2030-02-01T00:00:00Z"));
        assert!(!at("2029-06-01T00:00:00Z", "2029-06-02T00:00:00Z"), "over");
        assert!(!at("2030-02-01T00:00:00Z", "9999-12-01T00:00:00Z"));
        // Set with other mistakes, every one is reported at once.
        let mut s = EventSpec::sample(10, &[10]);
        s.capacity = 0;
        s.starts_at = "1970-01-01T00:00:00Z".parse().unwrap();
        let fields: Vec<String> = s
            .validate_setting_dates(now)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["capacity", "starts_at"]);
    }

    fn spec() -> EventSpec {
        EventSpec::sample(100, &[100])
    }

    fn fields(spec: &EventSpec) -> Vec<String> {
        spec.validate()
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_sensible_event_is_valid() {
        assert_eq!(spec().validate(), Ok(()));
    }

    #[test]
    fn each_limit_names_its_field() {
        let mut s = spec();
        s.name = "x".repeat(NAME_MAX + 1);
        s.venue = "  ".into();
        s.ends_at = s.starts_at;
        s.capacity = 0;
        s.max_per_order = MAX_PER_ORDER_LIMIT + 1;
        s.ticket_types[0].currency = "eur".into();
        assert_eq!(
            fields(&s),
            [
                "name",
                "venue",
                "ends_at",
                "capacity",
                "max_per_order",
                "ticket_types[0].currency"
            ]
        );
    }

    #[test]
    fn a_bad_capacity_is_reported_once_not_again_as_a_quota() {
        let mut s = spec();
        s.capacity = 0;
        s.ticket_types[0].quota = 0;
        assert_eq!(fields(&s), ["capacity"]);
        s.capacity = 10;
        assert_eq!(fields(&s), ["ticket_types[0].quota"]);
    }

    #[test]
    fn a_quota_may_not_exceed_the_capacity_nor_repeat_a_name() {
        let mut s = spec();
        let mut vip = s.ticket_types[0].clone();
        vip.ticket_type_id = TicketTypeId::generate();
        vip.quota = 101;
        s.ticket_types.push(vip);
        assert_eq!(
            fields(&s),
            ["ticket_types[1].name", "ticket_types[1].quota"]
        );
    }

    #[test]
    fn the_limits_count_characters_not_bytes() {
        let mut s = spec();
        s.name = "é".repeat(NAME_MAX);
        assert_eq!(s.validate(), Ok(()));
    }

    proptest::proptest! {
        #[test]
        fn an_accepted_name_is_one_visible_line_without_controls(
            name in "\\PC{0,30}|[a \\t\\n\\r\u{7}\u{200B}-\u{200F}\u{202A}-\u{202E}\u{2066}-\u{2069}\u{FEFF}\u{3164}]{0,8}",
        ) {
            let mut s = EventSpec::sample(10, &[10]);
            s.name.clone_from(&name);
            if s.validate().is_ok() {
                proptest::prop_assert!(!name.chars().any(|c| c.is_control() || is_bidi_control(c)));
                proptest::prop_assert!(name.chars().any(|c| !is_invisible(c)));
                proptest::prop_assert!(name.chars().count() <= NAME_MAX);
            }
        }

        #[test]
        fn accepted_dates_lie_in_the_window_around_now(
            start in -4_000_000_000_i64..4_000_000_000,
            length in 1_i64..1_000_000_000,
        ) {
            let now: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
            let mut s = EventSpec::sample(10, &[10]);
            s.starts_at = Timestamp::from_second(start).unwrap();
            s.ends_at = Timestamp::from_second(start + length).unwrap();
            if s.check_dates(now).is_ok() {
                let day = jiff::SignedDuration::from_hours(24);
                proptest::prop_assert!(s.starts_at >= now - day);
                proptest::prop_assert!(s.ends_at > now && s.ends_at <= now + day * 3653);
            }
        }
    }

    #[test]
    fn webhook_types_are_written_as_they_are_named() {
        for kind in WebhookType::ALL {
            assert_eq!(
                serde_json::to_value(kind).expect("JSON"),
                serde_json::json!(kind.as_str())
            );
            assert_eq!(WebhookType::parse(kind.as_str()), Some(kind));
        }
    }
}
