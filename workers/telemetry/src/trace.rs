//! One trace per command across processes: a span that handles a message
//! (or a request) continues the trace its W3C `traceparent` names, and the
//! messages it sends carry its own context on.
//!
//! When traces are exported (the binary installed the OpenTelemetry
//! layer), the context is the span's own, so the exported spans of the API,
//! the worker and the WebSocket push form one tree. Otherwise the trace id
//! is still passed on by hand, for the log lines that name it.

use eventsys_messages::trace;
use opentelemetry::{
    Context,
    trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState},
};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Makes `span`, not yet entered, a child of the trace `traceparent` names;
/// a missing or malformed one leaves it the root of a new trace.
pub fn follow(span: &Span, traceparent: Option<&str>) {
    if let Some(parent) = traceparent.and_then(remote_context) {
        // Fails only without the OpenTelemetry layer, when there is no
        // exported span to attach.
        let _ = span.set_parent(Context::new().with_remote_span_context(parent));
    }
}

/// The `traceparent` to send with work caused inside `span`: the span's own
/// context when it is exported, else a new span id under `parent`'s trace.
pub fn traceparent(span: &Span, parent: Option<&str>) -> String {
    let context = span.context();
    let own = context.span().span_context().clone();
    if own.is_valid() {
        format!(
            "00-{}-{}-{:02x}",
            own.trace_id(),
            own.span_id(),
            own.trace_flags().to_u8()
        )
    } else {
        trace::child_of(parent)
    }
}

fn remote_context(traceparent: &str) -> Option<SpanContext> {
    let mut parts = traceparent.split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || parts.next().is_some() || trace.len() != 32 || span.len() != 16 {
        return None;
    }
    let context = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_is_read_back_as_the_same_trace() {
        let sent = trace::new_traceparent();
        let context = remote_context(&sent).expect("a valid traceparent");
        assert_eq!(context.trace_id().to_string(), trace::trace_id(&sent));
        assert!(context.is_sampled());
        for garbage in [
            "",
            "00-zz-11-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        ] {
            assert!(remote_context(garbage).is_none(), "{garbage}");
        }
    }

    #[test]
    fn without_an_exporter_the_trace_is_passed_on_by_hand() {
        let parent = trace::new_traceparent();
        let sent = traceparent(&Span::none(), Some(&parent));
        assert_eq!(trace::trace_id(&sent), trace::trace_id(&parent));
        assert_ne!(sent, parent);
    }
}
