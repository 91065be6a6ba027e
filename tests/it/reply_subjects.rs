//! The confused deputy: NATS checks a publish against its sender's permissions, but never the
//! reply subject it names, and the server itself (JetStream's answers, a consumer's
//! deliveries) and the writer (the API's answers) publish there. In the secure deployment a
//! tenant names another tenant's subjects, and JetStream's own API, as the replies of her own
//! requests. Her account is her own: an answer to a request that crossed into the services'
//! account comes back into hers, where none of those subjects reaches anything. Within it she
//! may not ask for anything answered with bytes of her choosing, and the writer answers only
//! on an inbox. The other tenant's import runs exactly as it would have, no stream loses a
//! message, and nothing appears in the other's history.

use std::time::Duration;

use contact_contract::{AccountId, ImportOptions, ImportState, ImportSubjectKind, Namespace};
use contact_import_client::Client;
use contact_tests::{unique, SecureNats, TestSystem};
use contact_writer::AccountAdmission;

use crate::secure::{emails, Probe};

/// The number the writer's metrics give for API requests of `operation` it did not answer
/// because their reply subject was not the caller's inbox.
fn misdirected(operation: &str) -> u64 {
    let labels = format!("operation=\"{operation}\",outcome=\"misdirected\"");
    contact_runtime::metrics::metrics()
        .render()
        .lines()
        .filter(|line| {
            line.starts_with("contact_import_api_requests_total") && line.contains(&labels)
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|count| count as u64)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_naming_anothers_subjects_as_her_replies_changes_nothing_of_the_other() {
    let mallory = AccountId::new(unique("mallory-")).expect("valid");
    let victim = AccountId::new(unique("victim-")).expect("valid");
    let secure = SecureNats::start(&[mallory.clone(), victim.clone()]).await;
    let system = TestSystem::start_secure(&secure, mallory.clone(), AccountAdmission::Open).await;
    let victim_client = system.client_for(&victim).await;
    let namespace = &secure.namespace;
    let mut probe = Probe::connect(&secure, &mallory).await;
    let attacker = probe.client.clone();

    // The victim's next import, and one she never starts, whose ids the attacker is given.
    let victim_import = Client::new_import_id();
    let never_started = Client::new_import_id();
    let victim_subject = |kind, import| namespace.import_subject(kind, &victim, import);
    let targets = [
        victim_subject(ImportSubjectKind::Start, &never_started),
        victim_subject(ImportSubjectKind::Start, &victim_import),
        victim_subject(ImportSubjectKind::Chunks, &victim_import),
        victim_subject(ImportSubjectKind::Records, &victim_import),
        victim_subject(ImportSubjectKind::Control, &victim_import),
        victim_subject(ImportSubjectKind::Events, &victim_import),
    ];

    // Her own bucket holds a request she wrote for the victim's account.
    mallory_client_uploads_a_forged_request(&system, &victim, &never_started).await;
    let uploads = namespace.uploads_stream(&mallory);

    let lent_api = Namespace::tenant_jetstream_api(&mallory);
    // What a tenant in a shared account would aim at: JetStream's own API, whose answers to
    // an acknowledgement's body (`{"stream":…,"seq":…}`) purge or delete.
    let victim_uploads = namespace.uploads_stream(&victim);
    let jetstream_targets: Vec<String> = namespace
        .all_streams()
        .into_iter()
        .chain([victim_uploads.clone()])
        .flat_map(|stream| {
            [
                format!("$JS.API.STREAM.PURGE.{stream}"),
                format!("$JS.API.STREAM.DELETE.{stream}"),
            ]
        })
        .collect();

    // The victim's file is in her bucket before anything happens: what a purge would take.
    let file = system.file(
        "victim.csv",
        "email,first_name\nv1@example.com,Ola\nv2@example.com,Ela\n",
    );
    let request = victim_client
        .upload(&victim_import, &file, ImportOptions::default())
        .await
        .expect("uploading");

    // 1. Asks answered with stored bytes as they are, or delivered wherever she says: refused.
    for (subject, body) in [
        (
            format!("{lent_api}.DIRECT.GET.{uploads}"),
            r#"{"seq":1}"#.to_string(),
        ),
        (
            format!("$JS.API.DIRECT.GET.{uploads}"),
            r#"{"seq":1}"#.to_string(),
        ),
        (
            format!("$JS.API.STREAM.PURGE.{victim_uploads}"),
            "{}".to_string(),
        ),
        (
            format!(
                "{lent_api}.CONSUMER.CREATE.{}.{mallory}_1.{}",
                namespace.events_stream(),
                namespace.import_subject(ImportSubjectKind::Events, &mallory, &victim_import)
            ),
            format!(r#"{{"config":{{"deliver_subject":"{}"}}}}"#, targets[0]),
        ),
    ] {
        attacker
            .publish_with_reply(subject.clone(), targets[0].clone(), body.into())
            .await
            .expect("handed to the connection");
        attacker.flush().await.expect("flushed");
        probe.refused(&subject).await;
    }

    // 2. Her own API, answered on the victim's subjects: the request crosses into the
    // services' account with the server's own reply subject, so the answer goes back into
    // hers (`writer_answers_only_an_inbox` covers a shared account).
    let status_subject = namespace.api_subject(&mallory, contact_contract::ApiOperation::Status);
    for target in targets
        .iter()
        .chain([&namespace.api_subject(&victim, contact_contract::ApiOperation::Status)])
    {
        attacker
            .publish_with_reply(
                status_subject.clone(),
                target.clone(),
                format!(r#"{{"import_id":"{never_started}"}}"#).into(),
            )
            .await
            .expect("handed to the connection");
    }
    attacker.flush().await.expect("flushed");

    // 3. What the server still publishes on a reply subject she names: the acknowledgement of
    // a message stored in her own bucket, and the answer to a reading of it (wrapped in the
    // server's JSON). Aimed at the victim's subjects and at JetStream's API, they come back
    // into her own account.
    for target in targets.iter().chain(&jetstream_targets) {
        let ack = attacker
            .request(
                format!(
                    "$O.{}.C.{}",
                    namespace.uploads_bucket(&mallory),
                    unique("junk")
                ),
                "junk".into(),
            )
            .await;
        assert!(ack.is_ok(), "her own bucket takes her bytes: {ack:?}");
        attacker
            .publish_with_reply(
                format!(
                    "$O.{}.C.{}",
                    namespace.uploads_bucket(&mallory),
                    unique("junk")
                ),
                target.clone(),
                "junk".into(),
            )
            .await
            .expect("handed to the connection");
        attacker
            .publish_with_reply(
                format!("{lent_api}.STREAM.MSG.GET.{uploads}"),
                target.clone(),
                r#"{"seq":1}"#.into(),
            )
            .await
            .expect("handed to the connection");
    }
    attacker.flush().await.expect("flushed");

    // Every stream is there with what it held: her bucket still has the victim's file.
    let services = system.jetstream_as("writer").await;
    for stream in namespace.all_streams() {
        services
            .get_stream(&stream)
            .await
            .unwrap_or_else(|error| panic!("{stream} is still there: {error}"));
    }
    let mut bucket = services
        .get_stream(&victim_uploads)
        .await
        .expect("her bucket is still there");
    let held = bucket.info().await.expect("its state").state.messages;
    assert!(held >= 2, "the file's chunk and description: {held}");

    // The victim starts her import as she always does, and gets exactly her file.
    victim_client
        .publish_request(&request)
        .await
        .expect("starting");
    let summary = system
        .wait_for_summary(&victim_client, &victim_import)
        .await;
    assert_eq!(
        summary.status,
        ImportState::Completed,
        "{:?}",
        summary.error
    );
    assert_eq!(
        (summary.rows_total, summary.created, summary.failed),
        (2, 2, 0)
    );
    let mut written = emails(&victim_client).await;
    written.sort();
    assert_eq!(written, ["v1@example.com", "v2@example.com"]);
    // The import she never started is nowhere, once ingest has handled every request.
    system
        .wait_until_settled(contact_contract::ConsumerRole::Ingest)
        .await;
    assert!(victim_client.status(&never_started).await.is_err());
    let history = victim_client
        .imports(None, 100)
        .await
        .expect("listing her imports");
    let listed: Vec<_> = history.iter().map(|import| &import.import_id).collect();
    assert_eq!(listed, [&victim_import]);
    system.stop().await;
}

/// Where all parties share one account (an open deployment, or one configured by hand), the
/// writer still answers only on an inbox: a request naming another tenant's start subject as
/// its reply gets no answer there, and is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writer_answers_only_an_inbox() {
    let system = TestSystem::start().await;
    let victim = AccountId::new(unique("victim-")).expect("valid");
    let start = system.namespace.import_subject(
        ImportSubjectKind::Start,
        &victim,
        &Client::new_import_id(),
    );
    let status_subject = system
        .namespace
        .api_subject(&system.account, contact_contract::ApiOperation::Status);
    let before = misdirected("import.status");
    let nats = system.client.nats();
    nats.publish_with_reply(
        status_subject,
        start,
        format!(r#"{{"import_id":"{}"}}"#, Client::new_import_id()).into(),
    )
    .await
    .expect("handed to the connection");
    nats.flush().await.expect("flushed");
    let refused = async {
        while misdirected("import.status") <= before {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), refused)
        .await
        .expect("the writer counted the misdirected request");
    system.stop().await;
}

/// Stores, in the attacker's own bucket, the start request she would like the victim's
/// account to run.
async fn mallory_client_uploads_a_forged_request(
    system: &TestSystem,
    victim: &AccountId,
    import: &contact_contract::ImportId,
) {
    let forged = contact_contract::ImportRequest::known_by_subject(victim.clone(), import.clone());
    let file = system.file(
        "forged.json",
        serde_json::to_vec(&forged).expect("serializes"),
    );
    let attacker_import = Client::new_import_id();
    system
        .client
        .upload(&attacker_import, &file, ImportOptions::default())
        .await
        .expect("her own bucket takes her file");
}
