//! The rules of selling and admitting, each in one place: the API applies
//! them to answer at once, the workers apply them again as the authority
//! (a message may not have come through the API, and the event may have
//! changed since). The store only guards what it writes with conditions
//! that express the same rules; it does not decide them.

use crate::{
    Reason, Timestamp,
    ids::EventId,
    spec::{EventSpec, EventStatus, FieldError, TicketStatus, TicketTypeSpec},
};

/// The ticket type an order names, by id or by name; may be left out when
/// the event has one type.
pub fn ticket_type<'a>(
    spec: &'a EventSpec,
    wanted: Option<&str>,
) -> Result<&'a TicketTypeSpec, FieldError> {
    let types = &spec.ticket_types;
    let chosen = match wanted {
        Some(wanted) => types
            .iter()
            .find(|t| t.ticket_type_id.to_string() == wanted || t.name == wanted)
            .ok_or_else(|| FieldError::new("ticket_type", "is not a ticket type of this event"))?,
        None => match types
            .iter()
            .filter(|t| !t.closed)
            .collect::<Vec<_>>()
            .as_slice()
        {
            [only] => only,
            _ => {
                return Err(FieldError::new(
                    "ticket_type",
                    "is required: the event has several ticket types",
                ));
            }
        },
    };
    if chosen.closed {
        return Err(FieldError::new(
            "ticket_type",
            "is closed: no longer on sale",
        ));
    }
    Ok(chosen)
}

/// The free ticket type a registration (RSVP) takes: the one named, or
/// the event's first free type.
pub fn registration_type<'a>(
    spec: &'a EventSpec,
    wanted: Option<&str>,
) -> Result<&'a TicketTypeSpec, FieldError> {
    let chosen = match wanted {
        Some(_) => ticket_type(spec, wanted)?,
        None => spec
            .ticket_types
            .iter()
            .find(|t| !is_paid(t) && !t.closed)
            .ok_or_else(|| {
                FieldError::new(
                    "ticket_type",
                    "the event has no free ticket type: place an order",
                )
            })?,
    };
    if is_paid(chosen) {
        return Err(FieldError::new(
            "ticket_type",
            "is not free: place an order for it",
        ));
    }
    Ok(chosen)
}

/// A ticket type with a price makes an order a hold until it is paid.
pub fn is_paid(ticket_type: &TicketTypeSpec) -> bool {
    ticket_type.price_minor > 0
}

/// An order's quantity is between 1 and the event's per-order maximum.
pub fn quantity(spec: &EventSpec, quantity: u32) -> Result<(), FieldError> {
    if (1..=spec.max_per_order).contains(&quantity) {
        Ok(())
    } else {
        Err(FieldError::new(
            "quantity",
            format!("must be between 1 and {}", spec.max_per_order),
        ))
    }
}

/// Only a published event sells.
pub fn on_sale(spec: &EventSpec) -> Result<(), Reason> {
    match spec.status {
        EventStatus::Published => Ok(()),
        EventStatus::Draft | EventStatus::Cancelled | EventStatus::Ended => Err(Reason::NotOnSale),
    }
}

/// Of two scans of one ticket the earlier stands: an offline door's scan
/// uploaded late replaces a later one, never the other way round. (An
/// online scan is stamped when handled, so among online scans the first
/// handled wins instead.)
pub fn replaces(first: Timestamp, scan: Timestamp) -> bool {
    scan < first
}

/// Whether `status` may become `to` (see [`EventStatus::reached_from`]).
pub fn status_change(status: EventStatus, to: EventStatus) -> Result<(), Reason> {
    if to.reached_from().contains(&status) {
        Ok(())
    } else {
        Err(Reason::Conflict)
    }
}

/// Whether a ticket, as found (its event and status), may enter `event`;
/// a cancelled event's tickets are void.
pub fn admission(
    found: Option<(EventId, TicketStatus)>,
    event: EventId,
    event_status: EventStatus,
) -> Result<(), Reason> {
    match found {
        Some((of, _)) if of == event && event_status == EventStatus::Cancelled => {
            Err(Reason::TicketCancelled)
        }
        Some((of, _)) if of != event => Err(Reason::InvalidTicketCode),
        None => Err(Reason::InvalidTicketCode),
        Some((_, TicketStatus::Valid)) => Ok(()),
        Some((_, TicketStatus::CheckedIn)) => Err(Reason::AlreadyCheckedIn),
        Some((_, TicketStatus::Cancelled)) => Err(Reason::TicketCancelled),
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::DEFAULT_MAX_PER_ORDER;

    use super::*;

    fn spec(types: &[&str]) -> EventSpec {
        let mut spec = EventSpec::sample(100, &vec![100; types.len()]);
        for (tt, name) in spec.ticket_types.iter_mut().zip(types) {
            tt.name = (*name).into();
        }
        spec
    }

    #[test]
    fn a_ticket_type_is_named_by_id_or_name_or_implied_when_alone() {
        let one = spec(&["General"]);
        assert_eq!(ticket_type(&one, None).unwrap().name, "General");
        let two = spec(&["General", "VIP"]);
        let vip_id = two.ticket_types[1].ticket_type_id.to_string();
        assert_eq!(ticket_type(&two, Some("VIP")).unwrap().name, "VIP");
        assert_eq!(ticket_type(&two, Some(&vip_id)).unwrap().name, "VIP");
        assert_eq!(ticket_type(&two, None).unwrap_err().field, "ticket_type");
        assert!(ticket_type(&two, Some("Balcony")).is_err());
    }

    #[test]
    fn quantities_are_bounded_by_the_events_maximum() {
        let s = spec(&["General"]);
        assert!(quantity(&s, 1).is_ok());
        assert!(quantity(&s, DEFAULT_MAX_PER_ORDER).is_ok());
        assert_eq!(quantity(&s, 0).unwrap_err().field, "quantity");
        assert!(quantity(&s, DEFAULT_MAX_PER_ORDER + 1).is_err());
    }

    #[test]
    fn only_published_events_sell() {
        let mut s = spec(&["General"]);
        assert_eq!(on_sale(&s), Ok(()));
        s.status = EventStatus::Draft;
        assert_eq!(on_sale(&s), Err(Reason::NotOnSale));
    }

    #[test]
    fn each_refusal_at_the_door_has_its_reason() {
        let (here, there) = (EventId::generate(), EventId::generate());
        let open = EventStatus::Published;
        assert_eq!(
            admission(Some((here, TicketStatus::Valid)), here, open),
            Ok(())
        );
        assert_eq!(
            admission(Some((here, TicketStatus::CheckedIn)), here, open),
            Err(Reason::AlreadyCheckedIn)
        );
        assert_eq!(
            admission(Some((here, TicketStatus::Cancelled)), here, open),
            Err(Reason::TicketCancelled)
        );
        assert_eq!(
            admission(
                Some((here, TicketStatus::Valid)),
                here,
                EventStatus::Cancelled
            ),
            Err(Reason::TicketCancelled)
        );
        assert_eq!(
            admission(Some((there, TicketStatus::Valid)), here, open),
            Err(Reason::InvalidTicketCode)
        );
        assert_eq!(admission(None, here, open), Err(Reason::InvalidTicketCode));
    }

    #[test]
    fn drafts_are_published_and_anything_but_cancelled_is_cancelled() {
        use EventStatus::{Cancelled, Draft, Published};
        assert_eq!(status_change(Draft, Published), Ok(()));
        assert_eq!(status_change(Published, Published), Err(Reason::Conflict));
        assert_eq!(status_change(Published, Cancelled), Ok(()));
        assert_eq!(status_change(Draft, Cancelled), Ok(()));
        assert_eq!(status_change(Cancelled, Published), Err(Reason::Conflict));
        assert_eq!(status_change(Cancelled, Cancelled), Err(Reason::Conflict));
    }
}
