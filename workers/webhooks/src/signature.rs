//! Standard Webhooks signatures: `webhook-signature` is `v1,` and the
//! base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}` under
//! the endpoint's secret. While a secret is being rotated both sign, space
//! separated, so that a receiver holding either verifies.

use aws_lc_rs::{hmac, rand};
use base64::{Engine, engine::general_purpose::STANDARD};

/// What a secret looks like to people: this, then the key in base64.
const PREFIX: &str = "whsec_";
/// Bytes of a generated key: 32, as HMAC-SHA256 wants.
const KEY_BYTES: usize = 32;
/// How far a delivery's timestamp may be from the receiver's clock.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// An endpoint's signing secret. Not comparable: a secret is checked
/// only through [`verify`], in constant time.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("a secret is `whsec_` and a base64 key of 24 to 64 bytes")]
    NotASecret,
    #[error("no randomness to make a secret from")]
    NoRandomness,
    #[error("the timestamp is more than five minutes from now")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

impl Secret {
    pub fn generate() -> Result<Self, SignatureError> {
        let mut key = vec![0; KEY_BYTES];
        rand::fill(&mut key).map_err(|_| SignatureError::NoRandomness)?;
        Ok(Self(key))
    }

    pub fn parse(text: &str) -> Result<Self, SignatureError> {
        let key = text
            .strip_prefix(PREFIX)
            .and_then(|key| STANDARD.decode(key).ok())
            .ok_or(SignatureError::NotASecret)?;
        if !(24..=64).contains(&key.len()) {
            return Err(SignatureError::NotASecret);
        }
        Ok(Self(key))
    }

    /// The secret as it is shown to its organizer, once, and stored.
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// `v1,` and the signature of one delivery.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let mut context = hmac::Context::with_key(&key);
        context.update(format!("{id}.{timestamp}.").as_bytes());
        context.update(body);
        format!("v1,{}", STANDARD.encode(context.sign().as_ref()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The `webhook-signature` header: one signature per secret in force.
pub fn header(secrets: &[Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| secret.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a receiver does: the delivery is genuine when one of the
/// header's `v1` signatures is this secret's, and it is recent.
pub fn verify(
    secret: &Secret,
    id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
    now: i64,
) -> Result<(), SignatureError> {
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(SignatureError::Stale);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, &secret.0);
    let signed = [format!("{id}.{timestamp}.").as_bytes(), body].concat();
    let genuine = header
        .split(' ')
        .filter_map(|part| part.strip_prefix("v1,"))
        .filter_map(|signature| STANDARD.decode(signature).ok())
        .any(|tag| hmac::verify(&key, &signed, &tag).is_ok());
    if genuine {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn signs_as_the_specification_does() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("a secret");
        let signature = secret.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn either_secret_verifies_during_a_rotation_and_a_tampered_body_does_not() {
        let (old, new) = (
            Secret::generate().expect("old"),
            Secret::generate().expect("new"),
        );
        let body = br#"{"type":"order.succeeded"}"#;
        let signed = header(&[new.clone(), old.clone()], "msg_1", 1_000, body);
        assert_eq!(verify(&old, "msg_1", 1_000, body, &signed, 1_010), Ok(()));
        assert_eq!(verify(&new, "msg_1", 1_000, body, &signed, 1_010), Ok(()));
        assert_eq!(
            verify(&new, "msg_1", 1_000, b"{}", &signed, 1_010),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&new, "msg_2", 1_000, body, &signed, 1_010),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                &new,
                "msg_1",
                1_000,
                body,
                &signed,
                1_000 + TOLERANCE_SECONDS + 1
            ),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn a_secret_round_trips_and_bad_ones_are_refused() {
        let secret = Secret::generate().expect("a secret");
        let parsed = Secret::parse(&secret.expose()).map(|s| s.expose());
        assert_eq!(parsed, Ok(secret.expose()));
        for bad in [
            "",
            "whsec_",
            "whsec_!!!",
            "sk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_AAAA",
        ] {
            assert_eq!(
                Secret::parse(bad).err(),
                Some(SignatureError::NotASecret),
                "{bad}"
            );
        }
    }
}
