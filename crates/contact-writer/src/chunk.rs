//! Applying every lane of one validated chunk: the lanes that have reached the chunk are
//! applied at once, each in its own transaction; the others are waited for, without a
//! connection, until the writer holding the chunk before them moves them on and says so.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use contact_contract::convert_all;
use contact_contract::ValidatedChunk;
use contact_core::validate::ValidRecord;
use futures::future::join_all;

use crate::apply::{self, PartDisposition};
use crate::{signals, Writer};

/// How long a chunk waits in hand for its lanes before it goes back to JetStream (so that a
/// chunk whose predecessor is lost does not hold a place here for ever).
const LONGEST_WAIT_IN_HAND: Duration = Duration::from_secs(30);

/// A waiting chunk looks at its lanes again after this long even without a signal.
const RECHECK_BEHIND: Duration = Duration::from_millis(250);

/// A lane that another transaction holds is tried again after this long.
const RECHECK_BUSY: Duration = Duration::from_millis(10);

/// What became of a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkApplied {
    /// Every lane is applied (now or before); `last_lane_done` when one of them had no chunk
    /// left after this one.
    Done { last_lane_done: bool },
    /// The import is over: nothing more is written.
    ImportClosed,
    /// Some lanes have not reached the chunk within the wait, or the writer is stopping.
    StillWaiting(String),
    /// No import of that id is registered (yet).
    UnknownImport,
    /// It can never be applied; the import must fail for this reason.
    Unwritable(String),
}

pub async fn apply_chunk(
    writer: &Writer,
    mut chunk: ValidatedChunk,
) -> anyhow::Result<ChunkApplied> {
    // Each lane's rows, until the lane is written.
    let mut lanes: Vec<Option<Vec<ValidRecord>>> = std::mem::take(&mut chunk.lanes)
        .into_iter()
        .map(|lane| Some(convert_all(lane)))
        .collect();
    let lane_count = lanes.len();
    let chunk = &chunk;
    let (account, import) = (&chunk.account, &chunk.import_id);
    let index = chunk.chunk_index;
    let cursors = writer.signals.watch(account, import);
    let mut heard = cursors.subscribe();
    // Lanes this writer knows to be behind the chunk are not tried until they reach it.
    let (mut to_try, mut behind): (Vec<u32>, Vec<u32>) = {
        let known = heard.borrow();
        (0..lane_count as u32).partition(|lane| known.get(lane).is_none_or(|&next| next >= index))
    };
    let mut busy = Vec::<u32>::new();
    let mut last_lane_done = false;
    let given_up_at = Instant::now() + LONGEST_WAIT_IN_HAND;
    loop {
        let tried = join_all(
            lanes
                .iter_mut()
                .enumerate()
                .filter(|(lane, _)| to_try.contains(&(*lane as u32)))
                .map(|(lane, records)| async move {
                    let _slot = writer
                        .database_slots
                        .acquire()
                        .await
                        .expect("the slots are never closed");
                    let lane = lane as u32;
                    let disposition =
                        apply::apply_lane(writer, chunk, lane_count, lane, records).await;
                    (lane, disposition)
                }),
        )
        .await;
        for (lane, disposition) in tried {
            let disposition = disposition?;
            tracing::trace!(chunk = index, lane, ?disposition, "lane tried");
            match disposition {
                PartDisposition::Applied { lane_done } => {
                    writer.stats.lanes_applied.fetch_add(1, Ordering::Relaxed);
                    last_lane_done |= lane_done;
                    signals::announce(writer, account, import, lane, index + 1).await;
                }
                PartDisposition::AlreadyApplied => {}
                PartDisposition::ImportClosed => return Ok(ChunkApplied::ImportClosed),
                PartDisposition::Behind { next_chunk } => {
                    writer.signals.lane_at(account, import, lane, next_chunk);
                    behind.push(lane);
                }
                PartDisposition::Busy(_) => busy.push(lane),
                PartDisposition::UnknownImport => return Ok(ChunkApplied::UnknownImport),
                PartDisposition::Unwritable(reason) => return Ok(ChunkApplied::Unwritable(reason)),
            }
        }
        if behind.is_empty() && busy.is_empty() {
            break;
        }
        if Instant::now() >= given_up_at {
            return Ok(ChunkApplied::StillWaiting(format!(
                "lanes {behind:?} have not reached chunk {index}"
            )));
        }
        let reached = |known: &HashMap<u32, u32>| {
            behind
                .iter()
                .any(|lane| known.get(lane).is_some_and(|&next| next >= index))
        };
        let mut timed_out = false;
        if busy.is_empty() {
            tokio::select! {
                _ = heard.wait_for(reached) => {}
                _ = tokio::time::sleep(RECHECK_BEHIND) => timed_out = true,
                _ = writer.shutdown.triggered() => {
                    return Ok(ChunkApplied::StillWaiting("the writer is stopping".to_string()))
                }
            }
        } else {
            tokio::time::sleep(RECHECK_BUSY).await;
        }
        // Lanes that reached the chunk, those that were busy, and after a quiet while all.
        let known = heard.borrow().clone();
        to_try = std::mem::take(&mut busy);
        behind.retain(|lane| {
            let go = timed_out || known.get(lane).is_some_and(|&next| next >= index);
            if go {
                to_try.push(*lane);
            }
            !go
        });
    }
    Ok(ChunkApplied::Done { last_lane_done })
}
