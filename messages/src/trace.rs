//! W3C trace context (`traceparent`), carried in a message header so that a
//! request can be followed from the API through every worker it reaches.

use uuid::Uuid;

/// A new trace: version 00, random trace and span ids, sampled.
pub fn new_traceparent() -> String {
    let trace = Uuid::new_v4().simple().to_string();
    let span = &Uuid::new_v4().simple().to_string()[..16];
    format!("00-{trace}-{span}-01")
}

/// The same trace with a new span id, for work caused by `parent`; a missing
/// or malformed parent starts a new trace.
pub fn child_of(parent: Option<&str>) -> String {
    match parent.map(|p| p.split('-').collect::<Vec<_>>()).as_deref() {
        Some(["00", trace, _, flags]) if trace.len() == 32 && flags.len() == 2 => {
            let span = &Uuid::new_v4().simple().to_string()[..16];
            format!("00-{trace}-{span}-{flags}")
        }
        _ => new_traceparent(),
    }
}

/// The trace id of a `traceparent`, for log lines.
pub fn trace_id(traceparent: &str) -> &str {
    traceparent.split('-').nth(1).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_keeps_the_trace_and_changes_the_span() {
        let parent = new_traceparent();
        let child = child_of(Some(&parent));
        assert_eq!(trace_id(&child), trace_id(&parent));
        assert_ne!(child, parent);
        assert_eq!(child.len(), 55);
        assert_ne!(trace_id(&child_of(Some("garbage"))), "");
    }
}
