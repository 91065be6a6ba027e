//! The `imports` table and its lanes (`import_lanes`): an import's options, state, counters
//! and chunk bookkeeping, and its translation into the [`ImportStatus`] clients see.
//!
//! An import's counters and progress are the sums of its lanes' rows: each lane is written by
//! one transaction at a time, so lanes applied at once never wait on a shared row.

use chrono::{DateTime, Utc};
use contact_contract::{
    AccountId, ImportId, ImportRequest, ImportState, ImportStatus, MappingPlan, Namespace,
};
use contact_core::merge::{IdBlock, OutcomeCounts};
use sqlx::types::Json;
use sqlx::PgConnection;

use super::parking;

/// One import with the sums of its lanes.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImportRow {
    pub account_id: String,
    pub import_id: String,
    pub status: String,
    pub request: Json<ImportRequest>,
    pub plan: Option<Json<MappingPlan>>,
    pub unmapped_columns: Vec<String>,
    pub file_name: Option<String>,
    pub bytes_total: Option<i64>,
    pub chunks_total: Option<i32>,
    pub rows_in_file: Option<i64>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub lanes: i32,
    pub first_contact_id: Option<i64>,
    /// The latest earlier import of the same file content.
    pub repeat_of: Option<String>,
    /// When retention removed the import's row errors, failed rows and undo records.
    pub details_removed_at: Option<DateTime<Utc>>,
    /// Lane parts applied, over all lanes: orders the import's events.
    pub parts_applied: i64,
    pub created: i64,
    pub linked: i64,
    pub duplicated: i64,
    pub skipped: i64,
    pub failed: i64,
    /// How far into the file every lane has applied.
    pub bytes_done: i64,
    /// The chunk each lane applies next, by lane (every chunk before the smallest is applied
    /// in full).
    pub lane_cursors: Vec<i32>,
    /// Lane parts that came before their lane reached them, parked until it does.
    pub parts_parked: i64,
}

/// The columns of [`ImportRow`]: the import and the sums of its lanes.
static SELECT_IMPORT: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| select_import("i.plan"));

/// [`SELECT_IMPORT`] without the mapping plan, which no event or status shows.
static SELECT_PROGRESS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| select_import("NULL::jsonb"));

/// The import and the sums of its lanes, with `plan` as its plan column.
fn select_import(plan: &str) -> String {
    format!(
        "SELECT i.account_id, i.import_id, i.status, i.request, {plan} AS plan, i.unmapped_columns,
                i.file_name, i.bytes_total, i.chunks_total, i.rows_in_file, i.error, i.created_at,
                i.finished_at, i.lanes, i.first_contact_id, i.repeat_of, i.details_removed_at,
                lanes.parts_applied, lanes.created, lanes.linked, lanes.duplicated, lanes.skipped,
                lanes.failed, lanes.bytes_done, lanes.lane_cursors,
                {} AS parts_parked
         FROM imports i
         CROSS JOIN LATERAL (
             SELECT COALESCE(sum(l.next_chunk), 0)::bigint AS parts_applied,
                    COALESCE(sum(l.created), 0)::bigint AS created,
                    COALESCE(sum(l.linked), 0)::bigint AS linked,
                    COALESCE(sum(l.duplicated), 0)::bigint AS duplicated,
                    COALESCE(sum(l.skipped), 0)::bigint AS skipped,
                    COALESCE(sum(l.failed), 0)::bigint AS failed,
                    COALESCE(min(l.bytes_done), 0)::bigint AS bytes_done,
                    COALESCE(array_agg(l.next_chunk ORDER BY l.lane), '{{}}') AS lane_cursors,
                    max(l.updated_at) AS updated_at
             FROM import_lanes l
             WHERE l.account_id = i.account_id AND l.import_id = i.import_id) AS lanes",
        parking::PARKED_PARTS_OF_IMPORT
    )
}

impl ImportRow {
    pub fn state(&self) -> ImportState {
        ImportState::parse(&self.status).unwrap_or(ImportState::Failed)
    }

    pub fn account(&self) -> anyhow::Result<AccountId> {
        Ok(AccountId::new(self.account_id.clone())?)
    }

    pub fn import(&self) -> anyhow::Result<ImportId> {
        Ok(ImportId::new(self.import_id.clone())?)
    }

    /// The order of this state among the import's events (see `ImportEvent::sequence`).
    pub fn event_sequence(&self) -> u64 {
        let applied = self.parts_applied.max(0) as u64;
        if self.state().is_terminal() {
            applied + 1
        } else {
            applied
        }
    }

    pub fn to_status(&self) -> ImportStatus {
        let count = |value: i64| value.max(0) as u64;
        let (created, linked, duplicated, skipped, failed) = (
            count(self.created),
            count(self.linked),
            count(self.duplicated),
            count(self.skipped),
            count(self.failed),
        );
        // A completed import has read its whole file.
        let bytes_done = match (self.state(), self.bytes_total) {
            (ImportState::Completed, Some(total)) => count(total),
            _ => count(self.bytes_done),
        };
        ImportStatus {
            import_id: self.request.0.import_id.clone(),
            account: self.request.0.account.clone(),
            status: self.state(),
            rows_total: created + linked + duplicated + skipped + failed,
            created,
            linked,
            duplicated,
            skipped,
            failed,
            unmapped_columns: self.unmapped_columns.clone(),
            error: self.error.clone(),
            rows_in_file: self.rows_in_file.map(count),
            bytes_done,
            bytes_total: self.bytes_total.map(count),
            file_name: self.file_name.clone(),
            policy: self.request.0.options.policy,
            dry_run: self.request.0.options.dry_run,
            created_at: Some(self.created_at),
            finished_at: self.finished_at,
            waiting_for: self.waiting_for(),
            repeat_of: self
                .repeat_of
                .as_deref()
                .and_then(|import| ImportId::new(import).ok()),
            details_removed_at: self.details_removed_at,
        }
    }

    /// The ids the import's created contacts have: its block.
    pub fn own_ids(&self) -> std::ops::Range<i64> {
        let first = self.first_contact_id.unwrap_or(0);
        let size = IdBlock::ids_needed(self.bytes_total.unwrap_or(0).max(0) as u64);
        match self.first_contact_id {
            Some(_) => first..first.saturating_add(size),
            None => 0..0,
        }
    }

    /// What a running import waits for, in words for the people following it.
    pub fn waiting_for(&self) -> Option<String> {
        if self.state() != ImportState::Running {
            return None;
        }
        Some(waiting_for(
            self.chunks_total,
            &self.lane_cursors,
            self.parts_parked,
        ))
    }
}

/// What an import whose lanes apply `lane_cursors` next waits for: the chunk the slowest lane
/// needs (numbered from 1, as people count), which lanes wait for it when not all of them do,
/// and how many later parts wait parked meanwhile.
fn waiting_for(chunks_total: Option<i32>, lane_cursors: &[i32], parts_parked: i64) -> String {
    let next = lane_cursors.iter().copied().min().unwrap_or(0).max(0);
    let waiting_lanes: Vec<String> = lane_cursors
        .iter()
        .enumerate()
        .filter(|(_, &cursor)| cursor.max(0) == next)
        .map(|(lane, _)| lane.to_string())
        .collect();
    let lanes = if waiting_lanes.len() == lane_cursors.len() {
        String::new()
    } else if waiting_lanes.len() == 1 {
        format!(" for lane {}", waiting_lanes[0])
    } else {
        let (last, others) = waiting_lanes.split_last().expect("two lanes or more");
        format!(" for lanes {} and {last}", others.join(", "))
    };
    let parked = match parts_parked {
        0 => String::new(),
        1 => "; 1 later part is parked until then".to_string(),
        parts => format!("; {parts} later parts are parked until then"),
    };
    match chunks_total {
        Some(total) if total <= next => "the end of the import to be recorded".to_string(),
        Some(total) => {
            format!("chunk {} of {total} to be validated and written{lanes}{parked}", next + 1)
        }
        None => format!(
            "chunk {} to be validated and written{lanes}{parked} (ingest is still reading the file)",
            next + 1
        ),
    }
}

pub async fn load(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
) -> sqlx::Result<Option<ImportRow>> {
    select_one(connection, &SELECT_IMPORT, account, import).await
}

/// The one import `select` reads, by its id.
async fn select_one(
    connection: &mut PgConnection,
    select: &str,
    account: &AccountId,
    import: &ImportId,
) -> sqlx::Result<Option<ImportRow>> {
    sqlx::query_as(&format!(
        "{select} WHERE i.account_id = $1 AND i.import_id = $2"
    ))
    .bind(account.as_str())
    .bind(import.as_str())
    .fetch_optional(connection)
    .await
}

/// The import as the caller's lane transaction leaves it (its plan left out): the sums count
/// the lane part it is writing, and every part committed before this statement.
///
/// Read only by the transactions of one lane of the import, which hold that lane's row lock
/// one after the other, the reads are in the order of their commits and each sees every part
/// the one before it saw: so the sequences grow and the counters never go back, although
/// other lanes commit meanwhile. (Read by two lanes' transactions at once, each would count
/// its own part but not the other's.)
pub async fn progress_before_commit(
    transaction: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
) -> sqlx::Result<Option<ImportRow>> {
    select_one(transaction, &SELECT_PROGRESS, account, import).await
}

/// Locks the import for the rest of the transaction and reads it as it then is. Every change
/// of an import's state happens under this lock. It first marks every lane of the import
/// closed, which waits for the lanes being applied to commit (each holds its lane's row) and
/// turns away those that come after: if the caller commits, no lane is written again; if it
/// rolls back, the mark goes with it.
pub async fn lock(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
) -> sqlx::Result<Option<ImportRow>> {
    // Closers meet on the import's row first, so that they mark the lanes one after the other.
    let exists: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM imports WHERE account_id = $1 AND import_id = $2 FOR UPDATE",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .fetch_optional(&mut *connection)
    .await?;
    sqlx::query("UPDATE import_lanes SET open = false WHERE account_id = $1 AND import_id = $2")
        .bind(account.as_str())
        .bind(import.as_str())
        .execute(&mut *connection)
        .await?;
    // A new statement: in READ COMMITTED it sees the lanes committed while we waited.
    match exists {
        Some(_) => load(connection, account, import).await,
        None => Ok(None),
    }
}

/// Imports of `namespace` that match `condition` (SQL over `i` and `lanes`), oldest first.
async fn select_in_namespace(
    connection: &mut PgConnection,
    namespace: &Namespace,
    condition: &str,
    limit: i64,
) -> sqlx::Result<Vec<ImportRow>> {
    sqlx::query_as(&format!(
        "{} WHERE (i.namespace = $1 OR i.namespace IS NULL) AND ({condition})
         ORDER BY i.created_at LIMIT $2",
        *SELECT_IMPORT
    ))
    .bind(namespace.name())
    .bind(limit)
    .fetch_all(connection)
    .await
}

/// Running imports whose every lane applied every chunk of the file: a writer stopped between
/// the last commit and completing the import.
pub async fn done_but_running(
    connection: &mut PgConnection,
    namespace: &Namespace,
    limit: i64,
) -> sqlx::Result<Vec<ImportRow>> {
    select_in_namespace(
        connection,
        namespace,
        "i.status = 'running' AND i.chunks_total IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM import_lanes l
                         WHERE l.account_id = i.account_id AND l.import_id = i.import_id
                           AND l.next_chunk < i.chunks_total)",
        limit,
    )
    .await
}

/// Imports that ended without their summary going out.
pub async fn ended_unannounced(
    connection: &mut PgConnection,
    namespace: &Namespace,
    limit: i64,
) -> sqlx::Result<Vec<ImportRow>> {
    select_in_namespace(
        connection,
        namespace,
        "i.status <> 'running' AND NOT i.summary_published",
        limit,
    )
    .await
}

/// Running imports that neither the import nor any lane of it changed for `stall`.
pub async fn stalled(
    connection: &mut PgConnection,
    namespace: &Namespace,
    stall: std::time::Duration,
    limit: i64,
) -> sqlx::Result<Vec<ImportRow>> {
    select_in_namespace(
        connection,
        namespace,
        &format!(
            "i.status = 'running'
             AND GREATEST(i.updated_at, lanes.updated_at) < now() - interval '{} seconds'",
            stall.as_secs()
        ),
        limit,
    )
    .await
}

/// The undo that nobody moved on for the longest, if one stood still for `after`.
pub async fn undo_left_alone(
    connection: &mut PgConnection,
    namespace: &Namespace,
    after: std::time::Duration,
) -> sqlx::Result<Option<(String, String)>> {
    sqlx::query_as(
        "SELECT account_id, import_id FROM imports
         WHERE status = 'undoing' AND (namespace = $1 OR namespace IS NULL)
           AND updated_at < now() - make_interval(secs => $2)
         ORDER BY updated_at LIMIT 1",
    )
    .bind(namespace.name())
    .bind(after.as_secs_f64())
    .fetch_optional(connection)
    .await
}

/// Takes the details (row errors, failed rows, undo records) away from up to `limit` imports
/// of the namespace that ended, or were undone, longer than `retention` ago: from this commit
/// on they are neither served nor undone, and they wait for the sweep to delete them. An
/// undo under way keeps its import (the two updates meet on the import's row).
pub async fn claim_expired_details(
    connection: &mut PgConnection,
    namespace: &Namespace,
    retention: std::time::Duration,
    limit: i64,
) -> sqlx::Result<u64> {
    let claimed = sqlx::query(
        "UPDATE imports SET details_removed_at = now(), details_pending = true
         WHERE (account_id, import_id) IN (
                 SELECT account_id, import_id FROM imports
                 WHERE details_removed_at IS NULL AND finished_at IS NOT NULL
                   AND finished_at < now() - make_interval(secs => $2)
                   AND (undone_at IS NULL OR undone_at < now() - make_interval(secs => $2))
                   AND status IN ('completed', 'cancelled', 'failed', 'undone')
                   AND (namespace = $1 OR namespace IS NULL)
                 ORDER BY finished_at LIMIT $3)
           AND status IN ('completed', 'cancelled', 'failed', 'undone')
           AND details_removed_at IS NULL
           -- Asked again of the row as it is once locked: an undo may have just ended.
           AND (undone_at IS NULL OR undone_at < now() - make_interval(secs => $2))",
    )
    .bind(namespace.name())
    .bind(retention.as_secs_f64())
    .bind(limit)
    .execute(connection)
    .await?;
    Ok(claimed.rows_affected())
}

/// What the sweep deletes of an ended import in batches, and the column that says some is
/// left (set when the import makes it, cleared once all of it is deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leftover {
    /// A dry run's overlay of contacts and keys.
    DryRunOverlay,
    /// The details retention took: row errors, failed rows, undo records.
    ExpiredDetails,
}

impl Leftover {
    fn column(self) -> &'static str {
        match self {
            Self::DryRunOverlay => "overlay_pending",
            Self::ExpiredDetails => "details_pending",
        }
    }

    /// The tables it is deleted from.
    fn tables(self) -> &'static [&'static str] {
        match self {
            Self::DryRunOverlay => &["dry_run_contacts", "dry_run_keys"],
            Self::ExpiredDetails => &[
                "row_errors",
                "failed_rows",
                "import_changes",
                "undo_conflicts",
            ],
        }
    }
}

/// Ended imports of the namespace with `leftover` still to delete.
pub async fn with_leftover(
    connection: &mut PgConnection,
    namespace: &Namespace,
    leftover: Leftover,
    limit: i64,
) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(&format!(
        "SELECT account_id, import_id FROM imports
         WHERE {} AND status <> 'running' AND (namespace = $1 OR namespace IS NULL)
         LIMIT $2",
        leftover.column()
    ))
    .bind(namespace.name())
    .bind(limit)
    .fetch_all(connection)
    .await
}

/// Records that all of the import's `leftover` is deleted, if it is (and returns whether it
/// was): two writers sweeping one import at once each see their own last batch come back
/// short, so the tables are asked.
pub async fn mark_cleared(
    connection: &mut PgConnection,
    account: &str,
    import: &str,
    leftover: Leftover,
) -> sqlx::Result<bool> {
    let none_left: Vec<String> = leftover
        .tables()
        .iter()
        .map(|table| {
            format!("NOT EXISTS (SELECT 1 FROM {table} WHERE account_id = $1 AND import_id = $2)")
        })
        .collect();
    let cleared = sqlx::query(&format!(
        "UPDATE imports SET {} = false WHERE account_id = $1 AND import_id = $2 AND {}",
        leftover.column(),
        none_left.join(" AND ")
    ))
    .bind(account)
    .bind(import)
    .execute(connection)
    .await?;
    Ok(cleared.rows_affected() == 1)
}

/// How many imports of the namespace run.
pub async fn running_in_namespace(
    connection: &mut PgConnection,
    namespace: &Namespace,
) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM imports WHERE namespace = $1 AND status = 'running'")
        .bind(namespace.name())
        .fetch_one(connection)
        .await
}

/// How many running imports of the namespace neither changed nor moved a lane on for
/// `seconds`.
pub async fn without_lane_moves_for(
    connection: &mut PgConnection,
    namespace: &Namespace,
    seconds: f64,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM imports i
         WHERE i.namespace = $1 AND i.status = 'running'
           AND i.updated_at < now() - make_interval(secs => $2)
           AND NOT EXISTS (SELECT 1 FROM import_lanes l
                           WHERE l.account_id = i.account_id AND l.import_id = i.import_id
                             AND l.updated_at >= now() - make_interval(secs => $2))",
    )
    .bind(namespace.name())
    .bind(seconds)
    .fetch_one(connection)
    .await
}

/// One page of the account's imports, newest first, after `before` (created_at, import id).
pub async fn list_page(
    connection: &mut PgConnection,
    account: &AccountId,
    status: Option<ImportState>,
    file_sha256: Option<&str>,
    before: Option<(DateTime<Utc>, &str)>,
    limit: u32,
) -> sqlx::Result<Vec<ImportRow>> {
    sqlx::query_as(&format!(
        "{} WHERE i.account_id = $1 AND ($2::text IS NULL OR i.status = $2)
             AND ($3::text IS NULL OR i.file_sha256 = $3)
             AND ($4::timestamptz IS NULL OR (i.created_at, i.import_id) < ($4, $5::text))
         ORDER BY i.created_at DESC, i.import_id DESC LIMIT $6",
        *SELECT_IMPORT
    ))
    .bind(account.as_str())
    .bind(status.map(ImportState::as_str))
    .bind(file_sha256)
    .bind(before.map(|(created_at, _)| created_at))
    .bind(before.map(|(_, import)| import))
    .bind(i64::from(limit))
    .fetch_all(connection)
    .await
}

/// The latest import of `account` other than `import` whose file had this content, dry runs
/// left out: SQL for `repeat_of`, parameters $1 (account), $2 (import), `digest`.
fn latest_of_file(digest: &str) -> String {
    format!(
        "(SELECT earlier.import_id FROM imports earlier
          WHERE earlier.account_id = $1 AND earlier.file_sha256 = {digest} AND earlier.import_id <> $2
            AND NOT COALESCE((earlier.request -> 'options' ->> 'dry_run')::boolean, false)
          ORDER BY earlier.created_at DESC LIMIT 1)"
    )
}

/// Records an accepted import as running, with a block of contact ids and its lanes;
/// returns whether it was new (a repeat changes nothing).
pub async fn insert_running(
    connection: &mut PgConnection,
    namespace: &Namespace,
    request: &ImportRequest,
    plan: &MappingPlan,
    file_bytes: u64,
    lanes: u32,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        &format!("INSERT INTO imports (account_id, import_id, status, request, plan, unmapped_columns, file_name, bytes_total, namespace, lanes, overlay_pending, file_sha256, repeat_of)
         VALUES ($1, $2, 'running', $3, $4, $5, $6, $7, $8, $9, $10, $11, {})
         ON CONFLICT DO NOTHING", latest_of_file("$11")),
    )
    .bind(request.account.as_str())
    .bind(request.import_id.as_str())
    .bind(Json(request))
    .bind(Json(plan))
    .bind(&plan.unmapped_columns)
    .bind(&request.file_name)
    .bind(file_bytes as i64)
    .bind(namespace.name())
    .bind(lanes as i32)
    .bind(request.options.dry_run)
    .bind(&request.file_sha256)
    .execute(&mut *connection)
    .await?
    .rows_affected()
        == 1;
    if !inserted {
        return Ok(false);
    }
    // One row serializes the blocks of every import; it is held only until this commits.
    sqlx::query(
        "WITH block AS (
             UPDATE contact_id_blocks SET next_id = next_id + $3
             RETURNING next_id - $3 AS first_id)
         UPDATE imports SET first_contact_id = (SELECT first_id FROM block)
         WHERE account_id = $1 AND import_id = $2",
    )
    .bind(request.account.as_str())
    .bind(request.import_id.as_str())
    .bind(IdBlock::ids_needed(file_bytes))
    .execute(&mut *connection)
    .await?;
    sqlx::query(
        "INSERT INTO import_lanes (account_id, import_id, lane)
         SELECT $1, $2, lane FROM generate_series(0, $3 - 1) AS lane",
    )
    .bind(request.account.as_str())
    .bind(request.import_id.as_str())
    .bind(lanes as i32)
    .execute(connection)
    .await?;
    Ok(true)
}

/// Records an import that ends before it runs (rejected: failed; cancelled while queued);
/// returns whether it was new.
pub async fn insert_closed(
    connection: &mut PgConnection,
    namespace: &Namespace,
    request: &ImportRequest,
    state: ImportState,
    reason: Option<&str>,
) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        &format!("INSERT INTO imports (account_id, import_id, status, request, file_name, error, finished_at, namespace, file_sha256, repeat_of)
         VALUES ($1, $2, $3, $4, $5, $6, now(), $7, $8, {})
         ON CONFLICT DO NOTHING", latest_of_file("$8")),
    )
    .bind(request.account.as_str())
    .bind(request.import_id.as_str())
    .bind(state.as_str())
    .bind(Json(request))
    .bind(&request.file_name)
    .bind(reason)
    .bind(namespace.name())
    .bind(&request.file_sha256)
    .execute(connection)
    .await?
    .rows_affected()
        == 1)
}

/// Records that ingest has published every chunk.
pub async fn set_file_totals(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
    chunks_total: u32,
    rows_in_file: u64,
    cut_short: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE imports SET chunks_total = $3, rows_in_file = $4, error = COALESCE($5, error), updated_at = now()
         WHERE account_id = $1 AND import_id = $2",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .bind(chunks_total as i32)
    .bind(rows_in_file as i64)
    .bind(cut_short.map(|reason| format!("the file was cut short: {reason}")))
    .execute(connection)
    .await?;
    Ok(())
}

/// What applying a lane of a chunk adds to the lane: its counters, and the move to the next
/// chunk. Written by the statement that writes the lane's new contacts.
#[derive(Debug, Clone, Copy)]
pub struct LaneAdvance {
    pub lane: u32,
    pub counts: OutcomeCounts,
    pub failed_rows: usize,
    pub end_offset: u64,
}

/// Ends a running import as `state` in the caller's transaction, which holds [`lock`].
/// `finished_at` is the time of the end itself, not of the transaction's start: the lanes'
/// last transactions may have started after this one and committed while it waited for them,
/// and undo takes a contact written after `finished_at` for one changed since the import.
pub async fn set_closed(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
    state: ImportState,
    reason: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE imports SET status = $3, error = COALESCE($4, error), finished_at = clock_timestamp(), updated_at = now()
         WHERE account_id = $1 AND import_id = $2",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .bind(state.as_str())
    .bind(reason)
    .execute(connection)
    .await?;
    Ok(())
}

/// Records that the import's summary event went out.
pub async fn mark_summary_published(
    connection: &mut PgConnection,
    row: &ImportRow,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE imports SET summary_published = true WHERE account_id = $1 AND import_id = $2",
    )
    .bind(&row.account_id)
    .bind(&row.import_id)
    .execute(connection)
    .await?;
    Ok(())
}

#[cfg(test)]
impl ImportRow {
    /// An import of `account` as a row reads before its lanes applied anything.
    pub(crate) fn example(account: &str, import: &str, state: ImportState) -> Self {
        let request = ImportRequest::known_by_subject(
            AccountId::new(account).expect("valid account"),
            ImportId::new(import).expect("valid import"),
        );
        Self {
            account_id: account.into(),
            import_id: import.into(),
            status: state.as_str().into(),
            request: Json(request),
            plan: None,
            unmapped_columns: Vec::new(),
            file_name: None,
            bytes_total: None,
            chunks_total: None,
            rows_in_file: None,
            error: None,
            created_at: Utc::now(),
            finished_at: None,
            lanes: 1,
            first_contact_id: None,
            repeat_of: None,
            details_removed_at: None,
            parts_applied: 0,
            created: 0,
            linked: 0,
            duplicated: 0,
            skipped: 0,
            failed: 0,
            bytes_done: 0,
            lane_cursors: vec![0],
            parts_parked: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_total_is_every_outcome_counted_once() {
        let row = ImportRow {
            created: 5,
            linked: 4,
            duplicated: 3,
            skipped: 2,
            failed: 1,
            ..ImportRow::example("acme", "imp-1", ImportState::Running)
        };
        let status = row.to_status();
        assert_eq!(
            (
                status.rows_total,
                status.created,
                status.linked,
                status.duplicated
            ),
            (15, 5, 4, 3)
        );
        assert_eq!((status.skipped, status.failed), (2, 1));
    }

    #[test]
    fn a_completed_import_has_read_its_whole_file_and_a_running_one_what_its_lanes_did() {
        let with_file = |state| ImportRow {
            bytes_total: Some(1000),
            bytes_done: 640,
            ..ImportRow::example("acme", "imp-1", state)
        };
        assert_eq!(
            with_file(ImportState::Completed).to_status().bytes_done,
            1000
        );
        assert_eq!(with_file(ImportState::Running).to_status().bytes_done, 640);
        assert_eq!(
            with_file(ImportState::Cancelled).to_status().bytes_done,
            640
        );
    }

    #[test]
    fn the_end_of_an_import_comes_after_every_part_it_applied() {
        let applied = |state, parts| ImportRow {
            parts_applied: parts,
            ..ImportRow::example("acme", "imp-1", state)
        };
        assert_eq!(applied(ImportState::Running, 0).event_sequence(), 0);
        assert_eq!(applied(ImportState::Running, 7).event_sequence(), 7);
        for ended in [
            ImportState::Completed,
            ImportState::Failed,
            ImportState::Cancelled,
        ] {
            assert_eq!(applied(ended, 7).event_sequence(), 8, "{ended:?}");
        }
    }

    #[test]
    fn only_a_running_import_says_what_it_waits_for() {
        let row = |state| ImportRow {
            chunks_total: Some(3),
            lane_cursors: vec![1],
            ..ImportRow::example("acme", "imp-1", state)
        };
        assert_eq!(
            row(ImportState::Running).to_status().waiting_for.as_deref(),
            Some("chunk 2 of 3 to be validated and written")
        );
        assert_eq!(row(ImportState::Completed).to_status().waiting_for, None);
    }

    fn check(chunks_total: Option<i32>, lane_cursors: &[i32], parked: i64, expected: &str) {
        assert_eq!(waiting_for(chunks_total, lane_cursors, parked), expected);
    }

    #[test]
    fn a_running_import_names_the_chunk_its_slowest_lanes_wait_for() {
        check(Some(1), &[0], 0, "chunk 1 of 1 to be validated and written");
        check(
            Some(169),
            &[125, 125, 125, 125],
            43,
            "chunk 126 of 169 to be validated and written; 43 later parts are parked until then",
        );
        check(
            Some(12),
            &[7, 5, 9, 5],
            1,
            "chunk 6 of 12 to be validated and written for lanes 1 and 3; 1 later part is parked until then",
        );
        check(
            Some(12),
            &[7, 5, 9, 7],
            0,
            "chunk 6 of 12 to be validated and written for lane 1",
        );
    }

    #[test]
    fn an_import_whose_file_is_still_read_says_so() {
        check(
            None,
            &[2, 3],
            0,
            "chunk 3 to be validated and written for lane 0 (ingest is still reading the file)",
        );
    }

    #[test]
    fn an_import_with_every_chunk_applied_waits_for_its_end_to_be_recorded() {
        check(Some(4), &[4, 4], 0, "the end of the import to be recorded");
    }
}

/// Where an undo stands, read from its import under the import's row lock.
#[derive(sqlx::FromRow)]
pub struct UndoCursor {
    pub first_contact_id: Option<i64>,
    pub bytes_total: Option<i64>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The last linked contact restored.
    pub undo_restored_through: Option<i64>,
    /// The next created contact to remove.
    pub undo_next_contact: Option<i64>,
}

/// Locks the import's row and reads its undo cursor; none unless it is being undone.
pub async fn lock_undoing(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
) -> sqlx::Result<Option<UndoCursor>> {
    sqlx::query_as(
        "SELECT first_contact_id, bytes_total, finished_at, undo_restored_through,
                undo_next_contact
         FROM imports WHERE account_id = $1 AND import_id = $2 AND status = 'undoing'
         FOR UPDATE",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .fetch_optional(connection)
    .await
}

/// Marks an ended import whose undo records are kept as being undone; returns false when
/// another call moved it meanwhile (to undoing, or retention took its records), and it stays.
pub async fn mark_undoing(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
) -> sqlx::Result<bool> {
    let marked = sqlx::query(
        "UPDATE imports SET status = 'undoing', updated_at = now()
         WHERE account_id = $1 AND import_id = $2
           AND status IN ('completed', 'cancelled', 'failed') AND details_removed_at IS NULL",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .execute(connection)
    .await?;
    Ok(marked.rows_affected() == 1)
}

/// Records that an undo restored `restored` more linked contacts, up to contact `through`.
pub async fn advance_undo_restore(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
    restored: i64,
    through: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE imports SET undo_restored = undo_restored + $3, undo_restored_through = $4,
             updated_at = now()
         WHERE account_id = $1 AND import_id = $2",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .bind(restored)
    .bind(through)
    .execute(connection)
    .await?;
    Ok(())
}

/// Records that an undo removed `removed` more created contacts and kept `kept`, and goes on
/// from contact `next_contact`.
pub async fn advance_undo_removal(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
    next_contact: i64,
    removed: i64,
    kept: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE imports SET undo_next_contact = $3, undo_removed = undo_removed + $4,
             undo_kept = undo_kept + $5, updated_at = now()
         WHERE account_id = $1 AND import_id = $2",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .bind(next_contact)
    .bind(removed)
    .bind(kept)
    .execute(connection)
    .await?;
    Ok(())
}

/// Ends an undo: the import is `undone`.
pub async fn mark_undone(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE imports SET status = 'undone', undone_at = now(), updated_at = now()
         WHERE account_id = $1 AND import_id = $2",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .execute(connection)
    .await?;
    Ok(())
}

/// An undo's counters, as its import records them.
#[derive(sqlx::FromRow)]
pub struct UndoCounters {
    pub status: String,
    pub undo_removed: i64,
    pub undo_restored: i64,
    pub undo_kept: i64,
}

pub async fn undo_counters(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
) -> sqlx::Result<Option<UndoCounters>> {
    sqlx::query_as(
        "SELECT status, undo_removed, undo_restored, undo_kept
         FROM imports WHERE account_id = $1 AND import_id = $2",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .fetch_optional(connection)
    .await
}

/// The mapping plans of the account's running imports, by import id.
pub async fn running_plans(
    connection: &mut PgConnection,
    account: &AccountId,
) -> sqlx::Result<Vec<(String, contact_core::mapping::MappingPlan)>> {
    let plans: Vec<(String, Json<contact_contract::MappingPlan>)> = sqlx::query_as(
        "SELECT import_id, plan FROM imports
         WHERE account_id = $1 AND status = 'running' AND plan IS NOT NULL",
    )
    .bind(account.as_str())
    .fetch_all(connection)
    .await?;
    Ok(plans
        .into_iter()
        .map(|(import, plan)| (import, plan.0.into()))
        .collect())
}

/// The latest import of the account whose file had the columns of `header` (in any order),
/// left out when it was cancelled or undone (a mapping taken back is not one to offer again).
pub async fn latest_with_header(
    connection: &mut PgConnection,
    account: &AccountId,
    header: &[String],
) -> sqlx::Result<Option<ImportOfHeader>> {
    let found: Option<ImportOfHeader> = sqlx::query_as(
        "SELECT import_id, file_name, created_at, plan FROM imports
         WHERE account_id = $1 AND plan IS NOT NULL
           AND header_key(plan->'header') = header_key($2)
           AND status NOT IN ('cancelled', 'undone')
         ORDER BY created_at DESC
         LIMIT 1",
    )
    .bind(account.as_str())
    .bind(Json(header))
    .fetch_optional(connection)
    .await?;
    // The key is a digest: a match is checked against the names themselves.
    let same_columns = |found: &ImportOfHeader| {
        let mut theirs: Vec<&String> = found.plan.header.iter().collect();
        let mut ours: Vec<&String> = header.iter().collect();
        theirs.sort();
        ours.sort();
        theirs == ours
    };
    Ok(found.filter(same_columns))
}

/// An earlier import found by its file's columns.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImportOfHeader {
    pub import_id: String,
    pub file_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub plan: Json<MappingPlan>,
}
