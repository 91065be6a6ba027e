//! Following an import's events: live on its events subject, and what came before (or was
//! missed while NATS was away) read from the events stream through the `import.events` API.
//!
//! No consumer is created: a tenant may not create one, since a consumer delivers to
//! whatever subject its creator names and the server checks none of her permissions there.
//! The live subscription is in place before the stored events are read, so no event falls
//! between the two; an event seen both ways is passed over by its `sequence`.

use std::time::Duration;

use contact_contract::api::{ops, CallError};
use contact_contract::{
    EventsRequest, ImportEvent, ImportEventKind, ImportId, ImportStatus, ImportSubjectKind,
};
use futures::StreamExt;
use tokio::time::Instant;

use crate::{nats_error, Client, ClientError, FollowUpdate, FAILOVER_PATIENCE};

/// How soon the stored events are read again after reading them failed, at first and at most.
const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(2);

impl Client {
    /// Calls `on_update` for each event of the import, from the first, in the order the
    /// events stream holds them (an event older than one already seen is left out), until the
    /// summary, which it returns. Also calls it after every `quiet_after` without events, and
    /// then reads the stored events and the import's status again: an import whose status says
    /// it ended returns, with its summary event when the stream has one and with that status
    /// when not. While NATS is away (a restart, a cluster electing a new leader) it waits up
    /// to [`FAILOVER_PATIENCE`], then reads what it missed; while no writer answers (none is
    /// running yet) it waits for as long as it is followed.
    pub async fn follow(
        &self,
        import_id: &ImportId,
        quiet_after: Duration,
        mut on_update: impl FnMut(FollowUpdate),
    ) -> Result<ImportStatus, ClientError> {
        let subject =
            self.namespace
                .import_subject(ImportSubjectKind::Events, &self.account, import_id);
        let mut live = self
            .nats
            .subscribe(subject)
            .await
            .map_err(|error| nats_error("subscribing to the import's events", error))?;
        self.nats
            .flush()
            .await
            .map_err(|error| nats_error("subscribing to the import's events", error))?;
        let mut connections = self.connections.clone();
        connections.mark_unchanged();
        let mut seen = Seen::default();
        let mut read_stored_at = Some(Instant::now());
        let mut retry_in = FIRST_RETRY;
        let mut away_since: Option<Instant> = None;
        let mut quiet_until = Instant::now() + quiet_after;
        let mut waited = Duration::ZERO;
        loop {
            if read_stored_at.is_some_and(|at| at <= Instant::now()) {
                match self.read_stored(import_id, &mut seen, &mut on_update).await {
                    Ok(Some(summary)) => return Ok(summary),
                    Ok(None) => (read_stored_at, retry_in) = (None, FIRST_RETRY),
                    Err(error) if !error.is_transient() => return Err(error.into()),
                    Err(error) => {
                        tracing::debug!(%error, "the import's stored events will be read again");
                        read_stored_at = Some(Instant::now() + retry_in);
                        retry_in = (retry_in * 2).min(LAST_RETRY);
                    }
                }
            }
            match self.nats.connection_state() {
                async_nats::connection::State::Connected => away_since = None,
                _ => {
                    let since = *away_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= FAILOVER_PATIENCE {
                        return Err(nats_error(
                            "following the import's events",
                            format!("NATS has been away for {FAILOVER_PATIENCE:?}"),
                        ));
                    }
                }
            }
            let retry = read_stored_at.unwrap_or(quiet_until);
            tokio::select! {
                message = live.next() => {
                    let Some(message) = message else {
                        return Err(nats_error("following the import's events", "the subscription ended"));
                    };
                    // Only an event of the import counts as news: a stream of anything else
                    // on the subject must not hold off the quiet ticks, which read the status.
                    if let Some(event) = self.event_of(import_id, &message.payload) {
                        waited = Duration::ZERO;
                        quiet_until = Instant::now() + quiet_after;
                        if let Some(summary) = seen.take(event, &mut on_update) {
                            return Ok(summary);
                        }
                    }
                }
                // Back after NATS was away: what was published meanwhile is only stored.
                Ok(()) = connections.changed() => read_stored_at = Some(Instant::now()),
                () = tokio::time::sleep_until(retry), if read_stored_at.is_some() => {}
                () = tokio::time::sleep_until(quiet_until) => {
                    waited += quiet_after;
                    quiet_until = Instant::now() + quiet_after;
                    on_update(FollowUpdate::Quiet { waited });
                    if let Ok(status) = self.status(import_id).await {
                        if status.status.is_terminal() {
                            let summary = self.read_stored(import_id, &mut seen, &mut on_update).await;
                            return Ok(summary.ok().flatten().unwrap_or(status));
                        }
                    }
                    read_stored_at.get_or_insert_with(Instant::now);
                }
            }
        }
    }

    /// Reads the import's stored events after those already read, handing each on; returns
    /// the summary when it is among them.
    async fn read_stored(
        &self,
        import_id: &ImportId,
        seen: &mut Seen,
        on_update: &mut impl FnMut(FollowUpdate),
    ) -> Result<Option<ImportStatus>, CallError> {
        loop {
            let page = self
                .call::<ops::Events>(&EventsRequest {
                    import_id: import_id.clone(),
                    after: Some(seen.stored_until),
                    limit: None,
                })
                .await?;
            seen.stored_until = seen.stored_until.max(page.until);
            for event in page.events {
                if let Some(summary) = seen.take(event, on_update) {
                    return Ok(Some(summary));
                }
            }
            if !page.more {
                return Ok(None);
            }
        }
    }

    /// The event a live message holds, if it is one of this import's: only the writer
    /// publishes there, but the server can be made to publish anything anywhere, and a body
    /// that is not an event of ours is passed over rather than believed or ending the follow.
    fn event_of(&self, import_id: &ImportId, payload: &[u8]) -> Option<ImportEvent> {
        match serde_json::from_slice::<ImportEvent>(payload) {
            Ok(event)
                if event.import.account == self.account && event.import.import_id == *import_id =>
            {
                Some(event)
            }
            _ => {
                tracing::warn!(import = %import_id, "passing over a body on the events subject that is not an event of the import");
                None
            }
        }
    }
}

/// What a follower has handed on so far.
#[derive(Debug, Default)]
struct Seen {
    /// The highest `sequence` handed on.
    last_sequence: Option<u64>,
    /// The events stream's position read up to through the API.
    stored_until: u64,
}

impl Seen {
    /// Hands `event` on unless it is older than one already handed on (a summary always
    /// passes); returns the summary's status.
    fn take(
        &mut self,
        event: ImportEvent,
        on_update: &mut impl FnMut(FollowUpdate),
    ) -> Option<ImportStatus> {
        let summary = (event.kind == ImportEventKind::Summary).then(|| event.import.clone());
        if summary.is_none()
            && self
                .last_sequence
                .is_some_and(|last| event.sequence <= last)
        {
            return None;
        }
        self.last_sequence = Some(event.sequence);
        on_update(FollowUpdate::Event(Box::new(event)));
        summary
    }
}

#[cfg(test)]
mod tests {
    use contact_contract::{AccountId, ImportState};

    use super::*;

    fn event(kind: ImportEventKind, sequence: u64) -> ImportEvent {
        let mut import = ImportStatus::queued(
            AccountId::new("acme").expect("valid"),
            ImportId::new("imp-1").expect("valid"),
        );
        import.status = if kind == ImportEventKind::Summary {
            ImportState::Completed
        } else {
            ImportState::Running
        };
        import.rows_total = sequence;
        ImportEvent {
            schema: contact_contract::FIRST_SCHEMA_VERSION,
            sequence,
            kind,
            import,
        }
    }

    #[test]
    fn an_event_seen_twice_or_older_than_one_seen_is_handed_on_once_and_the_summary_always() {
        let mut seen = Seen::default();
        let mut handed = Vec::new();
        let mut on_update = |update: FollowUpdate| {
            if let FollowUpdate::Event(event) = update {
                handed.push((event.kind, event.sequence));
            }
        };
        use ImportEventKind::{Progress, Started, Summary};
        for (kind, sequence) in [
            (Started, 0),
            (Progress, 2),
            (Progress, 1),
            (Progress, 2),
            (Progress, 3),
        ] {
            assert!(seen.take(event(kind, sequence), &mut on_update).is_none());
        }
        let summary = seen.take(event(Summary, 3), &mut on_update);
        assert_eq!(
            summary.map(|status| status.status),
            Some(ImportState::Completed)
        );
        assert_eq!(
            handed,
            [(Started, 0), (Progress, 2), (Progress, 3), (Summary, 3)]
        );
    }
}
