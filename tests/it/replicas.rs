//! Determinism: whatever the number of replicas, the lanes and the order chunks are handled
//! in, the data equal applying the files row by row in file order, and several writers share
//! one import.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use contact_contract::{convert_all, DuplicatePolicy};
use contact_contract::{ExportedContact, ImportOptions, ImportState, SetAttributeRequest};
use contact_core::csv_parser::{ParsedRecord, RecordParser};
use contact_core::mapping::{resolve_mapping, standard_attributes, AttributeDef};
use contact_core::validate::{validate_record, PhoneRegion};
use contact_tests::{Replicas, TestSystem};

/// Many rows sharing few emails and mobiles, spread over several chunks (so over every lane
/// and across chunk boundaries), with empty cells and invalid rows.
fn busy_file(rows: usize, seed: usize) -> String {
    let mut file = String::from("email,first_name,city,mobile,birthday\n");
    for index in 0..rows {
        let person = (index * 7919 + seed) % 997;
        let city = if index % 5 == 0 {
            String::new()
        } else {
            format!("City {}", (index + seed) % 13)
        };
        let mobile = match index % 11 {
            0 => "123".to_string(),
            1 | 2 => String::new(),
            _ => format!("5{:08}", (person * 31 + seed) % 1499),
        };
        let birthday = format!(
            "19{:02}-0{}-1{}",
            50 + index % 50,
            1 + index % 9,
            index % 10
        );
        file.push_str(&format!(
            "p{person}@example.com,Name {index} {seed},{city},{mobile},{birthday}\n"
        ));
    }
    file
}

/// A contact as the model keeps it and as the export shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Contact {
    values: BTreeMap<String, String>,
    contact_type: Option<String>,
    tags: BTreeSet<String>,
}

/// The reference, written without the merge code: every valid row of every file, in order,
/// looks through the contacts made so far (oldest first) for one sharing a value of a match
/// attribute, and the policy decides. Returns the contacts oldest first.
fn row_by_row(imports: &[(&str, &ImportOptions)]) -> Vec<Contact> {
    let mut contacts: Vec<Contact> = Vec::new();
    for (file, options) in imports {
        let mut parser = RecordParser::new(b',', 1 << 20);
        let mut parsed = Vec::new();
        parser.feed(file.as_bytes(), &mut parsed);
        parser.finish(&mut parsed);
        let mut records = parsed.into_iter().map(|item| match item {
            ParsedRecord::Record(record) => record,
            ParsedRecord::Error(error) => panic!("{error}"),
        });
        let header = records.next().expect("a header").fields;
        let plan = resolve_mapping(
            &header,
            &catalog(&options.match_on),
            &convert_all(options.mappings.clone()),
            &options.match_on,
        )
        .expect("a valid mapping");
        for record in records {
            let Ok(valid) = validate_record(&plan, &record, PhoneRegion::default()) else {
                continue;
            };
            let matched = contacts.iter().position(|contact| {
                plan.match_on.iter().any(|attribute| {
                    valid.values.contains_key(attribute)
                        && valid.values.get(attribute) == contact.values.get(attribute)
                })
            });
            let fresh = Contact {
                values: valid.values.clone(),
                contact_type: options.contact_type.clone(),
                tags: options.tags.clone(),
            };
            match (matched, options.policy) {
                (None, _) | (Some(_), DuplicatePolicy::Duplicate) => contacts.push(fresh),
                (Some(_), DuplicatePolicy::Skip) => {}
                (Some(position), DuplicatePolicy::Link) => {
                    let contact = &mut contacts[position];
                    contact.values.extend(valid.values.clone());
                    if options.contact_type.is_some() {
                        contact.contact_type = options.contact_type.clone();
                    }
                    contact.tags.extend(options.tags.iter().cloned());
                }
            }
        }
    }
    contacts
}

/// The standard attributes, with every match attribute made an identifier.
fn catalog(match_on: &[String]) -> Vec<AttributeDef> {
    let mut attributes = standard_attributes();
    for attribute in &mut attributes {
        attribute.identifier |= match_on.contains(&attribute.key);
    }
    attributes
}

fn exported(contacts: Vec<ExportedContact>) -> Vec<Contact> {
    contacts
        .into_iter()
        .map(|contact| Contact {
            values: contact.attributes,
            contact_type: contact.contact_type,
            tags: contact.tags.into_iter().collect(),
        })
        .collect()
}

fn import_options(policy: DuplicatePolicy, match_on: &[&str], tag: &str) -> ImportOptions {
    ImportOptions {
        policy,
        match_on: match_on.iter().map(|key| key.to_string()).collect(),
        contact_type: Some(format!("type-{tag}")),
        tags: [tag.to_string()].into(),
        ..ImportOptions::default()
    }
}

/// Imports `first` with link, then `second` with `policy`, on `match_on`, and compares the
/// contacts with the reference; returns how many lane parts each writer applied.
async fn check_against_the_reference(
    replicas: Replicas,
    policy: DuplicatePolicy,
    match_on: &[&str],
) -> Vec<u64> {
    let system = TestSystem::start_with(replicas).await;
    for attribute in match_on.iter().filter(|attribute| **attribute != "email") {
        system
            .client
            .set_attribute(SetAttributeRequest {
                key: attribute.to_string(),
                required: None,
                identifier: Some(true),
            })
            .await
            .expect("making a match attribute an identifier");
    }
    let (first, second) = (busy_file(3500, 0), busy_file(6500, 7));
    let first_options = import_options(DuplicatePolicy::Link, match_on, "first");
    let second_options = import_options(policy, match_on, "second");
    for (file, options) in [(&first, &first_options), (&second, &second_options)] {
        let summary = system.import(file.as_str(), options.clone()).await;
        assert_eq!(summary.status, ImportState::Completed, "{summary:?}");
        assert_eq!(
            summary.rows_total,
            summary.created
                + summary.linked
                + summary.duplicated
                + summary.skipped
                + summary.failed
        );
        assert_eq!(Some(summary.rows_total), summary.rows_in_file);
    }
    let expected = row_by_row(&[(&first, &first_options), (&second, &second_options)]);
    let contacts = exported(system.contacts().await);
    assert_eq!(contacts.len(), expected.len(), "{policy} on {match_on:?}");
    assert!(
        contacts == expected,
        "the contacts differ from row-by-row ({policy} on {match_on:?})"
    );
    let applied = system
        .writers
        .iter()
        .map(|writer| writer.lanes_applied.load(Ordering::Relaxed))
        .collect();
    system.stop().await;
    applied
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_writers_share_one_import_and_give_the_row_by_row_data_for_every_policy() {
    let replicas = Replicas {
        ingest: 1,
        mapper: 2,
        writer: 2,
    };
    for policy in DuplicatePolicy::ALL {
        let applied = check_against_the_reference(replicas, policy, &["email"]).await;
        assert!(
            applied.iter().all(|&parts| parts > 0),
            "each writer applied lane parts ({policy}): {applied:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn matching_on_two_attributes_runs_in_one_lane_and_stays_exact() {
    let replicas = Replicas {
        ingest: 1,
        mapper: 2,
        writer: 2,
    };
    for policy in [DuplicatePolicy::Link, DuplicatePolicy::Duplicate] {
        check_against_the_reference(replicas, policy, &["email", "mobile"]).await;
    }
}

#[tokio::test]
async fn one_writer_gives_the_row_by_row_data() {
    check_against_the_reference(Replicas::default(), DuplicatePolicy::Link, &["email"]).await;
}
