//! The request/reply API (status, row errors, attributes, contacts, import preparation,
//! history), served on a queue group so that each request is answered by one writer replica.
//! This file is the server loop and the dispatch; each family of operations has its file.

mod admission;
mod catalog;
mod contacts;
pub mod history;
mod imports;

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use contact_contract::api::{ops, Operation};
use contact_contract::{
    AccountId, ApiError, ApiErrorKind, ApiOperation, ApiReply, Empty, ImportId, OperatorOperation,
    RegisterAccountRequest,
};
use contact_runtime::Shutdown;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::context::Writer;
use crate::db::{accounts, unavailable};
use catalog::{add_attribute, list_attributes, preview, remove_attribute, set_attribute, template};
use contacts::export_contacts;
use history::{list_imports, undo, undo_conflicts};
use imports::{
    cancel, errors, failed_rows, import_options, prepare_import, prepare_upload, status,
};

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
            match admission::admit(writer, &account).await {
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

/// The writer's dispatch, made from the contract's table of operations: each operation's
/// request is decoded as its body type and handed to the function the table names for it,
/// whose reply must be of the operation's reply type.
macro_rules! dispatch_to_functions {
    ($($operation:ident $token:literal $serve:ident: $request:ty => $reply:ty),* $(,)?) => {
        async fn dispatch(
            writer: &Writer,
            account: &AccountId,
            operation: ApiOperation,
            payload: &[u8],
        ) -> Bytes {
            match operation {
                $(ApiOperation::$operation => {
                    answer_with::<ops::$operation, _, _>(payload, |request| $serve(writer, account, request))
                        .await
                })*
            }
        }
    };
}

contact_contract::api_operations!(dispatch_to_functions);

/// Decodes the request of operation `O`, runs `handler` and encodes its reply (or the error):
/// the bodies are the ones the contract names for `O`.
async fn answer_with<O, Handler, Running>(payload: &[u8], handler: Handler) -> Bytes
where
    O: Operation,
    Handler: FnOnce(O::Request) -> Running,
    Running: Future<Output = Result<O::Reply, ApiError>>,
{
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
    // The error names the field at fault ("import_id: invalid type..."), not only a column.
    let decoded: Result<Request, _> =
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body));
    match decoded {
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

pub(crate) fn no_such_import(account: &AccountId, import: &ImportId) -> ApiError {
    ApiError::new(
        ApiErrorKind::NotFound,
        format!("no import {import} in account {account}"),
    )
}

/// An import's `details` that retention removed: refused in words, with the day, rather
/// than served as an empty page that would read as "none".
pub(crate) fn details_removed(
    import: &ImportId,
    details: &str,
    removed_at: chrono::DateTime<chrono::Utc>,
) -> ApiError {
    ApiError::new(
        ApiErrorKind::NotFound,
        format!(
            "the {details} of import {import} were removed on {}, after the time this deployment \
             keeps them (its summary and its contacts stay)",
            removed_at.format("%Y-%m-%d")
        ),
    )
}

/// The page size a request asked for, within the API's bounds.
fn page_limit(asked: Option<u32>) -> u32 {
    asked.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE)
}

#[cfg(test)]
mod tests {
    use contact_contract::StatusRequest;

    use super::*;

    fn reply(body: &Bytes) -> serde_json::Value {
        serde_json::from_slice(body).expect("every reply is JSON")
    }

    #[tokio::test]
    async fn a_request_is_decoded_as_its_operations_body_and_the_reply_encoded() {
        let body =
            answer_with::<ops::Status, _, _>(br#"{"import_id":"imp-7"}"#, |request| async move {
                assert_eq!(request.import_id.as_str(), "imp-7");
                Err::<_, ApiError>(ApiError::new(ApiErrorKind::NotFound, "no import imp-7"))
            })
            .await;
        assert_eq!(
            reply(&body)["error"],
            serde_json::json!({"kind": "not_found", "message": "no import imp-7"})
        );
    }

    #[tokio::test]
    async fn an_empty_payload_is_a_request_with_every_field_left_out() {
        let body = decode_and_run(b"", |_: Empty| async move { Ok(42u32) }).await;
        assert_eq!(reply(&body), serde_json::json!({"ok": 42}));
    }

    #[tokio::test]
    async fn a_malformed_request_is_refused_naming_what_is_wrong_and_runs_nothing() {
        let body = decode_and_run(br#"{"import_id": 12}"#, |_: StatusRequest| async move {
            panic!("a request that does not decode must not run");
            #[allow(unreachable_code)]
            Ok(Empty {})
        })
        .await;
        let error = &reply(&body)["error"];
        assert_eq!(error["kind"], "invalid_request");
        let message = error["message"].as_str().expect("a message");
        assert!(
            message.starts_with("bad request: import_id: invalid type"),
            "{message}"
        );
    }

    #[test]
    fn a_page_is_the_default_size_unless_asked_and_never_empty_or_beyond_the_maximum() {
        assert_eq!(page_limit(None), DEFAULT_PAGE);
        assert_eq!(page_limit(Some(0)), 1);
        assert_eq!(page_limit(Some(20)), 20);
        assert_eq!(page_limit(Some(MAX_PAGE + 1)), MAX_PAGE);
    }
}
