//! The writer's message handler: validated chunks and ingest's control messages, each turned
//! into an [`Outcome`] for the runtime to settle.
//!
//! A chunk is done when each of its lanes is applied (see [`chunk`]); then its progress is
//! announced, and after a lane's last chunk the import may be complete.

pub mod chunk;
mod lane;
pub mod signals;

use std::sync::Arc;

use async_nats::jetstream::Message;
use contact_contract::gate::decode_import_message;
use contact_contract::{
    AccountId, ControlEvent, ImportControl, ImportEventKind, ImportId, ImportRequest, ImportState,
    ImportSubjectKind, ValidatedChunk,
};
use contact_core::lanes::lane_count;
use contact_runtime::{MessageHandler, Outcome};
use sqlx::Acquire as _;
use tracing::Instrument as _;

use crate::closing;
use crate::context::Writer;
use crate::db::accounts;
use crate::db::imports;
use crate::events;
use chunk::ChunkApplied;
pub use lane::Progress;

/// Deliveries after which a chunk whose import never registered is given up: its import is
/// failed instead of waiting for ever (about ten minutes of retry delays of up to four
/// seconds).
const DELIVERIES_BEFORE_GIVING_UP: i64 = 150;

pub struct PipelineHandler {
    writer: Arc<Writer>,
}

impl PipelineHandler {
    pub fn new(writer: Arc<Writer>) -> Self {
        Self { writer }
    }
}

impl MessageHandler for PipelineHandler {
    const SERVICE: &'static str = "writer";

    /// A message of an import that can never be handled leaves the import without a chunk or a
    /// control message it waits for: the import fails with the reason instead of hanging.
    async fn fail_import(&self, message: &Message, reason: &str) -> anyhow::Result<()> {
        let Some((account, import, _)) =
            self.writer.namespace.parse_import_subject(&message.subject)
        else {
            anyhow::bail!("{} is not an import's subject", message.subject);
        };
        let request = ImportRequest::known_by_subject(account, import);
        closing::fail(&self.writer, &request, reason).await
    }

    async fn handle(&self, message: &Message) -> Outcome {
        let Some((account, import, kind)) =
            self.writer.namespace.parse_import_subject(&message.subject)
        else {
            return Outcome::Reject {
                reason: format!("unexpected subject {}", message.subject),
            };
        };
        let delivered = message.info().map(|info| info.delivered).unwrap_or(1);
        // Within the consume loop's span, which names the import and the trace already.
        let span = tracing::info_span!("write", %account);
        let result = match kind {
            ImportSubjectKind::Records => {
                match decode_import_message::<ValidatedChunk>(&message.payload, &account, &import) {
                    Ok(chunk) => {
                        tracing::Span::current().record("chunk", chunk.chunk_index);
                        self.records(chunk, delivered).instrument(span).await
                    }
                    Err(undecodable) => Ok(undecodable.into()),
                }
            }
            ImportSubjectKind::Control => {
                match decode_import_message::<ImportControl>(&message.payload, &account, &import) {
                    Ok(control) => self.control(control).instrument(span).await,
                    Err(undecodable) => Ok(undecodable.into()),
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

/// What follows lane parts applied: the progress they reported (or, when they reported none,
/// the progress read for them) is announced, and when a lane applied its last chunk the
/// import may be complete.
pub(crate) async fn after_progress(
    writer: &Writer,
    account: &AccountId,
    import: &ImportId,
    progress: Progress,
    last_lane_done: bool,
) -> anyhow::Result<()> {
    let progress = match progress.into_row() {
        Some(row) => Some(row),
        // The other lanes' parts move the import on too (after the reporting lane's last
        // chunk, they alone do): said in order with the reporting lane's reports.
        None => lane::progress_of_other_lanes(writer, account, import)
            .await?
            .into_row(),
    };
    if let Some(row) = progress {
        if let Err(error) = events::send_progress(writer, &row).await {
            tracing::warn!(error = format!("{error:#}"), "progress event not sent");
        }
    }
    if last_lane_done {
        closing::try_complete(writer, account, import).await?;
    }
    Ok(())
}

/// Decodes a body and checks that it agrees with its subject and schema.
impl PipelineHandler {
    async fn records(&self, chunk: ValidatedChunk, delivered: i64) -> anyhow::Result<Outcome> {
        let writer = &self.writer;
        let (account, import) = (chunk.account.clone(), chunk.import_id.clone());
        let index = chunk.chunk_index;
        Ok(match chunk::apply_chunk(writer, chunk).await? {
            ChunkApplied::Done {
                last_lane_done,
                progress,
            } => {
                after_progress(writer, &account, &import, progress, last_lane_done).await?;
                Outcome::Done
            }
            ChunkApplied::ImportClosed => Outcome::Duplicate,
            ChunkApplied::StillWaiting { reason, progress } => {
                after_progress(writer, &account, &import, progress, false).await?;
                Outcome::NotYet { reason }
            }
            ChunkApplied::UnknownImport if delivered < DELIVERIES_BEFORE_GIVING_UP => {
                Outcome::RetryLater {
                    reason: "its import is not registered yet".to_string(),
                }
            }
            ChunkApplied::UnknownImport => Outcome::FailImport {
                reason: format!("chunk {index} arrived for an import that was never started"),
            },
            ChunkApplied::Unwritable(reason) => Outcome::FailImport { reason },
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
                let mut connection = writer.pool.acquire().await?;
                let inserted = {
                    let mut transaction = connection.begin().await?;
                    accounts::ensure_account(&mut transaction, account).await?;
                    let inserted = imports::insert_running(
                        &mut transaction,
                        &writer.namespace,
                        &request,
                        &plan,
                        file_bytes,
                        lane_count(&plan.match_on),
                    )
                    .await?;
                    transaction.commit().await?;
                    inserted
                };
                // A redelivered Accepted publishes "started" again while no part is in yet:
                // the first delivery may have committed and then stopped before publishing.
                // JetStream drops the repeat when the first one did go out.
                let row = imports::load(&mut connection, account, import).await?;
                if let Some(row) =
                    row.filter(|row| row.state() == ImportState::Running && row.parts_applied == 0)
                {
                    events::publish(writer, &row, ImportEventKind::Started).await?;
                }
                Ok(if inserted {
                    Outcome::Done
                } else {
                    Outcome::Duplicate
                })
            }
            ControlEvent::Rejected { request, reason } => {
                closing::fail(writer, &request, &reason).await?;
                Ok(Outcome::Done)
            }
            ControlEvent::Finished {
                chunks_total,
                rows_in_file,
                cut_short,
            } => {
                let mut connection = writer.pool.acquire().await?;
                let Some(row) = imports::load(&mut connection, account, import).await? else {
                    return Ok(Outcome::RetryLater {
                        reason: "the import is not registered yet".to_string(),
                    });
                };
                if row.state().is_terminal() || row.chunks_total.is_some() {
                    return Ok(Outcome::Duplicate);
                }
                imports::set_file_totals(
                    &mut connection,
                    account,
                    import,
                    chunks_total,
                    rows_in_file,
                    cut_short.as_deref(),
                )
                .await?;
                drop(connection);
                // Completes the import if its last parts were applied before the totals came.
                closing::try_complete(writer, account, import).await?;
                Ok(Outcome::Done)
            }
        }
    }
}
