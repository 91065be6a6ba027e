//! The operations on one import: preparing it (admission, its upload bucket), its status
//! (queued ones included), its row errors and failed rows, and cancelling it.

use async_nats::jetstream::stream::LastRawMessageErrorKind;
use contact_contract::{convert_all, limits, Admission, RowError};
use contact_contract::{
    AccountId, ApiError, ApiErrorKind, CancelRequest, ErrorsPage, ErrorsRequest, EventsPage,
    EventsRequest, FailedRowReport, FailedRowsPage, FailedRowsRequest, ImportId,
    ImportOptionsReply, ImportRequest, ImportState, ImportStatus, ImportSubjectKind,
    PrepareImportReply, PrepareImportRequest, PrepareUploadRequest, StatusRequest, UploadTarget,
};
use contact_core::admission::AdmissionLimits;

use super::{details_removed, no_such_import, page_limit};
use crate::closing;
use crate::context::Writer;
use crate::db::imports::{self, ImportRow};
use crate::db::row_errors::{self, StoredRowError};
use crate::db::{accounts, admissions, unavailable};

pub async fn prepare_import(
    writer: &Writer,
    account: &AccountId,
    request: PrepareImportRequest,
) -> Result<PrepareImportReply, ApiError> {
    let mut connection = writer.pool.acquire().await.map_err(unavailable)?;
    accounts::ensure_account(&mut connection, account)
        .await
        .map_err(unavailable)?;
    let attributes = accounts::load_attributes(&mut connection, account)
        .await
        .map_err(unavailable)?;
    let stored = imports::load(&mut connection, account, &request.import_id)
        .await
        .map_err(unavailable)?;
    let existing = stored.as_ref().map(ImportRow::state);
    let file_read = stored
        .as_ref()
        .is_some_and(|row| row.chunks_total.is_some());
    let admission = if stored.is_some() {
        // A redelivered request of an import already admitted.
        Admission::Start
    } else {
        let limits = AdmissionLimits {
            running: writer.running_per_account,
            queued: writer.queued_per_account,
        };
        admissions::admit(&mut connection, account, &request.import_id, limits)
            .await
            .map_err(unavailable)?
    };
    let plan = stored
        .filter(|row| row.state() == ImportState::Running)
        .and_then(|row| row.plan)
        .map(|plan| plan.0);
    Ok(PrepareImportReply {
        attributes: convert_all(attributes),
        existing,
        plan,
        file_read,
        admission,
        max_file_bytes: Some(writer.upload_limits.max_file_bytes),
    })
}

/// Where the client puts the file of an import: its account's bucket, which it may write
/// and nobody else may. Created here, since clients may not create streams. A file over the
/// limits (`UPLOAD_MAX_FILE_BYTES`, `UPLOAD_BYTES_PER_ACCOUNT`) is refused before it is sent.
pub async fn prepare_upload(
    writer: &Writer,
    account: &AccountId,
    request: PrepareUploadRequest,
) -> Result<UploadTarget, ApiError> {
    // A file too large for any bucket is refused without touching one.
    writer
        .upload_limits
        .check(request.size, 0)
        .map_err(|refusal| ApiError::new(ApiErrorKind::InvalidRequest, refusal.to_string()))?;
    let held = contact_contract::ensure_uploads_bucket(
        &writer.jetstream,
        &writer.namespace,
        account,
        writer.upload_limits.bytes_per_account,
    )
    .await
    .map_err(|error| {
        tracing::error!(%error, %account, "cannot create the uploads bucket");
        ApiError::new(
            ApiErrorKind::Unavailable,
            "the uploads bucket is not available right now",
        )
    })?;
    writer
        .upload_limits
        .check(request.size, held)
        .map_err(|refusal| ApiError::new(ApiErrorKind::Conflict, refusal.to_string()))?;
    if writer.upload_limits.files_per_account.is_some() {
        let files = contact_contract::uploads_held(&writer.jetstream, &writer.namespace, account)
            .await
            .map_err(|error| {
                tracing::error!(%error, %account, "cannot count the uploaded files");
                ApiError::new(
                    ApiErrorKind::Unavailable,
                    "the uploads bucket is not available right now",
                )
            })?;
        writer
            .upload_limits
            .check_files(files)
            .map_err(|refusal| ApiError::new(ApiErrorKind::Conflict, refusal.to_string()))?;
    }
    Ok(UploadTarget {
        bucket: writer.namespace.uploads_bucket(account),
        object: request.import_id.to_string(),
    })
}

pub async fn status(
    writer: &Writer,
    account: &AccountId,
    request: StatusRequest,
) -> Result<ImportStatus, ApiError> {
    let mut connection = writer.pool.acquire().await.map_err(unavailable)?;
    if let Some(row) = imports::load(&mut connection, account, &request.import_id)
        .await
        .map_err(unavailable)?
    {
        return Ok(row.to_status());
    }
    // Not started yet: the request may still be waiting for an ingest replica, or its turn.
    if queued_request(writer, account, &request.import_id)
        .await?
        .is_none()
    {
        return Err(no_such_import(account, &request.import_id));
    }
    let position = admissions::position(&mut connection, account, &request.import_id)
        .await
        .map_err(unavailable)?;
    let mut status = ImportStatus::queued(account.clone(), request.import_id);
    if let Some(position) = position {
        status.waiting_for = Some(format!(
            "its turn: the account runs {} imports at once, and this one is number {position} \
             in its queue",
            writer.running_per_account
        ));
    }
    Ok(status)
}

/// What the import was started with: from its record, or from its request while it waits
/// for an ingest replica.
pub async fn import_options(
    writer: &Writer,
    account: &AccountId,
    request: StatusRequest,
) -> Result<ImportOptionsReply, ApiError> {
    let mut connection = writer.pool.acquire().await.map_err(unavailable)?;
    let started = match imports::load(&mut connection, account, &request.import_id)
        .await
        .map_err(unavailable)?
    {
        Some(row) => row.request.0,
        None => queued_request(writer, account, &request.import_id)
            .await?
            .ok_or_else(|| no_such_import(account, &request.import_id))?,
    };
    Ok(ImportOptionsReply {
        file_name: started.file_name,
        options: started.options,
    })
}

/// The start request of an import no ingest replica has taken yet, read from its stream.
pub async fn queued_request(
    writer: &Writer,
    account: &AccountId,
    import: &ImportId,
) -> Result<Option<ImportRequest>, ApiError> {
    let unavailable = |error: String| {
        ApiError::new(
            ApiErrorKind::Unavailable,
            format!("cannot read the request stream: {error}"),
        )
    };
    let subject = writer
        .namespace
        .import_subject(ImportSubjectKind::Start, account, import);
    let stream = writer
        .jetstream
        .get_stream(writer.namespace.requests_stream())
        .await
        .map_err(|error| unavailable(error.to_string()))?;
    match stream.get_last_raw_message_by_subject(&subject).await {
        Ok(message) => Ok(serde_json::from_slice(&message.payload).ok()),
        Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(error) => Err(unavailable(error.to_string())),
    }
}

/// Events are small and a follower catches up in few calls; the bound keeps one answer short.
const MAX_EVENTS_PAGE: u32 = 250;

pub async fn events(
    writer: &Writer,
    account: &AccountId,
    request: EventsRequest,
) -> Result<EventsPage, ApiError> {
    let limit = request
        .limit
        .unwrap_or(MAX_EVENTS_PAGE)
        .clamp(1, MAX_EVENTS_PAGE);
    let stored = crate::events::stored_after(
        writer,
        account,
        &request.import_id,
        request.after.unwrap_or(0),
        limit as usize,
    )
    .await
    .map_err(|error| {
        tracing::error!(error = %format!("{error:#}"), "reading stored events for the API");
        ApiError::new(
            ApiErrorKind::Unavailable,
            "the import's events cannot be read right now",
        )
    })?;
    Ok(EventsPage {
        events: stored.events,
        until: stored.until,
        more: stored.more,
    })
}

pub async fn errors(
    writer: &Writer,
    account: &AccountId,
    request: ErrorsRequest,
) -> Result<ErrorsPage, ApiError> {
    let mut connection = writer.pool.acquire().await.map_err(unavailable)?;
    let Some(import) = imports::load(&mut connection, account, &request.import_id)
        .await
        .map_err(unavailable)?
    else {
        return Err(no_such_import(account, &request.import_id));
    };
    if let Some(removed_at) = import.details_removed_at {
        return Err(details_removed(
            &request.import_id,
            "row errors",
            removed_at,
        ));
    }
    let limit = page_limit(request.limit);
    let rows = row_errors::errors_page(
        &mut connection,
        account,
        &request.import_id,
        request.after.unwrap_or(0),
        limit,
    )
    .await
    .map_err(unavailable)?;
    let full = rows.len() == limit as usize;
    let ids: Vec<i64> = rows.iter().map(|row| row.error_id).collect();
    let mut errors: Vec<RowError> = rows
        .into_iter()
        .map(StoredRowError::into_row_error)
        .collect();
    let cut = limits::cut_page(&mut errors);
    let next = (full || cut)
        .then(|| ids.get(errors.len().wrapping_sub(1)).copied())
        .flatten();
    Ok(ErrorsPage { errors, next })
}

pub async fn failed_rows(
    writer: &Writer,
    account: &AccountId,
    request: FailedRowsRequest,
) -> Result<FailedRowsPage, ApiError> {
    let mut connection = writer.pool.acquire().await.map_err(unavailable)?;
    let Some(import) = imports::load(&mut connection, account, &request.import_id)
        .await
        .map_err(unavailable)?
    else {
        return Err(no_such_import(account, &request.import_id));
    };
    if let Some(removed_at) = import.details_removed_at {
        return Err(details_removed(
            &request.import_id,
            "failed rows",
            removed_at,
        ));
    }
    let limit = page_limit(request.limit);
    let rows = row_errors::failed_rows_page(
        &mut connection,
        account,
        &request.import_id,
        request.after.unwrap_or(0) as i64,
        limit,
    )
    .await
    .map_err(unavailable)?;
    let lines: Vec<i64> = rows.iter().map(|row| row.line).collect();
    let mut errors =
        row_errors::errors_on_lines(&mut connection, account, &request.import_id, &lines)
            .await
            .map_err(unavailable)?;
    let full = rows.len() == limit as usize;
    let mut rows: Vec<FailedRowReport> = rows
        .into_iter()
        .map(|row| {
            let (of_row, others) = errors.drain(..).partition(|error| error.line == row.line);
            errors = others;
            FailedRowReport {
                line: row.line.max(0) as u64,
                fields: row.fields,
                errors: of_row
                    .into_iter()
                    .map(StoredRowError::into_row_error)
                    .collect(),
            }
        })
        .collect();
    let cut = limits::cut_page(&mut rows);
    let next = (full || cut)
        .then(|| rows.last().map(|row| row.line))
        .flatten();
    let header = import.plan.map(|plan| plan.0.header).unwrap_or_default();
    Ok(FailedRowsPage { header, rows, next })
}

/// Stops a running (or queued) import. Parts already committed stay, and the counters are
/// what was written; parts still in flight are dropped when they arrive.
pub async fn cancel(
    writer: &Writer,
    account: &AccountId,
    request: CancelRequest,
) -> Result<ImportStatus, ApiError> {
    let import_id = &request.import_id;
    let failed = |error: anyhow::Error| {
        tracing::error!(error = format!("{error:#}"), "cancel failed");
        ApiError::new(
            ApiErrorKind::Unavailable,
            "the contact base is not available right now",
        )
    };
    let existing = imports::load(
        &mut *writer.pool.acquire().await.map_err(unavailable)?,
        account,
        import_id,
    )
    .await
    .map_err(unavailable)?;
    match cancel_step(existing) {
        CancelStep::AlreadyOver(row) => Err(already_over(import_id, &row)),
        CancelStep::Close => {
            match closing::close_running(writer, account, import_id, ImportState::Cancelled, None)
                .await
                .map_err(failed)?
            {
                Some(cancelled) => Ok(cancelled.to_status()),
                // It ended meanwhile.
                None => Err(
                    match imports::load(
                        &mut *writer.pool.acquire().await.map_err(unavailable)?,
                        account,
                        import_id,
                    )
                    .await
                    .map_err(unavailable)?
                    {
                        Some(row) => already_over(import_id, &row),
                        None => no_such_import(account, import_id),
                    },
                ),
            }
        }
        CancelStep::RecordIfQueued => {
            let Some(queued) = queued_request(writer, account, import_id).await? else {
                return Err(no_such_import(account, import_id));
            };
            let mut transaction = writer.pool.begin().await.map_err(unavailable)?;
            accounts::ensure_account(&mut transaction, account)
                .await
                .map_err(unavailable)?;
            let recorded = imports::insert_closed(
                &mut transaction,
                &writer.namespace,
                &queued,
                ImportState::Cancelled,
                None,
            )
            .await
            .map_err(unavailable)?;
            transaction.commit().await.map_err(unavailable)?;
            if !recorded {
                return Err(ApiError::new(
                    ApiErrorKind::Conflict,
                    format!("import {import_id} just started; try again"),
                ));
            }
            let mut connection = writer.pool.acquire().await.map_err(unavailable)?;
            let cancelled = imports::load(&mut connection, account, import_id)
                .await
                .map_err(unavailable)?
                .ok_or_else(|| no_such_import(account, import_id))?;
            if let Err(error) = closing::publish_summary(writer, &mut connection, &cancelled).await
            {
                // The sweep publishes the summary later; the cancel itself is committed.
                tracing::warn!(%account, import = %import_id, error = format!("{error:#}"), "summary of a cancelled import delayed");
            }
            Ok(cancelled.to_status())
        }
    }
}

/// What cancelling does to an import, by the state recorded of it.
#[derive(Debug)]
enum CancelStep {
    /// It ended (or is being undone): cancelling is refused, saying how it ended.
    AlreadyOver(Box<ImportRow>),
    /// It runs: it closes as cancelled, and what its applied parts wrote stays.
    Close,
    /// Nothing is recorded: if it waits in the queue, it is recorded as cancelled, so that
    /// ingest skips it when its turn comes; otherwise there is no such import.
    RecordIfQueued,
}

fn cancel_step(recorded: Option<ImportRow>) -> CancelStep {
    match recorded {
        Some(row) if row.state().is_terminal() => CancelStep::AlreadyOver(Box::new(row)),
        Some(_) => CancelStep::Close,
        None => CancelStep::RecordIfQueued,
    }
}

pub fn already_over(import_id: &ImportId, row: &ImportRow) -> ApiError {
    ApiError::new(
        ApiErrorKind::Conflict,
        format!("import {import_id} is already {}", row.state().as_str()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_running_or_queued_import_can_be_cancelled() {
        let step = |state| cancel_step(Some(ImportRow::example("acme", "imp-1", state)));
        assert!(matches!(cancel_step(None), CancelStep::RecordIfQueued));
        assert!(matches!(step(ImportState::Running), CancelStep::Close));
        for ended in [
            ImportState::Completed,
            ImportState::Failed,
            ImportState::Cancelled,
            ImportState::Undoing,
            ImportState::Undone,
        ] {
            assert!(
                matches!(step(ended), CancelStep::AlreadyOver(row) if row.state() == ended),
                "{ended:?}"
            );
        }
    }

    #[test]
    fn a_refused_cancel_says_how_the_import_ended() {
        let row = ImportRow::example("acme", "imp-1", ImportState::Completed);
        let refused = already_over(&row.import().expect("valid"), &row);
        assert_eq!(refused.kind, ApiErrorKind::Conflict);
        assert_eq!(refused.message, "import imp-1 is already completed");
    }
}
