//! Progress events and summaries, published on the import's events subject. Callers publish
//! while they hold the import's turn and after the commit the event describes, so one
//! import's events come out in order and the summary is its last event.

use contact_contract::{
    message_id, ImportEvent, ImportEventKind, ImportSubjectKind, SCHEMA_VERSION,
};
use contact_runtime::publish::publish_json;

use crate::imports::ImportRow;
use crate::Writer;

/// Publishes `kind` for the import as `row` describes it. `what` names the event uniquely
/// within the import, so a repeat after a failed commit is dropped by JetStream.
pub async fn publish(
    writer: &Writer,
    row: &ImportRow,
    kind: ImportEventKind,
    what: &str,
) -> anyhow::Result<()> {
    let status = row.to_status();
    let subject = writer.namespace.import_subject(
        ImportSubjectKind::Events,
        &status.account,
        &status.import_id,
    );
    let id = message_id::event(&status.account, &status.import_id, what);
    let event = ImportEvent {
        schema: SCHEMA_VERSION,
        kind,
        import: status,
    };
    publish_json(&writer.jetstream, subject, &id, &event).await
}
