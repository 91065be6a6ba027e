//! Pipeline messages that can never be handled: the import they belong to fails with a reason
//! that says so, instead of waiting forever for the chunk it lost.

use std::time::Duration;

use contact_contract::ValidRecord;
use contact_contract::{
    ConsumerRole, ImportId, ImportOptions, ImportState, ImportSubjectKind, ValidatedChunk,
    SCHEMA_VERSION,
};
use contact_tests::{Replicas, TestSystem};

/// Publishes `body` on one of the import's pipeline subjects, as a broken or foreign producer
/// would.
async fn publish_raw(
    system: &TestSystem,
    import_id: &ImportId,
    kind: ImportSubjectKind,
    body: &str,
) {
    let jetstream = async_nats::jetstream::new(system.client.nats().clone());
    let subject = system
        .namespace
        .import_subject(kind, system.client.account(), import_id);
    jetstream
        .publish(subject, body.to_string().into())
        .await
        .expect("published")
        .await
        .expect("stored");
}

/// A body that names its subject's import, as only a service writes one, but that holds
/// nothing else of what its kind needs.
fn named_but_unreadable(system: &TestSystem, import_id: &ImportId) -> String {
    serde_json::json!({
        "account": system.client.account(),
        "import_id": import_id,
        "broken": true,
    })
    .to_string()
}

async fn wait_for_state(system: &TestSystem, import_id: &ImportId, state: ImportState) {
    let reached = async {
        loop {
            let status = system.client.status(import_id).await.expect("status");
            if status.status == state {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), reached)
        .await
        .unwrap_or_else(|_| panic!("import {import_id} did not become {state:?}"));
}

/// Starts an import of `content` with no mapper running: the writer registers it as running
/// and its chunks wait in JetStream until [`TestSystem::start_mapper`].
async fn running_import_without_mapper(content: &str) -> (TestSystem, ImportId) {
    let system = TestSystem::start_with(Replicas {
        ingest: 1,
        mapper: 0,
        writer: 1,
    })
    .await;
    let import_id = system
        .client
        .start_import(
            &system.file("running.csv", content),
            ImportOptions::default(),
        )
        .await
        .expect("started");
    wait_for_state(&system, &import_id, ImportState::Running).await;
    (system, import_id)
}

/// The import ended failed with a reason containing `expected`; then the service that was
/// not running (`missing`) starts, and once every service has handled what waited for it,
/// nothing was written and the import did not change.
async fn assert_failed_and_nothing_follows(
    mut system: TestSystem,
    import_id: &ImportId,
    expected: &str,
    missing: ConsumerRole,
) {
    let summary = system.wait_for_summary(&system.client, import_id).await;
    assert_eq!(summary.status, ImportState::Failed);
    let reason = summary.error.clone().unwrap_or_default();
    assert!(reason.contains(expected), "{reason}");
    assert_eq!(summary.rows_total, 0);
    match missing {
        ConsumerRole::Ingest => system.start_ingest().await.expect("ingest starts"),
        ConsumerRole::Mapper => system.start_mapper().await.expect("mapper starts"),
        ConsumerRole::Writer => system.start_writer().await.expect("writer starts"),
    }
    for role in [
        ConsumerRole::Ingest,
        ConsumerRole::Mapper,
        ConsumerRole::Writer,
    ] {
        system.wait_until_settled(role).await;
    }
    assert!(system.contacts().await.is_empty());
    assert_eq!(
        system.client.status(import_id).await.expect("status"),
        summary
    );
    system.stop().await;
}

#[tokio::test]
async fn an_unreadable_chunk_fails_its_queued_import_and_ingest_then_skips_it() {
    let system = TestSystem::start_with(Replicas {
        ingest: 0,
        mapper: 1,
        writer: 1,
    })
    .await;
    let import_id = system
        .client
        .start_import(
            &system.file("queued.csv", "email\nq@example.com\n"),
            ImportOptions::default(),
        )
        .await
        .expect("started");
    let body = named_but_unreadable(&system, &import_id);
    publish_raw(&system, &import_id, ImportSubjectKind::Chunks, &body).await;
    // The request still waiting for ingest then finds its import over and writes nothing.
    assert_failed_and_nothing_follows(system, &import_id, "cannot be read", ConsumerRole::Ingest)
        .await;
}

#[tokio::test]
async fn an_unreadable_message_fails_a_running_import_and_later_chunks_change_nothing() {
    let (system, import_id) =
        running_import_without_mapper("email\na@example.com\nb@example.com\n").await;
    let body = named_but_unreadable(&system, &import_id);
    publish_raw(&system, &import_id, ImportSubjectKind::Records, &body).await;
    // The waiting chunks arrive after the import ended: they are dropped.
    assert_failed_and_nothing_follows(system, &import_id, "cannot be read", ConsumerRole::Mapper)
        .await;
}

#[tokio::test]
async fn a_body_that_names_no_import_is_dropped_and_the_import_it_landed_on_completes() {
    let (mut system, import_id) =
        running_import_without_mapper("email\na@example.com\nb@example.com\n").await;
    // What the server publishes on a subject a tenant named as the reply of her own request:
    // an acknowledgement, an API answer; and bodies naming another import or nothing.
    let other_import = serde_json::json!({
        "account": system.client.account(),
        "import_id": "someone-elses",
        "broken": true,
    })
    .to_string();
    for (kind, body) in [
        (
            ImportSubjectKind::Records,
            r#"{"stream":"OBJ_CI_UPLOADS_x","seq":2}"#,
        ),
        (
            ImportSubjectKind::Control,
            r#"{"type":"io.nats.jetstream.api.v1.stream_info_response"}"#,
        ),
        (ImportSubjectKind::Chunks, "not json"),
        (ImportSubjectKind::Records, other_import.as_str()),
    ] {
        publish_raw(&system, &import_id, kind, body).await;
    }
    system.start_mapper().await.expect("mapper starts");
    let summary = system.wait_for_summary(&system.client, &import_id).await;
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
    assert_eq!(system.contacts().await.len(), 2);
    system.stop().await;
}

#[tokio::test]
async fn a_chunk_the_database_refuses_fails_its_import_with_the_reason() {
    let (system, import_id) =
        running_import_without_mapper("email,city\na@example.com,Kraków\n").await;
    // A chunk that reads well but holds a NUL character, which PostgreSQL cannot store:
    // applying it can never succeed, however often it is tried.
    let poisoned = ValidatedChunk {
        schema: SCHEMA_VERSION,
        account: system.client.account().clone(),
        import_id: import_id.clone(),
        chunk_index: 0,
        lanes: (0..contact_core::lanes::LANES)
            .map(|lane| {
                if lane > 0 {
                    return Vec::new();
                }
                vec![ValidRecord {
                    line: 2,
                    values: [
                        ("email".to_string(), "a@example.com".to_string()),
                        ("city".to_string(), "Kra\0ków".to_string()),
                    ]
                    .into(),
                }]
            })
            .collect(),
        errors: Vec::new(),
        failed: Vec::new(),
        end_offset: 0,
    };
    let body = serde_json::to_string(&poisoned).expect("encoded");
    publish_raw(&system, &import_id, ImportSubjectKind::Records, &body).await;
    assert_failed_and_nothing_follows(
        system,
        &import_id,
        "chunk 0 of the file could not be written",
        ConsumerRole::Mapper,
    )
    .await;
}
