//! The request/reply API (status, row errors, attributes, contacts, import preparation),
//! served on a queue group so that each request is answered by one writer replica.

use std::future::Future;
use std::sync::Arc;

use async_nats::jetstream::stream::LastRawMessageErrorKind;
use bytes::Bytes;
use contact_contract::{
    AccountId, AddAttributeRequest, ApiError, ApiErrorKind, ApiOperation, ApiReply, ContactsPage,
    Empty, ErrorsPage, ErrorsRequest, ExportContactsRequest, ImportStatus, ImportSubjectKind,
    PrepareImportReply, PrepareImportRequest, SetAttributeRequest, StatusRequest,
};
use contact_core::mapping::AttributeDef;
use contact_core::validate::RowError;
use contact_runtime::Shutdown;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::accounts::{self, unavailable};
use crate::{contacts, imports, Writer};

const REQUESTS_IN_FLIGHT: usize = 16;
const DEFAULT_PAGE: u32 = 500;
const MAX_PAGE: u32 = 1000;

/// Answers API requests until the shutdown is triggered, then finishes those in hand.
pub async fn serve(writer: Arc<Writer>, shutdown: Shutdown) -> anyhow::Result<()> {
    let namespace = &writer.namespace;
    let mut requests = writer
        .client
        .queue_subscribe(namespace.api_wildcard(), namespace.api_queue_group())
        .await?;
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
    requests.unsubscribe().await.ok();
    while in_flight.join_next().await.is_some() {}
    Ok(())
}

async fn answer(writer: &Writer, message: async_nats::Message) {
    let Some(reply_subject) = message.reply.clone() else {
        return;
    };
    let body = match writer.namespace.parse_api_subject(&message.subject) {
        Some((account, operation)) => dispatch(writer, &account, operation, &message.payload).await,
        None => encode::<Empty>(Err(ApiError::new(
            ApiErrorKind::InvalidRequest,
            format!("no API operation on {}", message.subject),
        ))),
    };
    if let Err(error) = writer.client.publish(reply_subject, body).await {
        tracing::warn!(%error, subject = %message.subject, "could not send an API reply");
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
            handle(payload, |request| prepare_import(writer, account, request)).await
        }
        ApiOperation::Status => handle(payload, |request| status(writer, account, request)).await,
        ApiOperation::Errors => handle(payload, |request| errors(writer, account, request)).await,
        ApiOperation::AttributesList => {
            handle(payload, |_: Empty| list_attributes(writer, account)).await
        }
        ApiOperation::AttributesAdd => {
            handle(payload, |request: AddAttributeRequest| {
                add_attribute(writer, account, request.attribute)
            })
            .await
        }
        ApiOperation::AttributesSet => {
            handle(payload, |request| set_attribute(writer, account, request)).await
        }
        ApiOperation::ContactsExport => {
            handle(payload, |request| export_contacts(writer, account, request)).await
        }
    }
}

/// Decodes the request, runs the operation and encodes the reply (or the error).
async fn handle<Request, Reply, Operation, Running>(payload: &[u8], operation: Operation) -> Bytes
where
    Request: DeserializeOwned,
    Reply: Serialize,
    Operation: FnOnce(Request) -> Running,
    Running: Future<Output = Result<Reply, ApiError>>,
{
    let body = if payload.is_empty() {
        b"{}".as_slice()
    } else {
        payload
    };
    match serde_json::from_slice::<Request>(body) {
        Ok(request) => encode(operation(request).await),
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
    let existing = imports::load(&mut connection, account, &request.import_id)
        .await
        .map_err(unavailable)?
        .map(|row| row.state());
    Ok(PrepareImportReply {
        attributes,
        existing,
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
    // Not started yet: the request may still be waiting for an ingest replica.
    let subject =
        writer
            .namespace
            .import_subject(ImportSubjectKind::Start, account, &request.import_id);
    let stream = writer
        .jetstream
        .get_stream(writer.namespace.requests_stream())
        .await
        .map_err(|error| {
            ApiError::new(
                ApiErrorKind::Unavailable,
                format!("cannot read the request stream: {error}"),
            )
        })?;
    match stream.get_last_raw_message_by_subject(&subject).await {
        Ok(_) => Ok(ImportStatus::queued(account.clone(), request.import_id)),
        Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => {
            Err(ApiError::new(
                ApiErrorKind::NotFound,
                format!("no import {} in account {account}", request.import_id),
            ))
        }
        Err(error) => Err(ApiError::new(
            ApiErrorKind::Unavailable,
            format!("cannot read the request stream: {error}"),
        )),
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
    let next = (rows.len() == limit as usize)
        .then(|| rows.last().map(|row| row.error_id))
        .flatten();
    let errors = rows
        .into_iter()
        .map(|row| RowError {
            line: row.line as u64,
            column: row.column_name,
            value: row.value,
            reason: row.reason,
        })
        .collect();
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
    accounts::add_attribute(&mut connection, account, attribute).await
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
    Ok(attribute)
}

async fn export_contacts(
    writer: &Writer,
    account: &AccountId,
    request: ExportContactsRequest,
) -> Result<ContactsPage, ApiError> {
    let mut connection = writer.pool.acquire().await.map_err(unavailable)?;
    let limit = request.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let contacts = contacts::export_page(
        &mut connection,
        account,
        request.after_id.unwrap_or(0),
        limit,
    )
    .await
    .map_err(unavailable)?;
    let next_after_id = (contacts.len() == limit as usize)
        .then(|| contacts.last().map(|contact| contact.id))
        .flatten();
    Ok(ContactsPage {
        contacts,
        next_after_id,
    })
}
