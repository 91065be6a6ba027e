//! The NATS contract of contact-import: every subject, stream, consumer, bucket and wire type.
//!
//! No other crate spells a subject or a stream name; services and clients ask a [`Namespace`]
//! for them. Every pipeline message and event is JSON with a `schema` field ([`SCHEMA_VERSION`]) so that a
//! reader can refuse what it does not understand instead of misreading it.

pub mod api;
pub mod limits;
mod names;
pub mod permissions;
pub mod schema;
mod setup;
pub mod trace;
mod values;
mod wire;

pub use api::ApiOperation;
pub use names::{
    import_of_subject, message_id, AccountId, ImportId, ImportSubjectKind, InvalidName, Namespace,
};
pub use setup::{
    ensure_streams, ensure_uploads_bucket, remove_namespace, ConsumerRole, OperatorOperation,
    CHUNK_TARGET_BYTES, CHUNK_TARGET_ROWS,
};
pub use trace::{TraceParent, TRACEPARENT_HEADER};
pub use values::*;
pub use wire::*;

/// The version of every wire type in this crate; bumped on an incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// True when `payload` is a message of a later schema than this build reads. During a rolling
/// upgrade such a message waits for an upgraded replica rather than being refused: refusing it
/// would fail the import it belongs to.
pub fn written_by_newer_version(payload: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Versioned {
        #[serde(default)]
        schema: u32,
    }
    serde_json::from_slice::<Versioned>(payload)
        .is_ok_and(|message| message.schema > SCHEMA_VERSION)
}

/// The header JetStream uses to drop a repeated publish (`Nats-Msg-Id`).
pub const MESSAGE_ID_HEADER: &str = "Nats-Msg-Id";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_later_schema_counts_as_newer() {
        let later = format!(
            r#"{{"schema":{},"kind":"from_the_future"}}"#,
            SCHEMA_VERSION + 1
        );
        assert!(written_by_newer_version(later.as_bytes()));
        let current = format!(r#"{{"schema":{SCHEMA_VERSION}}}"#);
        assert!(!written_by_newer_version(current.as_bytes()));
        assert!(!written_by_newer_version(b"{}"));
        assert!(!written_by_newer_version(b"not json"));
    }
}
