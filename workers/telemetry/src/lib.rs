//! What every part of eventsys reports about itself, in one place:
//! [`metrics`] names each measurement once (the dashboard, the alerts and
//! the code all read the same names), and [`trace`] carries one trace per
//! command across processes.
//!
//! The exporters themselves (the Prometheus recorder, OTLP) are installed
//! by the binary; a library that records with no recorder installed costs
//! next to nothing and reports nowhere.

pub mod metrics;
pub mod trace;
