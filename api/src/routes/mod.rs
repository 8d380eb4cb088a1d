//! The HTTP routes of the public contract, one module per resource.

pub mod commands;
pub mod events;
pub mod health;
pub mod notifications;
pub mod orders;
pub mod tickets;

/// What identifies a request for idempotency: method, path and body.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    [method.as_bytes(), b" ", path.as_bytes(), b"\n", body].concat()
}
