//! Stream, consumer and bucket definitions, and the API operations. The services create them
//! (creation is idempotent); clients, which may not administer JetStream, never do.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, object_store, stream};

use crate::names::ImportSubjectKind;
use crate::{AccountId, Namespace};

/// Ingest closes a chunk at this many rows…
pub const CHUNK_TARGET_ROWS: usize = 2000;
/// …or when its rows would weigh this much as JSON, whichever comes first. Small enough that
/// a chunk stays well under the server's default 1 MiB payload limit, and large enough that
/// its transactions and messages cost little per row.
pub const CHUNK_TARGET_BYTES: usize = 256 * 1024;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// The operator's request/reply operations, for deployments where accounts are registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperatorOperation {
    /// Makes an account known, with the standard attributes.
    RegisterAccount,
}

impl OperatorOperation {
    pub const ALL: [OperatorOperation; 1] = [Self::RegisterAccount];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RegisterAccount => "accounts.register",
        }
    }
}

/// The durable consumers of the pipeline; replicas of one service share one consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerRole {
    /// Import requests → contact-ingest.
    Ingest,
    /// Raw chunks → contact-mapper.
    Mapper,
    /// Validated chunks and control messages → contact-writer.
    Writer,
}

impl ConsumerRole {
    pub fn durable_name(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Mapper => "mapper",
            Self::Writer => "writer",
        }
    }

    /// How long a message may stay unacknowledged before JetStream redelivers it (after a
    /// replica dies): what a crash costs the imports whose messages the replica held. A
    /// handler at work extends it with progress acks every third of it, however long the
    /// work takes, so it can be short.
    pub fn ack_wait(self) -> Duration {
        Duration::from_secs(6)
    }

    /// Messages handed out and not yet settled. This bound is not what keeps an import moving
    /// (a writer parks a part that waits for its lane and settles its message within about a
    /// second: see the writer's `chunk` module); it only caps what one consumer has out.
    pub fn max_ack_pending(self) -> i64 {
        match self {
            // Requests waiting for their account's turn are pending too: room for every
            // account's queue (`limits::DEFAULT_QUEUED_IMPORTS_PER_ACCOUNT`) of many accounts.
            Self::Ingest => 20_000,
            Self::Mapper => 256,
            Self::Writer => 4096,
        }
    }

    /// The stream this role's consumer reads.
    pub fn stream(self, namespace: &Namespace) -> String {
        match self {
            Self::Ingest => namespace.requests_stream(),
            Self::Mapper => namespace.chunks_stream(),
            Self::Writer => namespace.records_stream(),
        }
    }

    /// Creates this role's durable pull consumer, or brings the one that exists to this
    /// version's limits (a deployment upgraded in place keeps its consumers: without the
    /// update, the limits of the version that first made them would stay).
    pub async fn consumer(
        self,
        jetstream: &jetstream::Context,
        namespace: &Namespace,
    ) -> Result<consumer::PullConsumer, async_nats::Error> {
        let stream = jetstream.get_stream(self.stream(namespace)).await?;
        let config = consumer::pull::Config {
            durable_name: Some(self.durable_name().to_string()),
            description: Some(format!(
                "contact-{} replicas share this consumer",
                self.durable_name()
            )),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: self.ack_wait(),
            // Never give up on a message: a handler terms what can never succeed, everything
            // else is retried with growing delays.
            max_deliver: -1,
            max_ack_pending: self.max_ack_pending(),
            ..Default::default()
        };
        // JetStream creates the durable, or updates it when it exists with another config.
        match stream.create_consumer(config).await {
            Ok(consumer) => Ok(consumer),
            Err(refused) => {
                // A change the server cannot make to an existing consumer (its ack policy,
                // say): run on the consumer as it is rather than not at all.
                let consumer = stream
                    .get_consumer(self.durable_name())
                    .await
                    .map_err(|_| refused.to_string())?;
                tracing::warn!(
                    consumer = self.durable_name(),
                    error = %refused,
                    "the consumer keeps the settings of the version that made it"
                );
                Ok(consumer)
            }
        }
    }
}

fn stream_config(
    namespace: &Namespace,
    name: String,
    subjects: Vec<String>,
    retention: stream::RetentionPolicy,
    max_age: Duration,
    description: &str,
) -> stream::Config {
    let is_events = name == namespace.events_stream();
    stream::Config {
        name,
        subjects,
        retention,
        max_age,
        max_bytes: crate::limits::jetstream_max_bytes(namespace.stream_max_bytes()),
        // A full stream refuses what comes next (its publisher is told and tries again
        // later) rather than dropping a request or a chunk nobody has handled; only events,
        // which the status API repeats, make room by dropping the oldest.
        discard: if is_events {
            stream::DiscardPolicy::Old
        } else {
            stream::DiscardPolicy::New
        },
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(60 * 60),
        num_replicas: namespace.replicas(),
        allow_direct: true,
        description: Some(description.to_string()),
        ..Default::default()
    }
}

/// Creates every stream of the namespace that does not exist yet, and brings those an
/// earlier version (or another setting) made to the namespace's size limit and discard policy.
pub async fn ensure_streams(
    jetstream: &jetstream::Context,
    namespace: &Namespace,
) -> Result<(), async_nats::Error> {
    let streams = [
        stream_config(
            namespace,
            namespace.requests_stream(),
            vec![namespace.import_wildcard(ImportSubjectKind::Start)],
            stream::RetentionPolicy::Limits,
            7 * DAY,
            "import requests; kept after processing so that a status query can see them queued",
        ),
        stream_config(
            namespace,
            namespace.chunks_stream(),
            vec![namespace.import_wildcard(ImportSubjectKind::Chunks)],
            stream::RetentionPolicy::WorkQueue,
            7 * DAY,
            "raw CSV rows, ingest to mapper",
        ),
        stream_config(
            namespace,
            namespace.records_stream(),
            vec![
                namespace.import_wildcard(ImportSubjectKind::Records),
                namespace.import_wildcard(ImportSubjectKind::Control),
            ],
            stream::RetentionPolicy::WorkQueue,
            7 * DAY,
            "validated rows and import control, to the writer",
        ),
        stream_config(
            namespace,
            namespace.events_stream(),
            vec![namespace.import_wildcard(ImportSubjectKind::Events)],
            stream::RetentionPolicy::Limits,
            7 * DAY,
            "progress events and summaries, replayable per import",
        ),
    ];
    for config in streams {
        let mut stream = jetstream.get_or_create_stream(config.clone()).await?;
        let info = stream.info().await?;
        bring_to_limit(
            jetstream,
            info,
            config.max_bytes,
            Some(config.discard),
            config.allow_direct,
        )
        .await;
    }
    Ok(())
}

/// Creates the account's uploads bucket unless it exists, holding at most `max_bytes` (none
/// when unset; a bucket an earlier version made, or made with another limit, is brought to
/// it), and returns how many bytes it holds. Files are kept a week, long enough for any import to read
/// them (and a redelivered request to read again). A full bucket refuses a new file (JetStream
/// discards new data on object stores) and never drops an older one.
pub async fn ensure_uploads_bucket(
    jetstream: &jetstream::Context,
    namespace: &Namespace,
    account: &AccountId,
    max_bytes: Option<u64>,
) -> Result<u64, async_nats::Error> {
    let bucket = namespace.uploads_bucket(account);
    let max_bytes = crate::limits::jetstream_max_bytes(max_bytes);
    if jetstream.get_object_store(&bucket).await.is_err() {
        let created = jetstream
            .create_object_store(object_store::Config {
                bucket: bucket.clone(),
                description: Some(format!("files uploaded by account {account}")),
                max_age: 7 * DAY,
                max_bytes,
                storage: stream::StorageType::File,
                num_replicas: namespace.replicas(),
                ..Default::default()
            })
            .await;
        // Another process may have created it between our look-up and our create.
        if let Err(error) = created {
            jetstream
                .get_object_store(&bucket)
                .await
                .map_err(|_| error)?;
        }
    }
    let mut stream = jetstream
        .get_stream(namespace.uploads_stream(account))
        .await?;
    let info = stream.info().await?;
    // No direct get on a bucket, so that clients read it through `STREAM.MSG.GET`, the only
    // read a tenant is allowed: a direct get answers with the stored bytes as they are, on
    // whatever reply subject the request names (see `permissions`).
    bring_to_limit(jetstream, info, max_bytes, None, false).await;
    Ok(info.state.bytes)
}

/// How many files the account's uploads bucket keeps (deleted ones aside): read from the
/// objects' descriptions, one small message each, at most a week's uploads.
pub async fn uploads_held(
    jetstream: &jetstream::Context,
    namespace: &Namespace,
    account: &AccountId,
) -> Result<u64, async_nats::Error> {
    use futures::StreamExt as _;
    let bucket = jetstream
        .get_object_store(namespace.uploads_bucket(account))
        .await?;
    let mut objects = bucket.list().await?;
    let mut held = 0;
    while let Some(object) = objects.next().await {
        if !object?.deleted {
            held += 1;
        }
    }
    Ok(held)
}

/// Brings a stream an earlier version (or another setting) made to `max_bytes` (and
/// `discard`, when given) and to `allow_direct`. Never below what it holds: JetStream would delete the oldest
/// messages to fit, unhandled chunks or files waiting to be read among them; the stream comes
/// down to the limit at later starts, as it drains. A change the server refuses (it reserves
/// `max_bytes` in its store, and the store may not have room) leaves the stream as it is, said
/// in the log: running on the old limit beats not running.
async fn bring_to_limit(
    jetstream: &jetstream::Context,
    info: &stream::Info,
    max_bytes: i64,
    discard: Option<stream::DiscardPolicy>,
    allow_direct: bool,
) {
    let held = i64::try_from(info.state.bytes).unwrap_or(i64::MAX);
    let max_bytes = if max_bytes > 0 {
        max_bytes.max(held)
    } else {
        max_bytes
    };
    let discard = discard.unwrap_or(info.config.discard);
    if (
        info.config.max_bytes,
        info.config.discard,
        info.config.allow_direct,
    ) == (max_bytes, discard, allow_direct)
    {
        return;
    }
    let updated = stream::Config {
        max_bytes,
        discard,
        allow_direct,
        ..info.config.clone()
    };
    if let Err(error) = jetstream.update_stream(updated).await {
        tracing::warn!(
            stream = info.config.name,
            max_bytes,
            %error,
            "the stream keeps the limits it has"
        );
    }
}

/// Deletes every stream of the namespace, its accounts' uploads buckets included: for tests
/// and benchmarks that start from nothing, and operators who retire a deployment.
pub async fn remove_namespace(
    jetstream: &jetstream::Context,
    namespace: &Namespace,
) -> Result<(), async_nats::Error> {
    use futures::TryStreamExt as _;
    let uploads_prefix = namespace.uploads_stream_prefix();
    let names: Vec<String> = jetstream.stream_names().try_collect().await?;
    for stream in names
        .into_iter()
        .filter(|name| name.starts_with(&uploads_prefix))
        .chain(namespace.all_streams())
    {
        match jetstream.delete_stream(&stream).await {
            Ok(_) => {}
            // Never created, or removed meanwhile.
            Err(error) if error.to_string().contains("not found") => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLES: [ConsumerRole; 3] = [
        ConsumerRole::Ingest,
        ConsumerRole::Mapper,
        ConsumerRole::Writer,
    ];

    /// The seconds of every "(ack wait N s)" that follows `after` in `text`.
    fn stated_ack_waits(text: &str, after: &str) -> Vec<u64> {
        text.match_indices(after)
            .filter_map(|(at, _)| {
                let rest = text[at + after.len()..].strip_prefix(" (ack wait ")?;
                let (seconds, _) = rest.split_once(" s)")?;
                Some(seconds.parse().expect("whole seconds"))
            })
            .collect()
    }

    /// The AsyncAPI document's table of streams states each durable consumer's ack wait;
    /// operators size their drains by it, so it must be the one the code configures.
    #[test]
    fn the_asyncapi_document_states_the_ack_waits_the_consumers_get() {
        let document = include_str!("../../../docs/asyncapi.yaml");
        for role in ROLES {
            let quoted = format!("`{}`", role.durable_name());
            assert_eq!(
                stated_ack_waits(document, &quoted),
                vec![role.ack_wait().as_secs()],
                "the ack wait docs/asyncapi.yaml states for consumer {quoted}"
            );
        }
    }

    /// Each Kubernetes Deployment's grace period comment names its service's ack wait.
    #[test]
    fn the_kubernetes_manifests_state_the_same_ack_waits() {
        let manifests = [
            (
                ConsumerRole::Ingest,
                include_str!("../../../deploy/k8s/ingest.yaml"),
            ),
            (
                ConsumerRole::Mapper,
                include_str!("../../../deploy/k8s/mapper.yaml"),
            ),
            (
                ConsumerRole::Writer,
                include_str!("../../../deploy/k8s/writer.yaml"),
            ),
        ];
        for (role, manifest) in manifests {
            assert_eq!(
                stated_ack_waits(manifest, "finish"),
                vec![role.ack_wait().as_secs()],
                "the ack wait the {} manifest states",
                role.durable_name()
            );
        }
    }
}
