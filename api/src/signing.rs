//! Things the API signs so that it, or anyone, can trust them when they
//! come back: ticket codes (what a QR code carries: Ed25519, verifiable
//! offline) and page cursors (an HMAC under a key derived from the
//! deployment's secret).

use aws_lc_rs::{
    constant_time, digest, hmac,
    signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use eventsys_messages::{EventId, TicketId, Timestamp};
use eventsys_store::TicketRecord;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

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

/// Ticket codes, what a QR code carries: compact JWS (RFC 7515) signed
/// with Ed25519 (`alg` `EdDSA`), the header naming the key (`kid`), the
/// payload `{"ticket_id", "event_id", "iat"}`. Any JOSE library at a door
/// verifies them offline with the keys of [`Self::jwks`]; keys retired
/// from signing still verify, so a rotation never voids a sold ticket. The
/// signing key is not the token secret.
pub struct TicketCodes {
    signing: Ed25519KeyPair,
    kid: String,
    /// kid and public key of every key that verifies: the signing one
    /// first, then the retired ones.
    verifying: Vec<(String, Vec<u8>)>,
}

/// A ticket-signing key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("a ticket-signing key is 32 bytes, base64-encoded")]
    Seed,
    #[error("a retired ticket key is a 32-byte Ed25519 public key, base64url-encoded")]
    Retired,
    #[error("no randomness available to make a key")]
    Random,
}

#[derive(Serialize, Deserialize)]
struct CodeHeader {
    alg: String,
    kid: String,
}

#[derive(Serialize, Deserialize)]
struct CodeClaims {
    ticket_id: TicketId,
    event_id: EventId,
    iat: i64,
}

/// A key's id: the first 128 bits of its public key's SHA-256.
fn key_id(public: &[u8]) -> String {
    B64.encode(&digest::digest(&digest::SHA256, public).as_ref()[..16])
}

impl TicketCodes {
    /// Signs with the Ed25519 key of `seed` (32 bytes, base64); also
    /// verifies with `retired` public keys (base64url, as in the JWK Set).
    pub fn new(seed: &str, retired: &[String]) -> Result<Self, KeyError> {
        let seed = base64::engine::general_purpose::STANDARD
            .decode(seed.trim())
            .or_else(|_| B64.decode(seed.trim()))
            .map_err(|_| KeyError::Seed)?;
        if seed.len() != 32 {
            return Err(KeyError::Seed);
        }
        let signing = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| KeyError::Seed)?;
        let public = signing.public_key().as_ref().to_vec();
        let kid = key_id(&public);
        let mut verifying = vec![(kid.clone(), public)];
        for key in retired.iter().filter(|k| !k.trim().is_empty()) {
            let public = B64.decode(key.trim()).map_err(|_| KeyError::Retired)?;
            if public.len() != 32 {
                return Err(KeyError::Retired);
            }
            verifying.push((key_id(&public), public));
        }
        Ok(Self {
            signing,
            kid,
            verifying,
        })
    }

    /// A fresh signing key, as [`Self::new`] takes it.
    pub fn generate_seed() -> Result<String, KeyError> {
        let mut seed = [0u8; 32];
        aws_lc_rs::rand::fill(&mut seed).map_err(|_| KeyError::Random)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(seed))
    }

    /// The code of `ticket`, issued at `issued` (its sale: the code stays
    /// the same however often it is read).
    pub fn code(&self, event: EventId, ticket: TicketId, issued: Timestamp) -> String {
        let header = CodeHeader {
            alg: "EdDSA".into(),
            kid: self.kid.clone(),
        };
        let claims = CodeClaims {
            ticket_id: ticket,
            event_id: event,
            iat: issued.as_second(),
        };
        let input = format!(
            "{}.{}",
            B64.encode(serde_json::to_vec(&header).unwrap_or_default()),
            B64.encode(serde_json::to_vec(&claims).unwrap_or_default())
        );
        let signature = self.signing.sign(input.as_bytes());
        format!("{input}.{}", B64.encode(signature.as_ref()))
    }

    /// A ticket's code.
    pub fn of(&self, ticket: &TicketRecord) -> String {
        self.code(ticket.event_id, ticket.ticket_id, ticket.created_at)
    }

    /// The ticket a code admits to `event`, if the code is genuine (signed
    /// by a key of ours) and for it. Nothing is looked up.
    pub fn admit(&self, code: &str, event: EventId) -> Option<TicketId> {
        let mut parts = code.trim().split('.');
        let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let decoded: CodeHeader = serde_json::from_slice(&B64.decode(header).ok()?).ok()?;
        if decoded.alg != "EdDSA" {
            return None;
        }
        let (_, public) = self.verifying.iter().find(|(kid, _)| *kid == decoded.kid)?;
        let input = &code.trim()[..header.len() + 1 + claims.len()];
        UnparsedPublicKey::new(&ED25519, public)
            .verify(input.as_bytes(), &B64.decode(signature).ok()?)
            .ok()?;
        let claims: CodeClaims = serde_json::from_slice(&B64.decode(claims).ok()?).ok()?;
        (claims.event_id == event).then_some(claims.ticket_id)
    }

    /// The keys that verify codes, as a JWK Set (RFC 7517, RFC 8037).
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .verifying
            .iter()
            .map(|(kid, public)| {
                let x = B64.encode(public);
                json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "alg": "EdDSA",
                    "use": "sig",
                    "kid": kid,
                    "x": x,
                    "public_key": x,
                })
            })
            .collect();
        json!({ "keys": keys })
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

    fn keys() -> TicketCodes {
        TicketCodes::new(&TicketCodes::generate_seed().unwrap(), &[]).unwrap()
    }

    #[test]
    fn a_ticket_code_admits_its_ticket_to_its_event_only() {
        let codes = keys();
        let (event, ticket) = (EventId::generate(), TicketId::generate());
        let code = codes.code(event, ticket, Timestamp::now());
        assert_eq!(codes.admit(&code, event), Some(ticket));
        assert_eq!(codes.admit(&code, EventId::generate()), None);
        assert_eq!(keys().admit(&code, event), None, "another key");
        let mut forged = code.clone().into_bytes();
        let i = code.rfind('.').unwrap() + 3;
        forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            codes.admit(&String::from_utf8(forged).unwrap(), event),
            None
        );
        assert_eq!(codes.admit("garbage", event), None);
        assert_eq!(codes.admit("a.b.c.d", event), None);
    }

    #[test]
    fn a_code_is_a_compact_jws_any_jose_library_can_check() {
        let codes = keys();
        let (event, ticket) = (EventId::generate(), TicketId::generate());
        let code = codes.code(
            event,
            ticket,
            Timestamp::from_second(1_900_000_000).unwrap(),
        );
        let parts: Vec<&str> = code.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
        let claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
        let jwks = codes.jwks();
        let key = &jwks["keys"][0];
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["kid"], key["kid"]);
        assert_eq!(
            (&key["kty"], &key["crv"]),
            (&json!("OKP"), &json!("Ed25519"))
        );
        assert_eq!(claims["ticket_id"], ticket.to_string());
        assert_eq!(claims["event_id"], event.to_string());
        assert_eq!(claims["iat"], 1_900_000_000);
        // The signature verifies under the published key alone.
        let x = B64.decode(key["x"].as_str().unwrap()).unwrap();
        let input = format!("{}.{}", parts[0], parts[1]);
        UnparsedPublicKey::new(&ED25519, x)
            .verify(input.as_bytes(), &B64.decode(parts[2]).unwrap())
            .unwrap();
    }

    #[test]
    fn a_retired_key_still_admits_what_it_signed() {
        let old_seed = TicketCodes::generate_seed().unwrap();
        let old = TicketCodes::new(&old_seed, &[]).unwrap();
        let (event, ticket) = (EventId::generate(), TicketId::generate());
        let sold_before = old.code(event, ticket, Timestamp::now());
        let retired = old.jwks()["keys"][0]["x"].as_str().unwrap().to_owned();
        let rotated = TicketCodes::new(&TicketCodes::generate_seed().unwrap(), &[retired]).unwrap();
        assert_eq!(rotated.admit(&sold_before, event), Some(ticket));
        assert_eq!(rotated.jwks()["keys"].as_array().unwrap().len(), 2);
        assert!(TicketCodes::new("too short", &[]).is_err());
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

    proptest::proptest! {
        #[test]
        fn a_cursor_opens_to_what_was_sealed_and_a_changed_one_does_not_open(
            position in "\\PC{0,60}",
            at in 0_usize..200,
            with in proptest::char::range('-', 'z'),
        ) {
            let cursors = Cursors::new(b"a secret for cursors");
            let sealed = cursors.seal("events", &position);
            proptest::prop_assert_eq!(cursors.open("events", &sealed).ok(), Some(position.clone()));
            let mut changed: Vec<char> = sealed.chars().collect();
            let at = at % changed.len();
            changed[at] = with;
            let changed: String = changed.into_iter().collect();
            if changed != sealed {
                // Either refused, or (base64 padding bits) the very same position.
                let opened = cursors.open("events", &changed).ok();
                proptest::prop_assert!(opened.is_none() || opened == Some(position));
            }
        }

        #[test]
        fn no_made_up_code_admits(code in "\\PC{0,300}|[A-Za-z0-9_-]{10,60}\\.[A-Za-z0-9_-]{10,120}\\.[A-Za-z0-9_-]{10,90}") {
            let codes = TicketCodes::new(&TicketCodes::generate_seed().unwrap(), &[]).unwrap();
            proptest::prop_assert_eq!(codes.admit(&code, EventId::generate()), None);
        }
    }
}
