//! The one gate every pipeline message passes before a service acts on it: a body written by a
//! later version waits for an upgraded reader, one that cannot be read, is of another schema,
//! or names another import than its subject is refused with a reason that says which.
//!
//! The subject is what NATS permissions check, so it is the truth: a body naming another
//! account or import than its subject is a forgery or a bug, never an instruction.

use serde::de::DeserializeOwned;

use crate::{
    AccountId, ImportControl, ImportId, ImportRequest, RawChunk, ValidatedChunk,
    FIRST_SCHEMA_VERSION, SCHEMA_VERSION,
};

/// A body that travels on an import's subject and says which import it belongs to.
pub trait ImportMessage: DeserializeOwned {
    /// How a reason names it: "the import request", "a chunk of the file".
    const WHAT: &'static str;
    fn schema(&self) -> u32;
    fn account(&self) -> &AccountId;
    fn import_id(&self) -> &ImportId;
}

/// Why a body did not pass the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undecodable {
    /// Written by a later version. During a rolling upgrade it waits for an upgraded replica:
    /// refusing it would fail the import it belongs to.
    OfLaterSchema,
    /// It cannot be acted on; its import fails with this reason.
    Refused(String),
}

/// Reads `payload`, the body of a message on the subject of `account`'s import `import`.
pub fn decode_import_message<T: ImportMessage>(
    payload: &[u8],
    account: &AccountId,
    import: &ImportId,
) -> Result<T, Undecodable> {
    // Before parsing: a later schema may not parse as this one at all.
    if written_by_newer_version(payload) {
        return Err(Undecodable::OfLaterSchema);
    }
    let body: T = serde_json::from_slice(payload)
        .map_err(|error| Undecodable::Refused(format!("{} cannot be read: {error}", T::WHAT)))?;
    if !(FIRST_SCHEMA_VERSION..=SCHEMA_VERSION).contains(&body.schema()) {
        return Err(Undecodable::Refused(format!(
            "{} has schema {}; this service reads {FIRST_SCHEMA_VERSION} to {SCHEMA_VERSION}",
            T::WHAT,
            body.schema()
        )));
    }
    if body.account() != account || body.import_id() != import {
        return Err(Undecodable::Refused(format!(
            "{} on the subject of import {account}/{import} names import {}/{}",
            T::WHAT,
            body.account(),
            body.import_id()
        )));
    }
    Ok(body)
}

/// True when `payload` is a message of a later schema than this build reads.
pub fn written_by_newer_version(payload: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Versioned {
        #[serde(default)]
        schema: u32,
    }
    serde_json::from_slice::<Versioned>(payload)
        .is_ok_and(|message| message.schema > SCHEMA_VERSION)
}

macro_rules! import_messages {
    ($($body:ty => $what:literal),* $(,)?) => {
        $(impl ImportMessage for $body {
            const WHAT: &'static str = $what;
            fn schema(&self) -> u32 {
                self.schema
            }
            fn account(&self) -> &AccountId {
                &self.account
            }
            fn import_id(&self) -> &ImportId {
                &self.import_id
            }
        })*
    };
}

import_messages! {
    ImportRequest => "the import request",
    RawChunk => "a chunk of the file",
    ValidatedChunk => "a validated chunk",
    ImportControl => "a control message of the import",
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(account: &str, import: &str) -> (AccountId, ImportId) {
        (
            AccountId::new(account).expect("valid account"),
            ImportId::new(import).expect("valid import"),
        )
    }

    /// A real control message, then rewritten as a forger or another version would.
    fn control(schema: u32, account: &str, import: &str) -> Vec<u8> {
        let (own_account, own_import) = ids("acme", "imp-1");
        let request = ImportRequest::known_by_subject(own_account, own_import);
        let mut body = serde_json::to_value(ImportControl::rejection(request, "test".into()))
            .expect("serializes");
        body["schema"] = schema.into();
        body["account"] = account.into();
        body["import_id"] = import.into();
        serde_json::to_vec(&body).expect("serializes")
    }

    fn check(payload: &[u8], expected: Result<(), Undecodable>) {
        let (account, import) = ids("acme", "imp-1");
        let decoded = decode_import_message::<ImportControl>(payload, &account, &import);
        assert_eq!(
            decoded.map(|_| ()),
            expected,
            "{}",
            String::from_utf8_lossy(payload)
        );
    }

    #[test]
    fn a_body_of_its_own_subject_and_of_any_schema_this_build_reads_passes() {
        for schema in FIRST_SCHEMA_VERSION..=SCHEMA_VERSION {
            check(&control(schema, "acme", "imp-1"), Ok(()));
        }
    }

    #[test]
    fn a_later_schema_waits_even_when_this_version_cannot_parse_it() {
        check(
            &control(SCHEMA_VERSION + 1, "acme", "imp-1"),
            Err(Undecodable::OfLaterSchema),
        );
        let unparsable = format!(r#"{{"schema":{},"shape":"new"}}"#, SCHEMA_VERSION + 1);
        check(unparsable.as_bytes(), Err(Undecodable::OfLaterSchema));
    }

    #[test]
    fn an_unreadable_an_older_or_another_imports_body_is_refused_with_the_reason() {
        let refused = |payload: &[u8]| {
            let (account, import) = ids("acme", "imp-1");
            match decode_import_message::<ImportControl>(payload, &account, &import) {
                Err(Undecodable::Refused(reason)) => reason,
                other => panic!("expected a refusal, got {other:?}"),
            }
        };
        assert!(refused(b"not json").starts_with("a control message of the import cannot be read"));
        assert!(refused(&control(0, "acme", "imp-1")).contains("has schema 0"));
        let forged = refused(&control(SCHEMA_VERSION, "beta", "imp-1"));
        assert!(forged.contains("names import beta/imp-1"), "{forged}");
        let other_import = refused(&control(SCHEMA_VERSION, "acme", "imp-2"));
        assert!(
            other_import.contains("names import acme/imp-2"),
            "{other_import}"
        );
    }

    #[test]
    fn only_a_later_schema_counts_as_newer() {
        let later = format!(
            r#"{{"schema":{},"kind":"from_the_future"}}"#,
            SCHEMA_VERSION + 1
        );
        assert!(written_by_newer_version(later.as_bytes()));
        let current = format!(r#"{{"schema":{SCHEMA_VERSION}}}"#);
        assert!(!written_by_newer_version(current.as_bytes()));
        assert!(!written_by_newer_version(b"{}"));
        assert!(!written_by_newer_version(b"not json"));
    }
}
