//! Calling the request/reply API: the one typed way for services and clients to ask the writer.

use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{AccountId, ApiError, ApiOperation, ApiReply, Namespace};

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

/// Sends `request` to `operation` of `account` and decodes the reply.
pub async fn call<Request: Serialize, Reply: DeserializeOwned>(
    client: &async_nats::Client,
    namespace: &Namespace,
    account: &AccountId,
    operation: ApiOperation,
    request: &Request,
) -> Result<Reply, CallError> {
    let subject = namespace.api_subject(account, operation);
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
    let reply: ApiReply<Reply> =
        serde_json::from_slice(&reply.payload).map_err(|error| CallError::Decode {
            subject,
            detail: error.to_string(),
        })?;
    Ok(reply.into_result()?)
}
