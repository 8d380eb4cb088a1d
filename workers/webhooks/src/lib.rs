//! Webhooks: what an organizer's endpoint receives ([`catalogue`]) and
//! how it knows the sender. Deliveries follow the Standard Webhooks
//! conventions ([`signature`]); where they may be sent is decided by
//! [`destination`], so that a webhook cannot be aimed at the platform's
//! own network. [`send`] makes one attempt; [`retry`] says when the next.

pub mod catalogue;
pub mod destination;
pub mod retry;
pub mod send;
pub mod signature;
