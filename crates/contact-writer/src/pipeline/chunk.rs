//! Applying every lane of one validated chunk: the lanes that have reached the chunk are
//! applied at once, each in its own transaction; the others are waited for a moment, without
//! a connection, and then parked in the database for their lane.
//!
//! # Why every import makes progress, whatever order its parts arrive in
//!
//! The writers share one consumer of the record stream, which is first-in, first-out, and
//! hands out redeliveries before new messages. A part that waits for its predecessor must
//! therefore never hold its message for long, or the parts that wait could take every place
//! the writers pull into while the predecessor, stored behind them (a mapper that crashed
//! validated it again, late), is never delivered. So the bounds are on time, not on counts:
//! - a part waits in hand for a lane that is behind while the lane moves, but no longer than
//!   [`QUIET_LANE_BEFORE_PARKING`] without a move nor [`LONGEST_WAIT_IN_HAND`] in all; then it
//!   is parked (`parking`) in the transaction that holds the lane's row lock, and its message
//!   is acknowledged;
//! - a lane that another transaction holds (`Busy`) is held by a transaction that is running
//!   and waits for no message, so it lets go; a part retries it for at most
//!   [`LONGEST_WAIT_FOR_BUSY_LANE`], then goes back to JetStream;
//! - hence every message a writer takes is settled within a bounded time, whatever the number
//!   of imports, replicas or the concurrency, and the consumer reaches the predecessor.
//!
//! A parked part is applied by whichever transaction moves its lane to it: that transaction
//! looks for it under the lane's row lock before it commits (so a part is either parked
//! before, and seen, or turned away as busy, and finds the lane moved on when it retries),
//! and its caller goes on with it here, for a few seconds at the most
//! ([`PARKED_PARTS_IN_HAND`]) so that this handling too stays bounded. A writer that stops
//! between the two, or leaves parts at the end of that time, leaves them to the sweep, which
//! applies the parked parts of lanes that reached them and stood still for a moment.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use contact_contract::{convert_all, AccountId, ImportId, ValidatedChunk};
use contact_core::validate::ValidRecord;
use futures::future::join_all;

use crate::context::Writer;
use crate::pipeline::lane::{self, PartDisposition, Progress, WhenBehind};
use crate::pipeline::signals;

/// How long a part waits in hand for a lane of its that does not move before it is parked.
/// Long enough for the usual wait (the part before it, in another slot or replica, being
/// committed); short enough that a lost predecessor costs the import about this much.
pub const QUIET_LANE_BEFORE_PARKING: Duration = Duration::from_secs(1);

/// How long a part waits in hand at the most, however its lanes move, before it is parked.
const LONGEST_WAIT_IN_HAND: Duration = Duration::from_secs(10);

/// How long a part retries a lane that another transaction holds before its message goes back
/// to JetStream.
const LONGEST_WAIT_FOR_BUSY_LANE: Duration = Duration::from_secs(30);

/// A waiting chunk looks at its lanes again after this long even without a signal.
const RECHECK_BEHIND: Duration = Duration::from_millis(250);

/// A lane that another transaction holds is tried again after this long.
const RECHECK_BUSY: Duration = Duration::from_millis(10);

/// What became of a chunk.
#[derive(Debug, Clone)]
pub enum ChunkApplied {
    /// Every lane is applied (now or before) or parked for its lane; `last_lane_done` when a
    /// lane applied its last chunk, `progress` the latest the lanes applied here reported.
    Done {
        last_lane_done: bool,
        progress: Progress,
    },
    /// The import is over: nothing more is written.
    ImportClosed,
    /// A lane stayed busy for the whole wait, or the writer is stopping; `progress` what the
    /// lanes applied before reported (the redelivery finds them applied, and reports nothing
    /// of them).
    StillWaiting { reason: String, progress: Progress },
    /// No import of that id is registered (yet).
    UnknownImport,
    /// It can never be applied; the import must fail for this reason.
    Unwritable(String),
}

pub async fn apply_chunk(
    writer: &Writer,
    mut chunk: ValidatedChunk,
) -> anyhow::Result<ChunkApplied> {
    // Each lane's rows, until the lane is written or parked.
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
    // Why a lane was last found busy, for the message that gives up.
    let mut busy_because = "";
    let mut last_lane_done = false;
    let mut progress = Progress::default();
    let started = Instant::now();
    let given_up_at = started + LONGEST_WAIT_FOR_BUSY_LANE;
    // When a lane this chunk waits for last moved, and where the lanes were then.
    let mut lane_moved_at = started;
    let mut cursors_seen = heard.borrow_and_update().clone();
    let park_from = |lane_moved_at: Instant| {
        (lane_moved_at + QUIET_LANE_BEFORE_PARKING).min(started + LONGEST_WAIT_IN_HAND)
    };
    loop {
        let when_behind =
            if Instant::now() >= park_from(lane_moved_at) || writer.shutdown.is_triggered() {
                WhenBehind::Park
            } else {
                WhenBehind::Report
            };
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
                        lane::apply_lane(writer, chunk, lane_count, lane, records, when_behind)
                            .await;
                    (lane, disposition)
                }),
        )
        .await;
        let mut parked_next = Vec::new();
        for (lane, disposition) in tried {
            let disposition = disposition?;
            tracing::trace!(chunk = index, lane, ?disposition, "lane tried");
            match disposition {
                PartDisposition::Applied {
                    next_chunk,
                    lane_done,
                    next_parked,
                    progress: reported,
                } => {
                    writer.stats.lanes_applied.fetch_add(1, Ordering::Relaxed);
                    last_lane_done |= lane_done;
                    progress = progress.or_later(reported);
                    signals::announce(writer, account, import, lane, next_chunk).await;
                    if next_parked {
                        parked_next.push(lane);
                    }
                }
                PartDisposition::AlreadyApplied
                | PartDisposition::Parked
                | PartDisposition::NothingParked => {}
                PartDisposition::ImportClosed => return Ok(ChunkApplied::ImportClosed),
                PartDisposition::Behind { next_chunk } => {
                    writer.signals.lane_at(account, import, lane, next_chunk);
                    behind.push(lane);
                }
                PartDisposition::Busy(because) => {
                    busy_because = because;
                    busy.push(lane);
                }
                PartDisposition::UnknownImport => return Ok(ChunkApplied::UnknownImport),
                PartDisposition::Unwritable(reason) => return Ok(ChunkApplied::Unwritable(reason)),
            }
        }
        let applied_after =
            join_all(parked_next.into_iter().map(|lane| {
                apply_parked_parts(writer, account, import, lane, PARKED_PARTS_IN_HAND)
            }))
            .await;
        for applied in applied_after {
            match applied? {
                ParkedApplied::Lane {
                    lane_done,
                    progress: reported,
                } => {
                    last_lane_done |= lane_done;
                    progress = progress.or_later(reported);
                }
                ParkedApplied::Ended(ended) => return Ok(ended),
            }
        }
        if behind.is_empty() && busy.is_empty() {
            break;
        }
        // Lanes still behind are parked on the next round; only a lane held by others for
        // the whole wait, or a stop, sends the message back.
        if (!busy.is_empty() && Instant::now() >= given_up_at)
            || (writer.shutdown.is_triggered() && when_behind == WhenBehind::Park)
        {
            return Ok(ChunkApplied::StillWaiting {
                reason: format!(
                    "lanes {busy:?} of chunk {index} are held by other transactions ({busy_because})"
                ),
                progress,
            });
        }
        let mut time_to_look = false;
        if busy.is_empty() {
            let quiet = RECHECK_BEHIND
                .min(park_from(lane_moved_at).saturating_duration_since(Instant::now()));
            tokio::select! {
                _ = heard.changed() => {}
                _ = tokio::time::sleep(quiet) => time_to_look = true,
                _ = writer.shutdown.triggered() => time_to_look = true,
            }
        } else {
            tokio::time::sleep(RECHECK_BUSY).await;
        }
        let known = heard.borrow_and_update().clone();
        let moved = behind.iter().any(|lane| {
            known.get(lane).copied().unwrap_or(0) > cursors_seen.get(lane).copied().unwrap_or(0)
        });
        if moved {
            lane_moved_at = Instant::now();
        }
        cursors_seen = known;
        // Lanes that reached the chunk, those that were busy, after a quiet while all of
        // them, and once the wait in hand is over all of them again, to be parked.
        let park_now = Instant::now() >= park_from(lane_moved_at);
        to_try = std::mem::take(&mut busy);
        behind.retain(|lane| {
            let go = time_to_look
                || park_now
                || cursors_seen.get(lane).is_some_and(|&next| next >= index);
            if go {
                to_try.push(*lane);
            }
            !go
        });
    }
    Ok(ChunkApplied::Done {
        last_lane_done,
        progress,
    })
}

/// What became of the parts parked after a lane part that was applied.
#[derive(Debug, Clone)]
pub enum ParkedApplied {
    /// Those there were are applied (by this call, or another writer took over);
    /// `lane_done` when the lane applied its last chunk, `progress` the latest they reported.
    Lane { lane_done: bool, progress: Progress },
    /// The import cannot go on: this is what became of it.
    Ended(ChunkApplied),
}

/// How long a message's handler goes on with the parts parked after its own, before it
/// leaves the rest to the sweep: the handling of one message stays bounded in time however
/// many parts a late predecessor finds parked.
const PARKED_PARTS_IN_HAND: Duration = Duration::from_secs(5);

/// Applies the parts parked for `lane` of the import, one transaction each, for as long as the
/// lane's next chunk is parked, for at most about `budget` (then the sweep goes on, as it
/// does after a writer stopped).
pub async fn apply_parked_parts(
    writer: &Writer,
    account: &AccountId,
    import: &ImportId,
    lane: u32,
    budget: Duration,
) -> anyhow::Result<ParkedApplied> {
    let mut lane_done = false;
    let mut progress = Progress::default();
    let mut busy_since: Option<Instant> = None;
    let stop_at = Instant::now() + budget;
    loop {
        let disposition = {
            let _slot = writer
                .database_slots
                .acquire()
                .await
                .expect("the slots are never closed");
            lane::apply_parked(writer, account, import, lane).await?
        };
        tracing::trace!(lane, ?disposition, "parked part tried");
        match disposition {
            PartDisposition::Applied {
                next_chunk,
                lane_done: done,
                next_parked,
                progress: reported,
            } => {
                writer.stats.lanes_applied.fetch_add(1, Ordering::Relaxed);
                lane_done |= done;
                progress = progress.or_later(reported);
                busy_since = None;
                signals::announce(writer, account, import, lane, next_chunk).await;
                if !next_parked || Instant::now() >= stop_at || writer.shutdown.is_triggered() {
                    return Ok(ParkedApplied::Lane {
                        lane_done,
                        progress,
                    });
                }
            }
            PartDisposition::Busy(_) => {
                // Another transaction holds the lane (or the account's lane locks): if it moves
                // the lane on, its writer goes on with the parked part; whatever it is, the
                // sweep applies a part left at the lane's cursor.
                let since = *busy_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= LONGEST_WAIT_FOR_BUSY_LANE
                    || Instant::now() >= stop_at
                    || writer.shutdown.is_triggered()
                {
                    return Ok(ParkedApplied::Lane {
                        lane_done,
                        progress,
                    });
                }
                tokio::time::sleep(RECHECK_BUSY).await;
            }
            PartDisposition::NothingParked
            | PartDisposition::AlreadyApplied
            | PartDisposition::Parked
            | PartDisposition::Behind { .. } => {
                return Ok(ParkedApplied::Lane {
                    lane_done,
                    progress,
                })
            }
            PartDisposition::ImportClosed => {
                return Ok(ParkedApplied::Ended(ChunkApplied::ImportClosed))
            }
            PartDisposition::UnknownImport => {
                return Ok(ParkedApplied::Ended(ChunkApplied::UnknownImport))
            }
            PartDisposition::Unwritable(reason) => {
                return Ok(ParkedApplied::Ended(ChunkApplied::Unwritable(reason)))
            }
        }
    }
}
