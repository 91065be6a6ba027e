//! The secure deployment: a nats-server of the test's own, run from the configuration
//! `contact-import-admin` writes, the services on their own credentials and two tenants. Each
//! tenant imports and follows its own import; neither can read, change or forge anything of
//! the other, nor use the pipeline's internal subjects. And TLS: NATS with mutual TLS, and
//! PostgreSQL verified over TLS.

use std::time::Duration;

use async_nats::jetstream;
use contact_contract::api::CallError;
use contact_contract::micro;
use contact_contract::NatsSettings;
use contact_contract::{
    AccountId, ImportId, ImportOptions, ImportRequest, ImportState, ImportSubjectKind,
    SCHEMA_VERSION,
};
use contact_import_client::{Client, ClientError};
use contact_tests::{unique, SecureNats, TestSystem};
use contact_writer::AccountAdmission;
use tokio::sync::mpsc;

/// A raw connection with a tenant's credentials that reports every refusal of the server.
pub(crate) struct Probe {
    pub(crate) client: async_nats::Client,
    refusals: mpsc::UnboundedReceiver<String>,
}

impl Probe {
    pub(crate) async fn connect(secure: &SecureNats, account: &AccountId) -> Self {
        let (refused, refusals) = mpsc::unbounded_channel();
        let client = secure
            .deployment
            .for_tenant(account)
            .connect_options(
                "probe",
                Some(&contact_contract::Namespace::inbox_prefix(account)),
            )
            .await
            .expect("options")
            .event_callback(move |event| {
                let refused = refused.clone();
                async move {
                    if let async_nats::Event::ServerError(error) = event {
                        let _ = refused.send(error.to_string());
                    }
                }
            })
            .connect(secure.deployment.url())
            .await
            .expect("a tenant connects with its credentials");
        Self { client, refusals }
    }

    /// Waits for the server to refuse something about `subject`.
    pub(crate) async fn refused(&mut self, subject: &str) -> String {
        let quoted = format!("\"{subject}\"");
        let refusal = async {
            while let Some(text) = self.refusals.recv().await {
                if text.contains(&quoted) && text.to_lowercase().contains("violation") {
                    return text;
                }
            }
            panic!("the connection closed")
        };
        tokio::time::timeout(Duration::from_secs(10), refusal)
            .await
            .unwrap_or_else(|_| panic!("the server did not refuse {subject}"))
    }

    async fn publish_is_refused(&mut self, subject: String) {
        self.client
            .publish(subject.clone(), "{}".into())
            .await
            .expect("handed to the connection");
        self.client.flush().await.expect("flushed");
        self.refused(&subject).await;
    }

    async fn subscribe_is_refused(&mut self, subject: String) {
        let _subscription = self
            .client
            .subscribe(subject.clone())
            .await
            .expect("handed to the connection");
        self.client.flush().await.expect("flushed");
        self.refused(&subject).await;
    }
}

fn contacts_file(prefix: &str) -> String {
    (0..3).fold("email,first_name\n".to_string(), |file, index| {
        file + &format!("{prefix}{index}@example.com,Name {index}\n")
    })
}

pub(crate) async fn emails(client: &Client) -> Vec<String> {
    let mut emails = Vec::new();
    client
        .export_contacts(|contact| emails.push(contact.attributes["email"].clone()))
        .await
        .expect("exporting its own contacts");
    emails
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tenants_import_their_own_files_and_can_touch_nothing_of_each_other() {
    let alpha = AccountId::new(unique("alpha-")).expect("valid");
    let beta = AccountId::new(unique("beta-")).expect("valid");
    let secure = SecureNats::start(&[alpha.clone(), beta.clone()]).await;
    let system = TestSystem::start_secure(&secure, alpha.clone(), AccountAdmission::Open).await;
    let beta_client = system.client_for(&beta).await;
    let namespace = &secure.namespace;

    // Each tenant imports and follows its own import, under its permissions.
    let alpha_summary = system
        .import(contacts_file("a"), ImportOptions::default())
        .await;
    assert_eq!(
        (alpha_summary.status, alpha_summary.created),
        (ImportState::Completed, 3)
    );
    let beta_file = system.file("beta.csv", contacts_file("b"));
    let beta_import = beta_client
        .start_import(&beta_file, ImportOptions::default())
        .await
        .expect("beta starts its import");
    let beta_summary = system.wait_for_summary(&beta_client, &beta_import).await;
    assert_eq!(beta_summary.created, 3);
    assert_eq!(
        emails(&system.client).await,
        ["a0@example.com", "a1@example.com", "a2@example.com"]
    );
    assert_eq!(
        emails(&beta_client).await,
        ["b0@example.com", "b1@example.com", "b2@example.com"]
    );

    let mut probe = Probe::connect(&secure, &alpha).await;
    // Beta's API: contacts, status, anything.
    for operation in [
        "contacts.export",
        "import.status",
        "attributes.add",
        "import.upload",
    ] {
        probe
            .publish_is_refused(format!("{}.v1.{beta}.api.{operation}", namespace.name()))
            .await;
    }
    // Beta's subjects and the pipeline's internal ones, its own account's included.
    probe
        .publish_is_refused(namespace.import_subject(ImportSubjectKind::Start, &beta, &beta_import))
        .await;
    for kind in [
        ImportSubjectKind::Chunks,
        ImportSubjectKind::Records,
        ImportSubjectKind::Control,
        ImportSubjectKind::Events,
        ImportSubjectKind::Lanes,
    ] {
        let own = ImportId::new("forged").expect("valid");
        probe
            .publish_is_refused(namespace.import_subject(kind, &alpha, &own))
            .await;
    }
    // The services' own call, and JetStream administration.
    probe
        .publish_is_refused(format!(
            "{}.v1.{alpha}.api.import.prepare",
            namespace.name()
        ))
        .await;
    probe
        .publish_is_refused(format!(
            "$JS.API.STREAM.DELETE.{}",
            namespace.events_stream()
        ))
        .await;
    probe
        .publish_is_refused(format!(
            "$JS.API.STREAM.INFO.{}",
            namespace.uploads_stream(&beta)
        ))
        .await;
    for lent_api in [
        contact_contract::Namespace::tenant_jetstream_api(&alpha),
        contact_contract::Namespace::tenant_jetstream_api(&beta),
    ] {
        probe
            .publish_is_refused(format!(
                "{lent_api}.STREAM.INFO.{}",
                namespace.uploads_stream(&beta)
            ))
            .await;
    }
    probe
        .publish_is_refused(format!(
            "$JS.API.CONSUMER.CREATE.{}.spy.{}",
            namespace.events_stream(),
            namespace.import_subject(ImportSubjectKind::Events, &beta, &beta_import)
        ))
        .await;
    // Listening beyond its own events and inbox.
    probe.subscribe_is_refused(">".to_string()).await;
    probe
        .subscribe_is_refused(namespace.import_subject_wildcard(ImportSubjectKind::Events, &beta))
        .await;
    probe
        .subscribe_is_refused(format!(
            "{}.>",
            contact_contract::Namespace::inbox_prefix(&beta)
        ))
        .await;
    probe.subscribe_is_refused("_INBOX.>".to_string()).await;

    // Beta's uploads cannot be read, even by name.
    let reading = jetstream::new(probe.client.clone())
        .get_object_store(namespace.uploads_bucket(&beta))
        .await;
    assert!(reading.is_err(), "alpha opened beta's uploads bucket");
    let lent_api = contact_contract::Namespace::tenant_jetstream_api(&alpha);
    let reading = jetstream::with_prefix(probe.client.clone(), &lent_api)
        .get_object_store(namespace.uploads_bucket(&beta))
        .await;
    assert!(
        reading.is_err(),
        "alpha opened beta's uploads bucket through her own account's JetStream"
    );

    // The client says plainly that the server refused, at once.
    let cross = Client::connect(&system.nats, namespace.clone(), beta.clone())
        .await
        .expect("alpha's credentials connect");
    match cross.status(&beta_import).await {
        Err(ClientError::Api(CallError::Refused { subject, .. })) => {
            assert!(subject.contains(beta.as_str()), "{subject}")
        }
        other => panic!("alpha read beta's status: {other:?}"),
    }

    // No confused deputy: a start request of alpha's that names beta's import and upload
    // reads alpha's own bucket (where there is no such file), whatever the body says.
    for object_name in [
        Some(beta_import.to_string()),
        Some(format!("{beta}/{beta_import}")),
        None,
    ] {
        let stolen = ImportRequest {
            schema: SCHEMA_VERSION,
            account: alpha.clone(),
            import_id: ImportId::new(unique("steal-")).expect("valid"),
            object_name,
            file_name: None,
            file_sha256: None,
            options: ImportOptions::default(),
        };
        system
            .client
            .publish_request(&stolen)
            .await
            .expect("alpha may start its own imports");
        let summary = system
            .wait_for_summary(&system.client, &stolen.import_id)
            .await;
        assert_eq!(summary.status, ImportState::Failed, "{summary:?}");
        assert_eq!(summary.rows_total, 0);
    }
    let same_id = ImportRequest {
        schema: SCHEMA_VERSION,
        account: alpha.clone(),
        import_id: beta_import.clone(),
        object_name: Some(beta_import.to_string()),
        file_name: None,
        file_sha256: None,
        options: ImportOptions::default(),
    };
    system
        .client
        .publish_request(&same_id)
        .await
        .expect("published");
    let summary = system.wait_for_summary(&system.client, &beta_import).await;
    assert_eq!(summary.status, ImportState::Failed, "{summary:?}");
    assert!(
        summary
            .error
            .unwrap_or_default()
            .contains("no file was uploaded"),
        "the failure names the missing upload"
    );
    assert_eq!(
        emails(&system.client).await.len(),
        3,
        "alpha got none of beta's contacts"
    );
    assert_eq!(
        emails(&beta_client).await,
        ["b0@example.com", "b1@example.com", "b2@example.com"]
    );
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_registered_accounts_only_the_operator_brings_an_account_into_being() {
    let tenant = AccountId::new(unique("gamma-")).expect("valid");
    let secure = SecureNats::start(std::slice::from_ref(&tenant)).await;
    let system =
        TestSystem::start_secure(&secure, tenant.clone(), AccountAdmission::Registered).await;
    let refused = system.client.attributes().await;
    match refused {
        Err(ClientError::Api(CallError::Api(error))) => {
            assert!(
                error.message.contains("is not registered"),
                "{}",
                error.message
            )
        }
        other => panic!("an unregistered account was served: {other:?}"),
    }
    contact_admin::register_tenant(
        &contact_admin::Deployment::at(&secure.dir),
        secure.deployment.url(),
        &tenant,
    )
    .await
    .expect("the operator registers the tenant");
    let attributes = system.client.attributes().await.expect("now served");
    assert!(attributes.iter().any(|attribute| attribute.key == "email"));
    let summary = system
        .import(contacts_file("g"), ImportOptions::default())
        .await;
    assert_eq!(summary.created, 3);
    // A tenant cannot register itself (or anyone), nor look at the deployment's services.
    let mut probe = Probe::connect(&secure, &tenant).await;
    probe
        .publish_is_refused(
            secure
                .namespace
                .operator_subject(contact_contract::OperatorOperation::RegisterAccount),
        )
        .await;
    probe
        .publish_is_refused(format!("$SRV.PING.{}", micro::SERVICE_NAME))
        .await;
    // The operator can: the writer answers discovery within its permissions.
    let operator = NatsSettings {
        creds: Some(contact_admin::Deployment::at(&secure.dir).service_creds("operator")),
        ..NatsSettings::plain(secure.deployment.url())
    };
    let operator = operator
        .connect_options(
            "operator",
            Some(contact_contract::permissions::OPERATOR_INBOX_PREFIX),
        )
        .await
        .expect("options")
        .connect(secure.deployment.url())
        .await
        .expect("the operator connects");
    let pong = operator
        .request(format!("$SRV.PING.{}", micro::SERVICE_NAME), "".into())
        .await
        .expect("a writer answers the operator's ping");
    let pong: serde_json::Value = serde_json::from_slice(&pong.payload).expect("JSON");
    assert_eq!(
        pong["metadata"][micro::NAMESPACE_METADATA],
        secure.namespace.name()
    );
    system.stop().await;
}

/// The writer's connection path speaks TLS to PostgreSQL: `sslmode=require` (encrypted, as
/// most managed services ask) and `verify-full` (the server's certificate checked against a
/// CA and the host name). The local server has SSL on with Debian's snakeoil certificate,
/// issued for `localhost`.
#[tokio::test]
async fn the_writer_connects_to_postgresql_over_tls_and_verifies_the_server() {
    const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
    let database = contact_tests::database_url();
    let (server, name) = database.rsplit_once('/').expect("a database URL");
    let localhost = server.replace("127.0.0.1", "localhost");
    let shutdown = contact_runtime::Shutdown::new();
    for url in [
        format!("{server}/{name}?sslmode=require"),
        format!("{localhost}/{name}?sslmode=verify-full&sslrootcert={SNAKEOIL}"),
    ] {
        let pool = contact_runtime::connect::postgres(&url, 1, &shutdown)
            .await
            .unwrap_or_else(|error| panic!("{url}: {error:#}"));
        let encrypted: bool =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(&pool)
                .await
                .expect("asking the server");
        assert!(encrypted, "{url} is not encrypted");
        pool.close().await;
    }
    // A certificate for another host is refused.
    let wrong_host = format!(
        "{}/{name}?sslmode=verify-full&sslrootcert={SNAKEOIL}",
        server.replace("localhost", "127.0.0.1")
    );
    let refused = sqlx::PgPool::connect(&wrong_host).await;
    assert!(
        refused.is_err(),
        "the certificate of localhost was taken for 127.0.0.1"
    );
}

/// Runs openssl with `arguments` in `dir`, failing the test with its output if it fails.
fn openssl(dir: &std::path::Path, arguments: &[&str]) {
    let output = std::process::Command::new("openssl")
        .args(arguments)
        .current_dir(dir)
        .output()
        .expect("running openssl");
    assert!(
        output.status.success(),
        "openssl {arguments:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A certificate authority of the test's own, a server certificate for 127.0.0.1 and a
/// client certificate, all signed by it (RSA, a day long).
fn certificates(dir: &std::path::Path) {
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let authority = [
        &["req", "-x509"][..],
        &key,
        &["-keyout", "ca.key", "-out", "ca.pem", "-days", "1"],
        &["-subj", "/CN=contact-import test CA"],
    ];
    openssl(dir, &authority.concat());
    // The extensions make both X.509 v3, the only version TLS libraries accept.
    for (name, extension) in [
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ("client", "extendedKeyUsage=clientAuth"),
    ] {
        let extension_file = format!("{name}.ext");
        std::fs::write(dir.join(&extension_file), format!("{extension}\n")).expect("extensions");
        let (key_file, request) = (format!("{name}.key"), format!("{name}.csr"));
        let subject = format!("/CN=contact-import test {name}");
        let requesting = [
            &["req"][..],
            &key,
            &["-keyout", &key_file, "-out", &request, "-subj", &subject],
        ];
        openssl(dir, &requesting.concat());
        let certificate = format!("{name}.pem");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &request,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &certificate,
                "-days",
                "1",
                "-extfile",
                &extension_file,
            ],
        );
    }
}

#[tokio::test]
async fn services_and_clients_speak_tls_to_nats_verifying_the_server_and_showing_their_own() {
    let dir = std::env::temp_dir().join(format!("contact-import-{}", unique("tls-")));
    std::fs::create_dir_all(&dir).expect("a directory");
    certificates(&dir);
    let port = contact_tests::nats_server::free_port();
    let path = |name: &str| dir.join(name).display().to_string();
    std::fs::write(
        dir.join("nats-server.conf"),
        format!(
            "jetstream {{ store_dir: \"{store}\" }}\n\
             tls {{\n  cert_file: \"{cert}\"\n  key_file: \"{key}\"\n  ca_file: \"{ca}\"\n  \
             verify: true\n  timeout: 5\n}}\n",
            store = path("store"),
            cert = path("server.pem"),
            key = path("server.key"),
            ca = path("ca.pem"),
        ),
    )
    .expect("the server's configuration");
    let _server = contact_tests::NatsServer::start(
        port,
        [
            "-c",
            &path("nats-server.conf"),
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ]
        .map(std::ffi::OsString::from)
        .into(),
    )
    .await;
    let mutual = NatsSettings {
        tls_ca: Some(dir.join("ca.pem")),
        tls_cert: Some(dir.join("client.pem")),
        tls_key: Some(dir.join("client.key")),
        ..NatsSettings::plain(format!("tls://127.0.0.1:{port}"))
    };

    // Without the CA the server is not trusted; without a client certificate it refuses us.
    let connect_once = |settings: NatsSettings| async move {
        let options = settings.connect_options("tls-test", None).await?;
        anyhow::Ok(options.connect(settings.servers()).await?)
    };
    let untrusted = NatsSettings {
        tls_ca: None,
        ..mutual.clone()
    };
    assert!(
        connect_once(untrusted).await.is_err(),
        "a server nobody vouched for"
    );
    let anonymous = NatsSettings {
        tls_cert: None,
        tls_key: None,
        ..mutual.clone()
    };
    let refused = match connect_once(anonymous).await {
        Err(error) => Some(error),
        // The server may drop us right after the handshake instead.
        Ok(client) => client.flush().await.err().map(anyhow::Error::from),
    };
    assert!(refused.is_some(), "a client without a certificate");

    // With both, the whole pipeline runs over TLS.
    let system = TestSystem::start_on_nats(mutual, 1).await;
    let file = system.file(
        "tls.csv",
        "email,first_name\nt1@example.com,Ann\nt2@example.com,Bob\n",
    );
    let summary = system
        .import_file(&system.client, &file, ImportOptions::default())
        .await;
    assert_eq!(summary.status, ImportState::Completed, "{summary:?}");
    assert_eq!(summary.created, 2);
    assert_eq!(
        emails(&system.client).await,
        ["t1@example.com", "t2@example.com"]
    );
    system.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The README's way to take a new tenant: `tenant add`, then a restart of NATS, which was
/// started from the configuration alone (a reload, SIGHUP, lets her user in but does not join
/// her new account's imports to the services' account in nats-server 2.9). The newcomer is
/// refused before and imports after, while the services reconnect and the tenant already
/// there goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_added_to_a_running_deployment_gets_in_once_nats_restarts() {
    let first = AccountId::new(unique("first-")).expect("valid");
    let mut secure = SecureNats::start(std::slice::from_ref(&first)).await;
    let system = TestSystem::start_secure(&secure, first.clone(), AccountAdmission::Open).await;
    let newcomer = AccountId::new(unique("newcomer-")).expect("valid");
    contact_admin::Deployment::at(&secure.dir)
        .add_tenant(&newcomer)
        .expect("tenant add");
    let settings = secure.deployment.for_tenant(&newcomer);
    let connect = || async {
        settings
            .connect_options("newcomer", None)
            .await
            .expect("options")
            .connect(settings.servers())
            .await
    };
    assert!(
        connect().await.is_err(),
        "the server let in a tenant it was not told of"
    );

    secure.server.restart().await;
    connect()
        .await
        .expect("the newcomer gets in once the server has restarted");
    let newcomer_client = system.client_for(&newcomer).await;
    // The services reconnect by themselves; a request that crosses before the writer has
    // subscribed again finds no one, so she asks until it answers, as a client would retry.
    let writer_back = async {
        loop {
            let asked =
                tokio::time::timeout(Duration::from_secs(2), newcomer_client.imports(None, 1));
            if matches!(asked.await, Ok(Ok(_))) {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), writer_back)
        .await
        .expect("the writer answers her once it has reconnected");
    let path = system.file("newcomer.csv", contacts_file("n"));
    let summary = system
        .import_file(&newcomer_client, &path, ImportOptions::default())
        .await;
    assert_eq!(
        (summary.status, summary.created),
        (ImportState::Completed, 3)
    );
    let summary = system
        .import(contacts_file("f"), ImportOptions::default())
        .await;
    assert_eq!(summary.created, 3, "the first tenant goes on");
    system.stop().await;
}

/// `tenant rotate` and `tenant remove` on a running server, then SIGHUP: the old credentials
/// and the removed tenant are refused, the connections they had open are closed, the new
/// credentials import, and the tenant beside them goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotated_and_removed_tenants_are_refused_after_a_reload() {
    let (rotated, removed) = (
        AccountId::new(unique("rotated-")).expect("valid"),
        AccountId::new(unique("removed-")).expect("valid"),
    );
    let secure = SecureNats::start(&[rotated.clone(), removed.clone()]).await;
    let system = TestSystem::start_secure(&secure, rotated.clone(), AccountAdmission::Open).await;
    let admin = contact_admin::Deployment::at(&secure.dir);
    let old_creds = secure.dir.join("old-rotated.creds");
    std::fs::copy(admin.tenant_creds(&rotated), &old_creds).expect("keeping the old creds");
    let with_old_creds = NatsSettings {
        creds: Some(old_creds),
        ..NatsSettings::plain(secure.deployment.url())
    };
    let connect = |settings: NatsSettings| async move {
        settings
            .connect_options("probe", None)
            .await
            .expect("options")
            .connect(settings.servers())
            .await
    };
    let open_with_old = connect(with_old_creds.clone())
        .await
        .expect("the old creds work before");
    let removed_creds = secure.dir.join("removed-copy.creds");
    std::fs::copy(admin.tenant_creds(&removed), &removed_creds).expect("keeping its creds");
    let as_removed = NatsSettings {
        creds: Some(removed_creds),
        ..NatsSettings::plain(secure.deployment.url())
    };
    let open_as_removed = connect(as_removed.clone())
        .await
        .expect("the removed tenant is in before");

    admin.rotate_tenant(&rotated).expect("tenant rotate");
    admin.remove_tenant(&removed).expect("tenant remove");
    assert!(!admin.tenant_creds(&removed).exists());
    secure.server.reload();
    // The server applies a reload in the background.
    let refused = async {
        while connect(with_old_creds.clone()).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), refused)
        .await
        .expect("the old credentials are refused after the reload");
    let closed = async {
        use async_nats::connection::State;
        while open_with_old.connection_state() == State::Connected
            || open_as_removed.connection_state() == State::Connected
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), closed)
        .await
        .expect("the connections of the old credentials are closed");
    assert!(
        connect(as_removed).await.is_err(),
        "a removed tenant's credentials are refused"
    );

    let new_client = system.client_for(&rotated).await;
    let path = system.file("rotated.csv", contacts_file("r"));
    let summary = system
        .import_file(&new_client, &path, ImportOptions::default())
        .await;
    assert_eq!(
        (summary.status, summary.created),
        (ImportState::Completed, 3),
        "the new credentials import"
    );
    system.stop().await;
}
