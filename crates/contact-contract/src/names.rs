//! Subject, stream, bucket and message-id names, and the identifiers that appear in them.
//!
//! Subjects carry the account right after the version (`ci.v1.<account>.…`), so NATS
//! permissions such as `ci.v1.acme.>` isolate a tenant.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An identifier that does not fit in a subject token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} \"{value}\": use 1 to 64 letters, digits, '-' or '_' (a namespace: lower-case letters and digits)")]
pub struct InvalidName {
    pub what: &'static str,
    pub value: String,
}

/// What [`check_token`] accepts, as a regular expression for the JSON Schemas.
const TOKEN_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}$";

fn check_token(what: &'static str, value: &str) -> Result<(), InvalidName> {
    let fits = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    if fits {
        Ok(())
    } else {
        Err(InvalidName {
            what,
            value: value.to_string(),
        })
    }
}

macro_rules! subject_token {
    ($name:ident, $what:literal) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidName> {
                let value = value.into();
                check_token($what, &value)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidName;
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Self::new(value)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidName;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "description": concat!("The ", $what, ": a single subject token."),
                    "type": "string",
                    "pattern": TOKEN_PATTERN,
                })
            }
        }
    };
}

subject_token!(AccountId, "account");
subject_token!(ImportId, "import id");

/// A deployment's prefix for every subject, stream and bucket (`ci` in production; tests use a
/// fresh one each so that they share nothing), and how many copies a JetStream cluster keeps
/// of each of its streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    name: String,
    subject_prefix: String,
    stream_prefix: String,
    replicas: usize,
    stream_max_bytes: Option<u64>,
}

impl Default for Namespace {
    fn default() -> Self {
        Self::new("ci").expect("the default namespace is a valid token")
    }
}

/// The import an import subject (`<ns>.v1.<account>.import.<import>.<kind>`) names, read
/// from its end, whatever the namespace: for log lines, not for deciding anything.
pub fn import_of_subject(subject: &str) -> Option<&str> {
    let mut tokens = subject.rsplit('.');
    let (_kind, import, literal) = (tokens.next()?, tokens.next()?, tokens.next()?);
    (literal == "import").then_some(import)
}

/// Which pipeline message an import subject carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportSubjectKind {
    Start,
    Chunks,
    Records,
    Control,
    Events,
    /// Writers tell each other that a lane of an import moved on (core NATS, no stream), so
    /// that a chunk waiting for that lane goes on at once, on whichever writer holds it.
    Lanes,
}

impl ImportSubjectKind {
    const ALL: [ImportSubjectKind; 6] = [
        Self::Start,
        Self::Chunks,
        Self::Records,
        Self::Control,
        Self::Events,
        Self::Lanes,
    ];

    /// The kind a subject's last token names, if any.
    pub fn from_suffix(token: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.suffix() == token)
    }

    /// The subject's last token for this kind.
    pub fn suffix(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Chunks => "chunks",
            Self::Records => "records",
            Self::Control => "control",
            Self::Events => "events",
            Self::Lanes => "lanes",
        }
    }
}

impl Namespace {
    /// Lower-case letters and digits only, so that subject and stream names map one to one.
    pub fn new(name: &str) -> Result<Self, InvalidName> {
        let fits = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit());
        if !fits {
            return Err(InvalidName {
                what: "namespace",
                value: name.to_string(),
            });
        }
        Ok(Self {
            name: name.to_string(),
            subject_prefix: format!("{}.v1", name.to_ascii_lowercase()),
            stream_prefix: name.to_ascii_uppercase(),
            replicas: 1,
            stream_max_bytes: None,
        })
    }

    /// The same namespace with `replicas` copies of each stream and bucket (1 on a single
    /// server, 3 in a three-node cluster; at most 5, as JetStream allows).
    pub fn with_replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas.clamp(1, 5);
        self
    }

    /// Copies a JetStream cluster keeps of each stream and bucket of the namespace.
    pub fn replicas(&self) -> usize {
        self.replicas
    }

    /// The most each stream of the namespace may hold (`JETSTREAM_STREAM_MAX_BYTES`; none
    /// at [`crate::limits::NO_BYTE_LIMIT`]).
    pub fn with_stream_max_bytes(mut self, max_bytes: u64) -> Self {
        self.stream_max_bytes = (max_bytes != crate::limits::NO_BYTE_LIMIT).then_some(max_bytes);
        self
    }

    pub fn stream_max_bytes(&self) -> Option<u64> {
        self.stream_max_bytes
    }

    /// The name it was made from (`ci`): what a database shared by deployments records.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `<ns>.v1.<account>.import.<import>.<kind>`
    pub fn import_subject(
        &self,
        kind: ImportSubjectKind,
        account: &AccountId,
        import: &ImportId,
    ) -> String {
        format!(
            "{}.{account}.import.{import}.{}",
            self.subject_prefix,
            kind.suffix()
        )
    }

    /// The subject of every import of every account for one kind (stream subjects, filters).
    pub fn import_wildcard(&self, kind: ImportSubjectKind) -> String {
        format!("{}.*.import.*.{}", self.subject_prefix, kind.suffix())
    }

    /// The subject of every import of one account for one kind.
    pub fn import_subject_wildcard(&self, kind: ImportSubjectKind, account: &AccountId) -> String {
        format!(
            "{}.{account}.import.*.{}",
            self.subject_prefix,
            kind.suffix()
        )
    }

    /// Reads account, import and kind back from an import subject.
    pub fn parse_import_subject(
        &self,
        subject: &str,
    ) -> Option<(AccountId, ImportId, ImportSubjectKind)> {
        let rest = subject
            .strip_prefix(&self.subject_prefix)?
            .strip_prefix('.')?;
        let mut tokens = rest.split('.');
        let account = AccountId::new(tokens.next()?).ok()?;
        if tokens.next()? != "import" {
            return None;
        }
        let import = ImportId::new(tokens.next()?).ok()?;
        let suffix = tokens.next()?;
        if tokens.next().is_some() {
            return None;
        }
        let kind = ImportSubjectKind::from_suffix(suffix)?;
        Some((account, import, kind))
    }

    /// `<ns>.v1.<account>.api.<operation>`: request/reply, served by the writer.
    pub fn api_subject(&self, account: &AccountId, operation: crate::ApiOperation) -> String {
        format!(
            "{}.{account}.api.{}",
            self.subject_prefix,
            operation.as_str()
        )
    }

    pub fn api_wildcard(&self) -> String {
        format!("{}.*.api.>", self.subject_prefix)
    }

    /// One operation of every account's API.
    pub fn api_wildcard_for(&self, operation: crate::ApiOperation) -> String {
        format!("{}.*.api.{}", self.subject_prefix, operation.as_str())
    }

    /// Every operation of one account's API.
    pub fn api_subject_wildcard(&self, account: &AccountId) -> String {
        format!("{}.{account}.api.>", self.subject_prefix)
    }

    /// `<ns>.admin.v1.<operation>`: the operator's API, served by the writer. Outside every
    /// account's subjects, whatever the account is called.
    pub fn operator_subject(&self, operation: crate::OperatorOperation) -> String {
        format!("{}.admin.v1.{}", self.name, operation.as_str())
    }

    pub fn operator_wildcard(&self) -> String {
        format!("{}.admin.v1.>", self.name)
    }

    /// Reads the operation back from an operator subject.
    pub fn parse_operator_subject(&self, subject: &str) -> Option<crate::OperatorOperation> {
        let operation = subject
            .strip_prefix(&self.name)?
            .strip_prefix(".admin.v1.")?;
        crate::OperatorOperation::ALL
            .into_iter()
            .find(|known| known.as_str() == operation)
    }

    /// Reads account and operation back from an API subject.
    pub fn parse_api_subject(&self, subject: &str) -> Option<(AccountId, crate::ApiOperation)> {
        let rest = subject
            .strip_prefix(&self.subject_prefix)?
            .strip_prefix('.')?;
        let (account, rest) = rest.split_once('.')?;
        let operation = rest.strip_prefix("api.")?;
        Some((
            AccountId::new(account).ok()?,
            crate::ApiOperation::from_subject_token(operation)?,
        ))
    }

    /// The queue group API responders share, so N writer replicas answer each request once.
    pub fn api_queue_group(&self) -> String {
        format!("{}-api", self.stream_prefix.to_ascii_lowercase())
    }

    pub fn requests_stream(&self) -> String {
        format!("{}_IMPORT_REQUESTS", self.stream_prefix)
    }

    pub fn chunks_stream(&self) -> String {
        format!("{}_IMPORT_CHUNKS", self.stream_prefix)
    }

    pub fn records_stream(&self) -> String {
        format!("{}_IMPORT_RECORDS", self.stream_prefix)
    }

    pub fn events_stream(&self) -> String {
        format!("{}_IMPORT_EVENTS", self.stream_prefix)
    }

    /// The object store bucket an account's uploaded files travel through. One bucket per
    /// account, so that NATS permissions can let a tenant write (and replace) its own files
    /// and nobody else's: object store subjects carry the bucket, not the object's name.
    pub fn uploads_bucket(&self, account: &AccountId) -> String {
        format!("{}_UPLOADS_{account}", self.stream_prefix)
    }

    /// The stream behind an account's uploads bucket (object store convention `OBJ_<bucket>`).
    pub fn uploads_stream(&self, account: &AccountId) -> String {
        format!("OBJ_{}", self.uploads_bucket(account))
    }

    /// What every uploads stream of the namespace starts with, for operators and tests that
    /// remove them.
    pub fn uploads_stream_prefix(&self) -> String {
        format!("OBJ_{}_UPLOADS_", self.stream_prefix)
    }

    /// The subject holding the chunks of one stored object (object store convention).
    pub fn upload_chunk_subject(&self, account: &AccountId, object_nuid: &str) -> String {
        format!("$O.{}.C.{object_nuid}", self.uploads_bucket(account))
    }

    /// The pipeline's streams (uploads buckets are per account: see `uploads_stream_prefix`).
    pub fn all_streams(&self) -> Vec<String> {
        vec![
            self.requests_stream(),
            self.chunks_stream(),
            self.records_stream(),
            self.events_stream(),
        ]
    }

    /// Where a tenant's replies arrive (`_INBOX_<account>.…`): its permissions let it, and
    /// nobody else, read there.
    pub fn inbox_prefix(account: &AccountId) -> String {
        format!("_INBOX_{account}")
    }

    /// Where, in the secure deployment, a tenant's account finds the part of the services'
    /// JetStream API it is lent (`JS.<account>.API`, its client's JetStream prefix): in an
    /// account of her own, `$JS.API.…` reaches no stream at all.
    pub fn tenant_jetstream_api(account: &AccountId) -> String {
        format!("JS.{account}.API")
    }

    /// True when `reply` is an inbox of `account`'s own, of the services (`_INBOX.…`, which
    /// no tenant reads), or the server's answer subject of a request that crossed from a
    /// tenant's own account (`_R_.…`, which routes back into that account alone): the only
    /// places an answer to `account`'s API goes. The server checks no permission of a
    /// request's sender on its reply subject, so answering wherever a request says would let
    /// a tenant publish, through the writer, on any subject.
    pub fn is_inbox_of(account: &AccountId, reply: &str) -> bool {
        let own = reply
            .strip_prefix(&Self::inbox_prefix(account))
            .is_some_and(|rest| rest.len() > 1 && rest.starts_with('.'));
        let services = ["_INBOX.", "_R_."].iter().any(|prefix| {
            reply
                .strip_prefix(prefix)
                .is_some_and(|rest| !rest.is_empty())
        });
        own || services
    }
}

/// `Nats-Msg-Id` values: the same logical message always gets the same id, so a repeated
/// publish inside the stream's duplicate window is dropped by JetStream.
pub mod message_id {
    use super::{AccountId, ImportId};

    pub fn chunk(account: &AccountId, import: &ImportId, chunk_index: u32) -> String {
        format!("{account}.{import}.chunk.{chunk_index}")
    }

    pub fn records(account: &AccountId, import: &ImportId, chunk_index: u32) -> String {
        format!("{account}.{import}.records.{chunk_index}")
    }

    pub fn control(account: &AccountId, import: &ImportId, what: &str) -> String {
        format!("{account}.{import}.control.{what}")
    }

    pub fn event(account: &AccountId, import: &ImportId, what: &str) -> String {
        format!("{account}.{import}.event.{what}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (AccountId, ImportId) {
        (
            AccountId::new("acme").expect("valid"),
            ImportId::new("imp-1").expect("valid"),
        )
    }

    #[test]
    fn an_accounts_answers_go_only_to_its_own_inbox_or_the_services() {
        let acme = AccountId::new("acme").expect("valid");
        for reply in ["_INBOX_acme.abc.1", "_INBOX.xyz.2", "_R_.Xy1.z"] {
            assert!(Namespace::is_inbox_of(&acme, reply), "{reply}");
        }
        for reply in [
            "_INBOX_acmex.abc",
            "_INBOX_acme",
            "_INBOX_acme.",
            "_INBOX.",
            "_R_.",
            "_R_",
            "_INBOX_globex.abc",
            "ci.v1.globex.import.i-1.start",
            "ci.v1.acme.import.i-1.records",
            "$JS.API.STREAM.DELETE.CI_IMPORT_EVENTS",
        ] {
            assert!(!Namespace::is_inbox_of(&acme, reply), "{reply}");
        }
    }

    #[test]
    fn import_subjects_carry_the_account_and_parse_back() {
        let namespace = Namespace::default();
        let (account, import) = ids();
        for kind in ImportSubjectKind::ALL {
            let subject = namespace.import_subject(kind, &account, &import);
            assert!(subject.starts_with("ci.v1.acme.import.imp-1."), "{subject}");
            assert_eq!(
                namespace.parse_import_subject(&subject),
                Some((account.clone(), import.clone(), kind))
            );
        }
        assert_eq!(
            namespace.parse_import_subject("other.v1.acme.import.imp-1.start"),
            None
        );
        assert_eq!(
            namespace.parse_import_subject("ci.v1.acme.import.imp-1.start.extra"),
            None
        );
    }

    #[test]
    fn api_subjects_parse_back_to_their_operation() {
        let namespace = Namespace::new("t1").expect("valid");
        let (account, _) = ids();
        for &operation in crate::ApiOperation::ALL {
            let subject = namespace.api_subject(&account, operation);
            assert_eq!(
                namespace.parse_api_subject(&subject),
                Some((account.clone(), operation))
            );
        }
    }

    #[test]
    fn names_that_cannot_be_subject_tokens_are_refused() {
        for bad in ["", "a.b", "a b", "a*", ">", &"x".repeat(65)] {
            assert!(AccountId::new(bad).is_err(), "{bad:?}");
        }
        let error = ImportId::new("x.y").expect_err("dot");
        assert!(error.to_string().contains("import id \"x.y\""), "{error}");
    }

    #[test]
    fn namespaces_give_disjoint_stream_names() {
        let first = Namespace::new("t1").expect("valid");
        let second = Namespace::default();
        assert_eq!(first.chunks_stream(), "T1_IMPORT_CHUNKS");
        assert_ne!(first.chunks_stream(), second.chunks_stream());
        for clashing in ["t-1", "t_1", "T1", ""] {
            assert!(Namespace::new(clashing).is_err(), "{clashing}");
        }
    }
}
