//! contact-web: the import page. A marketer downloads the sample file, chooses the contacts'
//! type, category, tags and what to do with duplicates, loads her file, maps its columns in
//! "Fields mapping", starts the import, watches it go, and finds its summary, its failed rows
//! and her contacts.
//!
//! A client of the contract like the CLI: every step goes through `contact-import-client`,
//! as the account the request acts as (see [`tenant`]): the one account of the open local
//! deployment, or in a secure deployment the account of the web user who logged in, over a
//! connection with that tenant's own credentials. It holds no database and names no
//! subject. It keeps no state either (a draft travels signed with the page, see [`draft`],
//! and a session in a signed cookie, see [`session`]), so replicas share nothing but their
//! signing key.

mod assets;
pub mod draft;
pub mod forms;
mod routes;
pub mod session;
mod signing;
pub mod tenant;
mod throttle;
mod views;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use contact_contract::{AccountId, Namespace, NatsSettings};
use contact_import_client::Client;
use contact_runtime::http::{self, HttpSettings, NatsProbe, Probe};
use contact_runtime::Shutdown;
use tokio::net::TcpListener;

pub use routes::router;
pub use tenant::Tenancy;

use crate::draft::SigningKey;
use crate::tenant::Accounts;
use crate::throttle::LoginThrottle;

/// How a web replica is configured (flags or environment).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "contact-web",
    version,
    about = "The import page: contact import in a browser"
)]
pub struct Settings {
    #[command(flatten)]
    pub nats: NatsSettings,
    #[command(flatten)]
    pub http: HttpSettings,
    /// Prefix of every subject and stream (one per deployment).
    #[arg(long, env = "CONTACT_IMPORT_NAMESPACE", default_value = "ci")]
    pub namespace: String,
    /// Where the page is served.
    #[arg(long, env = "WEB_ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The account the page serves to everyone, without login: for the open local deployment.
    #[arg(long, env = "WEB_ACCOUNT", default_value = "default")]
    pub account: String,
    /// The secure deployment's folder (`contact-import-admin init`): when given, people log
    /// in as the web users of its `web-users` file, each acting as her own account with that
    /// tenant's credentials in its `tenants/`, and WEB_ACCOUNT is not used.
    #[arg(long, env = "WEB_DEPLOYMENT_DIR")]
    pub deployment_dir: Option<PathBuf>,
    /// Where the tenants' credentials are, when not in the deployment folder's `tenants/`
    /// (mounted apart, as in Kubernetes).
    #[arg(long, env = "WEB_TENANTS_DIR")]
    pub tenants_dir: Option<PathBuf>,
    /// The key drafts are signed with, at least 32 characters, the same on every replica;
    /// a random one when unset or empty (then only one replica, and drafts end with it). Empty
    /// counts as unset so that compose can pass an optional key through.
    #[arg(long, env = "WEB_SIGNING_KEY", hide_env_values = true)]
    pub signing_key: Option<String>,
    /// The largest file the page accepts, in bytes.
    #[arg(long, env = "WEB_MAX_UPLOAD_BYTES", default_value_t = routes::DEFAULT_MAX_UPLOAD_BYTES)]
    pub max_upload_bytes: u64,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub tenancy: Arc<Tenancy>,
    pub signing_key: SigningKey,
    pub max_upload_bytes: u64,
    pub login_throttle: Arc<LoginThrottle>,
}

/// When a replica is ready: with its account connected in the open deployment; at once in a
/// secure one, whose connections are made per account as people log in (a page that cannot
/// reach NATS says so itself).
enum PageProbe {
    OneAccount(Box<NatsProbe>),
    Login,
}

impl Probe for PageProbe {
    async fn ready(&self) -> Result<(), String> {
        match self {
            Self::OneAccount(probe) => probe.ready().await,
            Self::Login => Ok(()),
        }
    }

    async fn refresh(&self) {
        if let Self::OneAccount(probe) = self {
            probe.refresh().await;
        }
    }
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
    shutdown: Shutdown,
}

impl Application {
    /// Connects to NATS as the account the page serves and binds the page's address.
    pub async fn build(settings: Settings, shutdown: Shutdown) -> anyhow::Result<Self> {
        let signing_key = match settings
            .signing_key
            .as_deref()
            .filter(|key| !key.is_empty())
        {
            Some(key) => SigningKey::new(key.as_bytes().to_vec()).map_err(anyhow::Error::msg)?,
            None => {
                tracing::warn!(
                    "WEB_SIGNING_KEY is not set: drafts are signed with a random key, so run one replica only"
                );
                SigningKey::random()
            }
        };
        let probe = Arc::new(std::sync::OnceLock::new());
        http::serve(&settings.http, probe.clone(), shutdown.clone()).await?;
        let namespace = Namespace::new(&settings.namespace)?;
        let tenancy = match settings.deployment_dir {
            Some(dir) => {
                let accounts =
                    Accounts::new(dir, settings.tenants_dir, settings.nats.clone(), namespace);
                // Read once now, so that a missing or broken file is in the log at start.
                let users = accounts.users().map_err(|_| {
                    anyhow::anyhow!("the web users file of the deployment cannot be read")
                })?;
                tracing::info!(users = users.iter().count(), "web users log in");
                let _ = probe.set(PageProbe::Login);
                Tenancy::Accounts(accounts)
            }
            None => {
                let account = AccountId::new(&settings.account)?;
                let client = connect(&settings.nats, namespace, account, &shutdown).await?;
                let _ = probe.set(PageProbe::OneAccount(Box::new(NatsProbe::new(
                    client.nats().clone(),
                    None,
                ))));
                Tenancy::Open { client }
            }
        };
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        Ok(Self {
            listener,
            state: AppState {
                tenancy: Arc::new(tenancy),
                signing_key,
                max_upload_bytes: settings.max_upload_bytes,
                login_throttle: Arc::new(LoginThrottle::default()),
            },
            shutdown,
        })
    }

    /// The address the page is served on (useful with port 0).
    pub fn address(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        tracing::info!(address = %self.address()?, "serving the import page");
        let shutdown = self.shutdown.clone();
        // With the client's address, which the login's attempts are counted by.
        let app = router(self.state).into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, app)
            .with_graceful_shutdown(async move { shutdown.triggered().await })
            .await
            .context("serving the import page")
    }
}

/// Connects as the account, waiting while NATS is down (a page that starts before NATS
/// comes up serves once it does), until the shutdown.
async fn connect(
    settings: &NatsSettings,
    namespace: Namespace,
    account: AccountId,
    shutdown: &Shutdown,
) -> anyhow::Result<Client> {
    let mut delay = std::time::Duration::from_millis(250);
    loop {
        match Client::connect(settings, namespace.clone(), account.clone()).await {
            Ok(client) => return Ok(client),
            Err(error) => {
                tracing::warn!(%error, "waiting for NATS");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.triggered() => anyhow::bail!("stopped while waiting for NATS"),
                }
                delay = (delay * 2).min(std::time::Duration::from_secs(5));
            }
        }
    }
}
