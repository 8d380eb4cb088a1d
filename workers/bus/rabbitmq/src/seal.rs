//! Seals on the facts published to `eventsys.events`: an HMAC-SHA256 of the
//! message under a secret every role shares. A fact without a valid seal
//! (published by anyone else who can reach the broker) is dropped before it
//! reaches an inbox or a WebSocket. Commands need no seal: a worker acts on
//! a command only as the store recorded it.

use aws_lc_rs::{constant_time, hmac};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};

use eventsys_bus::Message;

/// The AMQP header that carries the seal.
pub(crate) const HEADER: &str = "x-eventsys-seal";

#[derive(Clone)]
pub struct EventSeal(hmac::Key);

impl EventSeal {
    pub fn new(secret: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// What is sealed: the routing key and id as well as the body, so that a
    /// sealed body cannot be replayed under another type.
    fn tag(&self, message: &Message) -> Vec<u8> {
        let mut context = hmac::Context::with_key(&self.0);
        for part in [
            message.routing_key.as_bytes(),
            message.message_id.as_bytes(),
            &message.body,
        ] {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        context.sign().as_ref().to_vec()
    }

    pub(crate) fn seal(&self, message: &Message) -> String {
        B64.encode(self.tag(message))
    }

    pub(crate) fn verify(&self, message: &Message, seal: &str) -> bool {
        B64.decode(seal).is_ok_and(|given| {
            constant_time::verify_slices_are_equal(&given, &self.tag(message)).is_ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(routing_key: &str, body: &str) -> Message {
        Message {
            routing_key: routing_key.into(),
            message_id: "m1".into(),
            body: body.as_bytes().to_vec(),
            traceparent: None,
        }
    }

    #[test]
    fn a_seal_holds_for_its_message_under_its_secret_only() {
        let seal = EventSeal::new(b"a shared secret");
        let fact = message("ticket.sold", r#"{"a":1}"#);
        let sealed = seal.seal(&fact);
        assert!(seal.verify(&fact, &sealed));
        assert!(!seal.verify(&message("ticket.sold", r#"{"a":2}"#), &sealed));
        assert!(!seal.verify(&message("command.updated", r#"{"a":1}"#), &sealed));
        assert!(!EventSeal::new(b"another secret").verify(&fact, &sealed));
        assert!(!seal.verify(&fact, "not base64 at all!"));
    }
}
