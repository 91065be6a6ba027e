//! Publishing JSON to JetStream with a `Nats-Msg-Id`, so that a repeated publish of the same
//! logical message is dropped by the stream, and the `traceparent` of the work at hand.

use anyhow::Context as _;
use async_nats::jetstream::{self, context::PublishAckFuture};
use bytes::Bytes;
use contact_contract::MESSAGE_ID_HEADER;
use serde::Serialize;

/// The headers of a pipeline message: its id, and its trace when it is published while a
/// message is handled.
fn headers_for(message_id: &str) -> async_nats::HeaderMap {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(MESSAGE_ID_HEADER, message_id);
    contact_contract::trace::add_to(&mut headers);
    headers
}

/// Sends without waiting for the stream's acknowledgement; await the returned future for it.
/// Lets a publisher keep several messages in flight.
pub async fn send_json<T: Serialize>(
    jetstream: &jetstream::Context,
    subject: String,
    message_id: &str,
    body: &T,
) -> anyhow::Result<PublishAckFuture> {
    let payload = Bytes::from(serde_json::to_vec(body).context("encoding message")?);
    let headers = headers_for(message_id);
    jetstream
        .publish_with_headers(subject.clone(), headers, payload)
        .await
        .with_context(|| format!("publishing to {subject}"))
}

/// Publishes an encoded body and waits until the stream has stored it (or dropped it as a
/// repeat).
pub async fn publish_bytes(
    jetstream: &jetstream::Context,
    subject: String,
    message_id: &str,
    body: Vec<u8>,
) -> anyhow::Result<()> {
    let headers = headers_for(message_id);
    jetstream
        .publish_with_headers(subject.clone(), headers, Bytes::from(body))
        .await
        .with_context(|| format!("publishing to {subject}"))?
        .await
        .with_context(|| format!("stream did not store message {message_id}"))?;
    Ok(())
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

/// Fails `request`'s import for `reason` by telling the writer (a `rejected` control message),
/// which records the failure and publishes the summary: how ingest and mapper end an import
/// whose message can never be handled.
pub async fn publish_rejection(
    jetstream: &jetstream::Context,
    namespace: &contact_contract::Namespace,
    request: contact_contract::ImportRequest,
    reason: &str,
) -> anyhow::Result<()> {
    let subject = namespace.import_subject(
        contact_contract::ImportSubjectKind::Control,
        &request.account,
        &request.import_id,
    );
    let id =
        contact_contract::message_id::control(&request.account, &request.import_id, "rejected");
    let control = contact_contract::ImportControl::rejection(request, reason.to_string());
    publish_json(jetstream, subject, &id, &control).await
}
