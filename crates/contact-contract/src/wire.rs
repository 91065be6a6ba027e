//! The JSON bodies of every message: import requests, pipeline chunks, control messages,
//! progress events and the request/reply API.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::values::{
    AttributeDef, ColumnMapping, DuplicatePolicy, MappingPlan, RawRecord, RowError, ValidRecord,
    ValueMapping,
};
use crate::{AccountId, ImportId, FIRST_SCHEMA_VERSION, VALUE_MAPS_SCHEMA_VERSION};

/// A file's SHA-256 as the contract writes it: 64 lower-case hex digits.
const SHA256_PATTERN: &str = "^[0-9a-f]{64}$";

fn schema_version() -> u32 {
    FIRST_SCHEMA_VERSION
}

/// What the marketer chose for an import, besides the file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ImportOptions {
    /// `--map COLUMN=ATTRIBUTE`; a column named like an attribute maps itself, and an empty
    /// attribute keeps a column out.
    #[serde(default)]
    pub mappings: Vec<ColumnMapping>,
    /// `--map-value ATTRIBUTE:VALUE=ALLOWED`: the file's own spellings of enum and boolean
    /// values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub value_mappings: Vec<ValueMapping>,
    #[serde(default)]
    pub policy: DuplicatePolicy,
    /// Attributes a row is matched on; empty means `email`.
    #[serde(default)]
    pub match_on: Vec<String>,
    #[serde(default)]
    pub contact_type: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub tags: BTreeSet<String>,
    /// Run the whole file through the pipeline and report what would happen; write no contact.
    #[serde(default)]
    pub dry_run: bool,
    /// Force the file's encoding (e.g. "windows-1250"); detected when absent.
    #[serde(default)]
    pub encoding: Option<String>,
    /// Force the delimiter ("," ";" "tab" "|"); detected when absent.
    #[serde(default)]
    pub delimiter: Option<String>,
}

/// Published by a client to the start subject; durable and idempotent by import id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImportRequest {
    #[serde(default = "schema_version")]
    pub schema: u32,
    pub account: AccountId,
    pub import_id: ImportId,
    /// The uploaded file is always object `<import_id>` of the account's uploads bucket (both
    /// taken from the subject). A request may name it here; naming any other is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_name: Option<String>,
    /// The file's own name, for people reading the status.
    #[serde(default)]
    pub file_name: Option<String>,
    /// The SHA-256 of the file's bytes, 64 lower-case hex digits, computed by the client while
    /// it uploads: an earlier import of the same content is named in `repeat_of`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(SHA256_PATTERN))]
    pub file_sha256: Option<String>,
    #[serde(default)]
    pub options: ImportOptions,
}

impl ImportOptions {
    /// The oldest schema that holds these options.
    pub fn schema(&self) -> u32 {
        if self.value_mappings.is_empty() {
            FIRST_SCHEMA_VERSION
        } else {
            VALUE_MAPS_SCHEMA_VERSION
        }
    }
}

impl ImportRequest {
    /// Stands for a request known only by the subject its import's messages travel on (the
    /// request, or a chunk of it, could not be read), so that the import can still be failed.
    pub fn known_by_subject(account: AccountId, import_id: ImportId) -> Self {
        Self {
            schema: FIRST_SCHEMA_VERSION,
            account,
            import_id,
            object_name: None,
            file_name: None,
            file_sha256: None,
            options: ImportOptions::default(),
        }
    }
}

/// Rows as read from the file (ingest → mapper). Self-contained: it carries the mapping plan
/// frozen at the start of the import, so any mapper replica can validate it alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RawChunk {
    #[serde(default = "schema_version")]
    pub schema: u32,
    pub account: AccountId,
    pub import_id: ImportId,
    /// 0-based position of the chunk in the file.
    pub chunk_index: u32,
    pub plan: MappingPlan,
    /// Region for phone numbers written without a country code (e.g. "PL").
    pub phone_region: String,
    pub rows: Vec<RawRecord>,
    /// Records the parser could not read (bad UTF-8, an unclosed quote...), as row errors.
    #[serde(default)]
    pub unreadable: Vec<RowError>,
    /// Byte offset in the file just past the chunk; drives progress.
    pub end_offset: u64,
}

/// Valid records and row errors of one chunk (mapper → writer). The valid records are split
/// into the import's lanes by the hash of their match key (`contact_core::lanes`): each lane
/// of the chunk is applied after the same lane of the chunk before it, independently of the
/// other lanes, so several writers can apply one import at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ValidatedChunk {
    #[serde(default = "schema_version")]
    pub schema: u32,
    pub account: AccountId,
    pub import_id: ImportId,
    pub chunk_index: u32,
    /// The valid records of each lane (one list per lane of the import, empty or not), each
    /// list in file order.
    pub lanes: Vec<Vec<ValidRecord>>,
    /// One or more per failed row, in file order.
    pub errors: Vec<RowError>,
    /// Every failed row as it stood in the file, in file order (several errors may name one).
    pub failed: Vec<FailedRow>,
    pub end_offset: u64,
}

/// A row that failed, as it stood in the file; `fields` is empty when the record could not be
/// read at all (bad bytes, an unclosed quote).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FailedRow {
    pub line: u64,
    pub fields: Vec<String>,
}

/// What ingest tells the writer about an import besides its chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImportControl {
    #[serde(default = "schema_version")]
    pub schema: u32,
    pub account: AccountId,
    pub import_id: ImportId,
    pub event: ControlEvent,
}

impl ImportControl {
    /// Fails the import of `request` for `reason`: before it runs, nothing is written; while it
    /// runs, what its applied chunks wrote stays.
    pub fn rejection(request: ImportRequest, reason: String) -> Self {
        Self {
            schema: request.options.schema(),
            account: request.account.clone(),
            import_id: request.import_id.clone(),
            event: ControlEvent::Rejected { request, reason },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ControlEvent {
    /// The header matched the mapping; chunks follow.
    Accepted {
        request: ImportRequest,
        plan: MappingPlan,
        file_bytes: u64,
    },
    /// Every chunk has been published.
    Finished {
        chunks_total: u32,
        rows_in_file: u64,
        /// Set when the file ended in a way that left rows unread (an unclosed quote...).
        cut_short: Option<String>,
    },
    /// The import cannot run (bad header, unknown attribute, empty file, a message of it that
    /// cannot be read...). Before it runs nothing is written; a running import fails.
    Rejected {
        request: ImportRequest,
        reason: String,
    },
}

/// Where an import is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportState {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
    /// An ended import being taken back (`import.undo`), batch by batch.
    Undoing,
    /// An import taken back: the contacts it created are removed, those it linked restored.
    Undone,
}

impl ImportState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Undoing => "undoing",
            Self::Undone => "undone",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Running,
            Self::Completed,
            Self::Failed,
            Self::Cancelled,
            Self::Undoing,
            Self::Undone,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }

    /// True once the import's file is no longer applied: it ended, and may be undone since.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Cancelled | Self::Undoing | Self::Undone
        )
    }
}

/// The state of an import: the status reply, the payload of every progress event and of the
/// summary. `rows_total` always equals created + linked + duplicated + skipped + failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImportStatus {
    pub import_id: ImportId,
    pub account: AccountId,
    pub status: ImportState,
    pub rows_total: u64,
    pub created: u64,
    pub linked: u64,
    pub duplicated: u64,
    pub skipped: u64,
    pub failed: u64,
    pub unmapped_columns: Vec<String>,
    pub error: Option<String>,
    /// Rows in the file, once ingest has read all of it.
    pub rows_in_file: Option<u64>,
    pub bytes_done: u64,
    pub bytes_total: Option<u64>,
    pub file_name: Option<String>,
    pub policy: DuplicatePolicy,
    /// A dry run reports what the import would do and writes no contact.
    pub dry_run: bool,
    pub created_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// What a queued or running import waits for, in words for people.
    #[serde(default)]
    pub waiting_for: Option<String>,
    /// The latest earlier import (not a dry run) of the same file content into the account.
    #[serde(default)]
    pub repeat_of: Option<ImportId>,
    /// When the deployment's retention removed the import's row errors, failed rows and undo
    /// records: from then on they are not served and the import cannot be undone; its
    /// counters and contacts stay.
    #[serde(default)]
    pub details_removed_at: Option<DateTime<Utc>>,
}

impl ImportStatus {
    /// The status of an import the writer has not heard of yet but whose request is waiting.
    pub fn queued(account: AccountId, import_id: ImportId) -> Self {
        Self {
            import_id,
            account,
            status: ImportState::Queued,
            rows_total: 0,
            created: 0,
            linked: 0,
            duplicated: 0,
            skipped: 0,
            failed: 0,
            unmapped_columns: Vec::new(),
            error: None,
            rows_in_file: None,
            bytes_done: 0,
            bytes_total: None,
            file_name: None,
            policy: DuplicatePolicy::default(),
            dry_run: false,
            created_at: None,
            finished_at: None,
            waiting_for: Some("an ingest replica to take the request".to_string()),
            repeat_of: None,
            details_removed_at: None,
        }
    }
}

/// Published on an import's events subject. Several writers publish one import's events, so
/// they may be stored out of order: `sequence` orders them. A consumer ignores an event whose
/// sequence is not above the last one it took; the summary has the highest sequence of its
/// import and is its only summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImportEvent {
    #[serde(default = "schema_version")]
    pub schema: u32,
    /// 0 for `started`; then the number of chunk lanes applied when the event was taken;
    /// one more than every progress event for the summary.
    #[serde(default)]
    pub sequence: u64,
    pub kind: ImportEventKind,
    pub import: ImportStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportEventKind {
    Started,
    Progress,
    Summary,
}

/// Every API reply: `{"ok": …}` or `{"error": {"kind": …, "message": …}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "ApiReply_for_{T}")]
pub enum ApiReply<T> {
    Ok(T),
    Error(ApiError),
}

impl<T> From<Result<T, ApiError>> for ApiReply<T> {
    fn from(result: Result<T, ApiError>) -> Self {
        match result {
            Ok(value) => Self::Ok(value),
            Err(error) => Self::Error(error),
        }
    }
}

impl<T> ApiReply<T> {
    pub fn into_result(self) -> Result<T, ApiError> {
        match self {
            Self::Ok(value) => Ok(value),
            Self::Error(error) => Err(error),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ApiErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ApiErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// What the caller can do about an error: fix the request, look elsewhere, or try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApiErrorKind {
    InvalidRequest,
    NotFound,
    Conflict,
    Unavailable,
}

/// `status`: the state of one import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StatusRequest {
    pub import_id: ImportId,
}

/// `import.options`: what an import was started with, so that its failed rows, once fixed,
/// can be imported again the same way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImportOptionsReply {
    /// The file's own name, as the request gave it.
    pub file_name: Option<String>,
    pub options: ImportOptions,
}

/// `errors`: one page of an import's row errors, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorsRequest {
    pub import_id: ImportId,
    /// The `next` of the previous page; none for the first.
    #[serde(default)]
    pub after: Option<i64>,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// `events`: the import's events as the events stream holds them, after a position of that
/// stream. A follower subscribes to the events subject first, then reads what came before
/// through this, and again after a reconnection: no tenant creates a consumer, since a push
/// consumer delivers wherever its creator asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventsRequest {
    pub import_id: ImportId,
    /// The `until` of the previous page; none to read from the first event.
    #[serde(default)]
    pub after: Option<u64>,
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventsPage {
    /// In the order the stream holds them.
    pub events: Vec<ImportEvent>,
    /// The stream position read up to: the `after` of the next request.
    pub until: u64,
    /// True when the page was full, so more events may follow at once.
    pub more: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorsPage {
    pub errors: Vec<RowError>,
    /// Where the next page starts; none on the last page.
    pub next: Option<i64>,
}

/// `import.cancel`: stops a running import; what was committed stays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CancelRequest {
    pub import_id: ImportId,
}

/// `import.failed_rows`: one page of the failed rows as they stood in the file, with their
/// errors, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FailedRowsRequest {
    pub import_id: ImportId,
    /// The `next` of the previous page (a line number); none for the first.
    #[serde(default)]
    pub after: Option<u64>,
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FailedRowsPage {
    /// The file's header, for writing the rows back as a CSV.
    pub header: Vec<String>,
    pub rows: Vec<FailedRowReport>,
    pub next: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FailedRowReport {
    pub line: u64,
    pub fields: Vec<String>,
    pub errors: Vec<RowError>,
}

/// `import.template`: the account's sample file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TemplateReply {
    pub file_name: String,
    pub csv: String,
}

/// `import.preview`: how the start of a file will be read, and a suggested mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PreviewRequest {
    /// The first bytes of the file (at most [`PREVIEW_SAMPLE_BYTES`]), base64.
    #[serde(with = "base64_bytes")]
    #[schemars(with = "String")]
    pub sample: Vec<u8>,
    /// True when `sample` is the whole file.
    pub whole_file: bool,
    #[serde(default)]
    pub encoding: Option<String>,
    #[serde(default)]
    pub delimiter: Option<String>,
    #[serde(default)]
    pub mappings: Vec<ColumnMapping>,
    /// Read into each unfit value's `mapped_to`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub value_mappings: Vec<ValueMapping>,
}

/// How much of a file a preview reads.
pub const PREVIEW_SAMPLE_BYTES: usize = 64 * 1024;

mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

/// `attributes.add`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AddAttributeRequest {
    pub attribute: AttributeDef,
}

/// `attributes.set`: changes flags of an attribute; absent fields stay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SetAttributeRequest {
    pub key: String,
    #[serde(default)]
    pub required: Option<bool>,
    #[serde(default)]
    pub identifier: Option<bool>,
}

/// `attributes.remove`: removes an attribute and its values from every contact of the account;
/// refused while a running import maps a column to it or matches on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RemoveAttributeRequest {
    pub key: String,
}

/// `import.upload`: where the file of an import goes. Creates the account's uploads bucket on
/// first use, since clients may not create streams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PrepareUploadRequest {
    pub import_id: ImportId,
    /// The file's size in bytes, when the client knows it: a file over the deployment's limit,
    /// or one the account's uploads have no room for, is refused before it is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UploadTarget {
    /// The account's object store bucket.
    pub bucket: String,
    /// The object the file is put as: the import id.
    pub object: String,
}

/// `import.prepare`: what ingest needs before it reads a file. Creates the account on first use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PrepareImportRequest {
    pub import_id: ImportId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PrepareImportReply {
    pub attributes: Vec<AttributeDef>,
    /// The import's state when the writer already knows it (a repeated request).
    pub existing: Option<ImportState>,
    /// The mapping a running import started with: a redelivered request reads the file again
    /// with it, so every chunk of one import is mapped alike even if attributes changed since.
    #[serde(default)]
    pub plan: Option<MappingPlan>,
    /// True once the writer has ingest's `finished` for the import: every chunk is published,
    /// and a repeated request has nothing left to do.
    #[serde(default)]
    pub file_read: bool,
    /// Whether the import may start now.
    #[serde(default)]
    pub admission: Admission,
    /// The largest file the deployment takes (the writer's `UPLOAD_MAX_FILE_BYTES`, or the
    /// account's byte quota when that is smaller): ingest refuses a larger upload whatever
    /// size its client announced, or if it announced none.
    #[serde(default)]
    pub max_file_bytes: Option<u64>,
}

/// Whether an import may start: each account runs a bounded number of imports at once.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Admission {
    /// Read the file now.
    #[default]
    Start,
    /// The account runs as many imports as it may: the request waits its turn (ingest asks
    /// again in a moment), `position` 1 being next.
    Queued { position: u32, reason: String },
    /// The account runs as many imports as it may and as many more wait: the import fails at
    /// once for this reason, holding no capacity, and may be started again later.
    Refused { reason: String },
}

/// `contacts.export`: one page of the account's contacts, oldest first. The filters combine
/// with AND.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ExportContactsRequest {
    #[serde(default)]
    pub after_id: Option<i64>,
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(default, flatten)]
    pub filter: ContactFilter,
}

/// Which contacts an export returns; every filter given must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ContactFilter {
    /// The contacts this import created or changed (a link that changed nothing is not
    /// recorded); once it is undone, only the created contacts its undo kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_id: Option<ImportId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub contact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

/// `imports.list`: the account's imports, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ImportsListRequest {
    /// Only imports in this state.
    #[serde(default)]
    pub status: Option<ImportState>,
    /// Only imports of a file with this SHA-256 (64 lower-case hex digits).
    #[serde(default)]
    #[schemars(pattern(SHA256_PATTERN))]
    pub file_sha256: Option<String>,
    /// The `next` of the previous page; none for the first.
    #[serde(default)]
    pub before: Option<ImportsCursor>,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Where a page of `imports.list` continues: after the import started at `created_at` with
/// this id, going back in time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImportsCursor {
    pub created_at: DateTime<Utc>,
    pub import_id: ImportId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImportsPage {
    /// Newest first: `created_at` is when the import started, `finished_at` when it ended.
    pub imports: Vec<ImportStatus>,
    pub next: Option<ImportsCursor>,
}

/// `import.undo`: takes back a completed, cancelled or failed import. Each call works for a
/// bounded time and reports where the undo is; while it says `undoing`, calling again goes
/// on (and the writers' sweep goes on by itself after a while).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UndoRequest {
    pub import_id: ImportId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UndoReport {
    pub import_id: ImportId,
    /// `undoing` while batches remain, then `undone`.
    pub status: ImportState,
    /// Contacts the import created, removed.
    pub contacts_removed: u64,
    /// Contacts the import linked, given back what the import changed (all of it or part).
    pub contacts_restored: u64,
    /// Contacts the import created but something changed since: kept whole.
    pub contacts_kept: u64,
    /// Fields left as they are because something changed them after the import (each is an
    /// entry of `import.undo_conflicts`, as is each contact kept).
    pub conflicts: u64,
}

/// `import.undo_conflicts`: one page of what an undo left as it is, by contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UndoConflictsRequest {
    pub import_id: ImportId,
    #[serde(default)]
    pub after: Option<UndoConflictCursor>,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Where a page of `import.undo_conflicts` continues; opaque to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UndoConflictCursor {
    pub contact_id: i64,
    pub field: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UndoConflictsPage {
    pub conflicts: Vec<UndoConflict>,
    pub next: Option<UndoConflictCursor>,
}

/// A field (or a whole contact) an undo did not take back, because something changed it after
/// the import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UndoConflict {
    pub contact_id: i64,
    pub field: UndoField,
    /// The attribute, for `field: attribute`.
    #[serde(default)]
    pub attribute: Option<String>,
    /// What the field holds now (and keeps).
    pub current: Option<String>,
    /// What the import had written there.
    pub imported: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UndoField {
    Attribute,
    Type,
    Category,
    /// A contact the import created and something changed since: kept, not removed.
    Contact,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ContactsPage {
    pub contacts: Vec<ExportedContact>,
    pub next_after_id: Option<i64>,
}

/// A contact as clients see it: values are normalized strings (phones E.164, dates
/// YYYY-MM-DD, booleans true/false).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ExportedContact {
    pub id: i64,
    pub attributes: BTreeMap<String, String>,
    #[serde(rename = "type")]
    pub contact_type: Option<String>,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `accounts.register` on the operator API: makes an account known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RegisterAccountRequest {
    pub account: AccountId,
}

/// An empty request body for operations that take none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Empty {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_replies_are_tagged_ok_or_error() {
        let ok: ApiReply<u32> = Ok(7).into();
        assert_eq!(
            serde_json::to_string(&ok).expect("serializes"),
            r#"{"ok":7}"#
        );
        let error: ApiReply<u32> = Err(ApiError::new(ApiErrorKind::NotFound, "no import x")).into();
        let text = serde_json::to_string(&error).expect("serializes");
        assert_eq!(
            text,
            r#"{"error":{"kind":"not_found","message":"no import x"}}"#
        );
        let back: ApiReply<u32> = serde_json::from_str(&text).expect("parses");
        assert_eq!(
            back.into_result().expect_err("an error").kind,
            ApiErrorKind::NotFound
        );
    }

    #[test]
    fn a_request_without_a_schema_field_reads_as_the_first_schema() {
        let request: ImportRequest = serde_json::from_str(
            r#"{"account":"acme","import_id":"i1","object_name":"acme/i1","options":{"policy":"skip"}}"#,
        )
        .expect("parses");
        assert_eq!(request.schema, FIRST_SCHEMA_VERSION);
        assert_eq!(request.options.policy, DuplicatePolicy::Skip);
    }

    #[test]
    fn a_request_with_an_unknown_policy_is_refused() {
        let result = serde_json::from_str::<ImportRequest>(
            r#"{"account":"acme","import_id":"i1","object_name":"o","options":{"policy":"merge"}}"#,
        );
        assert!(result.is_err());
    }

    #[test]
    fn a_request_with_a_dotted_account_is_refused() {
        let result = serde_json::from_str::<ImportRequest>(
            r#"{"account":"a.b","import_id":"i1","object_name":"o"}"#,
        );
        assert!(result.is_err());
    }
}
