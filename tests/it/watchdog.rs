//! Nothing waits forever: an import that makes no progress says what it waits for, and the
//! watchdog ends it with that reason.

use std::time::Duration;

use contact_contract::{ImportOptions, ImportState};
use contact_tests::{Replicas, TestSystem};

#[tokio::test]
async fn an_import_without_progress_says_what_it_waits_for_and_is_ended() {
    // No mapper, so no chunk is ever validated.
    let mut system = TestSystem::start_with(Replicas {
        mapper: 0,
        writer: 0,
        ..Replicas::default()
    })
    .await;
    system.stall_seconds = 3;
    system.start_writer().await.expect("writer");
    let path = system.file("stuck.csv", "email\na@example.com\nb@example.com\n");
    let import_id = system
        .client
        .start_import(&path, ImportOptions::default())
        .await
        .expect("started");
    let waiting = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let status = system.client.status(&import_id).await.expect("status");
            if status.status == ImportState::Running && status.rows_in_file.is_some() {
                break status;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the import runs");
    let waiting_for = waiting
        .waiting_for
        .expect("a running import says what it waits for");
    assert_eq!(waiting_for, "chunk 1 of 1 to be validated and written");

    let summary = system.wait_for_summary(&system.client, &import_id).await;
    assert_eq!(summary.status, ImportState::Failed, "{summary:?}");
    let reason = summary.error.expect("a reason");
    assert!(
        reason.contains("no progress for 3 seconds while waiting for chunk 1 of 1"),
        "{reason}"
    );
    assert!(
        summary.waiting_for.is_none(),
        "an ended import waits for nothing"
    );
    assert!(system.contacts().await.is_empty());
    system.stop().await;
}
