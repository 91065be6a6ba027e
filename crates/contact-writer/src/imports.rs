//! The `imports` table: an import's options, state, counters and chunk bookkeeping, and its
//! translation into the [`ImportStatus`] clients see.

use chrono::{DateTime, Utc};
use contact_contract::{AccountId, ImportId, ImportRequest, ImportState, ImportStatus, Namespace};
use contact_core::mapping::MappingPlan;
use contact_core::merge::OutcomeCounts;
use sqlx::types::Json;
use sqlx::PgConnection;

/// One row of `imports`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImportRow {
    pub account_id: String,
    pub import_id: String,
    pub status: String,
    pub request: Json<ImportRequest>,
    pub plan: Option<Json<MappingPlan>>,
    pub unmapped_columns: Vec<String>,
    pub file_name: Option<String>,
    pub bytes_total: Option<i64>,
    pub bytes_done: i64,
    pub next_chunk: i32,
    pub chunks_total: Option<i32>,
    pub rows_in_file: Option<i64>,
    pub created: i64,
    pub linked: i64,
    pub duplicated: i64,
    pub skipped: i64,
    pub failed: i64,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl ImportRow {
    pub fn state(&self) -> ImportState {
        ImportState::parse(&self.status).unwrap_or(ImportState::Failed)
    }

    /// True when every chunk of the file has been applied.
    pub fn all_chunks_applied(&self) -> bool {
        self.chunks_total
            .is_some_and(|total| self.next_chunk >= total)
    }

    pub fn to_status(&self) -> ImportStatus {
        let count = |value: i64| value.max(0) as u64;
        let (created, linked, duplicated, skipped, failed) = (
            count(self.created),
            count(self.linked),
            count(self.duplicated),
            count(self.skipped),
            count(self.failed),
        );
        ImportStatus {
            import_id: self.request.0.import_id.clone(),
            account: self.request.0.account.clone(),
            status: self.state(),
            rows_total: created + linked + duplicated + skipped + failed,
            created,
            linked,
            duplicated,
            skipped,
            failed,
            unmapped_columns: self.unmapped_columns.clone(),
            error: self.error.clone(),
            rows_in_file: self.rows_in_file.map(count),
            bytes_done: count(self.bytes_done),
            bytes_total: self.bytes_total.map(count),
            file_name: self.file_name.clone(),
            policy: self.request.0.options.policy,
            dry_run: self.request.0.options.dry_run,
            created_at: Some(self.created_at),
            finished_at: self.finished_at,
        }
    }
}

pub async fn load(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
) -> sqlx::Result<Option<ImportRow>> {
    sqlx::query_as("SELECT * FROM imports WHERE account_id = $1 AND import_id = $2")
        .bind(account.as_str())
        .bind(import.as_str())
        .fetch_optional(connection)
        .await
}

/// Locks the import's row for the rest of the transaction. Every change to an import's
/// chunks, counters and state happens under this lock, and so does every event published
/// about it: events of one import are therefore totally ordered.
pub async fn lock(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
) -> sqlx::Result<Option<ImportRow>> {
    sqlx::query_as("SELECT * FROM imports WHERE account_id = $1 AND import_id = $2 FOR UPDATE")
        .bind(account.as_str())
        .bind(import.as_str())
        .fetch_optional(connection)
        .await
}

/// Records an accepted import as running; returns it if it was new (a repeat changes nothing).
pub async fn insert_running(
    connection: &mut PgConnection,
    namespace: &Namespace,
    request: &ImportRequest,
    plan: &MappingPlan,
    file_bytes: u64,
) -> sqlx::Result<Option<ImportRow>> {
    sqlx::query_as(
        "INSERT INTO imports (account_id, import_id, status, request, plan, unmapped_columns, file_name, bytes_total, namespace)
         VALUES ($1, $2, 'running', $3, $4, $5, $6, $7, $8)
         ON CONFLICT DO NOTHING
         RETURNING *",
    )
    .bind(request.account.as_str())
    .bind(request.import_id.as_str())
    .bind(Json(request))
    .bind(Json(plan))
    .bind(&plan.unmapped_columns)
    .bind(&request.file_name)
    .bind(file_bytes as i64)
    .bind(namespace.name())
    .fetch_optional(connection)
    .await
}

/// Records an import that ends before it runs (rejected: failed; cancelled while queued);
/// returns it if it was new.
pub async fn insert_closed(
    connection: &mut PgConnection,
    namespace: &Namespace,
    request: &ImportRequest,
    state: ImportState,
    reason: Option<&str>,
) -> sqlx::Result<Option<ImportRow>> {
    sqlx::query_as(
        "INSERT INTO imports (account_id, import_id, status, request, file_name, error, finished_at, namespace)
         VALUES ($1, $2, $3, $4, $5, $6, now(), $7)
         ON CONFLICT DO NOTHING
         RETURNING *",
    )
    .bind(request.account.as_str())
    .bind(request.import_id.as_str())
    .bind(state.as_str())
    .bind(Json(request))
    .bind(&request.file_name)
    .bind(reason)
    .bind(namespace.name())
    .fetch_optional(connection)
    .await
}

/// Records that ingest has published every chunk.
pub async fn set_file_totals(
    connection: &mut PgConnection,
    row: &ImportRow,
    chunks_total: u32,
    rows_in_file: u64,
    cut_short: Option<&str>,
) -> sqlx::Result<ImportRow> {
    sqlx::query_as(
        "UPDATE imports SET chunks_total = $3, rows_in_file = $4, error = COALESCE($5, error), updated_at = now()
         WHERE account_id = $1 AND import_id = $2
         RETURNING *",
    )
    .bind(&row.account_id)
    .bind(&row.import_id)
    .bind(chunks_total as i32)
    .bind(rows_in_file as i64)
    .bind(cut_short.map(|reason| format!("the file was cut short: {reason}")))
    .fetch_one(connection)
    .await
}

/// Adds one applied chunk to the counters and moves on to the next chunk.
pub async fn record_chunk_applied(
    connection: &mut PgConnection,
    row: &ImportRow,
    counts: &OutcomeCounts,
    failed_rows: usize,
    end_offset: u64,
) -> sqlx::Result<ImportRow> {
    sqlx::query_as(
        "UPDATE imports SET next_chunk = next_chunk + 1,
            created = created + $3, linked = linked + $4, duplicated = duplicated + $5,
            skipped = skipped + $6, failed = failed + $7,
            bytes_done = GREATEST(bytes_done, $8), updated_at = now()
         WHERE account_id = $1 AND import_id = $2
         RETURNING *",
    )
    .bind(&row.account_id)
    .bind(&row.import_id)
    .bind(counts.created as i64)
    .bind(counts.linked as i64)
    .bind(counts.duplicated as i64)
    .bind(counts.skipped as i64)
    .bind(failed_rows as i64)
    .bind(end_offset as i64)
    .fetch_one(connection)
    .await
}

/// Ends a running import as `state` (completed or cancelled) and drops its waiting chunks.
pub async fn finish(
    connection: &mut PgConnection,
    row: &ImportRow,
    state: ImportState,
    reason: Option<&str>,
) -> sqlx::Result<ImportRow> {
    sqlx::query("DELETE FROM pending_chunks WHERE account_id = $1 AND import_id = $2")
        .bind(&row.account_id)
        .bind(&row.import_id)
        .execute(&mut *connection)
        .await?;
    // A completed import has read its whole file; a cancelled one stops where it is.
    sqlx::query_as(
        "UPDATE imports SET status = $3,
            bytes_done = CASE WHEN $3 = 'completed' THEN COALESCE(bytes_total, bytes_done) ELSE bytes_done END,
            error = COALESCE($4, error), finished_at = now(), updated_at = now()
         WHERE account_id = $1 AND import_id = $2
         RETURNING *",
    )
    .bind(&row.account_id)
    .bind(&row.import_id)
    .bind(state.as_str())
    .bind(reason)
    .fetch_one(connection)
    .await
}

/// Records that the import's summary event went out.
pub async fn mark_summary_published(
    connection: &mut PgConnection,
    row: &ImportRow,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE imports SET summary_published = true WHERE account_id = $1 AND import_id = $2",
    )
    .bind(&row.account_id)
    .bind(&row.import_id)
    .execute(connection)
    .await?;
    Ok(())
}
