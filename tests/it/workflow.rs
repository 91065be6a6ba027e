//! The steps around an import: the sample file, a dry run, the error file round trip, and
//! cancelling a running import.

use std::time::Duration;

use contact_contract::DuplicatePolicy;
use contact_contract::{ImportOptions, ImportState, ImportStatus};
use contact_import_client::FollowUpdate;
use contact_tests::TestSystem;

use crate::{by_email, options};

#[tokio::test]
async fn the_template_imports_unchanged_with_no_failed_row() {
    let system = TestSystem::start().await;
    system
        .client
        .add_attribute(contact_contract::AttributeDef {
            key: "segment".into(),
            label: "Segment".into(),
            attribute_type: contact_contract::AttributeType::Enum {
                values: vec!["gold".into(), "silver".into()],
            },
            required: true,
            identifier: false,
        })
        .await
        .expect("segment added");
    let template = system.client.template().await.expect("template");
    let header = template.csv.lines().next().expect("a header");
    assert!(
        header.starts_with("email,segment,"),
        "required attributes first: {header}"
    );
    let summary = system.import(&template.csv, ImportOptions::default()).await;
    assert_eq!(
        (summary.status, summary.created, summary.failed),
        (ImportState::Completed, 1, 0),
        "{summary:?}"
    );
    assert!(summary.unmapped_columns.is_empty());
    system.stop().await;
}

fn counters(status: &ImportStatus) -> (u64, u64, u64, u64, u64, u64) {
    (
        status.rows_total,
        status.created,
        status.linked,
        status.duplicated,
        status.skipped,
        status.failed,
    )
}

#[tokio::test]
async fn a_dry_run_reports_what_the_real_run_does_and_writes_nothing() {
    let system = TestSystem::start().await;
    system
        .import(
            "email,city\na@example.com,Kraków\nb@example.com,Gdańsk\n",
            ImportOptions::default(),
        )
        .await;
    let before = by_email(&system.contacts().await);
    // Spread over several chunks and every lane, so that later chunks see what earlier ones
    // would create.
    let mut file = String::from("email,city,birthday\n");
    for index in 0..7500 {
        file.push_str(&format!(
            "p{}@example.com,City {index},{}\n",
            index % 1700,
            if index % 97 == 0 {
                "not a date"
            } else {
                "1990-01-02"
            }
        ));
    }
    file.push_str("a@example.com,Opole,\nb@example.com,,2000-02-30\n");
    let path = system.file("second.csv", &file);

    let dry = system
        .import_file(
            &system.client,
            &path,
            ImportOptions {
                dry_run: true,
                ..ImportOptions::default()
            },
        )
        .await;
    assert!(dry.dry_run);
    assert_eq!(dry.status, ImportState::Completed);
    assert_eq!(
        by_email(&system.contacts().await),
        before,
        "a dry run writes no contact"
    );

    let import_id = system
        .client
        .start_import(&path, ImportOptions::default())
        .await
        .expect("started");
    let real = system.wait_for_summary(&system.client, &import_id).await;
    assert_eq!(counters(&dry), counters(&real));
    // 1700 emails over 7500 rows; every 97th row (78 of them) and the last one fail.
    let failed_emails: std::collections::BTreeSet<usize> =
        (0..7500).filter(|index| index % 97 == 0).collect();
    let created = (0..1700)
        .filter(|email| {
            (0..7500)
                .filter(|index| index % 1700 == *email)
                .any(|index| !failed_emails.contains(&index))
        })
        .count() as u64;
    assert_eq!(
        counters(&real),
        (7502, created, 7502 - created - 79, 0, 0, 79)
    );
    let dry_errors = system.errors(&dry.import_id).await;
    assert_eq!(dry_errors, system.errors(&import_id).await);
    assert_eq!(system.contacts().await.len() as u64, 2 + created);
    system.stop().await;
}

#[tokio::test]
async fn a_running_import_can_be_cancelled_and_its_counters_match_what_was_written() {
    let system = TestSystem::start().await;
    // Large enough that the import is still running when the first progress event arrives.
    const ROWS: u64 = 150_000;
    let mut file = String::from("email,city\n");
    for index in 0..ROWS {
        file.push_str(&format!("person{index}@example.com,City {}\n", index % 50));
    }
    let path = system.file("large.csv", &file);
    let import_id = system
        .client
        .start_import(&path, ImportOptions::default())
        .await
        .expect("started");

    // Cancel as soon as some rows are in.
    let client = system.client.clone();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let mut started_tx = Some(started_tx);
    let follower = {
        let import_id = import_id.clone();
        tokio::spawn(async move {
            client
                .follow(&import_id, Duration::from_secs(5), |update| {
                    if let FollowUpdate::Event(event) = update {
                        if event.import.rows_total > 0 {
                            if let Some(sender) = started_tx.take() {
                                let _ = sender.send(());
                            }
                        }
                    }
                })
                .await
        })
    };
    tokio::time::timeout(Duration::from_secs(60), started_rx)
        .await
        .expect("rows arrive")
        .expect("signalled");
    let cancelled = system.client.cancel(&import_id).await.expect("cancelled");
    assert_eq!(cancelled.status, ImportState::Cancelled);
    let summary = follower.await.expect("follower").expect("summary");
    assert_eq!(summary.status, ImportState::Cancelled);
    assert!(
        summary.rows_total < ROWS,
        "cancelled before the end: {summary:?}"
    );

    // Chunks still in flight are dropped: nothing changes after the summary.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let contacts = system.contacts().await.len() as u64;
    assert_eq!(contacts, summary.created);
    assert_eq!(
        system.client.status(&import_id).await.expect("status"),
        summary
    );
    let again = system
        .client
        .cancel(&import_id)
        .await
        .expect_err("already cancelled");
    assert!(again.to_string().contains("already cancelled"), "{again}");
    system.stop().await;
}

#[tokio::test]
async fn failed_rows_come_back_as_they_stood_and_import_again_once_fixed() {
    let system = TestSystem::start().await;
    let file = "E-mail,Telefon,Urodziny,Uwagi\n\
ok@example.com,+48 501 234 567,1990-01-01,=SUM(A1)\n\
+48 601 111 222,+48 601 111 222,1990-01-01,phone in email\n\
bad@example.com,+48 602 222 333,1990-13-13,@bad date\n";
    let import_options = options(
        DuplicatePolicy::Link,
        &["E-mail=email", "Telefon=mobile", "Urodziny=birthday"],
    );
    let import_id = system
        .client
        .start_import(&system.file("first.csv", file), import_options.clone())
        .await
        .expect("started");
    let summary = system.wait_for_summary(&system.client, &import_id).await;
    assert_eq!((summary.created, summary.failed), (1, 2));

    let mut items = Vec::new();
    system
        .client
        .failed_rows(&import_id, |item| items.push(item))
        .await
        .expect("failed rows");
    let rows: Vec<_> = items
        .into_iter()
        .filter_map(|item| match item {
            contact_import_client::FailedRowsItem::Row(row) => Some(row),
            contact_import_client::FailedRowsItem::Header(header) => {
                assert_eq!(header, ["E-mail", "Telefon", "Urodziny", "Uwagi"]);
                None
            }
        })
        .collect();
    assert_eq!(
        rows.iter().map(|row| row.line).collect::<Vec<_>>(),
        vec![3, 4]
    );
    assert_eq!(
        rows[0].fields,
        [
            "+48 601 111 222",
            "+48 601 111 222",
            "1990-01-01",
            "phone in email"
        ]
    );
    assert_eq!(rows[1].errors[0].column.as_deref(), Some("Urodziny"));

    // The error file, written by the CLI, fixed by a person and imported again.
    let errors_path = system.scratch_path("failed.csv");
    crate::cli::run_cli(
        &system,
        &[
            "errors",
            import_id.as_str(),
            "-o",
            errors_path.to_str().expect("utf-8"),
        ],
    )
    .await;
    let written = std::fs::read_to_string(&errors_path).expect("error file");
    assert!(
        written.contains("'+48 601 111 222"),
        "formula-like cells are neutralized: {written}"
    );
    assert!(written.contains("'@bad date"), "{written}");
    let fixed = written
        .replacen("'+48 601 111 222,'+48", "fixed@example.com,'+48", 1)
        .replace("1990-13-13", "1990-12-13");
    let fixed_path = system.file("fixed.csv", fixed);
    let again = system
        .import_file(&system.client, &fixed_path, import_options)
        .await;
    assert_eq!((again.created, again.failed), (2, 0), "{again:?}");
    assert_eq!(
        again.unmapped_columns,
        ["Uwagi", "line", "column", "reason"]
    );
    let contacts = by_email(&system.contacts().await);
    assert_eq!(contacts["fixed@example.com"]["mobile"], "+48601111222");
    assert_eq!(contacts["bad@example.com"]["birthday"], "1990-12-13");
    system.stop().await;
}
