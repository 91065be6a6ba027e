//! Publishing JSON to JetStream with a `Nats-Msg-Id`, so that a repeated publish of the same
//! logical message is dropped by the stream.

use anyhow::Context as _;
use async_nats::jetstream::{self, context::PublishAckFuture};
use bytes::Bytes;
use contact_contract::MESSAGE_ID_HEADER;
use serde::Serialize;

/// Sends without waiting for the stream's acknowledgement; await the returned future for it.
/// Lets a publisher keep several messages in flight.
pub async fn send_json<T: Serialize>(
    jetstream: &jetstream::Context,
    subject: String,
    message_id: &str,
    body: &T,
) -> anyhow::Result<PublishAckFuture> {
    let payload = Bytes::from(serde_json::to_vec(body).context("encoding message")?);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(MESSAGE_ID_HEADER, message_id);
    jetstream
        .publish_with_headers(subject.clone(), headers, payload)
        .await
        .with_context(|| format!("publishing to {subject}"))
}

/// Publishes and waits until the stream has stored the message (or dropped it as a repeat).
pub async fn publish_json<T: Serialize>(
    jetstream: &jetstream::Context,
    subject: String,
    message_id: &str,
    body: &T,
) -> anyhow::Result<()> {
    send_json(jetstream, subject, message_id, body)
        .await?
        .await
        .with_context(|| format!("stream did not store message {message_id}"))?;
    Ok(())
}
