//! The integration-test harness: starts real contact-ingest, contact-mapper and
//! contact-writer services in-process against the machine's NATS and PostgreSQL, each test in
//! its own namespace (streams, bucket, consumers) and account, and stops them cleanly.

pub mod nats_server;
pub mod netns;

use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use contact_contract::NatsSettings;
use contact_contract::{
    AccountId, ConsumerRole, ExportedContact, ImportId, ImportOptions, ImportRequest, ImportStatus,
    ImportSubjectKind, Namespace, RowError,
};
use contact_import_client::Client;
use contact_runtime::service::ServiceSettings;
use contact_runtime::Shutdown;

use sqlx::PgPool;
use tokio::task::JoinHandle;

pub use nats_server::{NatsCluster, NatsServer};

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

/// The NATS a test system runs on, and how each party proves who it is.
#[derive(Debug, Clone)]
pub enum NatsDeployment {
    /// The machine's open server: everybody connects without credentials.
    Open { url: String },
    /// A server of the test's own, run from the secure configuration in `dir`: every
    /// service and tenant with its own credentials.
    Secure { url: String, dir: PathBuf },
    /// Everybody connects with the same settings (a TLS server, say).
    Shared(NatsSettings),
}

impl NatsDeployment {
    /// How service `service` (`ingest`, `mapper`, `writer`) connects.
    pub fn for_service(&self, service: &str) -> NatsSettings {
        match self {
            Self::Open { url } => NatsSettings::plain(url),
            Self::Secure { url, dir } => NatsSettings {
                creds: Some(contact_admin::Deployment::at(dir).service_creds(service)),
                ..NatsSettings::plain(url)
            },
            Self::Shared(settings) => settings.clone(),
        }
    }

    /// How a client of `account` connects.
    pub fn for_tenant(&self, account: &AccountId) -> NatsSettings {
        match self {
            Self::Open { url } => NatsSettings::plain(url),
            Self::Secure { url, dir } => NatsSettings {
                creds: Some(contact_admin::Deployment::at(dir).tenant_creds(account)),
                ..NatsSettings::plain(url)
            },
            Self::Shared(settings) => settings.clone(),
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Self::Open { url } | Self::Secure { url, .. } => url,
            Self::Shared(settings) => &settings.url,
        }
    }
}

/// A NATS server of a test's own, started from the configuration `contact-import-admin`
/// writes, with the given tenants added; it stops when dropped.
pub struct SecureNats {
    pub deployment: NatsDeployment,
    pub namespace: Namespace,
    pub dir: PathBuf,
    pub server: NatsServer,
}

impl SecureNats {
    pub async fn start(tenants: &[AccountId]) -> Self {
        let namespace = Namespace::new(&unique("s")).expect("valid");
        let dir = std::env::temp_dir().join(format!("contact-import-{}", namespace.name()));
        let admin = contact_admin::Deployment::at(&dir);
        let port = nats_server::free_port();
        admin
            .init(
                &namespace,
                &format!("127.0.0.1:{port}"),
                Some(&dir.join("store")),
            )
            .expect("contact-import-admin init");
        for tenant in tenants {
            admin
                .add_tenant(tenant)
                .expect("contact-import-admin tenant add");
        }
        // As the README runs it: the configuration alone, so that a reload (after `tenant
        // remove` or `rotate`) works.
        let server = NatsServer::start(port, vec!["-c".into(), admin.config().into()]).await;
        Self {
            deployment: NatsDeployment::Secure {
                url: format!("nats://127.0.0.1:{port}"),
                dir: dir.clone(),
            },
            namespace,
            dir,
            server,
        }
    }
}

impl Drop for SecureNats {
    /// The folder holds the credentials and the server's store: nothing of it outlives the
    /// test (the server, dropped next, is killed).
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running system for one test.
pub struct TestSystem {
    pub namespace: Namespace,
    pub account: AccountId,
    pub client: Client,
    pub pool: PgPool,
    /// How the test's own client connects.
    pub nats: NatsSettings,
    pub deployment: NatsDeployment,
    /// How the writers admit accounts.
    pub accounts: contact_writer::AccountAdmission,
    /// The writers' watchdog: how long an import may go without progress.
    pub stall_seconds: u64,
    /// The writers' `UNDO_RESUME_SECONDS` (for writers started after it is set).
    pub undo_resume_seconds: u64,
    /// The writers' `IMPORT_RETENTION_DAYS` (for writers started after it is set).
    pub retention_days: u32,
    /// The writers' `UPLOAD_MAX_FILE_BYTES` and `UPLOAD_BYTES_PER_ACCOUNT`.
    pub upload_limits: contact_contract::limits::UploadLimits,
    /// How many imports one account may run at once.
    pub running_per_account: u32,
    /// How many start requests of one account may wait for their turn.
    pub queued_per_account: u32,
    /// Lane transactions at once in each writer started from now on (`WRITER_CONCURRENCY`).
    pub writer_concurrency: usize,
    /// Copies of each stream the services ask JetStream to keep.
    pub jetstream_replicas: usize,
    /// Services started from now on serve /healthz, /readyz and /metrics on a free port.
    pub serve_http: bool,
    /// Where each service that serves HTTP listens, by service name, in start order.
    pub http_addrs: Vec<(&'static str, std::net::SocketAddr)>,
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

/// A binary of this workspace built next to the running test binary
/// (`cargo build --workspace --bins`): the CLI, or a service to run as a child process.
pub fn workspace_binary(name: &str) -> PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let profile_dir = test_binary
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let binary = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        binary.display()
    );
    binary
}

pub fn unique(prefix: &str) -> String {
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
        // Another test process may have created it meanwhile: PostgreSQL then says so
        // (duplicate_database), or, when both created it at the same moment, the catalog's
        // unique index refuses the second (unique_violation).
        if let Err(error) = created {
            let code = error
                .as_database_error()
                .and_then(|error| error.code())
                .map(|code| code.into_owned());
            if !matches!(code.as_deref(), Some("42P04" | "23505")) {
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
            NatsDeployment::Open { url: nats_url() },
            contact_writer::AccountAdmission::Open,
            1,
        )
        .await;
        system.expect("starting the test system")
    }

    /// The services on `secure`'s server, each with its own credentials; the test's client
    /// is `tenant`'s.
    pub async fn start_secure(
        secure: &SecureNats,
        tenant: AccountId,
        accounts: contact_writer::AccountAdmission,
    ) -> Self {
        Self::start_in(
            secure.namespace.name(),
            tenant,
            Replicas::default(),
            secure.deployment.clone(),
            accounts,
            1,
        )
        .await
        .expect("starting the test system on the secure server")
    }

    /// The services on an open NATS server or cluster of the test's own (`urls`: every node,
    /// comma-separated), asking for `jetstream_replicas` copies of each stream.
    pub async fn start_on(urls: &str, jetstream_replicas: usize) -> Self {
        Self::start_on_nats(NatsSettings::plain(urls), jetstream_replicas).await
    }

    /// The services and the test's client all connecting with `nats`.
    pub async fn start_on_nats(nats: NatsSettings, jetstream_replicas: usize) -> Self {
        let namespace_name = unique("t");
        Self::start_in(
            &namespace_name,
            AccountId::new(unique("acct-")).expect("valid"),
            Replicas::default(),
            NatsDeployment::Shared(nats),
            contact_writer::AccountAdmission::Open,
            jetstream_replicas,
        )
        .await
        .expect("starting the test system on the test's server")
    }

    async fn start_in(
        namespace_name: &str,
        account: AccountId,
        replicas: Replicas,
        deployment: NatsDeployment,
        accounts: contact_writer::AccountAdmission,
        jetstream_replicas: usize,
    ) -> anyhow::Result<Self> {
        contact_runtime::telemetry::init("contact-tests");
        let nats = deployment.for_tenant(&account);
        let database_url = database_url();
        create_database_if_missing(&database_url).await?;
        let namespace = Namespace::new(namespace_name)?.with_replicas(jetstream_replicas);
        let pool = PgPool::connect(&database_url).await?;
        let client = Client::connect(&nats, namespace.clone(), account.clone()).await?;
        let scratch = std::env::temp_dir().join(format!("contact-import-{namespace_name}"));
        std::fs::create_dir_all(&scratch)?;
        let mut system = Self {
            namespace,
            account,
            client,
            pool,
            nats,
            deployment,
            accounts,
            stall_seconds: 600,
            undo_resume_seconds: 30,
            retention_days: 90,
            upload_limits: Default::default(),
            running_per_account: contact_contract::limits::DEFAULT_RUNNING_IMPORTS_PER_ACCOUNT,
            queued_per_account: contact_contract::limits::DEFAULT_QUEUED_IMPORTS_PER_ACCOUNT,
            writer_concurrency: 4,
            jetstream_replicas,
            serve_http: false,
            http_addrs: Vec::new(),
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

    /// What every service of this system is started with; `service` names its credentials.
    fn service_settings(&self, service: &str) -> ServiceSettings {
        ServiceSettings {
            nats: self.deployment.for_service(service),
            http: contact_runtime::http::HttpSettings {
                http_addr: self
                    .serve_http
                    .then(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
            },
            namespace: self.namespace_name.clone(),
            jetstream_replicas: self.jetstream_replicas,
            stream_max_bytes: self
                .namespace
                .stream_max_bytes()
                .unwrap_or(contact_contract::limits::NO_BYTE_LIMIT),
        }
    }

    fn note_http(&mut self, service: &'static str, address: Option<std::net::SocketAddr>) {
        if let Some(address) = address {
            self.http_addrs.push((service, address));
        }
    }

    pub async fn start_writer(&mut self) -> anyhow::Result<()> {
        let shutdown = Shutdown::new();
        let settings = contact_writer::Settings {
            service: self.service_settings("writer"),
            database_url: self.database_url.clone(),
            concurrency: self.writer_concurrency,
            sweep_seconds: 1,
            stall_seconds: self.stall_seconds,
            undo_resume_seconds: self.undo_resume_seconds,
            retention_days: self.retention_days,
            upload_max_file_bytes: self.upload_limits.max_file_bytes,
            upload_bytes_per_account: self
                .upload_limits
                .bytes_per_account
                .unwrap_or(contact_contract::limits::NO_BYTE_LIMIT),
            upload_files_per_account: self.upload_limits.files_per_account.unwrap_or(0),
            running_per_account: self.running_per_account,
            queued_per_account: self.queued_per_account,
            phone_region: "PL".to_string(),
            accounts: self.accounts,
            migrations: contact_writer::MigrationsAtStart::Apply,
            command: None,
        };
        let application = contact_writer::Application::build(settings, shutdown.clone()).await?;
        self.note_http("writer", application.http_addr());
        self.writers.push(application.stats());
        self.services
            .push((shutdown, tokio::spawn(application.run_until_stopped())));
        Ok(())
    }

    pub async fn start_mapper(&mut self) -> anyhow::Result<()> {
        let shutdown = Shutdown::new();
        let settings = contact_mapper::Settings {
            service: self.service_settings("mapper"),
            concurrency: 4,
        };
        let application = contact_mapper::Application::build(settings, shutdown.clone()).await?;
        self.note_http("mapper", application.http_addr());
        self.services
            .push((shutdown, tokio::spawn(application.run_until_stopped())));
        Ok(())
    }

    pub async fn start_ingest(&mut self) -> anyhow::Result<()> {
        let shutdown = Shutdown::new();
        let settings = contact_ingest::Settings {
            service: self.service_settings("ingest"),
            phone_region: "PL".to_string(),
            concurrency: 2,
        };
        let application = contact_ingest::Application::build(settings, shutdown.clone()).await?;
        self.note_http("ingest", application.http_addr());
        self.services
            .push((shutdown, tokio::spawn(application.run_until_stopped())));
        Ok(())
    }

    /// A client for another account of the same deployment.
    pub async fn client_for(&self, account: &AccountId) -> Client {
        Client::connect(
            &self.deployment.for_tenant(account),
            self.namespace.clone(),
            account.clone(),
        )
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

    /// Publishes `body` as the start request of `import_id` in the test's account, as a
    /// careless client would, bypassing the client library's checks; waits until it is stored.
    pub async fn publish_raw_start(&self, import_id: &ImportId, body: String) {
        let subject = self.namespace.import_subject(
            contact_contract::ImportSubjectKind::Start,
            &self.account,
            import_id,
        );
        async_nats::jetstream::new(self.client.nats().clone())
            .publish(subject, body.into())
            .await
            .expect("sent")
            .await
            .expect("stored");
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

    /// JetStream as service `service` (`ingest`, `mapper`, `writer`) sees it, with its own
    /// credentials: in the secure deployment, the services' account, which holds every stream.
    pub async fn jetstream_as(&self, service: &str) -> async_nats::jetstream::Context {
        let settings = self.deployment.for_service(service);
        let nats = settings
            .connect_options("test-as-service", None)
            .await
            .expect("the service's options")
            .connect(settings.servers())
            .await
            .expect("connecting as the service");
        async_nats::jetstream::new(nats)
    }

    /// Waits until the replicas of `role` have settled (acked or terminated) every message
    /// waiting for them. Asked with the service's own credentials: a tenant may not read
    /// the services' consumers.
    pub async fn wait_until_settled(&self, role: ConsumerRole) {
        let jetstream = self.jetstream_as(role.durable_name()).await;
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
        if let NatsDeployment::Open { url } = &self.deployment {
            if let Ok(client) = async_nats::connect(url.as_str()).await {
                let jetstream = async_nats::jetstream::new(client);
                let _ = contact_contract::remove_namespace(&jetstream, &self.namespace).await;
            }
        }
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// Services as child processes (to kill with SIGKILL, as a node failure would), and the
/// events stream read back as stored.
impl TestSystem {
    /// Starts `service` (a binary of this workspace, e.g. `contact-mapper`) as a child process
    /// in the system's namespace, on its NATS and database, with `env` set over the defaults
    /// (`RUST_LOG=warn`); stderr is appended to `log` when given, inherited otherwise. Killed
    /// when dropped.
    pub fn spawn_service(
        &self,
        service: &str,
        env: &[(&str, &str)],
        log: Option<&Path>,
    ) -> tokio::process::Child {
        let role = service.trim_start_matches("contact-");
        let mut command = tokio::process::Command::new(workspace_binary(service));
        command
            .env("NATS_URL", self.deployment.url())
            .env("DATABASE_URL", &self.database_url)
            .env("CONTACT_IMPORT_NAMESPACE", &self.namespace_name)
            .env("JETSTREAM_REPLICAS", self.jetstream_replicas.to_string())
            .env(
                "JETSTREAM_STREAM_MAX_BYTES",
                self.namespace
                    .stream_max_bytes()
                    .unwrap_or(contact_contract::limits::NO_BYTE_LIMIT)
                    .to_string(),
            )
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Some(creds) = self.deployment.for_service(role).creds {
            command.env("NATS_CREDS", creds);
        }
        for (name, value) in env {
            command.env(name, value);
        }
        if let Some(log) = log {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap_or_else(|error| panic!("opening {}: {error}", log.display()));
            command.stderr(file);
        }
        command
            .spawn()
            .unwrap_or_else(|error| panic!("starting {service}: {error}"))
    }

    /// Every event of the import in the order the events stream stored them (not necessarily
    /// their `sequence` order: several writers publish), read one by one with direct gets,
    /// which any replica of the stream answers.
    pub async fn stored_events(
        &self,
        import_id: &ImportId,
    ) -> anyhow::Result<Vec<contact_contract::ImportEvent>> {
        self.stored_events_of(&self.account, import_id).await
    }

    /// [`Self::stored_events`] of an import of another account of the deployment.
    pub async fn stored_events_of(
        &self,
        account: &AccountId,
        import_id: &ImportId,
    ) -> anyhow::Result<Vec<contact_contract::ImportEvent>> {
        use async_nats::jetstream::stream::DirectGetErrorKind;
        let jetstream = async_nats::jetstream::new(self.client.nats().clone());
        let subject = self
            .namespace
            .import_subject(ImportSubjectKind::Events, account, import_id);
        let stream = jetstream
            .get_stream_no_info(self.namespace.events_stream())
            .await
            .context("opening the events stream")?;
        let reading = async {
            let mut events = Vec::new();
            let mut next = 1;
            loop {
                match stream
                    .direct_get_next_for_subject(subject.clone(), Some(next))
                    .await
                {
                    Ok(message) => {
                        next = message.sequence + 1;
                        let event =
                            serde_json::from_slice(&message.payload).with_context(|| {
                                format!("event at stream sequence {}", message.sequence)
                            })?;
                        events.push(event);
                    }
                    Err(error) if error.kind() == DirectGetErrorKind::NotFound => {
                        return Ok(events)
                    }
                    // No replica answered yet: ask again.
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), reading)
            .await
            .context("reading the import's events took over 30 s")?
    }
}
