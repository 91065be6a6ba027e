//! contact-import-admin: sets up the secure NATS deployment of contact-import and adds
//! tenants to it. Its commands and the files they write are an interface operators' scripts
//! rely on (see the README).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use contact_admin::Deployment;
use contact_contract::web_users::{self, UserName};
use contact_contract::{AccountId, Namespace};

#[derive(Debug, Parser)]
#[command(
    name = "contact-import-admin",
    version,
    about = "Secure NATS deployment of contact-import: server configuration and credentials"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write DIR/nats-server.conf (JetStream on, authentication required) and the credentials
    /// of each service (DIR/ingest.creds, DIR/mapper.creds, DIR/writer.creds) and of the
    /// operator (DIR/operator.creds). Existing credentials are kept.
    Init {
        dir: PathBuf,
        /// The deployment's namespace (CONTACT_IMPORT_NAMESPACE of its services).
        #[arg(long, default_value = "ci")]
        namespace: String,
        /// The address the server listens on.
        #[arg(long, default_value = "0.0.0.0:4222")]
        listen: String,
        /// The server's JetStream store, DIR/jetstream when not given (a folder made by an
        /// earlier version keeps taking it from -sd until this is given). It is written into
        /// the configuration so that a reload after `tenant remove` or `rotate` works:
        /// nats-server 2.9 refuses one when -sd gave the store, and refuses to start when both
        /// name one.
        #[arg(long)]
        store: Option<PathBuf>,
    },
    /// Tenants of the deployment.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// People who log in to the import page (contact-web with WEB_DEPLOYMENT_DIR), each as
    /// one tenant.
    #[command(subcommand)]
    WebUser(WebUserCommand),
}

#[derive(Debug, Subcommand)]
enum WebUserCommand {
    /// Let NAME log in to the import page as ACCOUNT (a tenant of DIR), written to
    /// DIR/web-users. Without --password-stdin a new password is made and printed once. A
    /// user of that name gets the new password and account, and her sessions end.
    Add {
        name: String,
        #[arg(long)]
        account: String,
        #[arg(long)]
        dir: PathBuf,
        /// Read the password (at least 12 characters) from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Stop NAME logging in; her open sessions end at their next request.
    Remove {
        name: String,
        #[arg(long)]
        dir: PathBuf,
    },
    /// The web users of DIR and their accounts, one a line.
    List {
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Add the tenant, as an account of her own, to DIR/nats-server.conf and write
    /// DIR/tenants/ACCOUNT.creds; restart a running server to let it in (nats-server 2.9
    /// joins a new account to the services' only at a start, not on SIGHUP).
    Add {
        account: String,
        #[arg(long)]
        dir: PathBuf,
    },
    /// Take the tenant out of DIR/nats-server.conf and delete DIR/tenants/ACCOUNT.creds;
    /// reload the running server (SIGHUP) to refuse it and close its connections. Its data
    /// stays.
    Remove {
        account: String,
        #[arg(long)]
        dir: PathBuf,
    },
    /// Write new credentials to DIR/tenants/ACCOUNT.creds and put their key in
    /// DIR/nats-server.conf in place of the old one; after a reload (SIGHUP) the old
    /// credentials are refused. Hand the new file to the tenant.
    Rotate {
        account: String,
        #[arg(long)]
        dir: PathBuf,
    },
    /// Register the account on a running deployment whose writers admit registered accounts
    /// only (CONTACT_IMPORT_ACCOUNTS=registered), with DIR/operator.creds.
    Register {
        account: String,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
        nats_url: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("contact-import-admin: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init {
            dir,
            namespace,
            listen,
            store,
        } => {
            let deployment = Deployment::at(&dir);
            let store = match store {
                Some(store) => Some(std::path::absolute(store)?),
                // Moving the store of a running deployment would start its server empty.
                None if deployment.store_from_flags() => {
                    eprintln!(
                        "contact-import-admin: {} was made by an earlier version: its server keeps the store -sd gives; to name the store here (so that SIGHUP reloads work), run init again with --store set to that folder and drop -sd",
                        dir.display()
                    );
                    None
                }
                None => Some(std::path::absolute(dir.join("jetstream"))?),
            };
            deployment.init(&Namespace::new(&namespace)?, &listen, store.as_deref())?;
            println!("{}", deployment.config().display());
        }
        Command::Tenant(TenantCommand::Add { account, dir }) => {
            let creds = Deployment::at(dir).add_tenant(&AccountId::new(account)?)?;
            println!("{}", creds.display());
        }
        Command::Tenant(TenantCommand::Remove { account, dir }) => {
            let deployment = Deployment::at(dir);
            deployment.remove_tenant(&AccountId::new(account)?)?;
            println!("{}", deployment.config().display());
        }
        Command::Tenant(TenantCommand::Rotate { account, dir }) => {
            let creds = Deployment::at(dir).rotate_tenant(&AccountId::new(account)?)?;
            println!("{}", creds.display());
        }
        Command::Tenant(TenantCommand::Register {
            account,
            dir,
            nats_url,
        }) => {
            contact_admin::register_tenant(
                &Deployment::at(dir),
                &nats_url,
                &AccountId::new(account)?,
            )
            .await?;
        }
        Command::WebUser(WebUserCommand::Add {
            name,
            account,
            dir,
            password_stdin,
        }) => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                line.trim_end_matches(['\r', '\n']).to_string()
            } else {
                web_users::new_password()
            };
            let name = UserName::new(&name).map_err(anyhow::Error::msg)?;
            Deployment::at(dir).add_web_user(&name, &AccountId::new(account)?, &password)?;
            if !password_stdin {
                println!("{password}");
            }
        }
        Command::WebUser(WebUserCommand::Remove { name, dir }) => {
            let name = UserName::new(&name).map_err(anyhow::Error::msg)?;
            Deployment::at(dir).remove_web_user(&name)?;
        }
        Command::WebUser(WebUserCommand::List { dir }) => {
            for user in Deployment::at(dir).web_users()?.iter() {
                println!("{} {}", user.name, user.account);
            }
        }
    }
    Ok(())
}
