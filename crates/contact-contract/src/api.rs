//! Calling the request/reply API: the one typed way for services and clients to ask the writer.
//!
//! Each operation is a type of [`ops`] that names its request and reply bodies
//! ([`Operation`]): the writer answers it, clients call it and the JSON Schemas describe it
//! from this one table, so none of the three can take or give another body than the others.

use std::time::Duration;

use bytes::Bytes;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{AccountId, ApiError, ApiReply, Namespace};
use crate::{
    AddAttributeRequest, AttributeDef, CancelRequest, ContactsPage, Empty, ErrorsPage,
    ErrorsRequest, EventsPage, EventsRequest, ExportContactsRequest, FailedRowsPage,
    FailedRowsRequest, ImportOptionsReply, ImportStatus, ImportsListRequest, ImportsPage,
    PrepareImportReply, PrepareImportRequest, PrepareUploadRequest, Preview, PreviewRequest,
    RemoveAttributeRequest, SetAttributeRequest, StatusRequest, TemplateReply, UndoConflictsPage,
    UndoConflictsRequest, UndoReport, UndoRequest, UploadTarget,
};

/// An API operation: where it is served and the bodies it takes and gives.
pub trait Operation {
    const OPERATION: ApiOperation;
    type Request: Serialize + DeserializeOwned + JsonSchema + Send + Sync;
    type Reply: Serialize + DeserializeOwned + JsonSchema + Send;
}

/// Something done for every operation of the table (the schemas are generated this way).
pub trait OperationVisitor {
    fn visit<O: Operation>(&mut self);
}

/// The table of API operations, the one place they are listed: for each, its
/// [`ApiOperation`] variant, the last tokens of its subject, the name of the function that
/// serves it, and its request and reply bodies. It hands the table to `$callback`, a macro
/// that makes something of every operation: the contract makes the enum and the [`ops`] types
/// from it, the writer its dispatch, so adding an operation is adding a line here (and the
/// function that serves it).
#[macro_export]
macro_rules! api_operations {
    ($callback:ident) => {
        $callback! {
            PrepareImport "import.prepare" prepare_import: PrepareImportRequest => PrepareImportReply,
            PrepareUpload "import.upload" prepare_upload: PrepareUploadRequest => UploadTarget,
            Status "import.status" status: StatusRequest => ImportStatus,
            Options "import.options" import_options: StatusRequest => ImportOptionsReply,
            Errors "import.errors" errors: ErrorsRequest => ErrorsPage,
            Events "import.events" events: EventsRequest => EventsPage,
            FailedRows "import.failed_rows" failed_rows: FailedRowsRequest => FailedRowsPage,
            Cancel "import.cancel" cancel: CancelRequest => ImportStatus,
            Template "import.template" template: Empty => TemplateReply,
            Preview "import.preview" preview: PreviewRequest => Preview,
            AttributesList "attributes.list" list_attributes: Empty => Vec<AttributeDef>,
            AttributesAdd "attributes.add" add_attribute: AddAttributeRequest => AttributeDef,
            AttributesSet "attributes.set" set_attribute: SetAttributeRequest => AttributeDef,
            AttributesRemove "attributes.remove" remove_attribute: RemoveAttributeRequest => RemoveAttributeRequest,
            ContactsExport "contacts.export" export_contacts: ExportContactsRequest => ContactsPage,
            ImportsList "imports.list" list_imports: ImportsListRequest => ImportsPage,
            Undo "import.undo" undo: UndoRequest => UndoReport,
            UndoConflicts "import.undo_conflicts" undo_conflicts: UndoConflictsRequest => UndoConflictsPage,
        }
    };
}

macro_rules! define_operations {
    ($($operation:ident $token:literal $serve:ident: $request:ty => $reply:ty),* $(,)?) => {
        /// The request/reply operations the writer serves.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ApiOperation {
            $($operation,)*
        }

        impl ApiOperation {
            pub const ALL: &'static [ApiOperation] = &[$(Self::$operation,)*];

            /// The last tokens of the operation's subject.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$operation => $token,)*
                }
            }

            pub(crate) fn from_subject_token(token: &str) -> Option<Self> {
                match token {
                    $($token => Some(Self::$operation),)*
                    _ => None,
                }
            }
        }

        /// One type per API operation, named like its [`ApiOperation`] variant.
        pub mod ops {
            $(
                #[doc = concat!("`", $token, "`: ", stringify!($request), " → ", stringify!($reply), ".")]
                #[derive(Debug)]
                pub enum $operation {}
            )*
        }

        $(
            impl Operation for ops::$operation {
                const OPERATION: ApiOperation = ApiOperation::$operation;
                type Request = $request;
                type Reply = $reply;
            }
        )*

        /// Visits every operation, in the order of [`ApiOperation::ALL`].
        pub fn visit_operations(visitor: &mut impl OperationVisitor) {
            $(visitor.visit::<ops::$operation>();)*
        }
    };
}

api_operations!(define_operations);

/// Why an API call got no answer; the variants are what a caller decides on.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Nobody serves the API: contact-writer is not running (or not connected to this NATS).
    #[error("no contact-writer is answering on {subject} (is the writer running?)")]
    NoResponder { subject: String },
    #[error("contact-writer did not answer on {subject} within {timeout:?}")]
    TimedOut { subject: String, timeout: Duration },
    /// The writer answered with an error.
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("cannot reach NATS: {0}")]
    Transport(String),
    #[error("unreadable reply on {subject}: {detail}")]
    Decode { subject: String, detail: String },
    /// The NATS server refused the subject to these credentials (another account's, or an
    /// operation the tenant may not call).
    #[error("NATS refused {subject} to these credentials ({detail})")]
    Refused { subject: String, detail: String },
}

impl CallError {
    /// True when trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::NoResponder { .. } | Self::TimedOut { .. } | Self::Transport(_) => true,
            Self::Api(error) => error.kind == crate::ApiErrorKind::Unavailable,
            Self::Decode { .. } | Self::Refused { .. } => false,
        }
    }
}

/// Sends `request` to operation `O` of `account` and decodes the reply.
pub async fn call<O: Operation>(
    client: &async_nats::Client,
    namespace: &Namespace,
    account: &AccountId,
    request: &O::Request,
) -> Result<O::Reply, CallError> {
    let subject = namespace.api_subject(account, O::OPERATION);
    let timeout = Duration::from_secs(30);
    let body = serde_json::to_vec(request).map_err(|error| CallError::Decode {
        subject: subject.clone(),
        detail: error.to_string(),
    })?;
    let request = async_nats::Request::new()
        .payload(Bytes::from(body))
        .timeout(Some(timeout));
    let reply = client
        .send_request(subject.clone(), request)
        .await
        .map_err(|error| match error.kind() {
            async_nats::RequestErrorKind::NoResponders => CallError::NoResponder {
                subject: subject.clone(),
            },
            async_nats::RequestErrorKind::TimedOut => CallError::TimedOut {
                subject: subject.clone(),
                timeout,
            },
            _ => CallError::Transport(error.to_string()),
        })?;
    let reply: ApiReply<O::Reply> =
        serde_json::from_slice(&reply.payload).map_err(|error| CallError::Decode {
            subject,
            detail: error.to_string(),
        })?;
    Ok(reply.into_result()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_every_operation_once_in_order() {
        struct Collect(Vec<ApiOperation>);
        impl OperationVisitor for Collect {
            fn visit<O: Operation>(&mut self) {
                self.0.push(O::OPERATION);
            }
        }
        let mut collect = Collect(Vec::new());
        visit_operations(&mut collect);
        assert_eq!(collect.0, ApiOperation::ALL);
    }

    #[test]
    fn every_subject_token_names_its_operation_and_no_other() {
        let mut tokens: Vec<&str> = ApiOperation::ALL.iter().map(|op| op.as_str()).collect();
        for operation in ApiOperation::ALL {
            assert_eq!(
                ApiOperation::from_subject_token(operation.as_str()),
                Some(*operation)
            );
        }
        tokens.sort_unstable();
        tokens.dedup();
        assert_eq!(tokens.len(), ApiOperation::ALL.len());
        assert_eq!(ApiOperation::from_subject_token("import"), None);
    }
}
