//! Carrying an import's trace through a service: the consume loop continues the trace of the
//! message it handles ([`continue_from`]) for the whole handling ([`in_trace`]), and every
//! publish made meanwhile ([`crate::publish`]) carries a child of it in its `traceparent`
//! header. Handlers pass nothing around: the context is task-local.

use std::future::Future;

use async_nats::HeaderMap;
use contact_contract::{TraceParent, TRACEPARENT_HEADER};

tokio::task_local! {
    static CURRENT: TraceParent;
}

fn random_span_id() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}

/// A new trace, for a client starting an import.
pub fn new_root() -> TraceParent {
    TraceParent::new_root(uuid::Uuid::new_v4().as_u128(), random_span_id())
}

/// The context of the handling of a message: a child of the message's `traceparent`, or a
/// new trace when it has none (a client that does not trace).
pub fn continue_from(headers: Option<&HeaderMap>) -> TraceParent {
    headers
        .and_then(|headers| headers.get(TRACEPARENT_HEADER))
        .and_then(|value| TraceParent::parse(value.as_str()))
        .map_or_else(new_root, |parent| parent.child(random_span_id()))
}

/// Runs `work` within `trace`: what it publishes continues that trace.
pub async fn in_trace<F: Future>(trace: TraceParent, work: F) -> F::Output {
    CURRENT.scope(trace, work).await
}

/// The trace of the work at hand, if it has one.
pub fn current() -> Option<TraceParent> {
    CURRENT.try_with(|trace| *trace).ok()
}

/// Adds the `traceparent` of a message published now: a child of the current trace.
pub fn add_to(headers: &mut HeaderMap) {
    if let Some(trace) = current() {
        headers.insert(
            TRACEPARENT_HEADER,
            trace.child(random_span_id()).to_string().as_str(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn publishes_within_a_handling_continue_its_trace_and_none_outside() {
        let mut incoming = HeaderMap::new();
        incoming.insert(
            TRACEPARENT_HEADER,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );
        let handling = continue_from(Some(&incoming));
        assert_eq!(handling.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(handling.parent_id(), "00f067aa0ba902b7");

        let outgoing = in_trace(handling, async {
            let mut headers = HeaderMap::new();
            add_to(&mut headers);
            headers
        })
        .await;
        let published = TraceParent::parse(
            outgoing
                .get(TRACEPARENT_HEADER)
                .expect("a traceparent")
                .as_str(),
        )
        .expect("valid");
        assert_eq!(published.trace_id(), handling.trace_id());

        let mut outside = HeaderMap::new();
        add_to(&mut outside);
        assert!(outside.get(TRACEPARENT_HEADER).is_none());
    }

    #[test]
    fn a_message_without_a_trace_starts_one() {
        let first = continue_from(None);
        let second = continue_from(None);
        assert_ne!(first.trace_id(), second.trace_id());
    }
}
