//! Integration tests: the three services against the real NATS (JetStream) and PostgreSQL,
//! each test in its own namespace and account. One binary, a module per flow.

mod bad_input;
mod campaign;
mod cli;
mod contract;
mod faults;
mod history;
mod hostile;
mod import;
mod limits;
mod lookup_plan;
mod messages;
mod operations;
mod ordering;
mod other_languages;
mod partitions;
mod policies;
mod reading;
mod replicas;
mod reply_subjects;
mod secure;
mod services_api;
mod tenants;
mod watchdog;
mod web_login;
mod workflow;

use std::collections::BTreeMap;

use contact_contract::ColumnMapping;
use contact_contract::DuplicatePolicy;
use contact_contract::{ExportedContact, ImportOptions};

/// Import options with a policy and `--map` entries given as "COLUMN=ATTRIBUTE".
pub fn options(policy: DuplicatePolicy, mappings: &[&str]) -> ImportOptions {
    ImportOptions {
        mappings: mappings
            .iter()
            .map(|mapping| mapping.parse::<ColumnMapping>().expect("a valid mapping"))
            .collect(),
        policy,
        ..ImportOptions::default()
    }
}

/// Contacts by email, for comparing data without ids and times.
pub fn by_email(contacts: &[ExportedContact]) -> BTreeMap<String, BTreeMap<String, String>> {
    contacts
        .iter()
        .map(|contact| {
            (
                contact.attributes["email"].clone(),
                contact.attributes.clone(),
            )
        })
        .collect()
}

/// The kind and message of the API's refusal `result` must be.
pub(crate) fn refusal(
    result: Result<impl std::fmt::Debug, contact_import_client::ClientError>,
) -> (contact_contract::ApiErrorKind, String) {
    use contact_contract::api::CallError;
    match result {
        Err(contact_import_client::ClientError::Api(CallError::Api(error))) => {
            (error.kind, error.message)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}
