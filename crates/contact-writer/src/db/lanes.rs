//! `import_lanes`: each lane's cursor (the chunk it applies next) and counters. A lane's row
//! lock makes its transaction the lane's only writer; the cursor moves in the statement that
//! writes the lane's contacts (`contacts::insert_new_and_advance`).

use std::sync::LazyLock;

use contact_contract::{AccountId, ImportId, ImportRequest, MappingPlan};
use contact_core::lanes::LANES;
use sqlx::types::Json;
use sqlx::PgConnection;

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
        super::accounts::lane_lock("i.account_id", "wanted")
    )
});

/// What a lane's transaction reads and locks before it writes.
#[derive(sqlx::FromRow)]
pub struct LaneGate {
    pub status: String,
    pub request: Json<ImportRequest>,
    pub plan: Option<Json<MappingPlan>>,
    pub lanes: i32,
    pub first_contact_id: Option<i64>,
    pub bytes_total: Option<i64>,
    pub chunks_total: Option<i32>,
    pub next_chunk: i32,
    pub identifier_keys: Vec<String>,
    /// The account's lane locks this lane needs, taken if free (a dry run needs none).
    pub lanes_locked: bool,
}

impl LaneGate {
    pub fn import_closed(&self) -> bool {
        contact_contract::ImportState::parse(&self.status).is_none_or(|state| state.is_terminal())
    }

    pub fn next_chunk(&self) -> u32 {
        self.next_chunk.max(0) as u32
    }
}

/// Locks `lane` of the import (never waiting: a lock another transaction holds is an error
/// that [`super::is_lock_not_available`] recognises) and reads its gate; none when the import
/// or its open lane does not exist.
pub async fn lock_lane(
    transaction: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
    lane: u32,
) -> sqlx::Result<Option<LaneGate>> {
    let all_lanes: Vec<i32> = (0..LANES as i32).collect();
    sqlx::query_as(&LANE_GATE)
        .bind(account.as_str())
        .bind(import.as_str())
        .bind(lane as i32)
        .bind(&all_lanes)
        .fetch_optional(&mut *transaction)
        .await
}

/// Locks the row of `lane` of the import unless another transaction holds it (never
/// waiting). A transaction that reads the import's progress while it holds the row reads in
/// order with that lane's own transactions (see `imports::progress_before_commit`). False when
/// the row is held, or there is none.
pub async fn try_lock_lane_row(
    transaction: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
    lane: u32,
) -> sqlx::Result<bool> {
    let locked = sqlx::query_scalar::<_, i32>(
        "SELECT 1 FROM import_lanes WHERE account_id = $1 AND import_id = $2 AND lane = $3
         FOR NO KEY UPDATE NOWAIT",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .bind(lane as i32)
    .fetch_optional(transaction)
    .await;
    match locked {
        Ok(row) => Ok(row.is_some()),
        Err(error) if super::is_lock_not_available(&error) => Ok(false),
        Err(error) => Err(error),
    }
}

/// True when every lane of the import has applied every chunk of the file.
pub async fn all_lanes_done(
    connection: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT i.chunks_total IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM import_lanes l
                                WHERE l.account_id = i.account_id AND l.import_id = i.import_id
                                  AND l.next_chunk < i.chunks_total)
         FROM imports i WHERE i.account_id = $1 AND i.import_id = $2",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .fetch_optional(connection)
    .await
    .map(|done| done.unwrap_or(false))
}
