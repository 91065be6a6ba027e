//! Per-tenant bounds: how many imports one account runs at once and how many wait their turn,
//! how large whatever a client sends may be, and removing an attribute.

use std::time::Duration;

use contact_contract::limits::MAX_ENUM_VALUES;
use contact_contract::{AccountId, ImportId, ImportOptions, ImportState, ImportStatus};
use contact_contract::{AttributeDef, AttributeType};
use contact_tests::{unique, Replicas, TestSystem};

use crate::refusal;

/// Waits until `import_id`'s status satisfies `condition`, and returns it.
async fn status_until(
    client: &contact_import_client::Client,
    import_id: &ImportId,
    condition: impl Fn(&ImportStatus) -> bool,
) -> ImportStatus {
    let mut last = None;
    let reached = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let status = client.status(import_id).await.expect("status");
            if condition(&status) {
                return status;
            }
            last = Some(status);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    reached.unwrap_or_else(|_| panic!("{import_id} never reached the awaited status: {last:?}"))
}

#[tokio::test]
async fn an_account_at_its_running_limit_queues_further_imports_in_order_and_refuses_beyond() {
    // No mapper: the admitted imports stay running until one is started.
    let mut system = TestSystem::start_with(Replicas {
        mapper: 0,
        writer: 0,
        ..Replicas::default()
    })
    .await;
    system.running_per_account = 2;
    system.queued_per_account = 3;
    system.start_writer().await.expect("writer");
    let start = |name: String| {
        let path = system.file(
            &format!("{name}.csv"),
            format!("email\n{name}@example.com\n"),
        );
        let client = system.client.clone();
        async move {
            client
                .start_import(&path, ImportOptions::default())
                .await
                .expect("started")
        }
    };
    let mut imports = Vec::new();
    for index in 0..5 {
        imports.push(start(format!("burst{index}")).await);
    }
    // Two run; three wait, each knowing its own place (requests handled at the same moment
    // by concurrent ingest slots take their places in the order they reach the writer).
    let mut running = 0;
    let mut places = Vec::new();
    for import_id in &imports {
        let status = status_until(&system.client, import_id, |status| {
            status.status == ImportState::Running
                || status
                    .waiting_for
                    .as_deref()
                    .is_some_and(|waiting| waiting.starts_with("its turn"))
        })
        .await;
        match status.status {
            ImportState::Running => running += 1,
            _ => {
                let waiting = status.waiting_for.expect("what it waits for");
                let place = (1..=3)
                    .find(|place| waiting.contains(&format!("number {place} in its queue")))
                    .unwrap_or_else(|| panic!("no place in {waiting:?}"));
                places.push(place);
            }
        }
    }
    assert_eq!(running, 2, "{places:?}");
    places.sort();
    assert_eq!(places, [1, 2, 3]);

    // The queue is full: one more fails at once, naming why.
    let refused = start("refused".to_string()).await;
    let refused = system.wait_for_summary(&system.client, &refused).await;
    assert_eq!(refused.status, ImportState::Failed, "{refused:?}");
    let reason = refused.error.expect("a reason");
    assert!(
        reason.contains("already runs 2 imports") && reason.contains("3 more wait"),
        "{reason}"
    );

    // Another account is not held up by this one's queue.
    let other = system
        .client_for(&AccountId::new(unique("other-")).expect("valid"))
        .await;
    let path = system.file("other.csv", "email\nother@example.com\n");
    let other_import = other
        .start_import(&path, ImportOptions::default())
        .await
        .expect("started");
    status_until(&other, &other_import, |status| {
        status.status == ImportState::Running
    })
    .await;

    // With a mapper, the running ones finish and the waiting ones take their turn.
    system.start_mapper().await.expect("mapper");
    for import_id in &imports {
        let summary = system.wait_for_summary(&system.client, import_id).await;
        assert_eq!(
            (summary.status, summary.created),
            (ImportState::Completed, 1),
            "{summary:?}"
        );
    }
    let mut emails: Vec<String> = system
        .contacts()
        .await
        .into_iter()
        .filter_map(|contact| contact.attributes.get("email").cloned())
        .collect();
    emails.sort();
    let expected: Vec<String> = (0..5)
        .map(|index| format!("burst{index}@example.com"))
        .collect();
    assert_eq!(emails, expected);
    system.stop().await;
}

#[tokio::test]
async fn sizes_a_client_controls_are_bounded_and_named() {
    let system = TestSystem::start().await;
    let long_tag = ImportOptions {
        tags: ["t".repeat(100_000)].into(),
        ..ImportOptions::default()
    };
    let summary = system.import("email\na@example.com\n", long_tag).await;
    assert_eq!(summary.status, ImportState::Failed, "{summary:?}");
    let reason = summary.error.expect("a reason");
    assert!(reason.contains("a tag is 100000 characters"), "{reason}");
    assert!(system.contacts().await.is_empty());

    let huge_enum = |key: &str, width: usize| AttributeDef {
        key: key.into(),
        label: key.into(),
        attribute_type: AttributeType::Enum {
            values: (0..MAX_ENUM_VALUES)
                .map(|index| format!("{index:0>width$}"))
                .collect(),
        },
        required: false,
        identifier: false,
    };
    let refused = system
        .client
        .add_attribute(huge_enum("too_long", 600))
        .await
        .expect_err("values over the length limit");
    assert!(
        refused.to_string().contains("an allowed value is 600"),
        "{refused}"
    );
    system
        .client
        .add_attribute(huge_enum("first", 150))
        .await
        .expect("within every limit");
    let refused = system
        .client
        .add_attribute(huge_enum("second", 150))
        .await
        .expect_err("the catalog would outgrow its byte limit");
    assert!(refused.to_string().contains("bytes"), "{refused}");
    // The account still works: its catalog fits in a reply.
    let keys: Vec<String> = system
        .client
        .attributes()
        .await
        .expect("listed")
        .into_iter()
        .map(|attribute| attribute.key)
        .collect();
    assert!(keys.contains(&"first".to_string()) && !keys.contains(&"second".to_string()));
    system.stop().await;
}

#[tokio::test]
async fn a_removed_attribute_leaves_no_value_behind() {
    let system = TestSystem::start().await;
    system
        .client
        .add_attribute(AttributeDef {
            key: "loyalty_id".into(),
            label: "Loyalty id".into(),
            attribute_type: AttributeType::Text,
            required: false,
            identifier: true,
        })
        .await
        .expect("added");
    let summary = system
        .import(
            "email,loyalty_id,city\na@example.com,L1,Opole\nb@example.com,L2,Gdańsk\n",
            ImportOptions::default(),
        )
        .await;
    assert_eq!(summary.created, 2, "{summary:?}");
    system
        .client
        .remove_attribute("loyalty_id".into())
        .await
        .expect("removed");
    let contacts = system.contacts().await;
    assert_eq!(contacts.len(), 2);
    for contact in &contacts {
        assert!(
            !contact.attributes.contains_key("loyalty_id"),
            "{contact:?}"
        );
        assert!(contact.attributes.contains_key("city"), "{contact:?}");
    }
    let again = system
        .client
        .remove_attribute("loyalty_id".into())
        .await
        .expect_err("already gone");
    assert!(
        again.to_string().contains("no attribute \"loyalty_id\""),
        "{again}"
    );
    // A file that still has the column now names it as unmapped, not as an attribute.
    let summary = system
        .import(
            "email,loyalty_id\nc@example.com,L3\n",
            ImportOptions::default(),
        )
        .await;
    assert_eq!(summary.created, 1, "{summary:?}");
    assert_eq!(summary.unmapped_columns, ["loyalty_id"]);
    system.stop().await;
}

#[tokio::test]
async fn pages_of_large_failed_rows_are_cut_by_size_and_lose_none() {
    let system = TestSystem::start().await;
    // 400 failing rows of about 4 KB each: 1.6 MB, past one NATS payload in one page.
    let mut file = String::from("email,city,birthday\n");
    for index in 0..400 {
        file.push_str(&format!(
            "p{index}@example.com,{},not a date {index}\n",
            "c".repeat(4000)
        ));
    }
    let summary = system.import(file, ImportOptions::default()).await;
    assert_eq!((summary.created, summary.failed), (0, 400), "{summary:?}");
    let mut lines = Vec::new();
    system
        .client
        .failed_rows(&summary.import_id, |item| {
            if let contact_import_client::FailedRowsItem::Row(row) = item {
                assert_eq!(row.fields[1].len(), 4000);
                lines.push(row.line);
            }
        })
        .await
        .expect("every page fits in a reply");
    let expected: Vec<u64> = (2..402).collect();
    assert_eq!(lines, expected);
    system.stop().await;
}

/// A CSV file of `rows` contacts of `prefix`, about 30 bytes a row.
fn contacts_of(prefix: &str, rows: usize) -> String {
    let mut file = String::from("email,city\n");
    for row in 0..rows {
        file.push_str(&format!("{prefix}{row:04}@example.com,Gdańsk\n"));
    }
    file
}

#[tokio::test]
async fn a_tenant_over_its_upload_quota_is_refused_before_sending_and_another_is_not() {
    use contact_contract::limits::UploadLimits;
    use contact_contract::ApiErrorKind;
    let mut system = TestSystem::start_with(Replicas {
        writer: 0,
        ..Replicas::default()
    })
    .await;
    // Its bucket, as an earlier writer made it: without this deployment's limit.
    let jetstream = async_nats::jetstream::new(
        async_nats::connect(system.nats.url.as_str())
            .await
            .expect("NATS"),
    );
    contact_contract::ensure_uploads_bucket(&jetstream, &system.namespace, &system.account, None)
        .await
        .expect("an older bucket");
    system.upload_limits = UploadLimits {
        max_file_bytes: 4096,
        bytes_per_account: Some(8192),
        files_per_account: None,
    };
    system.start_writer().await.expect("writer");

    // Over the file limit: refused by name before a byte is sent.
    let large = system.file("large.csv", contacts_of("l", 200));
    let (kind, message) = refusal(
        system
            .client
            .start_import(&large, ImportOptions::default())
            .await,
    );
    assert_eq!(kind, ApiErrorKind::InvalidRequest);
    assert!(
        message.contains("over the 4.0 KiB one file may have"),
        "{message}"
    );

    // Two files of 3 KiB fit in 8 KiB; the third does not.
    for round in 0..2 {
        let summary = system
            .import(
                contacts_of(&format!("a{round}-"), 100),
                ImportOptions::default(),
            )
            .await;
        assert_eq!(summary.status, ImportState::Completed, "{summary:?}");
    }
    let third = system.file("third.csv", contacts_of("a2-", 100));
    let (kind, message) = refusal(
        system
            .client
            .start_import(&third, ImportOptions::default())
            .await,
    );
    assert_eq!(kind, ApiErrorKind::Conflict);
    assert!(message.contains("of the 8.0 KiB it may keep"), "{message}");
    // The bucket the older writer made now has the deployment's limit.
    let mut stream = jetstream
        .get_stream(system.namespace.uploads_stream(&system.account))
        .await
        .expect("the bucket's stream");
    let info = stream.info().await.expect("info");
    assert_eq!(info.config.max_bytes, 8192);

    // Another tenant of the same deployment imports as ever.
    let other = AccountId::new(unique("other-")).expect("valid");
    let other_client = system.client_for(&other).await;
    let file = system.file("other.csv", contacts_of("b-", 100));
    let import = other_client
        .start_import(&file, ImportOptions::default())
        .await
        .expect("the other tenant uploads");
    let summary = system.wait_for_summary(&other_client, &import).await;
    assert_eq!(
        (summary.status, summary.created),
        (ImportState::Completed, 100)
    );
}

/// The file-size limit holds for a client that announces no size (or a wrong one): ingest
/// reads the size of what was uploaded and fails the import, naming both sizes, before a row
/// is read; a file within the limit goes through.
#[tokio::test]
async fn a_file_over_the_limit_uploaded_without_its_size_fails_at_ingest_with_the_sizes() {
    use contact_contract::limits::UploadLimits;
    let mut system = TestSystem::start_with(Replicas {
        writer: 0,
        ..Replicas::default()
    })
    .await;
    system.upload_limits = UploadLimits {
        max_file_bytes: 4096,
        ..UploadLimits::default()
    };
    system.start_writer().await.expect("writer");
    let silent_upload = |content: String| {
        let client = system.client.clone();
        async move {
            let import_id = contact_import_client::Client::new_import_id();
            let request = client
                .upload_from(
                    &import_id,
                    std::io::Cursor::new(content.into_bytes()),
                    None,
                    Some("silent.csv".into()),
                    ImportOptions::default(),
                )
                .await
                .expect("uploaded: no size was announced");
            client.publish_request(&request).await.expect("started");
            import_id
        }
    };
    let large = silent_upload(contacts_of("big-", 200)).await;
    let summary = system.wait_for_summary(&system.client, &large).await;
    assert_eq!(summary.status, ImportState::Failed, "{summary:?}");
    let reason = summary.error.expect("a reason");
    assert!(
        reason.contains("over the 4.0 KiB one file may have"),
        "{reason}"
    );
    assert_eq!(summary.rows_total, 0, "no row of it was read");

    let small = silent_upload(contacts_of("small-", 10)).await;
    let summary = system.wait_for_summary(&system.client, &small).await;
    assert_eq!(
        (summary.status, summary.created),
        (ImportState::Completed, 10)
    );
    system.stop().await;
}

/// What one account may keep is bounded in files too: with room for two, a third upload is
/// refused before it is sent, naming the count, and another tenant uploads as ever.
#[tokio::test]
async fn a_tenant_keeping_its_most_files_is_refused_another_upload_and_another_is_not() {
    use contact_contract::limits::UploadLimits;
    use contact_contract::ApiErrorKind;
    let mut system = TestSystem::start_with(Replicas {
        writer: 0,
        ..Replicas::default()
    })
    .await;
    system.upload_limits = UploadLimits {
        files_per_account: Some(2),
        ..UploadLimits::default()
    };
    system.start_writer().await.expect("writer");
    for round in 0..2 {
        let summary = system
            .import(
                contacts_of(&format!("f{round}-"), 5),
                ImportOptions::default(),
            )
            .await;
        assert_eq!(summary.status, ImportState::Completed, "{summary:?}");
    }
    let third = system.file("third.csv", contacts_of("f2-", 5));
    let (kind, message) = refusal(
        system
            .client
            .start_import(&third, ImportOptions::default())
            .await,
    );
    assert_eq!(kind, ApiErrorKind::Conflict);
    assert!(
        message.contains("keeps 2 uploaded files, the most it may keep at once (2)"),
        "{message}"
    );
    let other = system
        .client_for(&AccountId::new(unique("other-")).expect("valid"))
        .await;
    let file = system.file("other.csv", contacts_of("o-", 5));
    let import = other
        .start_import(&file, ImportOptions::default())
        .await
        .expect("the other tenant uploads");
    let summary = system.wait_for_summary(&other, &import).await;
    assert_eq!(
        (summary.status, summary.created),
        (ImportState::Completed, 5)
    );
    system.stop().await;
}
