//! The API of an account's import history: `imports.list`, `import.undo` and
//! `import.undo_conflicts`. The undo itself is in `undo`.

use std::time::{Duration, Instant};

use contact_contract::{
    limits, AccountId, ApiError, ApiErrorKind, ImportId, ImportState, ImportsCursor,
    ImportsListRequest, ImportsPage, UndoConflict, UndoConflictCursor, UndoConflictsPage,
    UndoConflictsRequest, UndoField, UndoReport, UndoRequest,
};

use super::details_removed;
use super::imports::queued_request;
use crate::context::Writer;
use crate::db::imports;
use crate::db::unavailable;
use crate::db::undo::{self, BatchOutcome, UndoRefused, KEPT_CONTACT, UNDO_BATCH};

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;
/// Longer than any field an undo records (`attribute:` and an attribute key).
const MAX_CURSOR_FIELD_BYTES: usize = 256;

/// How long one `import.undo` call works before it reports where the undo is: well within
/// the client's request timeout. The client calls again while the undo goes on.
const UNDO_CALL_BUDGET: Duration = Duration::from_secs(5);

pub async fn list_imports(
    writer: &Writer,
    account: &AccountId,
    request: ImportsListRequest,
) -> Result<ImportsPage, ApiError> {
    if let Some(digest) = &request.file_sha256 {
        limits::check_sha256(digest)
            .map_err(|reason| ApiError::new(ApiErrorKind::InvalidRequest, reason))?;
    }
    let limit = request.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let mut connection = writer.pool.acquire().await.map_err(unavailable)?;
    let rows = imports::list_page(
        &mut connection,
        account,
        request.status,
        request.file_sha256.as_deref(),
        request
            .before
            .as_ref()
            .map(|cursor| (cursor.created_at, cursor.import_id.as_str())),
        limit,
    )
    .await
    .map_err(unavailable)?;
    let full = rows.len() == limit as usize;
    let mut imports: Vec<_> = rows.iter().map(imports::ImportRow::to_status).collect();
    let cut = limits::cut_page(&mut imports);
    let next = (full || cut)
        .then(|| rows.get(imports.len().wrapping_sub(1)))
        .flatten()
        .map(|row| ImportsCursor {
            created_at: row.created_at,
            import_id: row.request.0.import_id.clone(),
        });
    Ok(ImportsPage { imports, next })
}

/// Starts or resumes the undo of an import and works on it for a bounded time.
pub async fn undo(
    writer: &Writer,
    account: &AccountId,
    request: UndoRequest,
) -> Result<UndoReport, ApiError> {
    let import = &request.import_id;
    let begun = undo::begin(&writer.pool, account, import).await;
    if let Err(UndoRefused::NotFound { .. }) = &begun {
        // Its request may still wait for an ingest replica.
        if queued_request(writer, account, import).await?.is_some() {
            return Err(ApiError::new(
                ApiErrorKind::Conflict,
                format!("import {import} is queued: an import is undone once it has ended (cancel it first)"),
            ));
        }
    }
    begun.map_err(|refusal| match refusal {
        UndoRefused::NotFound { .. } => ApiError::new(ApiErrorKind::NotFound, refusal.to_string()),
        UndoRefused::NotUndoable { .. } | UndoRefused::RecordRemoved { .. } => {
            ApiError::new(ApiErrorKind::Conflict, refusal.to_string())
        }
        UndoRefused::Database(error) => unavailable(error),
    })?;
    work_on_undo(writer, account, import, UNDO_CALL_BUDGET)
        .await
        .map_err(|error| {
            tracing::warn!(%account, %import, error = format!("{error:#}"), "undo batch failed; it resumes on the next call");
            ApiError::new(
                ApiErrorKind::Unavailable,
                format!("the undo of {import} was interrupted ({error}); call undo again to go on"),
            )
        })?;
    report(writer, account, import).await
}

/// Runs batches of an undo until it is done or `budget` has passed; returns whether it is done.
pub async fn work_on_undo(
    writer: &Writer,
    account: &AccountId,
    import: &ImportId,
    budget: Duration,
) -> anyhow::Result<bool> {
    let started = Instant::now();
    while started.elapsed() < budget {
        if writer.shutdown.is_triggered() {
            return Ok(false);
        }
        if undo::run_batch(&writer.pool, account, import, UNDO_BATCH).await?
            == BatchOutcome::Finished
        {
            return Ok(true);
        }
    }
    Ok(false)
}

async fn report(
    writer: &Writer,
    account: &AccountId,
    import: &ImportId,
) -> Result<UndoReport, ApiError> {
    let mut connection = writer.pool.acquire().await.map_err(unavailable)?;
    let counters = imports::undo_counters(&mut connection, account, import)
        .await
        .map_err(unavailable)?;
    let Some(counters) = counters else {
        return Err(ApiError::new(
            ApiErrorKind::NotFound,
            format!("no import {import} in account {account}"),
        ));
    };
    let conflicts = undo::conflict_count(&mut connection, account, import)
        .await
        .map_err(unavailable)?;
    let count = |value: i64| value.max(0) as u64;
    Ok(UndoReport {
        import_id: import.clone(),
        status: ImportState::parse(&counters.status).unwrap_or(ImportState::Undoing),
        contacts_removed: count(counters.undo_removed),
        contacts_restored: count(counters.undo_restored),
        contacts_kept: count(counters.undo_kept),
        conflicts: count(conflicts),
    })
}

pub async fn undo_conflicts(
    writer: &Writer,
    account: &AccountId,
    request: UndoConflictsRequest,
) -> Result<UndoConflictsPage, ApiError> {
    let limit = request.limit.unwrap_or(DEFAULT_PAGE * 5).clamp(1, MAX_PAGE);
    if let Some(cursor) = &request.after {
        // A cursor is a field name this API handed out: an attribute key and a short prefix.
        if cursor.field.len() > MAX_CURSOR_FIELD_BYTES {
            return Err(ApiError::new(
                ApiErrorKind::InvalidRequest,
                format!("the cursor's field is over {MAX_CURSOR_FIELD_BYTES} bytes: not one this API handed out"),
            ));
        }
    }
    let mut connection = writer.pool.acquire().await.map_err(unavailable)?;
    let removed_at = imports::load(&mut connection, account, &request.import_id)
        .await
        .map_err(unavailable)?
        .and_then(|import| import.details_removed_at);
    if let Some(removed_at) = removed_at {
        return Err(details_removed(
            &request.import_id,
            "fields its undo kept",
            removed_at,
        ));
    }
    let (after_id, after_field) = match &request.after {
        Some(cursor) => (cursor.contact_id, cursor.field.as_str()),
        None => (i64::MIN, ""),
    };
    let rows = undo::conflicts_page(
        &mut connection,
        account,
        &request.import_id,
        (after_id, after_field),
        limit,
    )
    .await
    .map_err(unavailable)?;
    let full = rows.len() == limit as usize;
    let mut conflicts: Vec<UndoConflict> = rows
        .iter()
        .map(|(contact_id, field, current, imported)| {
            let (field, attribute) = match field.as_str() {
                "type" => (UndoField::Type, None),
                "category" => (UndoField::Category, None),
                KEPT_CONTACT => (UndoField::Contact, None),
                other => (
                    UndoField::Attribute,
                    Some(
                        other
                            .strip_prefix("attribute:")
                            .unwrap_or(other)
                            .to_string(),
                    ),
                ),
            };
            UndoConflict {
                contact_id: *contact_id,
                field,
                attribute,
                current: current.clone(),
                imported: imported.clone(),
            }
        })
        .collect();
    let cut = limits::cut_page(&mut conflicts);
    let next = (full || cut)
        .then(|| rows.get(conflicts.len().wrapping_sub(1)))
        .flatten()
        .map(|(contact_id, field, _, _)| UndoConflictCursor {
            contact_id: *contact_id,
            field: field.clone(),
        });
    Ok(UndoConflictsPage { conflicts, next })
}
