//! Tenants do not wait for each other: small imports in other accounts finish while a large
//! import in one account is still being written.

use contact_contract::{AccountId, ImportOptions, ImportState};
use contact_import_client::FollowUpdate;
use contact_tests::TestSystem;
use tokio::task::JoinSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn small_imports_of_other_accounts_finish_while_a_large_one_runs() {
    let system = TestSystem::start().await;
    let large: String = std::iter::once("email,first_name,city\n".to_string())
        .chain((0..100_000).map(|index| format!("large{index}@example.com,Name {index},City\n")))
        .collect();
    let large_id = system
        .client
        .start_import(&system.file("large.csv", large), ImportOptions::default())
        .await
        .expect("started");
    // The small imports start once the large one is being written.
    let (written, first_rows_written) = tokio::sync::oneshot::channel();
    let mut written = Some(written);
    let following = {
        let client = system.client.clone();
        let large_id = large_id.clone();
        tokio::spawn(async move {
            client
                .follow(&large_id, std::time::Duration::from_secs(5), |update| {
                    if let FollowUpdate::Event(event) = update {
                        if event.import.rows_total > 0 {
                            if let Some(written) = written.take() {
                                let _ = written.send(());
                            }
                        }
                    }
                })
                .await
        })
    };
    first_rows_written
        .await
        .expect("the large import writes rows before it ends");
    let mut small_imports = JoinSet::new();
    for tenant in 0..5 {
        let client = system
            .client_for(
                &AccountId::new(format!("small-{tenant}-{}", system.namespace_name))
                    .expect("valid"),
            )
            .await;
        let path = system.file(
            &format!("small-{tenant}.csv"),
            (0..200)
                .map(|index| format!("s{index}@example.com\n"))
                .fold("email\n".to_string(), |file, row| file + &row),
        );
        small_imports.spawn(async move {
            let import_id = client
                .start_import(&path, ImportOptions::default())
                .await
                .expect("started");
            client
                .follow(&import_id, std::time::Duration::from_secs(5), |_| {})
                .await
                .expect("followed")
        });
    }
    while let Some(summary) = small_imports.join_next().await {
        let summary = summary.expect("a small import");
        assert_eq!(
            (summary.status, summary.created),
            (ImportState::Completed, 200)
        );
    }
    let large_now = system.client.status(&large_id).await.expect("status");
    assert_eq!(
        large_now.status,
        ImportState::Running,
        "every small import finished before the large one: {large_now:?}"
    );
    assert!(large_now.rows_total < 100_000, "{large_now:?}");
    let large_summary = following
        .await
        .expect("the follower")
        .expect("following the large import");
    assert_eq!(large_summary.created, 100_000);
    system.stop().await;
}

/// An account comes into being on its first use, and its first uses may come at once (two
/// replicas of ingest preparing two requests, a client listing attributes): every one of
/// them finds the account with all its standard attributes, never an account half made.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_first_uses_of_an_account_at_once_all_find_its_standard_attributes() {
    let system = TestSystem::start().await;
    let account = AccountId::new(contact_tests::unique("fresh-")).expect("valid");
    let client = system.client_for(&account).await;
    let mut calls = JoinSet::new();
    for _ in 0..8 {
        let client = client.clone();
        calls.spawn(async move { client.attributes().await.expect("attributes") });
    }
    let standard = contact_core::mapping::standard_attributes().len();
    while let Some(attributes) = calls.join_next().await {
        assert_eq!(attributes.expect("the call ran").len(), standard);
    }
    system.stop().await;
}
