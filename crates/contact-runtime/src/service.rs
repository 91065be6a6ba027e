//! The start-up every service shares: the options they all take, the operators' endpoint,
//! the NATS connection, the streams and the service's durable consumer. What a service adds
//! (a database, options of its own) comes after; its readiness probe is set once all of it
//! answers, so `/readyz` says "still connecting" until then.
//!
//! Options every service will take (a `migrate` command, OpenTelemetry export) belong in
//! [`ServiceSettings`], so that each service gets them by flattening it.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer::PullConsumer};
use contact_contract::{ConsumerRole, Namespace, NatsSettings};

use crate::http::{self, HttpSettings, NatsProbe, Probe};
use crate::{connect, Shutdown};

/// The options every service takes (flags or environment).
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceSettings {
    #[command(flatten)]
    pub nats: NatsSettings,
    #[command(flatten)]
    pub http: HttpSettings,
    /// Prefix of every subject and stream (one per deployment).
    #[arg(long, env = "CONTACT_IMPORT_NAMESPACE", default_value = "ci")]
    pub namespace: String,
    /// Copies of each stream and bucket in a JetStream cluster (3 on three nodes).
    #[arg(long, env = "JETSTREAM_REPLICAS", default_value_t = 1)]
    pub jetstream_replicas: usize,
    /// The most each import stream may hold, in bytes (0: no limit). JetStream reserves it in
    /// its store for each of the four streams; streams an earlier version made are brought to
    /// it at start. Every service of a deployment needs the same value.
    #[arg(long, env = "JETSTREAM_STREAM_MAX_BYTES", default_value_t = contact_contract::limits::NO_BYTE_LIMIT)]
    pub stream_max_bytes: u64,
}

/// A service connected to NATS, with its streams and its consumer in place.
pub struct Started<P> {
    pub namespace: Namespace,
    pub client: async_nats::Client,
    pub jetstream: jetstream::Context,
    pub consumer: PullConsumer,
    /// Where `/healthz`, `/readyz` and `/metrics` are served, when they are.
    pub http_addr: Option<SocketAddr>,
    probe: Arc<OnceLock<P>>,
}

impl<P: Probe> Started<P> {
    /// Makes `/readyz` ask `probe`: the service has every dependency it needs.
    pub fn ready(&self, probe: P) {
        let _ = self.probe.set(probe);
    }

    /// What `/readyz` asks of NATS and of this service's consumer.
    pub fn nats_probe(&self) -> NatsProbe {
        NatsProbe::new(self.client.clone(), Some(self.consumer.clone()))
    }
}

/// Serves the operators' endpoint, then connects to NATS (waiting while it is down), makes
/// sure the streams exist and creates or updates the consumer of `role`.
pub async fn start<P: Probe>(
    settings: &ServiceSettings,
    role: ConsumerRole,
    shutdown: &Shutdown,
) -> anyhow::Result<Started<P>> {
    let namespace = Namespace::new(&settings.namespace)?
        .with_replicas(settings.jetstream_replicas)
        .with_stream_max_bytes(settings.stream_max_bytes);
    // Every crate of the workspace has the workspace's version.
    crate::metrics::metrics().set_build_info(role.durable_name(), env!("CARGO_PKG_VERSION"));
    let probe = Arc::new(OnceLock::new());
    let http_addr = http::serve(&settings.http, probe.clone(), shutdown.clone()).await?;
    let client_name = format!("contact-{}", role.durable_name());
    let client = connect::nats(&settings.nats, &client_name, shutdown).await?;
    let jetstream = jetstream::new(client.clone());
    contact_contract::ensure_streams(&jetstream, &namespace)
        .await
        .map_err(anyhow::Error::from_boxed)
        .context("creating the import streams")?;
    let consumer = role
        .consumer(&jetstream, &namespace)
        .await
        .map_err(anyhow::Error::from_boxed)
        .with_context(|| format!("creating the {} consumer", role.durable_name()))?;
    Ok(Started {
        namespace,
        client,
        jetstream,
        consumer,
        http_addr,
        probe,
    })
}
