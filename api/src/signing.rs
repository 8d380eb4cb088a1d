//! Things the API signs so that it can trust them when they come back:
//! ticket codes (what a QR code carries) and page cursors. Both use keys
//! derived from the deployment's secret, one per purpose.

use aws_lc_rs::{constant_time, hmac};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use eventsys_messages::{EventId, TicketId};

use crate::problem::Problem;

/// Bytes of HMAC-SHA256 kept in a signature: 128 bits.
const TAG_LEN: usize = 16;

fn derive(secret: &[u8], purpose: &str) -> hmac::Key {
    let root = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::Key::new(
        hmac::HMAC_SHA256,
        hmac::sign(&root, purpose.as_bytes()).as_ref(),
    )
}

fn tag(key: &hmac::Key, message: &str) -> Vec<u8> {
    hmac::sign(key, message.as_bytes()).as_ref()[..TAG_LEN].to_vec()
}

fn verify(key: &hmac::Key, message: &str, signature: &str) -> bool {
    B64.decode(signature).is_ok_and(|given| {
        constant_time::verify_slices_are_equal(&given, &tag(key, message)).is_ok()
    })
}

/// Signed ticket codes: `{event_id}.{ticket_id}.{signature}`. A forged or
/// foreign code is refused without asking the store.
pub struct TicketCodes(hmac::Key);

impl TicketCodes {
    pub fn new(secret: &[u8]) -> Self {
        Self(derive(secret, "eventsys ticket codes v1"))
    }

    pub fn code(&self, event: EventId, ticket: TicketId) -> String {
        let body = format!("{event}.{ticket}");
        let signature = B64.encode(tag(&self.0, &body));
        format!("{body}.{signature}")
    }

    /// The ticket a code admits to `event`, if the code is genuine and for it.
    pub fn admit(&self, code: &str, event: EventId) -> Option<TicketId> {
        let mut parts = code.trim().splitn(3, '.');
        let (e, t, signature) = (parts.next()?, parts.next()?, parts.next()?);
        let body = format!("{e}.{t}");
        if !verify(&self.0, &body, signature) || e.parse::<EventId>().ok()? != event {
            return None;
        }
        t.parse().ok()
    }
}

/// Opaque, signed page cursors, each bound to the list it came from.
pub struct Cursors(hmac::Key);

impl Cursors {
    pub fn new(secret: &[u8]) -> Self {
        Self(derive(secret, "eventsys cursors v1"))
    }

    pub fn seal(&self, list: &str, position: &str) -> String {
        let signature = tag(&self.0, &format!("{list}\n{position}"));
        format!("{}.{}", B64.encode(position), B64.encode(signature))
    }

    pub fn open(&self, list: &str, cursor: &str) -> Result<String, Problem> {
        let bad = || Problem::bad_field("cursor", "is not a cursor this list gave out");
        let (position, signature) = cursor.split_once('.').ok_or_else(bad)?;
        let position =
            String::from_utf8(B64.decode(position).map_err(|_| bad())?).map_err(|_| bad())?;
        if verify(&self.0, &format!("{list}\n{position}"), signature) {
            Ok(position)
        } else {
            Err(bad())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_code_admits_its_ticket_to_its_event_only() {
        let codes = TicketCodes::new(b"secret");
        let (event, ticket) = (EventId::generate(), TicketId::generate());
        let code = codes.code(event, ticket);
        assert_eq!(codes.admit(&code, event), Some(ticket));
        assert_eq!(codes.admit(&code, EventId::generate()), None);
        assert_eq!(TicketCodes::new(b"other").admit(&code, event), None);
        let forged = code.replace(&ticket.to_string(), &TicketId::generate().to_string());
        assert_eq!(codes.admit(&forged, event), None);
        assert_eq!(codes.admit("garbage", event), None);
    }

    #[test]
    fn a_cursor_opens_only_for_its_own_list_and_untouched() {
        let cursors = Cursors::new(b"secret");
        let sealed = cursors.seal("tickets:ann", r#"{"k":"v"}"#);
        assert_eq!(
            cursors.open("tickets:ann", &sealed).unwrap(),
            r#"{"k":"v"}"#
        );
        assert!(cursors.open("tickets:bob", &sealed).is_err());
        let mut tampered = sealed.clone();
        tampered.replace_range(0..1, if sealed.starts_with('A') { "B" } else { "A" });
        assert!(cursors.open("tickets:ann", &tampered).is_err());
        assert!(cursors.open("tickets:ann", "nonsense").is_err());
    }
}
