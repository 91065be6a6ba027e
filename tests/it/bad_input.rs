//! Bad input gets a clear error that names the problem, and the valid rows of a file are
//! never lost because of its bad ones. These go straight to the services (no CLI pre-check).

use contact_contract::DuplicatePolicy;
use contact_contract::{ImportOptions, ImportState, ImportStatus};
use contact_tests::TestSystem;

use crate::options;

async fn rejected(content: &[u8], import_options: ImportOptions) -> (ImportStatus, usize) {
    let system = TestSystem::start().await;
    let summary = system.import(content, import_options).await;
    let contacts = system.contacts().await.len();
    system.stop().await;
    (summary, contacts)
}

fn assert_rejected(summary: &ImportStatus, contacts: usize, expected_words: &[&str]) {
    assert_eq!(summary.status, ImportState::Failed, "{summary:?}");
    assert_eq!(contacts, 0, "nothing is written");
    let error = summary.error.as_deref().expect("a failed import says why");
    for word in expected_words {
        assert!(error.contains(word), "{error:?} should mention {word:?}");
    }
}

#[tokio::test]
async fn a_required_attribute_left_unmapped_fails_the_import_naming_it() {
    let (summary, contacts) = rejected(
        b"first_name,city\nAnna,Krak\xc3\xb3w\n",
        ImportOptions::default(),
    )
    .await;
    assert_rejected(&summary, contacts, &["required", "\"email\""]);
}

#[tokio::test]
async fn a_mapping_to_an_unknown_attribute_and_a_missing_column_are_both_named() {
    let import_options = options(
        DuplicatePolicy::Link,
        &["mail=email", "Surname=surname", "Phone=mobile"],
    );
    let (summary, contacts) =
        rejected(b"mail,Surname\na@example.com,Nowak\n", import_options).await;
    assert_rejected(&summary, contacts, &["\"surname\"", "\"Phone\""]);
}

#[tokio::test]
async fn a_duplicate_column_name_is_named() {
    let (summary, contacts) = rejected(
        b"email,city,City\na@example.com,X,Y\n",
        ImportOptions::default(),
    )
    .await;
    assert_rejected(&summary, contacts, &["city"]);
}

#[tokio::test]
async fn an_empty_file_and_a_header_only_file_say_so() {
    let (summary, contacts) = rejected(b"", ImportOptions::default()).await;
    assert_rejected(&summary, contacts, &["empty"]);
    let (summary, contacts) = rejected(b"email,city\n", ImportOptions::default()).await;
    assert_rejected(&summary, contacts, &["header", "no rows"]);
}

#[tokio::test]
async fn a_binary_file_is_refused_as_not_text() {
    let png = [
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, b'I', b'H', b'D', b'R',
    ];
    let (summary, contacts) = rejected(&png, ImportOptions::default()).await;
    assert_rejected(&summary, contacts, &["not text"]);
}

#[tokio::test]
async fn an_unclosed_quote_fails_its_record_and_the_rows_after_it_are_read() {
    let system = TestSystem::start().await;
    let file = "email,city\na@example.com,Kraków\nb@example.com,\"Gdańsk\nc@example.com,Opole\n";
    let summary = system.import(file, ImportOptions::default()).await;
    assert_eq!(summary.status, ImportState::Completed, "{summary:?}");
    assert_eq!(
        (summary.rows_total, summary.created, summary.failed),
        (3, 2, 1)
    );
    assert_eq!(summary.rows_in_file, Some(3));
    let errors = system.errors(&summary.import_id).await;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].line, 3);
    assert!(errors[0].reason.contains("quote"), "{}", errors[0].reason);
    let emails: Vec<String> = system
        .contacts()
        .await
        .into_iter()
        .map(|contact| contact.attributes["email"].clone())
        .collect();
    assert_eq!(emails, ["a@example.com", "c@example.com"]);
    system.stop().await;
}

#[tokio::test]
async fn an_unreadable_request_is_reported_on_its_import() {
    let system = TestSystem::start().await;
    let import_id = contact_import_client::Client::new_import_id();
    let body = format!(
        r#"{{"account":"{}","import_id":"{import_id}","object_name":"x","options":{{"policy":"merge"}}}}"#,
        system.account
    );
    system.publish_raw_start(&import_id, body).await;
    let summary = system.wait_for_summary(&system.client, &import_id).await;
    assert_eq!(summary.status, ImportState::Failed);
    let error = summary.error.expect("a reason");
    assert!(error.contains("merge"), "{error}");
    system.stop().await;
}
