//! Progress events and summaries, published on the import's events subject.
//!
//! Several writers apply one import's lanes at once, so their events may reach the stream in
//! another order than their commits: each event carries the import's sequence (lane parts
//! applied when it was read, in the same snapshot as its counters), and consumers order by it.
//! The summary is published after the commit that closes the import, with the highest
//! sequence, so a client that sees it finds every contact written.
//!
//! A progress event is built from the import as a lane part's transaction reads it just before
//! its commit, by one lane only (`pipeline::lane::REPORTING_LANE`): that lane's row lock puts
//! those reads in the order of the commits, each seeing what the one before it saw, so a later
//! sequence never shows a lower count. A handler that applied only other lanes' parts reads
//! the progress under that lane's row lock, in the same order. Sums read by two lanes at once
//! could each miss the other's part: two events with one sequence and different counters.

use async_nats::jetstream::stream::DirectGetErrorKind;
use contact_contract::{
    message_id, AccountId, ImportEvent, ImportEventKind, ImportId, ImportSubjectKind, Namespace,
    FIRST_SCHEMA_VERSION,
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
    let (subject, id, event) = event(&writer.namespace, row, kind);
    publish_json(&writer.jetstream, subject, &id, &event).await
}

/// Sends a progress event without waiting for the stream: a lost one is superseded by the
/// next, or by the summary.
pub async fn send_progress(writer: &Writer, row: &ImportRow) -> anyhow::Result<()> {
    let (subject, id, event) = event(&writer.namespace, row, ImportEventKind::Progress);
    drop(send_json(&writer.jetstream, subject, &id, &event).await?);
    Ok(())
}

/// What [`stored_after`] read: the events, the stream position read up to, and whether it
/// stopped at its bounds rather than at the end.
pub struct StoredEvents {
    pub events: Vec<ImportEvent>,
    pub until: u64,
    pub more: bool,
}

/// An answer stays well under NATS's default 1 MiB payload however large its events are.
const STORED_EVENTS_BYTES: usize = 256 * 1024;

/// The import's events the events stream holds after position `after`, in its order: at
/// most `limit` messages read (a body passed over counts too, so that no answer scans without
/// end), stopping once their bodies pass [`STORED_EVENTS_BYTES`]. Read by
/// direct gets, which any replica of the stream answers (a lagging one answers with less,
/// which a follower reads again later). A body that is not an event of this import is passed
/// over: nothing but the writer publishes there, and nothing else is ever handed out.
pub async fn stored_after(
    writer: &Writer,
    account: &AccountId,
    import_id: &ImportId,
    after: u64,
    limit: usize,
) -> anyhow::Result<StoredEvents> {
    let subject = writer
        .namespace
        .import_subject(ImportSubjectKind::Events, account, import_id);
    let stream = writer
        .jetstream
        .get_stream_no_info(writer.namespace.events_stream())
        .await?;
    let (mut events, mut until, mut bytes, mut read) = (Vec::new(), after, 0, 0);
    while read < limit && bytes < STORED_EVENTS_BYTES {
        let Some(from) = until.checked_add(1) else {
            break;
        };
        let message = match stream
            .direct_get_next_for_subject(subject.as_str(), Some(from))
            .await
        {
            Ok(message) => message,
            Err(error) if error.kind() == DirectGetErrorKind::NotFound => {
                return Ok(StoredEvents {
                    events,
                    until,
                    more: false,
                })
            }
            Err(error) => return Err(error.into()),
        };
        until = message.sequence;
        read += 1;
        bytes += message.payload.len();
        match serde_json::from_slice::<ImportEvent>(&message.payload) {
            Ok(event)
                if event.import.account == *account && event.import.import_id == *import_id =>
            {
                events.push(event);
            }
            _ => tracing::warn!(
                %subject,
                sequence = message.sequence,
                "passing over a stored body that is not an event of its import"
            ),
        }
    }
    Ok(StoredEvents {
        events,
        until,
        more: true,
    })
}

/// The subject, message id and body of `kind` for the import as `row` describes it.
fn event(
    namespace: &Namespace,
    row: &ImportRow,
    kind: ImportEventKind,
) -> (String, String, ImportEvent) {
    let status = row.to_status();
    let sequence = row.event_sequence();
    let subject = namespace.import_subject(
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
        // Events hold nothing of a later version.
        schema: FIRST_SCHEMA_VERSION,
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

#[cfg(test)]
mod tests {
    use contact_contract::ImportState;

    use super::*;

    fn namespace() -> Namespace {
        Namespace::new("ci").expect("valid namespace")
    }

    fn running(parts_applied: i64) -> ImportRow {
        ImportRow {
            parts_applied,
            ..ImportRow::example("acme", "imp-1", ImportState::Running)
        }
    }

    #[test]
    fn every_event_goes_to_its_imports_events_subject() {
        let (subject, _, event) = event(&namespace(), &running(3), ImportEventKind::Progress);
        assert_eq!(subject, "ci.v1.acme.import.imp-1.events");
        assert_eq!(event.import.import_id.as_str(), "imp-1");
        assert_eq!(event.schema, FIRST_SCHEMA_VERSION);
    }

    #[test]
    fn started_comes_first_whatever_the_row_has_applied() {
        let (_, id, event) = event(&namespace(), &running(5), ImportEventKind::Started);
        assert_eq!(event.sequence, 0);
        let (_, again, _) = event_of(&running(9), ImportEventKind::Started);
        assert_eq!(id, again, "a repeated start is dropped by the stream");
    }

    #[test]
    fn each_progress_has_the_id_of_its_sequence_so_only_a_repeat_is_dropped() {
        let (_, first, at_three) = event_of(&running(3), ImportEventKind::Progress);
        let (_, repeat, _) = event_of(&running(3), ImportEventKind::Progress);
        let (_, later, at_four) = event_of(&running(4), ImportEventKind::Progress);
        assert_eq!((at_three.sequence, at_four.sequence), (3, 4));
        assert_eq!(first, repeat);
        assert_ne!(first, later);
    }

    #[test]
    fn the_summary_is_one_message_ordered_after_every_progress() {
        let ended = |state, parts| ImportRow {
            parts_applied: parts,
            ..ImportRow::example("acme", "imp-1", state)
        };
        let (_, id, summary) =
            event_of(&ended(ImportState::Completed, 6), ImportEventKind::Summary);
        let (_, last_progress_id, last_progress) = event_of(&running(6), ImportEventKind::Progress);
        assert!(summary.sequence > last_progress.sequence);
        assert_ne!(id, last_progress_id);
        let (_, cancelled_id, _) =
            event_of(&ended(ImportState::Cancelled, 2), ImportEventKind::Summary);
        assert_eq!(id, cancelled_id, "one summary per import, whatever its end");
    }

    fn event_of(row: &ImportRow, kind: ImportEventKind) -> (String, String, ImportEvent) {
        event(&namespace(), row, kind)
    }
}
