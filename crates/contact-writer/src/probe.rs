//! What the writer's /readyz checks (NATS connected, PostgreSQL answering) and the gauges its
//! /metrics reads from elsewhere (the consumer's backlog, imports running, imports without
//! progress).

use contact_contract::Namespace;
use contact_runtime::http::{NatsProbe, Probe};
use contact_runtime::metrics::metrics;
use sqlx::PgPool;

use crate::db::imports;

pub(crate) struct WriterProbe {
    pub(crate) nats: NatsProbe,
    pub(crate) pool: PgPool,
    pub(crate) namespace: Namespace,
}

impl WriterProbe {
    async fn imports_running(&self) -> sqlx::Result<i64> {
        imports::running_in_namespace(&mut *self.pool.acquire().await?, &self.namespace).await
    }
}

/// An import none of whose lanes moved on for this long counts as without progress: far beyond
/// what a healthy import waits (a part waits in hand a second, then is parked), far below the
/// watchdog's `IMPORT_STALL_SECONDS`, so that an alert comes before the watchdog fails it.
const WITHOUT_PROGRESS_AFTER_SECONDS: f64 = 60.0;

impl WriterProbe {
    async fn imports_without_progress(&self) -> sqlx::Result<i64> {
        imports::without_lane_moves_for(
            &mut *self.pool.acquire().await?,
            &self.namespace,
            WITHOUT_PROGRESS_AFTER_SECONDS,
        )
        .await
    }
}

impl Probe for WriterProbe {
    async fn ready(&self) -> Result<(), String> {
        self.nats.ready().await?;
        self.imports_running()
            .await
            .map(drop)
            .map_err(|error| format!("PostgreSQL does not answer: {error}"))
    }

    async fn refresh(&self) {
        self.nats.refresh().await;
        match self.imports_running().await {
            Ok(running) => metrics().set_imports_running(running),
            Err(error) => tracing::debug!(%error, "cannot count the running imports"),
        }
        match self.imports_without_progress().await {
            Ok(stuck) => metrics().set_imports_without_progress(stuck),
            Err(error) => tracing::debug!(%error, "cannot count the imports without progress"),
        }
    }
}
