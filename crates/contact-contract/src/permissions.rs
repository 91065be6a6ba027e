//! What each party of a deployment may publish and subscribe to, and what crosses between
//! the NATS accounts, derived from the subjects this crate owns. `contact-import-admin` writes
//! these into the NATS server's configuration; the README and the AsyncAPI document explain
//! them.
//!
//! The services (and the operator) share one account, [`SERVICES_ACCOUNT`], which alone has
//! JetStream. Each tenant has an account of her own, into which the services' account lends
//! exactly her contract ([`Namespace::lent_to_tenant`]): her start subject, her API, her
//! uploads bucket and the three JetStream requests its client makes on it (under her own
//! prefix, [`Namespace::tenant_jetstream_api`]), and her imports' events. Nothing else of the
//! services' account, and nothing of any other tenant's, exists in hers.
//!
//! Why accounts and not subject permissions alone: the server never checks a request's reply
//! subject against the permissions of whoever sent it, and whoever answers (JetStream, the
//! writer) publishes there with its own rights. In one shared account an acknowledgement
//! aimed at `$JS.API.STREAM.PURGE.<stream>` is obeyed, and a direct get or a consumer
//! publishes her bytes on any subject she names (docs/security.md, "Reply subjects"). A
//! request that crosses into the services' account carries the server's own reply subject
//! (`_R_.…`), whose answer goes back into her account only, where it reaches nothing of
//! anyone else, except what is lent to it: an answer aimed at a lent subject crosses again
//! whatever her permissions say, so what is lent must be harmless in her hands whoever sends
//! it. Within her account, her permissions allow exactly what is lent, and
//! give her no consumer and no direct get; the services still drop a body on an import's
//! subject that does not name that import (`gate`), and the writer answers only an inbox.

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

/// The NATS account of the services and the operator: it holds every stream.
pub const SERVICES_ACCOUNT: &str = "SERVICES";

/// The NATS account of one tenant: her users, and what the services' account lends her.
pub fn tenant_nats_account(account: &AccountId) -> String {
    format!("TENANT_{account}")
}

/// What the services' account lends one tenant's account: the only things that cross
/// between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lent {
    /// Requests she publishes on `local` arrive in the services' account on `subject`; the
    /// answer comes back to her reply subject.
    Service { subject: String, local: String },
    /// What the services publish on `subject` reaches her account on the same subject.
    Stream { subject: String },
}

impl Lent {
    /// Requests she sends on the very subject they arrive on.
    fn service(subject: String) -> Self {
        Self::Service {
            local: subject.clone(),
            subject,
        }
    }

    /// Where her account publishes what is lent: none for a stream.
    pub fn sent_on(&self) -> Option<&str> {
        match self {
            Self::Service { local, .. } => Some(local),
            Self::Stream { .. } => None,
        }
    }

    /// Where her account receives what is lent: none for a service.
    pub fn received_on(&self) -> Option<&str> {
        match self {
            Self::Stream { subject } => Some(subject),
            Self::Service { .. } => None,
        }
    }
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
                let lent = self.lent_to_tenant(account);
                Permissions {
                    publish: lent
                        .iter()
                        .filter_map(Lent::sent_on)
                        .map(Into::into)
                        .collect(),
                    publish_denied: vec![self.api_subject(account, ApiOperation::PrepareImport)],
                    subscribe: lent
                        .iter()
                        .filter_map(Lent::received_on)
                        .map(Into::into)
                        .chain([format!("{}.>", Namespace::inbox_prefix(account))])
                        .collect(),
                    allow_responses: false,
                }
            }
        }
    }

    /// What the services' account offers to be lent, for every tenant at once: one entry per
    /// kind of subject, whatever tenants there are. Which tenant gets what is in her imports
    /// alone ([`Namespace::lent_to_tenant`]), and only the configuration `contact-import-admin`
    /// writes declares imports (the server has no account resolver a tenant could feed).
    pub fn lendable(&self) -> Vec<Lent> {
        let any_account = |kind| self.import_wildcard(kind);
        vec![
            Lent::service(any_account(ImportSubjectKind::Start)),
            Lent::service(self.api_wildcard()),
            Lent::service("$O.*.>".into()),
            Lent::service("$JS.API.STREAM.INFO.*".into()),
            Lent::service("$JS.API.STREAM.MSG.GET.*".into()),
            Lent::service("$JS.API.STREAM.PURGE.*".into()),
            Lent::Stream {
                subject: any_account(ImportSubjectKind::Events),
            },
        ]
    }

    /// Exactly `account`'s contract, lent by the services' account to hers: what its client
    /// sends (start requests, API requests, the uploads bucket's objects and the JetStream
    /// requests on it that reading and replacing an object take) and what it follows (its
    /// imports' events). A consumer or a direct get is not lent: either publishes stored bytes
    /// on whatever subject the asker names.
    pub fn lent_to_tenant(&self, account: &AccountId) -> Vec<Lent> {
        let uploads = self.uploads_stream(account);
        let jetstream = |request: &str| Lent::Service {
            subject: format!("$JS.API.{request}.{uploads}"),
            local: format!(
                "{}.{request}.{uploads}",
                Namespace::tenant_jetstream_api(account)
            ),
        };
        vec![
            Lent::service(self.import_subject_wildcard(ImportSubjectKind::Start, account)),
            Lent::service(self.api_subject_wildcard(account)),
            Lent::service(format!("$O.{}.>", self.uploads_bucket(account))),
            jetstream("STREAM.INFO"),
            jetstream("STREAM.MSG.GET"),
            jetstream("STREAM.PURGE"),
            Lent::Stream {
                subject: self.import_subject_wildcard(ImportSubjectKind::Events, account),
            },
        ]
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
            "JS.acme.API.STREAM.INFO.OBJ_CI_UPLOADS_acme",
            "JS.acme.API.STREAM.MSG.GET.OBJ_CI_UPLOADS_acme",
            "JS.acme.API.STREAM.PURGE.OBJ_CI_UPLOADS_acme",
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
            // Her account has no JetStream of its own: only what is lent, under her prefix.
            "$JS.API.STREAM.INFO.OBJ_CI_UPLOADS_acme",
            "$JS.API.STREAM.PURGE.OBJ_CI_UPLOADS_acme",
            "JS.acme.API.STREAM.DELETE.OBJ_CI_UPLOADS_acme",
            "JS.acme.API.DIRECT.GET.OBJ_CI_UPLOADS_acme",
            "JS.acme.API.CONSUMER.CREATE.OBJ_CI_UPLOADS_acme",
            "JS.acme.API.STREAM.INFO.OBJ_CI_UPLOADS_globex",
            "JS.globex.API.STREAM.INFO.OBJ_CI_UPLOADS_globex",
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
    fn a_tenants_account_is_lent_its_own_contract_and_what_it_publishes_goes_there() {
        let (namespace, acme, _) = ids();
        let tenant = namespace.permissions(&Party::Tenant(acme.clone()));
        let lent = namespace.lent_to_tenant(&acme);
        for lent in &lent {
            let (subject, local) = match lent {
                Lent::Service { subject, local } => (subject, local),
                Lent::Stream { subject } => (subject, subject),
            };
            assert!(
                subject.contains("acme") && local.contains("acme"),
                "{lent:?} names her account"
            );
            assert!(
                !subject.contains("DIRECT") && !subject.contains("CONSUMER"),
                "{lent:?}"
            );
        }
        // Everything she may publish is lent (nothing else reaches the services), and every
        // JetStream request is lent under her prefix, onto her own uploads stream.
        for allowed in &tenant.publish {
            assert!(
                lent.iter()
                    .any(|lent| matches!(lent, Lent::Service { local, .. } if local == allowed)),
                "{allowed} is lent"
            );
        }
        assert!(lent.contains(&Lent::Service {
            subject: "$JS.API.STREAM.MSG.GET.OBJ_CI_UPLOADS_acme".into(),
            local: "JS.acme.API.STREAM.MSG.GET.OBJ_CI_UPLOADS_acme".into(),
        }));
        assert!(lent.contains(&Lent::Stream {
            subject: "ci.v1.acme.import.*.events".into()
        }));
        assert_ne!(tenant_nats_account(&acme), SERVICES_ACCOUNT);
        let services_lookalike = AccountId::new("SERVICES").expect("valid");
        assert_ne!(tenant_nats_account(&services_lookalike), SERVICES_ACCOUNT);
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
