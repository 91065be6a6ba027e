//! Determinism: whatever the number of replicas and the order chunks are handled in, the data
//! equal applying the file row by row in file order.

use std::collections::BTreeMap;

use contact_contract::ImportOptions;
use contact_core::csv_parser::{ParsedRecord, RecordParser};
use contact_core::mapping::{resolve_mapping, standard_attributes};
use contact_core::merge::{plan_merge, DuplicatePolicy, MergeOptions, StoredContact};
use contact_core::validate::{validate_record, PhoneRegion};
use contact_tests::{Replicas, TestSystem};

/// Many rows sharing few emails, spread over several chunks, with some invalid rows.
fn busy_file(rows: usize) -> String {
    let mut file = String::from("email,first_name,city,mobile,birthday\n");
    for index in 0..rows {
        let person = (index * 7919) % 997;
        let city = if index % 5 == 0 {
            String::new()
        } else {
            format!("City {}", index % 13)
        };
        let mobile = if index % 11 == 0 {
            "123".to_string()
        } else {
            format!("5{:08}", person)
        };
        let birthday = format!(
            "19{:02}-0{}-1{}",
            50 + index % 50,
            1 + index % 9,
            index % 10
        );
        file.push_str(&format!(
            "p{person}@example.com,Name {index},{city},{mobile},{birthday}\n"
        ));
    }
    file
}

/// The reference: every row applied alone, in file order.
fn row_by_row(file: &str, policy: DuplicatePolicy) -> Vec<BTreeMap<String, String>> {
    let mut parser = RecordParser::new(b',', 1 << 20);
    let mut parsed = Vec::new();
    parser.feed(file.as_bytes(), &mut parsed);
    parser.finish(&mut parsed);
    let mut records = parsed.into_iter().map(|item| match item {
        ParsedRecord::Record(record) => record,
        ParsedRecord::Error(error) => panic!("{error}"),
    });
    let header = records.next().expect("a header").fields;
    let plan = resolve_mapping(&header, &standard_attributes(), &[], &[]).expect("a valid mapping");
    let options = MergeOptions {
        policy,
        match_on: plan.match_on.clone(),
        ..MergeOptions::default()
    };
    let mut contacts: Vec<StoredContact> = Vec::new();
    for record in records {
        let Ok(valid) = validate_record(&plan, &record, PhoneRegion::default()) else {
            continue;
        };
        let merged = plan_merge(std::slice::from_ref(&valid), contacts.clone(), &options);
        for updated in merged.updated_contacts {
            let slot = contacts
                .iter_mut()
                .find(|contact| contact.id == updated.id)
                .expect("known");
            *slot = updated;
        }
        for created in merged.new_contacts {
            contacts.push(StoredContact {
                id: contacts.len() as i64 + 1,
                state: created.state,
            });
        }
    }
    contacts
        .into_iter()
        .map(|contact| contact.state.values)
        .collect()
}

async fn imported_with(
    replicas: Replicas,
    file: &str,
    policy: DuplicatePolicy,
) -> Vec<BTreeMap<String, String>> {
    let system = TestSystem::start_with(replicas).await;
    let summary = system
        .import(
            file,
            ImportOptions {
                policy,
                ..ImportOptions::default()
            },
        )
        .await;
    assert_eq!(
        summary.rows_total,
        summary.created + summary.linked + summary.duplicated + summary.skipped + summary.failed
    );
    let contacts = system.contacts().await;
    system.stop().await;
    contacts
        .into_iter()
        .map(|contact| contact.attributes)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_mappers_and_two_writers_give_the_data_of_one_and_of_row_by_row() {
    let file = busy_file(6500);
    for policy in [DuplicatePolicy::Link, DuplicatePolicy::Skip] {
        let expected = row_by_row(&file, policy);
        let single = imported_with(Replicas::default(), &file, policy).await;
        let several = imported_with(
            Replicas {
                ingest: 1,
                mapper: 2,
                writer: 2,
            },
            &file,
            policy,
        )
        .await;
        assert_eq!(single.len(), expected.len(), "{policy}");
        assert!(
            single == expected,
            "one replica each differs from row-by-row ({policy})"
        );
        assert!(
            several == expected,
            "two mappers and two writers differ from row-by-row ({policy})"
        );
    }
}
