//! Progress events and summaries, published on the import's events subject.
//!
//! Several writers apply one import's lanes at once, so their events may reach the stream in
//! another order than their commits: each event carries the import's sequence (lane parts
//! applied when it was read, in the same snapshot as its counters), and consumers order by it.
//! The summary is published after the commit that closes the import, with the highest
//! sequence, so a client that sees it finds every contact written.

use contact_contract::{
    message_id, ImportEvent, ImportEventKind, ImportSubjectKind, SCHEMA_VERSION,
};
use contact_runtime::publish::{publish_json, send_json};

use crate::context::Writer;
use crate::db::imports::ImportRow;

/// Publishes `kind` for the import as `row` describes it and waits until the stream has it.
/// Safe to repeat: the message id names the event, so JetStream drops a repeat.
pub async fn publish(
    writer: &Writer,
    row: &ImportRow,
    kind: ImportEventKind,
) -> anyhow::Result<()> {
    let (subject, id, event) = event(writer, row, kind);
    publish_json(&writer.jetstream, subject, &id, &event).await
}

/// Sends a progress event without waiting for the stream: a lost one is superseded by the
/// next, or by the summary.
pub async fn send_progress(writer: &Writer, row: &ImportRow) -> anyhow::Result<()> {
    let (subject, id, event) = event(writer, row, ImportEventKind::Progress);
    drop(send_json(&writer.jetstream, subject, &id, &event).await?);
    Ok(())
}

fn event(writer: &Writer, row: &ImportRow, kind: ImportEventKind) -> (String, String, ImportEvent) {
    let status = row.to_status();
    let sequence = row.event_sequence();
    let subject = writer.namespace.import_subject(
        ImportSubjectKind::Events,
        &status.account,
        &status.import_id,
    );
    let what = match kind {
        ImportEventKind::Started => "started".to_string(),
        ImportEventKind::Progress => format!("progress.{sequence}"),
        ImportEventKind::Summary => "summary".to_string(),
    };
    let id = message_id::event(&status.account, &status.import_id, &what);
    let event = ImportEvent {
        schema: SCHEMA_VERSION,
        sequence: if kind == ImportEventKind::Started {
            0
        } else {
            sequence
        },
        kind,
        import: status,
    };
    (subject, id, event)
}
