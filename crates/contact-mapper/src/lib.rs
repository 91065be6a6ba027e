//! contact-mapper: resolves each raw row's cells to the account's attributes through the
//! import's mapping plan, validates and normalizes every value, and publishes the valid
//! records and the row errors of the chunk for the writer. Stateless: any replica handles any
//! chunk, in any order.

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::Context as _;
use async_nats::jetstream::{self, Message};
use clap::Parser;
use contact_contract::{
    message_id, ConsumerRole, FailedRow, ImportSubjectKind, Namespace, RawChunk, ValidatedChunk,
};
use contact_core::validate::{validate_record, PhoneRegion};
use contact_runtime::publish::publish_json;
use contact_runtime::{connect, run_consumer, MessageHandler, Outcome, Shutdown};

/// How a mapper replica is configured (flags or environment).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "contact-mapper",
    about = "Validates and normalizes imported rows"
)]
pub struct Settings {
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// Prefix of every subject and stream (one per deployment).
    #[arg(long, env = "CONTACT_IMPORT_NAMESPACE", default_value = "ci")]
    pub namespace: String,
    /// Chunks validated at once by this replica.
    #[arg(long, env = "MAPPER_CONCURRENCY", default_value_t = 4)]
    pub concurrency: usize,
}

pub struct Application {
    consumer: jetstream::consumer::PullConsumer,
    handler: Arc<ChunkValidator>,
    concurrency: usize,
    shutdown: Shutdown,
}

impl Application {
    /// Connects (waiting for NATS if it is down) and makes sure the streams exist.
    pub async fn build(settings: Settings, shutdown: Shutdown) -> anyhow::Result<Self> {
        let namespace = Namespace::new(&settings.namespace)?;
        let client = connect::nats(&settings.nats_url, "contact-mapper", &shutdown).await?;
        let jetstream = jetstream::new(client);
        contact_contract::ensure_streams(&jetstream, &namespace)
            .await
            .map_err(anyhow::Error::from_boxed)
            .context("creating the import streams")?;
        let consumer = ConsumerRole::Mapper
            .consumer(&jetstream, &namespace)
            .await
            .map_err(anyhow::Error::from_boxed)
            .context("creating the mapper consumer")?;
        Ok(Self {
            consumer,
            handler: Arc::new(ChunkValidator {
                jetstream,
                namespace,
            }),
            concurrency: settings.concurrency,
            shutdown,
        })
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        tracing::info!("contact-mapper is validating chunks");
        run_consumer(self.consumer, self.concurrency, self.handler, self.shutdown).await
    }
}

struct ChunkValidator {
    jetstream: jetstream::Context,
    namespace: Namespace,
}

impl MessageHandler for ChunkValidator {
    async fn handle(&self, message: &Message) -> Outcome {
        let chunk: RawChunk = match serde_json::from_slice(&message.payload) {
            Ok(chunk) => chunk,
            Err(error) => {
                return Outcome::Reject {
                    reason: format!("unreadable raw chunk: {error}"),
                }
            }
        };
        if chunk.schema != contact_contract::SCHEMA_VERSION {
            let reason = format!(
                "raw chunk has schema {}; this mapper reads {}",
                chunk.schema,
                contact_contract::SCHEMA_VERSION
            );
            return Outcome::Reject { reason };
        }
        let region: PhoneRegion = match chunk.phone_region.parse() {
            Ok(region) => region,
            Err(error) => {
                return Outcome::Reject {
                    reason: format!("chunk names an unknown phone region: {error}"),
                }
            }
        };
        let span = tracing::info_span!("validate", import_id = %chunk.import_id, chunk = chunk.chunk_index);
        let _entered = span.enter();
        let validated = validate_chunk(chunk, region);
        let subject = self.namespace.import_subject(
            ImportSubjectKind::Records,
            &validated.account,
            &validated.import_id,
        );
        let id = message_id::records(
            &validated.account,
            &validated.import_id,
            validated.chunk_index,
        );
        match publish_json(&self.jetstream, subject, &id, &validated).await {
            Ok(()) => Outcome::Done,
            Err(error) => Outcome::RetryLater {
                reason: format!("{error:#}"),
            },
        }
    }
}

/// Validates every row of a chunk; unreadable records from the parser become row errors too.
pub fn validate_chunk(chunk: RawChunk, region: PhoneRegion) -> ValidatedChunk {
    let mut records = Vec::with_capacity(chunk.rows.len());
    let mut errors = chunk.unreadable;
    let mut failed: Vec<FailedRow> = errors
        .iter()
        .map(|error| error.line)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|line| FailedRow {
            line,
            fields: Vec::new(),
        })
        .collect();
    for row in chunk.rows {
        match validate_record(&chunk.plan, &row, region) {
            Ok(record) => records.push(record),
            Err(row_errors) => {
                errors.extend(row_errors);
                failed.push(FailedRow {
                    line: row.line,
                    fields: row.fields,
                });
            }
        }
    }
    errors.sort_by_key(|error| error.line);
    failed.sort_by_key(|row| row.line);
    ValidatedChunk {
        schema: contact_contract::SCHEMA_VERSION,
        account: chunk.account,
        import_id: chunk.import_id,
        chunk_index: chunk.chunk_index,
        records,
        errors,
        failed,
        end_offset: chunk.end_offset,
    }
}
