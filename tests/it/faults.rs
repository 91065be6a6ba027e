//! A service killed mid-import, as an orchestrator's node failure would: the services run as
//! child processes, one is killed with SIGKILL while the import runs and started again, and
//! the contact base ends exactly as after an uninterrupted run of the same file.

use std::process::Stdio;
use std::time::Duration;

use contact_contract::{AccountId, ImportOptions, ImportState, ImportStatus};
use contact_import::Client;
use contact_tests::{unique, workspace_binary, Replicas, TestSystem};
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
fn file() -> String {
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

fn counters(summary: &ImportStatus) -> [u64; 6] {
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
    let options = || ImportOptions {
        tags: ["fault".to_string()].into(),
        ..ImportOptions::default()
    };

    let calm_account = AccountId::new(unique("calm-")).expect("valid");
    let calm = system.client_for(&calm_account).await;
    let uninterrupted = system.import_file(&calm, &path, options()).await;
    assert_eq!(uninterrupted.status, ImportState::Completed);

    let import_id = system
        .client
        .start_import(&path, options())
        .await
        .expect("started");
    assert!(still_running_after(&system.client, &import_id, 2_000).await);
    mapper.kill().await.expect("mapper killed");
    mapper = spawn(&system, "contact-mapper");
    assert!(still_running_after(&system.client, &import_id, 8_000).await);
    writer.kill().await.expect("writer killed");
    writer = spawn(&system, "contact-writer");
    let interrupted = system.wait_for_summary(&system.client, &import_id).await;

    assert_eq!(
        interrupted.status,
        ImportState::Completed,
        "{interrupted:?}"
    );
    assert_eq!(counters(&interrupted), counters(&uninterrupted));
    assert_eq!(counters(&interrupted)[0], 20_000);
    let expected = contacts_of(&calm).await;
    assert_eq!(expected.len() as u64, uninterrupted.created);
    assert_eq!(contacts_of(&system.client).await, expected);
    drop((writer, mapper));
    system.stop().await;
}
