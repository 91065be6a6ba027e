//! Waking the chunks that wait for a lane. A chunk whose lane is behind waits, holding no
//! connection, until the lane reaches it. Whichever writer moves a lane of an import on says
//! so on the import's `lanes` subject (core NATS, nothing stored) with the lane and its next
//! chunk; every writer keeps what it hears per import, and a waiting chunk tries again only
//! the lanes that have reached it. A lost signal costs a recheck a moment later, never a stall.

use std::sync::Arc;

use contact_contract::{AccountId, ImportId, ImportSubjectKind};
use contact_runtime::Shutdown;
use futures::StreamExt as _;

use crate::context::Writer;

/// Tells every writer (this one included) that `lane` of the import applies `next_chunk` next.
pub async fn announce(
    writer: &Writer,
    account: &AccountId,
    import: &ImportId,
    lane: u32,
    next_chunk: u32,
) {
    writer.signals.lane_at(account, import, lane, next_chunk);
    let subject = writer
        .namespace
        .import_subject(ImportSubjectKind::Lanes, account, import);
    let body = format!("{lane} {next_chunk}");
    if let Err(error) = writer.client.publish(subject, body.into()).await {
        // The waiting chunks of other writers recheck on their own shortly.
        tracing::debug!(%error, "lane signal not sent");
    }
}

/// Keeps this writer's lane cursors up to date with what other writers announce.
pub async fn listen(writer: Arc<Writer>, shutdown: Shutdown) -> anyhow::Result<()> {
    let mut signals = writer
        .client
        .subscribe(writer.namespace.import_wildcard(ImportSubjectKind::Lanes))
        .await?;
    loop {
        let message = tokio::select! {
            _ = shutdown.triggered() => return Ok(()),
            message = signals.next() => match message {
                Some(message) => message,
                None => return Ok(()),
            },
        };
        let Some((account, import, ImportSubjectKind::Lanes)) =
            writer.namespace.parse_import_subject(&message.subject)
        else {
            continue;
        };
        let body = String::from_utf8_lossy(&message.payload);
        let mut numbers = body.split(' ').map(str::parse::<u32>);
        if let (Some(Ok(lane)), Some(Ok(next_chunk))) = (numbers.next(), numbers.next()) {
            writer.signals.lane_at(&account, &import, lane, next_chunk);
        }
    }
}
