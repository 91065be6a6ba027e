//! What the writer's /readyz checks (NATS connected, PostgreSQL answering) and the gauges its
//! /metrics reads from elsewhere (the consumer's backlog, imports running).

use contact_contract::Namespace;
use contact_runtime::http::{NatsProbe, Probe};
use contact_runtime::metrics::metrics;
use sqlx::PgPool;

pub(crate) struct WriterProbe {
    pub(crate) nats: NatsProbe,
    pub(crate) pool: PgPool,
    pub(crate) namespace: Namespace,
}

impl WriterProbe {
    async fn imports_running(&self) -> sqlx::Result<i64> {
        sqlx::query_scalar(
            "SELECT count(*) FROM imports WHERE namespace = $1 AND status = 'running'",
        )
        .bind(self.namespace.name())
        .fetch_one(&self.pool)
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
    }
}
