//! What each party of a deployment may publish and subscribe to, derived from the subjects
//! this crate owns. `contact-import-admin` writes these into the NATS server's configuration;
//! the README and the AsyncAPI document explain them.
//!
//! A tenant may use exactly the contract for its own account: put files into its own uploads
//! bucket, start its own imports, follow its own imports' events (live on their subject, and
//! what came before through the `import.events` API), and call its own API (except the
//! services' `import.prepare`). Its replies arrive on an inbox prefix of its own. It may not
//! publish on any internal subject (chunks, records, control, events, lanes), administer
//! JetStream, or subscribe to anything else.
//!
//! Every party shares one NATS account, and the server never checks a request's reply subject
//! against the permissions of whoever sent it: JetStream answers on it, and a consumer
//! delivers to any subject its creator names. So a tenant is given nothing that makes the
//! server publish bytes of her choosing: no consumer, no direct get (which answers with a
//! stored message as it is); reading a stored message goes through `STREAM.MSG.GET`, whose
//! answer wraps it in the server's own JSON. What the server can still be made to publish
//! elsewhere (acknowledgements, API answers) names no import, and the services drop such a
//! body on an import's subject (`gate`); the writer answers only on the caller's own inbox.
//! That does not close the class: an acknowledgement aimed at JetStream's own API is obeyed
//! (docs/security.md, "Reply subjects"), which only separate NATS accounts per tenant stop.

use crate::names::ImportSubjectKind;
use crate::{AccountId, ApiOperation, Namespace};

/// A party that connects to NATS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Party {
    Ingest,
    Mapper,
    Writer,
    /// Registers accounts on the operator API.
    Operator,
    Tenant(AccountId),
}

/// Subjects a party may publish to and subscribe to; anything else is refused by the server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Permissions {
    pub publish: Vec<String>,
    /// Refused even where `publish` allows it.
    pub publish_denied: Vec<String>,
    pub subscribe: Vec<String>,
    /// May answer the requests it receives, whatever their reply subject.
    pub allow_responses: bool,
}

/// The inbox prefix of the operator's client: it cannot be an account's (`_INBOX_<account>`).
pub const OPERATOR_INBOX_PREFIX: &str = "_OPERATOR_INBOX";

/// Where JetStream's own API lives, and the acknowledgements consumers send.
const JETSTREAM_API: &str = "$JS.API.>";
const JETSTREAM_ACKS: &str = "$JS.ACK.>";
/// Services take their replies on the default inbox, which no tenant may read.
const SERVICE_INBOX: &str = "_INBOX.>";

impl Namespace {
    pub fn permissions(&self, party: &Party) -> Permissions {
        let any_import = |kind| self.import_wildcard(kind);
        match party {
            Party::Ingest => Permissions {
                publish: vec![
                    JETSTREAM_API.into(),
                    JETSTREAM_ACKS.into(),
                    any_import(ImportSubjectKind::Chunks),
                    any_import(ImportSubjectKind::Control),
                    self.api_wildcard_for(ApiOperation::PrepareImport),
                    self.api_wildcard_for(ApiOperation::Status),
                ],
                subscribe: vec![SERVICE_INBOX.into(), any_import(ImportSubjectKind::Events)],
                ..Permissions::default()
            },
            Party::Mapper => Permissions {
                publish: vec![
                    JETSTREAM_API.into(),
                    JETSTREAM_ACKS.into(),
                    any_import(ImportSubjectKind::Records),
                    any_import(ImportSubjectKind::Control),
                ],
                subscribe: vec![SERVICE_INBOX.into()],
                ..Permissions::default()
            },
            Party::Writer => Permissions {
                publish: vec![
                    JETSTREAM_API.into(),
                    JETSTREAM_ACKS.into(),
                    any_import(ImportSubjectKind::Events),
                    any_import(ImportSubjectKind::Lanes),
                ],
                subscribe: [
                    SERVICE_INBOX.into(),
                    self.api_wildcard(),
                    self.operator_wildcard(),
                    any_import(ImportSubjectKind::Lanes),
                ]
                .into_iter()
                .chain(crate::micro::discovery_subjects())
                .collect(),
                allow_responses: true,
                ..Permissions::default()
            },
            Party::Operator => Permissions {
                publish: vec![
                    self.operator_wildcard(),
                    crate::micro::DISCOVERY_REQUESTS.into(),
                ],
                subscribe: vec![format!("{OPERATOR_INBOX_PREFIX}.>")],
                ..Permissions::default()
            },
            Party::Tenant(account) => {
                let uploads = self.uploads_stream(account);
                let own_events = self.import_subject_wildcard(ImportSubjectKind::Events, account);
                Permissions {
                    publish: vec![
                        self.import_subject_wildcard(ImportSubjectKind::Start, account),
                        self.api_subject_wildcard(account),
                        format!("$O.{}.>", self.uploads_bucket(account)),
                        format!("$JS.API.STREAM.INFO.{uploads}"),
                        format!("$JS.API.STREAM.MSG.GET.{uploads}"),
                        format!("$JS.API.STREAM.PURGE.{uploads}"),
                    ],
                    publish_denied: vec![self.api_subject(account, ApiOperation::PrepareImport)],
                    subscribe: vec![
                        own_events,
                        format!("{}.>", Namespace::inbox_prefix(account)),
                    ],
                    allow_responses: false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NATS subject matching with `*` (one token) and `>` (the rest), for checking the lists.
    fn matches(pattern: &str, subject: &str) -> bool {
        let mut subject_tokens = subject.split('.');
        for token in pattern.split('.') {
            match (token, subject_tokens.next()) {
                (">", Some(_)) => return true,
                ("*", Some(_)) => {}
                (expected, Some(actual)) if expected == actual => {}
                _ => return false,
            }
        }
        subject_tokens.next().is_none()
    }

    fn may_publish(permissions: &Permissions, subject: &str) -> bool {
        permissions
            .publish
            .iter()
            .any(|allowed| matches(allowed, subject))
            && !permissions
                .publish_denied
                .iter()
                .any(|denied| matches(denied, subject))
    }

    fn may_subscribe(permissions: &Permissions, subject: &str) -> bool {
        permissions
            .subscribe
            .iter()
            .any(|allowed| matches(allowed, subject))
    }

    fn ids() -> (Namespace, AccountId, AccountId) {
        (
            Namespace::default(),
            AccountId::new("acme").expect("valid"),
            AccountId::new("globex").expect("valid"),
        )
    }

    #[test]
    fn a_tenant_may_use_its_own_contract_and_nothing_of_another_account() {
        let (namespace, acme, _) = ids();
        let tenant = namespace.permissions(&Party::Tenant(acme));
        for subject in [
            "ci.v1.acme.import.i-1.start",
            "ci.v1.acme.api.import.status",
            "ci.v1.acme.api.contacts.export",
            "ci.v1.acme.api.import.upload",
            "ci.v1.acme.api.imports.list",
            "ci.v1.acme.api.import.undo",
            "ci.v1.acme.api.import.undo_conflicts",
            "$O.CI_UPLOADS_acme.C.abc",
            "$O.CI_UPLOADS_acme.M.aS0x",
            "$JS.API.STREAM.INFO.OBJ_CI_UPLOADS_acme",
            "$JS.API.STREAM.MSG.GET.OBJ_CI_UPLOADS_acme",
            "ci.v1.acme.api.import.events",
        ] {
            assert!(may_publish(&tenant, subject), "{subject}");
        }
        for subject in [
            "ci.v1.globex.import.i-1.start",
            "ci.v1.globex.api.contacts.export",
            "ci.v1.globex.api.imports.list",
            "ci.v1.globex.api.import.undo",
            "ci.v1.acme.api.import.prepare",
            "ci.v1.acme.import.i-1.chunks",
            "ci.v1.acme.import.i-1.records",
            "ci.v1.acme.import.i-1.control",
            "ci.v1.acme.import.i-1.events",
            "ci.v1.acme.import.i-1.lanes",
            "$O.CI_UPLOADS_globex.M.aS0x",
            "$JS.API.STREAM.INFO.OBJ_CI_UPLOADS_globex",
            "$JS.API.DIRECT.GET.OBJ_CI_UPLOADS_globex.$O.CI_UPLOADS_globex.M.aS0x",
            "$JS.API.STREAM.CREATE.CI_IMPORT_EVENTS",
            "$JS.API.STREAM.DELETE.OBJ_CI_UPLOADS_acme",
            "$JS.API.CONSUMER.CREATE.CI_IMPORT_EVENTS",
            // Answered with stored bytes as they are, or delivering them where the creator
            // says: the server would publish her bytes on any subject she names.
            "$JS.API.DIRECT.GET.OBJ_CI_UPLOADS_acme",
            "$JS.API.DIRECT.GET.OBJ_CI_UPLOADS_acme.$O.CI_UPLOADS_acme.M.aS0x",
            "$JS.API.CONSUMER.CREATE.CI_IMPORT_EVENTS.acme_1.ci.v1.acme.import.i-1.events",
            "$JS.API.CONSUMER.CREATE.OBJ_CI_UPLOADS_acme.x.$O.CI_UPLOADS_acme.C.abc",
            "$JS.FC.CI_IMPORT_EVENTS.x",
            "$JS.API.CONSUMER.CREATE.CI_IMPORT_EVENTS.x.ci.v1.globex.import.i-1.events",
            "$JS.API.CONSUMER.CREATE.CI_IMPORT_EVENTS.x.ci.v1.*.import.*.events",
            "$JS.API.CONSUMER.CREATE.CI_IMPORT_EVENTS.x.>",
            "$JS.API.CONSUMER.MSG.NEXT.CI_IMPORT_EVENTS.x",
            "$JS.API.CONSUMER.LIST.CI_IMPORT_EVENTS",
            "_INBOX.abc",
            "ci.admin.v1.accounts.register",
            "$SRV.PING",
            "$SRV.STATS.contact-import",
        ] {
            assert!(!may_publish(&tenant, subject), "{subject}");
        }
        assert!(may_subscribe(&tenant, "ci.v1.acme.import.i-1.events"));
        assert!(may_subscribe(&tenant, "_INBOX_acme.x.y"));
        for subject in [
            ">",
            "ci.>",
            "ci.v1.globex.import.i-1.events",
            "ci.v1.acme.import.i-1.chunks",
            "ci.v1.acme.api.contacts.export",
            "_INBOX.abc",
            "_INBOX_globex.abc",
            "$O.CI_UPLOADS_acme.C.abc",
        ] {
            assert!(!may_subscribe(&tenant, subject), "{subject}");
        }
        assert!(!tenant.allow_responses);
    }

    #[test]
    fn only_services_publish_on_internal_subjects() {
        let (namespace, acme, _) = ids();
        let tenant = namespace.permissions(&Party::Tenant(acme));
        for (party, subject) in [
            (Party::Ingest, "ci.v1.acme.import.i-1.chunks"),
            (Party::Ingest, "ci.v1.acme.import.i-1.control"),
            (Party::Mapper, "ci.v1.acme.import.i-1.records"),
            (Party::Writer, "ci.v1.acme.import.i-1.events"),
            (Party::Writer, "ci.v1.acme.import.i-1.lanes"),
        ] {
            assert!(
                may_publish(&namespace.permissions(&party), subject),
                "{party:?} {subject}"
            );
            assert!(!may_publish(&tenant, subject), "tenant {subject}");
        }
        let writer = namespace.permissions(&Party::Writer);
        assert!(may_subscribe(&writer, "ci.v1.acme.api.import.status"));
        assert!(writer.allow_responses, "the writer answers the API");
        for subject in [
            "$SRV.PING",
            "$SRV.INFO.contact-import",
            "$SRV.STATS.contact-import.x1",
        ] {
            assert!(may_subscribe(&writer, subject), "{subject}");
        }
    }

    #[test]
    fn no_tenant_can_read_the_operators_replies_or_call_its_api() {
        let (namespace, _, _) = ids();
        for lookalike in ["OPERATOR_INBOX", "_OPERATOR_INBOX", "admin", "INBOX"] {
            let tenant =
                namespace.permissions(&Party::Tenant(AccountId::new(lookalike).expect("valid")));
            assert!(
                !may_subscribe(&tenant, &format!("{OPERATOR_INBOX_PREFIX}.x")),
                "{lookalike}"
            );
            assert!(
                !may_publish(&tenant, "ci.admin.v1.accounts.register"),
                "{lookalike}"
            );
        }
        let operator = namespace.permissions(&Party::Operator);
        assert!(may_publish(&operator, "ci.admin.v1.accounts.register"));
        assert!(!may_publish(&operator, "ci.v1.acme.api.contacts.export"));
        assert!(may_publish(&operator, "$SRV.INFO.contact-import"));
    }
}
