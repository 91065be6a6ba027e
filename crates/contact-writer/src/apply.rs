//! Applying one lane of a validated chunk, in one transaction: the data path.
//!
//! A lane of a chunk is applied when the lane has reached that chunk: the lane's row in
//! `import_lanes` says which chunk is next, and moving it on commits with the lane's
//! contacts, keys, row errors and counters. A lane that is not there yet is reported as such
//! (the caller waits for it without holding a connection); a redelivered chunk finds its
//! lanes past it and changes nothing. Nothing here waits for a lock: a lane or an import row
//! that another transaction holds is reported as busy.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use contact_contract::{
    AccountId, FailedRow, ImportId, ImportRequest, MappingPlan, RowError, ValidatedChunk,
};
use contact_core::lanes::LANES;
use contact_core::merge::{match_keys, plan_merge, DuplicatePolicy, IdBlock, MergeOptions};
use contact_core::validate::ValidRecord;
use contact_runtime::metrics::metrics;
use sqlx::types::Json;
use sqlx::{Acquire as _, PgConnection};

use crate::contacts::{self, ChangeLog, KeyHolders, Target};
use crate::{accounts, imports, Writer};

/// What became of one lane of a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartDisposition {
    /// Committed; `lane_done` when it was the last chunk its lane had to apply.
    Applied { lane_done: bool },
    /// Applied before: a redelivery.
    AlreadyApplied,
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

/// Reads what a lane's transaction needs and locks the lane. The lane's row lock makes this
/// the lane's only writer, and keeps the import from closing until it commits (closing marks
/// every lane row). The lane locks of the account are taken if free; the one lane of a
/// single-lane import may hold a key of any lane, so it takes every lane lock.
static LANE_GATE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT i.status, i.request, i.plan, i.lanes, i.first_contact_id, i.bytes_total, i.chunks_total, l.next_chunk,
                ARRAY(SELECT a.key FROM attributes a
                      WHERE a.account_id = i.account_id AND a.identifier ORDER BY a.key) AS identifier_keys,
                CASE WHEN (i.request -> 'options' ->> 'dry_run')::boolean THEN true
                     ELSE (SELECT bool_and(pg_try_advisory_xact_lock({}))
                           FROM UNNEST(CASE WHEN i.lanes = 1 THEN $4 ELSE ARRAY[$3] END) AS wanted)
                END AS lanes_locked
         FROM imports i
         JOIN import_lanes l ON l.account_id = i.account_id AND l.import_id = i.import_id
         WHERE i.account_id = $1 AND i.import_id = $2 AND l.lane = $3 AND l.open
         FOR NO KEY UPDATE OF l NOWAIT",
        accounts::lane_lock("i.account_id", "wanted")
    )
});

/// What a lane's transaction reads and locks before it writes.
#[derive(sqlx::FromRow)]
struct LaneGate {
    status: String,
    request: Json<ImportRequest>,
    plan: Option<Json<MappingPlan>>,
    lanes: i32,
    first_contact_id: Option<i64>,
    bytes_total: Option<i64>,
    chunks_total: Option<i32>,
    next_chunk: i32,
    identifier_keys: Vec<String>,
    /// The account's lane locks this lane needs, taken if free (a dry run needs none).
    lanes_locked: bool,
}

/// Applies lane `lane` of `chunk` if the lane has reached it. `records` are the lane's rows:
/// taken when they are written, left in place otherwise. `lane_count` is how many lanes the
/// chunk was split into.
pub async fn apply_lane(
    writer: &Writer,
    chunk: &ValidatedChunk,
    lane_count: usize,
    lane: u32,
    records: &mut Option<Vec<ValidRecord>>,
) -> anyhow::Result<PartDisposition> {
    let (account, import) = (&chunk.account, &chunk.import_id);
    let mut connection = writer.pool.acquire().await?;
    let mut transaction = connection.begin().await?;
    let all_lanes: Vec<i32> = (0..LANES as i32).collect();
    let gate: Option<LaneGate> = match sqlx::query_as(&LANE_GATE)
        .bind(account.as_str())
        .bind(import.as_str())
        .bind(lane as i32)
        .bind(&all_lanes)
        .fetch_optional(&mut *transaction)
        .await
    {
        Ok(gate) => gate,
        Err(error) if is_lock_not_available(&error) => {
            return Ok(PartDisposition::Busy("its lane is locked"))
        }
        Err(error) => return Err(error.into()),
    };
    let Some(gate) = gate else {
        drop(transaction);
        return Ok(
            match imports::load(&mut connection, account, import).await? {
                None => PartDisposition::UnknownImport,
                Some(row) if row.state().is_terminal() => PartDisposition::ImportClosed,
                Some(row) if lane >= row.lanes.max(0) as u32 => {
                    PartDisposition::Unwritable(format!(
                        "chunk {} has lane {lane} but its import has {} lanes",
                        chunk.chunk_index, row.lanes
                    ))
                }
                // Registered, or closed, between the two reads.
                Some(_) => PartDisposition::Busy("its import changed a moment ago"),
            },
        );
    };
    let state = contact_contract::ImportState::parse(&gate.status);
    if state.is_none_or(|state| state.is_terminal()) {
        return Ok(PartDisposition::ImportClosed);
    }
    let index = i64::from(chunk.chunk_index);
    if index < i64::from(gate.next_chunk) {
        return Ok(PartDisposition::AlreadyApplied);
    }
    if index > i64::from(gate.next_chunk) {
        return Ok(PartDisposition::Behind {
            next_chunk: gate.next_chunk.max(0) as u32,
        });
    }
    if lane_count as i32 != gate.lanes {
        return Ok(PartDisposition::Unwritable(format!(
            "chunk {} was split in {lane_count} lanes, its import in {}",
            chunk.chunk_index, gate.lanes
        )));
    }
    if !gate.lanes_locked {
        return Ok(PartDisposition::Busy(
            "another import of the account is writing its lane",
        ));
    }
    let records = records.take().unwrap_or_default();
    let written = match write_lane(&mut transaction, &gate, chunk, lane, records).await {
        Ok(written) => written,
        Err(error) if can_never_be_written(&error) => {
            return Ok(PartDisposition::Unwritable(format!(
                "chunk {} of the file could not be written: {error:#}",
                chunk.chunk_index
            )))
        }
        Err(error) => return Err(error),
    };
    transaction.commit().await?;
    count_rows(&written);
    let lane_done = gate
        .chunks_total
        .is_some_and(|total| gate.next_chunk + 1 >= total);
    Ok(PartDisposition::Applied { lane_done })
}

/// Everything one lane of the chunk changes, inside its transaction: contacts and keys, the
/// lane's cursor and counters, and (with lane 0) the chunk's row errors and failed rows.
async fn write_lane(
    transaction: &mut PgConnection,
    gate: &LaneGate,
    chunk: &ValidatedChunk,
    lane: u32,
    records: Vec<ValidRecord>,
) -> anyhow::Result<imports::LaneAdvance> {
    let (account, import) = (&chunk.account, &chunk.import_id);
    let (errors, failed) = if lane == 0 {
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
    insert_row_errors(transaction, account, import, errors).await?;
    insert_failed_rows(transaction, account, import, failed).await?;
    Ok(advance)
}

fn is_lock_not_available(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|database| database.code())
        .is_some_and(|code| code == "55P03")
}

/// True for a failure that repeating cannot cure: the lane's data breaks a limit or a rule of
/// the database (SQLSTATE classes 22, 23 and 54). Anything else (a lost connection, a
/// deadlock, a restart) is tried again.
fn can_never_be_written(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<sqlx::Error>()
            .and_then(sqlx::Error::as_database_error)
            .and_then(|database| database.code())
            .is_some_and(|code| matches!(code.get(..2), Some("22" | "23" | "54")))
    })
}

async fn insert_failed_rows(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
    failed: &[FailedRow],
) -> anyhow::Result<()> {
    if failed.is_empty() {
        return Ok(());
    }
    let lines: Vec<i64> = failed.iter().map(|row| row.line as i64).collect();
    // One JSON array per row: UNNEST cannot take an array of arrays of different lengths.
    let fields: Vec<String> = failed
        .iter()
        .map(|row| serde_json::to_string(&row.fields))
        .collect::<Result<_, _>>()?;
    sqlx::query(
        "INSERT INTO failed_rows (account_id, import_id, line, fields)
         SELECT $1, $2, row.line, ARRAY(SELECT jsonb_array_elements_text(row.fields::jsonb))
         FROM UNNEST($3::bigint[], $4::text[]) AS row(line, fields)
         ON CONFLICT DO NOTHING",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .bind(lines)
    .bind(fields)
    .execute(connection)
    .await?;
    Ok(())
}

async fn insert_row_errors(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
    errors: &[RowError],
) -> sqlx::Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    let lines: Vec<i64> = errors.iter().map(|error| error.line as i64).collect();
    let columns: Vec<Option<&str>> = errors.iter().map(|error| error.column.as_deref()).collect();
    let values: Vec<Option<&str>> = errors.iter().map(|error| error.value.as_deref()).collect();
    let reasons: Vec<&str> = errors.iter().map(|error| error.reason.as_str()).collect();
    sqlx::query(
        "INSERT INTO row_errors (account_id, import_id, line, column_name, value, reason)
         SELECT $1, $2, error.line, error.column_name, error.value, error.reason
         FROM UNNEST($3::bigint[], $4::text[], $5::text[], $6::text[])
              WITH ORDINALITY AS error(line, column_name, value, reason, position)
         ORDER BY error.position",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .bind(lines)
    .bind(columns)
    .bind(values)
    .bind(reasons)
    .execute(connection)
    .await?;
    Ok(())
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
