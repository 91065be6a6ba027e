//! The NATS contract of contact-import: every subject, stream, consumer, bucket and wire type.
//!
//! No other crate spells a subject or a stream name; services and clients ask a [`Namespace`]
//! for them. Every pipeline message and event is JSON with a `schema` field ([`SCHEMA_VERSION`]) so that a
//! reader can refuse what it does not understand instead of misreading it.

pub mod api;
mod names;
mod setup;
mod wire;

pub use names::{message_id, AccountId, ImportId, ImportSubjectKind, InvalidName, Namespace};
pub use setup::{
    ensure_jetstream, ensure_streams, ApiOperation, ConsumerRole, CHUNK_TARGET_BYTES,
    CHUNK_TARGET_ROWS,
};
pub use wire::*;

/// The version of every wire type in this crate; bumped on an incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// The header JetStream uses to drop a repeated publish (`Nats-Msg-Id`).
pub const MESSAGE_ID_HEADER: &str = "Nats-Msg-Id";
