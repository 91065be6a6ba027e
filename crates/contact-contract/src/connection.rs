//! How a party reaches and proves itself to NATS: the server URL, the credentials (a `.creds`
//! file or an nkey seed, a user and password, or a token) and TLS. Every service and every
//! client take the same flags and environment variables (with the `clap` feature), so one
//! secrets setup serves them all. No secret is ever printed: URLs are shown without their
//! user info.

use std::fmt;
use std::path::{Path, PathBuf};

use async_nats::ConnectOptions;

/// Credentials that cannot be used: the file is unreadable or holds no credentials.
#[derive(Debug, thiserror::Error)]
#[error("reading NATS credentials {path}: {detail}")]
pub struct CredentialsError {
    pub path: String,
    pub detail: String,
}

impl CredentialsError {
    fn new(path: &Path, detail: impl fmt::Display) -> Self {
        Self {
            path: path.display().to_string(),
            detail: detail.to_string(),
        }
    }
}

/// NATS connection settings, from flags or the environment.
#[derive(Clone, Default)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct NatsSettings {
    /// The server (several comma-separated for a cluster); `tls://` requires TLS.
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "nats-url",
            env = "NATS_URL",
            global = true,
            default_value = "nats://127.0.0.1:4222"
        )
    )]
    pub url: String,
    /// A `.creds` file (user JWT and nkey seed) or a file holding an nkey seed.
    #[cfg_attr(
        feature = "clap",
        arg(long = "nats-creds", env = "NATS_CREDS", global = true)
    )]
    pub creds: Option<PathBuf>,
    #[cfg_attr(
        feature = "clap",
        arg(long = "nats-user", env = "NATS_USER", global = true)
    )]
    pub user: Option<String>,
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "nats-password",
            env = "NATS_PASSWORD",
            global = true,
            hide_env_values = true
        )
    )]
    pub password: Option<String>,
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "nats-token",
            env = "NATS_TOKEN",
            global = true,
            hide_env_values = true
        )
    )]
    pub token: Option<String>,
    /// CA certificate (PEM) to verify the server with; implies TLS.
    #[cfg_attr(
        feature = "clap",
        arg(long = "nats-tls-ca", env = "NATS_TLS_CA", global = true)
    )]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for servers that verify clients; needs `--nats-tls-key`.
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "nats-tls-cert",
            env = "NATS_TLS_CERT",
            global = true,
            requires = "tls_key"
        )
    )]
    pub tls_cert: Option<PathBuf>,
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "nats-tls-key",
            env = "NATS_TLS_KEY",
            global = true,
            requires = "tls_cert"
        )
    )]
    pub tls_key: Option<PathBuf>,
}

impl NatsSettings {
    /// A server without credentials or TLS, such as the local development one.
    pub fn plain(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// The URL as it may be shown: without user names, passwords or tokens.
    /// Each server of the URL: a cluster is given as several, comma-separated (the client
    /// library would read the list as one malformed URL).
    pub fn servers(&self) -> Vec<&str> {
        self.url
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .collect()
    }

    pub fn display_url(&self) -> String {
        without_user_info(&self.url)
    }

    /// Connection options carrying these credentials and TLS settings. `inbox_prefix` keeps a
    /// tenant's replies on subjects only it may read.
    pub async fn connect_options(
        &self,
        client_name: &str,
        inbox_prefix: Option<&str>,
    ) -> Result<ConnectOptions, CredentialsError> {
        let mut options = match &self.creds {
            Some(path) => with_credentials(path).await?,
            None => ConnectOptions::new(),
        };
        // A node cut off without a word (a partition, not a closed socket) is noticed after
        // two pings without an answer: 2 x 10 s, not the library's 2 x 60 s, so that a
        // connection moves to a node that still answers within seconds.
        options = options.name(client_name).ping_interval(PING_INTERVAL);
        if let Some(user) = &self.user {
            options =
                options.user_and_password(user.clone(), self.password.clone().unwrap_or_default());
        }
        if let Some(token) = &self.token {
            options = options.token(token.clone());
        }
        if let Some(ca) = &self.tls_ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            options = options
                .add_client_certificate(cert.clone(), key.clone())
                .require_tls(true);
        }
        if let Some(prefix) = inbox_prefix {
            options = options.custom_inbox_prefix(prefix);
        }
        Ok(options)
    }
}

/// How often a connection asks the server whether it is still there.
const PING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

impl fmt::Debug for NatsSettings {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |secret: &Option<String>| secret.as_ref().map(|_| "<hidden>");
        formatter
            .debug_struct("NatsSettings")
            .field("url", &self.display_url())
            .field("creds", &self.creds)
            .field("user", &self.user)
            .field("password", &hidden(&self.password))
            .field("token", &hidden(&self.token))
            .field("tls_ca", &self.tls_ca)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .finish()
    }
}

/// A `.creds` file (JWT and seed) or a bare nkey seed file.
async fn with_credentials(path: &Path) -> Result<ConnectOptions, CredentialsError> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|error| CredentialsError::new(path, error))?;
    if text.contains("BEGIN NATS USER JWT") {
        return ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|error| CredentialsError::new(path, error));
    }
    let seed = user_seed(&text).ok_or_else(|| {
        CredentialsError::new(
            path,
            "the file holds neither a user JWT nor an nkey user seed (a line starting with SU)",
        )
    })?;
    Ok(ConnectOptions::with_nkey(seed.to_string()))
}

/// The nkey user seed in a credentials file: the line starting with `SU`.
pub fn user_seed(text: &str) -> Option<&str> {
    text.lines()
        .map(str::trim)
        .find(|line| line.starts_with("SU"))
}

/// `nats://user:secret@host:4222,nats://host2` → `nats://host:4222,nats://host2`.
pub fn without_user_info(urls: &str) -> String {
    urls.split(',')
        .map(|url| {
            let url = url.trim();
            let (scheme, rest) = match url.split_once("://") {
                Some((scheme, rest)) => (Some(scheme), rest),
                None => (None, url),
            };
            let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
            let rest = match rest[..host_end].rfind('@') {
                Some(at) => &rest[at + 1..],
                None => rest,
            };
            match scheme {
                Some(scheme) => format!("{scheme}://{rest}"),
                None => rest.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_user_names_passwords_or_tokens() {
        for (url, shown) in [
            ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
            ("nats://alice:s3cr3t@nats:4222", "nats://nats:4222"),
            ("tls://token@nats.example.com", "tls://nats.example.com"),
            ("user:p@ss@host:4222", "host:4222"),
            (
                "nats://a:b@n1:4222, nats://c:d@n2:4222",
                "nats://n1:4222,nats://n2:4222",
            ),
        ] {
            assert_eq!(without_user_info(url), shown, "{url}");
        }
    }

    #[test]
    fn a_cluster_is_several_servers_separated_by_commas() {
        let settings = NatsSettings::plain("nats://n1:4222, nats://n2:4222,,tls://n3:4222 ");
        assert_eq!(
            settings.servers(),
            ["nats://n1:4222", "nats://n2:4222", "tls://n3:4222"]
        );
        assert_eq!(
            NatsSettings::plain("nats://n1:4222").servers(),
            ["nats://n1:4222"]
        );
    }

    #[test]
    fn debug_output_hides_passwords_and_tokens() {
        let settings = NatsSettings {
            url: "nats://alice:s3cr3t@nats:4222".into(),
            user: Some("bob".into()),
            password: Some("hunter2".into()),
            token: Some("t0k3n".into()),
            ..NatsSettings::default()
        };
        let printed = format!("{settings:?}");
        for secret in ["s3cr3t", "hunter2", "t0k3n"] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(printed.contains("bob"), "{printed}");
    }

    #[tokio::test]
    async fn a_file_without_a_seed_or_jwt_is_refused_with_its_name() {
        let path = std::env::temp_dir().join(format!("not-creds-{}", std::process::id()));
        std::fs::write(&path, "hello\n").expect("writing");
        let error = NatsSettings {
            creds: Some(path.clone()),
            ..NatsSettings::plain("nats://127.0.0.1:4222")
        }
        .connect_options("test", None)
        .await
        .expect_err("not credentials");
        assert!(
            format!("{error:#}").contains("neither a user JWT nor an nkey"),
            "{error:#}"
        );
        let _ = std::fs::remove_file(path);
    }
}
