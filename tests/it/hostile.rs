//! The hostile inputs of the robustness battery, one test each: every valid row arrives, the
//! counts are those of the file, each bad row fails with its line and reason, and the import
//! ends. Inputs are generated, so each test says exactly which rows are good.

use contact_contract::RowError;
use contact_contract::{ImportOptions, ImportState, ImportStatus};
use contact_tests::TestSystem;

struct Imported {
    summary: ImportStatus,
    errors: Vec<RowError>,
    emails: Vec<String>,
}

async fn import(file: Vec<u8>) -> Imported {
    let system = TestSystem::start().await;
    let summary = system.import(file, ImportOptions::default()).await;
    let errors = system.errors(&summary.import_id).await;
    let mut emails: Vec<String> = system
        .contacts()
        .await
        .into_iter()
        .map(|contact| contact.attributes["email"].clone())
        .collect();
    emails.sort();
    system.stop().await;
    Imported {
        summary,
        errors,
        emails,
    }
}

fn rows(range: std::ops::Range<usize>) -> String {
    range
        .map(|index| format!("r{index}@example.com,Kraków\n"))
        .collect()
}

fn emails_of(indices: impl Iterator<Item = usize>) -> Vec<String> {
    let mut emails: Vec<String> = indices
        .map(|index| format!("r{index}@example.com"))
        .collect();
    emails.sort();
    emails
}

/// Completed, with `good` rows created and the single bad one failed on `line` for `reason`.
fn assert_one_bad_row(imported: &Imported, good: usize, line: u64, reason: &str) {
    let summary = &imported.summary;
    assert_eq!(summary.status, ImportState::Completed, "{summary:?}");
    assert_eq!(
        (summary.rows_total, summary.created, summary.failed),
        (good as u64 + 1, good as u64, 1),
        "{summary:?}"
    );
    assert_eq!(imported.errors.len(), 1, "{:?}", imported.errors);
    assert_eq!(imported.errors[0].line, line, "{:?}", imported.errors);
    assert!(
        imported.errors[0].reason.contains(reason),
        "{:?} should say {reason:?}",
        imported.errors[0].reason
    );
}

#[tokio::test]
async fn a_50_mb_line_fails_alone_and_the_rows_after_it_are_read() {
    let mut file = format!("email,city\n{}", rows(0..100)).into_bytes();
    file.extend_from_slice(b"huge@example.com,");
    file.resize(file.len() + 50 * 1024 * 1024, b'x');
    file.push(b'\n');
    file.extend_from_slice(rows(100..200).as_bytes());
    let imported = import(file).await;
    assert_one_bad_row(&imported, 200, 102, "larger than");
    assert_eq!(imported.emails, emails_of(0..200));
}

#[tokio::test]
async fn an_unclosed_quote_on_row_2_costs_that_row_only_of_100_000() {
    let mut file = String::from("email,city\n");
    file.push_str("r0@example.com,Kraków\n");
    file.push_str("broken@example.com,\"Gdańsk\n");
    file.push_str(&rows(1..100_000));
    let imported = import(file.into_bytes()).await;
    assert_one_bad_row(&imported, 100_000, 3, "quote");
    assert_eq!(imported.emails, emails_of(0..100_000));
}

#[tokio::test]
async fn a_10_mb_cell_on_row_12_of_21_fails_that_row_only() {
    let mut file = format!("email,city\n{}", rows(0..11)).into_bytes();
    file.extend_from_slice(b"cell@example.com,");
    file.resize(file.len() + 10 * 1024 * 1024, b'y');
    file.push(b'\n');
    file.extend_from_slice(rows(11..20).as_bytes());
    let imported = import(file).await;
    assert_one_bad_row(&imported, 20, 13, "larger than");
    assert_eq!(imported.emails, emails_of(0..20));
}

#[tokio::test]
async fn one_stray_byte_in_a_utf8_file_fails_its_row_and_keeps_every_letter() {
    let mut file = b"email,city\n".to_vec();
    for index in 0..60 {
        if index == 29 {
            // Line 31 of the file.
            file.extend_from_slice(b"stray@example.com,Zaz\xffolc\n");
        } else {
            file.extend_from_slice(format!("r{index}@example.com,Zażółć gęślą\n").as_bytes());
        }
    }
    let system = TestSystem::start().await;
    let summary = system.import(file, ImportOptions::default()).await;
    assert_eq!(
        (summary.status, summary.created, summary.failed),
        (ImportState::Completed, 59, 1),
        "{summary:?}"
    );
    let errors = system.errors(&summary.import_id).await;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].line, 31);
    assert!(
        errors[0].reason.contains("not valid UTF-8 text (byte 0xFF"),
        "{:?}",
        errors[0]
    );
    let contacts = system.contacts().await;
    assert_eq!(contacts.len(), 59);
    for contact in contacts {
        assert_eq!(contact.attributes["city"], "Zażółć gęślą", "{contact:?}");
    }
    system.stop().await;
}

#[tokio::test]
async fn a_nul_byte_on_row_3_fails_that_row_and_no_other() {
    let mut file = format!("email,city\n{}", rows(0..2)).into_bytes();
    file.extend_from_slice(b"nul@example.com,Kra\0kow\n");
    file.extend_from_slice(rows(2..10).as_bytes());
    let imported = import(file).await;
    assert_one_bad_row(&imported, 10, 4, "cannot be read");
    assert_eq!(imported.emails, emails_of(0..10));
}

#[tokio::test]
async fn a_240_kb_cell_of_control_bytes_past_the_first_128_kib_fails_its_row() {
    // Enough good rows that the bad one lies past what encoding detection looks at.
    let good_before = 6000;
    let mut file = format!("email,city\n{}", rows(0..good_before)).into_bytes();
    assert!(file.len() > 128 * 1024);
    file.extend_from_slice(b"control@example.com,");
    file.extend((0..240 * 1024).map(|index| [0x01u8, 0x02, 0x1b, 0x7f][index % 4]));
    file.push(b'\n');
    file.extend_from_slice(rows(good_before..good_before + 100).as_bytes());
    let imported = import(file).await;
    assert_one_bad_row(
        &imported,
        good_before + 100,
        good_before as u64 + 2,
        // Escaped for JSON, each control byte takes six: the row is cut before validation.
        "too large to import",
    );
    assert_eq!(imported.emails, emails_of(0..good_before + 100));
}

#[tokio::test]
async fn json_is_named_for_what_it_is_and_utf16_without_bom_is_read_as_such() {
    let json = br#"[{"email": "a@example.com"}, {"email": "b@example.com"}]"#.to_vec();
    let imported = import(json).await;
    assert_eq!(imported.summary.status, ImportState::Failed);
    let reason = imported.summary.error.clone().expect("a reason");
    assert!(reason.contains("JSON"), "{reason}");
    assert!(imported.emails.is_empty());

    let utf16: Vec<u8> = "email,city\na@example.com,Łódź\nb@example.com,Opole\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let system = TestSystem::start().await;
    let summary = system.import(utf16, ImportOptions::default()).await;
    assert_eq!(
        (summary.status, summary.created, summary.failed),
        (ImportState::Completed, 2, 0),
        "{summary:?}"
    );
    let mut cities: Vec<String> = system
        .contacts()
        .await
        .into_iter()
        .map(|contact| contact.attributes["city"].clone())
        .collect();
    cities.sort();
    assert_eq!(cities, ["Opole", "Łódź"]);
    system.stop().await;
}

#[tokio::test]
async fn a_start_request_with_an_empty_object_name_fails_at_once() {
    let system = TestSystem::start().await;
    let import_id = contact_import_client::Client::new_import_id();
    let body = format!(
        r#"{{"schema":{},"account":"{}","import_id":"{import_id}","object_name":"","options":{{}}}}"#,
        contact_contract::SCHEMA_VERSION,
        system.account
    );
    system.publish_raw_start(&import_id, body).await;
    let summary = system.wait_for_summary(&system.client, &import_id).await;
    assert_eq!(summary.status, ImportState::Failed, "{summary:?}");
    let reason = summary.error.expect("a reason");
    assert!(reason.contains("object \"\""), "{reason}");
    system.stop().await;
}
