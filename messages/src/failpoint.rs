//! Deliberate crashes at named points, so that fault tests can kill a
//! process at exactly the moment they mean to (after a store write and
//! before the acknowledgement, after recording a command and before
//! publishing it). Not part of the wire contract; it lives here because
//! every process shares this crate. Set `EVENTSYS_FAILPOINT` to a point's
//! name; unset, as in any real deployment, this does nothing.

use std::sync::OnceLock;

/// The worker has written a command's effect and not yet announced it or
/// acknowledged the delivery.
pub const AFTER_COMMIT: &str = "worker.after_commit";

/// The API has recorded a command as `accepted` and not yet published it.
pub const AFTER_RECORD: &str = "api.after_record";

pub fn hit(point: &str) {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| {
        std::env::var("EVENTSYS_FAILPOINT")
            .ok()
            .filter(|p| !p.is_empty())
    });
    if armed.as_deref() == Some(point) {
        eprintln!("failpoint {point} reached: aborting");
        std::process::abort();
    }
}
