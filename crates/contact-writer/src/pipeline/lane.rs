//! Applying one lane of a validated chunk, in one transaction: the data path.
//!
//! A lane of a chunk is applied when the lane has reached that chunk: the lane's row in
//! `import_lanes` says which chunk is next, and moving it on commits with the lane's
//! contacts, keys, row errors and counters. A lane that is not there yet is reported as such
//! (the caller waits for it without holding a connection); a redelivered chunk finds its
//! lanes past it and changes nothing. Nothing here waits for a lock: a lane or an import row
//! that another transaction holds is reported as busy.

use std::collections::BTreeSet;

use contact_contract::{convert_all, AccountId, ImportId, ImportState, ValidatedChunk};
use contact_core::merge::{match_keys, plan_merge, DuplicatePolicy, IdBlock, MergeOptions};
use contact_core::validate::ValidRecord;
use contact_runtime::metrics::metrics;
use sqlx::{Acquire as _, PgConnection};

use crate::context::Writer;
use crate::db::contacts::{self, ChangeLog, KeyHolders, Target};
use crate::db::lanes::{self, LaneGate};
use crate::db::parking::ParkedPart;
use crate::db::row_errors;
use crate::db::{self, imports, parking};

/// The lane that carries each chunk's row errors and failed rows, and whose transactions read
/// the import's progress before they commit (see [`imports::progress_before_commit`]): every
/// import has it.
pub const REPORTING_LANE: u32 = 0;

/// The import as a lane part's transaction left it, read before the commit by a part of
/// [`REPORTING_LANE`] (none from the other lanes, which [`progress_of_other_lanes`] reads for
/// when they are all a handler applied): what the next progress event says.
#[derive(Debug, Clone, Default)]
pub struct Progress(Option<Box<imports::ImportRow>>);

impl Progress {
    /// The later of two reports: the one whose sequence is higher.
    pub fn or_later(self, other: Progress) -> Progress {
        let sequence = |progress: &Progress| progress.0.as_ref().map(|row| row.event_sequence());
        if sequence(&other) > sequence(&self) {
            other
        } else {
            self
        }
    }

    pub fn into_row(self) -> Option<imports::ImportRow> {
        self.0.map(|row| *row)
    }
}

/// The import's progress for a handler whose parts reported none (they were of other lanes,
/// or applied before): read under [`REPORTING_LANE`]'s row lock, so in order with that lane's
/// own reports; none while that lane's transaction holds it (it reports in a moment) or once
/// the import is over (its summary says the rest).
pub async fn progress_of_other_lanes(
    writer: &Writer,
    account: &AccountId,
    import: &ImportId,
) -> anyhow::Result<Progress> {
    let mut connection = writer.pool.acquire().await?;
    let mut transaction = connection.begin().await?;
    if !lanes::try_lock_lane_row(&mut transaction, account, import, REPORTING_LANE).await? {
        return Ok(Progress::default());
    }
    let row = imports::progress_before_commit(&mut transaction, account, import).await?;
    transaction.commit().await?;
    Ok(Progress(
        row.filter(|row| row.state() == ImportState::Running)
            .map(Box::new),
    ))
}

/// What to do with a part whose lane has not reached it yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenBehind {
    /// Say so: the caller holds the part a moment longer, waiting for the lane.
    Report,
    /// Park it in the database for its lane (see `parking`), so that its message can go.
    Park,
}

/// What became of one lane of a chunk.
#[derive(Debug, Clone)]
pub enum PartDisposition {
    /// Committed: the lane applies `next_chunk` now; `lane_done` when there is none,
    /// `next_parked` when that chunk's part waits parked (the caller goes on with it);
    /// `progress` the import as the commit left it.
    Applied {
        next_chunk: u32,
        lane_done: bool,
        next_parked: bool,
        progress: Progress,
    },
    /// Applied before: a redelivery.
    AlreadyApplied,
    /// Parked for its lane, which has not reached it: whoever moves the lane to it applies it.
    Parked,
    /// No part is parked at the lane's next chunk.
    NothingParked,
    /// The import is over (completed, failed or cancelled): nothing more is written.
    ImportClosed,
    /// The lane has not reached this chunk: it applies `next_chunk` next.
    Behind { next_chunk: u32 },
    /// Another transaction holds the lane, the lane's keys (another import of the account)
    /// or the import; it lets go within milliseconds.
    Busy(&'static str),
    /// No import of that id is registered (yet).
    UnknownImport,
    /// It can never be applied (it does not fit its import, or the database refuses its data):
    /// the import must fail for this reason.
    Unwritable(String),
}

/// The lane's gate, or why the lane cannot be written now.
enum LaneLock {
    Open(Box<LaneGate>),
    Refused(PartDisposition),
}

/// Locks `lane` of the import in the caller's transaction (never waiting for the lock) and
/// reads its gate; says why not when the lane cannot be written now.
async fn lock_lane(
    transaction: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
    lane: u32,
    chunk_index: u32,
) -> anyhow::Result<LaneLock> {
    let gate = match lanes::lock_lane(transaction, account, import, lane).await {
        Ok(gate) => gate,
        Err(error) if db::is_lock_not_available(&error) => {
            return Ok(LaneLock::Refused(PartDisposition::Busy(
                "its lane is locked",
            )))
        }
        Err(error) => return Err(error.into()),
    };
    let Some(gate) = gate else {
        return Ok(LaneLock::Refused(
            match imports::load(transaction, account, import).await? {
                None => PartDisposition::UnknownImport,
                Some(row) if row.state().is_terminal() => PartDisposition::ImportClosed,
                Some(row) if lane >= row.lanes.max(0) as u32 => {
                    PartDisposition::Unwritable(format!(
                        "chunk {chunk_index} has lane {lane} but its import has {} lanes",
                        row.lanes
                    ))
                }
                // Registered, or closed, between the two reads.
                Some(_) => PartDisposition::Busy("its import changed a moment ago"),
            },
        ));
    };
    if gate.import_closed() {
        return Ok(LaneLock::Refused(PartDisposition::ImportClosed));
    }
    Ok(LaneLock::Open(Box::new(gate)))
}

/// Applies lane `lane` of `chunk` if the lane has reached it, or parks it when it has not and
/// `when_behind` says so. `records` are the lane's rows: taken when they are written or
/// parked, left in place otherwise. `lane_count` is how many lanes the chunk was split into.
pub async fn apply_lane(
    writer: &Writer,
    chunk: &ValidatedChunk,
    lane_count: usize,
    lane: u32,
    records: &mut Option<Vec<ValidRecord>>,
    when_behind: WhenBehind,
) -> anyhow::Result<PartDisposition> {
    let (account, import) = (&chunk.account, &chunk.import_id);
    let mut connection = writer.pool.acquire().await?;
    let mut transaction = connection.begin().await?;
    let gate = match lock_lane(&mut transaction, account, import, lane, chunk.chunk_index).await? {
        LaneLock::Open(gate) => gate,
        LaneLock::Refused(disposition) => return Ok(disposition),
    };
    let index = chunk.chunk_index;
    if index < gate.next_chunk() {
        return Ok(PartDisposition::AlreadyApplied);
    }
    if lane_count as i32 != gate.lanes {
        return Ok(PartDisposition::Unwritable(format!(
            "chunk {index} was split in {lane_count} lanes, its import in {}",
            gate.lanes
        )));
    }
    if index > gate.next_chunk() {
        return Ok(match when_behind {
            WhenBehind::Report => PartDisposition::Behind {
                next_chunk: gate.next_chunk(),
            },
            WhenBehind::Park => {
                let part = lane_part(chunk, lane_count, lane, records.take().unwrap_or_default());
                parking::park(&mut transaction, &part, lane).await?;
                transaction.commit().await?;
                PartDisposition::Parked
            }
        });
    }
    if !gate.lanes_locked {
        return Ok(PartDisposition::Busy(
            "another import of the account is writing its lane",
        ));
    }
    let records = records.take().unwrap_or_default();
    write_and_commit(transaction, &gate, chunk, lane, records).await
}

/// Applies the part parked for `lane` of the import at the lane's next chunk, if there is one.
pub async fn apply_parked(
    writer: &Writer,
    account: &AccountId,
    import: &ImportId,
    lane: u32,
) -> anyhow::Result<PartDisposition> {
    let mut connection = writer.pool.acquire().await?;
    let mut transaction = connection.begin().await?;
    let gate = match lock_lane(&mut transaction, account, import, lane, 0).await? {
        LaneLock::Open(gate) => gate,
        LaneLock::Refused(disposition) => return Ok(disposition),
    };
    if !gate.lanes_locked {
        return Ok(PartDisposition::Busy(
            "another import of the account is writing its lane",
        ));
    }
    let next = gate.next_chunk();
    let mut part = match parking::take(&mut transaction, account, import, lane, next).await? {
        None => return Ok(PartDisposition::NothingParked),
        Some(ParkedPart::Readable(part)) => part,
        // Rolled back with the transaction: it stays parked for an upgraded writer.
        Some(ParkedPart::OfLaterSchema) => {
            return Ok(PartDisposition::Busy(
                "its part was parked by a newer writer",
            ))
        }
        Some(ParkedPart::Unreadable(reason)) => return Ok(PartDisposition::Unwritable(reason)),
    };
    let Some(records) = part.lanes.get_mut(lane as usize).map(std::mem::take) else {
        return Ok(PartDisposition::Unwritable(format!(
            "the part of chunk {next} parked for lane {lane} has no such lane"
        )));
    };
    write_and_commit(transaction, &gate, &part, lane, convert_all(records)).await
}

/// `chunk` with only the records of `lane` (and, in lane [`REPORTING_LANE`], the chunk's row errors and
/// failed rows, which travel with that lane): what is parked for the lane.
fn lane_part(
    chunk: &ValidatedChunk,
    lane_count: usize,
    lane: u32,
    records: Vec<ValidRecord>,
) -> ValidatedChunk {
    let mut lanes = vec![Vec::new(); lane_count];
    lanes[lane as usize] = convert_all(records);
    let (errors, failed) = if lane == REPORTING_LANE {
        (chunk.errors.clone(), chunk.failed.clone())
    } else {
        (Vec::new(), Vec::new())
    };
    ValidatedChunk {
        schema: chunk.schema,
        account: chunk.account.clone(),
        import_id: chunk.import_id.clone(),
        chunk_index: chunk.chunk_index,
        lanes,
        errors,
        failed,
        end_offset: chunk.end_offset,
    }
}

/// Writes the lane's part of `chunk` and commits it with the move of the lane's cursor.
async fn write_and_commit(
    mut transaction: sqlx::Transaction<'_, sqlx::Postgres>,
    gate: &LaneGate,
    chunk: &ValidatedChunk,
    lane: u32,
    records: Vec<ValidRecord>,
) -> anyhow::Result<PartDisposition> {
    let written = match write_lane(&mut transaction, gate, chunk, lane, records).await {
        Ok(written) => written,
        Err(error) if db::can_never_be_written(&error) => {
            return Ok(PartDisposition::Unwritable(format!(
                "chunk {} of the file could not be written: {error:#}",
                chunk.chunk_index
            )))
        }
        Err(error) => return Err(error),
    };
    // Under the lane's row lock: a part parked for the next chunk is either seen here, or
    // was turned away (busy) and finds the lane moved on when it tries again.
    let next_parked = parking::moved_on(
        &mut transaction,
        &chunk.account,
        &chunk.import_id,
        lane,
        chunk.chunk_index,
    )
    .await?;
    let progress = if lane == REPORTING_LANE {
        let row =
            imports::progress_before_commit(&mut transaction, &chunk.account, &chunk.import_id)
                .await?;
        Progress(row.map(Box::new))
    } else {
        Progress::default()
    };
    transaction.commit().await?;
    count_rows(&written);
    let lane_done = gate
        .chunks_total
        .is_some_and(|total| gate.next_chunk + 1 >= total);
    Ok(PartDisposition::Applied {
        next_chunk: chunk.chunk_index + 1,
        lane_done,
        next_parked,
        progress,
    })
}

/// Everything one lane of the chunk changes, inside its transaction: contacts and keys, the
/// lane's cursor and counters, and (with [`REPORTING_LANE`]) the chunk's row errors and
/// failed rows.
async fn write_lane(
    transaction: &mut PgConnection,
    gate: &LaneGate,
    chunk: &ValidatedChunk,
    lane: u32,
    records: Vec<ValidRecord>,
) -> anyhow::Result<imports::LaneAdvance> {
    let (account, import) = (&chunk.account, &chunk.import_id);
    let (errors, failed) = if lane == REPORTING_LANE {
        (&chunk.errors[..], &chunk.failed[..])
    } else {
        (&[][..], &[][..])
    };
    let request = &gate.request.0;
    let Some(plan) = &gate.plan else {
        anyhow::bail!("import {import} runs without a mapping plan");
    };
    let Some(first) = gate.first_contact_id else {
        anyhow::bail!("import {import} runs without a block of contact ids");
    };
    let options = MergeOptions {
        policy: request.options.policy.into(),
        match_on: plan.0.match_on.clone(),
        contact_type: request.options.contact_type.clone(),
        category: request.options.category.clone(),
        tags: request.options.tags.clone(),
    };
    let target = if request.options.dry_run {
        Target::DryRun(import)
    } else {
        Target::Live
    };
    let keys: BTreeSet<_> = records
        .iter()
        .flat_map(|record| match_keys(&record.values, &options.match_on))
        .collect();
    // Keys of stored contacts change only when a linked row overwrites one matched on another.
    let holders = if options.policy == DuplicatePolicy::Link && options.match_on.len() > 1 {
        KeyHolders::All
    } else {
        KeyHolders::Oldest
    };
    let stored = contacts::fetch_by_keys(transaction, account, target, &keys, holders).await?;
    let merge = plan_merge(records, stored, &options, IdBlock { first });
    let advance = imports::LaneAdvance {
        lane,
        counts: merge.counts,
        failed_rows: failed.len(),
        end_offset: chunk.end_offset,
    };
    contacts::insert_new_and_advance(
        transaction,
        account,
        import,
        target,
        &merge.new_contacts,
        &gate.identifier_keys,
        &advance,
    )
    .await?;
    // What the import changes in contacts it links is recorded in this transaction, for
    // undo; the contacts it creates are its own already (their ids lie in its block).
    let own_ids = first
        ..first.saturating_add(IdBlock::ids_needed(
            gate.bytes_total.unwrap_or(0).max(0) as u64
        ));
    let change_log = (!request.options.dry_run).then_some(ChangeLog { import, own_ids });
    contacts::update(
        transaction,
        account,
        target,
        &merge.updated_contacts,
        &gate.identifier_keys,
        change_log,
    )
    .await?;
    row_errors::insert_row_errors(transaction, account, import, errors).await?;
    row_errors::insert_failed_rows(transaction, account, import, failed).await?;
    Ok(advance)
}

/// Counts what the committed lane part did with its rows (dry runs included: their rows
/// went through the same decisions).
fn count_rows(written: &imports::LaneAdvance) {
    let metrics = metrics();
    let counts = &written.counts;
    metrics.count_rows("writer", "created", counts.created);
    metrics.count_rows("writer", "linked", counts.linked);
    metrics.count_rows("writer", "duplicated", counts.duplicated);
    metrics.count_rows("writer", "skipped", counts.skipped);
    metrics.count_rows("writer", "failed", written.failed_rows as u64);
}
