//! Parts that arrive out of order: a chunk validated late (its mapper crashed and another
//! validated it again after the ack wait) reaches the record stream after every chunk that
//! follows it, more of them than the writers hold at once. The import still completes, and
//! exactly as the file says.

use std::collections::{BTreeMap, BTreeSet};

use async_nats::jetstream;
use async_nats::HeaderMap;
use contact_contract::{ConsumerRole, ImportId, ImportOptions, ImportState, ImportStatus};
use contact_tests::{Replicas, TestSystem};

/// Rows of the file: within ingest's window (32,000 rows), so that every chunk is published
/// before any is applied, and fifteen chunks of 2,000 rows.
const ROWS: usize = 30_000;

/// Every tenth row repeats the person of five rows before it, with another name and city.
fn file() -> String {
    let mut file = String::from("email,first_name,city\n");
    for row in 0..ROWS {
        file.push_str(&format!(
            "{},Name {row},City {}\n",
            email_of_row(row),
            row % 41
        ));
    }
    file
}

fn email_of_row(row: usize) -> String {
    let person = if row % 10 == 9 { row - 5 } else { row };
    format!("person{person}@example.com")
}

/// What the file makes under `link`, row by row: the first row of a person creates the
/// contact, a later one links to it and its values replace the earlier ones.
fn expected_contacts() -> (BTreeMap<String, (String, String)>, u64) {
    let mut contacts = BTreeMap::new();
    let mut linked = 0;
    for row in 0..ROWS {
        let values = (format!("Name {row}"), format!("City {}", row % 41));
        if contacts.insert(email_of_row(row), values).is_some() {
            linked += 1;
        }
    }
    (contacts, linked)
}

/// The stream sequence and the message of chunk `wanted` of the namespace's chunk stream.
async fn take_chunk_out(
    stream: &jetstream::stream::Stream,
    wanted: u64,
) -> (String, HeaderMap, Vec<u8>) {
    let info = stream.get_info().await.expect("chunk stream info");
    for sequence in info.state.first_sequence..=info.state.last_sequence {
        let Ok(message) = stream.get_raw_message(sequence).await else {
            continue;
        };
        let body: serde_json::Value =
            serde_json::from_slice(&message.payload).expect("a chunk is JSON");
        if body["chunk_index"].as_u64() == Some(wanted) {
            stream
                .delete_message(sequence)
                .await
                .expect("chunk deleted");
            return (
                message.subject.to_string(),
                message.headers,
                message.payload.to_vec(),
            );
        }
    }
    panic!("chunk {wanted} is not in the chunk stream");
}

#[tokio::test]
async fn a_chunk_validated_after_every_later_chunk_is_applied_and_the_import_completes() {
    let mut system = TestSystem::start_with(Replicas {
        ingest: 1,
        mapper: 0,
        writer: 0,
    })
    .await;
    // One lane transaction at a time: the writer holds five chunks, far fewer than the
    // thirteen that will come before the late one.
    system.writer_concurrency = 1;
    system.start_writer().await.expect("writer started");
    let import_id = system
        .client
        .start_import(&system.file("late.csv", file()), ImportOptions::default())
        .await
        .expect("started");
    status_when(&system, &import_id, |status| status.rows_in_file.is_some()).await;

    // Chunk 1 leaves the stream before any mapper sees it, and comes back once every other
    // chunk is validated and waits for the writer: as a mapper that crashed holding it would
    // leave the record stream.
    let jetstream = jetstream::new(system.client.nats().clone());
    let chunks = jetstream
        .get_stream(system.namespace.chunks_stream())
        .await
        .expect("chunk stream");
    let (subject, headers, payload) = take_chunk_out(&chunks, 1).await;
    system.start_mapper().await.expect("mapper started");
    system.wait_until_settled(ConsumerRole::Mapper).await;
    let status = status_when(&system, &import_id, |status| status.rows_total >= 2000).await;
    assert_eq!(status.status, ImportState::Running, "{status:?}");
    assert_eq!(status.rows_total, 2000, "only chunk 0 can be applied yet");

    // Published again without its message id, which JetStream would take for a repeat.
    let mut republished = HeaderMap::new();
    for (name, values) in headers.iter() {
        if AsRef::<str>::as_ref(name) != "Nats-Msg-Id" {
            for value in values {
                republished.append(name.clone(), value.clone());
            }
        }
    }
    jetstream
        .publish_with_headers(subject, republished, payload.into())
        .await
        .expect("published")
        .await
        .expect("stored");

    let summary = system.wait_for_summary(&system.client, &import_id).await;
    let (expected, linked) = expected_contacts();
    assert_eq!(summary.status, ImportState::Completed, "{summary:?}");
    assert_eq!(summary.rows_total, ROWS as u64);
    assert_eq!(summary.created, expected.len() as u64);
    assert_eq!(summary.linked, linked);
    assert_eq!(summary.failed, 0);

    let contacts = system.contacts().await;
    let stored: BTreeMap<String, (String, String)> = contacts
        .iter()
        .map(|contact| {
            (
                contact.attributes["email"].clone(),
                (
                    contact.attributes["first_name"].clone(),
                    contact.attributes["city"].clone(),
                ),
            )
        })
        .collect();
    assert_eq!(contacts.len(), expected.len(), "no contact twice");
    assert_eq!(stored, expected);

    // Nothing stays parked once the import is over.
    let parked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM parked_lane_parts WHERE account_id = $1 AND import_id = $2",
    )
    .bind(system.client.account().as_str())
    .bind(import_id.as_str())
    .fetch_one(&system.pool)
    .await
    .expect("parked parts counted");
    assert_eq!(parked, 0);
    // Each person holds exactly one email key.
    let keys: Vec<String> = sqlx::query_scalar(
        "SELECT value FROM contact_keys WHERE account_id = $1 AND attribute = 'email'",
    )
    .bind(system.client.account().as_str())
    .fetch_all(&system.pool)
    .await
    .expect("keys read");
    let distinct: BTreeSet<&String> = keys.iter().collect();
    assert_eq!(keys.len(), expected.len(), "one key per contact");
    assert_eq!(distinct.len(), expected.len(), "no key twice");
    system.stop().await;
}

/// The import's status once `condition` holds (within a minute).
async fn status_when(
    system: &TestSystem,
    import_id: &ImportId,
    condition: impl Fn(&ImportStatus) -> bool,
) -> ImportStatus {
    let reached = async {
        loop {
            let status = system.client.status(import_id).await.expect("status");
            if condition(&status) {
                return status;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), reached)
        .await
        .expect("the import reached the state awaited within a minute")
}
