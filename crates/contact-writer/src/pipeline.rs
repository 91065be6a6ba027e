//! The writer's message handler: validated chunks and ingest's control messages, each turned
//! into an [`Outcome`] for the runtime to settle.

use std::sync::Arc;

use async_nats::jetstream::Message;
use contact_contract::{
    AccountId, ControlEvent, ImportControl, ImportEventKind, ImportId, ImportRequest, ImportState,
    ImportSubjectKind, ValidatedChunk, SCHEMA_VERSION,
};
use contact_runtime::{MessageHandler, Outcome};
use serde::de::DeserializeOwned;
use sqlx::Acquire as _;
use tracing::Instrument as _;

use crate::chunks::{self, ChunkDisposition, ImportTurn};
use crate::imports;
use crate::{accounts, events, Writer};

pub struct PipelineHandler {
    writer: Arc<Writer>,
}

impl PipelineHandler {
    pub fn new(writer: Arc<Writer>) -> Self {
        Self { writer }
    }
}

impl MessageHandler for PipelineHandler {
    async fn handle(&self, message: &Message) -> Outcome {
        let Some((account, import, kind)) =
            self.writer.namespace.parse_import_subject(&message.subject)
        else {
            return Outcome::Reject {
                reason: format!("unexpected subject {}", message.subject),
            };
        };
        if contact_contract::written_by_newer_version(&message.payload) {
            return Outcome::RetryLater {
                reason: "the message is of a later schema; waiting for an upgraded writer".into(),
            };
        }
        let span = tracing::info_span!("write", %account, import_id = %import);
        let result = match kind {
            ImportSubjectKind::Records => {
                match decode::<ValidatedChunk>(&message.payload, |chunk| {
                    chunk.schema == SCHEMA_VERSION
                        && chunk.account == account
                        && chunk.import_id == import
                }) {
                    Ok(chunk) => {
                        self.records(&chunk, &message.payload)
                            .instrument(span)
                            .await
                    }
                    Err(reason) => {
                        self.fail_import(account, import, reason)
                            .instrument(span)
                            .await
                    }
                }
            }
            ImportSubjectKind::Control => {
                match decode::<ImportControl>(&message.payload, |control| {
                    control.schema == SCHEMA_VERSION
                        && control.account == account
                        && control.import_id == import
                }) {
                    Ok(control) => self.control(control).instrument(span).await,
                    Err(reason) => {
                        self.fail_import(account, import, reason)
                            .instrument(span)
                            .await
                    }
                }
            }
            _ => {
                return Outcome::Reject {
                    reason: format!("the writer does not take {}", message.subject),
                }
            }
        };
        result.unwrap_or_else(|error| Outcome::RetryLater {
            reason: format!("{error:#}"),
        })
    }
}

/// Decodes a body and checks that it agrees with its subject and schema.
fn decode<T: DeserializeOwned>(payload: &[u8], agrees: impl Fn(&T) -> bool) -> Result<T, String> {
    let body: T = serde_json::from_slice(payload)
        .map_err(|error| format!("a message of the import cannot be read: {error}"))?;
    if agrees(&body) {
        Ok(body)
    } else {
        Err("a message of the import disagrees with its subject or schema version".to_string())
    }
}

impl PipelineHandler {
    /// A message of an import that can never be read leaves the import without a chunk or a
    /// control message it waits for: the import fails with the reason instead of hanging, and
    /// the message is dropped once that is recorded.
    async fn fail_import(
        &self,
        account: AccountId,
        import: ImportId,
        reason: String,
    ) -> anyhow::Result<Outcome> {
        tracing::warn!(reason, "unreadable message; failing its import");
        let request = ImportRequest::known_by_subject(account, import);
        self.control(ImportControl::rejection(request, reason.clone()))
            .await?;
        Ok(Outcome::Reject { reason })
    }

    async fn records(&self, chunk: &ValidatedChunk, payload: &[u8]) -> anyhow::Result<Outcome> {
        let disposition = chunks::receive(&self.writer, chunk, payload).await?;
        tracing::debug!(chunk = chunk.chunk_index, ?disposition, "chunk received");
        Ok(match disposition {
            ChunkDisposition::Applied
            | ChunkDisposition::Stashed
            | ChunkDisposition::ImportFailed => Outcome::Done,
            ChunkDisposition::AlreadyApplied | ChunkDisposition::ImportClosed => Outcome::Duplicate,
        })
    }

    async fn control(&self, control: ImportControl) -> anyhow::Result<Outcome> {
        let writer = &self.writer;
        let (account, import) = (&control.account, &control.import_id);
        match control.event {
            ControlEvent::Accepted {
                request,
                plan,
                file_bytes,
            } => {
                // Hold the turn so that "started" precedes every progress event.
                let mut turn = ImportTurn::take(writer, account, import).await?;
                let inserted = {
                    let mut transaction = turn.connection().begin().await?;
                    accounts::ensure_account(&mut transaction, account).await?;
                    let inserted = imports::insert_running(
                        &mut transaction,
                        &writer.namespace,
                        &request,
                        &plan,
                        file_bytes,
                    )
                    .await?;
                    transaction.commit().await?;
                    inserted
                };
                // A redelivered Accepted publishes "started" again while no chunk is in yet:
                // the first delivery may have committed and then stopped before publishing.
                // JetStream drops the repeat when the first one did go out.
                let is_new = inserted.is_some();
                let not_yet_progressing = match inserted {
                    Some(row) => Some(row),
                    None => imports::load(turn.connection(), account, import)
                        .await?
                        .filter(|row| row.state() == ImportState::Running && row.next_chunk == 0),
                };
                if let Some(row) = &not_yet_progressing {
                    events::publish(writer, row, ImportEventKind::Started, "started").await?;
                }
                // Chunks may have arrived before the import was registered.
                chunks::drain_holding(writer, &mut turn).await?;
                turn.give_back().await?;
                chunks::drain(writer, account, import).await?;
                Ok(if is_new {
                    Outcome::Done
                } else {
                    Outcome::Duplicate
                })
            }
            ControlEvent::Rejected { request, reason } => {
                let mut transaction = writer.pool.begin().await?;
                accounts::ensure_account(&mut transaction, account).await?;
                let inserted = imports::insert_closed(
                    &mut transaction,
                    &writer.namespace,
                    &request,
                    ImportState::Failed,
                    Some(&reason),
                )
                .await?;
                transaction.commit().await?;
                match inserted {
                    Some(row) => {
                        chunks::publish_summary(writer, &mut *writer.pool.acquire().await?, &row)
                            .await?;
                        Ok(Outcome::Done)
                    }
                    // Already running: ingest read the file again (a redelivery) and could
                    // not this time. The import fails with the reason instead of waiting for
                    // chunks that will never come.
                    None => fail_running(writer, account, import, &reason).await,
                }
            }
            ControlEvent::Finished {
                chunks_total,
                rows_in_file,
                cut_short,
            } => {
                let mut transaction = writer.pool.begin().await?;
                let Some(row) = imports::lock(&mut transaction, account, import).await? else {
                    return Ok(Outcome::RetryLater {
                        reason: "the import is not registered yet".to_string(),
                    });
                };
                if row.state().is_terminal() || row.chunks_total.is_some() {
                    return Ok(Outcome::Duplicate);
                }
                imports::set_file_totals(
                    &mut transaction,
                    &row,
                    chunks_total,
                    rows_in_file,
                    cut_short.as_deref(),
                )
                .await?;
                transaction.commit().await?;
                // Closes the import if its last chunk was applied before the totals arrived.
                chunks::drain(writer, account, import).await?;
                Ok(Outcome::Done)
            }
        }
    }
}

/// Fails a running import for `reason`, keeping what its applied chunks wrote; a closed one
/// stays as it is (the rejection repeats a request that already ended).
async fn fail_running(
    writer: &Writer,
    account: &AccountId,
    import: &ImportId,
    reason: &str,
) -> anyhow::Result<Outcome> {
    let mut turn = ImportTurn::take(writer, account, import).await?;
    let failed = {
        let mut transaction = turn.connection().begin().await?;
        match imports::lock(&mut transaction, account, import).await? {
            Some(row) if row.state() == ImportState::Running => {
                let failed =
                    chunks::finish(&mut transaction, &row, ImportState::Failed, Some(reason))
                        .await?;
                transaction.commit().await?;
                Some(failed)
            }
            _ => None,
        }
    };
    let outcome = match &failed {
        Some(row) => {
            tracing::warn!(%account, %import, reason, "running import failed");
            chunks::publish_summary(writer, turn.connection(), row).await?;
            Outcome::Done
        }
        None => Outcome::Duplicate,
    };
    turn.give_back().await?;
    Ok(outcome)
}
