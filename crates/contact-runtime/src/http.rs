//! The operators' HTTP endpoint of a service (`--http-addr` / `HTTP_ADDR`, off when unset):
//! `GET /healthz` answers 200 while the process runs, `GET /readyz` 200 only while the
//! service's dependencies answer (503 naming the one that does not), and `GET /metrics` the
//! Prometheus text of [`crate::metrics`].

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use async_nats::connection::State;
use async_nats::jetstream::consumer::PullConsumer;
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::metrics::metrics;
use crate::Shutdown;

/// A probe that has not answered by then counts as down: a probe must not hang the kubelet.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// A client that sends no request head by then is dropped.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Default, clap::Args)]
pub struct HttpSettings {
    /// Where to serve /healthz, /readyz and /metrics (for instance 0.0.0.0:9090); not served
    /// when unset.
    #[arg(long, env = "HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
}

/// What a service checks before it calls itself ready, and reads into its gauges before the
/// metrics are rendered.
pub trait Probe: Send + Sync + 'static {
    /// `Err` names the dependency that does not answer.
    fn ready(&self) -> impl Future<Output = Result<(), String>> + Send;
    /// Updates the gauges whose values live elsewhere (a consumer's backlog, imports running).
    fn refresh(&self) -> impl Future<Output = ()> + Send;
}

/// A service serves its endpoint before it connects (so that a liveness check passes while
/// it waits for NATS or PostgreSQL), and sets its probe once connected: until then it is not
/// ready.
impl<P: Probe> Probe for OnceLock<P> {
    async fn ready(&self) -> Result<(), String> {
        match self.get() {
            Some(probe) => probe.ready().await,
            None => Err("still connecting to its dependencies".to_string()),
        }
    }

    async fn refresh(&self) {
        if let Some(probe) = self.get() {
            probe.refresh().await;
        }
    }
}

/// The probe of a service that needs NATS alone: connected, and its consumer's backlog.
pub struct NatsProbe {
    client: async_nats::Client,
    consumer: Option<PullConsumer>,
}

impl NatsProbe {
    pub fn new(client: async_nats::Client, consumer: Option<PullConsumer>) -> Self {
        Self { client, consumer }
    }
}

impl Probe for NatsProbe {
    async fn ready(&self) -> Result<(), String> {
        match self.client.connection_state() {
            State::Connected => Ok(()),
            state => Err(format!("NATS is {state}")),
        }
    }

    async fn refresh(&self) {
        let Some(consumer) = &self.consumer else {
            return;
        };
        let mut consumer = consumer.clone();
        match tokio::time::timeout(CHECK_TIMEOUT, consumer.info()).await {
            Ok(Ok(info)) => metrics().set_consumer_pending(&info.name, info.num_pending),
            Ok(Err(error)) => tracing::debug!(%error, "cannot read the consumer's backlog"),
            Err(_) => tracing::debug!("the consumer's backlog did not come in time"),
        }
    }
}

/// Serves the endpoint on `settings`' address, when there is one, until the shutdown; returns
/// the address it listens on (port 0 picks a free one).
pub async fn serve<P: Probe>(
    settings: &HttpSettings,
    probe: Arc<P>,
    shutdown: Shutdown,
) -> anyhow::Result<Option<SocketAddr>> {
    let Some(address) = settings.http_addr else {
        return Ok(None);
    };
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("listening for HTTP on {address}"))?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, "serving /healthz, /readyz and /metrics");
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.triggered() => return,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "cannot accept an HTTP connection");
                    continue;
                }
            };
            let probe = probe.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| answer(probe.clone(), request));
                let served = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                if let Err(error) = served {
                    tracing::debug!(%error, "HTTP connection ended with an error");
                }
            });
        }
    });
    Ok(Some(local))
}

async fn answer<P: Probe>(
    probe: Arc<P>,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() != Method::GET {
        return Ok(respond(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into()));
    }
    let response = match request.uri().path() {
        "/healthz" => respond(StatusCode::OK, "ok\n".into()),
        "/readyz" => match tokio::time::timeout(CHECK_TIMEOUT, probe.ready()).await {
            Ok(Ok(())) => respond(StatusCode::OK, "ready\n".into()),
            Ok(Err(reason)) => respond(StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
            Err(_) => respond(
                StatusCode::SERVICE_UNAVAILABLE,
                "the readiness check did not finish in time\n".into(),
            ),
        },
        "/metrics" => {
            probe.refresh().await;
            let mut response = respond(StatusCode::OK, metrics().render());
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
        }
        _ => respond(StatusCode::NOT_FOUND, "not found\n".into()),
    };
    Ok(response)
}

fn respond(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}
