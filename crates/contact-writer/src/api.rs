//! The request/reply API (status, row errors, attributes, contacts, import preparation),
//! served on a queue group so that each request is answered by one writer replica.

use std::future::Future;
use std::sync::Arc;

use async_nats::jetstream::stream::LastRawMessageErrorKind;
use bytes::Bytes;
use contact_contract::api::{ops, Operation};
use contact_contract::{convert_all, AttributeDef, Preview, RowError};
use contact_contract::{
    limits, Admission, OperatorOperation, RegisterAccountRequest, RemoveAttributeRequest,
};
use contact_contract::{
    AccountId, ApiError, ApiErrorKind, ApiOperation, ApiReply, ContactsPage, Empty, ErrorsPage,
    ErrorsRequest, ExportContactsRequest, ImportStatus, ImportSubjectKind, PrepareImportReply,
    PrepareImportRequest, SetAttributeRequest, StatusRequest,
};
use contact_contract::{
    CancelRequest, FailedRowReport, FailedRowsPage, FailedRowsRequest, ImportId, ImportRequest,
    ImportState, PrepareUploadRequest, PreviewRequest, TemplateReply, UploadTarget,
    PREVIEW_SAMPLE_BYTES,
};
use contact_core::admission::AdmissionLimits;
use contact_core::encoding::TextEncoding;
use contact_core::mapping;
use contact_core::preview::PreviewOptions;
use contact_core::sniff::parse_delimiter;
use contact_runtime::Shutdown;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::accounts::{self, unavailable};
use crate::admission;
use crate::imports::ImportRow;
use crate::{closing, contacts, history, imports, Writer};

pub(crate) const REQUESTS_IN_FLIGHT: usize = 16;
const DEFAULT_PAGE: u32 = 500;
const MAX_PAGE: u32 = 1000;

/// Answers API requests until the shutdown is triggered, then finishes those in hand.
pub async fn serve(writer: Arc<Writer>, shutdown: Shutdown) -> anyhow::Result<()> {
    let namespace = &writer.namespace;
    let api = writer
        .client
        .queue_subscribe(namespace.api_wildcard(), namespace.api_queue_group())
        .await?;
    let operator = writer
        .client
        .queue_subscribe(namespace.operator_wildcard(), namespace.api_queue_group())
        .await?;
    let mut requests = futures::stream::select(api, operator);
    let permits = Arc::new(Semaphore::new(REQUESTS_IN_FLIGHT));
    let mut in_flight = JoinSet::new();
    loop {
        let message = tokio::select! {
            _ = shutdown.triggered() => break,
            message = requests.next() => match message {
                Some(message) => message,
                None => break,
            },
        };
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let writer = writer.clone();
        in_flight.spawn(async move {
            answer(&writer, message).await;
            drop(permit);
        });
        while in_flight.try_join_next().is_some() {}
    }
    drop(requests);
    while in_flight.join_next().await.is_some() {}
    Ok(())
}

async fn answer(writer: &Writer, message: async_nats::Message) {
    let Some(reply_subject) = message.reply.clone() else {
        return;
    };
    let body =
        if let Some((account, operation)) = writer.namespace.parse_api_subject(&message.subject) {
            match accounts::admit(writer, &account).await {
                Ok(()) => dispatch(writer, &account, operation, &message.payload).await,
                Err(refused) => encode::<Empty>(Err(refused)),
            }
        } else if let Some(operation) = writer.namespace.parse_operator_subject(&message.subject) {
            operator(writer, operation, &message.payload).await
        } else {
            encode::<Empty>(Err(ApiError::new(
                ApiErrorKind::InvalidRequest,
                format!("no API operation on {}", message.subject),
            )))
        };
    if let Err(error) = writer.client.publish(reply_subject, body).await {
        tracing::warn!(%error, subject = %message.subject, "could not send an API reply");
    }
}

/// The operator's API: only the operator's credentials may publish on its subjects.
async fn operator(writer: &Writer, operation: OperatorOperation, payload: &[u8]) -> Bytes {
    match operation {
        OperatorOperation::RegisterAccount => {
            decode_and_run(payload, |request: RegisterAccountRequest| async move {
                let mut connection = writer.pool.acquire().await.map_err(unavailable)?;
                accounts::ensure_account(&mut connection, &request.account)
                    .await
                    .map_err(unavailable)?;
                writer
                    .admitted
                    .lock()
                    .expect("never poisoned")
                    .insert(request.account.clone());
                tracing::info!(account = %request.account, "account registered by the operator");
                Ok(request)
            })
            .await
        }
    }
}

async fn dispatch(
    writer: &Writer,
    account: &AccountId,
    operation: ApiOperation,
    payload: &[u8],
) -> Bytes {
    match operation {
        ApiOperation::PrepareImport => {
            handle::<ops::PrepareImport, _, _>(operation, payload, |request| {
                prepare_import(writer, account, request)
            })
            .await
        }
        ApiOperation::PrepareUpload => {
            handle::<ops::PrepareUpload, _, _>(operation, payload, |request| {
                prepare_upload(writer, account, request)
            })
            .await
        }
        ApiOperation::Status => {
            handle::<ops::Status, _, _>(operation, payload, |request| {
                status(writer, account, request)
            })
            .await
        }
        ApiOperation::Errors => {
            handle::<ops::Errors, _, _>(operation, payload, |request| {
                errors(writer, account, request)
            })
            .await
        }
        ApiOperation::AttributesList => {
            handle::<ops::AttributesList, _, _>(operation, payload, |_| {
                list_attributes(writer, account)
            })
            .await
        }
        ApiOperation::AttributesAdd => {
            handle::<ops::AttributesAdd, _, _>(operation, payload, |request| {
                add_attribute(writer, account, request.attribute)
            })
            .await
        }
        ApiOperation::AttributesRemove => {
            handle::<ops::AttributesRemove, _, _>(operation, payload, |request| {
                remove_attribute(writer, account, request.key)
            })
            .await
        }
        ApiOperation::AttributesSet => {
            handle::<ops::AttributesSet, _, _>(operation, payload, |request| {
                set_attribute(writer, account, request)
            })
            .await
        }
        ApiOperation::ContactsExport => {
            handle::<ops::ContactsExport, _, _>(operation, payload, |request| {
                export_contacts(writer, account, request)
            })
            .await
        }
        ApiOperation::FailedRows => {
            handle::<ops::FailedRows, _, _>(operation, payload, |request| {
                failed_rows(writer, account, request)
            })
            .await
        }
        ApiOperation::Cancel => {
            handle::<ops::Cancel, _, _>(operation, payload, |request| {
                cancel(writer, account, request)
            })
            .await
        }
        ApiOperation::Template => {
            handle::<ops::Template, _, _>(operation, payload, |_| template(writer, account)).await
        }
        ApiOperation::Preview => {
            handle::<ops::Preview, _, _>(operation, payload, |request| {
                preview(writer, account, request)
            })
            .await
        }
        ApiOperation::ImportsList => {
            handle::<ops::ImportsList, _, _>(operation, payload, |request| {
                history::list(writer, account, request)
            })
            .await
        }
        ApiOperation::Undo => {
            handle::<ops::Undo, _, _>(operation, payload, |request| {
                history::undo(writer, account, request)
            })
            .await
        }
        ApiOperation::UndoConflicts => {
            handle::<ops::UndoConflicts, _, _>(operation, payload, |request| {
                history::conflicts(writer, account, request)
            })
            .await
        }
    }
}

/// Decodes the request of operation `O`, runs the operation and encodes the reply (or the
/// error): the bodies are the ones the contract's table names for `O`.
async fn handle<O, Handler, Running>(
    operation: ApiOperation,
    payload: &[u8],
    handler: Handler,
) -> Bytes
where
    O: Operation,
    Handler: FnOnce(O::Request) -> Running,
    Running: Future<Output = Result<O::Reply, ApiError>>,
{
    // The dispatch pairs each subject's operation with its type by hand; the contract test
    // calls every operation, so a wrong pair fails it here.
    debug_assert_eq!(
        O::OPERATION,
        operation,
        "dispatched to another operation's type"
    );
    decode_and_run(payload, handler).await
}

/// Decodes the request, runs the operation and encodes the reply (or the error).
async fn decode_and_run<Request, Reply, Handler, Running>(payload: &[u8], handler: Handler) -> Bytes
where
    Request: DeserializeOwned,
    Reply: Serialize,
    Handler: FnOnce(Request) -> Running,
    Running: Future<Output = Result<Reply, ApiError>>,
{
    let body = if payload.is_empty() {
        b"{}".as_slice()
    } else {
        payload
    };
    match serde_json::from_slice::<Request>(body) {
        Ok(request) => encode(handler(request).await),
        Err(error) => encode::<Reply>(Err(ApiError::new(
            ApiErrorKind::InvalidRequest,
            format!("bad request: {error}"),
        ))),
    }
}

fn encode<Reply: Serialize>(result: Result<Reply, ApiError>) -> Bytes {
    let reply: ApiReply<Reply> = result.into();
    serde_json::to_vec(&reply)
        .map(Bytes::from)
        .unwrap_or_else(|error| {
            Bytes::from(format!(
                r#"{{"error":{{"kind":"unavailable","message":"cannot encode reply: {error}"}}}}"#
            ))
        })
}

async fn prepare_import(
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
        admission::admit(&mut connection, account, &request.import_id, limits)
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
    })
}

/// Where the client puts the file of an import: its account's bucket, which it may write
/// and nobody else may. Created here, since clients may not create streams.
async fn prepare_upload(
    writer: &Writer,
    account: &AccountId,
    request: PrepareUploadRequest,
) -> Result<UploadTarget, ApiError> {
    contact_contract::ensure_uploads_bucket(&writer.jetstream, &writer.namespace, account)
        .await
        .map_err(|error| {
            tracing::error!(%error, %account, "cannot create the uploads bucket");
            ApiError::new(
                ApiErrorKind::Unavailable,
                "the uploads bucket is not available right now",
            )
        })?;
    Ok(UploadTarget {
        bucket: writer.namespace.uploads_bucket(account),
        object: request.import_id.to_string(),
    })
}

async fn status(
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
    let position = admission::position(&mut connection, account, &request.import_id)
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

fn no_such_import(account: &AccountId, import: &ImportId) -> ApiError {
    ApiError::new(
        ApiErrorKind::NotFound,
        format!("no import {import} in account {account}"),
    )
}

/// The start request of an import no ingest replica has taken yet, read from its stream.
pub(crate) async fn queued_request(
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

async fn errors(
    writer: &Writer,
    account: &AccountId,
    request: ErrorsRequest,
) -> Result<ErrorsPage, ApiError> {
    let mut connection = writer.pool.acquire().await.map_err(unavailable)?;
    if imports::load(&mut connection, account, &request.import_id)
        .await
        .map_err(unavailable)?
        .is_none()
    {
        return Err(ApiError::new(
            ApiErrorKind::NotFound,
            format!("no import {} in account {account}", request.import_id),
        ));
    }
    let limit = request.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    // error_id follows file order: chunks are applied in order, each chunk's errors by line.
    let rows: Vec<StoredRowError> = sqlx::query_as(
        "SELECT error_id, line, column_name, value, reason FROM row_errors
         WHERE account_id = $1 AND import_id = $2 AND error_id > $3
         ORDER BY error_id LIMIT $4",
    )
    .bind(account.as_str())
    .bind(request.import_id.as_str())
    .bind(request.after.unwrap_or(0))
    .bind(i64::from(limit))
    .fetch_all(&mut *connection)
    .await
    .map_err(unavailable)?;
    let full = rows.len() == limit as usize;
    let ids: Vec<i64> = rows.iter().map(|row| row.error_id).collect();
    let mut errors: Vec<RowError> = rows
        .into_iter()
        .map(|row| RowError {
            line: row.line as u64,
            column: row.column_name,
            value: row.value,
            reason: row.reason,
        })
        .collect();
    let cut = limits::cut_page(&mut errors);
    let next = (full || cut)
        .then(|| ids.get(errors.len().wrapping_sub(1)).copied())
        .flatten();
    Ok(ErrorsPage { errors, next })
}

#[derive(sqlx::FromRow)]
struct StoredRowError {
    error_id: i64,
    line: i64,
    column_name: Option<String>,
    value: Option<String>,
    reason: String,
}

async fn list_attributes(
    writer: &Writer,
    account: &AccountId,
) -> Result<Vec<AttributeDef>, ApiError> {
    catalog(writer, account).await.map(convert_all)
}

/// The account's attributes, as the core computes with them.
async fn catalog(
    writer: &Writer,
    account: &AccountId,
) -> Result<Vec<mapping::AttributeDef>, ApiError> {
    let mut connection = writer.pool.acquire().await.map_err(unavailable)?;
    accounts::ensure_account(&mut connection, account)
        .await
        .map_err(unavailable)?;
    accounts::load_attributes(&mut connection, account)
        .await
        .map_err(unavailable)
}

async fn add_attribute(
    writer: &Writer,
    account: &AccountId,
    attribute: AttributeDef,
) -> Result<AttributeDef, ApiError> {
    let mut connection = writer.pool.acquire().await.map_err(unavailable)?;
    accounts::add_attribute(&mut connection, account, attribute.into())
        .await
        .map(AttributeDef::from)
}

async fn remove_attribute(
    writer: &Writer,
    account: &AccountId,
    key: String,
) -> Result<RemoveAttributeRequest, ApiError> {
    let mut transaction = writer.pool.begin().await.map_err(unavailable)?;
    accounts::remove_attribute(&mut transaction, account, &key).await?;
    transaction.commit().await.map_err(unavailable)?;
    Ok(RemoveAttributeRequest { key })
}

async fn set_attribute(
    writer: &Writer,
    account: &AccountId,
    request: SetAttributeRequest,
) -> Result<AttributeDef, ApiError> {
    let mut transaction = writer.pool.begin().await.map_err(unavailable)?;
    let attribute = accounts::set_attribute_flags(
        &mut transaction,
        account,
        &request.key,
        request.required,
        request.identifier,
    )
    .await?;
    transaction.commit().await.map_err(unavailable)?;
    Ok(attribute.into())
}

async fn export_contacts(
    writer: &Writer,
    account: &AccountId,
    request: ExportContactsRequest,
) -> Result<ContactsPage, ApiError> {
    limits::check_contact_filter(&request.filter)
        .map_err(|reason| ApiError::new(ApiErrorKind::InvalidRequest, reason))?;
    let mut connection = writer.pool.acquire().await.map_err(unavailable)?;
    let limit = request.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let import = match &request.filter.import_id {
        Some(import_id) => Some(
            imports::load(&mut connection, account, import_id)
                .await
                .map_err(unavailable)?
                .ok_or_else(|| no_such_import(account, import_id))?,
        ),
        None => None,
    };
    let contacts = contacts::export_page(
        &mut connection,
        account,
        request.after_id.unwrap_or(0),
        limit,
        &request.filter,
        import.as_ref().map(|row| contacts::ImportContacts {
            import: &row.request.0.import_id,
            own_ids: row.own_ids(),
        }),
    )
    .await
    .map_err(unavailable)?;
    let mut contacts = contacts;
    let full = contacts.len() == limit as usize;
    let cut = limits::cut_page(&mut contacts);
    let next_after_id = (full || cut)
        .then(|| contacts.last().map(|contact| contact.id))
        .flatten();
    Ok(ContactsPage {
        contacts,
        next_after_id,
    })
}

async fn failed_rows(
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
    let limit = request.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let rows: Vec<(i64, Vec<String>)> = sqlx::query_as(
        "SELECT line, fields FROM failed_rows
         WHERE account_id = $1 AND import_id = $2 AND line > $3
         ORDER BY line LIMIT $4",
    )
    .bind(account.as_str())
    .bind(request.import_id.as_str())
    .bind(request.after.unwrap_or(0) as i64)
    .bind(i64::from(limit))
    .fetch_all(&mut *connection)
    .await
    .map_err(unavailable)?;
    let lines: Vec<i64> = rows.iter().map(|(line, _)| *line).collect();
    let errors: Vec<StoredRowError> = sqlx::query_as(
        "SELECT error_id, line, column_name, value, reason FROM row_errors
         WHERE account_id = $1 AND import_id = $2 AND line = ANY($3)
         ORDER BY error_id",
    )
    .bind(account.as_str())
    .bind(request.import_id.as_str())
    .bind(&lines)
    .fetch_all(&mut *connection)
    .await
    .map_err(unavailable)?;
    let full = rows.len() == limit as usize;
    let mut rows: Vec<FailedRowReport> = rows
        .into_iter()
        .map(|(line, fields)| FailedRowReport {
            line: line as u64,
            fields,
            errors: errors
                .iter()
                .filter(|error| error.line == line)
                .map(|error| RowError {
                    line: line as u64,
                    column: error.column_name.clone(),
                    value: error.value.clone(),
                    reason: error.reason.clone(),
                })
                .collect(),
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
async fn cancel(
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
    match existing {
        Some(row) if row.state().is_terminal() => Err(already_over(import_id, &row)),
        Some(_) => {
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
        None => {
            // Queued: record it as cancelled so that ingest skips it when it comes to it.
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

fn already_over(import_id: &ImportId, row: &ImportRow) -> ApiError {
    ApiError::new(
        ApiErrorKind::Conflict,
        format!("import {import_id} is already {}", row.state().as_str()),
    )
}

async fn template(writer: &Writer, account: &AccountId) -> Result<TemplateReply, ApiError> {
    let attributes = catalog(writer, account).await?;
    Ok(TemplateReply {
        file_name: format!("{account}-contacts-template.csv"),
        csv: contact_core::template::template_csv(&attributes),
    })
}

async fn preview(
    writer: &Writer,
    account: &AccountId,
    request: PreviewRequest,
) -> Result<Preview, ApiError> {
    let invalid = |message: String| ApiError::new(ApiErrorKind::InvalidRequest, message);
    if request.sample.len() > PREVIEW_SAMPLE_BYTES {
        return Err(invalid(format!(
            "a preview reads at most {PREVIEW_SAMPLE_BYTES} bytes"
        )));
    }
    let options = PreviewOptions {
        encoding: request
            .encoding
            .as_deref()
            .map(str::parse::<TextEncoding>)
            .transpose()
            .map_err(|error| invalid(error.to_string()))?,
        delimiter: request
            .delimiter
            .as_deref()
            .map(parse_delimiter)
            .transpose()
            .map_err(invalid)?,
        region: writer.phone_region,
        max_rows: 10,
    };
    let attributes = catalog(writer, account).await?;
    contact_core::preview::preview(
        &request.sample,
        request.whole_file,
        &options,
        &attributes,
        &convert_all(request.mappings),
    )
    .map(Preview::from)
    .map_err(|error| invalid(error.to_string()))
}
