//! How far ingest may read ahead of the writers: at most [`WINDOW_ROWS`] rows of one import
//! published and not yet applied.
//!
//! Without a bound, a large file is in the chunk and record streams within seconds, and every
//! import that starts after it, in any account, waits behind all of it: the streams are
//! first-in, first-out. With it, one import's backlog is a second or so of the writers' work,
//! so other tenants' imports interleave with it, and the streams do not grow with the file.
//! Ingest learns what was applied from the import's own events, and from its status when the
//! events go quiet; an event that says the import ended (cancelled, failed) stops the read.

use std::time::Duration;

use async_nats::Subscriber;
use contact_contract::api::{self, ops};
use contact_contract::{
    ImportEvent, ImportEventKind, ImportRequest, ImportStatus, ImportSubjectKind, Namespace,
    StatusRequest,
};
use contact_runtime::Shutdown;
use futures::{FutureExt as _, StreamExt as _};

/// Rows of one import that may be published and not yet applied.
pub const WINDOW_ROWS: u64 = 32_000;

/// After this long without an event, ingest asks for the import's status instead.
const QUIET_BEFORE_ASKING: Duration = Duration::from_secs(5);

/// Follows one import's events while its file is read.
pub struct ApplyWindow<'a> {
    client: &'a async_nats::Client,
    namespace: &'a Namespace,
    request: &'a ImportRequest,
    events: Subscriber,
    rows_applied: u64,
    ended: bool,
}

impl<'a> ApplyWindow<'a> {
    /// Subscribes to the import's events (live only: what was applied before comes from its
    /// status, asked once the subscription is in place).
    pub async fn open(
        client: &'a async_nats::Client,
        namespace: &'a Namespace,
        request: &'a ImportRequest,
    ) -> anyhow::Result<Self> {
        let subject = namespace.import_subject(
            ImportSubjectKind::Events,
            &request.account,
            &request.import_id,
        );
        let events = client.subscribe(subject).await?;
        let mut window = Self {
            client,
            namespace,
            request,
            events,
            rows_applied: 0,
            ended: false,
        };
        window.ask_status().await;
        Ok(window)
    }

    /// True once the import has ended (it was cancelled or failed while its file was read):
    /// reading it further is wasted work.
    pub fn import_ended(&mut self) -> bool {
        while let Some(Some(message)) = self.events.next().now_or_never() {
            self.take(&message.payload);
        }
        self.ended
    }

    /// Waits until at most [`WINDOW_ROWS`] of the `rows_published` rows wait to be applied,
    /// or the import ended. A shutdown ends the wait with an error: the request goes back to
    /// JetStream, and whoever takes it reads on from where the writers are.
    pub async fn wait_for_room(
        &mut self,
        rows_published: u64,
        shutdown: &Shutdown,
    ) -> anyhow::Result<()> {
        while !self.import_ended() && rows_published.saturating_sub(self.rows_applied) > WINDOW_ROWS
        {
            tokio::select! {
                _ = shutdown.triggered() => anyhow::bail!("stopping while the writers catch up"),
                event = tokio::time::timeout(QUIET_BEFORE_ASKING, self.events.next()) => match event {
                    Ok(Some(message)) => self.take(&message.payload),
                    Ok(None) => anyhow::bail!("the import's events subscription ended"),
                    Err(_) => self.ask_status().await,
                },
            }
        }
        Ok(())
    }

    /// Only the writer publishes there, but the server can be made to publish anything on
    /// any subject: a body that is not an event of this import is passed over.
    fn take(&mut self, payload: &[u8]) {
        let event = serde_json::from_slice::<ImportEvent>(payload)
            .ok()
            .filter(|event| {
                event.import.account == self.request.account
                    && event.import.import_id == self.request.import_id
            });
        if let Some(event) = event {
            self.note(&event.import);
            self.ended |= event.kind == ImportEventKind::Summary;
        }
    }

    fn note(&mut self, status: &ImportStatus) {
        // Events may come out of order: the counters only grow.
        self.rows_applied = self.rows_applied.max(status.rows_total);
        self.ended |= status.status.is_terminal();
    }

    /// When the writer cannot tell, reading goes on as before: the writer drops the chunks of
    /// an import that ended anyway.
    async fn ask_status(&mut self) {
        let status = api::call::<ops::Status>(
            self.client,
            self.namespace,
            &self.request.account,
            &StatusRequest {
                import_id: self.request.import_id.clone(),
            },
        )
        .await;
        if let Ok(status) = status {
            self.note(&status);
        }
    }
}
