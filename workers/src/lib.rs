//! The business rules of eventsys, and the loop that feeds them.
//!
//! Four roles consume the four work queues:
//! - [`registration`]: the life of events;
//! - [`ticketing`]: orders, tickets and check-in;
//! - [`notification`]: turns what happened into inbox entries and live pushes;
//! - [`webhooks`]: owes what happened to organizers' endpoints, and sends it.
//!
//! Each command goes through the same [`lifecycle`]: it must have been
//! recorded by the API, it moves to `processing`, its effect and its terminal
//! status are written in one conditional store write, and only then is the
//! outcome announced and the delivery acknowledged. A delivery of a command
//! that already finished changes nothing and announces the outcome again.

mod error;
mod gather;
pub mod heartbeat;
pub mod holds;
mod lifecycle;
mod notification;
mod registration;
pub mod retry;
pub mod runner;
pub mod schedule;
mod ticketing;
pub mod webhooks;

use std::sync::Arc;

use eventsys_bus::Bus;
use eventsys_store::Store;

pub use error::WorkError;
pub use heartbeat::Heartbeat;
pub use lifecycle::Work;
pub use runner::{WorkerOptions, run_worker};

/// What every role works with.
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    /// Orders carried out at the same time, placed together.
    gather: Arc<gather::Gather>,
    webhooks: Arc<webhooks::Shared>,
}

impl Deps {
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn Bus>) -> Self {
        Self {
            store,
            bus,
            gather: Arc::default(),
            webhooks: Arc::default(),
        }
    }
}
