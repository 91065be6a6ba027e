//! Connections that wait: while NATS or PostgreSQL is unreachable a service retries with
//! backoff and says why, instead of crashing into a restart loop.

use std::time::Duration;

use anyhow::Context as _;
#[cfg(feature = "postgres")]
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
#[cfg(feature = "postgres")]
use sqlx::PgPool;

use contact_contract::NatsSettings;

use crate::Shutdown;

const FIRST_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(5);
#[cfg(feature = "postgres")]
const LOCK_TIMEOUT: &str = "5s";
#[cfg(feature = "postgres")]
const STATEMENT_TIMEOUT: &str = "5min";

/// Connects to NATS with the settings' credentials and TLS, retrying until it answers or the
/// shutdown is triggered.
pub async fn nats(
    settings: &NatsSettings,
    client_name: &str,
    shutdown: &Shutdown,
) -> anyhow::Result<async_nats::Client> {
    let url = settings.display_url();
    let mut delay = FIRST_DELAY;
    loop {
        let attempt = settings
            .connect_options(client_name, None)
            .await?
            .connection_timeout(Duration::from_secs(5))
            // Once connected, keep reconnecting forever: messages wait in JetStream meanwhile.
            .max_reconnects(None)
            .connect(settings.servers())
            .await;
        match attempt {
            Ok(client) => {
                tracing::info!(url, "connected to NATS");
                return Ok(client);
            }
            Err(error) => {
                tracing::warn!(url, %error, retry_in = ?delay, "NATS is not reachable yet");
            }
        }
        wait_or_stop(&mut delay, shutdown)
            .await
            .context("stopped while waiting for NATS")?;
    }
}

/// Connects a PostgreSQL pool, retrying until the server answers or the shutdown is triggered.
#[cfg(feature = "postgres")]
pub async fn postgres(
    url: &str,
    max_connections: u32,
    shutdown: &Shutdown,
) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = url
        .parse::<PgConnectOptions>()
        .context("DATABASE_URL is not a PostgreSQL URL")?
        // Every wait has an end: a lock held elsewhere, or a statement gone astray, fails its
        // work, which is then retried, instead of holding a connection for ever.
        .options([
            ("lock_timeout", LOCK_TIMEOUT),
            ("statement_timeout", STATEMENT_TIMEOUT),
        ]);
    let mut delay = FIRST_DELAY;
    loop {
        let attempt = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await;
        match attempt {
            Ok(pool) => {
                tracing::info!(
                    host = options.get_host(),
                    database = options.get_database(),
                    "connected to PostgreSQL"
                );
                return Ok(pool);
            }
            Err(error) => {
                tracing::warn!(host = options.get_host(), %error, retry_in = ?delay, "PostgreSQL is not reachable yet");
            }
        }
        wait_or_stop(&mut delay, shutdown)
            .await
            .context("stopped while waiting for PostgreSQL")?;
    }
}

async fn wait_or_stop(delay: &mut Duration, shutdown: &Shutdown) -> anyhow::Result<()> {
    tokio::select! {
        _ = tokio::time::sleep(*delay) => {}
        _ = shutdown.triggered() => anyhow::bail!("shutdown requested"),
    }
    *delay = (*delay * 2).min(MAX_DELAY);
    Ok(())
}
