//! Publishing an import's chunks and control messages: `accepted` before the first chunk, the
//! chunks with several in flight at once, and `finished` once every chunk is stored.

use std::collections::VecDeque;

use async_nats::jetstream::{self, context::PublishAckFuture};
use contact_contract::{
    convert_all, message_id, ControlEvent, ImportControl, ImportRequest, ImportSubjectKind,
    Namespace, RawChunk, FIRST_SCHEMA_VERSION,
};
use contact_core::chunking::Chunk;
use contact_core::mapping::MappingPlan;
use contact_runtime::metrics::metrics;
use contact_runtime::publish::{publish_json, send_json};

/// Chunks published but not yet acknowledged by the stream.
const PUBLISHES_IN_FLIGHT: usize = 16;

pub struct ChunkPublisher<'a> {
    jetstream: &'a jetstream::Context,
    namespace: &'a Namespace,
    request: &'a ImportRequest,
    phone_region: String,
    in_flight: VecDeque<PublishAckFuture>,
    chunks_published: u32,
    /// The import's plan in its wire form, from the moment `accepted` is published.
    accepted: Option<contact_contract::MappingPlan>,
    file_bytes: u64,
    last_end_offset: u64,
}

impl<'a> ChunkPublisher<'a> {
    pub fn new(
        jetstream: &'a jetstream::Context,
        namespace: &'a Namespace,
        request: &'a ImportRequest,
        phone_region: String,
        file_bytes: u64,
    ) -> Self {
        Self {
            jetstream,
            namespace,
            request,
            phone_region,
            in_flight: VecDeque::new(),
            chunks_published: 0,
            accepted: None,
            file_bytes,
            last_end_offset: 0,
        }
    }

    pub fn chunks_published(&self) -> u32 {
        self.chunks_published
    }

    /// Publishes a chunk; `file_offset` is how far into the (undecoded) file reading has got.
    pub async fn publish(
        &mut self,
        chunk: Chunk,
        plan: &MappingPlan,
        file_offset: u64,
    ) -> anyhow::Result<()> {
        let plan = match &self.accepted {
            Some(accepted) => accepted.clone(),
            None => {
                let accepted = contact_contract::MappingPlan::from(plan.clone());
                self.control(
                    "accepted",
                    ControlEvent::Accepted {
                        request: self.request.clone(),
                        plan: accepted.clone(),
                        file_bytes: self.file_bytes,
                    },
                )
                .await?;
                self.accepted = Some(accepted.clone());
                accepted
            }
        };
        let (account, import_id) = (&self.request.account, &self.request.import_id);
        let end_offset = file_offset.min(self.file_bytes).max(self.last_end_offset);
        self.last_end_offset = end_offset;
        let message = RawChunk {
            schema: plan.schema(),
            account: account.clone(),
            import_id: import_id.clone(),
            chunk_index: self.chunks_published,
            plan,
            phone_region: self.phone_region.clone(),
            rows: convert_all(chunk.rows),
            unreadable: convert_all(chunk.unreadable),
            end_offset,
        };
        let subject = self
            .namespace
            .import_subject(ImportSubjectKind::Chunks, account, import_id);
        let id = message_id::chunk(account, import_id, self.chunks_published);
        let acknowledgement = send_json(self.jetstream, subject, &id, &message).await?;
        metrics().count_rows(
            "ingest",
            "read",
            (message.rows.len() + message.unreadable.len()) as u64,
        );
        self.in_flight.push_back(acknowledgement);
        self.chunks_published += 1;
        if self.in_flight.len() >= PUBLISHES_IN_FLIGHT {
            self.wait_oldest().await?;
        }
        Ok(())
    }

    async fn wait_oldest(&mut self) -> anyhow::Result<()> {
        if let Some(oldest) = self.in_flight.pop_front() {
            oldest
                .await
                .map_err(|error| anyhow::anyhow!("a chunk was not stored: {error}"))?;
        }
        Ok(())
    }

    /// Waits until every chunk published is stored.
    pub async fn wait_for_all(&mut self) -> anyhow::Result<()> {
        while !self.in_flight.is_empty() {
            self.wait_oldest().await?;
        }
        Ok(())
    }

    /// Every chunk is stored: tells the writer how many there are.
    pub async fn finish(&mut self, rows_in_file: u64) -> anyhow::Result<()> {
        self.wait_for_all().await?;
        self.control(
            "finished",
            ControlEvent::Finished {
                chunks_total: self.chunks_published,
                rows_in_file,
                cut_short: None,
            },
        )
        .await
    }

    async fn control(&self, what: &str, event: ControlEvent) -> anyhow::Result<()> {
        let (account, import_id) = (&self.request.account, &self.request.import_id);
        let schema = match &event {
            ControlEvent::Accepted { request, plan, .. } => {
                request.options.schema().max(plan.schema())
            }
            _ => FIRST_SCHEMA_VERSION,
        };
        let control = ImportControl {
            schema,
            account: account.clone(),
            import_id: import_id.clone(),
            event,
        };
        let subject = self
            .namespace
            .import_subject(ImportSubjectKind::Control, account, import_id);
        let id = message_id::control(account, import_id, what);
        publish_json(self.jetstream, subject, &id, &control).await
    }
}
