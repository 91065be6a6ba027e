//! contact-writer: the only service that talks to PostgreSQL. It applies validated chunks in
//! file order under the duplicate policy, records row errors, publishes progress events and
//! the summary, and serves the request/reply API (status, errors, attributes, contacts).
//!
//! Replicas share the work: any replica may receive any chunk. A chunk that arrives before its
//! turn waits in the `pending_chunks` table; whichever replica holds the import's row lock
//! applies the next chunks in order, each in one transaction that also records the chunk as
//! done. Redelivered chunks therefore change nothing.

mod accounts;
mod api;
mod chunks;
mod contacts;
mod events;
mod imports;
mod pipeline;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream;
use clap::Parser;
use contact_contract::{ConsumerRole, Namespace};
use contact_core::validate::PhoneRegion;
use contact_runtime::{connect, run_consumer, Shutdown};
use sqlx::PgPool;

pub use accounts::ensure_account;

/// The writer's schema migrations, applied at start; exposed for tools that prepare a database.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How a writer replica is configured (flags or environment).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "contact-writer",
    about = "Persists imported contacts to PostgreSQL"
)]
pub struct Settings {
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/contact_import",
        hide_env_values = true
    )]
    pub database_url: String,
    /// Prefix of every subject and stream (one per deployment).
    #[arg(long, env = "CONTACT_IMPORT_NAMESPACE", default_value = "ci")]
    pub namespace: String,
    /// Chunks handled at once by this replica.
    #[arg(long, env = "WRITER_CONCURRENCY", default_value_t = 4)]
    pub concurrency: usize,
    /// Region of phone numbers written without a country code, for previews (ISO 3166 code).
    #[arg(long, env = "PHONE_REGION", default_value = "PL")]
    pub phone_region: String,
    /// How often to look for chunks left waiting by a replica that stopped.
    #[arg(long, env = "WRITER_SWEEP_SECONDS", default_value_t = 5)]
    pub sweep_seconds: u64,
}

/// Everything a handler needs; cheap to share.
pub(crate) struct Writer {
    pub(crate) pool: PgPool,
    pub(crate) client: async_nats::Client,
    pub(crate) jetstream: jetstream::Context,
    pub(crate) namespace: Namespace,
    pub(crate) phone_region: PhoneRegion,
}

pub struct Application {
    writer: Arc<Writer>,
    consumer: jetstream::consumer::PullConsumer,
    concurrency: usize,
    sweep_every: Duration,
    shutdown: Shutdown,
}

impl Application {
    /// Connects to NATS and PostgreSQL (waiting while either is down), applies the migrations
    /// and makes sure the streams exist.
    pub async fn build(settings: Settings, shutdown: Shutdown) -> anyhow::Result<Self> {
        let namespace = Namespace::new(&settings.namespace)?;
        let phone_region: PhoneRegion = settings
            .phone_region
            .parse()
            .map_err(|error| anyhow::anyhow!("PHONE_REGION: {error}"))?;
        // A chunk in hand may hold its import's turn on one connection while it reads and
        // publishes on others, and the API serves requests beside it: room for both, so that
        // nobody waits on a connection held by someone who waits on them.
        let pool_size = (settings.concurrency as u32 * 3 + 8).max(20);
        let pool = connect::postgres(&settings.database_url, pool_size, &shutdown).await?;
        MIGRATOR
            .run(&pool)
            .await
            .context("applying the database migrations")?;
        let client = connect::nats(&settings.nats_url, "contact-writer", &shutdown).await?;
        let jetstream = jetstream::new(client.clone());
        contact_contract::ensure_streams(&jetstream, &namespace)
            .await
            .map_err(anyhow::Error::from_boxed)
            .context("creating the import streams")?;
        let consumer = ConsumerRole::Writer
            .consumer(&jetstream, &namespace)
            .await
            .map_err(anyhow::Error::from_boxed)
            .context("creating the writer consumer")?;
        Ok(Self {
            writer: Arc::new(Writer {
                pool,
                client,
                jetstream,
                namespace,
                phone_region,
            }),
            consumer,
            concurrency: settings.concurrency,
            sweep_every: Duration::from_secs(settings.sweep_seconds.max(1)),
            shutdown,
        })
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        tracing::info!("contact-writer is applying chunks and serving the API");
        let api = tokio::spawn(api::serve(self.writer.clone(), self.shutdown.clone()));
        let sweeper = tokio::spawn(chunks::sweep_forever(
            self.writer.clone(),
            self.sweep_every,
            self.shutdown.clone(),
        ));
        let handler = Arc::new(pipeline::PipelineHandler::new(self.writer.clone()));
        let consumed = run_consumer(
            self.consumer,
            self.concurrency,
            handler,
            self.shutdown.clone(),
        )
        .await;
        self.shutdown.trigger();
        let served = api.await.context("the API task failed")?;
        sweeper.await.context("the sweeper task failed")?;
        consumed.and(served)
    }
}
