//! The main flow: a file goes in, contacts come out normalized, with the import's type,
//! category and tags, and row errors that name line, column, value and reason.

use contact_contract::DuplicatePolicy;
use contact_contract::{ImportOptions, ImportState};
use contact_tests::TestSystem;

use crate::options;

const MIXED_FILE: &str = "First Name,last_name,email,mobile,birthday,notes\n\
Anna,Kowalska,Anna.Kowalska@Example.com , 501 234 567,1990-04-12,vip\n\
Jan,Nowak,jan@example.com,+48 602-345-678,12.05.1985,\n\
Piotr,Wójcik,+48 604 567 890,604567890,1979-13-01,phone in the email column\n\
Zofia,\"Wiś\nniewska\",zofia@example.pl,,,\"quoted, with \"\"quotes\"\"\"\n\
Ewa,Bad,ewa@example.com,12,,short phone\n";

#[tokio::test]
async fn a_file_is_imported_with_normalized_values_and_its_options() {
    let system = TestSystem::start().await;
    let mut import_options = options(DuplicatePolicy::Link, &["First Name=first_name"]);
    import_options.contact_type = Some("customer".into());
    import_options.category = Some("retail".into());
    import_options.tags = ["fair".to_string(), "2026".to_string()].into();

    let summary = system.import(MIXED_FILE, import_options).await;

    assert_eq!(summary.status, ImportState::Completed, "{summary:?}");
    assert_eq!(
        (summary.rows_total, summary.created, summary.failed),
        (5, 3, 2)
    );
    assert_eq!(summary.unmapped_columns, vec!["notes".to_string()]);
    let contacts = system.contacts().await;
    assert_eq!(contacts.len(), 3);
    let anna = &contacts[0];
    assert_eq!(anna.attributes["email"], "anna.kowalska@example.com");
    assert_eq!(anna.attributes["mobile"], "+48501234567");
    assert_eq!(anna.attributes["first_name"], "Anna");
    assert_eq!(anna.attributes["birthday"], "1990-04-12");
    assert!(!anna.attributes.contains_key("notes"));
    assert_eq!(anna.contact_type.as_deref(), Some("customer"));
    assert_eq!(anna.category.as_deref(), Some("retail"));
    assert_eq!(anna.tags, vec!["2026".to_string(), "fair".to_string()]);
    assert_eq!(contacts[1].attributes["birthday"], "1985-05-12");
    assert_eq!(
        contacts[2].attributes["last_name"], "Wiś\nniewska",
        "a quoted line break is kept"
    );
    system.stop().await;
}

#[tokio::test]
async fn row_errors_name_the_starting_line_the_column_the_value_and_the_reason() {
    let system = TestSystem::start().await;
    let import_id = system
        .client
        .start_import(
            &system.file("mixed.csv", MIXED_FILE),
            options(DuplicatePolicy::Link, &["First Name=first_name"]),
        )
        .await
        .expect("started");
    let summary = system.wait_for_summary(&system.client, &import_id).await;
    assert_eq!(summary.failed, 2);

    let errors = system.errors(&import_id).await;
    let described: Vec<(u64, Option<&str>, Option<&str>)> = errors
        .iter()
        .map(|error| (error.line, error.column.as_deref(), error.value.as_deref()))
        .collect();
    assert_eq!(
        described,
        vec![
            (4, Some("email"), Some("+48 604 567 890")),
            (4, Some("birthday"), Some("1979-13-01")),
            // Line 5 holds a quoted line break, so Ewa's row starts on line 7.
            (7, Some("mobile"), Some("12")),
        ]
    );
    assert!(
        errors[0].reason.contains("phone number"),
        "{}",
        errors[0].reason
    );
    assert!(errors[1].reason.contains("date"), "{}", errors[1].reason);
    system.stop().await;
}

#[tokio::test]
async fn a_required_value_left_empty_and_a_short_row_fail_only_their_rows() {
    let system = TestSystem::start().await;
    let file = "email,city\n,Kraków\na@example.com,Gdańsk,extra\nb@example.com,Opole\n";
    let import_id = system
        .client
        .start_import(&system.file("required.csv", file), ImportOptions::default())
        .await
        .expect("started");
    let summary = system.wait_for_summary(&system.client, &import_id).await;
    assert_eq!(
        (summary.created, summary.failed, summary.rows_total),
        (1, 2, 3)
    );
    let errors = system.errors(&import_id).await;
    assert_eq!(errors.len(), 2);
    assert_eq!(
        (errors[0].line, errors[0].column.as_deref()),
        (2, Some("email"))
    );
    assert!(
        errors[0].reason.contains("required"),
        "{}",
        errors[0].reason
    );
    assert_eq!((errors[1].line, errors[1].column.as_deref()), (3, None));
    assert!(
        errors[1].reason.contains("3 fields"),
        "{}",
        errors[1].reason
    );
    system.stop().await;
}

#[tokio::test]
async fn a_late_subscriber_replays_the_events_and_the_summary_comes_last() {
    let system = TestSystem::start().await;
    let rows: String = (0..2500)
        .map(|index| format!("user{index}@example.com,City {index}\n"))
        .collect();
    let import_id = system
        .client
        .start_import(
            &system.file("events.csv", format!("email,city\n{rows}")),
            ImportOptions::default(),
        )
        .await
        .expect("started");
    let summary = system.wait_for_summary(&system.client, &import_id).await;
    assert_eq!(summary.created, 2500);

    // Subscribe again after the end: every event is replayed, in order, ending with the summary.
    let mut seen = Vec::new();
    let replayed = system
        .client
        .follow(&import_id, std::time::Duration::from_secs(5), |update| {
            if let contact_import_client::FollowUpdate::Event(event) = update {
                seen.push(event);
            }
        })
        .await
        .expect("replaying");
    assert_eq!(replayed, summary);
    let kinds: Vec<_> = seen.iter().map(|event| event.kind).collect();
    use contact_contract::ImportEventKind::{Progress, Started, Summary};
    assert_eq!(kinds.first(), Some(&Started));
    assert_eq!(kinds.last(), Some(&Summary));
    // Each chunk's reporting lane reads the progress it commits (the message id names the
    // sequence, so a repeat is dropped): at least one comes, and sequences only grow.
    assert!(kinds.contains(&Progress), "{kinds:?}");
    let sequences: Vec<u64> = seen.iter().map(|event| event.sequence).collect();
    assert!(
        sequences.windows(2).all(|pair| pair[0] < pair[1]),
        "replayed in sequence order: {sequences:?}"
    );
    let done: Vec<u64> = seen.iter().map(|event| event.import.rows_total).collect();
    assert!(
        done.windows(2).all(|pair| pair[0] <= pair[1]),
        "progress never goes back: {done:?}"
    );
    system.stop().await;
}

#[tokio::test]
async fn publishing_the_same_request_twice_starts_one_import() {
    let system = TestSystem::start().await;
    let import_id = contact_import_client::Client::new_import_id();
    let request = system
        .client
        .upload(
            &import_id,
            &system.file("twice.csv", "email\na@example.com\nb@example.com\n"),
            ImportOptions::default(),
        )
        .await
        .expect("uploaded");
    system
        .client
        .publish_request(&request)
        .await
        .expect("first publish");
    system
        .client
        .publish_request(&request)
        .await
        .expect("second publish");
    let summary = system.wait_for_summary(&system.client, &import_id).await;
    assert_eq!(summary.created, 2);
    // A repeat after JetStream's duplicate window is past reaches ingest; the writer's
    // record of the import makes it change nothing.
    system.republish_after_dedup_window(&request).await;
    assert_eq!(system.contacts().await.len(), 2);
    assert_eq!(
        system.client.status(&import_id).await.expect("status"),
        summary
    );
    system.stop().await;
}

#[tokio::test]
async fn a_request_waits_in_jetstream_until_an_ingest_replica_runs() {
    let mut system = contact_tests::TestSystem::start_with(contact_tests::Replicas {
        ingest: 0,
        mapper: 1,
        writer: 1,
    })
    .await;
    let import_id = system
        .client
        .start_import(
            &system.file("waiting.csv", "email\nq@example.com\n"),
            ImportOptions::default(),
        )
        .await
        .expect("started");
    let status = system.client.status(&import_id).await.expect("status");
    assert_eq!(status.status, ImportState::Queued);

    system.start_ingest().await.expect("ingest starts");
    let summary = system.wait_for_summary(&system.client, &import_id).await;
    assert_eq!(summary.created, 1);
    system.stop().await;
}

#[tokio::test]
async fn accounts_are_isolated_and_seeded_on_first_use() {
    let system = TestSystem::start().await;
    system
        .import(
            "email,city\nshared@example.com,Kraków\n",
            ImportOptions::default(),
        )
        .await;

    let other_account =
        contact_contract::AccountId::new(format!("{}-other", system.account)).expect("valid");
    let other = system.client_for(&other_account).await;
    let attributes = other.attributes().await.expect("seeded attributes");
    let keys: Vec<&str> = attributes
        .iter()
        .map(|attribute| attribute.key.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "email",
            "mobile",
            "first_name",
            "last_name",
            "company",
            "city",
            "street",
            "postal_code",
            "birthday",
            "external_id"
        ]
    );
    let path = system.file("other.csv", "email,city\nshared@example.com,Gdańsk\n");
    let summary = system
        .import_file(&other, &path, ImportOptions::default())
        .await;
    assert_eq!(
        summary.created, 1,
        "the same email in another account is a new contact"
    );

    let mut theirs = Vec::new();
    other
        .export_contacts(|contact| theirs.push(contact))
        .await
        .expect("export");
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].attributes["city"], "Gdańsk");
    assert_eq!(system.contacts().await[0].attributes["city"], "Kraków");
    system.stop().await;
}
