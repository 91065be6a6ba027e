//! The NATS contract of contact-import: every subject, stream, consumer, bucket and wire type.
//!
//! No other crate spells a subject or a stream name; services and clients ask a [`Namespace`]
//! for them. Every pipeline message and event is JSON with a `schema` field ([`SCHEMA_VERSION`]) so that a
//! reader can refuse what it does not understand instead of misreading it.

pub mod api;
pub mod connection;
pub mod gate;
pub mod limits;
pub mod micro;
mod names;
pub mod permissions;
pub mod schema;
mod setup;
pub mod trace;
mod values;
pub mod web_users;
mod wire;

pub use api::ApiOperation;
pub use connection::NatsSettings;
pub use names::{
    import_of_subject, message_id, AccountId, ImportId, ImportSubjectKind, InvalidName, Namespace,
};
pub use setup::{
    ensure_streams, ensure_uploads_bucket, remove_namespace, uploads_held, ConsumerRole,
    OperatorOperation, CHUNK_TARGET_BYTES, CHUNK_TARGET_ROWS,
};
pub use trace::{TraceParent, TRACEPARENT_HEADER};
// The wire types, named one by one so that a reader sees what the root holds; several share a
// name with a core type they convert into (see `values.rs`), and a glob would hide which is which.
pub use values::{
    convert_all, AttributeDef, AttributeType, ColumnMapping, ColumnSuggestion, DuplicatePolicy,
    InvalidColumn, MappingPlan, Preview, RawRecord, RememberedMapping, RowError, TextEncoding,
    UnfitColumn, UnfitValue, ValidRecord, ValueMapping,
};
pub use wire::{
    AddAttributeRequest, Admission, ApiError, ApiErrorKind, ApiReply, CancelRequest, ContactFilter,
    ContactsPage, ControlEvent, Empty, ErrorsPage, ErrorsRequest, EventsPage, EventsRequest,
    ExportContactsRequest, ExportedContact, FailedRow, FailedRowReport, FailedRowsPage,
    FailedRowsRequest, ImportControl, ImportEvent, ImportEventKind, ImportOptions,
    ImportOptionsReply, ImportRequest, ImportState, ImportStatus, ImportsCursor,
    ImportsListRequest, ImportsPage, PrepareImportReply, PrepareImportRequest,
    PrepareUploadRequest, PreviewRequest, RawChunk, RegisterAccountRequest, RemoveAttributeRequest,
    SetAttributeRequest, StatusRequest, TemplateReply, UndoConflict, UndoConflictCursor,
    UndoConflictsPage, UndoConflictsRequest, UndoField, UndoReport, UndoRequest, UploadTarget,
    ValidatedChunk, PREVIEW_SAMPLE_BYTES,
};

/// The newest version of the wire types, bumped on a change an older reader would get wrong.
/// A build reads every version from [`FIRST_SCHEMA_VERSION`] to this one, and writes each body
/// with the oldest version that holds what it says: during a rolling upgrade a replica not yet
/// upgraded reads what needs nothing new, and leaves the rest for an upgraded one.
pub const SCHEMA_VERSION: u32 = 2;
/// The first version; a body without a `schema` field is of it.
pub const FIRST_SCHEMA_VERSION: u32 = 1;
/// Version 2 added value maps (`ImportOptions::value_mappings`, `MappingPlan::value_maps`):
/// a version 1 reader would drop them and fail every row they map.
pub const VALUE_MAPS_SCHEMA_VERSION: u32 = 2;

/// The header JetStream uses to drop a repeated publish (`Nats-Msg-Id`).
pub const MESSAGE_ID_HEADER: &str = "Nats-Msg-Id";
