//! contact-ingest: takes import requests, streams the uploaded file from the object store,
//! parses the CSV, checks the header against the mapping and the account's attributes, and
//! splits the rows into chunk messages for the mappers.
//!
//! Handling a request is idempotent: chunks carry deterministic message ids and the writer
//! applies each chunk once, so a redelivered request (after a crash) simply splits the file
//! again.

mod publisher;
mod split;
mod upload;
mod window;

use std::net::SocketAddr;
use std::sync::Arc;

use async_nats::jetstream::{self, Message};
use clap::Parser;
use contact_contract::api::{self, ops, CallError};
use contact_contract::gate::decode_import_message;
use contact_contract::limits::UploadLimits;
use contact_contract::{
    convert_all, Admission, ConsumerRole, ImportRequest, ImportSubjectKind, Namespace,
    PrepareImportRequest,
};
use contact_core::mapping::MappingPlan;
use contact_core::validate::PhoneRegion;
use contact_runtime::publish::publish_rejection;
use contact_runtime::service::{self, ServiceSettings};
use contact_runtime::{run_consumer, MessageHandler, Outcome, Shutdown};
use tracing::Instrument as _;

pub use split::{split_file, SplitContext, SplitError, SplitReport};
pub use upload::UploadReader;

/// How an ingest replica is configured (flags or environment).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "contact-ingest",
    version,
    about = "Reads uploaded CSV files and splits them into chunks"
)]
pub struct Settings {
    #[command(flatten)]
    pub service: ServiceSettings,
    /// Region of phone numbers written without a country code (ISO 3166 code).
    #[arg(long, env = "PHONE_REGION", default_value = "PL")]
    pub phone_region: String,
    /// Files read at once by this replica.
    #[arg(long, env = "INGEST_CONCURRENCY", default_value_t = 2)]
    pub concurrency: usize,
}

pub struct Application {
    consumer: jetstream::consumer::PullConsumer,
    handler: Arc<RequestHandler>,
    concurrency: usize,
    http_addr: Option<SocketAddr>,
    shutdown: Shutdown,
}

impl Application {
    /// Connects (waiting for NATS if it is down) and makes sure the streams and bucket exist.
    pub async fn build(settings: Settings, shutdown: Shutdown) -> anyhow::Result<Self> {
        let phone_region: PhoneRegion = settings
            .phone_region
            .parse()
            .map_err(|error| anyhow::anyhow!("PHONE_REGION: {error}"))?;
        let started = service::start(&settings.service, ConsumerRole::Ingest, &shutdown).await?;
        started.ready(started.nats_probe());
        Ok(Self {
            consumer: started.consumer,
            handler: Arc::new(RequestHandler {
                client: started.client,
                jetstream: started.jetstream,
                namespace: started.namespace,
                phone_region,
                shutdown: shutdown.clone(),
            }),
            concurrency: settings.concurrency,
            http_addr: started.http_addr,
            shutdown,
        })
    }

    /// Where /healthz, /readyz and /metrics are served, when they are.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        tracing::info!("contact-ingest is taking import requests");
        run_consumer(self.consumer, self.concurrency, self.handler, self.shutdown).await
    }
}

struct RequestHandler {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    namespace: Namespace,
    phone_region: PhoneRegion,
    shutdown: Shutdown,
}

impl MessageHandler for RequestHandler {
    const SERVICE: &'static str = "ingest";

    /// Tells the writer: the import the subject names fails, with the request as far as it
    /// can be read (its file name and options show in the summary).
    async fn fail_import(&self, message: &Message, reason: &str) -> anyhow::Result<()> {
        let Some((account, import_id, ImportSubjectKind::Start)) =
            self.namespace.parse_import_subject(&message.subject)
        else {
            anyhow::bail!("{} is not an import's start subject", message.subject);
        };
        let request = serde_json::from_slice::<ImportRequest>(&message.payload)
            .ok()
            .filter(|request| request.account == account && request.import_id == import_id)
            .unwrap_or_else(|| ImportRequest::known_by_subject(account, import_id));
        publish_rejection(&self.jetstream, &self.namespace, request, reason).await
    }

    async fn handle(&self, message: &Message) -> Outcome {
        let Some((account, import_id, ImportSubjectKind::Start)) =
            self.namespace.parse_import_subject(&message.subject)
        else {
            return Outcome::Reject {
                reason: format!("ingest does not take {}", message.subject),
            };
        };
        let request: ImportRequest =
            match decode_import_message(&message.payload, &account, &import_id) {
                Ok(request) => request,
                Err(undecodable) => return undecodable.into(),
            };
        if let Err(reason) = contact_contract::limits::check_request(&request) {
            return Outcome::FailImport { reason };
        }
        if let Some(named) = request
            .object_name
            .as_deref()
            .filter(|named| *named != request.import_id.as_str())
        {
            let reason = format!(
                "the request names object \"{named}\", but an import reads only its own upload, \"{}\"",
                request.import_id
            );
            return Outcome::FailImport { reason };
        }
        let span = tracing::info_span!("ingest", account = %request.account, import_id = %request.import_id);
        match self.ingest(request).instrument(span).await {
            Ok(outcome) => outcome,
            Err(error) => Outcome::RetryLater {
                reason: format!("{error:#}"),
            },
        }
    }
}

impl RequestHandler {
    async fn ingest(&self, request: ImportRequest) -> anyhow::Result<Outcome> {
        let prepared = match api::call::<ops::PrepareImport>(
            &self.client,
            &self.namespace,
            &request.account,
            &PrepareImportRequest {
                import_id: request.import_id.clone(),
            },
        )
        .await
        {
            Ok(reply) => reply,
            // An undecodable reply comes from a writer of another version: one of ours may
            // answer later.
            Err(error) if error.is_transient() || matches!(error, CallError::Decode { .. }) => {
                return Ok(Outcome::RetryLater {
                    reason: error.to_string(),
                })
            }
            Err(error) => {
                return Ok(Outcome::FailImport {
                    reason: format!("the import cannot be prepared: {error}"),
                });
            }
        };
        if prepared.existing.is_some_and(|state| state.is_terminal()) {
            tracing::info!("import already finished; repeated request ignored");
            return Ok(Outcome::Duplicate);
        }
        if prepared.file_read {
            tracing::info!("file already read; repeated request ignored");
            return Ok(Outcome::Duplicate);
        }
        match prepared.admission {
            Admission::Start => {}
            Admission::Queued { reason, .. } => return Ok(Outcome::Queued { reason }),
            Admission::Refused { reason } => return Ok(Outcome::FailImport { reason }),
        }

        // The file is the subject's account's upload of the subject's import, never what the
        // body names: a request can read no other tenant's file.
        let opened = UploadReader::open(
            &self.jetstream,
            &self.namespace,
            &request.account,
            &request.import_id,
        )
        .await?;
        let Some(mut upload) = opened else {
            let reason = format!(
                "no file was uploaded for import {} (object \"{}\" of bucket {})",
                request.import_id,
                request.import_id,
                self.namespace.uploads_bucket(&request.account)
            );
            return Ok(Outcome::FailImport { reason });
        };
        // The size the client announced when it asked to upload was checked then; this is
        // the size it did upload. A redelivered request of an import already running was
        // checked when it began: a limit lowered since does not fail it halfway.
        let too_large = prepared
            .max_file_bytes
            .filter(|_| prepared.existing.is_none())
            .map(|max| UploadLimits {
                max_file_bytes: max,
                ..UploadLimits::default()
            })
            .and_then(|limits| limits.check(Some(upload.size()), 0).err());
        if let Some(refusal) = too_large {
            return Ok(Outcome::FailImport {
                reason: format!("the file cannot be imported: {refusal}"),
            });
        }
        let context = SplitContext {
            client: &self.client,
            jetstream: &self.jetstream,
            namespace: &self.namespace,
            phone_region: self.phone_region,
            shutdown: &self.shutdown,
        };
        let split = split_file(
            &mut upload,
            &request,
            &convert_all(prepared.attributes),
            prepared.plan.map(MappingPlan::from).as_ref(),
            &context,
        )
        .await;
        match split {
            Ok(report) => {
                tracing::info!(
                    chunks = report.chunks_total,
                    rows = report.rows_in_file,
                    "file split"
                );
                Ok(Outcome::Done)
            }
            Err(SplitError::Rejected(reason)) => {
                tracing::info!(reason, "import rejected");
                Ok(Outcome::FailImport { reason })
            }
            Err(SplitError::Transient(error)) => Err(error),
        }
    }
}
