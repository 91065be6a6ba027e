//! contact-writer: the only service that talks to PostgreSQL. It applies validated chunks in
//! file order under the duplicate policy, records row errors, publishes progress events and
//! the summary, and serves the request/reply API (status, errors, attributes, contacts).
//!
//! Replicas share the work, and share one import: the mapper splits every chunk into lanes
//! by the hash of its rows' match keys, each lane is applied in file order, and different
//! lanes are applied at once by whichever replicas take them. A lane part that arrives before
//! its turn waits a moment in hand, then is parked in the database for its lane and its
//! message acknowledged (see `chunk` for why this keeps every import moving); each part
//! commits in one transaction with the move of its lane's cursor, so a redelivered part
//! changes nothing.

mod api;
mod closing;
mod context;
mod db;
mod events;
mod pipeline;
mod probe;
mod retention;
mod sweep;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream;
use clap::Parser;
use contact_contract::ConsumerRole;
use contact_core::validate::PhoneRegion;
use contact_runtime::service::{self, ServiceSettings};
use contact_runtime::{connect, run_consumer, Shutdown};

pub use context::WriterStats;
pub use db::accounts::{ensure_account, AccountAdmission};
#[doc(hidden)]
pub use db::contacts::{explain_fetch_by_keys, KeyHolders, Target};
#[doc(hidden)]
pub use db::undo::{begin as begin_undo, run_batches as run_undo_batches};

use context::{LaneSignals, Writer};

/// The writer's schema migrations, applied by `contact-writer migrate` (or at start, with
/// `WRITER_MIGRATIONS=apply`); exposed for tools that prepare a database.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What a writer does about the schema as it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MigrationsAtStart {
    /// Applies what is missing (the open local deployment, tests).
    Apply,
    /// Refuses to start on an older schema, saying so: the deployment runs
    /// `contact-writer migrate` as its own step before the rollout.
    Require,
}

/// `contact-writer migrate`: brings the schema up to this release, then exits.
#[derive(Debug, Clone, clap::Args)]
pub struct MigrateSettings {
    /// How long a migration's statement may wait for a lock held by running work.
    #[arg(long, env = "MIGRATE_LOCK_TIMEOUT_SECONDS", default_value_t = 60)]
    pub lock_timeout_seconds: u64,
    /// How long one statement of a migration may run (an index on a large table takes long).
    #[arg(
        long,
        env = "MIGRATE_STATEMENT_TIMEOUT_SECONDS",
        default_value_t = 3600
    )]
    pub statement_timeout_seconds: u64,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum WriterCommand {
    /// Applies the database migrations this release needs and exits (a step before the
    /// rollout; concurrent runs wait for each other).
    Migrate(MigrateSettings),
}

/// How a writer replica is configured (flags or environment).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "contact-writer",
    version,
    about = "Persists imported contacts to PostgreSQL"
)]
pub struct Settings {
    #[command(subcommand)]
    pub command: Option<WriterCommand>,
    #[command(flatten)]
    pub service: ServiceSettings,
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/contact_import",
        hide_env_values = true
    )]
    pub database_url: String,
    /// Lane transactions at once in this replica (it holds four times as many chunks, which
    /// wait for their lanes without a connection). Kept small: capacity comes from replicas,
    /// and each transaction holds a PostgreSQL connection.
    #[arg(long, env = "WRITER_CONCURRENCY", default_value_t = 2)]
    pub concurrency: usize,
    /// Region of phone numbers written without a country code, for previews (ISO 3166 code).
    #[arg(long, env = "PHONE_REGION", default_value = "PL")]
    pub phone_region: String,
    /// How accounts come into being: `open` (on first use) or `registered` (only through the
    /// operator's `accounts.register`, as the secure deployment does).
    #[arg(
        long,
        env = "CONTACT_IMPORT_ACCOUNTS",
        value_enum,
        default_value = "open"
    )]
    pub accounts: AccountAdmission,
    /// The watchdog ends a running import that made no progress for this long, saying what it
    /// was waiting for.
    #[arg(long, env = "IMPORT_STALL_SECONDS", default_value_t = 600)]
    pub stall_seconds: u64,
    /// The sweep goes on with an undo nobody has moved on for this long (its client went
    /// away, or a writer stopped during a batch).
    #[arg(long, env = "UNDO_RESUME_SECONDS", default_value_t = 30)]
    pub undo_resume_seconds: u64,
    /// Days an import's row errors, failed rows and undo records are kept after it ends (or is
    /// undone); the sweep then removes them, and the import can no longer be undone. Its
    /// summary and contacts stay. 0 keeps them forever.
    #[arg(long, env = "IMPORT_RETENTION_DAYS", default_value_t = 90)]
    pub retention_days: u32,
    /// The largest file one import may upload, in bytes; a larger one is refused before it is
    /// sent.
    #[arg(long, env = "UPLOAD_MAX_FILE_BYTES", default_value_t = contact_contract::limits::DEFAULT_MAX_FILE_BYTES)]
    pub upload_max_file_bytes: u64,
    /// What one account's uploads bucket may hold at once, in bytes (files are kept a week; 0:
    /// no limit). JetStream reserves it in its store for every account's bucket; existing
    /// buckets are brought to it as they are next used.
    #[arg(long, env = "UPLOAD_BYTES_PER_ACCOUNT", default_value_t = contact_contract::limits::NO_BYTE_LIMIT)]
    pub upload_bytes_per_account: u64,
    /// How many uploaded files one account may keep at once (files are kept a week; 0: no
    /// limit): one more is refused before it is sent.
    #[arg(long, env = "UPLOAD_FILES_PER_ACCOUNT", default_value_t = 0)]
    pub upload_files_per_account: u64,
    /// How many imports one account may run at once; further start requests wait their turn.
    #[arg(long, env = "IMPORTS_RUNNING_PER_ACCOUNT", default_value_t = contact_contract::limits::DEFAULT_RUNNING_IMPORTS_PER_ACCOUNT)]
    pub running_per_account: u32,
    /// How many start requests of one account may wait for their turn; one beyond them fails
    /// at once.
    #[arg(long, env = "IMPORTS_QUEUED_PER_ACCOUNT", default_value_t = contact_contract::limits::DEFAULT_QUEUED_IMPORTS_PER_ACCOUNT)]
    pub queued_per_account: u32,
    /// How often to look for work a replica that stopped left undone (parts parked for a lane it
    /// had just moved on, an import it had just finished).
    #[arg(long, env = "WRITER_SWEEP_SECONDS", default_value_t = 2)]
    pub sweep_seconds: u64,
    /// `apply` the missing migrations at start, or `require` them applied (by
    /// `contact-writer migrate`) and refuse to start otherwise.
    #[arg(long, env = "WRITER_MIGRATIONS", value_enum, default_value = "apply")]
    pub migrations: MigrationsAtStart,
}

/// Runs `contact-writer migrate` and says what it applied.
pub async fn migrate(database_url: &str, settings: &MigrateSettings) -> anyhow::Result<()> {
    let timeouts = db::schema::MigrateTimeouts {
        lock: Duration::from_secs(settings.lock_timeout_seconds.max(1)),
        statement: Duration::from_secs(settings.statement_timeout_seconds.max(1)),
    };
    let database = database_url
        .parse()
        .context("DATABASE_URL is not a PostgreSQL URL")?;
    let applied = db::schema::migrate(&MIGRATOR, database, timeouts).await?;
    let newest = MIGRATOR
        .iter()
        .map(|migration| migration.version)
        .max()
        .unwrap_or_default();
    match applied.as_slice() {
        [] => println!("the database schema was already current (version {newest})"),
        versions => {
            println!("applied migrations {versions:?}; the database schema is at version {newest}")
        }
    }
    Ok(())
}

/// Brings the schema up (`apply`) or checks it (`require`) as a writer starts.
async fn ensure_schema(pool: &sqlx::PgPool, mode: MigrationsAtStart) -> anyhow::Result<()> {
    let mut connection = pool.acquire().await?;
    let applied = db::schema::applied(&mut connection).await?;
    let state = db::schema::SchemaState::of(&MIGRATOR, &applied);
    match (state.refusal(), mode) {
        (None, _) => Ok(()),
        (Some(_), MigrationsAtStart::Apply) => MIGRATOR
            .run(pool)
            .await
            .context("applying the database migrations"),
        (Some(refusal), MigrationsAtStart::Require) => Err(anyhow::anyhow!(refusal)),
    }
}

/// Chunks a replica holds per lane transaction it runs: most wait for a lane of theirs.
const CHUNKS_IN_HAND_PER_SLOT: usize = 4;

pub struct Application {
    writer: Arc<Writer>,
    api: api::ApiServer,
    consumer: jetstream::consumer::PullConsumer,
    concurrency: usize,
    sweep_every: Duration,
    http_addr: Option<SocketAddr>,
    shutdown: Shutdown,
}

impl Application {
    /// Connects to NATS and PostgreSQL (waiting while either is down), applies or checks the
    /// migrations (`WRITER_MIGRATIONS`) and makes sure the streams exist.
    pub async fn build(settings: Settings, shutdown: Shutdown) -> anyhow::Result<Self> {
        let phone_region: PhoneRegion = settings
            .phone_region
            .parse()
            .map_err(|error| anyhow::anyhow!("PHONE_REGION: {error}"))?;
        let started = service::start(&settings.service, ConsumerRole::Writer, &shutdown).await?;
        // A part in hand uses one connection at a time; the API serves requests beside it.
        let pool_size = settings.concurrency as u32 + api::REQUESTS_IN_FLIGHT as u32 + 4;
        let pool = connect::postgres(&settings.database_url, pool_size, &shutdown).await?;
        ensure_schema(&pool, settings.migrations).await?;
        let writer = Arc::new(Writer {
            pool: pool.clone(),
            client: started.client.clone(),
            jetstream: started.jetstream.clone(),
            namespace: started.namespace.clone(),
            phone_region,
            stats: Arc::default(),
            database_slots: tokio::sync::Semaphore::new(settings.concurrency.max(1)),
            signals: LaneSignals::default(),
            shutdown: shutdown.clone(),
            accounts: settings.accounts,
            admitted: Default::default(),
            stall: Duration::from_secs(settings.stall_seconds.max(1)),
            undo_resume_after: Duration::from_secs(settings.undo_resume_seconds.max(1)),
            retention: retention::retention_of_days(settings.retention_days),
            upload_limits: {
                let per_account = (settings.upload_bytes_per_account
                    != contact_contract::limits::NO_BYTE_LIMIT)
                    .then_some(settings.upload_bytes_per_account);
                contact_contract::limits::UploadLimits {
                    max_file_bytes: settings
                        .upload_max_file_bytes
                        .min(per_account.unwrap_or(u64::MAX)),
                    bytes_per_account: per_account,
                    files_per_account: (settings.upload_files_per_account > 0)
                        .then_some(settings.upload_files_per_account),
                }
            },
            running_per_account: settings.running_per_account.max(1),
            queued_per_account: settings.queued_per_account,
        });
        // Before it says it is ready: a writer that has started answers its API.
        let api = api::register(&writer).await?;
        started.ready(probe::WriterProbe {
            nats: started.nats_probe(),
            pool: pool.clone(),
            namespace: started.namespace.clone(),
        });
        Ok(Self {
            writer,
            api,
            consumer: started.consumer,
            concurrency: settings.concurrency,
            sweep_every: Duration::from_secs(settings.sweep_seconds.max(1)),
            http_addr: started.http_addr,
            shutdown,
        })
    }

    /// Where /healthz, /readyz and /metrics are served, when they are.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// This replica's counters; they keep counting while it runs.
    pub fn stats(&self) -> Arc<WriterStats> {
        self.writer.stats.clone()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        tracing::info!("contact-writer is applying chunks and serving the API");
        let api = tokio::spawn(self.api.serve(self.writer.clone(), self.shutdown.clone()));
        let signals = tokio::spawn(pipeline::signals::listen(
            self.writer.clone(),
            self.shutdown.clone(),
        ));
        let sweeper = tokio::spawn(sweep::sweep_forever(
            self.writer.clone(),
            self.sweep_every,
            self.shutdown.clone(),
        ));
        let handler = Arc::new(pipeline::PipelineHandler::new(self.writer.clone()));
        let consumed = run_consumer(
            self.consumer,
            self.concurrency * CHUNKS_IN_HAND_PER_SLOT,
            handler,
            self.shutdown.clone(),
        )
        .await;
        self.shutdown.trigger();
        let served = api.await.context("the API task failed")?;
        let listened = signals.await.context("the lane signal task failed")?;
        sweeper.await.context("the sweeper task failed")?;
        consumed.and(served).and(listened)
    }
}
