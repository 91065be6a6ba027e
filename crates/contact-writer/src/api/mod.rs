//! The request/reply API (status, row errors, attributes, contacts, import preparation,
//! history), served as one NATS service (`contact_contract::micro`) on a queue group, so that
//! each request is answered by one writer replica while every replica answers `$SRV.PING`,
//! `$SRV.INFO` and `$SRV.STATS`. This file is the server loop and the dispatch; each family of
//! operations has its file.

mod admission;
mod catalog;
mod contacts;
pub mod history;
mod imports;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context as _;
use async_nats::service::{Request, ServiceExt as _};
use bytes::Bytes;
use contact_contract::api::{ops, Operation};
use contact_contract::micro::{self, ERROR_CODE_HEADER, ERROR_HEADER};
use contact_contract::{
    AccountId, ApiError, ApiErrorKind, ApiOperation, ApiReply, Empty, ImportId, Namespace,
    OperatorOperation, RegisterAccountRequest,
};
use contact_runtime::metrics::metrics;
use contact_runtime::Shutdown;
use futures::stream::BoxStream;
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
    cancel, errors, events, failed_rows, import_options, prepare_import, prepare_upload, status,
};

pub(crate) const REQUESTS_IN_FLIGHT: usize = 16;
const DEFAULT_PAGE: u32 = 500;
const MAX_PAGE: u32 = 1000;

/// Which family an endpoint's requests belong to.
#[derive(Debug, Clone, Copy)]
pub enum Route {
    Api(ApiOperation),
    Operator(OperatorOperation),
}

impl Route {
    fn name(self) -> &'static str {
        match self {
            Self::Api(operation) => operation.as_str(),
            Self::Operator(operation) => operation.as_str(),
        }
    }
}

/// Error replies by endpoint, for `$SRV.STATS`: the service library counts only the errors it
/// sends without a body, and these replies keep theirs.
#[derive(Debug, Clone, Default)]
struct ErrorReplies(Arc<Mutex<HashMap<String, u64>>>);

impl ErrorReplies {
    fn count(&self, endpoint: String) {
        *self
            .0
            .lock()
            .expect("never poisoned")
            .entry(endpoint)
            .or_default() += 1;
    }

    fn of(&self, endpoint: &str) -> u64 {
        self.0
            .lock()
            .expect("never poisoned")
            .get(endpoint)
            .copied()
            .unwrap_or(0)
    }
}

/// The API registered on NATS: its service, and the requests of all its endpoints.
pub struct ApiServer {
    service: async_nats::service::Service,
    requests: futures::stream::SelectAll<BoxStream<'static, (Route, Request)>>,
    error_replies: ErrorReplies,
}

/// Registers the API service and its endpoints, so that requests wait in their
/// subscriptions from now on: a writer that has started answers its API.
pub async fn register(writer: &Writer) -> anyhow::Result<ApiServer> {
    let namespace = &writer.namespace;
    let error_replies = ErrorReplies::default();
    let service = writer
        .client
        .service_builder()
        .description("contact-import's request/reply API, served by contact-writer")
        .metadata(HashMap::from([(
            micro::NAMESPACE_METADATA.to_string(),
            namespace.name().to_string(),
        )]))
        .queue_group(namespace.api_queue_group())
        .stats_handler({
            let error_replies = error_replies.clone();
            move |endpoint, _| serde_json::json!({ "error_replies": error_replies.of(&endpoint) })
        })
        .start(micro::SERVICE_NAME, env!("CARGO_PKG_VERSION"))
        .await
        .map_err(anyhow::Error::from_boxed)
        .context("registering the API service")?;
    let routes = ApiOperation::ALL
        .iter()
        .map(|&operation| {
            (
                Route::Api(operation),
                operation.endpoint_name(),
                namespace.api_wildcard_for(operation),
            )
        })
        .chain(OperatorOperation::ALL.iter().map(|&operation| {
            (
                Route::Operator(operation),
                operation.endpoint_name(),
                namespace.operator_subject(operation),
            )
        }));
    let mut endpoints: Vec<BoxStream<'static, (Route, Request)>> = Vec::new();
    for (route, name, subject) in routes {
        let endpoint = service
            .endpoint_builder()
            .name(&name)
            .add(&subject)
            .await
            .map_err(anyhow::Error::from_boxed)
            .with_context(|| format!("serving {subject}"))?;
        endpoints.push(endpoint.map(move |request| (route, request)).boxed());
    }
    // The subscriptions are in place on the server, not only sent.
    writer
        .client
        .flush()
        .await
        .context("registering the API service")?;
    Ok(ApiServer {
        service,
        requests: futures::stream::select_all(endpoints),
        error_replies,
    })
}

impl ApiServer {
    /// Answers API requests until the shutdown is triggered, then finishes those in hand.
    pub async fn serve(self, writer: Arc<Writer>, shutdown: Shutdown) -> anyhow::Result<()> {
        let Self {
            service,
            mut requests,
            error_replies,
        } = self;
        let permits = Arc::new(Semaphore::new(REQUESTS_IN_FLIGHT));
        let mut in_flight = JoinSet::new();
        loop {
            let (route, request) = tokio::select! {
                _ = shutdown.triggered() => break,
                request = requests.next() => match request {
                    Some(request) => request,
                    None => break,
                },
            };
            // Timed from here: a request waiting for its turn is slow to its caller too.
            let arrived = Instant::now();
            let permit = permits
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let (writer, error_replies) = (writer.clone(), error_replies.clone());
            in_flight.spawn(async move {
                answer(&writer, route, request, &error_replies, arrived).await;
                drop(permit);
            });
            while in_flight.try_join_next().is_some() {}
        }
        drop(requests);
        while in_flight.join_next().await.is_some() {}
        if let Err(error) = service.stop().await {
            tracing::debug!(%error, "the API service did not stop cleanly");
        }
        Ok(())
    }
}

/// A reply's body, and its error when it is one (for the headers and the counts).
struct Answer {
    body: Bytes,
    error: Option<ApiError>,
}

async fn answer(
    writer: &Writer,
    route: Route,
    request: Request,
    error_replies: &ErrorReplies,
    arrived: Instant,
) {
    let message = &request.message;
    // Nobody would read the reply: a request without a reply subject is not a request.
    let Some(reply) = &message.reply else {
        return;
    };
    let answer = match route {
        Route::Api(_) => match writer.namespace.parse_api_subject(&message.subject) {
            // An answer elsewhere than the caller's own inbox would be the writer publishing,
            // with its own permissions, wherever a tenant asked: on another account's subjects.
            Some((account, _)) if !Namespace::is_inbox_of(&account, reply) => {
                tracing::warn!(
                    subject = %message.subject,
                    %reply,
                    "not answering a request whose reply subject is not its account's inbox"
                );
                metrics().api_answered(route.name(), "misdirected", arrived.elapsed());
                return;
            }
            Some((account, operation)) => match admission::admit(writer, &account).await {
                Ok(()) => dispatch(writer, &account, operation, &message.payload).await,
                Err(refused) => encode::<Empty>(Err(refused)),
            },
            None => encode::<Empty>(Err(ApiError::new(
                ApiErrorKind::InvalidRequest,
                format!("no API operation on {}", message.subject),
            ))),
        },
        Route::Operator(operation) => operator(writer, operation, &message.payload).await,
    };
    let mut headers = async_nats::HeaderMap::new();
    let outcome = match &answer.error {
        Some(error) => {
            headers.insert(ERROR_HEADER, micro::header_message(&error.message).as_str());
            headers.insert(
                ERROR_CODE_HEADER,
                error.kind.service_error_code().to_string().as_str(),
            );
            error_replies.count(match route {
                Route::Api(operation) => operation.endpoint_name(),
                Route::Operator(operation) => operation.endpoint_name(),
            });
            error.kind.as_str()
        }
        None => "ok",
    };
    if let Err(error) = request.respond_with_headers(Ok(answer.body), headers).await {
        tracing::warn!(%error, subject = %message.subject, "could not send an API reply");
    }
    metrics().api_answered(route.name(), outcome, arrived.elapsed());
}

/// The operator's API: only the operator's credentials may publish on its subjects.
async fn operator(writer: &Writer, operation: OperatorOperation, payload: &[u8]) -> Answer {
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
        ) -> Answer {
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
async fn answer_with<O, Handler, Running>(payload: &[u8], handler: Handler) -> Answer
where
    O: Operation,
    Handler: FnOnce(O::Request) -> Running,
    Running: Future<Output = Result<O::Reply, ApiError>>,
{
    decode_and_run(payload, handler).await
}

/// Decodes the request, runs the operation and encodes the reply (or the error).
async fn decode_and_run<Body, Reply, Handler, Running>(payload: &[u8], handler: Handler) -> Answer
where
    Body: DeserializeOwned,
    Reply: Serialize,
    Handler: FnOnce(Body) -> Running,
    Running: Future<Output = Result<Reply, ApiError>>,
{
    let body = if payload.is_empty() {
        b"{}".as_slice()
    } else {
        payload
    };
    // The error names the field at fault ("import_id: invalid type..."), not only a column.
    let decoded: Result<Body, _> =
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body));
    match decoded {
        Ok(request) => encode(handler(request).await),
        Err(error) => encode::<Reply>(Err(ApiError::new(
            ApiErrorKind::InvalidRequest,
            format!("bad request: {error}"),
        ))),
    }
}

fn encode<Reply: Serialize>(result: Result<Reply, ApiError>) -> Answer {
    let error = result.as_ref().err().cloned();
    let reply: ApiReply<Reply> = result.into();
    match serde_json::to_vec(&reply) {
        Ok(body) => Answer {
            body: Bytes::from(body),
            error,
        },
        Err(error) => {
            let error = ApiError::new(
                ApiErrorKind::Unavailable,
                format!("cannot encode reply: {error}"),
            );
            encode::<Empty>(Err(error))
        }
    }
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

    fn reply(answer: &Answer) -> serde_json::Value {
        serde_json::from_slice(&answer.body).expect("every reply is JSON")
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
        let error = body.error.expect("an error reply says so, for its headers");
        assert_eq!(error.kind, ApiErrorKind::NotFound);
    }

    #[tokio::test]
    async fn an_empty_payload_is_a_request_with_every_field_left_out() {
        let body = decode_and_run(b"", |_: Empty| async move { Ok(42u32) }).await;
        assert_eq!(reply(&body), serde_json::json!({"ok": 42}));
        assert!(body.error.is_none());
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
