//! The secure deployment of contact-import's NATS server, kept in one folder:
//!
//! ```text
//! DIR/nats-server.conf      JetStream on, every client authenticated, each with its permissions
//! DIR/namespace             the deployment's namespace (`ci` unless chosen)
//! DIR/ingest.creds          nkey seeds of the services, each with only what it needs,
//! DIR/mapper.creds
//! DIR/writer.creds
//! DIR/operator.creds        the operator's, for registering accounts
//! DIR/tenants/ACCOUNT.creds one per tenant: its own account's contract, nothing else
//! DIR/web-users             who may log in to the import page, as which tenant
//! ```
//!
//! The configuration is written anew from the seeds in the folder each time, so adding a
//! tenant never loses another. The services share one NATS account, each tenant has one of
//! her own; a running server lets a new tenant in when it restarts, and refuses a removed or
//! rotated one from its next reload (SIGHUP) on. The permissions and what crosses between the
//! accounts come from `contact_contract::permissions`, where the subjects are.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use contact_contract::permissions::{
    tenant_nats_account, Lent, Party, Permissions, OPERATOR_INBOX_PREFIX, SERVICES_ACCOUNT,
};
use contact_contract::web_users::{self, UserName, WebUser, WebUsers};
use contact_contract::NatsSettings;
use contact_contract::{AccountId, Namespace, OperatorOperation, RegisterAccountRequest};

pub const CONFIG_FILE: &str = "nats-server.conf";
const NAMESPACE_FILE: &str = "namespace";
/// Where `init` records the JetStream store it was given, for `tenant add` to write again.
const STORE_FILE: &str = "store_dir";
const TENANTS_FOLDER: &str = web_users::TENANTS_FOLDER;
const SERVICES: [(&str, Party); 4] = [
    ("ingest", Party::Ingest),
    ("mapper", Party::Mapper),
    ("writer", Party::Writer),
    ("operator", Party::Operator),
];

/// Where the folder's files are.
pub struct Deployment {
    dir: PathBuf,
}

impl Deployment {
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    /// The credentials of a service (`ingest`, `mapper`, `writer`) or of the operator.
    pub fn service_creds(&self, service: &str) -> PathBuf {
        self.dir.join(format!("{service}.creds"))
    }

    pub fn tenant_creds(&self, account: &AccountId) -> PathBuf {
        web_users::tenant_creds(&self.dir, account)
    }

    pub fn web_users_file(&self) -> PathBuf {
        self.dir.join(web_users::FILE_NAME)
    }

    /// The folder's web users; none when it has no file yet.
    pub fn web_users(&self) -> anyhow::Result<WebUsers> {
        let path = self.web_users_file();
        match std::fs::read_to_string(&path) {
            Ok(text) => WebUsers::parse(&text)
                .map_err(|problem| anyhow::anyhow!("{}: {problem}", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(WebUsers::default()),
            Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Lets `name` log in to the import page as `account` (a tenant of the folder) with
    /// `password`; a user of that name gets the new password and account, and her sessions
    /// end. Replicas of the page read the file anew at their next request.
    pub fn add_web_user(
        &self,
        name: &UserName,
        account: &AccountId,
        password: &str,
    ) -> anyhow::Result<()> {
        self.existing_tenant(account)?;
        if password.chars().count() < web_users::MIN_PASSWORD_CHARS {
            anyhow::bail!(
                "the password has {} characters; a web user's needs at least {}",
                password.chars().count(),
                web_users::MIN_PASSWORD_CHARS
            );
        }
        let mut users = self.web_users()?;
        users.insert(WebUser {
            name: name.clone(),
            account: account.clone(),
            password_hash: web_users::hash_password(password).map_err(anyhow::Error::msg)?,
        });
        write_private(&self.web_users_file(), &users.render())
    }

    /// Stops `name` logging in; her open sessions end at their next request.
    pub fn remove_web_user(&self, name: &UserName) -> anyhow::Result<()> {
        let mut users = self.web_users()?;
        if users.remove(name).is_none() {
            anyhow::bail!("{} has no web user {name}", self.dir.display());
        }
        write_private(&self.web_users_file(), &users.render())
    }

    /// Creates the folder's credentials (keeping any that exist) and writes the configuration.
    /// `listen` is the address the server listens on, `store` its JetStream store (none: the
    /// server's `-sd` gives it, as for a folder made by an earlier version).
    pub fn init(
        &self,
        namespace: &Namespace,
        listen: &str,
        store: Option<&Path>,
    ) -> anyhow::Result<()> {
        std::fs::create_dir_all(self.dir.join(TENANTS_FOLDER))
            .with_context(|| format!("creating {}", self.dir.display()))?;
        write_private(
            &self.dir.join(NAMESPACE_FILE),
            &format!("{}\n", namespace.name()),
        )?;
        write_private(&self.dir.join("listen"), &format!("{listen}\n"))?;
        if let Some(store) = store {
            write_private(
                &self.dir.join(STORE_FILE),
                &format!("{}\n", store.display()),
            )?;
        }
        for (service, _) in SERVICES {
            ensure_seed(&self.service_creds(service), service)?;
        }
        self.write_config()
    }

    /// Gives `account` credentials of its own (kept if it has some) and writes the
    /// configuration with it.
    pub fn add_tenant(&self, account: &AccountId) -> anyhow::Result<PathBuf> {
        let path = self.tenant_creds(account);
        ensure_seed(&path, &format!("tenant {account}"))?;
        self.write_config()?;
        Ok(path)
    }

    /// Takes `account` out of the deployment: its credentials are deleted and the configuration
    /// written without it, so that a running server refuses it from its next reload on (and
    /// closes its connections then). Its contacts, imports and uploads stay where they are.
    pub fn remove_tenant(&self, account: &AccountId) -> anyhow::Result<()> {
        let path = self.existing_tenant(account)?;
        // Its web users first: none of them may log in to an account that is gone.
        let mut users = self.web_users()?;
        if users.remove_account(account) > 0 {
            write_private(&self.web_users_file(), &users.render())?;
        }
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        self.write_config()
    }

    /// Gives `account` new credentials in place of the old ones: from the server's next
    /// reload on, only the new ones get in.
    pub fn rotate_tenant(&self, account: &AccountId) -> anyhow::Result<PathBuf> {
        let path = self.existing_tenant(account)?;
        let who = format!("tenant {account}");
        let (public_key, credentials) = new_seed(&who)?;
        // The configuration first: if it cannot be written, the old key stays the one both
        // the server and the file know. If the credentials then cannot be, the tenant is out
        // until `rotate` runs again; never is a key trusted whose seed is gone.
        self.write_config_with(Some((account, &public_key)))?;
        write_private(&path, &credentials)?;
        Ok(path)
    }

    /// The credentials of a tenant the folder has, or an error naming the ones it has.
    fn existing_tenant(&self, account: &AccountId) -> anyhow::Result<PathBuf> {
        let path = self.tenant_creds(account);
        if !path.exists() {
            let known = self.tenants()?;
            let known: Vec<&str> = known.iter().map(AccountId::as_str).collect();
            anyhow::bail!(
                "{} has no tenant {account} (its tenants: {})",
                self.dir.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            );
        }
        Ok(path)
    }

    pub fn namespace(&self) -> anyhow::Result<Namespace> {
        let path = self.dir.join(NAMESPACE_FILE);
        let name = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} (run `contact-import-admin init {}` first)",
                path.display(),
                self.dir.display()
            )
        })?;
        Ok(Namespace::new(name.trim())?)
    }

    /// Every tenant with credentials in the folder, in name order.
    pub fn tenants(&self) -> anyhow::Result<Vec<AccountId>> {
        let mut tenants = Vec::new();
        for entry in std::fs::read_dir(self.dir.join(TENANTS_FOLDER))? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(account) = name.strip_suffix(".creds") {
                tenants.push(AccountId::new(account)?);
            }
        }
        tenants.sort();
        Ok(tenants)
    }

    /// True when an earlier version made the folder: it has a configuration but no store in
    /// it, so its server takes the store from `-sd`.
    pub fn store_from_flags(&self) -> bool {
        self.config().exists() && !self.dir.join(STORE_FILE).exists()
    }

    fn write_config(&self) -> anyhow::Result<()> {
        self.write_config_with(None)
    }

    /// Writes the configuration, with `replaced`'s tenant let in by the given public key
    /// instead of the one in its credentials.
    fn write_config_with(&self, replaced: Option<(&AccountId, &str)>) -> anyhow::Result<()> {
        let namespace = self.namespace()?;
        let listen = std::fs::read_to_string(self.dir.join("listen"))
            .unwrap_or_else(|_| "0.0.0.0:4222".to_string());
        // A folder made by an earlier version has no store file: its server took -sd.
        let store = std::fs::read_to_string(self.dir.join(STORE_FILE)).ok();
        let mut services = Vec::new();
        for (service, party) in SERVICES {
            let public_key = public_key(&self.service_creds(service))?;
            services.push(User {
                who: service.to_string(),
                public_key,
                permissions: namespace.permissions(&party),
            });
        }
        let mut tenants = Vec::new();
        for account in self.tenants()? {
            let public_key = match replaced {
                Some((tenant, key)) if *tenant == account => key.to_string(),
                _ => public_key(&self.tenant_creds(&account))?,
            };
            tenants.push(TenantAccount {
                user: User {
                    who: format!("tenant {account}"),
                    public_key,
                    permissions: namespace.permissions(&Party::Tenant(account.clone())),
                },
                lent: namespace.lent_to_tenant(&account),
                account,
            });
        }
        let config = render_config(
            listen.trim(),
            store.as_deref().map(str::trim),
            &services,
            &namespace.lendable(),
            &tenants,
        );
        write_private(&self.config(), &config)
    }
}

/// One user of the configuration: who it is (a comment), its key, and its permissions.
struct User {
    who: String,
    public_key: String,
    permissions: Permissions,
}

/// A tenant's account: her user, and what the services' account lends it.
struct TenantAccount {
    account: AccountId,
    user: User,
    lent: Vec<Lent>,
}

/// Registers `account` on the operator's API of a running deployment, with the operator's
/// credentials from the folder.
pub async fn register_tenant(
    deployment: &Deployment,
    nats_url: &str,
    account: &AccountId,
) -> anyhow::Result<()> {
    let namespace = deployment.namespace()?;
    let settings = NatsSettings {
        creds: Some(deployment.service_creds("operator")),
        ..NatsSettings::plain(nats_url)
    };
    let client = settings
        .connect_options("contact-import-admin", Some(OPERATOR_INBOX_PREFIX))
        .await?
        .connect(settings.servers())
        .await
        .with_context(|| format!("connecting to {}", settings.display_url()))?;
    let body = serde_json::to_vec(&RegisterAccountRequest {
        account: account.clone(),
    })?;
    let reply = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        client.request(
            namespace.operator_subject(OperatorOperation::RegisterAccount),
            body.into(),
        ),
    )
    .await
    .context("no contact-writer answered within 30 s")?
    .context("asking contact-writer to register the account")?;
    let text = String::from_utf8_lossy(&reply.payload);
    anyhow::ensure!(
        text.starts_with("{\"ok\""),
        "the account was not registered: {text}"
    );
    Ok(())
}

/// The NATS server configuration: JetStream on in the services' account alone, which holds
/// the services' users and lends each tenant's account exactly its contract; each tenant's
/// account holds her user. No user exists outside an account.
fn render_config(
    listen: &str,
    store: Option<&str>,
    services: &[User],
    lendable: &[Lent],
    tenants: &[TenantAccount],
) -> String {
    let mut config = String::new();
    let jetstream = match store {
        Some(store) => format!("jetstream {{\n  store_dir: {}\n}}", quoted(store)),
        None => "jetstream: enabled".to_string(),
    };
    let _ = writeln!(
        config,
        "# NATS server configuration of a contact-import deployment, written by
# contact-import-admin from the credentials beside it: `init` and `tenant add`, `remove`
# and `rotate` write it anew, so edits here do not last.
# Run it with `nats-server -c nats-server.conf`, without -p or -sd: after `tenant add`,
# restart the running server (nats-server 2.9 joins a new account's imports only at a start);
# after `tenant remove` or `rotate`, reload it with SIGHUP, which it refuses when the store
# came from a flag. The address and store are init's --listen and --store.
# The services share the account {services_account}, the only one with JetStream; each tenant
# has an account of her own, into which {services_account} lends her contract and nothing else.

listen: \"{listen}\"

{jetstream}

accounts {{
  {services_account}: {{
    jetstream: enabled
    users: [",
        services_account = quoted(SERVICES_ACCOUNT),
    );
    for user in services {
        render_user(&mut config, user);
    }
    let _ = writeln!(config, "    ]\n    exports: [");
    for lent in lendable {
        let _ = match lent {
            Lent::Service { subject, .. } => {
                writeln!(config, "      {{ service: {} }}", quoted(subject))
            }
            Lent::Stream { subject } => writeln!(config, "      {{ stream: {} }}", quoted(subject)),
        };
    }
    let _ = writeln!(config, "    ]\n  }}");
    let from = quoted(SERVICES_ACCOUNT);
    for tenant in tenants {
        let _ = writeln!(
            config,
            "  {}: {{\n    users: [",
            quoted(&tenant_nats_account(&tenant.account))
        );
        render_user(&mut config, &tenant.user);
        let _ = writeln!(config, "    ]\n    imports: [");
        for lent in &tenant.lent {
            let _ = match lent {
                Lent::Service { subject, local } => writeln!(
                    config,
                    "      {{ service: {{ account: {from}, subject: {} }}, to: {} }}",
                    quoted(subject),
                    quoted(local)
                ),
                Lent::Stream { subject } => writeln!(
                    config,
                    "      {{ stream: {{ account: {from}, subject: {} }} }}",
                    quoted(subject)
                ),
            };
        }
        let _ = writeln!(config, "    ]\n  }}");
    }
    let _ = writeln!(config, "}}");
    config
}

fn render_user(config: &mut String, user: &User) {
    let list = |subjects: &[String]| {
        subjects
            .iter()
            .map(|subject| quoted(subject))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let permissions = &user.permissions;
    let _ = writeln!(config, "      # {}", user.who);
    let _ = writeln!(config, "      {{");
    let _ = writeln!(config, "        nkey: {}", quoted(&user.public_key));
    let _ = writeln!(config, "        permissions: {{");
    let _ = writeln!(
        config,
        "          publish: {{ allow: [{}], deny: [{}] }}",
        list(&permissions.publish),
        list(&permissions.publish_denied)
    );
    let _ = writeln!(
        config,
        "          subscribe: {{ allow: [{}] }}",
        list(&permissions.subscribe)
    );
    if permissions.allow_responses {
        let _ = writeln!(config, "          allow_responses: true");
    }
    let _ = writeln!(config, "        }}");
    let _ = writeln!(config, "      }}");
}

/// A string in the configuration's syntax; subjects hold `$`, `*` and `>`.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Writes a new nkey user seed to `path` unless it already holds one.
fn ensure_seed(path: &Path, who: &str) -> anyhow::Result<()> {
    if path.exists() {
        public_key(path)?;
        return Ok(());
    }
    write_seed(path, who)
}

/// Writes a new nkey user seed to `path`, in place of whatever it held.
fn write_seed(path: &Path, who: &str) -> anyhow::Result<()> {
    let (_, credentials) = new_seed(who)?;
    write_private(path, &credentials)
}

/// A new nkey user: its public key, and its credentials file's text.
fn new_seed(who: &str) -> anyhow::Result<(String, String)> {
    let pair = nkeys::KeyPair::new_user();
    let seed = pair
        .seed()
        .map_err(|error| anyhow::anyhow!("making an nkey for {who}: {error}"))?;
    let credentials = format!(
        "# contact-import NATS credentials of {who}: an nkey seed. Keep it secret.\n\
         # Use it with --nats-creds (or NATS_CREDS); other NATS clients take it as an\n\
         # nkey seed file (nats CLI --nkey FILE, nats-py nkeys_seed), not as a JWT .creds.\n{seed}\n"
    );
    Ok((pair.public_key(), credentials))
}

/// The public key of the seed in a credentials file.
fn public_key(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let seed = contact_contract::connection::user_seed(&text)
        .with_context(|| format!("{} holds no nkey user seed", path.display()))?;
    let pair = nkeys::KeyPair::from_seed(seed)
        .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
    Ok(pair.public_key())
}

/// Secrets are readable by their owner alone, from the moment they exist. The file is
/// replaced whole: written beside it under a name no one else uses, then renamed over it, so
/// that a rotation that stops halfway leaves the old credentials, never half of new ones. A
/// file replaced keeps its owner and group (the server that reads the configuration may run
/// as another user than this command).
fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let moment = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let beside = path.with_file_name(format!(".{file_name}.{}-{moment}.new", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    // A new file, never one found there (or a link planted in its place).
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let written = options.open(&beside).and_then(|mut file| {
        file.write_all(content.as_bytes())?;
        #[cfg(unix)]
        if let Ok(existing) = std::fs::metadata(path) {
            use std::os::unix::fs::MetadataExt as _;
            std::os::unix::fs::fchown(&file, Some(existing.uid()), Some(existing.gid()))?;
        }
        file.sync_all()
    });
    let replaced = written.and_then(|()| std::fs::rename(&beside, path));
    if replaced.is_err() {
        let _ = std::fs::remove_file(&beside);
    }
    replaced.with_context(|| format!("writing {}", path.display()))?;
    // The rename itself lasts once the folder is on disk.
    if let Some(folder) = path
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
    {
        if let Ok(folder) = std::fs::File::open(folder) {
            let _ = folder.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("contact-admin-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn init_writes_a_config_naming_every_service_and_tenant_add_keeps_them() {
        let dir = scratch("init");
        let deployment = Deployment::at(&dir);
        deployment
            .init(
                &Namespace::default(),
                "127.0.0.1:4222",
                Some(&dir.join("js store")),
            )
            .expect("init");
        let writer_key = public_key(&deployment.service_creds("writer")).expect("a seed");
        let config = std::fs::read_to_string(deployment.config()).expect("config");
        assert!(config.contains(&writer_key), "{config}");
        let store = format!("store_dir: \"{}\"", dir.join("js store").display());
        assert!(config.contains(&store), "{config}");

        let acme = AccountId::new("acme").expect("valid");
        deployment.add_tenant(&acme).expect("tenant add");
        deployment
            .add_tenant(&AccountId::new("globex").expect("valid"))
            .expect("tenant add");
        let acme_key = public_key(&deployment.tenant_creds(&acme)).expect("a seed");
        // Adding again keeps the tenant's credentials, and init keeps the services'.
        deployment.add_tenant(&acme).expect("tenant add again");
        deployment
            .init(
                &Namespace::default(),
                "127.0.0.1:4222",
                Some(&dir.join("js store")),
            )
            .expect("init again");
        assert_eq!(
            public_key(&deployment.tenant_creds(&acme)).expect("seed"),
            acme_key
        );
        assert_eq!(
            public_key(&deployment.service_creds("writer")).expect("seed"),
            writer_key
        );
        let config = std::fs::read_to_string(deployment.config()).expect("config");
        assert!(config.contains(&acme_key), "{config}");
        assert!(config.contains("\"ci.v1.acme.import.*.start\""), "{config}");
        assert!(config.contains("# tenant globex"), "{config}");
        assert_eq!(
            deployment.tenants().expect("tenants"),
            vec![acme.clone(), AccountId::new("globex").expect("valid")]
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_rotated_tenant_has_a_new_key_and_a_removed_one_none() {
        let dir = scratch("rotate");
        let deployment = Deployment::at(&dir);
        deployment
            .init(
                &Namespace::default(),
                "127.0.0.1:4222",
                Some(&dir.join("js")),
            )
            .expect("init");
        let (acme, globex) = (
            AccountId::new("acme").expect("valid"),
            AccountId::new("globex").expect("valid"),
        );
        deployment.add_tenant(&acme).expect("tenant add");
        deployment.add_tenant(&globex).expect("tenant add");
        let old = public_key(&deployment.tenant_creds(&acme)).expect("a seed");
        let globex_key = public_key(&deployment.tenant_creds(&globex)).expect("a seed");
        deployment.rotate_tenant(&acme).expect("rotate");
        let new = public_key(&deployment.tenant_creds(&acme)).expect("a seed");
        let config = std::fs::read_to_string(deployment.config()).expect("config");
        assert_ne!(old, new);
        assert!(!config.contains(&old) && config.contains(&new), "{config}");

        deployment.remove_tenant(&globex).expect("remove");
        let config = std::fs::read_to_string(deployment.config()).expect("config");
        assert!(!config.contains(&globex_key), "{config}");
        assert!(!config.contains("ci.v1.globex."), "{config}");
        assert_eq!(deployment.tenants().expect("tenants"), vec![acme.clone()]);
        let error = deployment.remove_tenant(&globex).expect_err("gone already");
        assert!(
            error
                .to_string()
                .contains("no tenant globex (its tenants: acme)"),
            "{error}"
        );
        assert!(deployment.rotate_tenant(&globex).is_err());
        let leftovers: Vec<_> = std::fs::read_dir(dir.join(TENANTS_FOLDER))
            .expect("tenants folder")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(leftovers, ["acme.creds"], "no file written beside stays");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn secrets_are_readable_by_their_owner_alone() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = scratch("modes");
        let deployment = Deployment::at(&dir);
        deployment
            .init(
                &Namespace::default(),
                "127.0.0.1:4222",
                Some(&dir.join("js store")),
            )
            .expect("init");
        let mode = std::fs::metadata(deployment.service_creds("ingest"))
            .expect("creds")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_folder_an_earlier_version_made_keeps_its_store_from_the_flags() {
        let dir = scratch("earlier");
        let deployment = Deployment::at(&dir);
        deployment
            .init(&Namespace::default(), "127.0.0.1:4222", None)
            .expect("init as an earlier version did");
        assert!(deployment.store_from_flags());
        let config = std::fs::read_to_string(deployment.config()).expect("config");
        assert!(
            config.contains("jetstream: enabled") && !config.contains("store_dir"),
            "{config}"
        );
        deployment
            .init(
                &Namespace::default(),
                "127.0.0.1:4222",
                Some(&dir.join("js")),
            )
            .expect("init with the store");
        assert!(!deployment.store_from_flags());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn web_users_belong_to_a_tenant_of_the_folder_and_go_with_it() {
        let dir = scratch("web-users");
        let deployment = Deployment::at(&dir);
        deployment
            .init(
                &Namespace::default(),
                "127.0.0.1:4222",
                Some(&dir.join("js")),
            )
            .expect("init");
        let acme = AccountId::new("acme").expect("valid");
        let anna = UserName::new("anna").expect("valid");
        let error = deployment
            .add_web_user(&anna, &acme, "a long enough password")
            .expect_err("no tenant acme yet");
        assert!(error.to_string().contains("no tenant acme"), "{error:#}");
        deployment.add_tenant(&acme).expect("tenant");
        let error = deployment
            .add_web_user(&anna, &acme, "short")
            .expect_err("too short");
        assert!(error.to_string().contains("at least 12"), "{error:#}");
        deployment
            .add_web_user(&anna, &acme, "a long enough password")
            .expect("added");
        let users = deployment.web_users().expect("readable");
        let stored = users.get(&anna).expect("anna is there");
        assert_eq!(stored.account, acme);
        assert!(web_users::verify_password(
            &stored.password_hash,
            "a long enough password"
        ));
        let text = std::fs::read_to_string(deployment.web_users_file()).expect("file");
        assert!(
            !text.contains("a long enough password"),
            "only the hash is kept"
        );
        deployment.remove_tenant(&acme).expect("removed");
        assert!(deployment
            .web_users()
            .expect("readable")
            .get(&anna)
            .is_none());
        let error = deployment.remove_web_user(&anna).expect_err("already gone");
        assert!(error.to_string().contains("no web user anna"), "{error:#}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
