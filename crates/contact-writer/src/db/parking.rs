//! The `parked_lane_parts` table: lane parts that came before their lane reached them.
//!
//! Every statement here runs in a transaction that holds the lane's row lock (`apply`'s lane
//! gate), except the sweep's search for lanes that crashed before applying what was parked
//! for them, which only reads. Under that lock a part is either parked while its lane is
//! behind, or found by the transaction that moves the lane to it: never neither.

use contact_contract::{AccountId, ImportId, Namespace, ValidatedChunk};
use sqlx::PgConnection;

/// Parks `part` (a chunk holding only the records of `lane`) for its lane. A part parked
/// before, by a redelivery of its message, stays as it was.
pub async fn park(
    transaction: &mut PgConnection,
    part: &ValidatedChunk,
    lane: u32,
) -> anyhow::Result<()> {
    let body = serde_json::to_vec(part)?;
    sqlx::query(
        "INSERT INTO parked_lane_parts (account_id, import_id, lane, chunk_index, part)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(part.account.as_str())
    .bind(part.import_id.as_str())
    .bind(lane as i32)
    .bind(part.chunk_index as i32)
    .bind(body)
    .execute(transaction)
    .await?;
    Ok(())
}

/// Called by the transaction that applied chunk `applied_chunk` of `lane`, before it commits:
/// forgets a part of that chunk parked by an earlier delivery of its message (applied from
/// this one instead), and says whether the part of the chunk after it waits parked, so that
/// the caller goes on with it.
pub async fn moved_on(
    transaction: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
    lane: u32,
    applied_chunk: u32,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "WITH applied AS (
             DELETE FROM parked_lane_parts
             WHERE account_id = $1 AND import_id = $2 AND lane = $3 AND chunk_index = $4)
         SELECT EXISTS (SELECT 1 FROM parked_lane_parts
                        WHERE account_id = $1 AND import_id = $2 AND lane = $3
                          AND chunk_index = $4 + 1)",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .bind(lane as i32)
    .bind(applied_chunk as i32)
    .fetch_one(transaction)
    .await
}

/// What was parked for a lane at one chunk, as read back.
pub enum ParkedPart {
    Readable(ValidatedChunk),
    /// Written by a writer of a later schema: for an upgraded writer to apply.
    OfLaterSchema,
    /// It cannot be read: its import cannot go on.
    Unreadable(String),
}

/// Takes the part parked for `lane` at chunk `chunk_index` out of the table, if there is one;
/// it is gone only if the caller commits.
pub async fn take(
    transaction: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
    lane: u32,
    chunk_index: u32,
) -> sqlx::Result<Option<ParkedPart>> {
    let body: Option<Vec<u8>> = sqlx::query_scalar(
        "DELETE FROM parked_lane_parts
         WHERE account_id = $1 AND import_id = $2 AND lane = $3 AND chunk_index = $4
         RETURNING part",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .bind(lane as i32)
    .bind(chunk_index as i32)
    .fetch_optional(transaction)
    .await?;
    Ok(body.map(|body| {
        if contact_contract::gate::written_by_newer_version(&body) {
            return ParkedPart::OfLaterSchema;
        }
        match serde_json::from_slice(&body) {
            Ok(part) => ParkedPart::Readable(part),
            Err(error) => ParkedPart::Unreadable(format!(
                "the part of chunk {chunk_index} parked for lane {lane} cannot be read: {error}"
            )),
        }
    }))
}

/// Forgets every part parked for an import that is ending (in the transaction that ends it):
/// no lane of it is written again.
pub async fn discard(
    transaction: &mut PgConnection,
    account: &AccountId,
    import: &ImportId,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM parked_lane_parts WHERE account_id = $1 AND import_id = $2")
        .bind(account.as_str())
        .bind(import.as_str())
        .execute(transaction)
        .await?;
    Ok(())
}

/// The open lanes of `namespace` whose next chunk waits parked and that nobody moved for a
/// moment: what a writer that stopped between moving a lane on and applying the part after
/// it leaves behind (or one that stopped applying parked parts at the end of its time).
pub async fn lanes_with_their_next_part_parked(
    connection: &mut PgConnection,
    namespace: &Namespace,
    limit: i64,
) -> sqlx::Result<Vec<(String, String, i32)>> {
    sqlx::query_as(
        "SELECT p.account_id, p.import_id, p.lane
         FROM parked_lane_parts p
         JOIN import_lanes l ON l.account_id = p.account_id AND l.import_id = p.import_id
                            AND l.lane = p.lane AND l.next_chunk = p.chunk_index AND l.open
         JOIN imports i ON i.account_id = p.account_id AND i.import_id = p.import_id
         WHERE (i.namespace = $1 OR i.namespace IS NULL)
           -- A lane that moved a moment ago is being worked on: its writer goes on with it.
           AND l.updated_at < now() - interval '2 seconds'
         ORDER BY p.parked_at
         LIMIT $2",
    )
    .bind(namespace.name())
    .bind(limit)
    .fetch_all(connection)
    .await
}

/// SQL for the number of parts parked for the import `i` (a column of the import's row).
pub const PARKED_PARTS_OF_IMPORT: &str = "(SELECT count(*) FROM parked_lane_parts p
      WHERE p.account_id = i.account_id AND p.import_id = i.import_id)";
