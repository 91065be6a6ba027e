//! The integration-test harness: starts real contact-ingest, contact-mapper and
//! contact-writer services in-process against the machine's NATS and PostgreSQL, each test in
//! its own namespace (streams, bucket, consumers) and account, and stops them cleanly.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use contact_contract::{
    AccountId, ConsumerRole, ExportedContact, ImportId, ImportOptions, ImportRequest, ImportStatus,
    ImportSubjectKind, Namespace,
};
use contact_core::validate::RowError;
use contact_import::Client;
use contact_runtime::Shutdown;
use sqlx::PgPool;
use tokio::task::JoinHandle;

/// How many replicas of each service a test runs.
#[derive(Debug, Clone, Copy)]
pub struct Replicas {
    pub ingest: usize,
    pub mapper: usize,
    pub writer: usize,
}

impl Default for Replicas {
    fn default() -> Self {
        Self {
            ingest: 1,
            mapper: 1,
            writer: 1,
        }
    }
}

/// A running system for one test.
pub struct TestSystem {
    pub namespace: Namespace,
    pub account: AccountId,
    pub client: Client,
    pub pool: PgPool,
    pub nats_url: String,
    pub database_url: String,
    pub namespace_name: String,
    /// The counters of each writer replica, in the order they started.
    pub writers: Vec<Arc<contact_writer::WriterStats>>,
    scratch: PathBuf,
    services: Vec<(Shutdown, JoinHandle<anyhow::Result<()>>)>,
}

pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_string())
}

/// The test database; created on first use.
pub fn database_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/contact_import_test".to_string())
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

async fn create_database_if_missing(url: &str) -> anyhow::Result<()> {
    let (server, database) = url
        .rsplit_once('/')
        .context("database URL without a database name")?;
    let admin = sqlx::PgPool::connect(&format!("{server}/postgres"))
        .await
        .context("connecting to PostgreSQL")?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database)
            .fetch_one(&admin)
            .await?;
    if !exists {
        let created = sqlx::query(&format!("CREATE DATABASE \"{database}\""))
            .execute(&admin)
            .await;
        // Another test binary may have created it meanwhile.
        if let Err(error) = created {
            if !error.to_string().contains("already exists") {
                return Err(error.into());
            }
        }
    }
    admin.close().await;
    Ok(())
}

impl TestSystem {
    pub async fn start() -> Self {
        Self::start_with(Replicas::default()).await
    }

    pub async fn start_with(replicas: Replicas) -> Self {
        let namespace_name = unique("t");
        let system = Self::start_in(
            &namespace_name,
            AccountId::new(unique("acct-")).expect("valid"),
            replicas,
        )
        .await;
        system.expect("starting the test system")
    }

    async fn start_in(
        namespace_name: &str,
        account: AccountId,
        replicas: Replicas,
    ) -> anyhow::Result<Self> {
        contact_runtime::telemetry::init();
        let nats_url = nats_url();
        let database_url = database_url();
        create_database_if_missing(&database_url).await?;
        let namespace = Namespace::new(namespace_name)?;
        let pool = PgPool::connect(&database_url).await?;
        let client = Client::connect(&nats_url, namespace.clone(), account.clone()).await?;
        let scratch = std::env::temp_dir().join(format!("contact-import-{namespace_name}"));
        std::fs::create_dir_all(&scratch)?;
        let mut system = Self {
            namespace,
            account,
            client,
            pool,
            nats_url,
            database_url,
            namespace_name: namespace_name.to_string(),
            writers: Vec::new(),
            scratch,
            services: Vec::new(),
        };
        // The writer first: it applies the migrations the others' work depends on.
        for _ in 0..replicas.writer {
            system.start_writer().await?;
        }
        for _ in 0..replicas.mapper {
            system.start_mapper().await?;
        }
        for _ in 0..replicas.ingest {
            system.start_ingest().await?;
        }
        Ok(system)
    }

    pub async fn start_writer(&mut self) -> anyhow::Result<()> {
        let shutdown = Shutdown::new();
        let settings = contact_writer::Settings {
            nats_url: self.nats_url.clone(),
            database_url: self.database_url.clone(),
            namespace: self.namespace_name.clone(),
            concurrency: 4,
            sweep_seconds: 1,
            phone_region: "PL".to_string(),
        };
        let application = contact_writer::Application::build(settings, shutdown.clone()).await?;
        self.writers.push(application.stats());
        self.services
            .push((shutdown, tokio::spawn(application.run_until_stopped())));
        Ok(())
    }

    pub async fn start_mapper(&mut self) -> anyhow::Result<()> {
        let shutdown = Shutdown::new();
        let settings = contact_mapper::Settings {
            nats_url: self.nats_url.clone(),
            namespace: self.namespace_name.clone(),
            concurrency: 4,
        };
        let application = contact_mapper::Application::build(settings, shutdown.clone()).await?;
        self.services
            .push((shutdown, tokio::spawn(application.run_until_stopped())));
        Ok(())
    }

    pub async fn start_ingest(&mut self) -> anyhow::Result<()> {
        let shutdown = Shutdown::new();
        let settings = contact_ingest::Settings {
            nats_url: self.nats_url.clone(),
            namespace: self.namespace_name.clone(),
            phone_region: "PL".to_string(),
            concurrency: 2,
        };
        let application = contact_ingest::Application::build(settings, shutdown.clone()).await?;
        self.services
            .push((shutdown, tokio::spawn(application.run_until_stopped())));
        Ok(())
    }

    /// A client for another account of the same deployment.
    pub async fn client_for(&self, account: &AccountId) -> Client {
        Client::connect(&self.nats_url, self.namespace.clone(), account.clone())
            .await
            .expect("connecting a second client")
    }

    /// Writes `content` to a file of the test's scratch folder.
    pub fn file(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.scratch.join(name);
        std::fs::write(&path, content).expect("writing a test file");
        path
    }

    /// A path in the test's scratch folder.
    pub fn scratch_path(&self, name: &str) -> PathBuf {
        self.scratch.join(name)
    }

    /// Imports `content` and waits for the summary.
    pub async fn import(&self, content: impl AsRef<[u8]>, options: ImportOptions) -> ImportStatus {
        let path = self.file(&format!("{}.csv", unique("upload-")), content);
        self.import_file(&self.client, &path, options).await
    }

    pub async fn import_file(
        &self,
        client: &Client,
        path: &Path,
        options: ImportOptions,
    ) -> ImportStatus {
        let import_id = client
            .start_import(path, options)
            .await
            .expect("starting the import");
        self.wait_for_summary(client, &import_id).await
    }

    pub async fn wait_for_summary(&self, client: &Client, import_id: &ImportId) -> ImportStatus {
        let following = client.follow(import_id, Duration::from_secs(5), |_| {});
        tokio::time::timeout(Duration::from_secs(120), following)
            .await
            .expect("the import finished within two minutes")
            .expect("following the import")
    }

    pub async fn contacts(&self) -> Vec<ExportedContact> {
        let mut contacts = Vec::new();
        self.client
            .export_contacts(|contact| contacts.push(contact))
            .await
            .expect("exporting contacts");
        contacts
    }

    pub async fn errors(&self, import_id: &ImportId) -> Vec<RowError> {
        let mut errors = Vec::new();
        self.client
            .errors(import_id, |error| errors.push(error))
            .await
            .expect("reading row errors");
        errors
    }

    /// Publishes `request` without its message id, as a repeat that comes after JetStream's
    /// duplicate window would, and waits until an ingest replica has settled it.
    pub async fn republish_after_dedup_window(&self, request: &ImportRequest) {
        let jetstream = async_nats::jetstream::new(self.client.nats().clone());
        let subject = self.namespace.import_subject(
            ImportSubjectKind::Start,
            &request.account,
            &request.import_id,
        );
        let body = serde_json::to_vec(request).expect("encoding the request");
        let stored = jetstream
            .publish(subject, body.into())
            .await
            .expect("publishing the request")
            .await
            .expect("storing the request");
        assert!(!stored.duplicate, "published without a message id");
        self.wait_until_settled(ConsumerRole::Ingest).await;
    }

    /// Waits until the replicas of `role` have settled (acked or terminated) every message
    /// waiting for them.
    pub async fn wait_until_settled(&self, role: ConsumerRole) {
        let jetstream = async_nats::jetstream::new(self.client.nats().clone());
        let mut consumer = role
            .consumer(&jetstream, &self.namespace)
            .await
            .expect("the role's consumer");
        let settled = async {
            loop {
                let info = consumer.info().await.expect("consumer info");
                if info.num_pending == 0 && info.num_ack_pending == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), settled)
            .await
            .unwrap_or_else(|_| panic!("{role:?} did not settle its messages within a minute"));
    }

    /// Stops every service (they finish the work in hand) and removes the namespace's streams.
    pub async fn stop(self) {
        for (shutdown, _) in &self.services {
            shutdown.trigger();
        }
        for (_, task) in self.services {
            let stopped = tokio::time::timeout(Duration::from_secs(30), task).await;
            match stopped {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => panic!("a service failed: {error:#}"),
                Ok(Err(error)) => panic!("a service panicked: {error}"),
                Err(_) => panic!("a service did not stop within 30 s"),
            }
        }
        let jetstream = async_nats::jetstream::new(self.client.nats().clone());
        for stream in self.namespace.all_streams() {
            let _ = jetstream.delete_stream(&stream).await;
        }
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}
