//! Duplicate policies against contacts already in the base and within one file, and
//! re-importing a file.

use contact_contract::DuplicatePolicy;
use contact_contract::{ImportOptions, SetAttributeRequest};
use contact_tests::TestSystem;

use crate::{by_email, options};

const FIRST: &str = "email,first_name,city,company\n\
a@example.com,Anna,Kraków,Acme\n\
b@example.com,Bartek,Gdańsk,\n";

const SECOND: &str = "email,first_name,city,company\n\
A@example.com,Anita,,Acme 2\n\
c@example.com,Celina,Opole,\n";

async fn after_two_imports(
    policy: DuplicatePolicy,
) -> (TestSystem, contact_contract::ImportStatus) {
    let system = TestSystem::start().await;
    let mut first = options(DuplicatePolicy::Link, &[]);
    first.tags = ["first".to_string()].into();
    first.contact_type = Some("lead".into());
    system.import(FIRST, first).await;
    let mut second = options(policy, &[]);
    second.tags = ["second".to_string()].into();
    let summary = system.import(SECOND, second).await;
    (system, summary)
}

#[tokio::test]
async fn link_updates_the_match_keeps_empty_cells_and_adds_tags() {
    let (system, summary) = after_two_imports(DuplicatePolicy::Link).await;
    assert_eq!(
        (
            summary.created,
            summary.linked,
            summary.duplicated,
            summary.skipped
        ),
        (1, 1, 0, 0)
    );
    let contacts = system.contacts().await;
    assert_eq!(contacts.len(), 3);
    let anna = contacts
        .iter()
        .find(|contact| contact.attributes["email"] == "a@example.com")
        .expect("a");
    assert_eq!(anna.attributes["first_name"], "Anita");
    assert_eq!(anna.attributes["company"], "Acme 2");
    assert_eq!(
        anna.attributes["city"], "Kraków",
        "an empty cell keeps the old value"
    );
    assert_eq!(anna.tags, vec!["first".to_string(), "second".to_string()]);
    assert_eq!(
        anna.contact_type.as_deref(),
        Some("lead"),
        "no type given: the old one stays"
    );
    system.stop().await;
}

#[tokio::test]
async fn duplicate_creates_a_separate_contact_without_touching_the_match() {
    let (system, summary) = after_two_imports(DuplicatePolicy::Duplicate).await;
    assert_eq!(
        (
            summary.created,
            summary.linked,
            summary.duplicated,
            summary.skipped
        ),
        (1, 0, 1, 0)
    );
    let contacts = system.contacts().await;
    assert_eq!(contacts.len(), 4);
    let named: Vec<(&str, &str)> = contacts
        .iter()
        .filter(|contact| contact.attributes["email"] == "a@example.com")
        .map(|contact| {
            (
                contact.attributes["first_name"].as_str(),
                contact.attributes.get("city").map_or("", String::as_str),
            )
        })
        .collect();
    assert_eq!(named, vec![("Anna", "Kraków"), ("Anita", "")]);
    system.stop().await;
}

#[tokio::test]
async fn skip_leaves_the_match_as_it_is() {
    let (system, summary) = after_two_imports(DuplicatePolicy::Skip).await;
    assert_eq!(
        (
            summary.created,
            summary.linked,
            summary.duplicated,
            summary.skipped
        ),
        (1, 0, 0, 1)
    );
    let contacts = system.contacts().await;
    assert_eq!(contacts.len(), 3);
    let anna = by_email(&contacts)["a@example.com"].clone();
    assert_eq!(anna["first_name"], "Anna");
    assert_eq!(anna["company"], "Acme");
    system.stop().await;
}

#[tokio::test]
async fn a_row_matches_a_contact_made_by_an_earlier_row_of_the_same_file() {
    let system = TestSystem::start().await;
    let file =
        "email,first_name,city\nx@example.com,X1,Kraków\nX@EXAMPLE.COM,X2,\nx@example.com,,Łódź\n";
    let summary = system.import(file, ImportOptions::default()).await;
    assert_eq!((summary.created, summary.linked), (1, 2));
    let contacts = system.contacts().await;
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].attributes["first_name"], "X2");
    assert_eq!(contacts[0].attributes["city"], "Łódź");
    system.stop().await;
}

/// The transaction that last wrote each contact and key row of the account.
async fn row_versions(system: &TestSystem) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT 'contact ' || contact_id || ' ' || xmin::text FROM contacts WHERE account_id = $1
         UNION ALL
         SELECT 'key ' || value || ' ' || xmin::text FROM contact_keys WHERE account_id = $1
         ORDER BY 1",
    )
    .bind(system.account.as_str())
    .fetch_all(&system.pool)
    .await
    .expect("row versions")
}

#[tokio::test]
async fn reimporting_a_file_links_every_row_and_changes_no_data() {
    let system = TestSystem::start().await;
    let first = system.import(FIRST, ImportOptions::default()).await;
    let before = by_email(&system.contacts().await);
    let versions = row_versions(&system).await;
    let again = system.import(FIRST, ImportOptions::default()).await;
    assert_eq!((first.created, again.created, again.linked), (2, 0, 2));
    assert_eq!(by_email(&system.contacts().await), before);
    assert_eq!(
        row_versions(&system).await,
        versions,
        "a link that changes nothing rewrites no contact and no key"
    );
    system.stop().await;
}

#[tokio::test]
async fn matching_on_another_identifier_finds_contacts_by_it() {
    let system = TestSystem::start().await;
    system
        .client
        .set_attribute(SetAttributeRequest {
            key: "external_id".into(),
            required: None,
            identifier: Some(true),
        })
        .await
        .expect("external_id becomes an identifier");
    system
        .import(
            "email,external_id,city\na@example.com,E-1,Kraków\n",
            ImportOptions::default(),
        )
        .await;

    let by_external_id = ImportOptions {
        match_on: vec!["external_id".into()],
        ..ImportOptions::default()
    };
    let summary = system
        .import(
            "email,external_id,city\nnew@example.com,E-1,Gdańsk\n",
            by_external_id,
        )
        .await;
    assert_eq!(summary.linked, 1);
    let contacts = system.contacts().await;
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].attributes["email"], "new@example.com");
    assert_eq!(contacts[0].attributes["city"], "Gdańsk");
    system.stop().await;
}
