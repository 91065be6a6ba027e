//! Waking the chunks that wait for a lane. A chunk whose lane is behind waits, holding no
//! connection, until the lane reaches it. Whichever writer moves a lane of an import on says
//! so on the import's `lanes` subject (core NATS, nothing stored) with the lane and its next
//! chunk; every writer keeps what it hears per import, and a waiting chunk tries again only
//! the lanes that have reached it. A lost signal costs a recheck a moment later, never a stall.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use contact_contract::{AccountId, ImportId, ImportSubjectKind};
use contact_runtime::Shutdown;
use futures::StreamExt as _;
use tokio::sync::watch;

use crate::Writer;

/// What this writer knows of an import's lanes: for each lane heard of, the chunk it applies
/// next (a lower bound: the lane may be further on).
pub type LaneCursors = watch::Sender<HashMap<u32, u32>>;

/// The lane cursors of every import some chunk in this replica waits on.
#[derive(Default)]
pub struct LaneSignals {
    imports: Mutex<HashMap<(AccountId, ImportId), Weak<LaneCursors>>>,
}

impl LaneSignals {
    /// The import's lane cursors; hold them while waiting on them.
    pub fn watch(&self, account: &AccountId, import: &ImportId) -> Arc<LaneCursors> {
        let mut imports = self
            .imports
            .lock()
            .expect("the signal map is never poisoned");
        let key = (account.clone(), import.clone());
        if let Some(cursors) = imports.get(&key).and_then(Weak::upgrade) {
            return cursors;
        }
        // Forget imports nobody waits on any more before adding one.
        imports.retain(|_, cursors| cursors.strong_count() > 0);
        let cursors = Arc::new(watch::Sender::new(HashMap::new()));
        imports.insert(key, Arc::downgrade(&cursors));
        cursors
    }

    /// Records that `lane` of the import applies `next_chunk` next (or later).
    pub fn lane_at(&self, account: &AccountId, import: &ImportId, lane: u32, next_chunk: u32) {
        let cursors = {
            let imports = self
                .imports
                .lock()
                .expect("the signal map is never poisoned");
            imports
                .get(&(account.clone(), import.clone()))
                .and_then(Weak::upgrade)
        };
        if let Some(cursors) = cursors {
            cursors.send_if_modified(|known| {
                let cursor = known.entry(lane).or_default();
                let moved = next_chunk > *cursor;
                *cursor = (*cursor).max(next_chunk);
                moved
            });
        }
    }
}

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
