//! Import history, undo, exports filtered by import, tag, type and category, and repeated
//! files: through the client library and the real CLI.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use contact_contract::DuplicatePolicy;
use contact_contract::{
    ApiErrorKind, ContactFilter, ExportedContact, ImportId, ImportOptions, ImportState,
    ImportStatus, UndoConflict, UndoField,
};
use contact_contract::{AttributeDef, AttributeType};
use contact_tests::{Replicas, TestSystem};

use crate::cli::{cli, run_cli, stderr, stdout};
use crate::refusal;

/// A contact as undo must give it back: id, values, type, category and tags (times left out:
/// a restored contact was written again).
type Snapshot = BTreeMap<
    i64,
    (
        BTreeMap<String, String>,
        Option<String>,
        Option<String>,
        BTreeSet<String>,
    ),
>;

fn snapshot(contacts: &[ExportedContact]) -> Snapshot {
    contacts
        .iter()
        .map(|contact| {
            (
                contact.id,
                (
                    contact.attributes.clone(),
                    contact.contact_type.clone(),
                    contact.category.clone(),
                    contact.tags.iter().cloned().collect(),
                ),
            )
        })
        .collect()
}

fn link(contact_type: Option<&str>, category: Option<&str>, tags: &[&str]) -> ImportOptions {
    ImportOptions {
        policy: DuplicatePolicy::Link,
        contact_type: contact_type.map(str::to_string),
        category: category.map(str::to_string),
        tags: tags.iter().map(|tag| tag.to_string()).collect(),
        ..ImportOptions::default()
    }
}

fn completed(status: &ImportStatus) {
    assert_eq!(status.status, ImportState::Completed, "{status:?}");
}

fn by_email(contacts: &[ExportedContact], email: &str) -> ExportedContact {
    contacts
        .iter()
        .find(|contact| contact.attributes.get("email").map(String::as_str) == Some(email))
        .unwrap_or_else(|| panic!("no contact {email}"))
        .clone()
}

#[tokio::test]
async fn undoing_an_import_gives_back_exactly_the_contacts_it_found() {
    let system = TestSystem::start().await;
    // An identifier besides email: the undo must put its duplicate keys back too.
    system
        .client
        .add_attribute(AttributeDef {
            key: "customer_no".into(),
            label: "Customer number".into(),
            attribute_type: AttributeType::Text,
            required: false,
            identifier: true,
        })
        .await
        .expect("attribute added");
    let first = system
        .import(
            "email,first_name,city,customer_no\n\
             a1@example.com,Anna,Gdańsk,C-1\n\
             a2@example.com,Bob,Gdynia,C-2\n\
             a3@example.com,Cyd,Sopot,\n\
             a4@example.com,Dan,,C-4\n",
            link(Some("lead"), Some("spring"), &["a"]),
        )
        .await;
    completed(&first);
    let after_first = snapshot(&system.contacts().await);
    assert_eq!(after_first.len(), 4);

    let second = system
        .import(
            "email,city,company,customer_no\n\
             a1@example.com,Kraków,ACME,C-100\n\
             a2@example.com,Gdynia,,\n\
             n1@example.com,Łódź,NewCo,C-200\n\
             a3@example.com,,Foo,\n\
             n2@example.com,,,\n",
            link(Some("customer"), Some("autumn"), &["b"]),
        )
        .await;
    completed(&second);
    assert_eq!((second.linked, second.created), (3, 2), "{second:?}");
    let after_second = system.contacts().await;
    assert_eq!(after_second.len(), 6);
    let changed = by_email(&after_second, "a1@example.com");
    assert_eq!(changed.attributes["city"], "Kraków");
    assert_eq!(changed.contact_type.as_deref(), Some("customer"));

    let report = system
        .client
        .undo(&second.import_id, |_| {})
        .await
        .expect("undone");
    assert_eq!(report.status, ImportState::Undone);
    assert_eq!(
        (
            report.contacts_removed,
            report.contacts_restored,
            report.contacts_kept,
            report.conflicts
        ),
        (2, 3, 0, 0),
        "{report:?}"
    );
    assert_eq!(snapshot(&system.contacts().await), after_first);
    let status = system
        .client
        .status(&second.import_id)
        .await
        .expect("status");
    assert_eq!(status.status, ImportState::Undone);

    // The keys are as after the first import: C-1 finds its contact again, while B's C-100
    // and the removed contact's C-200 find nothing.
    let by_number = system
        .import(
            "email,customer_no\nd1@example.com,C-1\nd2@example.com,C-100\nd3@example.com,C-200\n",
            ImportOptions {
                match_on: vec!["customer_no".into()],
                ..link(None, None, &[])
            },
        )
        .await;
    completed(&by_number);
    assert_eq!(
        (by_number.linked, by_number.created),
        (1, 2),
        "{by_number:?}"
    );
}

#[tokio::test]
async fn a_field_changed_after_the_import_survives_its_undo_and_is_reported() {
    let system = TestSystem::start().await;
    completed(
        &system
            .import(
                "email,city\nx@example.com,Gdańsk\ny@example.com,Gdynia\n",
                link(None, None, &[]),
            )
            .await,
    );
    let undone = system
        .import(
            "email,city,company\nx@example.com,Kraków,ACME\nz@example.com,Sopot,\n",
            link(Some("customer"), None, &["b"]),
        )
        .await;
    completed(&undone);
    // A later import changes a value and the type the undone import set, and the contact
    // it created.
    completed(
        &system
            .import(
                "email,city\nx@example.com,Poznań\nz@example.com,Łódź\n",
                link(Some("partner"), None, &[]),
            )
            .await,
    );
    let before_undo = system.contacts().await;
    let x_id = by_email(&before_undo, "x@example.com").id;
    let z_id = by_email(&before_undo, "z@example.com").id;

    let output = run_cli(&system, &["undo", undone.import_id.as_str(), "--json"]).await;
    let reply: serde_json::Value = serde_json::from_str(output.trim()).expect("one JSON object");
    assert_eq!(reply["status"], "undone", "{reply}");
    assert_eq!(reply["contacts_restored"], 1, "{reply}");
    assert_eq!(reply["contacts_removed"], 0, "{reply}");
    assert_eq!(reply["contacts_kept"], 1, "{reply}");
    let kept: Vec<UndoConflict> =
        serde_json::from_value(reply["kept"].clone()).expect("the kept fields");
    let conflict = |contact_id,
                    field,
                    attribute: Option<&str>,
                    current: Option<&str>,
                    imported: Option<&str>| UndoConflict {
        contact_id,
        field,
        attribute: attribute.map(str::to_string),
        current: current.map(str::to_string),
        imported: imported.map(str::to_string),
    };
    assert_eq!(
        kept,
        vec![
            conflict(
                x_id,
                UndoField::Attribute,
                Some("city"),
                Some("Poznań"),
                Some("Kraków")
            ),
            conflict(
                x_id,
                UndoField::Type,
                None,
                Some("partner"),
                Some("customer")
            ),
            conflict(z_id, UndoField::Contact, None, None, None),
        ]
    );

    let after = system.contacts().await;
    let x = by_email(&after, "x@example.com");
    assert_eq!(x.attributes.get("city").map(String::as_str), Some("Poznań"));
    assert_eq!(
        x.attributes.get("company"),
        None,
        "the import's own value goes"
    );
    assert_eq!(x.contact_type.as_deref(), Some("partner"));
    assert!(x.tags.is_empty(), "{:?}", x.tags);
    let z = by_email(&after, "z@example.com");
    assert_eq!(z.attributes.get("city").map(String::as_str), Some("Łódź"));
    assert_eq!(after.len(), 3);

    // Undoing it again is refused, with the reason.
    let output = cli(&system, &["undo", undone.import_id.as_str()]).await;
    assert!(!output.status.success(), "a second undo is refused");
    assert!(stderr(&output).contains("already"), "{}", stderr(&output));
}

#[tokio::test]
async fn undo_is_refused_for_a_running_import_a_dry_run_and_an_undone_import() {
    // No mapper: an import stays running until one starts.
    let mut system = TestSystem::start_with(Replicas {
        mapper: 0,
        ..Replicas::default()
    })
    .await;
    let path = system.file("held.csv", "email\nheld@example.com\n");
    let held = system
        .client
        .start_import(&path, ImportOptions::default())
        .await
        .expect("started");
    tokio::time::timeout(Duration::from_secs(60), async {
        while system.client.status(&held).await.expect("status").status != ImportState::Running {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the held import runs");
    let (kind, message) = refusal(system.client.undo_step(&held).await);
    assert_eq!(kind, ApiErrorKind::Conflict);
    assert!(message.contains("is running"), "{message}");

    system.start_mapper().await.expect("mapper");
    completed(&system.wait_for_summary(&system.client, &held).await);

    let dry_run = system
        .import(
            "email\nd@example.com\n",
            ImportOptions {
                dry_run: true,
                ..ImportOptions::default()
            },
        )
        .await;
    completed(&dry_run);
    let (kind, message) = refusal(system.client.undo_step(&dry_run.import_id).await);
    assert_eq!(kind, ApiErrorKind::Conflict);
    assert!(message.contains("dry run"), "{message}");

    let report = system.client.undo(&held, |_| {}).await.expect("undone");
    assert_eq!(report.contacts_removed, 1);
    let (kind, message) = refusal(system.client.undo_step(&held).await);
    assert_eq!(kind, ApiErrorKind::Conflict);
    assert!(message.contains("undone already"), "{message}");

    let unknown = ImportId::new("no-such-import").expect("valid");
    let (kind, _) = refusal(system.client.undo_step(&unknown).await);
    assert_eq!(kind, ApiErrorKind::NotFound);
    assert!(system.contacts().await.is_empty());
}

#[tokio::test]
async fn undo_of_an_import_still_queued_is_refused_as_not_ended() {
    // No ingest: the start request waits in its stream.
    let system = TestSystem::start_with(Replicas {
        ingest: 0,
        ..Replicas::default()
    })
    .await;
    let path = system.file(
        "queued.csv",
        "email
q@example.com
",
    );
    let queued = system
        .client
        .start_import(&path, ImportOptions::default())
        .await
        .expect("started");
    assert_eq!(
        system.client.status(&queued).await.expect("status").status,
        ImportState::Queued
    );
    let (kind, message) = refusal(system.client.undo_step(&queued).await);
    assert_eq!(kind, ApiErrorKind::Conflict);
    assert!(message.contains("is queued"), "{message}");
}

#[tokio::test]
async fn an_undo_interrupted_halfway_and_resumed_ends_as_one_uninterrupted_undo() {
    let system = TestSystem::start().await;
    let originals: String = (0..30)
        .map(|index| format!("o{index}@example.com,Gdańsk\n"))
        .collect();
    completed(
        &system
            .import(
                format!("email,city\n{originals}"),
                link(Some("lead"), None, &["a"]),
            )
            .await,
    );
    let after_first = snapshot(&system.contacts().await);
    // Links 20 of them with a new city and creates 25.
    let rows: String = (0..20)
        .map(|index| format!("o{index}@example.com,Kraków\n"))
        .chain((0..25).map(|index| format!("n{index}@example.com,Łódź\n")))
        .collect();
    let second = system
        .import(
            format!("email,city\n{rows}"),
            link(Some("customer"), None, &["b"]),
        )
        .await;
    completed(&second);
    assert_eq!((second.linked, second.created), (20, 25));

    // Four batches of seven, then the undo stops as a crash would stop it: three batches
    // restore the 20 linked contacts, the fourth removes 7 created ones.
    contact_writer::begin_undo(&system.pool, &system.account, &second.import_id)
        .await
        .expect("undo begun");
    let done =
        contact_writer::run_undo_batches(&system.pool, &system.account, &second.import_id, 7, 4)
            .await
            .expect("batches");
    assert!(!done);
    let halfway = system.contacts().await;
    assert_eq!(halfway.len(), 30 + 25 - 7);
    let undoing = system
        .client
        .imports(Some(ImportState::Undoing), 10)
        .await
        .expect("listed");
    assert_eq!(
        undoing
            .iter()
            .map(|import| &import.import_id)
            .collect::<Vec<_>>(),
        vec![&second.import_id]
    );

    // Calling undo goes on from there.
    let report = system
        .client
        .undo(&second.import_id, |_| {})
        .await
        .expect("undone");
    assert_eq!(report.status, ImportState::Undone);
    assert_eq!(
        (
            report.contacts_removed,
            report.contacts_restored,
            report.conflicts
        ),
        (25, 20, 0)
    );
    assert_eq!(snapshot(&system.contacts().await), after_first);
    // Once more changes nothing.
    assert!(contact_writer::run_undo_batches(
        &system.pool,
        &system.account,
        &second.import_id,
        7,
        4
    )
    .await
    .expect("batches"));
    assert_eq!(snapshot(&system.contacts().await), after_first);
}

#[tokio::test]
async fn imports_list_shows_the_newest_first_with_counters_and_filters_by_status() {
    let system = TestSystem::start().await;
    let first = system
        .import(
            "email\na@example.com\nb@example.com\n",
            link(None, None, &[]),
        )
        .await;
    let second = system
        .import(
            "email\na@example.com\nnot-an-email\nc@example.com\n",
            link(None, None, &[]),
        )
        .await;
    let dry_run = system
        .import(
            "email\nd@example.com\n",
            ImportOptions {
                dry_run: true,
                ..ImportOptions::default()
            },
        )
        .await;
    let undone = system
        .import("email\ne@example.com\n", link(None, None, &[]))
        .await;
    system
        .client
        .undo(&undone.import_id, |_| {})
        .await
        .expect("undone");

    let listed: Vec<ImportStatus> = serde_json::from_str(
        run_cli(&system, &["imports", "list", "--json"])
            .await
            .trim(),
    )
    .expect("one JSON array");
    let summary = |import: &ImportStatus| {
        (
            import.import_id.to_string(),
            import.status,
            import.rows_total,
            import.created,
            import.linked,
            import.failed,
            import.dry_run,
        )
    };
    assert_eq!(
        listed.iter().map(summary).collect::<Vec<_>>(),
        vec![
            (
                undone.import_id.to_string(),
                ImportState::Undone,
                1,
                1,
                0,
                0,
                false
            ),
            (
                dry_run.import_id.to_string(),
                ImportState::Completed,
                1,
                1,
                0,
                0,
                true
            ),
            (
                second.import_id.to_string(),
                ImportState::Completed,
                3,
                1,
                1,
                1,
                false
            ),
            (
                first.import_id.to_string(),
                ImportState::Completed,
                2,
                2,
                0,
                0,
                false
            ),
        ]
    );
    assert!(listed
        .iter()
        .all(|import| import.created_at.is_some() && import.finished_at.is_some()));

    assert_eq!(
        listed_ids(&system, &["--status", "undone"]).await,
        vec![undone.import_id.to_string()]
    );
    assert_eq!(
        listed_ids(&system, &["--status", "completed"]).await,
        vec![
            dry_run.import_id.to_string(),
            second.import_id.to_string(),
            first.import_id.to_string()
        ]
    );
    assert_eq!(
        listed_ids(&system, &["--limit", "2"]).await,
        vec![undone.import_id.to_string(), dry_run.import_id.to_string()]
    );
    let text = run_cli(&system, &["imports", "list"]).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[0].starts_with("import_id\tfile_name\tstatus"),
        "{text}"
    );
    assert!(
        lines[3].starts_with(&format!("{}\t", second.import_id))
            && lines[3].contains("\tcompleted\t3\t1\t1\t0\t0\t1\tfalse\t"),
        "{text}"
    );
    let bad = cli(&system, &["imports", "list", "--status", "finished"]).await;
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("unknown status"), "{}", stderr(&bad));
}

/// The ids `imports list --json` prints with `extra` arguments.
async fn listed_ids(system: &TestSystem, extra: &[&str]) -> Vec<String> {
    let mut arguments = vec!["imports", "list", "--json"];
    arguments.extend_from_slice(extra);
    let listed: Vec<ImportStatus> =
        serde_json::from_str(run_cli(system, &arguments).await.trim()).expect("one JSON array");
    listed
        .into_iter()
        .map(|import| import.import_id.to_string())
        .collect()
}

#[tokio::test]
async fn contacts_export_filters_by_import_tag_type_and_category_together() {
    let system = TestSystem::start().await;
    let first = system
        .import(
            "email,city\na1@example.com,Gdańsk\na2@example.com,Gdańsk\na3@example.com,Gdańsk\n",
            link(Some("lead"), Some("spring"), &["a"]),
        )
        .await;
    completed(&first);
    let second = system
        .import(
            "email,city\na1@example.com,Kraków\nb1@example.com,Kraków\n",
            link(Some("customer"), None, &["b"]),
        )
        .await;
    completed(&second);

    let emails = |arguments: Vec<String>| {
        let system = &system;
        async move {
            let mut all = vec!["contacts".to_string(), "export".to_string()];
            all.extend(arguments);
            let arguments: Vec<&str> = all.iter().map(String::as_str).collect();
            run_cli(system, &arguments)
                .await
                .lines()
                .map(|line| {
                    let contact: ExportedContact = serde_json::from_str(line).expect("a contact");
                    contact.attributes["email"].clone()
                })
                .collect::<Vec<_>>()
        }
    };
    let args = |pairs: &[(&str, &str)]| -> Vec<String> {
        pairs
            .iter()
            .flat_map(|(flag, value)| [flag.to_string(), value.to_string()])
            .collect()
    };
    let (a, b) = (first.import_id.as_str(), second.import_id.as_str());
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            args(&[("--import", b)]),
            vec!["a1@example.com", "b1@example.com"],
        ),
        (
            args(&[("--import", a)]),
            vec!["a1@example.com", "a2@example.com", "a3@example.com"],
        ),
        (
            args(&[("--tag", "a")]),
            vec!["a1@example.com", "a2@example.com", "a3@example.com"],
        ),
        (
            args(&[("--tag", "b")]),
            vec!["a1@example.com", "b1@example.com"],
        ),
        (
            args(&[("--type", "lead")]),
            vec!["a2@example.com", "a3@example.com"],
        ),
        (
            args(&[("--type", "customer"), ("--import", a)]),
            vec!["a1@example.com"],
        ),
        (
            args(&[("--category", "spring")]),
            vec!["a1@example.com", "a2@example.com", "a3@example.com"],
        ),
        (
            args(&[("--category", "spring"), ("--tag", "b")]),
            vec!["a1@example.com"],
        ),
        (args(&[("--tag", "none")]), vec![]),
    ];
    for (arguments, expected) in cases {
        assert_eq!(emails(arguments.clone()).await, expected, "{arguments:?}");
    }
    // The library's pages agree, one contact a page.
    let mut paged = Vec::new();
    system
        .client
        .export_filtered(
            &ContactFilter {
                import_id: Some(second.import_id.clone()),
                ..ContactFilter::default()
            },
            |contact| paged.push(contact.attributes["email"].clone()),
        )
        .await
        .expect("exported");
    assert_eq!(paged, vec!["a1@example.com", "b1@example.com"]);
    let unknown = cli(&system, &["contacts", "export", "--import", "nope"]).await;
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("no import nope"),
        "{}",
        stderr(&unknown)
    );
}

#[tokio::test]
async fn a_repeated_file_names_the_latest_earlier_import_and_the_cli_warns() {
    let system = TestSystem::start().await;
    let content = "email,city\nr1@example.com,Gdańsk\nr2@example.com,Gdynia\n";
    let import = |name: &str, content: &str, extra: &[&str]| {
        let path = system.file(name, content);
        let system = &system;
        let extra: Vec<String> = extra.iter().map(|text| text.to_string()).collect();
        async move {
            let path = path.to_str().expect("utf-8 path").to_string();
            let mut arguments = vec!["import", path.as_str(), "--follow", "--json"];
            arguments.extend(extra.iter().map(String::as_str));
            let output = cli(system, &arguments).await;
            assert!(output.status.success(), "{}", stderr(&output));
            let summary: ImportStatus =
                serde_json::from_str(stdout(&output).lines().last().expect("the summary line"))
                    .expect("the summary");
            (summary, stderr(&output))
        }
    };
    let (first, warned) = import("leads.csv", content, &[]).await;
    assert_eq!(first.repeat_of, None);
    assert!(!warned.contains("same content"), "{warned}");

    let (second, warned) = import("leads-again.csv", content, &[]).await;
    assert_eq!(second.repeat_of.as_ref(), Some(&first.import_id));
    assert!(
        warned.contains(&format!("same content as import {}", first.import_id)),
        "{warned}"
    );
    assert_eq!(second.linked, 2, "it still imports");

    let (dry_run, _) = import("leads.csv", content, &["--dry-run"]).await;
    assert_eq!(dry_run.repeat_of.as_ref(), Some(&second.import_id));
    // A dry run imported nothing: the latest import of the content stays the second.
    let (third, warned) = import("leads.csv", content, &[]).await;
    assert_eq!(third.repeat_of.as_ref(), Some(&second.import_id));
    assert!(
        warned.contains(&format!("same content as import {}", second.import_id)),
        "{warned}"
    );

    let (other, warned) = import("other.csv", "email\nq@example.com\n", &[]).await;
    assert_eq!(other.repeat_of, None);
    assert!(!warned.contains("same content"), "{warned}");
}

#[tokio::test]
async fn undo_is_exact_across_chunks_lanes_two_writers_and_every_policy() {
    let system = TestSystem::start_with(Replicas {
        writer: 2,
        ..Replicas::default()
    })
    .await;
    let originals: String = (0..3000)
        .map(|index| format!("a{index}@example.com,Gdańsk,F{index},\n"))
        .collect();
    completed(
        &system
            .import(
                format!("email,city,first_name,company\n{originals}"),
                link(Some("lead"), None, &["a"]),
            )
            .await,
    );
    let after_first = snapshot(&system.contacts().await);
    assert_eq!(after_first.len(), 3000);

    // Over three chunks (at most 2000 rows each) and every lane: contacts linked again in a
    // later chunk (a second value for one field, a first for another), a link that keeps
    // every value but changes type, category and tags, and new contacts in between.
    let mut rows = String::new();
    for index in 0..2000 {
        rows.push_str(&format!("a{index}@example.com,Kraków,,\n"));
    }
    for index in 0..1000 {
        rows.push_str(&format!("n{index}@example.com,Łódź,N{index},\n"));
    }
    for index in 0..1000 {
        rows.push_str(&format!("a{index}@example.com,,,Co{index}\n"));
    }
    for index in 0..500 {
        rows.push_str(&format!("a{index}@example.com,Poznań,,\n"));
    }
    for index in 2000..2500 {
        rows.push_str(&format!("a{index}@example.com,Gdańsk,,\n"));
    }
    let relinking = system
        .import(
            format!("email,city,first_name,company\n{rows}"),
            link(Some("customer"), Some("autumn"), &["b"]),
        )
        .await;
    completed(&relinking);
    assert_eq!(
        (relinking.linked, relinking.created),
        (4000, 1000),
        "{relinking:?}"
    );
    let relinked = system.contacts().await;
    let twice = by_email(&relinked, "a7@example.com");
    assert_eq!(
        (
            twice.attributes["city"].as_str(),
            twice.attributes["company"].as_str()
        ),
        ("Poznań", "Co7")
    );
    let report = system
        .client
        .undo(&relinking.import_id, |_| {})
        .await
        .expect("undone");
    assert_eq!(
        (
            report.contacts_restored,
            report.contacts_removed,
            report.conflicts
        ),
        (2500, 1000, 0),
        "{report:?}"
    );
    assert_eq!(snapshot(&system.contacts().await), after_first);

    // `duplicate` creates contacts beside their matches, `skip` changes nothing: undoing
    // them removes the duplicates and leaves everything else.
    let some: String = (0..100)
        .map(|index| format!("a{index}@example.com,Sopot,,\n"))
        .collect();
    let duplicating = system
        .import(
            format!("email,city,first_name,company\n{some}"),
            ImportOptions {
                policy: DuplicatePolicy::Duplicate,
                ..link(Some("duplicate"), None, &["d"])
            },
        )
        .await;
    assert_eq!(duplicating.duplicated, 100, "{duplicating:?}");
    let skipping = system
        .import(
            format!("email,city,first_name,company\n{some}"),
            ImportOptions {
                policy: DuplicatePolicy::Skip,
                ..link(Some("skip"), None, &["s"])
            },
        )
        .await;
    assert_eq!(skipping.skipped, 100, "{skipping:?}");
    let undone_skip = system
        .client
        .undo(&skipping.import_id, |_| {})
        .await
        .expect("undone");
    assert_eq!(
        (undone_skip.contacts_removed, undone_skip.contacts_restored),
        (0, 0)
    );
    let undone_duplicates = system
        .client
        .undo(&duplicating.import_id, |_| {})
        .await
        .expect("undone");
    assert_eq!(
        (
            undone_duplicates.contacts_removed,
            undone_duplicates.contacts_restored
        ),
        (100, 0)
    );
    assert_eq!(snapshot(&system.contacts().await), after_first);
}

#[tokio::test]
async fn an_undo_its_caller_abandoned_is_finished_by_the_writers_sweep() {
    let mut system = TestSystem::start_with(Replicas {
        writer: 0,
        ..Replicas::default()
    })
    .await;
    system.undo_resume_seconds = 1;
    system.start_writer().await.expect("writer");
    completed(
        &system
            .import(
                "email,city\na@example.com,Gdańsk\nb@example.com,Gdynia\n",
                link(None, None, &[]),
            )
            .await,
    );
    let after_first = snapshot(&system.contacts().await);
    let second = system
        .import(
            "email,city\na@example.com,Kraków\nb@example.com,Sopot\nc@example.com,Łódź\nd@example.com,Hel\n",
            link(Some("customer"), None, &["b"]),
        )
        .await;
    completed(&second);
    // One batch, then the caller goes away.
    contact_writer::begin_undo(&system.pool, &system.account, &second.import_id)
        .await
        .expect("undo begun");
    assert!(!contact_writer::run_undo_batches(
        &system.pool,
        &system.account,
        &second.import_id,
        1,
        1
    )
    .await
    .expect("one batch"));
    tokio::time::timeout(Duration::from_secs(60), async {
        while system
            .client
            .status(&second.import_id)
            .await
            .expect("status")
            .status
            != ImportState::Undone
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the sweep finished the undo");
    assert_eq!(snapshot(&system.contacts().await), after_first);
}

#[tokio::test]
async fn the_text_undo_report_names_each_contact_and_field_it_kept() {
    let system = TestSystem::start().await;
    completed(
        &system
            .import("email,city\nx@example.com,Gdańsk\n", link(None, None, &[]))
            .await,
    );
    let undone = system
        .import(
            "email,city,company\nx@example.com,Kraków,ACME\n",
            link(None, None, &[]),
        )
        .await;
    completed(&undone);
    completed(
        &system
            .import("email,city\nx@example.com,Poznań\n", link(None, None, &[]))
            .await,
    );
    let x_id = by_email(&system.contacts().await, "x@example.com").id;
    let text = run_cli(&system, &["undo", undone.import_id.as_str()]).await;
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        vec![
            format!(
                "import {} undone: 0 contacts removed, 1 restored, 0 kept because they changed after the import",
                undone.import_id
            ),
            format!(
                "contact {x_id} city: left as \"Poznań\" (changed after the import, which wrote \"Kraków\")"
            ),
        ]
    );
}

/// The emails of the contacts an export filtered on `import` finds, sorted.
async fn emails_of_import(system: &TestSystem, import: &ImportId) -> Vec<String> {
    let mut emails = Vec::new();
    system
        .client
        .export_filtered(
            &ContactFilter {
                import_id: Some(import.clone()),
                ..ContactFilter::default()
            },
            |contact| emails.push(contact.attributes["email"].clone()),
        )
        .await
        .expect("export");
    emails.sort();
    emails
}

#[tokio::test]
async fn retention_removes_an_old_imports_details_refuses_its_undo_and_keeps_its_contacts() {
    let mut system = TestSystem::start_with(Replicas {
        writer: 0,
        ..Replicas::default()
    })
    .await;
    system.retention_days = 1;
    system.start_writer().await.expect("writer");
    completed(
        &system
            .import("email,city\na@example.com,Gdańsk\n", link(None, None, &[]))
            .await,
    );
    // Links a@, creates b@, and fails a row with a phone number in the email column.
    let old = system
        .import(
            "email,city\na@example.com,Kraków\nb@example.com,Sopot\n+48 600 100 200,Hel\n",
            link(Some("customer"), None, &["spring"]),
        )
        .await;
    completed(&old);
    assert_eq!((old.linked, old.created, old.failed), (1, 1, 1), "{old:?}");
    let recent = system
        .import("email\n+48 600 300 400\n", link(None, None, &[]))
        .await;
    assert_eq!(recent.failed, 1, "{recent:?}");
    let touched = emails_of_import(&system, &old.import_id).await;
    assert_eq!(touched, ["a@example.com", "b@example.com"]);
    let contacts_before = snapshot(&system.contacts().await);

    // Two days pass for the first import.
    sqlx::query(
        "UPDATE imports SET finished_at = finished_at - interval '2 days'
         WHERE account_id = $1 AND import_id = $2",
    )
    .bind(system.account.as_str())
    .bind(old.import_id.as_str())
    .execute(&system.pool)
    .await
    .expect("aged");
    let removed_at = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let status = system.client.status(&old.import_id).await.expect("status");
            let pending: bool = sqlx::query_scalar(
                "SELECT details_pending FROM imports WHERE account_id = $1 AND import_id = $2",
            )
            .bind(system.account.as_str())
            .bind(old.import_id.as_str())
            .fetch_one(&system.pool)
            .await
            .expect("pending");
            match status.details_removed_at {
                Some(at) if !pending => break at,
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    })
    .await
    .expect("the sweep removed the old import's details");
    let day = removed_at.format("%Y-%m-%d").to_string();

    for table in ["row_errors", "failed_rows", "import_changes"] {
        let left: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {table} WHERE account_id = $1 AND import_id = $2"
        ))
        .bind(system.account.as_str())
        .bind(old.import_id.as_str())
        .fetch_one(&system.pool)
        .await
        .expect("count");
        assert_eq!(left, 0, "{table}");
    }
    let (kind, message) = refusal(system.client.errors(&old.import_id, |_| {}).await);
    assert_eq!(kind, ApiErrorKind::NotFound);
    assert!(
        message.contains("row errors") && message.contains(&day),
        "{message}"
    );
    let (kind, message) = refusal(system.client.failed_rows(&old.import_id, |_| {}).await);
    assert_eq!(kind, ApiErrorKind::NotFound);
    assert!(message.contains("failed rows"), "{message}");
    let output = cli(&system, &["undo", old.import_id.as_str()]).await;
    assert!(!output.status.success(), "the undo is refused");
    assert!(
        stderr(&output).contains("cannot be undone") && stderr(&output).contains(&day),
        "{}",
        stderr(&output)
    );

    // The import, its counters and its contacts stay; the recent import keeps its details.
    let status = system.client.status(&old.import_id).await.expect("status");
    assert_eq!(
        (status.status, status.linked, status.created, status.failed),
        (ImportState::Completed, 1, 1, 1)
    );
    assert_eq!(emails_of_import(&system, &old.import_id).await, touched);
    assert_eq!(snapshot(&system.contacts().await), contacts_before);
    let recent_status = system
        .client
        .status(&recent.import_id)
        .await
        .expect("status");
    assert_eq!(recent_status.details_removed_at, None);
    let mut errors = Vec::new();
    system
        .client
        .errors(&recent.import_id, |error| errors.push(error))
        .await
        .expect("the recent import's errors");
    assert_eq!(errors.len(), 1, "{errors:?}");
}
