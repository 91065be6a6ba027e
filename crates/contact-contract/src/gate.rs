//! The one gate every pipeline message passes before a service acts on it: a body that does
//! not name its subject's import concerns no import and is dropped; of those that do, one
//! written by a later version waits for an upgraded reader, and one that cannot be read or is
//! of another schema is refused with a reason that says which.
//!
//! The subject is what NATS permissions check, so it is the truth, but not the whole truth: a
//! tenant can have the server publish on any subject of the deployment (a reply subject is
//! never checked against her permissions, and JetStream answers every request on its reply
//! subject). Such a message holds the server's own JSON, never a body naming an import, so it
//! must not fail the import whose subject it landed on.

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
    /// It names its subject's import but cannot be acted on; that import fails with this
    /// reason.
    Refused(String),
    /// It does not name its subject's import (unreadable, or naming another): it concerns no
    /// import, and is dropped with this reason.
    Foreign(String),
}

/// Reads `payload`, the body of a message on the subject of `account`'s import `import`.
pub fn decode_import_message<T: ImportMessage>(
    payload: &[u8],
    account: &AccountId,
    import: &ImportId,
) -> Result<T, Undecodable> {
    // One look at the envelope before the body (as cheap as the schema check it replaces):
    // whose it says it is, and of which schema; a later schema may not parse as this one.
    let envelope = Envelope::of(payload);
    let names_this_import = envelope.as_ref().is_some_and(|envelope| {
        envelope.account.as_deref() == Some(account.as_str())
            && envelope.import_id.as_deref() == Some(import.as_str())
    });
    if !names_this_import {
        let named = envelope
            .and_then(|envelope| {
                Some(format!(
                    "import {}/{}",
                    envelope.account?, envelope.import_id?
                ))
            })
            .unwrap_or_else(|| "no import".to_string());
        return Err(Undecodable::Foreign(format!(
            "a message on the subject of import {account}/{import} names {named}"
        )));
    }
    if envelope.is_some_and(|envelope| envelope.schema > SCHEMA_VERSION) {
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

/// What every schema's body says the same way: its schema, and the import it belongs to
/// (borrowed from the payload, so reading it allocates nothing but an escaped name).
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    schema: u32,
    #[serde(default, borrow)]
    account: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    import_id: Option<std::borrow::Cow<'a, str>>,
}

impl<'a> Envelope<'a> {
    fn of(payload: &'a [u8]) -> Option<Self> {
        serde_json::from_slice(payload).ok()
    }
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
        let unparsable = format!(
            r#"{{"schema":{},"account":"acme","import_id":"imp-1","shape":"new"}}"#,
            SCHEMA_VERSION + 1
        );
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
        let (account, import) = ids("acme", "imp-1");
        let mut unreadable =
            serde_json::from_slice::<serde_json::Value>(&control(SCHEMA_VERSION, "acme", "imp-1"))
                .expect("json");
        unreadable["event"] = "no_such_event".into();
        let unreadable = serde_json::to_vec(&unreadable).expect("serializes");
        assert!(refused(&unreadable).starts_with("a control message of the import cannot be read"));
        assert!(refused(&control(0, "acme", "imp-1")).contains("has schema 0"));
        assert!(matches!(
            decode_import_message::<ImportControl>(&unreadable, &account, &import),
            Err(Undecodable::Refused(_))
        ));
    }

    #[test]
    fn a_body_that_does_not_name_its_subjects_import_is_foreign_and_fails_nothing() {
        let foreign = |payload: &[u8]| {
            let (account, import) = ids("acme", "imp-1");
            match decode_import_message::<ImportControl>(payload, &account, &import) {
                Err(Undecodable::Foreign(reason)) => reason,
                other => panic!("expected a foreign body, got {other:?}"),
            }
        };
        let forged = foreign(&control(SCHEMA_VERSION, "beta", "imp-1"));
        assert!(forged.contains("names import beta/imp-1"), "{forged}");
        let other_import = foreign(&control(SCHEMA_VERSION, "acme", "imp-2"));
        assert!(
            other_import.contains("names import acme/imp-2"),
            "{other_import}"
        );
        // What the server publishes when a tenant names another's subject as a reply: a
        // stored message's acknowledgement, an API answer; and anything else unreadable.
        for payload in [
            &br#"{"stream":"OBJ_CI_UPLOADS_acme","seq":2}"#[..],
            br#"{"type":"io.nats.jetstream.api.v1.stream_info_response","config":{"name":"x"}}"#,
            br#"{"ok":{"import_id":"imp-1","account":"acme"}}"#,
            b"not json",
            b"",
        ] {
            let reason = foreign(payload);
            assert!(reason.contains("names no import"), "{reason}");
        }
        // A later schema that names another import does not wait for an upgrade either.
        foreign(&control(SCHEMA_VERSION + 1, "acme", "imp-2"));
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
