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

use crate::{AccountId, ApiError, ApiOperation, ApiReply, Namespace};
use crate::{
    AddAttributeRequest, AttributeDef, CancelRequest, ContactsPage, Empty, ErrorsPage,
    ErrorsRequest, ExportContactsRequest, FailedRowsPage, FailedRowsRequest, ImportStatus,
    ImportsListRequest, ImportsPage, PrepareImportReply, PrepareImportRequest,
    PrepareUploadRequest, Preview, PreviewRequest, RemoveAttributeRequest, SetAttributeRequest,
    StatusRequest, TemplateReply, UndoConflictsPage, UndoConflictsRequest, UndoReport, UndoRequest,
    UploadTarget,
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

macro_rules! operations {
    ($($operation:ident: $request:ty => $reply:ty),* $(,)?) => {
        /// One type per API operation, named like its [`ApiOperation`] variant.
        pub mod ops {
            $(
                #[doc = concat!("`", stringify!($operation), "`: ", stringify!($request), " → ", stringify!($reply), ".")]
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

operations! {
    PrepareImport: PrepareImportRequest => PrepareImportReply,
    PrepareUpload: PrepareUploadRequest => UploadTarget,
    Status: StatusRequest => ImportStatus,
    Errors: ErrorsRequest => ErrorsPage,
    FailedRows: FailedRowsRequest => FailedRowsPage,
    Cancel: CancelRequest => ImportStatus,
    Template: Empty => TemplateReply,
    Preview: PreviewRequest => Preview,
    AttributesList: Empty => Vec<AttributeDef>,
    AttributesAdd: AddAttributeRequest => AttributeDef,
    AttributesSet: SetAttributeRequest => AttributeDef,
    AttributesRemove: RemoveAttributeRequest => RemoveAttributeRequest,
    ContactsExport: ExportContactsRequest => ContactsPage,
    ImportsList: ImportsListRequest => ImportsPage,
    Undo: UndoRequest => UndoReport,
    UndoConflicts: UndoConflictsRequest => UndoConflictsPage,
}

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
}
