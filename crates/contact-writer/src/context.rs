//! What the writer's wings share: the connections, the settings they act on, and what this
//! replica knows of the lanes it waits on. Built once at start (see `Application::build`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_nats::jetstream;
use contact_contract::{AccountId, ImportId, Namespace};
use contact_core::validate::PhoneRegion;
use contact_runtime::Shutdown;
use sqlx::PgPool;
use tokio::sync::watch;

use crate::db::accounts::AccountAdmission;

/// What one writer replica has done, for tests and operators that ask a running replica.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Lanes of chunks this replica applied.
    pub lanes_applied: std::sync::atomic::AtomicU64,
}

/// Everything a handler needs; cheap to share.
pub(crate) struct Writer {
    pub(crate) pool: PgPool,
    pub(crate) client: async_nats::Client,
    pub(crate) jetstream: jetstream::Context,
    pub(crate) namespace: Namespace,
    pub(crate) phone_region: PhoneRegion,
    pub(crate) stats: Arc<WriterStats>,
    /// Lane transactions at once: each holds a connection for its duration.
    pub(crate) database_slots: tokio::sync::Semaphore,
    pub(crate) signals: LaneSignals,
    pub(crate) shutdown: Shutdown,
    pub(crate) accounts: AccountAdmission,
    /// How long a running import may go without progress (the watchdog).
    pub(crate) stall: Duration,
    /// How long an undo may sit untouched before the sweep goes on with it.
    pub(crate) undo_resume_after: Duration,
    /// How long an import's details are kept after it ends; none keeps them forever.
    pub(crate) retention: Option<Duration>,
    /// How large one uploaded file, and all of one account's uploads, may be.
    pub(crate) upload_limits: contact_contract::limits::UploadLimits,
    /// How many imports one account may run at once.
    pub(crate) running_per_account: u32,
    /// How many start requests of one account may wait for their turn.
    pub(crate) queued_per_account: u32,
    /// Registered accounts already looked up.
    pub(crate) admitted: std::sync::Mutex<std::collections::HashSet<contact_contract::AccountId>>,
}

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
