//! Applying validated chunks strictly in file order, whichever replica receives them and in
//! whatever order they arrive.
//!
//! A chunk whose turn has come is applied at once; any other waits in `pending_chunks`. After
//! every commit the replica drains: under the import's row lock (skipped if another replica
//! holds it) it applies the next waiting chunk until the next one is missing. The holder
//! checks for the next chunk once more after releasing the lock, so a chunk stashed while it
//! held the lock is never left behind; a replica that dies mid-drain is covered by the sweep.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use contact_contract::{AccountId, ImportEventKind, ImportId, ImportState, ValidatedChunk};
use contact_core::merge::{match_keys, plan_merge, MergeOptions};
use contact_core::validate::RowError;
use contact_runtime::Shutdown;
use sqlx::PgConnection;

use crate::imports::{self, ImportRow, LockWait};
use crate::{accounts, contacts, events, Writer};

/// What became of a received chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkDisposition {
    Applied,
    /// Arrived before its turn (or while another replica was applying): it waits in the table.
    Stashed,
    /// Applied before: a redelivery.
    AlreadyApplied,
    /// The import is over (completed, failed or cancelled): nothing more is written.
    ImportClosed,
}

/// Takes one validated chunk: applies it if its turn has come, stashes it otherwise, then
/// applies whatever has become ready. `payload` is the message body, kept for stashing.
pub async fn receive(
    writer: &Writer,
    chunk: &ValidatedChunk,
    payload: &[u8],
) -> anyhow::Result<ChunkDisposition> {
    let (account, import) = (&chunk.account, &chunk.import_id);
    let mut transaction = writer.pool.begin().await?;
    let locked = imports::lock(&mut transaction, account, import, LockWait::SkipIfBusy).await?;
    let turn = i64::from(chunk.chunk_index);
    let disposition = match &locked {
        Some(row) if row.state().is_terminal() => ChunkDisposition::ImportClosed,
        Some(row) if turn < i64::from(row.next_chunk) => ChunkDisposition::AlreadyApplied,
        Some(row) if turn == i64::from(row.next_chunk) => {
            apply(writer, &mut transaction, row, chunk).await?;
            ChunkDisposition::Applied
        }
        // Not its turn, the import not registered yet, or another replica holds the lock.
        _ => {
            stash(&mut transaction, chunk, payload).await?;
            ChunkDisposition::Stashed
        }
    };
    transaction.commit().await.context("committing the chunk")?;
    if matches!(
        disposition,
        ChunkDisposition::Applied | ChunkDisposition::Stashed
    ) {
        if let Err(error) = drain(writer, account, import).await {
            // The chunk itself is safe; the sweep will apply what is waiting.
            tracing::warn!(%account, %import, error = format!("{error:#}"), "draining waiting chunks failed");
        }
    }
    Ok(disposition)
}

/// Applies waiting chunks of the import in order while the next one is there.
pub async fn drain(writer: &Writer, account: &AccountId, import: &ImportId) -> anyhow::Result<()> {
    loop {
        let mut transaction = writer.pool.begin().await?;
        let Some(row) =
            imports::lock(&mut transaction, account, import, LockWait::SkipIfBusy).await?
        else {
            return Ok(());
        };
        if row.state() != ImportState::Running {
            return Ok(());
        }
        let waiting: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT payload FROM pending_chunks WHERE account_id = $1 AND import_id = $2 AND chunk_index = $3",
        )
        .bind(account.as_str())
        .bind(import.as_str())
        .bind(row.next_chunk)
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(payload) = waiting else {
            transaction.commit().await?;
            // Look once more without the lock: a chunk stashed while we held it is ours.
            if next_chunk_is_waiting(writer, account, import).await? {
                continue;
            }
            return Ok(());
        };
        let chunk: ValidatedChunk =
            serde_json::from_slice(&payload).context("reading a stashed chunk")?;
        apply(writer, &mut transaction, &row, &chunk).await?;
        sqlx::query("DELETE FROM pending_chunks WHERE account_id = $1 AND import_id = $2 AND chunk_index = $3")
            .bind(account.as_str())
            .bind(import.as_str())
            .bind(row.next_chunk)
            .execute(&mut *transaction)
            .await?;
        transaction
            .commit()
            .await
            .context("committing a stashed chunk")?;
    }
}

async fn next_chunk_is_waiting(
    writer: &Writer,
    account: &AccountId,
    import: &ImportId,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (
             SELECT 1 FROM imports i JOIN pending_chunks p
               ON p.account_id = i.account_id AND p.import_id = i.import_id AND p.chunk_index = i.next_chunk
             WHERE i.account_id = $1 AND i.import_id = $2 AND i.status = 'running')",
    )
    .bind(account.as_str())
    .bind(import.as_str())
    .fetch_one(&writer.pool)
    .await
}

async fn stash(
    connection: &mut PgConnection,
    chunk: &ValidatedChunk,
    payload: &[u8],
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO pending_chunks (account_id, import_id, chunk_index, payload) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
    )
    .bind(chunk.account.as_str())
    .bind(chunk.import_id.as_str())
    .bind(chunk.chunk_index as i32)
    .bind(payload)
    .execute(connection)
    .await?;
    Ok(())
}

/// Applies one chunk inside the caller's transaction, which holds the import's row lock and
/// is the chunk's turn: contacts, row errors, counters, the next chunk number, and the
/// progress event (or the summary, when it was the last chunk) all commit together.
async fn apply(
    writer: &Writer,
    transaction: &mut PgConnection,
    row: &ImportRow,
    chunk: &ValidatedChunk,
) -> anyhow::Result<()> {
    let (account, import) = (&chunk.account, &chunk.import_id);
    let request = &row.request.0;
    let match_on = match &row.plan {
        Some(plan) => plan.0.match_on.clone(),
        None => anyhow::bail!("import {import} runs without a mapping plan"),
    };
    let options = MergeOptions {
        policy: request.options.policy,
        match_on,
        contact_type: request.options.contact_type.clone(),
        category: request.options.category.clone(),
        tags: request.options.tags.clone(),
    };
    accounts::lock_account_contacts(transaction, account).await?;
    let identifier_keys = accounts::identifier_keys(transaction, account).await?;
    let keys: BTreeSet<_> = chunk
        .records
        .iter()
        .flat_map(|record| match_keys(&record.values, &options.match_on))
        .collect();
    let stored = contacts::fetch_by_keys(transaction, account, &keys).await?;
    let merge = plan_merge(&chunk.records, stored, &options);
    contacts::insert_new(
        transaction,
        account,
        import,
        &merge.new_contacts,
        &identifier_keys,
    )
    .await?;
    contacts::update(transaction, &merge.updated_contacts, &identifier_keys).await?;
    insert_row_errors(transaction, account, import, &chunk.errors).await?;
    let applied = imports::record_chunk_applied(
        transaction,
        row,
        &merge.counts,
        chunk.failed_rows,
        chunk.end_offset,
    )
    .await?;
    if applied.all_chunks_applied() {
        let completed = imports::complete(transaction, &applied).await?;
        events::publish(writer, &completed, ImportEventKind::Summary, "summary").await?;
        tracing::info!(%account, %import, rows = completed.to_status().rows_total, "import completed");
    } else {
        let what = format!("chunk.{}", chunk.chunk_index);
        events::publish(writer, &applied, ImportEventKind::Progress, &what).await?;
    }
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

/// Closes the import if every chunk is applied: used when the file's totals arrive after the
/// last chunk. The caller holds the row lock.
pub async fn complete_if_done(
    writer: &Writer,
    transaction: &mut PgConnection,
    row: &ImportRow,
) -> anyhow::Result<bool> {
    if row.state() != ImportState::Running || !row.all_chunks_applied() {
        return Ok(false);
    }
    let completed = imports::complete(transaction, row).await?;
    events::publish(writer, &completed, ImportEventKind::Summary, "summary").await?;
    tracing::info!(account = %row.account_id, import = %row.import_id, "import completed");
    Ok(true)
}

/// Every `every`, applies chunks left waiting (their receiver stopped before draining) and
/// removes stashed chunks that can never be applied (a redelivery of an applied chunk, or a
/// chunk of a closed import).
pub async fn sweep_forever(writer: Arc<Writer>, every: Duration, shutdown: Shutdown) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.triggered() => return,
        }
        if let Err(error) = sweep_once(&writer).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "sweep failed; trying again later"
            );
        }
    }
}

async fn sweep_once(writer: &Writer) -> anyhow::Result<()> {
    sqlx::query(
        "DELETE FROM pending_chunks p USING imports i
         WHERE p.account_id = i.account_id AND p.import_id = i.import_id
           AND (i.status <> 'running' OR p.chunk_index < i.next_chunk)",
    )
    .execute(&writer.pool)
    .await?;
    let ready: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.account_id, i.import_id FROM imports i JOIN pending_chunks p
           ON p.account_id = i.account_id AND p.import_id = i.import_id AND p.chunk_index = i.next_chunk
         WHERE i.status = 'running'",
    )
    .fetch_all(&writer.pool)
    .await?;
    for (account, import) in ready {
        let (account, import) = (AccountId::new(account)?, ImportId::new(import)?);
        drain(writer, &account, &import).await?;
    }
    Ok(())
}
