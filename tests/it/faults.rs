//! Failures mid-import, as an orchestrator's node failure would cause them: a service killed
//! with SIGKILL (the services as child processes) and started again, NATS itself killed and
//! restarted on its store, and the node leading a stream of a three-node JetStream cluster
//! killed. Each time the contact base ends exactly as after an uninterrupted run of the same
//! file, and the import's events still end with its summary.

use std::process::Stdio;
use std::time::Duration;

use async_nats::jetstream;
use contact_contract::{
    AccountId, ImportEvent, ImportEventKind, ImportId, ImportOptions, ImportState, ImportStatus,
};
use contact_import_client::Client;
use contact_tests::{unique, workspace_binary, NatsCluster, NatsServer, Replicas, TestSystem};
use tokio::process::{Child, Command};

fn spawn(system: &TestSystem, service: &str) -> Child {
    Command::new(workspace_binary(service))
        .env("NATS_URL", contact_tests::nats_url())
        .env("DATABASE_URL", &system.database_url)
        .env("CONTACT_IMPORT_NAMESPACE", &system.namespace_name)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|error| panic!("starting {service}: {error}"))
}

/// 20,000 rows, a quarter of them duplicates of earlier ones, some invalid.
pub(super) fn file() -> String {
    let mut file = String::from("email,first_name,city,birthday\n");
    for index in 0..20_000 {
        let person = if index % 4 == 3 { index / 2 } else { index };
        let birthday = if index % 101 == 0 {
            "not a date"
        } else {
            "1990-05-17"
        };
        file.push_str(&format!(
            "p{person}@example.com,Name {index},City {},{birthday}\n",
            index % 37
        ));
    }
    file
}

type Contact = (Vec<(String, String)>, Vec<String>);

async fn contacts_of(client: &Client) -> Vec<Contact> {
    let mut contacts = Vec::new();
    client
        .export_contacts(|contact| {
            contacts.push((contact.attributes.into_iter().collect(), contact.tags));
        })
        .await
        .expect("export");
    contacts.sort();
    contacts
}

pub(super) fn counters(summary: &ImportStatus) -> [u64; 6] {
    [
        summary.rows_total,
        summary.created,
        summary.linked,
        summary.duplicated,
        summary.skipped,
        summary.failed,
    ]
}

/// Waits until `rows` rows are in, and says whether the import is still running then.
async fn still_running_after(
    client: &Client,
    import_id: &contact_contract::ImportId,
    rows: u64,
) -> bool {
    tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let status = client.status(import_id).await.expect("status");
            let done = status.created + status.linked + status.duplicated + status.failed;
            if done >= rows || status.status.is_terminal() {
                return !status.status.is_terminal();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the import makes progress")
}

#[tokio::test]
async fn a_writer_and_a_mapper_killed_mid_import_change_nothing_in_the_result() {
    let system = TestSystem::start_with(Replicas {
        ingest: 0,
        mapper: 0,
        writer: 0,
    })
    .await;
    let mut writer = spawn(&system, "contact-writer");
    let mut mapper = spawn(&system, "contact-mapper");
    let _ingest = spawn(&system, "contact-ingest");
    let path = system.file("people.csv", file());
    let (uninterrupted, calm) = uninterrupted_run(&system, &path).await;

    let import_id = start_and_await_rows(&system, &path, 2_000).await;
    mapper.kill().await.expect("mapper killed");
    mapper = spawn(&system, "contact-mapper");
    assert!(still_running_after(&system.client, &import_id, 8_000).await);
    writer.kill().await.expect("writer killed");
    writer = spawn(&system, "contact-writer");
    let interrupted = system.wait_for_summary(&system.client, &import_id).await;

    assert_same_as_uninterrupted(&system, &import_id, &interrupted, &uninterrupted, &calm).await;
    drop((writer, mapper));
    system.stop().await;
}

/// Starts the import of `path` and waits until `rows` of it are in, the import still
/// running: the moment to strike.
async fn start_and_await_rows(system: &TestSystem, path: &std::path::Path, rows: u64) -> ImportId {
    let import_id = system
        .client
        .start_import(path, fault_options())
        .await
        .expect("started");
    assert!(still_running_after(&system.client, &import_id, rows).await);
    import_id
}

pub(super) fn fault_options() -> ImportOptions {
    ImportOptions {
        tags: ["fault".to_string()].into(),
        ..ImportOptions::default()
    }
}

/// The same file imported without interruption into another account of `system`'s
/// deployment: the reference the interrupted run must equal.
pub(super) async fn uninterrupted_run(
    system: &TestSystem,
    path: &std::path::Path,
) -> (ImportStatus, Client) {
    let calm_account = AccountId::new(unique("calm-")).expect("valid");
    let calm = system.client_for(&calm_account).await;
    let summary = system.import_file(&calm, path, fault_options()).await;
    assert_eq!(summary.status, ImportState::Completed, "{summary:?}");
    (summary, calm)
}

/// Every event the import stored, in the order the stream holds them: read one by one with
/// direct gets, which any replica answers (a consumer would need the stream's leader, which
/// may still be being elected after a node died).
pub(super) async fn stored_events(
    system: &TestSystem,
    client: &Client,
    import_id: &ImportId,
) -> Vec<ImportEvent> {
    system
        .stored_events_of(client.account(), import_id)
        .await
        .expect("the import's events, read within 30 s")
}

/// The data, counters and row errors equal the uninterrupted run's, and whatever order the events were
/// stored in, the summary is the one event with the highest sequence and says what status
/// says.
pub(super) async fn assert_same_as_uninterrupted(
    system: &TestSystem,
    import_id: &ImportId,
    interrupted: &ImportStatus,
    uninterrupted: &ImportStatus,
    calm: &Client,
) {
    assert_same_as_uninterrupted_in(
        system,
        &system.client,
        import_id,
        interrupted,
        uninterrupted,
        calm,
    )
    .await;
}

/// As [`assert_same_as_uninterrupted`], for an import of `client`'s account.
pub(super) async fn assert_same_as_uninterrupted_in(
    system: &TestSystem,
    client: &Client,
    import_id: &ImportId,
    interrupted: &ImportStatus,
    uninterrupted: &ImportStatus,
    calm: &Client,
) {
    assert_eq!(
        interrupted.status,
        ImportState::Completed,
        "{interrupted:?}"
    );
    assert_eq!(counters(interrupted), counters(uninterrupted));
    assert_eq!(counters(interrupted)[0], 20_000);
    let expected = contacts_of(calm).await;
    assert_eq!(expected.len() as u64, uninterrupted.created);
    assert_eq!(contacts_of(client).await, expected);
    let mut expected_errors = Vec::new();
    calm.errors(&uninterrupted.import_id, |error| {
        expected_errors.push(error)
    })
    .await
    .expect("the uninterrupted run's row errors");
    assert_eq!(expected_errors.len() as u64, uninterrupted.failed);
    let mut errors = Vec::new();
    client
        .errors(import_id, |error| errors.push(error))
        .await
        .expect("the interrupted run's row errors");
    assert_eq!(errors, expected_errors);

    // Status can say "completed" a moment before the summary is stored: a writer publishes
    // it after the commit, and retries while a stream leader is being elected.
    let events = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let events = stored_events(system, client, import_id).await;
            if events
                .iter()
                .any(|event| event.kind == ImportEventKind::Summary)
            {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the summary is stored within 30 s of the end");
    let summaries: Vec<&ImportEvent> = events
        .iter()
        .filter(|event| event.kind == ImportEventKind::Summary)
        .collect();
    assert_eq!(
        summaries.len(),
        1,
        "one summary among {} events",
        events.len()
    );
    let summary = summaries[0];
    assert!(
        events
            .iter()
            .filter(|event| event.kind != ImportEventKind::Summary)
            .all(|event| event.sequence < summary.sequence),
        "an event outranks the summary: {:?}",
        events
            .iter()
            .map(|event| (event.sequence, event.kind))
            .collect::<Vec<_>>()
    );
    assert_eq!(counters(&summary.import), counters(interrupted));
}

#[tokio::test]
async fn nats_killed_and_restarted_on_its_store_mid_import_changes_nothing_in_the_result() {
    let mut server = NatsServer::start_open().await;
    let system = TestSystem::start_on(&server.url(), 1).await;
    let path = system.file("people.csv", file());
    let (uninterrupted, calm) = uninterrupted_run(&system, &path).await;

    let import_id = start_and_await_rows(&system, &path, 4_000).await;
    // Killed while chunks are being committed and their events published: some publish is
    // in flight when it dies, and is retried after the restart.
    server.kill().await;
    server.restart().await;
    let interrupted = system.wait_for_summary(&system.client, &import_id).await;

    assert_same_as_uninterrupted(&system, &import_id, &interrupted, &uninterrupted, &calm).await;
    system.stop().await;
}

#[tokio::test]
async fn the_leader_of_the_chunk_stream_killed_in_a_three_node_cluster_changes_nothing() {
    let mut cluster = NatsCluster::start().await;
    let system = TestSystem::start_on(&cluster.urls(), 3).await;
    let path = system.file("people.csv", file());
    let (uninterrupted, calm) = uninterrupted_run(&system, &path).await;

    let jetstream = jetstream::new(system.client.nats().clone());
    let mut chunks = jetstream
        .get_stream(system.namespace.chunks_stream())
        .await
        .expect("the chunk stream");
    let placement = chunks
        .info()
        .await
        .expect("the chunk stream's info")
        .cluster
        .clone();
    let replicas = placement
        .as_ref()
        .map_or(0, |cluster| cluster.replicas.len());
    assert_eq!(replicas, 2, "the leader and two more copies: {placement:?}");
    let leader = placement
        .and_then(|cluster| cluster.leader)
        .expect("the chunk stream has a leader");

    let import_id = start_and_await_rows(&system, &path, 4_000).await;
    cluster.node_named(&leader).kill().await;
    let interrupted = system.wait_for_summary(&system.client, &import_id).await;

    assert_same_as_uninterrupted(&system, &import_id, &interrupted, &uninterrupted, &calm).await;
    // The stream's info may time out while the survivors settle who leads: ask again.
    let new_leader = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Ok(info) = chunks.info().await {
                return info.cluster.clone().and_then(|cluster| cluster.leader);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the chunk stream's info");
    assert!(
        new_leader.as_ref().is_some_and(|name| name != &leader),
        "another node leads the chunk stream: {new_leader:?}"
    );
    system.stop().await;
}
