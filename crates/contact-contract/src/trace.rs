//! The W3C trace context every message of an import carries in its `traceparent` header
//! (`00-<trace id>-<parent id>-<flags>`, lower-case hex): the CLI starts a trace per import,
//! and each service continues it in the messages it publishes while handling one, so that one
//! import's log lines can be found across the three services.
//!
//! The consume loop continues the trace of the message it handles ([`continue_from`]) for the
//! whole handling ([`in_trace`]), and every publish made meanwhile carries a child of it
//! ([`add_to`]). Handlers pass nothing around: the context of the work at hand is task-local.

use std::fmt;
use std::future::Future;

use async_nats::HeaderMap;

/// The header that carries the trace context.
pub const TRACEPARENT_HEADER: &str = "traceparent";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: u128,
    parent_id: u64,
    flags: u8,
}

impl TraceParent {
    /// A new trace; `trace_id` and `span_id` must be random and not zero (zero is replaced).
    pub fn new_root(trace_id: u128, span_id: u64) -> Self {
        Self {
            trace_id: trace_id.max(1),
            parent_id: span_id.max(1),
            flags: 0x01,
        }
    }

    /// The context of a message published from the span `span_id` of this trace.
    pub fn child(self, span_id: u64) -> Self {
        Self {
            parent_id: span_id.max(1),
            ..self
        }
    }

    /// Reads a `traceparent` header of version 00; anything malformed is `None` (the
    /// receiver then starts a trace of its own, as the recommendation says).
    pub fn parse(header: &str) -> Option<Self> {
        let mut fields = header.trim().split('-');
        let (version, trace, parent, flags) = (
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next()?,
        );
        let hex = |field: &str, length: usize| {
            field.len() == length
                && field
                    .bytes()
                    .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
        };
        if version != "00" || fields.next().is_some() {
            return None;
        }
        if !(hex(trace, 32) && hex(parent, 16) && hex(flags, 2)) {
            return None;
        }
        let context = Self {
            trace_id: u128::from_str_radix(trace, 16).ok()?,
            parent_id: u64::from_str_radix(parent, 16).ok()?,
            flags: u8::from_str_radix(flags, 16).ok()?,
        };
        (context.trace_id != 0 && context.parent_id != 0).then_some(context)
    }

    /// The trace id, as logs show it (32 hex digits).
    pub fn trace_id(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The span that published the message (16 hex digits).
    pub fn parent_id(&self) -> String {
        format!("{:016x}", self.parent_id)
    }
}

impl fmt::Display for TraceParent {
    /// The header's value.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.parent_id, self.flags
        )
    }
}

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

    #[test]
    fn the_recommendations_example_reads_and_writes_back_alike() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = TraceParent::parse(header).expect("valid");
        assert_eq!(context.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.parent_id(), "00f067aa0ba902b7");
        assert_eq!(context.to_string(), header);
    }

    #[test]
    fn a_child_keeps_the_trace_and_names_its_own_span() {
        let root = TraceParent::new_root(0xabc, 0x1);
        let child = root.child(0x2f);
        assert_eq!(child.trace_id(), root.trace_id());
        assert_eq!(child.parent_id(), "000000000000002f");
        assert_eq!(
            child.to_string(),
            "00-00000000000000000000000000000abc-000000000000002f-01"
        );
    }

    #[test]
    fn malformed_or_zero_contexts_are_not_taken() {
        for header in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(header), None, "{header:?}");
        }
    }

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
