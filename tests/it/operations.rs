//! What operators see: the HTTP endpoint of every service (/healthz, /readyz following the
//! service's connection to NATS, /metrics counting a real import), and one trace per import
//! carried by every message of it.

use std::net::SocketAddr;
use std::time::Duration;

use contact_contract::{
    ensure_streams, remove_namespace, ConsumerRole, ImportOptions, ImportState, ImportSubjectKind,
    Namespace, TraceParent, TRACEPARENT_HEADER,
};
use contact_tests::{unique, NatsServer, TestSystem};
use futures::StreamExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The status code and body of `GET path` (HTTP/1.1, one request per connection).
async fn get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connecting to the service's HTTP endpoint");
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("an answer within 10 s")
    .expect("a readable answer");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Asks `GET path` until the answer satisfies `wanted` (within 30 s), and returns its body.
async fn get_until(address: SocketAddr, path: &str, wanted: impl Fn(u16, &str) -> bool) -> String {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let (status, body) = get(address, path).await;
            if wanted(status, &body) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{path} never answered as awaited"))
}

/// The value of the sample `name{labels}` in a Prometheus text body.
fn sample(metrics: &str, name_and_labels: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {name_and_labels} in:\n{metrics}"))
}

#[tokio::test]
async fn each_service_says_it_lives_is_ready_while_nats_is_there_and_counts_its_work() {
    let mut server = NatsServer::start_open().await;
    let mut system = TestSystem::start_on(&server.url(), 1).await;
    system.serve_http = true;
    system.start_writer().await.expect("writer");
    system.start_mapper().await.expect("mapper");
    system.start_ingest().await.expect("ingest");
    let endpoints = system.http_addrs.clone();
    assert_eq!(
        endpoints
            .iter()
            .map(|(service, _)| *service)
            .collect::<Vec<_>>(),
        ["writer", "mapper", "ingest"]
    );
    for (service, address) in &endpoints {
        assert_eq!(get(*address, "/healthz").await.0, 200, "{service}");
        assert_eq!(get(*address, "/readyz").await.0, 200, "{service}");
        assert_eq!(get(*address, "/nothing").await.0, 404, "{service}");
    }

    let mut file = String::from("email,first_name\n");
    for index in 0..300 {
        if index % 10 == 0 {
            file.push_str(&format!("+48 600 000 {index:03},Phone {index}\n"));
        } else {
            file.push_str(&format!("m{index}@example.com,Name {index}\n"));
        }
    }
    let path = system.file("metrics.csv", file);
    let summary = system
        .import_file(&system.client, &path, ImportOptions::default())
        .await;
    assert_eq!(summary.status, ImportState::Completed, "{summary:?}");
    assert_eq!((summary.created, summary.failed), (270, 30));

    // Other tests may share this process's counters: at least this import's work is there.
    // The summary goes out before its message is settled: wait for the last ack to count.
    let (_, writer) = endpoints[0];
    let last_ack =
        r#"contact_import_messages_total{disposition="ack",kind="records",service="writer"}"#;
    let metrics = get_until(writer, "/metrics", |status, body| {
        status == 200 && body.lines().any(|line| line.starts_with(last_ack))
    })
    .await;
    assert!(
        sample(
            &metrics,
            r#"contact_import_rows_total{outcome="created",service="writer"}"#
        ) >= 270.0
    );
    assert!(
        sample(
            &metrics,
            r#"contact_import_rows_total{outcome="failed",service="writer"}"#
        ) >= 30.0
    );
    assert!(
        sample(
            &metrics,
            r#"contact_import_rows_total{outcome="invalid",service="mapper"}"#
        ) >= 30.0
    );
    assert!(
        sample(
            &metrics,
            r#"contact_import_rows_total{outcome="read",service="ingest"}"#
        ) >= 300.0
    );
    assert!(
        sample(
            &metrics,
            r#"contact_import_messages_total{disposition="ack",kind="records",service="writer"}"#
        ) >= 1.0
    );
    assert!(
        sample(
            &metrics,
            r#"contact_import_handler_seconds_count{kind="chunks",service="mapper"}"#
        ) >= 1.0
    );
    assert_eq!(
        sample(
            &metrics,
            r#"contact_import_consumer_pending{consumer="writer"}"#
        ),
        0.0,
        "nothing left for the writer"
    );
    // The API per operation, as the client's import used it, and what the process is.
    assert!(
        sample(
            &metrics,
            r#"contact_import_api_requests_total{operation="import.upload",outcome="ok"}"#
        ) >= 1.0
    );
    assert!(
        sample(
            &metrics,
            r#"contact_import_api_seconds_count{operation="import.upload"}"#
        ) >= 1.0
    );
    assert_eq!(
        sample(
            &metrics,
            &format!(
                r#"contact_import_build_info{{service="writer",version="{}"}}"#,
                env!("CARGO_PKG_VERSION")
            )
        ),
        1.0
    );
    assert!(sample(&metrics, "process_resident_memory_bytes") > 0.0);
    // This writer counts its own namespace: the one import has ended.
    assert_eq!(sample(&metrics, "contact_import_imports_running"), 0.0);

    server.kill().await;
    for (service, address) in &endpoints {
        let reason = get_until(*address, "/readyz", |status, _| status == 503).await;
        assert!(reason.contains("NATS"), "{service}: {reason}");
        assert_eq!(get(*address, "/healthz").await.0, 200, "{service}");
    }
    server.restart().await;
    for (_, address) in &endpoints {
        get_until(*address, "/readyz", |status, _| status == 200).await;
    }
    system.stop().await;
}

#[tokio::test]
async fn every_message_of_an_import_carries_the_trace_its_client_started() {
    let system = TestSystem::start().await;
    let nats = system.client.nats().clone();
    // Everything published in the test's namespace, by kind (core NATS sees JetStream's too).
    let kinds = [
        ImportSubjectKind::Start,
        ImportSubjectKind::Chunks,
        ImportSubjectKind::Records,
        ImportSubjectKind::Control,
        ImportSubjectKind::Events,
    ];
    let mut subscriptions = Vec::new();
    for kind in kinds {
        let subscriber = nats
            .subscribe(system.namespace.import_wildcard(kind))
            .await
            .expect("subscribed");
        subscriptions.push((kind, subscriber));
    }
    nats.flush().await.expect("subscriptions in place");

    let mut file = String::from("email\n");
    for index in 0..2_500 {
        file.push_str(&format!("traced{index}@example.com\n"));
    }
    let path = system.file("traced.csv", file);
    let summary = system
        .import_file(&system.client, &path, ImportOptions::default())
        .await;
    assert_eq!(summary.status, ImportState::Completed, "{summary:?}");

    // At least: the request; a chunk and its records; accepted and finished; started and
    // the summary.
    let mut traces = Vec::new();
    for (kind, subscriber) in &mut subscriptions {
        let least = match kind {
            ImportSubjectKind::Start | ImportSubjectKind::Chunks | ImportSubjectKind::Records => 1,
            _ => 2,
        };
        for _ in 0..least {
            let message = tokio::time::timeout(Duration::from_secs(10), subscriber.next())
                .await
                .unwrap_or_else(|_| panic!("no {kind:?} message"))
                .expect("subscription open");
            let header = message
                .headers
                .as_ref()
                .and_then(|headers| headers.get(TRACEPARENT_HEADER))
                .unwrap_or_else(|| panic!("a {kind:?} message without traceparent"));
            let trace = TraceParent::parse(header.as_str())
                .unwrap_or_else(|| panic!("{kind:?}: malformed {header:?}"));
            traces.push((*kind, trace));
        }
    }
    let (_, request) = traces[0];
    for (kind, trace) in &traces {
        assert_eq!(
            trace.trace_id(),
            request.trace_id(),
            "{kind:?} is of another trace"
        );
    }
    // Each service publishes from a span of its own.
    let chunk = traces
        .iter()
        .find(|(kind, _)| *kind == ImportSubjectKind::Chunks)
        .expect("a chunk")
        .1;
    assert_ne!(chunk.parent_id(), request.parent_id());
    system.stop().await;
}

/// Streams an earlier version made without a size limit (or with another) are brought to the
/// namespace's limit as the services start, and a full one refuses new messages rather than
/// dropping a request or a chunk nobody handled; only events make room.
#[tokio::test]
async fn streams_an_earlier_version_made_are_brought_to_the_size_limit() {
    use async_nats::jetstream::stream::DiscardPolicy;
    let nats = async_nats::connect(contact_tests::nats_url())
        .await
        .expect("NATS");
    let jetstream = async_nats::jetstream::new(nats);
    let unlimited = Namespace::new(&unique("m")).expect("valid");
    let earlier = async_nats::jetstream::stream::Config {
        name: unlimited.requests_stream(),
        subjects: vec![unlimited.import_wildcard(ImportSubjectKind::Start)],
        ..Default::default()
    };
    jetstream
        .create_stream(earlier)
        .await
        .expect("a stream as an earlier version made it");
    let limited = unlimited.with_stream_max_bytes(1 << 20);
    ensure_streams(&jetstream, &limited).await.expect("streams");
    for (stream, discard) in [
        (limited.requests_stream(), DiscardPolicy::New),
        (limited.chunks_stream(), DiscardPolicy::New),
        (limited.records_stream(), DiscardPolicy::New),
        (limited.events_stream(), DiscardPolicy::Old),
    ] {
        let mut handle = jetstream.get_stream(&stream).await.expect("stream");
        let config = handle.info().await.expect("info").config.clone();
        assert_eq!(
            (config.max_bytes, config.discard),
            (1 << 20, discard),
            "{stream}"
        );
    }
    // Past its limit, a stream refuses the publish, and keeps what it holds.
    let subject = limited.import_subject(
        ImportSubjectKind::Start,
        &contact_contract::AccountId::new("acme").expect("valid"),
        &contact_contract::ImportId::new("big").expect("valid"),
    );
    let payload = vec![b'x'; 300 * 1024];
    let mut refused = None;
    for _ in 0..5 {
        let acked = async {
            jetstream
                .publish(subject.clone(), payload.clone().into())
                .await?
                .await
        };
        if let Err(error) = acked.await {
            refused = Some(error.to_string());
            break;
        }
    }
    let refused = refused.expect("a full stream refuses the publish");
    assert!(refused.contains("maximum bytes"), "{refused}");
    let mut requests = jetstream
        .get_stream(limited.requests_stream())
        .await
        .expect("stream");
    assert_eq!(requests.info().await.expect("info").state.messages, 3);
    remove_namespace(&jetstream, &limited)
        .await
        .expect("removed");
}

/// A deployment upgraded in place finds the durable consumers an earlier version made: each
/// service brings its consumer to the current limits as it starts, instead of running on
/// the old ones (an ingest consumer left at 256 pending requests would stall every account
/// once 256 requests wait in their queues).
#[tokio::test]
async fn a_consumer_an_earlier_version_made_is_brought_to_the_current_limits() {
    let nats = async_nats::connect(contact_tests::nats_url())
        .await
        .expect("NATS");
    let jetstream = async_nats::jetstream::new(nats);
    let namespace = Namespace::new(&unique("u")).expect("valid");
    ensure_streams(&jetstream, &namespace)
        .await
        .expect("streams");
    for role in [
        ConsumerRole::Ingest,
        ConsumerRole::Mapper,
        ConsumerRole::Writer,
    ] {
        let stream = jetstream
            .get_stream(role.stream(&namespace))
            .await
            .expect("stream");
        let earlier = async_nats::jetstream::consumer::pull::Config {
            durable_name: Some(role.durable_name().to_string()),
            ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            max_deliver: -1,
            max_ack_pending: 100,
            ..Default::default()
        };
        stream
            .get_or_create_consumer::<async_nats::jetstream::consumer::pull::Config>(
                role.durable_name(),
                earlier,
            )
            .await
            .expect("the earlier consumer");

        let mut consumer = role
            .consumer(&jetstream, &namespace)
            .await
            .expect("the consumer, at start");
        let config = &consumer.info().await.expect("info").config;
        assert_eq!(
            (config.max_ack_pending, config.ack_wait),
            (role.max_ack_pending(), role.ack_wait()),
            "{role:?}"
        );
    }
    remove_namespace(&jetstream, &namespace)
        .await
        .expect("removed");
}
