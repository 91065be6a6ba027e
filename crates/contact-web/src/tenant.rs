//! Which account a request acts as, and the one way a handler gets that account's connection.
//!
//! - In the open local deployment (the demo) the page serves one account to everyone, over
//!   one connection made with that account's inbox prefix.
//! - In a secure deployment (`WEB_DEPLOYMENT_DIR`) each person logs in as a web user of the
//!   folder's `web-users` file, and her session is turned into a connection made with her
//!   account's own tenant credentials (`tenants/ACCOUNT.creds`), so that NATS itself refuses
//!   whatever lies outside that account. Connections are kept one per account and made anew
//!   when the account's credentials change (a rotation).
//!
//! A handler never builds a client itself: it takes a `routes::login::Tenant`, which asks
//! [`Tenancy`] here.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use contact_contract::web_users::{self, WebUsers};
use contact_contract::{AccountId, Namespace, NatsSettings};
use contact_import_client::{Client, ClientError};

use crate::session::Session;

pub enum Tenancy {
    /// No login: every request acts as the one account.
    Open { client: Client },
    /// Login: every request acts as its session's account.
    Accounts(Accounts),
}

/// Why a request gets no connection.
#[derive(Debug)]
pub enum Refused {
    /// No live session: the person must log in (again).
    LoginNeeded,
    /// The deployment's files cannot be read; the message is for the person at the page.
    Unavailable(String),
    /// NATS did not let the connection be made.
    Client(ClientError),
}

/// The accounts of a secure deployment's folder, and a connection for each one in use.
pub struct Accounts {
    dir: PathBuf,
    /// Where the tenants' credentials are: the folder's `tenants/`, unless mounted apart.
    tenants: PathBuf,
    nats: NatsSettings,
    namespace: Namespace,
    users: Mutex<Option<UsersRead>>,
    connections: tokio::sync::Mutex<HashMap<AccountId, Connection>>,
}

/// The users file as last read, and how it looked then, so that it is read again once it
/// changes (an admin added or removed someone) and not at every request.
struct UsersRead {
    seen: Option<FileSeen>,
    users: Arc<WebUsers>,
}

/// How the users file looked: the admin replaces it whole (a new file renamed over the old),
/// so a new inode tells every write apart, even two within one tick of the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileSeen {
    modified: SystemTime,
    len: u64,
    inode: u64,
}

impl FileSeen {
    fn of(meta: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Self {
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            len: meta.len(),
            inode,
        }
    }
}

struct Connection {
    /// The credentials it was made with: others in the file mean a rotation.
    credentials: String,
    client: Client,
}

impl Accounts {
    pub fn new(
        dir: PathBuf,
        tenants: Option<PathBuf>,
        nats: NatsSettings,
        namespace: Namespace,
    ) -> Self {
        Self {
            tenants: tenants.unwrap_or_else(|| dir.join(web_users::TENANTS_FOLDER)),
            dir,
            nats,
            namespace,
            users: Mutex::new(None),
            connections: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The web users as the file says now; none while it is missing.
    pub fn users(&self) -> Result<Arc<WebUsers>, Refused> {
        let path = self.dir.join(web_users::FILE_NAME);
        let seen = std::fs::metadata(&path)
            .ok()
            .map(|meta| FileSeen::of(&meta));
        let mut read = self.users.lock().expect("the users lock is never poisoned");
        if let Some(read) = read.as_ref().filter(|read| read.seen == seen) {
            return Ok(read.users.clone());
        }
        let users = match std::fs::read_to_string(&path) {
            Ok(text) => WebUsers::parse(&text).map_err(|problem| {
                tracing::error!(path = %path.display(), %problem, "the web users file cannot be read");
                Refused::Unavailable("Logging in is not possible right now.".to_string())
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(path = %path.display(), "no web users file: nobody can log in");
                WebUsers::default()
            }
            Err(error) => {
                tracing::error!(path = %path.display(), %error, "the web users file cannot be read");
                return Err(Refused::Unavailable(
                    "Logging in is not possible right now.".to_string(),
                ));
            }
        };
        let users = Arc::new(users);
        *read = Some(UsersRead {
            seen,
            users: users.clone(),
        });
        Ok(users)
    }

    /// The connection of the session's account, while the session is live and its account a
    /// tenant of the folder.
    pub async fn client(&self, session: &Session) -> Result<Client, Refused> {
        let account = session
            .account_in(&*self.users()?)
            .ok_or(Refused::LoginNeeded)?;
        let path = web_users::tenant_creds_in(&self.tenants, &account);
        let credentials = match std::fs::read_to_string(&path) {
            Ok(credentials) => credentials,
            // A tenant removed since the login: it is served no more, and its connection goes.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                self.connections.lock().await.remove(&account);
                return Err(Refused::LoginNeeded);
            }
            Err(error) => {
                tracing::error!(path = %path.display(), %error, "a tenant's credentials cannot be read");
                return Err(Refused::Unavailable(
                    "This account cannot be reached right now.".to_string(),
                ));
            }
        };
        if let Some(connection) = self.connections.lock().await.get(&account) {
            if connection.credentials == credentials {
                return Ok(connection.client.clone());
            }
        }
        // Connected without holding the lock, so that one account's slow connection holds
        // up no other account's requests; two requests racing here both connect, and the
        // second one's connection is the one kept.
        let settings = NatsSettings {
            creds: Some(path),
            ..self.nats.clone()
        };
        let client = Client::connect(&settings, self.namespace.clone(), account.clone())
            .await
            .map_err(Refused::Client)?;
        self.connections.lock().await.insert(
            account,
            Connection {
                credentials,
                client: client.clone(),
            },
        );
        Ok(client)
    }
}
