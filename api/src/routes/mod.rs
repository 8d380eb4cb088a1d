//! The HTTP routes of the public contract, one module per resource.

pub mod commands;
pub mod doors;
pub mod events;
pub mod health;
pub mod notifications;
pub mod orders;
pub mod staff;
pub mod tickets;
pub mod waitlist;
pub mod webhooks;
