//! Deliberate crashes at named points, so that fault tests can kill a
//! process at exactly the moment they mean to (for instance after a store
//! write and before the acknowledgement). Set `EVENTSYS_FAILPOINT` to a
//! point's name; unset, as in any real deployment, this does nothing.

use std::sync::OnceLock;

/// The worker has written a command's effect and not yet announced it or
/// acknowledged the delivery.
pub const AFTER_COMMIT: &str = "worker.after_commit";

pub fn hit(point: &str) {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| {
        std::env::var("EVENTSYS_FAILPOINT")
            .ok()
            .filter(|p| !p.is_empty())
    });
    if armed.as_deref() == Some(point) {
        tracing::error!(point, "failpoint reached: aborting");
        std::process::abort();
    }
}
